//! A small workload binary for the end-to-end tests, so tests do not depend on
//! what shell utilities a host has. Each subcommand does one exact, countable thing.
//!
//!   udp-send ADDR COUNT PAYLOAD   send COUNT datagrams of PAYLOAD bytes to ADDR
//!   getppid K                     make exactly K getppid(2) calls
//!   alloc BYTES                   touch BYTES of fresh anonymous memory, then exit
//!   sleep SECS                    sleep (a process to classify, freeze or kill)

use std::net::UdpSocket;
use std::process::ExitCode;
use std::time::Duration;

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> Result<T, String> {
    args.get(i)
        .ok_or_else(|| format!("missing {what}"))?
        .parse()
        .map_err(|_| format!("bad {what}: {:?}", args.get(i)))
}

fn run(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("udp-send") => {
            let addr: String = arg(args, 1, "ADDR")?;
            let count: usize = arg(args, 2, "COUNT")?;
            let size: usize = arg(args, 3, "PAYLOAD")?;
            let bind = if addr.starts_with('[') {
                "[::1]:0"
            } else {
                "127.0.0.1:0"
            };
            let sock = UdpSocket::bind(bind).map_err(|e| e.to_string())?;
            let buf = vec![0x5au8; size];
            for _ in 0..count {
                sock.send_to(&buf, &addr).map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        Some("getppid") => {
            let k: u64 = arg(args, 1, "K")?;
            for _ in 0..k {
                // SAFETY: getppid has no preconditions.
                unsafe { libc::syscall(libc::SYS_getppid) };
            }
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
        _ => Err("usage: enforcer-test-helper udp-send|getppid|alloc|sleep ...".into()),
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
