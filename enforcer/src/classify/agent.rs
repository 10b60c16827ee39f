//! The agent's classifier: a thread that runs the rules engine while the
//! policy's `[[classify]]` rules or cgrules.conf hold any rule.
//!
//! It watches its sources itself (their modification times, once a second)
//! rather than hooking into the agent's reload, so a cgrules.conf edited or
//! created while the agent runs takes effect too; an unreadable or invalid
//! source keeps the rules in force and says why. With no rules at all
//! nothing is loaded into the kernel, so classification costs nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use super::engine::{Engine, EngineOptions, Level};
use super::rules::{RuleSet, from_policy, load, rules_paths};
use super::sticky;

/// The classifier thread; dropping it stops the engine.
pub struct Classifier {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// The modification times of the sources (the rules directory's files too,
/// and the user and group databases, which rules resolve when loaded).
fn stamp(policy: Option<&Path>, file: &Path, dir: &Path) -> Vec<Option<SystemTime>> {
    let mut v = vec![
        policy.and_then(mtime),
        mtime(file),
        mtime(dir),
        mtime(Path::new("/etc/passwd")),
        mtime(Path::new("/etc/group")),
    ];
    if let Ok(rd) = std::fs::read_dir(dir) {
        v.extend(rd.flatten().map(|e| mtime(&e.path())));
    }
    v
}

/// cgrules.conf's rules (none if it does not exist), then the policy's.
fn read_rules(policy: Option<&Path>) -> Result<(RuleSet, bool), String> {
    let (file, dir) = rules_paths();
    let mut set = if file.exists() {
        load(&file, &dir).map_err(|e| e.to_string())?
    } else {
        RuleSet::default()
    };
    let mut hold = false;
    if let Some(p) = policy
        && p.extension().is_some_and(|e| e == "toml")
    {
        let pol = crate::config::load(p).map_err(|e| e.to_string())?;
        hold = pol.classify.iter().any(|r| r.hold);
        let more = from_policy(&pol.classify).map_err(|e| e.to_string())?;
        set.rules.extend(more.rules);
        set.warnings.extend(more.warnings);
    }
    Ok((set, hold))
}

/// Serve the sticky socket unless some rules daemon (libcgroup's
/// cgrulesengd, say) already does: its registrations must keep reaching it.
fn socket_free() -> bool {
    std::os::unix::net::UnixStream::connect(sticky::SOCKET).is_err()
}

fn run(policy: Option<PathBuf>, stop: &AtomicBool) {
    let (file, dir) = rules_paths();
    let mut seen = Vec::new();
    let mut engine: Option<Engine> = None;
    let mut hold_now = false;
    let mut last_check = Instant::now() - Duration::from_secs(10);
    while !stop.load(Ordering::Relaxed) {
        if last_check.elapsed() >= Duration::from_secs(1) {
            last_check = Instant::now();
            let now = stamp(policy.as_deref(), &file, &dir);
            if now != seen {
                seen = now;
                match read_rules(policy.as_deref()) {
                    Err(e) => tracing::warn!(
                        "classification rules not reloaded, the current ones stay: {e}"
                    ),
                    Ok((rules, hold)) => {
                        for w in &rules.warnings {
                            tracing::warn!("classification rules: {w}");
                        }
                        if rules.rules.is_empty() {
                            if engine.take().is_some() {
                                tracing::info!(
                                    "no classification rules any more: exec classification stopped"
                                );
                            }
                        } else if let Some(e) = engine.as_mut().filter(|_| hold == hold_now) {
                            let n = rules.rules.len();
                            match e.set_rules(rules) {
                                Ok(()) => {
                                    tracing::info!(rules = n, "classification rules reloaded")
                                }
                                Err(err) => {
                                    tracing::warn!("classification rules not reloaded: {err}")
                                }
                            }
                        } else {
                            engine = None;
                            let n = rules.rules.len();
                            let opts = EngineOptions {
                                hold,
                                socket: socket_free()
                                    .then(|| (PathBuf::from(sticky::SOCKET), (None, None))),
                            };
                            let log = Box::new(|l: Level, m: &str| match l {
                                Level::Error => tracing::error!("{}", m.trim_end()),
                                Level::Warning => tracing::warn!("{}", m.trim_end()),
                                Level::Info => tracing::info!("{}", m.trim_end()),
                                Level::Debug => tracing::debug!("{}", m.trim_end()),
                            });
                            match Engine::new(rules, opts, log) {
                                Ok(mut e) => {
                                    tracing::info!(rules = n, hold, "exec classification started");
                                    e.classify_running();
                                    hold_now = hold;
                                    engine = Some(e);
                                }
                                Err(err) => {
                                    tracing::error!("exec classification could not start: {err}")
                                }
                            }
                        }
                    }
                }
            }
        }
        match engine.as_mut() {
            Some(e) => {
                e.poll_once(Duration::from_millis(200));
            }
            None => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

impl Classifier {
    /// Start the thread; `policy` is the agent's policy file, if any.
    pub fn start(policy: Option<PathBuf>) -> Classifier {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("classify".into())
            .spawn(move || run(policy, &flag))
            .ok();
        Classifier { stop, handle }
    }
}

impl Drop for Classifier {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
