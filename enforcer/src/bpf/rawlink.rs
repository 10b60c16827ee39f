//! Raw `bpf(2)` calls for what aya 0.14 does not offer: a cgroup link for
//! attach types whose aya link cannot be turned into a pinnable `FdLink`
//! (`CgroupSockoptLink` has no such conversion), and pinning or opening any
//! object by its fd (aya's `FdLink` does not expose its fd, and re-pinning an
//! object the agent holds needs one).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd as _, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

/// `enum bpf_cmd`.
const BPF_OBJ_PIN: libc::c_long = 6;
const BPF_OBJ_GET: libc::c_long = 7;
const BPF_LINK_CREATE: libc::c_long = 28;

/// `enum bpf_attach_type` value of `cgroup/setsockopt`.
pub(super) const BPF_CGROUP_SETSOCKOPT: u32 = 22;

/// `union bpf_attr`, as far as these two commands use it (the kernel accepts
/// a shorter attr as long as what it gets is zero beyond the fields it knows).
#[repr(C)]
#[derive(Default)]
struct Attr {
    words: [u64; 8],
}

fn bpf(cmd: libc::c_long, attr: &Attr) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a valid, initialised buffer of the size passed; the
    // kernel only reads it for these commands.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            std::ptr::from_ref(attr),
            size_of::<Attr>() as libc::c_uint,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// `BPF_LINK_CREATE` of `prog` on the cgroup `target` with `attach_type`,
/// then `BPF_OBJ_PIN` of the link at `path`. The link lives as long as the pin.
pub(super) fn create_and_pin(
    prog: BorrowedFd<'_>,
    target: BorrowedFd<'_>,
    attach_type: u32,
    path: &Path,
) -> io::Result<()> {
    let mut attr = Attr::default();
    // link_create: u32 prog_fd, u32 target_fd, u32 attach_type, u32 flags.
    attr.words[0] =
        u64::from(prog.as_raw_fd() as u32) | (u64::from(target.as_raw_fd() as u32) << 32);
    attr.words[1] = u64::from(attach_type);
    let fd = bpf(BPF_LINK_CREATE, &attr)?;
    // SAFETY: the kernel returned a new link fd that nothing else owns.
    let link = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    obj_pin(link.as_fd(), path)
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// `BPF_OBJ_PIN`: pins the object (map, program or link) behind `fd` at `path`.
pub(super) fn obj_pin(fd: BorrowedFd<'_>, path: &Path) -> io::Result<()> {
    let name = c_path(path)?;
    let mut pin = Attr::default();
    // obj_pin: u64 pathname, u32 bpf_fd, u32 file_flags.
    pin.words[0] = name.as_ptr() as u64;
    pin.words[1] = u64::from(fd.as_raw_fd() as u32);
    bpf(BPF_OBJ_PIN, &pin)?;
    Ok(())
}

/// `BPF_OBJ_GET`: a new fd for the object pinned at `path`.
pub(super) fn obj_get(path: &Path) -> io::Result<OwnedFd> {
    let name = c_path(path)?;
    let mut get = Attr::default();
    get.words[0] = name.as_ptr() as u64;
    let fd = bpf(BPF_OBJ_GET, &get)?;
    // SAFETY: the kernel returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}
