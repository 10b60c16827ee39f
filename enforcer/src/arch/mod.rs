//! The CPU architectures enforcer runs on, and their syscall tables.
//!
//! Syscall numbers differ per architecture (`personality` is 135 on x86_64
//! and 92 on aarch64), and some names exist on one only (`fork`, `open`,
//! `poll` are x86_64 syscalls; aarch64 has only `clone`, `openat`, `ppoll`).
//! A policy names syscalls; [`Arch`] turns a name into this architecture's
//! number, a number back into a name, and says what to write instead of a
//! name the architecture lacks. Each 64-bit architecture also runs 32-bit
//! processes through a compat table ([`Abi::Compat`]): i386 on x86_64,
//! arm32 (AArch32, ARM EABI) on aarch64.
//!
//! The tables are the `syscalls` crate's, with two corrections to its
//! aarch64 table, which follows the generic table without the kernel's
//! 64-bit switches: number 79 is `newfstatat` (the crate says `fstatat`), and
//! the `*_time64` calls 403 to 423 exist only for 32-bit ABIs.

mod replacement;

use std::fmt;
use std::str::FromStr;

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("enforcer supports x86_64 and aarch64 hosts only");

/// A 64-bit architecture enforcer runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    X86_64,
    Aarch64,
}

/// Through which table a syscall was made: the architecture's own, or the
/// 32-bit compat one (`int 0x80` on x86_64, an AArch32 task on aarch64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Abi {
    #[default]
    Native,
    Compat,
}

impl Abi {
    /// The ABI of a `SYSCALLS` key (`enforcer_common::syscall_abi`).
    pub const fn of_key(abi: u32) -> Abi {
        if abi == enforcer_common::syscall_abi::COMPAT {
            Abi::Compat
        } else {
            Abi::Native
        }
    }
}

/// A syscall as the kernel counted it: its number in the table of its ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SyscallId {
    pub abi: Abi,
    pub nr: u32,
}

impl SyscallId {
    pub const fn native(nr: u32) -> Self {
        SyscallId {
            abi: Abi::Native,
            nr,
        }
    }

    pub const fn compat(nr: u32) -> Self {
        SyscallId {
            abi: Abi::Compat,
            nr,
        }
    }

    /// The syscall a `SYSCALLS` key counts.
    pub const fn of_key(key: &enforcer_common::SyscallKey) -> Self {
        SyscallId {
            abi: Abi::of_key(key.abi),
            nr: key.nr,
        }
    }

    /// The `SYSCALLS` key that counts it for `cgroup_id`.
    pub const fn key(self, cgroup_id: u64) -> enforcer_common::SyscallKey {
        let abi = match self.abi {
            Abi::Native => enforcer_common::syscall_abi::NATIVE,
            Abi::Compat => enforcer_common::syscall_abi::COMPAT,
        };
        enforcer_common::SyscallKey::with_abi(cgroup_id, self.nr, abi)
    }

    /// How reports name it on a node of architecture `arch`: the syscall's
    /// name (`getppid`), prefixed with the compat ABI for a 32-bit call
    /// (`i386:getppid`, `arm32:getppid`); `syscall_N` for a number the
    /// table does not have; `invalid` for the key every number beyond the
    /// tables is counted under (`enforcer_common::SYSCALL_NR_INVALID`).
    pub fn label(self, arch: Arch) -> String {
        let name = if self.nr == enforcer_common::SYSCALL_NR_INVALID {
            "invalid".to_string()
        } else {
            arch.name_in(self.abi, self.nr)
                .map(str::to_string)
                .unwrap_or_else(|| format!("syscall_{}", self.nr))
        };
        match self.abi {
            Abi::Native => name,
            Abi::Compat => format!("{}:{name}", arch.compat_name()),
        }
    }
}

/// Every architecture, for messages and tests.
pub const ARCHES: [Arch; 2] = [Arch::X86_64, Arch::Aarch64];

/// The aarch64 numbers of the `*_time64` calls, which the crate's generic
/// table lists but a 64-bit kernel does not have.
const AARCH64_TIME64: std::ops::RangeInclusive<u32> = 403..=423;

impl Arch {
    /// The architecture this binary was built for (the node it runs on).
    pub const fn host() -> Arch {
        if cfg!(target_arch = "aarch64") {
            Arch::Aarch64
        } else {
            Arch::X86_64
        }
    }

    /// As `uname -m` says it.
    pub const fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// Name of the 32-bit compat ABI the architecture runs.
    pub const fn compat_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "i386",
            Arch::Aarch64 => "arm32",
        }
    }

    /// Name of `abi` on this architecture (`x86_64`, `i386`, `aarch64`, `arm32`).
    pub const fn abi_name(self, abi: Abi) -> &'static str {
        match abi {
            Abi::Native => self.name(),
            Abi::Compat => self.compat_name(),
        }
    }

    /// This architecture's number of syscall `name`, if it has one.
    pub fn number(self, name: &str) -> Option<u32> {
        match self {
            Arch::X86_64 => syscalls::x86_64::Sysno::from_str(name)
                .ok()
                .map(|s| s.id() as u32),
            Arch::Aarch64 => {
                let crate_name = match name {
                    "newfstatat" => "fstatat",
                    "fstatat" => return None,
                    n => n,
                };
                syscalls::aarch64::Sysno::from_str(crate_name)
                    .ok()
                    .map(|s| s.id() as u32)
                    .filter(|nr| !AARCH64_TIME64.contains(nr))
            }
        }
    }

    /// The name of syscall `nr` of this architecture's own table.
    pub fn name_of(self, nr: u32) -> Option<&'static str> {
        let nr_usize = usize::try_from(nr).ok()?;
        match self {
            Arch::X86_64 => syscalls::x86_64::Sysno::new(nr_usize).map(|s| s.name()),
            Arch::Aarch64 if AARCH64_TIME64.contains(&nr) => None,
            Arch::Aarch64 => syscalls::aarch64::Sysno::new(nr_usize).map(|s| match s.name() {
                "fstatat" => "newfstatat",
                n => n,
            }),
        }
    }

    /// The name of syscall `nr` of the compat (32-bit) table.
    pub fn compat_name_of(self, nr: u32) -> Option<&'static str> {
        let nr = usize::try_from(nr).ok()?;
        match self {
            Arch::X86_64 => syscalls::x86::Sysno::new(nr).map(|s| s.name()),
            Arch::Aarch64 => syscalls::arm::Sysno::new(nr).map(|s| s.name()),
        }
    }

    /// The name of `nr` made through `abi`.
    pub fn name_in(self, abi: Abi, nr: u32) -> Option<&'static str> {
        match abi {
            Abi::Native => self.name_of(nr),
            Abi::Compat => self.compat_name_of(nr),
        }
    }

    /// Every syscall name of this architecture's own table, in number order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        (0..1024u32).filter_map(move |nr| self.name_of(nr))
    }

    /// The compat numbers a rule naming this architecture's syscall `name`
    /// covers: the same name, its `32`/`64`/`_time64` variants (`chown32`,
    /// `fcntl64`, `clock_gettime64`), `mmap2` for `mmap`, `fstatat64` for
    /// `newfstatat`, ARM's renamed calls, and on i386 the multiplexers
    /// `socketcall`/`ipc` for the calls they carry (so a rule on `connect`
    /// also catches every `socketcall` of an i386 process: coarser, never
    /// weaker).
    pub fn compat_numbers(self, name: &str) -> Vec<u32> {
        let mut names = vec![
            name.to_string(),
            format!("{name}32"),
            format!("{name}64"),
            format!("{name}_time64"),
        ];
        match name {
            "mmap" => names.push("mmap2".into()),
            "newfstatat" => names.push("fstatat64".into()),
            _ => {}
        }
        match self {
            Arch::X86_64 => {
                match name {
                    "shmctl" => names.push("ipc".into()),
                    n if SOCKETCALL.contains(&n) => names.push("socketcall".into()),
                    n if IPC.contains(&n) => names.push("ipc".into()),
                    _ => {}
                }
                names
                    .iter()
                    .filter_map(|n| syscalls::x86::Sysno::from_str(n).ok())
                    .map(|s| s.id() as u32)
                    .collect()
            }
            Arch::Aarch64 => {
                match name {
                    "fadvise64" => names.push("arm_fadvise64_64".into()),
                    "sync_file_range" => names.push("arm_sync_file_range".into()),
                    _ => {}
                }
                names
                    .iter()
                    .filter_map(|n| syscalls::arm::Sysno::from_str(n).ok())
                    .map(|s| s.id() as u32)
                    .collect()
            }
        }
    }

    /// Why `name` cannot be used on this architecture, if it cannot: it is
    /// not in its table (`"fork" does not exist on aarch64; use "clone"`).
    pub fn check(self, name: &str) -> Result<u32, String> {
        if let Some(nr) = self.number(name) {
            return Ok(nr);
        }
        let instead = match replacement::replacement(name).filter(|r| self.number(r).is_some()) {
            Some(r) => format!("use \"{r}\""),
            None => format!(
                "it has no equivalent there; remove it from the list for {} nodes",
                self.name()
            ),
        };
        Err(format!(
            "\"{name}\" does not exist on {}; {instead}",
            self.name()
        ))
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Arch {
    type Err = String;

    /// `x86_64` or `aarch64`, or Debian's names `amd64` and `arm64`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "x86_64" | "amd64" => Ok(Arch::X86_64),
            "aarch64" | "arm64" => Ok(Arch::Aarch64),
            _ => Err(format!(
                "unknown architecture `{s}`: write x86_64 (amd64) or aarch64 (arm64)"
            )),
        }
    }
}

/// A syscall name that exists on at least one architecture enforcer runs on.
/// Whether it exists on the node that enforces it is the plan's question
/// ([`Arch::check`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SyscallName(&'static str);

impl SyscallName {
    pub const fn name(self) -> &'static str {
        self.0
    }

    /// Every known name (of any architecture), sorted, each once.
    pub fn all() -> Vec<&'static str> {
        let mut names: Vec<&'static str> = ARCHES.iter().flat_map(|a| a.names()).collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}

impl FromStr for SyscallName {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        ARCHES
            .iter()
            .find_map(|a| {
                let nr = a.number(s)?;
                a.name_of(nr)
            })
            .map(SyscallName)
            .ok_or(())
    }
}

impl fmt::Debug for SyscallName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Display for SyscallName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Syscalls that i386 processes may make through `socketcall(2)`.
const SOCKETCALL: [&str; 20] = [
    "socket",
    "bind",
    "connect",
    "listen",
    "accept",
    "accept4",
    "getsockname",
    "getpeername",
    "socketpair",
    "send",
    "sendto",
    "recv",
    "recvfrom",
    "shutdown",
    "setsockopt",
    "getsockopt",
    "sendmsg",
    "recvmsg",
    "sendmmsg",
    "recvmmsg",
];

/// System V IPC calls that i386 processes may make through `ipc(2)`.
const IPC: [&str; 11] = [
    "semop",
    "semget",
    "semctl",
    "semtimedop",
    "msgsnd",
    "msgrcv",
    "msgget",
    "msgctl",
    "shmat",
    "shmdt",
    "shmget",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_differ_per_architecture() {
        assert_eq!(Arch::X86_64.number("personality"), Some(135));
        assert_eq!(Arch::Aarch64.number("personality"), Some(92));
        assert_eq!(Arch::X86_64.number("getppid"), Some(110));
        assert_eq!(Arch::Aarch64.number("getppid"), Some(173));
        assert_eq!(Arch::Aarch64.name_of(173), Some("getppid"));
        assert_eq!(Arch::X86_64.name_of(173), Some("ioperm"));
        assert_eq!(Arch::X86_64.compat_name_of(136), Some("personality"));
        assert_eq!(Arch::Aarch64.compat_name_of(136), Some("personality"));
        assert_eq!(Arch::Aarch64.compat_name_of(64), Some("getppid"));
        assert_eq!(Arch::Aarch64.abi_name(Abi::Compat), "arm32");
        assert_eq!(Arch::X86_64.abi_name(Abi::Compat), "i386");
    }

    /// The kernel's names, not the crate's generic table's.
    #[test]
    fn aarch64_corrections() {
        assert_eq!(Arch::Aarch64.number("newfstatat"), Some(79));
        assert_eq!(Arch::Aarch64.name_of(79), Some("newfstatat"));
        assert_eq!(Arch::Aarch64.number("fstatat"), None);
        assert_eq!(Arch::Aarch64.number("clock_gettime64"), None);
        assert_eq!(Arch::Aarch64.name_of(403), None);
        assert_eq!(Arch::Aarch64.number("pidfd_send_signal"), Some(424));
        assert!(!Arch::Aarch64.names().any(|n| n.ends_with("_time64")));
        assert_eq!(Arch::X86_64.number("newfstatat"), Some(262));
    }

    #[test]
    fn names_missing_on_a_target_are_refused_with_a_replacement() {
        assert_eq!(
            Arch::Aarch64.check("fork"),
            Err("\"fork\" does not exist on aarch64; use \"clone\"".to_string())
        );
        assert_eq!(
            Arch::Aarch64.check("open"),
            Err("\"open\" does not exist on aarch64; use \"openat\"".to_string())
        );
        let e = Arch::Aarch64.check("arch_prctl").unwrap_err();
        assert!(
            e.starts_with("\"arch_prctl\" does not exist on aarch64; it has no equivalent"),
            "{e}"
        );
        assert_eq!(Arch::Aarch64.check("clone"), Ok(220));
        assert_eq!(Arch::X86_64.check("fork"), Ok(57));
    }

    /// Every x86_64 name aarch64 lacks has been looked at: it has a
    /// replacement that aarch64 has, or is listed as having none.
    #[test]
    fn every_missing_name_is_accounted_for() {
        for name in Arch::X86_64.names() {
            if Arch::Aarch64.number(name).is_some() {
                continue;
            }
            match replacement::replacement(name) {
                Some(r) => assert!(
                    Arch::Aarch64.number(r).is_some(),
                    "{name}'s replacement {r} is not an aarch64 syscall"
                ),
                None => assert!(
                    replacement::NONE.contains(&name),
                    "{name} is missing on aarch64 and has no replacement entry"
                ),
            }
        }
        // And aarch64 has nothing x86_64 lacks.
        for name in Arch::Aarch64.names() {
            assert!(Arch::X86_64.number(name).is_some(), "{name}");
        }
    }

    #[test]
    fn compat_numbers_cover_variants() {
        // i386: personality, socketcall for connect, mmap2 for mmap.
        assert_eq!(Arch::X86_64.compat_numbers("personality"), [136]);
        assert!(Arch::X86_64.compat_numbers("connect").contains(&102));
        assert!(Arch::X86_64.compat_numbers("mmap").contains(&192));
        // arm32: getuid and getuid32, mmap2, no multiplexers.
        assert_eq!(Arch::Aarch64.compat_numbers("getuid"), [24, 199]);
        assert_eq!(Arch::Aarch64.compat_numbers("mmap"), [192]);
        assert_eq!(Arch::Aarch64.compat_numbers("connect"), [283]);
        assert_eq!(Arch::Aarch64.compat_numbers("fadvise64"), [270]);
    }

    /// README: on i386 a rule on `NAME` also matches `socketcall`/`ipc`.
    /// Every System V IPC call an i386 process may make through `ipc(2)`
    /// is matched by that multiplexer's number, as every socket call is by
    /// `socketcall`'s; calls carried by neither are matched by neither.
    #[test]
    fn i386_ipc_calls_also_match_the_ipc_multiplexer_as_socket_calls_match_socketcall() {
        use syscalls::x86::Sysno;
        let ipc = Sysno::ipc.id() as u32;
        let socketcall = Sysno::socketcall.id() as u32;
        assert_eq!((ipc, socketcall), (117, 102), "i386's numbers");
        let sysv = [
            "semop",
            "semget",
            "semctl",
            "semtimedop",
            "msgsnd",
            "msgrcv",
            "msgget",
            "msgctl",
            "shmat",
            "shmdt",
            "shmget",
            "shmctl",
        ];
        for name in sysv {
            let nrs = Arch::X86_64.compat_numbers(name);
            assert!(nrs.contains(&ipc), "{name}: {nrs:?} lacks ipc ({ipc})");
            assert!(!nrs.contains(&socketcall), "{name}: {nrs:?}");
        }
        // The direct i386 call too, where i386 has one (Linux 5.1 on).
        assert!(
            Arch::X86_64
                .compat_numbers("shmat")
                .contains(&(Sysno::shmat.id() as u32))
        );
        for name in SOCKETCALL {
            let nrs = Arch::X86_64.compat_numbers(name);
            assert!(nrs.contains(&socketcall), "{name}: {nrs:?}");
            assert!(!nrs.contains(&ipc), "{name}: {nrs:?}");
        }
        for name in ["getpid", "read", "mmap", "personality"] {
            let nrs = Arch::X86_64.compat_numbers(name);
            assert!(
                !nrs.contains(&ipc) && !nrs.contains(&socketcall),
                "{name}: {nrs:?}"
            );
        }
        // arm32 has no multiplexers: only the call's own number.
        assert_eq!(
            Arch::Aarch64.compat_numbers("semop"),
            [syscalls::arm::Sysno::semop.id() as u32]
        );
    }

    #[test]
    fn ids_and_keys_convert_both_ways() {
        for id in [SyscallId::native(110), SyscallId::compat(64)] {
            assert_eq!(SyscallId::of_key(&id.key(7)), id);
            assert_eq!(id.key(7).cgroup_id, 7);
        }
    }

    #[test]
    fn labels_name_the_compat_abi() {
        assert_eq!(SyscallId::native(110).label(Arch::X86_64), "getppid");
        assert_eq!(SyscallId::native(173).label(Arch::Aarch64), "getppid");
        assert_eq!(SyscallId::compat(64).label(Arch::X86_64), "i386:getppid");
        assert_eq!(SyscallId::compat(64).label(Arch::Aarch64), "arm32:getppid");
        assert_eq!(
            SyscallId::native(100_000).label(Arch::X86_64),
            "syscall_100000"
        );
        assert_eq!(
            SyscallId::compat(9999).label(Arch::Aarch64),
            "arm32:syscall_9999"
        );
        let invalid = enforcer_common::counted_nr(100_000);
        assert_eq!(SyscallId::native(invalid).label(Arch::X86_64), "invalid");
        assert_eq!(
            SyscallId::compat(invalid).label(Arch::Aarch64),
            "arm32:invalid"
        );
    }

    #[test]
    fn names_and_arches_parse() {
        assert_eq!("arm64".parse::<Arch>(), Ok(Arch::Aarch64));
        assert_eq!("amd64".parse::<Arch>(), Ok(Arch::X86_64));
        assert!("riscv64".parse::<Arch>().unwrap_err().contains("aarch64"));
        assert_eq!(
            "fork".parse::<SyscallName>().map(SyscallName::name),
            Ok("fork")
        );
        assert_eq!(
            "newfstatat".parse::<SyscallName>().map(SyscallName::name),
            Ok("newfstatat")
        );
        assert!("fstatat".parse::<SyscallName>().is_err());
        assert!(
            "mmap2".parse::<SyscallName>().is_err(),
            "compat-only names are not policy names"
        );
        assert!(SyscallName::all().contains(&"fork"));
    }
}
