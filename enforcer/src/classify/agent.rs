//! The agent's classifier: a thread that runs the rules engine while the
//! policy's `[[classify]]` rules or cgrules.conf hold any rule.
//!
//! The policy's rules come from the agent, as part of the policy in force:
//! the agent's one watch and one validation decide when they change
//! ([`Classifier::set_policy`] after a reload is installed), so a policy the
//! agent refuses changes no rule either. cgrules.conf, its directory and the
//! user and group databases are libcgroup's sources, outside the policy: the
//! thread watches their modification times itself, once a second, so a
//! cgrules.conf edited or created while the agent runs takes effect too. An
//! unreadable or invalid source keeps the rules in force and says why. With
//! no rules at all nothing is loaded into the kernel, so classification
//! costs nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use super::engine::{Engine, EngineOptions, Level};
use super::rules::{RuleSet, from_policy, load, rules_paths};
use super::sticky;
use crate::config::ClassifyRule;

/// The classifier thread; dropping it stops the engine.
pub struct Classifier {
    stop: Arc<AtomicBool>,
    /// The policy's `[[classify]]` rules, each time the agent installs a policy.
    policy: Sender<Vec<ClassifyRule>>,
    handle: Option<JoinHandle<()>>,
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// The modification times of libcgroup's sources (the rules directory's
/// files too, and the user and group databases, which rules resolve when
/// loaded).
fn stamp(file: &Path, dir: &Path) -> Vec<Option<SystemTime>> {
    let mut v = vec![
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
fn read_rules(policy: &[ClassifyRule]) -> Result<(RuleSet, bool), String> {
    let (file, dir) = rules_paths();
    let mut set = if file.exists() {
        load(&file, &dir).map_err(|e| e.to_string())?
    } else {
        RuleSet::default()
    };
    let hold = policy.iter().any(|r| r.hold);
    let more = from_policy(policy).map_err(|e| e.to_string())?;
    set.rules.extend(more.rules);
    set.warnings.extend(more.warnings);
    Ok((set, hold))
}

/// Serve the sticky socket unless some rules daemon (libcgroup's
/// cgrulesengd, say) already does: its registrations must keep reaching it.
fn socket_free() -> bool {
    std::os::unix::net::UnixStream::connect(sticky::SOCKET).is_err()
}

fn run(mut policy: Vec<ClassifyRule>, updates: &Receiver<Vec<ClassifyRule>>, stop: &AtomicBool) {
    let (file, dir) = rules_paths();
    let mut seen = Vec::new();
    let mut policy_changed = true;
    let mut engine: Option<Engine> = None;
    let mut hold_now = false;
    let mut last_check = Instant::now() - Duration::from_secs(10);
    while !stop.load(Ordering::Relaxed) {
        // The latest policy the agent installed, if it sent one.
        while let Ok(rules) = updates.try_recv() {
            policy = rules;
            policy_changed = true;
        }
        if policy_changed || last_check.elapsed() >= Duration::from_secs(1) {
            last_check = Instant::now();
            let now = stamp(&file, &dir);
            if policy_changed || now != seen {
                seen = now;
                policy_changed = false;
                match read_rules(&policy) {
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
    /// Start the thread with the `[[classify]]` rules of the policy in
    /// force (none in observe mode).
    pub fn start(policy: Vec<ClassifyRule>) -> Classifier {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (tx, rx) = channel();
        let handle = std::thread::Builder::new()
            .name("classify".into())
            .spawn(move || run(policy, &rx, &flag))
            .ok();
        Classifier {
            stop,
            policy: tx,
            handle,
        }
    }

    /// The `[[classify]]` rules of a policy the agent has just installed:
    /// in force at the thread's next turn (within 200 ms).
    pub fn set_policy(&self, rules: Vec<ClassifyRule>) {
        // The thread is gone only if it could not start: nothing to tell.
        let _ = self.policy.send(rules);
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
