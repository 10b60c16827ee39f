//! Measurement programs for `cargo xtask bench accounting` (see BENCHMARKS.md).
//! xtask cannot link the enforcer library (it builds before the eBPF toolchain
//! exists), so it runs these as processes, inside groups via `enforcer exec`.
//! Each prints `key=value` lines on stdout. Every loop is bounded in count and time.
//!
//! ```text
//! bench_accounting getppid --calls N          ns per getppid() over N calls
//! bench_accounting sendmmsg --secs S          64-byte UDP datagrams/s to a loopback socket
//! bench_accounting noop-sys-enter --secs S    attach the empty sys_enter program until stdin closes
//! bench_accounting noop-skb --cgroup DIR --secs S    same for the empty cgroup_skb programs
//! bench_accounting collect --pin-dir DIR --groups N  time reading N synthetic groups' counters
//! ```

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use enforcer::bpf::{self, Kernel, bench};

#[derive(Parser)]
#[command(about = "measurement programs for cargo xtask bench accounting")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Time N getppid() system calls (after 100k untimed ones); prints ns_per_call.
    Getppid {
        #[arg(long, default_value_t = 2_000_000)]
        calls: u64,
        /// Run on this CPU only.
        #[arg(long)]
        cpu: Option<usize>,
    },
    /// Send datagrams with sendmmsg to a UDP socket bound on 127.0.0.1 by this
    /// process (never read, so the kernel drops what overflows its receive
    /// buffer) for SECS seconds after 0.2 s of warm-up; prints datagrams_per_sec.
    Sendmmsg {
        #[arg(long)]
        secs: f64,
        /// Send to this loopback address instead of a socket of our own.
        #[arg(long)]
        to: Option<SocketAddr>,
        /// Payload bytes per datagram.
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Datagrams per sendmmsg call.
        #[arg(long, default_value_t = 64)]
        batch: usize,
    },
    /// Attach the empty raw tracepoint sys_enter program, print its id, and keep
    /// it attached until stdin reaches EOF or SECS seconds passed.
    NoopSysEnter {
        #[arg(long)]
        secs: f64,
        /// The group the syscall levers count (slot 0).
        #[arg(long)]
        cgroup: Option<PathBuf>,
    },
    /// Attach the empty cgroup_skb egress and ingress programs to a cgroup2
    /// directory, as `noop-sys-enter`.
    NoopSkb {
        #[arg(long)]
        cgroup: PathBuf,
        #[arg(long)]
        secs: f64,
    },
    /// Load enforcer's maps pinned under a private PIN_DIR (created), fill them
    /// with N synthetic groups, and time reading all counters REPS times, from
    /// the pins (`bpf::snapshot_pinned`), in process (`Kernel::snapshot`) and
    /// with batch lookups (`bench::snapshot_pinned_batch`, not used by the agent).
    Collect {
        #[arg(long)]
        pin_dir: PathBuf,
        #[arg(long)]
        groups: u64,
        /// (group, syscall) entries per group in SYSCALLS.
        #[arg(long, default_value_t = 3)]
        syscalls_per_group: u32,
        #[arg(long, default_value_t = 9)]
        reps: usize,
        /// Capacity of the per-group maps (buckets a read walks).
        #[arg(long)]
        max_groups: Option<u32>,
        /// Capacity of SYSCALLS.
        #[arg(long)]
        max_syscall_keys: Option<u32>,
        /// Leave the pins for the caller to inspect (and remove with `enforcer stop`).
        #[arg(long)]
        keep: bool,
    },
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Getppid { calls, cpu } => {
            if let Some(cpu) = cpu {
                pin_to(cpu)?;
            }
            getppid(calls)
        }
        Cmd::Sendmmsg {
            secs,
            to,
            size,
            batch,
        } => send(secs, to, size, batch),
        Cmd::NoopSysEnter { secs, cgroup } => {
            let attached = bench::attach_noop_sys_enter(cgroup.as_deref())?;
            hold(&attached, secs)
        }
        Cmd::NoopSkb { cgroup, secs } => {
            let attached = bench::attach_noop_skb(&cgroup)?;
            hold(&attached, secs)
        }
        Cmd::Collect {
            pin_dir,
            groups,
            syscalls_per_group,
            reps,
            keep,
            max_groups,
            max_syscall_keys,
        } => {
            let d = bpf::Capacity::default();
            let capacity = bpf::Capacity {
                groups: max_groups.unwrap_or(d.groups),
                syscall_keys: max_syscall_keys.unwrap_or(d.syscall_keys),
                ..d
            };
            let result = collect(&pin_dir, groups, syscalls_per_group, reps, &capacity);
            if !keep || result.is_err() {
                bpf::unpin_all(&pin_dir)?;
                // unpin_all leaves the directory; this one is private to the run.
                match std::fs::remove_dir(&pin_dir) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(e.into());
                    }
                    _ => {}
                }
            }
            result
        }
    }
}

fn pin_to(cpu: usize) -> Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        bail!("no CPU {cpu}");
    }
    // SAFETY: cpu_set_t is a plain bit array; CPU_SET stays within it (checked
    // above); sched_setaffinity reads `set` only.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        bail!(
            "cannot run on CPU {cpu}: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

fn getppid(calls: u64) -> Result<()> {
    let call = || {
        // SAFETY: getppid takes no arguments and cannot fail.
        unsafe { libc::syscall(libc::SYS_getppid) }
    };
    for _ in 0..100_000 {
        std::hint::black_box(call());
    }
    let start = Instant::now();
    for _ in 0..calls {
        std::hint::black_box(call());
    }
    let took = start.elapsed();
    println!(
        "ns_per_call={:.2}",
        took.as_nanos() as f64 / calls.max(1) as f64
    );
    Ok(())
}

fn send(secs: f64, to: Option<SocketAddr>, size: usize, batch: usize) -> Result<()> {
    if !(0.0..=60.0).contains(&secs) || batch == 0 || batch > 1024 || size > 65_000 {
        bail!("--secs must be in 0..=60, --batch in 1..=1024, --size at most 65000");
    }
    let receiver = UdpSocket::bind("127.0.0.1:0").context("binding the receiver")?;
    let to = to.unwrap_or(receiver.local_addr()?);
    if !to.ip().is_loopback() {
        bail!("{to} is not a loopback address: this benchmark sends to loopback only");
    }
    let sender = UdpSocket::bind("127.0.0.1:0").context("binding the sender")?;
    sender.connect(to).context("connecting the sender")?;
    let payload = vec![0x5au8; size];
    let mut iov = libc::iovec {
        iov_base: payload.as_ptr() as *mut libc::c_void,
        iov_len: size,
    };
    // SAFETY: mmsghdr is plain data; all-zero is a valid value (no name, no control).
    let mut msgs: Vec<libc::mmsghdr> = (0..batch).map(|_| unsafe { std::mem::zeroed() }).collect();
    for m in &mut msgs {
        m.msg_hdr.msg_iov = &raw mut iov;
        m.msg_hdr.msg_iovlen = 1;
    }
    let fd = sender.as_raw_fd();
    let mut run = |dur: Duration| -> Result<(u64, Duration)> {
        // Bound in count too: 20M datagrams a second is far above this host's rate.
        let cap = (dur.as_secs_f64() * 20e6) as u64 + batch as u64;
        let mut sent = 0u64;
        let mut errors = 0u64;
        let start = Instant::now();
        while start.elapsed() < dur && sent < cap {
            // SAFETY: `msgs` holds `batch` initialised headers whose single iovec
            // points at `payload`, all alive for the call; the kernel only reads them
            // (and writes msg_len).
            let n = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), batch as u32, 0) };
            if n < 0 {
                errors += 1;
                if errors > 1000 {
                    bail!(
                        "sendmmsg keeps failing: {}",
                        std::io::Error::last_os_error()
                    );
                }
            } else {
                sent += n as u64;
            }
        }
        Ok((sent, start.elapsed()))
    };
    run(Duration::from_millis(200))?;
    let (sent, took) = run(Duration::from_secs_f64(secs))?;
    drop(receiver);
    println!(
        "datagrams_per_sec={:.0}\nsent={sent}",
        sent as f64 / took.as_secs_f64()
    );
    Ok(())
}

/// Prints the programs' ids, then keeps them attached until stdin closes or
/// `secs` passed (the bound in case the caller forgets us). Exiting closes the
/// last fds of the links, which detaches them.
fn hold(attached: &bench::Attached, secs: f64) -> Result<()> {
    for (name, id) in attached.programs() {
        println!("prog {name} {id}");
    }
    println!("ready");
    std::io::stdout().flush()?;
    let secs = secs.clamp(0.0, 3600.0);
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs_f64(secs));
        std::process::exit(0);
    });
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    Ok(())
}

fn collect(
    pin_dir: &Path,
    groups: u64,
    syscalls_per_group: u32,
    reps: usize,
    capacity: &bpf::Capacity,
) -> Result<()> {
    if pin_dir.starts_with(bpf::DEFAULT_PIN_DIR) {
        bail!("use a private pin directory, not the agent's");
    }
    let kernel = Kernel::open_with(pin_dir, capacity)?;
    // Synthetic ids far above real cgroup2 inode numbers.
    let ids: Vec<u64> = (0..groups).map(|i| (1u64 << 48) + i).collect();
    let populated = bench::populate_pinned(pin_dir, &ids, syscalls_per_group)?;
    println!(
        "group_entries={}\nsyscall_entries={}",
        populated.group_entries, populated.syscall_entries
    );
    let mut pinned = Vec::new();
    let mut in_process = Vec::new();
    let mut batched = Vec::new();
    for _ in 0..reps.clamp(1, 100) {
        let start = Instant::now();
        let snap = bpf::snapshot_pinned(pin_dir)?;
        pinned.push(start.elapsed().as_secs_f64() * 1e3);
        if snap.groups.len() < populated.group_entries {
            bail!(
                "read {} groups, wrote {}",
                snap.groups.len(),
                populated.group_entries
            );
        }
        let start = Instant::now();
        let in_proc = kernel.snapshot()?;
        in_process.push(start.elapsed().as_secs_f64() * 1e3);
        let start = Instant::now();
        let batch = bench::snapshot_pinned_batch(pin_dir)?;
        batched.push(start.elapsed().as_secs_f64() * 1e3);
        // The counters must agree; the map fill figures beside them differ
        // by design (the pinned reader knows no capacity knob).
        if in_proc.groups != snap.groups || batch.groups != snap.groups {
            bail!("the three ways of reading the counters disagree");
        }
    }
    println!("snapshot_pinned_ms={}", join(&pinned));
    println!("kernel_snapshot_ms={}", join(&in_process));
    println!("batch_lookup_ms={}", join(&batched));
    Ok(())
}

fn join(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.3}"))
        .collect::<Vec<_>>()
        .join(",")
}
