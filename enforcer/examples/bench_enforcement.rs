//! Measurement programs for `cargo xtask bench enforcement` (see BENCHMARKS.md).
//! xtask cannot link the enforcer library, so it runs these as processes (the
//! connect loop inside the group via `enforcer exec`). Each prints `key=value`
//! lines on stdout. Every loop is bounded in count and time.
//!
//! ```text
//! bench_enforcement load-rules --pin-dir P --cgroup DIR --rules N [--rate BPS --budget BYTES] [--counting]
//!     attach the enforce_* programs (and with --counting the counting ones) to DIR,
//!     load N non-matching connect deny rules (and limits), print `ready`, hold until
//!     stdin closes (or --secs), then detach, clear and unpin everything under P
//! bench_enforcement connect-loop --addr 127.0.0.1:9 --iters N [--tcp]
//!     ns per connect(): UDP re-connects one socket; TCP makes a socket, connects
//!     (to a closed port: ECONNREFUSED) and closes it, per iteration
//! ```

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use enforcer::bpf::{self, GroupRules, Kernel, Limits};
use enforcer::plan::{Access, AccessList, IpNet, NetRule, Proto, Span};

#[derive(Parser)]
#[command(about = "measurement programs for cargo xtask bench enforcement")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Attach enforcement to a cgroup2 directory, load N connect deny rules that
    /// do not match 127.0.0.1:9, and hold until stdin closes.
    LoadRules {
        /// Private pin directory on bpffs (never the agent's).
        #[arg(long)]
        pin_dir: PathBuf,
        /// The group's cgroup2 directory.
        #[arg(long)]
        cgroup: PathBuf,
        /// Number of connect deny rules (0 loads no address list).
        #[arg(long)]
        rules: usize,
        /// Egress and ingress rate limit, bytes per second.
        #[arg(long)]
        rate: Option<u64>,
        /// Egress and ingress budget, bytes per hour.
        #[arg(long)]
        budget: Option<u64>,
        /// Also attach the counting programs.
        #[arg(long)]
        counting: bool,
        /// Give up holding after this many seconds.
        #[arg(long, default_value_t = 600.0)]
        secs: f64,
    },
    /// Time N connect() calls to ADDR; prints ns_per_connect and the errors seen.
    ConnectLoop {
        #[arg(long)]
        addr: SocketAddrV4,
        #[arg(long)]
        iters: u64,
        /// TCP: socket + connect + close per iteration (else UDP re-connect).
        #[arg(long)]
        tcp: bool,
    },
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::LoadRules {
            pin_dir,
            cgroup,
            rules,
            rate,
            budget,
            counting,
            secs,
        } => {
            if pin_dir.starts_with(bpf::DEFAULT_PIN_DIR) {
                bail!("use a private pin directory, not the agent's");
            }
            let result = load_rules(&pin_dir, &cgroup, rules, rate, budget, counting, secs);
            let unpinned = bpf::unpin_all(&pin_dir);
            result?;
            unpinned?;
            Ok(())
        }
        Cmd::ConnectLoop { addr, iters, tcp } => connect_loop(addr, iters, tcp),
    }
}

/// `N` deny rules, none matching 127.0.0.1:9: the first (up to 8) cover
/// 127.0.0.0/8 on ports 1000.. (so the kernel scans them for 127.0.0.1), the
/// rest are hosts 10.a.b.c port 9.
fn deny_rules(n: usize) -> Vec<NetRule> {
    let span = Span {
        file: Arc::new(PathBuf::from("bench")),
        line: 1,
        column: 1,
    };
    (0..n)
        .map(|i| {
            if i < 8 {
                let port = 1000 + i as u16;
                NetRule {
                    net: IpNet::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), 8).expect("a /8"),
                    ports: Some((port, port)),
                    proto: Proto::Any,
                    span: span.clone(),
                }
            } else {
                let h = (i as u32 + 1).to_be_bytes();
                NetRule {
                    net: IpNet::new(IpAddr::V4(Ipv4Addr::new(10, h[1], h[2], h[3])), 32)
                        .expect("a /32"),
                    ports: Some((9, 9)),
                    proto: Proto::Any,
                    span: span.clone(),
                }
            }
        })
        .collect()
}

fn load_rules(
    pin_dir: &Path,
    cgroup: &Path,
    n: usize,
    rate: Option<u64>,
    budget: Option<u64>,
    counting: bool,
    secs: f64,
) -> Result<()> {
    let mut kernel = Kernel::open(pin_dir)?;
    let attached = kernel.attach_enforcement(cgroup)?;
    println!("enforce_links={attached}");
    if counting {
        println!("counting_links={}", kernel.attach_group(cgroup)?);
    }
    let id = std::fs::metadata(cgroup)
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .with_context(|| format!("{}", cgroup.display()))?;
    let limits = Limits {
        rate,
        budget: budget.map(|b| (b, Duration::from_secs(3600))),
    };
    let span = Span {
        file: Arc::new(PathBuf::from("bench")),
        line: 1,
        column: 1,
    };
    let rules = GroupRules {
        connect: (n > 0).then(|| AccessList {
            mode: Access::Deny,
            rules: deny_rules(n),
            span,
        }),
        egress: limits,
        ingress: limits,
        ..GroupRules::default()
    };
    let t = Instant::now();
    kernel.set_group_rules(id, &rules)?;
    println!("load_ms={:.1}", t.elapsed().as_secs_f64() * 1e3);
    println!("ready");
    std::io::stdout().flush()?;
    let secs = secs.clamp(0.0, 3600.0);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        let _ = tx.send(());
    });
    let _ = rx.recv_timeout(Duration::from_secs_f64(secs));
    kernel.clear_group_rules(id)?;
    kernel.detach_enforcement(cgroup)?;
    if counting {
        kernel.detach_group(cgroup)?;
    }
    Ok(())
}

fn sockaddr(addr: SocketAddrV4) -> libc::sockaddr_in {
    // SAFETY: sockaddr_in is plain data; all zeros is a valid value.
    let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    sa.sin_family = libc::AF_INET as libc::sa_family_t;
    sa.sin_port = addr.port().to_be();
    sa.sin_addr.s_addr = u32::from(*addr.ip()).to_be();
    sa
}

fn connect_loop(addr: SocketAddrV4, iters: u64, tcp: bool) -> Result<()> {
    if iters == 0 || iters > 100_000_000 {
        bail!("--iters must be in 1..=100000000");
    }
    let sa = sockaddr(addr);
    let len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
    let mut errors: std::collections::BTreeMap<i32, u64> = Default::default();
    let deadline = Duration::from_secs(60);
    let one = |fd: i32| -> i32 {
        // SAFETY: `sa` is a valid sockaddr_in of `len` bytes.
        let rc = unsafe { libc::connect(fd, (&raw const sa).cast(), len) };
        if rc == 0 {
            0
        } else {
            std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
        }
    };
    let socket = |ty: i32| -> Result<i32> {
        // SAFETY: plain socket(2) call.
        let fd = unsafe { libc::socket(libc::AF_INET, ty | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            bail!("socket: {}", std::io::Error::last_os_error());
        }
        Ok(fd)
    };
    let close = |fd: i32| {
        // SAFETY: fd is a socket this function opened.
        unsafe { libc::close(fd) };
    };
    let run = |count: u64, errors: &mut std::collections::BTreeMap<i32, u64>| -> Result<f64> {
        let start = Instant::now();
        if tcp {
            for i in 0..count {
                let fd = socket(libc::SOCK_STREAM)?;
                let e = one(fd);
                close(fd);
                *errors.entry(e).or_default() += 1;
                if i % 1024 == 0 && start.elapsed() > deadline {
                    bail!("connect loop exceeded {deadline:?}");
                }
            }
        } else {
            let fd = socket(libc::SOCK_DGRAM)?;
            for i in 0..count {
                let e = one(fd);
                *errors.entry(e).or_default() += 1;
                if i % 1024 == 0 && start.elapsed() > deadline {
                    close(fd);
                    bail!("connect loop exceeded {deadline:?}");
                }
            }
            close(fd);
        }
        Ok(start.elapsed().as_nanos() as f64 / count as f64)
    };
    // Warm-up (untimed, not counted).
    run((iters / 10).max(1), &mut Default::default())?;
    let ns = run(iters, &mut errors)?;
    println!("ns_per_connect={ns:.1}");
    let summary: Vec<String> = errors
        .iter()
        .map(|(e, n)| {
            let name = if *e == 0 {
                "ok".to_owned()
            } else {
                std::io::Error::from_raw_os_error(*e)
                    .kind()
                    .to_string()
                    .replace(' ', "_")
            };
            format!("{name}:{n}")
        })
        .collect();
    println!("results={}", summary.join(","));
    Ok(())
}
