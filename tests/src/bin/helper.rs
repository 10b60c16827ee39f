//! A small workload binary for the end-to-end tests, so tests do not depend on
//! what shell utilities a host has. Each subcommand does one exact, countable thing.
//!
//!   udp-send ADDR COUNT PAYLOAD   send COUNT datagrams of PAYLOAD bytes to ADDR
//!   udp-recv ADDR COUNT           bind ADDR (port 0: any), print the bound address
//!                                 on a line, receive COUNT datagrams (10 s timeout),
//!                                 print "received N datagrams B bytes"
//!   tcp-recv ADDR                 listen on ADDR, print the bound address, accept
//!                                 one connection, read it to EOF, print "received B bytes"
//!   tcp-send ADDR BYTES           connect to ADDR, write BYTES bytes, close
//!   sockaddr K                    K times each: bind a UDP socket to 127.0.0.1:0 and
//!                                 connect it to 127.0.0.1:9, same on [::1] (K bind4,
//!                                 K connect4, K bind6, K connect6; nothing is sent)
//!   getppid K                     make exactly K getppid(2) calls
//!   alloc BYTES                   touch BYTES of fresh anonymous memory, then exit
//!   sleep SECS                    sleep (a process to classify, freeze or kill)
//!   bpf-attach-and-die PIN_DIR CGROUP2_DIR ADDR COUNT PAYLOAD K
//!                                 open enforcer's Kernel on PIN_DIR, attach it to
//!                                 CGROUP2_DIR and the tracepoints, count syscalls of
//!                                 that group only, move itself into the group, make K
//!                                 getppid calls, send COUNT datagrams of PAYLOAD
//!                                 bytes to ADDR, then SIGKILL itself (an agent crash)

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> Result<T, String> {
    args.get(i)
        .ok_or_else(|| format!("missing {what}"))?
        .parse()
        .map_err(|_| format!("bad {what}: {:?}", args.get(i)))
}

fn udp_send(addr: &str, count: usize, size: usize) -> Result<(), String> {
    let bind = if addr.starts_with('[') {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    };
    let sock = UdpSocket::bind(bind).map_err(|e| e.to_string())?;
    let buf = vec![0x5au8; size];
    for _ in 0..count {
        sock.send_to(&buf, addr).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Prints the line and flushes, so a parent reading our stdout sees it at once.
fn announce(line: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| e.to_string())
}

fn getppid(k: u64) {
    for _ in 0..k {
        // SAFETY: getppid has no preconditions.
        unsafe { libc::syscall(libc::SYS_getppid) };
    }
}

fn run(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("udp-send") => {
            let addr: String = arg(args, 1, "ADDR")?;
            let count: usize = arg(args, 2, "COUNT")?;
            let size: usize = arg(args, 3, "PAYLOAD")?;
            udp_send(&addr, count, size)
        }
        Some("udp-recv") => {
            let addr: String = arg(args, 1, "ADDR")?;
            let count: usize = arg(args, 2, "COUNT")?;
            let sock = UdpSocket::bind(&addr).map_err(|e| e.to_string())?;
            // A large receive buffer so a fast sender on loopback cannot overflow
            // it (SO_RCVBUFFORCE needs CAP_NET_ADMIN; fall back to SO_RCVBUF).
            let size: libc::c_int = 16 << 20;
            for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
                // SAFETY: valid fd and a c_int option value of the right size.
                let rc = unsafe {
                    libc::setsockopt(
                        sock.as_raw_fd(),
                        libc::SOL_SOCKET,
                        opt,
                        std::ptr::from_ref(&size).cast(),
                        size_of::<libc::c_int>() as libc::socklen_t,
                    )
                };
                if rc == 0 {
                    break;
                }
            }
            sock.set_read_timeout(Some(Duration::from_secs(10)))
                .map_err(|e| e.to_string())?;
            announce(&sock.local_addr().map_err(|e| e.to_string())?.to_string())?;
            let mut buf = vec![0u8; 65536];
            let (mut n, mut bytes) = (0usize, 0usize);
            while n < count {
                match sock.recv(&mut buf) {
                    Ok(len) => {
                        n += 1;
                        bytes += len;
                    }
                    Err(e) => return Err(format!("after {n} datagrams: {e}")),
                }
            }
            announce(&format!("received {n} datagrams {bytes} bytes"))
        }
        Some("tcp-recv") => {
            let addr: String = arg(args, 1, "ADDR")?;
            let listener = TcpListener::bind(&addr).map_err(|e| e.to_string())?;
            announce(
                &listener
                    .local_addr()
                    .map_err(|e| e.to_string())?
                    .to_string(),
            )?;
            let (mut conn, _) = listener.accept().map_err(|e| e.to_string())?;
            conn.set_read_timeout(Some(Duration::from_secs(20)))
                .map_err(|e| e.to_string())?;
            let mut buf = vec![0u8; 1 << 16];
            let mut total = 0usize;
            loop {
                match conn.read(&mut buf) {
                    Ok(0) => break,
                    Ok(len) => total += len,
                    Err(e) => return Err(format!("after {total} bytes: {e}")),
                }
            }
            announce(&format!("received {total} bytes"))
        }
        Some("tcp-send") => {
            let addr: String = arg(args, 1, "ADDR")?;
            let bytes: usize = arg(args, 2, "BYTES")?;
            let mut conn = TcpStream::connect(&addr).map_err(|e| e.to_string())?;
            conn.write_all(&vec![0x5au8; bytes])
                .map_err(|e| e.to_string())?;
            conn.shutdown(std::net::Shutdown::Write)
                .map_err(|e| e.to_string())?;
            // Wait for the peer's close so the whole exchange is over when we exit.
            let mut rest = Vec::new();
            conn.read_to_end(&mut rest).map_err(|e| e.to_string())?;
            Ok(())
        }
        Some("sockaddr") => {
            let k: usize = arg(args, 1, "K")?;
            for _ in 0..k {
                let v4 = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
                v4.connect("127.0.0.1:9").map_err(|e| e.to_string())?;
                let v6 = UdpSocket::bind("[::1]:0").map_err(|e| e.to_string())?;
                v6.connect("[::1]:9").map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        Some("getppid") => {
            let k: u64 = arg(args, 1, "K")?;
            getppid(k);
            Ok(())
        }
        Some("alloc") => {
            let bytes: usize = arg(args, 1, "BYTES")?;
            let mut v = vec![0u8; bytes];
            // Touch every page so the memory is really charged to the cgroup.
            for i in (0..bytes).step_by(4096) {
                v[i] = 1;
            }
            std::hint::black_box(&v);
            Ok(())
        }
        Some("sleep") => {
            let secs: u64 = arg(args, 1, "SECS")?;
            std::thread::sleep(Duration::from_secs(secs));
            Ok(())
        }
        Some("bpf-attach-and-die") => {
            let pin_dir: String = arg(args, 1, "PIN_DIR")?;
            let cgroup: String = arg(args, 2, "CGROUP2_DIR")?;
            let addr: String = arg(args, 3, "ADDR")?;
            let count: usize = arg(args, 4, "COUNT")?;
            let size: usize = arg(args, 5, "PAYLOAD")?;
            let k: u64 = arg(args, 6, "K")?;
            let cgroup = Path::new(&cgroup);
            let mut kernel =
                enforcer::bpf::Kernel::open(Path::new(&pin_dir)).map_err(|e| format!("{e:?}"))?;
            let id = enforcer::bpf::cgroup_id(cgroup).map_err(|e| e.to_string())?;
            let group_links = kernel.attach_group(cgroup).map_err(|e| format!("{e:?}"))?;
            let tracing_links = kernel.attach_tracing().map_err(|e| format!("{e:?}"))?;
            kernel
                .set_syscall_scope(enforcer::bpf::SyscallScope::Groups(vec![id]))
                .map_err(|e| format!("{e:?}"))?;
            announce(&format!("attached {group_links} {tracing_links}"))?;
            std::fs::write(cgroup.join("cgroup.procs"), "0").map_err(|e| e.to_string())?;
            getppid(k);
            udp_send(&addr, count, size)?;
            // Die like a crashed agent: no destructors, no cleanup.
            // SAFETY: raise has no memory-safety preconditions.
            unsafe { libc::raise(libc::SIGKILL) };
            Err("still alive after SIGKILL".into())
        }
        _ => Err(
            "usage: enforcer-test-helper udp-send|udp-recv|tcp-send|tcp-recv|sockaddr|\
                  getppid|alloc|sleep|bpf-attach-and-die ..."
                .into(),
        ),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("enforcer-test-helper: {e}");
            ExitCode::from(2)
        }
    }
}
