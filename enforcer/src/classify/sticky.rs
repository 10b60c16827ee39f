//! "Sticky" processes: libcgroup's `/var/run/cgred.socket` protocol, by
//! which `cgexec --sticky` and `cgclassify --sticky` ask the rules daemon to
//! leave a process (and, with `--sticky`, its future children) where it is.
//!
//! The wire format is libcgroup's, so enforcer's tools and libcgroup's
//! daemon understand each other both ways: the client sends the pid and the
//! flags as two native-endian 32-bit integers and reads back the 18 bytes
//! `SUCCESS_STORE_PID\0`. If no daemon listens, registering succeeds (as in
//! libcgroup: there is nobody to move the process).

use std::io::{Read as _, Write as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

/// Where the rules daemon listens.
pub const SOCKET: &str = "/var/run/cgred.socket";

/// `CGROUP_DAEMON_UNCHANGE_CHILDREN`: keep the process and its children.
pub const UNCHANGE_CHILDREN: i32 = 0x1;
/// `CGROUP_DAEMON_CANCEL_UNCHANGE_PROCESS`: classify it again from now on.
pub const CANCEL_UNCHANGE: i32 = 0x2;

/// The reply that confirms a registration, NUL included.
const SUCCESS: &[u8; 18] = b"SUCCESS_STORE_PID\0";

/// `cgroup_register_unchanged_process`: 0 on success (or no daemon), 1 when
/// the daemon did not confirm.
pub fn register(pid: i32, flags: i32) -> i32 {
    register_at(Path::new(SOCKET), pid, flags)
}

pub fn register_at(socket: &Path, pid: i32, flags: i32) -> i32 {
    let Ok(mut s) = UnixStream::connect(socket) else {
        return 0;
    };
    if s.write_all(&pid.to_ne_bytes()).is_err() || s.write_all(&flags.to_ne_bytes()).is_err() {
        return 1;
    }
    let mut buf = [0u8; 18];
    match s.read_exact(&mut buf) {
        Ok(()) if &buf == SUCCESS => 0,
        _ => 1,
    }
}

/// One request read from a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub pid: i32,
    pub flags: i32,
}

/// Read a client's request; None (nothing stored, no reply) if it is
/// incomplete or the process does not exist, as libcgroup's daemon does.
pub fn read_request(s: &mut UnixStream) -> Option<Request> {
    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
    let mut b = [0u8; 4];
    s.read_exact(&mut b).ok()?;
    let pid = i32::from_ne_bytes(b);
    if !Path::new(&format!("/proc/{pid}")).exists() {
        return None;
    }
    s.read_exact(&mut b).ok()?;
    Some(Request {
        pid,
        flags: i32::from_ne_bytes(b),
    })
}

/// Confirm a stored request.
pub fn reply(s: &mut UnixStream) {
    let _ = s.write_all(SUCCESS);
}

/// Listen at `path` as libcgroup's daemon does: an old socket file is
/// replaced, the socket is mode 0660 and owned by `owner` (None keeps root).
pub fn listen(path: &Path, owner: (Option<u32>, Option<u32>)) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt as _;
    let _ = std::fs::remove_file(path);
    let l = UnixListener::bind(path)?;
    nix::unistd::chown(
        path,
        owner.0.map(nix::unistd::Uid::from_raw),
        owner.1.map(nix::unistd::Gid::from_raw),
    )
    .map_err(std::io::Error::from)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_and_server_speak_libcgroups_protocol() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cgred.socket");
        assert_eq!(
            register_at(&path, 1, UNCHANGE_CHILDREN),
            0,
            "no daemon: success"
        );
        let l = listen(&path, (None, None)).unwrap();
        let me = std::process::id() as i32;
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let r = read_request(&mut s).unwrap();
            reply(&mut s);
            r
        });
        assert_eq!(register_at(&path, me, UNCHANGE_CHILDREN), 0);
        assert_eq!(
            server.join().unwrap(),
            Request {
                pid: me,
                flags: UNCHANGE_CHILDREN
            }
        );
    }
}
