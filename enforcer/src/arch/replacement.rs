//! What to write instead of a syscall an architecture lacks. Newer
//! architectures (aarch64) have only the `*at`, `*2`, `p*` forms of calls
//! that x86_64 keeps for compatibility; a rule on the old name means the
//! call that does its work there. Hand-written: no crate maps old calls to
//! their successors. `Arch::check` only offers a replacement the target has.

/// The call that does `name`'s work on architectures without it.
pub(super) fn replacement(name: &str) -> Option<&'static str> {
    Some(match name {
        "fork" | "vfork" => "clone",
        "open" | "creat" => "openat",
        "access" => "faccessat",
        "alarm" => "setitimer",
        "chmod" => "fchmodat",
        "chown" | "lchown" => "fchownat",
        "dup2" => "dup3",
        "epoll_create" => "epoll_create1",
        "epoll_wait" => "epoll_pwait",
        "eventfd" => "eventfd2",
        "futimesat" | "utime" | "utimes" => "utimensat",
        "getdents" => "getdents64",
        "getpgrp" => "getpgid",
        "inotify_init" => "inotify_init1",
        "link" => "linkat",
        "stat" | "lstat" => "newfstatat",
        "mkdir" => "mkdirat",
        "mknod" => "mknodat",
        "pause" => "rt_sigsuspend",
        "pipe" => "pipe2",
        "poll" => "ppoll",
        "readlink" => "readlinkat",
        "rename" => "renameat2",
        "rmdir" | "unlink" => "unlinkat",
        "select" => "pselect6",
        "signalfd" => "signalfd4",
        "symlink" => "symlinkat",
        "time" => "clock_gettime",
        _ => return None,
    })
}

/// x86_64 calls with no counterpart on aarch64 (x86 hardware, removed or
/// never implemented calls); listed so a test notices a new one.
#[cfg(test)]
pub(super) const NONE: &[&str] = &[
    "_sysctl",
    "afs_syscall",
    "arch_prctl",
    "create_module",
    "epoll_ctl_old",
    "epoll_wait_old",
    "get_kernel_syms",
    "get_thread_area",
    "getpmsg",
    "ioperm",
    "iopl",
    "modify_ldt",
    "putpmsg",
    "query_module",
    "security",
    "set_thread_area",
    "sysfs",
    "tuxcall",
    "uprobe",
    "uretprobe",
    "uselib",
    "ustat",
    "vserver",
];
