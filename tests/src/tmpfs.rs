//! A small tmpfs a test mounts itself: a filesystem it can fill (disk full)
//! or make read-only (or see read-only at another path), without touching
//! the host's. Unmounted when dropped, also on panic.

use std::path::{Path, PathBuf};

pub struct Tmpfs {
    pub dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs at `dir` (created if missing) with `options`, such as
    /// `size=256k,mode=0755`.
    pub fn mount(dir: &Path, options: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            dir,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some(options),
        )
        .unwrap_or_else(|e| panic!("mount a tmpfs at {} ({options}): {e}", dir.display()));
        Tmpfs {
            dir: dir.to_path_buf(),
        }
    }

    /// Makes it read-only: nobody, root included, can write through it.
    pub fn remount_read_only(&self) {
        nix::mount::mount(
            None::<&str>,
            &self.dir,
            None::<&str>,
            nix::mount::MsFlags::MS_REMOUNT | nix::mount::MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .unwrap_or_else(|e| panic!("remount {} read-only: {e}", self.dir.display()));
    }

    /// A read-only view of it at `at`, as a container gets a volume the
    /// kubelet writes through another path. Unmounted when dropped.
    pub fn bind_read_only(&self, at: &Path) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        nix::mount::mount(
            Some(&self.dir),
            at,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .unwrap_or_else(|e| panic!("bind {} at {}: {e}", self.dir.display(), at.display()));
        let view = Tmpfs {
            dir: at.to_path_buf(),
        };
        nix::mount::mount(
            None::<&str>,
            at,
            None::<&str>,
            nix::mount::MsFlags::MS_REMOUNT
                | nix::mount::MsFlags::MS_BIND
                | nix::mount::MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .unwrap_or_else(|e| panic!("remount {} read-only: {e}", at.display()));
        view
    }

    /// Fills it up with `name`: writes until the filesystem says ENOSPC.
    /// Returns the bytes written.
    pub fn fill(&self, name: &str) -> u64 {
        use std::io::Write as _;
        let mut f = std::fs::File::create(self.dir.join(name)).unwrap();
        let chunk = [b'x'; 512];
        let mut written = 0u64;
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", self.dir.display()),
            }
        }
        written
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.dir, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&self.dir);
    }
}
