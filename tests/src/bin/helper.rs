//! A small workload binary for the end-to-end tests, so tests do not depend on
//! what shell utilities a host has. Each subcommand does one exact, countable thing.
//!
//!   udp-send ADDR COUNT PAYLOAD   send COUNT datagrams of PAYLOAD bytes to ADDR
//!   scale-worker ADDR DIR...      per cgroup2 DIR (index i) a child joins it and
//!                                 makes exactly the calls and datagrams of
//!                                 `scale_pattern(i)` (see below), then exits
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
//!   syscall-sequence              make the calls of `SYSCALL_SEQUENCE` (see
//!                                 tests/src/lib.rs), each as often as it says
//!   getppid-int80 K               K getppid calls through the i386 entry
//!                                 (`int $0x80`, i386 number 64; x86_64 only)
//!   alloc BYTES                   touch BYTES of fresh anonymous memory, then exit
//!   alloc-hold BYTES SECS         touch BYTES of fresh anonymous memory and keep
//!                                 it for SECS seconds
//!   sleep SECS                    sleep (a process to classify, freeze or kill)
//!   spin SECS                     getppid(2) in a loop for SECS seconds of wall
//!                                 time (busy: makes progress only when it runs),
//!                                 then print the number of calls
//!   bpf-attach-and-die PIN_DIR CGROUP2_DIR ADDR COUNT PAYLOAD K
//!                                 open enforcer's Kernel on PIN_DIR, attach it to
//!                                 CGROUP2_DIR and the tracepoints, count syscalls of
//!                                 that group only, move itself into the group, make K
//!                                 getppid calls, send COUNT datagrams of PAYLOAD
//!                                 bytes to ADDR, then SIGKILL itself (an agent crash)
//!
//! Enforcement probes. Each prints one line per attempt, `ok` or `err NAME` (the
//! errno's name, e.g. `err EPERM`), and exits 0 either way:
//!
//!   try-connect tcp|udp ADDR      connect a socket of that type to ADDR
//!   try-bind tcp|udp ADDR         bind a socket of that type to ADDR
//!   try-sendto ADDR               send one 10-byte datagram to ADDR from an
//!                                 unconnected UDP socket
//!   try-socket [FAMILY]           socket(AF_INET, SOCK_STREAM); FAMILY unix
//!                                 (AF_UNIX, SOCK_STREAM) or netlink
//!                                 (AF_NETLINK, SOCK_RAW, NETLINK_ROUTE)
//!   try-exec PATH                 execve PATH (which then replaces the helper)
//!   try-setsockopt                SO_REUSEADDR on a new UDP socket
//!   try-listen ADDR               listen(2) on a fresh TCP socket of ADDR's family
//!   witness                       catch every catchable signal; for each line
//!                                 `ping` on stdin print `signals N,M,...` (what
//!                                 arrived so far, by number) then `pong`
//!   udp-recv-idle ADDR IDLE_MS    bind ADDR, print the bound address, receive
//!                                 until nothing arrives for IDLE_MS (at most
//!                                 30 s), print `received N datagrams B bytes`
//!   connect-loop ADDR N           N TCP connects to ADDR, then one line
//!                                 `ok A eperm B other C`
//!   udp-blast ADDR COUNT PAYLOAD  send COUNT datagrams of PAYLOAD bytes to ADDR,
//!                                 errors counted, not fatal: `sent N errors E`
//!   udp-flood ADDR SECS PAYLOAD   send datagrams as fast as possible for SECS
//!                                 seconds: `sent N errors E nanos T`
//!   personality-int80             the same through the i386 syscall entry (`int
//!                                 $0x80`, i386 number 136): a compat syscall
//!   personality                   personality(PER_LINUX32), then print `alive`
//!                                 (a group that kills on `personality` never
//!                                 prints it)
//!   hop-send ADDR HOME DIR...     move into each cgroup2 DIR in turn and send one
//!                                 64-byte datagram to ADDR from a socket made
//!                                 there (an entry per group, cheaply), then move
//!                                 into HOME
//!   double-fork SECS              fork a child that forks a grandchild and exits
//!                                 at once; the grandchild leaves the session
//!                                 (setsid), prints its pid and sleeps SECS (a
//!                                 process that tries to outrun classification)
//!   hold-conns ADDR N SECS        keep N TCP connections to ADDR open for SECS
//!                                 seconds, opening a new one for each the server
//!                                 closes; print `held N` once all N were open at
//!                                 once (or after 5 s), then `opened T` at the end
//!   syscall-sweep FROM TO         call every syscall number FROM..TO once (all
//!                                 invalid: ENOSYS), print `called N`
//!   enforce-attach-and-die PIN_DIR CGROUP2_DIR DENY_ADDR
//!                                 open enforcer's Kernel on PIN_DIR, attach the
//!                                 enforcement programs to CGROUP2_DIR, deny
//!                                 connects to DENY_ADDR there, print `attached N`,
//!                                 then SIGKILL itself

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

/// `scale-worker ADDR DIR...`: for each cgroup2 directory DIR (index i), a
/// child moves itself into DIR, opens a UDP socket, makes exactly the calls
/// of `scale_pattern(i)`, sends its datagrams of 64 bytes to ADDR with
/// `sendto`, and `_exit`s: after the move it makes no other syscall but
/// `socket` and `exit_group`.
fn scale_worker(addr: &str, dirs: &[String]) -> Result<(), String> {
    let to: std::net::SocketAddrV4 = addr.parse().map_err(|_| format!("bad address {addr:?}"))?;
    let sa = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: to.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*to.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    let buf = [0x5au8; 64];
    for (i, dir) in dirs.iter().enumerate() {
        let procs =
            std::ffi::CString::new(format!("{dir}/cgroup.procs")).map_err(|e| e.to_string())?;
        let (calls, datagrams) = enforcer_tests::scale_pattern(i);
        // Opened before the fork: the child needs no allocation or path walk.
        // SAFETY: a valid NUL-terminated path.
        let fd = unsafe { libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(format!(
                "open {dir}/cgroup.procs: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: fork in a single-threaded process; the child calls only
        // async-signal-safe functions (write, syscall, sendto, _exit).
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: as above; "0" moves the calling process.
            unsafe {
                if libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    libc::_exit(2);
                }
                // Made in the group: a socket's traffic is charged to the
                // cgroup it was created in.
                let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
                for (nr, n) in &calls {
                    for _ in 0..*n {
                        libc::syscall(*nr);
                    }
                }
                for _ in 0..datagrams {
                    libc::sendto(
                        sock,
                        buf.as_ptr().cast(),
                        buf.len(),
                        0,
                        std::ptr::from_ref(&sa).cast(),
                        size_of::<libc::sockaddr_in>() as libc::socklen_t,
                    );
                }
                libc::_exit(0);
            }
        }
        // SAFETY: closing our copy.
        unsafe { libc::close(fd) };
        if pid < 0 {
            return Err(format!("fork: {}", std::io::Error::last_os_error()));
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
            return Err(format!("the worker for {dir} failed (status {status})"));
        }
    }
    announce(&format!("done {}", dirs.len()))
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

/// `ok` or `err ENAME` for a result of a socket call.
fn outcome<T>(result: std::io::Result<T>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(e) => match e.raw_os_error() {
            Some(code) => format!("err {:?}", nix::errno::Errno::from_raw(code)),
            None => format!("err {e}"),
        },
    }
}

fn socket_type(proto: &str) -> Result<libc::c_int, String> {
    match proto {
        "tcp" => Ok(libc::SOCK_STREAM),
        "udp" => Ok(libc::SOCK_DGRAM),
        other => Err(format!("bad protocol {other:?}")),
    }
}

/// A new socket for `addr`'s family, of `ty`.
fn raw_socket(
    addr: &std::net::SocketAddr,
    ty: libc::c_int,
) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd as _;
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket(2); the fd is owned by the returned OwnedFd.
    let fd = unsafe { libc::socket(family, ty | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// socket(2) of any family.
fn family_socket(
    family: libc::c_int,
    ty: libc::c_int,
    protocol: libc::c_int,
) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd as _;
    // SAFETY: plain socket(2); the fd is owned by the returned OwnedFd.
    let fd = unsafe { libc::socket(family, ty | libc::SOCK_CLOEXEC, protocol) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// connect(2) or bind(2) of a fresh socket of type `ty` to `addr`.
fn sock_call(addr: &std::net::SocketAddr, ty: libc::c_int, bind: bool) -> std::io::Result<()> {
    let sock = raw_socket(addr, ty)?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&sock);
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        std::net::SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in and suitably aligned.
            unsafe {
                std::ptr::from_mut(&mut storage)
                    .cast::<libc::sockaddr_in>()
                    .write(sin)
            };
            size_of::<libc::sockaddr_in>()
        }
        std::net::SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe {
                std::ptr::from_mut(&mut storage)
                    .cast::<libc::sockaddr_in6>()
                    .write(sin6)
            };
            size_of::<libc::sockaddr_in6>()
        }
    };
    let sa = std::ptr::from_ref(&storage).cast::<libc::sockaddr>();
    // SAFETY: `sa` points at an initialised address of `len` bytes; `fd` is open.
    let rc = unsafe {
        if bind {
            libc::bind(fd, sa, len as libc::socklen_t)
        } else {
            libc::connect(fd, sa, len as libc::socklen_t)
        }
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn parse_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    s.parse().map_err(|_| format!("bad address {s:?}"))
}

/// Sends `count` datagrams (or for `secs`), counting failures.
fn blast(addr: &str, count: Option<u64>, secs: Option<f64>, size: usize) -> Result<(), String> {
    let bind = if addr.starts_with('[') {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    };
    let sock = UdpSocket::bind(bind).map_err(|e| e.to_string())?;
    let buf = vec![0x5au8; size];
    let start = std::time::Instant::now();
    let (mut sent, mut errors) = (0u64, 0u64);
    loop {
        if count.is_some_and(|c| sent + errors >= c) {
            break;
        }
        if secs.is_some_and(|s| start.elapsed().as_secs_f64() >= s) {
            break;
        }
        match sock.send_to(&buf, addr) {
            Ok(_) => sent += 1,
            Err(_) => errors += 1,
        }
    }
    announce(&format!(
        "sent {sent} errors {errors} nanos {}",
        start.elapsed().as_nanos()
    ))
}

/// Signals the witness caught, one bit per signal number.
static CAUGHT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

extern "C" fn caught(sig: libc::c_int) {
    if let Ok(n) = u32::try_from(sig)
        && n < 64
    {
        CAUGHT.fetch_or(1 << n, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A bystander that proves it was not signalled: a signal sent to it before
/// a `ping` is written is delivered before the read of that ping returns
/// (signals are handled on the way back to user space), so the answer to a
/// ping lists every signal sent before it. No clock involved.
fn witness() -> Result<(), String> {
    for sig in 1..=31 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: installs a handler that only does an atomic or.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = caught as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: a valid sigaction for a catchable signal.
        unsafe { libc::sigaction(sig, &action, std::ptr::null_mut()) };
    }
    let mut line = String::new();
    let stdin = std::io::stdin();
    loop {
        line.clear();
        match stdin.read_line(&mut line) {
            Ok(0) => return Ok(()),
            Ok(_) if line.trim() == "ping" => {
                let bits = CAUGHT.load(std::sync::atomic::Ordering::SeqCst);
                let got: Vec<String> = (0..64)
                    .filter(|n| bits & (1 << n) != 0)
                    .map(|n| n.to_string())
                    .collect();
                println!("signals {}\npong", got.join(","));
            }
            Ok(_) => {}
            // A signal interrupted the read: read again.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("scale-worker") => {
            let addr: String = arg(args, 1, "ADDR")?;
            scale_worker(&addr, args.get(2..).unwrap_or_default())
        }
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
            // Retransmitted bytes cross the hooks again; tests need to know.
            println!("retransmitted {}", tcp_bytes_retrans(&conn));
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
        Some("syscall-sequence") => {
            for (_, nr, calls) in enforcer_tests::SYSCALL_SEQUENCE {
                for _ in 0..calls {
                    // SAFETY: getppid, getuid, sched_yield and umask(022) have
                    // no memory arguments.
                    unsafe { libc::syscall(nr, 0o022) };
                }
            }
            Ok(())
        }
        #[cfg(target_arch = "x86_64")]
        Some("getppid-int80") => {
            let k: u64 = arg(args, 1, "K")?;
            for _ in 0..k {
                let mut eax: u64 = 64;
                // SAFETY: the i386 getppid(2) through the compat entry point;
                // it takes no arguments and returns in eax. The compat entry
                // does not keep r8-r11 of a 64-bit caller.
                unsafe {
                    std::arch::asm!(
                        "int 0x80",
                        inout("rax") eax,
                        out("r8") _,
                        out("r9") _,
                        out("r10") _,
                        out("r11") _,
                        options(nostack),
                    );
                }
                std::hint::black_box(eax);
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
        Some("alloc-hold") => {
            let bytes: usize = arg(args, 1, "BYTES")?;
            let secs: u64 = arg(args, 2, "SECS")?;
            let mut v = vec![0u8; bytes];
            for i in (0..bytes).step_by(4096) {
                v[i] = 1;
            }
            std::hint::black_box(&v);
            std::thread::sleep(Duration::from_secs(secs));
            std::hint::black_box(&v);
            Ok(())
        }
        Some("witness") => witness(),
        Some("sleep") => {
            let secs: u64 = arg(args, 1, "SECS")?;
            std::thread::sleep(Duration::from_secs(secs));
            Ok(())
        }
        Some("spin") => {
            let secs: f64 = arg(args, 1, "SECS")?;
            let start = std::time::Instant::now();
            let mut calls = 0u64;
            while start.elapsed().as_secs_f64() < secs {
                // SAFETY: getppid has no preconditions.
                unsafe { libc::getppid() };
                calls += 1;
            }
            announce(&format!("calls {calls}"))
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
        Some("try-connect" | "try-bind") => {
            let ty = socket_type(&arg::<String>(args, 1, "PROTO")?)?;
            let addr = parse_addr(&arg::<String>(args, 2, "ADDR")?)?;
            let bind = args.first().map(String::as_str) == Some("try-bind");
            announce(&outcome(sock_call(&addr, ty, bind)))
        }
        Some("try-sendto") => {
            let addr = parse_addr(&arg::<String>(args, 1, "ADDR")?)?;
            let bind = if addr.is_ipv4() {
                "127.0.0.1:0"
            } else {
                "[::1]:0"
            };
            let sock = UdpSocket::bind(bind).map_err(|e| e.to_string())?;
            announce(&outcome(sock.send_to(&[0u8; 10], addr)))
        }
        Some("try-socket") => match args.get(1).map(String::as_str) {
            None | Some("inet") => {
                let addr = parse_addr("127.0.0.1:0")?;
                announce(&outcome(raw_socket(&addr, libc::SOCK_STREAM)))
            }
            Some("unix") => announce(&outcome(family_socket(libc::AF_UNIX, libc::SOCK_STREAM, 0))),
            Some("netlink") => announce(&outcome(family_socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW,
                libc::NETLINK_ROUTE,
            ))),
            Some(other) => Err(format!(
                "unknown socket family {other:?}: inet, unix or netlink"
            )),
        },
        Some("try-exec") => {
            use std::os::unix::process::CommandExt as _;
            let path: String = arg(args, 1, "PATH")?;
            let err = std::process::Command::new(path).exec();
            announce(&outcome::<()>(Err(err)))
        }
        Some("try-listen") => {
            let addr = parse_addr(&arg::<String>(args, 1, "ADDR")?)?;
            let listened = raw_socket(&addr, libc::SOCK_STREAM).and_then(|sock| {
                let fd = std::os::fd::AsRawFd::as_raw_fd(&sock);
                // listen(2) on the fresh socket: the call BPF-LSM's
                // socket_listen hook decides (an unbound socket gets an
                // ephemeral port, so no bind is needed).
                // SAFETY: plain listen(2) on a descriptor this scope owns.
                if unsafe { libc::listen(fd, 1) } == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
            announce(&outcome(listened))
        }
        Some("try-setsockopt") => {
            let addr = parse_addr("127.0.0.1:0")?;
            let sock = raw_socket(&addr, libc::SOCK_DGRAM).map_err(|e| e.to_string())?;
            let one: libc::c_int = 1;
            // SAFETY: valid fd and a c_int option value of the right size.
            let rc = unsafe {
                libc::setsockopt(
                    sock.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_REUSEADDR,
                    std::ptr::from_ref(&one).cast(),
                    size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            let result = if rc == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            };
            announce(&outcome(result))
        }
        Some("udp-recv-idle") => {
            let addr: String = arg(args, 1, "ADDR")?;
            let idle: u64 = arg(args, 2, "IDLE_MS")?;
            let sock = UdpSocket::bind(&addr).map_err(|e| e.to_string())?;
            let size: libc::c_int = 16 << 20;
            // SAFETY: valid fd and a c_int option value of the right size.
            unsafe {
                libc::setsockopt(
                    sock.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUFFORCE,
                    std::ptr::from_ref(&size).cast(),
                    size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            sock.set_read_timeout(Some(Duration::from_millis(idle.max(1))))
                .map_err(|e| e.to_string())?;
            announce(&sock.local_addr().map_err(|e| e.to_string())?.to_string())?;
            let start = std::time::Instant::now();
            let mut buf = vec![0u8; 65536];
            let (mut n, mut bytes, mut seen_any) = (0usize, 0usize, false);
            while start.elapsed() < Duration::from_secs(30) {
                match sock.recv(&mut buf) {
                    Ok(len) => {
                        n += 1;
                        bytes += len;
                        seen_any = true;
                    }
                    // Before the first datagram, keep waiting (the sender
                    // starts after we announced the address).
                    Err(_) if !seen_any => {}
                    Err(_) => break,
                }
            }
            announce(&format!("received {n} datagrams {bytes} bytes"))
        }
        Some("connect-loop") => {
            let addr = parse_addr(&arg::<String>(args, 1, "ADDR")?)?;
            let n: u64 = arg(args, 2, "N")?;
            let (mut ok, mut eperm, mut other) = (0u64, 0u64, 0u64);
            for _ in 0..n {
                match sock_call(&addr, libc::SOCK_STREAM, false) {
                    Ok(()) => ok += 1,
                    Err(e) if e.raw_os_error() == Some(libc::EPERM) => eperm += 1,
                    Err(_) => other += 1,
                }
            }
            announce(&format!("ok {ok} eperm {eperm} other {other}"))
        }
        Some("udp-blast") => {
            let addr: String = arg(args, 1, "ADDR")?;
            let count: u64 = arg(args, 2, "COUNT")?;
            let size: usize = arg(args, 3, "PAYLOAD")?;
            blast(&addr, Some(count), None, size)
        }
        Some("udp-flood") => {
            let addr: String = arg(args, 1, "ADDR")?;
            let secs: f64 = arg(args, 2, "SECS")?;
            let size: usize = arg(args, 3, "PAYLOAD")?;
            blast(&addr, None, Some(secs), size)
        }
        #[cfg(target_arch = "x86_64")]
        Some("personality-int80") => {
            let mut eax: u64 = 136;
            // SAFETY: the i386 personality(2) through the compat entry point; it
            // reads ebx (saved and restored around the call, LLVM reserves rbx)
            // and returns in eax.
            unsafe {
                std::arch::asm!(
                    "xchg {arg:r}, rbx",
                    "int 0x80",
                    "xchg {arg:r}, rbx",
                    arg = inout(reg) 0x0008u64 => _,
                    inout("rax") eax,
                    options(nostack),
                );
            }
            std::hint::black_box(eax);
            announce("alive")
        }
        Some("personality") => {
            // SAFETY: personality(2) only changes this process's execution domain.
            unsafe { libc::personality(0x0008) };
            announce("alive")
        }
        Some("hop-send") => {
            let addr: String = arg(args, 1, "ADDR")?;
            let home: String = arg(args, 2, "HOME")?;
            hop_send(&addr, &home, args.get(3..).unwrap_or(&[]))
        }
        Some("double-fork") => {
            let secs: u64 = arg(args, 1, "SECS")?;
            double_fork(secs)
        }
        Some("hold-conns") => {
            let addr: String = arg(args, 1, "ADDR")?;
            let n: usize = arg(args, 2, "N")?;
            let secs: f64 = arg(args, 3, "SECS")?;
            hold_conns(&addr, n, secs)
        }
        Some("syscall-sweep") => {
            let from: i64 = arg(args, 1, "FROM")?;
            let to: i64 = arg(args, 2, "TO")?;
            for nr in from..to {
                // SAFETY: numbers no kernel defines: each fails with ENOSYS
                // before touching any argument.
                unsafe { libc::syscall(nr) };
            }
            announce(&format!("called {}", to - from))
        }
        Some("enforce-attach-and-die") => {
            let pin_dir: String = arg(args, 1, "PIN_DIR")?;
            let cgroup: String = arg(args, 2, "CGROUP2_DIR")?;
            let deny: String = arg(args, 3, "DENY_ADDR")?;
            let cgroup = Path::new(&cgroup);
            let text = format!("[group.\"g\".network]\nconnect_deny = [\"{deny}\"]\n");
            let policy = enforcer::config::parse_toml(&text, Path::new("helper.toml"))
                .map_err(|e| e.to_string())?;
            let group = policy.groups.first().ok_or("no group")?;
            let rules = enforcer::plan::group_rules(group).map_err(|e| e.to_string())?;
            let mut kernel =
                enforcer::bpf::Kernel::open(Path::new(&pin_dir)).map_err(|e| format!("{e:?}"))?;
            let id = enforcer::bpf::cgroup_id(cgroup).map_err(|e| e.to_string())?;
            kernel
                .set_group_rules(id, &rules)
                .map_err(|e| format!("{e:?}"))?;
            let links = kernel
                .attach_enforcement(cgroup)
                .map_err(|e| format!("{e:?}"))?;
            announce(&format!("attached {links}"))?;
            // SAFETY: raise has no memory-safety preconditions.
            unsafe { libc::raise(libc::SIGKILL) };
            Err("still alive after SIGKILL".into())
        }
        _ => Err(
            "usage: enforcer-test-helper udp-send|udp-recv|tcp-send|tcp-recv|sockaddr|\
                  getppid|syscall-sequence|getppid-int80|alloc|sleep|bpf-attach-and-die|try-connect|try-bind|try-sendto|\
                  try-socket|try-exec|try-setsockopt|udp-recv-idle|connect-loop|udp-blast|\
                  udp-flood|personality|\
                  enforce-attach-and-die ..."
                .into(),
        ),
    }
}

/// `hop-send ADDR HOME DIR...` (see the usage at the top).
fn hop_send(addr: &str, home: &str, dirs: &[String]) -> Result<(), String> {
    let join = |dir: &str| {
        std::fs::write(Path::new(dir).join("cgroup.procs"), "0")
            .map_err(|e| format!("joining {dir}: {e}"))
    };
    for dir in dirs {
        join(dir)?;
        // Made here: a socket's traffic is charged to the group it was made in.
        let s = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        s.send_to(&[0x5a; 64], addr).map_err(|e| e.to_string())?;
    }
    join(home)
}

/// `double-fork SECS` (see the usage at the top).
fn double_fork(secs: u64) -> Result<(), String> {
    // SAFETY: fork in a single-threaded process; the children call only
    // async-signal-safe functions until they _exit or sleep.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if child == 0 {
        // SAFETY: as above.
        unsafe {
            if libc::fork() == 0 {
                libc::setsid();
                let line = format!("{}\n", libc::getpid());
                libc::write(1, line.as_ptr().cast(), line.len());
                libc::sleep(secs as libc::c_uint);
            }
            libc::_exit(0);
        }
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(child, &raw mut status, 0) };
    Ok(())
}

/// `hold-conns ADDR N SECS` (see the usage at the top).
fn hold_conns(addr: &str, n: usize, secs: f64) -> Result<(), String> {
    // As many descriptors as this user may have.
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: get/setrlimit read and write one rlimit of ours.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &raw const lim);
        }
    }
    let to: std::net::SocketAddr = addr.parse().map_err(|_| format!("bad address {addr:?}"))?;
    let start = std::time::Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let mut conns: Vec<TcpStream> = Vec::with_capacity(n);
    let (mut opened, mut announced) = (0u64, false);
    while std::time::Instant::now() < end {
        // Those the server closed go; new ones take their place.
        conns.retain(|c| {
            let mut b = [0u8; 1];
            match c.peek(&mut b) {
                Ok(n) => n > 0,
                Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
            }
        });
        while conns.len() < n && std::time::Instant::now() < end {
            match TcpStream::connect_timeout(&to, Duration::from_millis(200)) {
                Ok(c) => {
                    c.set_nonblocking(true).map_err(|e| e.to_string())?;
                    conns.push(c);
                    opened += 1;
                }
                Err(_) => break,
            }
        }
        if !announced && (conns.len() >= n || start.elapsed() > Duration::from_secs(5)) {
            announced = true;
            announce(&format!("held {}", conns.len()))?;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    announce(&format!("opened {opened}"))
}

/// `tcpi_bytes_retrans` of a TCP socket (0 if the kernel does not say).
fn tcp_bytes_retrans(conn: &TcpStream) -> u64 {
    use std::os::fd::AsRawFd;
    // SAFETY: tcp_info is plain old data; all-zero is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` and `len` are valid for writes of `len` bytes for the call.
    let rc = unsafe {
        libc::getsockopt(
            conn.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast(),
            &raw mut len,
        )
    };
    if rc == 0 { info.tcpi_bytes_retrans } else { 0 }
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
