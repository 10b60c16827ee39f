//! `enforcer-test-cgself [SECS]`: prints the groups this process is in, read
//! from /proc/self/cgroup as the very first thing `main` does, then sleeps
//! SECS seconds (default 0).
//!
//! The classification tests and `cargo xtask bench classify` copy it under
//! unique names (a rule matches the name) and ask it where it woke up: in
//! its old group, or already in the rule's group.

use std::io::Write as _;

fn main() {
    let groups = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0);
    let line = groups.lines().collect::<Vec<_>>().join(";");
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    drop(out);
    if secs > 0.0 {
        std::thread::sleep(std::time::Duration::from_secs_f64(secs));
    }
}
