//! `enforcer run`: the agent's start, its loop and its stop, in that order.
//!
//! The start checks everything that can refuse it before the host changes
//! ([`check_before_changes`]), then opens the kernel side
//! ([`open_kernel`]); what fails after that takes back what this start made
//! ([`abandon_start`]).

use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind};

use super::{
    Agent, AgentError, AgentOptions, Settings, audit, check_policy_file, claims, classify_rules,
    containers, error, http, leave_parent, lock, notify, require_root, settings, validate, watch,
};
use crate::bpf::Kernel;
use crate::cgroup::Cgroups;
use crate::collect::{CgroupIndex, Collector};
use crate::config::OnExit;
use crate::enforce::Engine;
use crate::plan::Plan;
use crate::report::{AgentMetrics, MetricsState, Rollup};

struct Fd(RawFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// The signals the agent answers, made once, before anything else: a signal
/// that arrives during the start or while the loop runs a branch waits for
/// the loop's next turn. (`tokio::signal::ctrl_c()` made anew each turn lost
/// a SIGINT sent during a collection; one sent during the start, to an agent
/// started in the background by a shell, which ignores SIGINT there, was
/// lost too. Either way the agent ran on.) A stop asked for during the start
/// is a clean stop once the start is complete.
struct Signals {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl Signals {
    fn install() -> Result<Self, AgentError> {
        Ok(Self {
            int: signal(SignalKind::interrupt(), "SIGINT")?,
            term: signal(SignalKind::terminate(), "SIGTERM")?,
            hup: signal(SignalKind::hangup(), "SIGHUP")?,
        })
    }
}

fn signal(kind: SignalKind, name: &str) -> Result<Signal, AgentError> {
    tokio::signal::unix::signal(kind).map_err(|source| AgentError::Io {
        op: "installing a signal handler for",
        path: PathBuf::from(name),
        source,
    })
}

/// What the checks before any change of the host hold: the host's
/// hierarchies, the validated policy, the locks, the bound metrics address,
/// the open audit log and the groups' claims.
struct Checked {
    cg: Cgroups,
    v2: usize,
    validated: Option<Plan>,
    settings: Settings,
    pid_file: lock::PidFile,
    listener: Option<TcpListener>,
    audit: audit::Audit,
    claims: claims::Claims,
}

/// Everything that can refuse a start, checked, bound or opened before the
/// host changes: the policy and its directories, the pid file's and audit
/// log's directories, the pin directory, the pid file's lock, the metrics
/// address, the audit log, the groups' claims.
async fn check_before_changes(opts: &mut AgentOptions) -> Result<Checked, AgentError> {
    // Absolute, so `reload --config` can tell whether it names this file;
    // symlinks are not resolved: a ConfigMap's `policy.toml ->
    // ..data/policy.toml` must be read through the link after each swap.
    if let Some(p) = &opts.policy {
        check_policy_file(p)?;
        let abs = std::path::absolute(p).map_err(|source| crate::config::ConfigError::Io {
            path: p.clone(),
            source,
        })?;
        opts.policy = Some(abs);
    }
    let cg = Cgroups::discover()?;
    let v2 = cg.v2().ok_or(AgentError::NoCgroup2)?;
    // The policy is checked against the host before anything is loaded or
    // changed, and against the kernel's features once the object is loaded
    // (each program goes through the verifier once).
    let validated = opts
        .policy
        .as_deref()
        .map(|f| {
            validate(
                &cg,
                f,
                opts.parent.as_deref(),
                crate::plan::Kernel::Unchecked,
            )
        })
        .transpose()?;
    let settings = settings::resolve(opts, validated.as_ref());
    // The files the agent manages live where only root can write (the
    // arbiter's and the in-force records beside the pid file).
    crate::trust::private_parent(&opts.pid_file, 0o755).map_err(error::untrusted("pid file"))?;
    crate::trust::private_parent(&settings.audit_log, 0o750)
        .map_err(error::untrusted("audit log"))?;
    crate::bpf::check_pin_dir(&opts.pin_dir)?;
    // One agent per pid file.
    let pid_file = lock::PidFile::acquire(&opts.pid_file, opts.policy.as_deref())?;
    let listener = match settings.metrics {
        Some(addr) => Some(
            http::bind(addr)
                .await
                .map_err(|source| AgentError::Metrics { addr, source })?,
        ),
        None => None,
    };
    let audit = audit::Audit::open(
        Some(&settings.audit_log),
        settings.audit_group,
        settings.audit_max_size,
    )?;
    // One agent per group: the groups that exist are claimed before anything
    // is loaded (those the policy creates, once made).
    let mut claims = claims::Claims::default();
    claims.claim_all(
        &claims::wanted(&cg, v2, validated.as_ref(), settings.observe),
        &mut Vec::new(),
    )?;
    Ok(Checked {
        cg,
        v2,
        validated,
        settings,
        pid_file,
        listener,
        audit,
        claims,
    })
}

/// Loads the programs (or adopts the pinned ones), locks the pin directory,
/// and refuses a policy this kernel cannot enforce; leaves the delegated
/// parent. A failure takes back what this start pinned.
fn open_kernel(
    opts: &AgentOptions,
    checked: &Checked,
    fresh: bool,
) -> Result<(Kernel, lock::PinDirLock), AgentError> {
    let pin_dir = &opts.pin_dir;
    let mut kernel = Kernel::open_with(pin_dir, &opts.capacity)
        .map_err(|e| abandon_start(pin_dir, fresh, e.into()))?;
    // One agent per pin directory. Another agent's pins are never ours to
    // remove.
    let pin_lock = lock::PinDirLock::acquire(pin_dir)?;
    let features = kernel.probe_and_degrade();
    let refused = match &checked.validated {
        _ if features.refusal(crate::bpf::Feature::Accounting).is_some() => {
            Err(AgentError::NoAccounting(
                features
                    .refusal(crate::bpf::Feature::Accounting)
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            ))
        }
        Some(plan) => {
            crate::plan::check_features(&plan.groups, &features).map_err(AgentError::from)
        }
        None => Ok(()),
    };
    // Refused as a whole: the maps this start pinned go again.
    let refused = refused.and_then(|()| {
        say_what_is_left_out(&features);
        match checked.validated.as_ref().and_then(|p| p.parent.as_ref()) {
            Some(parent) => leave_parent(&checked.cg, checked.v2, parent),
            None => Ok(()),
        }
    });
    match refused {
        Ok(()) => Ok((kernel, pin_lock)),
        Err(e) => {
            drop(kernel);
            Err(abandon_start(pin_dir, fresh, e))
        }
    }
}

/// What this kernel refuses is left out, and said once: the policy does not
/// need it (a rule that did was refused); observe mode runs with what loads.
/// Missing counters or events are a warning (what the agent reports is
/// less); an enforcement feature no rule uses only information.
fn say_what_is_left_out(features: &crate::bpf::FeatureReport) {
    for f in features.features.iter() {
        if let Some(r) = &f.refused {
            let what = format!(
                "{} unavailable on this kernel ({}): {r}",
                f.what, features.kernel
            );
            if f.feature.is_enforcement() {
                tracing::info!(feature = %f.feature, "{what}; no rule of the policy needs it");
            } else {
                tracing::warn!(feature = %f.feature, "{what}");
            }
        }
    }
}

/// A start that failed after the kernel side was opened takes back what it
/// made: on a pin directory that held nothing, every pin (and with them the
/// links and maps); otherwise what the failed install attached was already
/// taken off, and the earlier agent's pins stay.
fn abandon_start(pin_dir: &Path, fresh: bool, e: AgentError) -> AgentError {
    if fresh {
        match crate::bpf::unpin_all(pin_dir) {
            Ok(n) => tracing::info!(pins = n, "the start failed: removed what it pinned"),
            Err(u) => tracing::error!("the start failed, and removing its pins failed too: {u}"),
        }
    }
    e
}

/// Whether the pin directory held enforcement pins when this agent started
/// (an earlier agent's policy): observe mode's default clean-up leaves them.
fn fresh_enforcement(pin_dir: &Path, fresh: bool) -> bool {
    !fresh
        && std::fs::read_dir(pin_dir.join("enforce"))
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
}

/// Run until SIGINT or SIGTERM; SIGHUP (or a change of the file) reloads the
/// policy. With `on_exit = keep` (the default) programs and rules stay pinned.
pub async fn run(mut opts: AgentOptions) -> Result<(), AgentError> {
    require_root("running the agent")?;
    // Descriptors for everything the agent holds and opens, with a reserve
    // no metrics client can take (see `http`).
    let nofile = http::raise_fd_limit();
    let mut signals = Signals::install()?;
    let checked = check_before_changes(&mut opts).await?;
    let fresh = crate::bpf::snapshot_pinned(&opts.pin_dir).is_err();
    let enforced_before = fresh_enforcement(&opts.pin_dir, fresh);
    let pin_dir = opts.pin_dir.clone();
    let (kernel, pin_lock) = open_kernel(&opts, &checked, fresh)?;
    let collector = Collector::new(CgroupIndex::new(
        &checked.cg.hierarchy(checked.v2).mount_point,
    ));
    let validated = checked.validated;
    let listener = checked.listener;
    let mut agent = Agent {
        _pid_file: checked.pid_file,
        _pin_lock: pin_lock,
        claims: checked.claims,
        audit: checked.audit,
        watch: opts.policy.as_deref().map(watch::PolicyWatch::new),
        rollup: Rollup::default(),
        health: AgentMetrics::default(),
        syscall_labels: crate::report::syscall_labels([]),
        cg: checked.cg,
        v2: checked.v2,
        kernel,
        settings: checked.settings,
        opts,
        groups: std::collections::BTreeMap::new(),
        engine: Engine::default(),
        current: validated.clone(),
        collector,
        events: 0,
        events_lost: 0,
        map_full: std::collections::BTreeMap::new(),
        arbiter: None,
        arbiter_due: None,
        reclaimed: 0,
        containers: containers::ContainerRules::default(),
        folds_reported: std::collections::BTreeMap::new(),
        classifier: None,
    };
    // A crash may have left groups yielded: they get their values back
    // before anything else acts on them.
    agent.recover_arbiter();
    if let Err(e) = agent.install(validated) {
        drop(agent);
        return Err(abandon_start(&pin_dir, fresh, e));
    }
    // cgrules.conf and [[classify]]: new processes placed at exec.
    agent.classifier = Some(crate::classify::agent::Classifier::start(classify_rules(
        agent.current.as_ref(),
    )));
    let result = serve(&mut agent, listener, nofile, &mut signals).await;
    finish(&mut agent, enforced_before)?;
    result
}

/// Collects, reads events, arbitrates and reloads until asked to stop.
async fn serve(
    agent: &mut Agent,
    listener: Option<TcpListener>,
    nofile: u64,
    signals: &mut Signals,
) -> Result<(), AgentError> {
    let state = Arc::new(RwLock::new(MetricsState::default()));
    // The first collection before the first scrape is answered: a scrape
    // never sees the policy's rules as 0 and its groups missing (the
    // listener is bound, so an early scrape waits instead of failing).
    let first = agent.tick(&state);
    if let (Some(addr), Some(listener)) = (agent.settings.metrics, listener) {
        tracing::info!(%addr, "serving metrics at http://{addr}/metrics");
        let connections = http::connection_limit(nofile);
        tokio::spawn(http::serve(listener, state.clone(), connections));
    }
    // SAFETY: the ring buffer fd belongs to `agent.kernel`, which outlives
    // `events` (dropped when this returns); nothing closes or replaces the fd.
    let events = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(
            Fd(agent.kernel.events_fd()),
            tokio::io::Interest::READABLE,
        )
    }
    .map_err(|e| AgentError::Io {
        op: "polling",
        path: agent.opts.pin_dir.clone(),
        source: std::io::Error::from(e),
    })?;
    let mut tick = tokio::time::interval(agent.settings.interval);
    // A collection that overran its interval is followed by a full interval,
    // not by the missed ticks at once: a burst of ready ticks kept this loop
    // from ever waiting, so the runtime never polled for signals or
    // connections (SIGTERM went unanswered for over 80 s at 65,000 groups).
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stop = agent.opts.stop.clone().unwrap_or_default();
    notify::ready(if agent.settings.observe {
        "observing"
    } else {
        "enforcing the policy"
    });
    // The interval's first tick is due at once: the collection above was it.
    tick.tick().await;
    first?;
    loop {
        tokio::select! {
            _ = tick.tick() => agent.tick(&state)?,
            ready = events.readable() => {
                if let Ok(mut guard) = ready {
                    // More pending: stay ready, so the loop comes back at once
                    // (the kernel wakes a reader only once it has caught up).
                    if !agent.drain_events() {
                        guard.clear_ready();
                    }
                }
            }
            _ = arbiter_due(agent.arbiter_due) => agent.arbitrate(),
            _ = signals.hup.recv() => {
                // logrotate's postrotate: the audit log moved away.
                if let Err(e) = agent.audit.reopen() {
                    tracing::error!("could not reopen the audit log: {e}");
                }
                agent.reload("SIGHUP");
            }
            _ = stop.stopped() => return Ok(()),
            _ = signals.int.recv() => return Ok(()),
            _ = signals.term.recv() => return Ok(()),
        }
    }
}

/// Resolves when the arbiter's next interval is due; never without one.
async fn arbiter_due(due: Option<Instant>) {
    match due {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

/// A clean stop gives back whatever the arbiter yielded, whatever `on_exit`
/// keeps of the kernel side, then keeps or removes the pins.
fn finish(agent: &mut Agent, enforced_before: bool) -> Result<(), AgentError> {
    agent.stop_arbiter();
    drop(agent.classifier.take());
    notify::stopping();
    if agent.settings.on_exit == OnExit::Detach && !agent.settings.on_exit_chosen && enforced_before
    {
        tracing::info!(
            "observe mode found rules of an earlier policy agent pinned: they stay (enforcer stop removes them)"
        );
    } else if agent.settings.on_exit == OnExit::Detach {
        let n = crate::bpf::unpin_all(&agent.opts.pin_dir)?;
        tracing::info!(
            pins = n,
            "on_exit = detach: everything this agent attached is removed"
        );
    } else {
        tracing::info!(
            "agent stopped; programs, rules and counters stay pinned (enforcer stop removes them)"
        );
    }
    Ok(())
}
