//! Records from the `EVENTS` ring buffer.

use enforcer_common::{EVENT_OOM_KILL, OomEvent};

/// Something the kernel programs reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The OOM killer chose a victim (tracepoint `oom/mark_victim`).
    OomKill {
        /// The victim's process id.
        pid: u32,
        /// cgroup2 id of the task that hit the OOM condition; for a memory-cgroup
        /// OOM a member of the limited group (see [`OomEvent::cgroup_id`]).
        cgroup_id: u64,
        /// The victim's command name (at most 15 characters).
        comm: String,
    },
}

impl Event {
    /// Short machine name of the event kind (`oom_kill`), for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::OomKill { .. } => "oom_kill",
        }
    }

    /// The cgroup2 id the event is charged to.
    pub fn cgroup_id(&self) -> u64 {
        match self {
            Event::OomKill { cgroup_id, .. } => *cgroup_id,
        }
    }

    pub fn pid(&self) -> u32 {
        match self {
            Event::OomKill { pid, .. } => *pid,
        }
    }

    pub fn comm(&self) -> &str {
        match self {
            Event::OomKill { comm, .. } => comm,
        }
    }

    /// Kind-specific details for the audit log (rule, action, address...), as
    /// JSON; `null` when the kind has none.
    pub fn details(&self) -> serde_json::Value {
        match self {
            Event::OomKill { .. } => serde_json::Value::Null,
        }
    }
}

/// Decodes one ring buffer record; `None` for unknown kinds or short records.
pub(super) fn parse(bytes: &[u8]) -> Option<Event> {
    if bytes.len() < size_of::<OomEvent>() {
        return None;
    }
    // SAFETY: `bytes` holds at least size_of::<OomEvent>() bytes (checked above),
    // OomEvent is plain old data (every bit pattern valid), and read_unaligned
    // does not require the record to be aligned.
    let raw: OomEvent = unsafe { bytes.as_ptr().cast::<OomEvent>().read_unaligned() };
    match raw.kind {
        EVENT_OOM_KILL => {
            let len = raw
                .comm
                .iter()
                .position(|&b| b == 0)
                .unwrap_or(raw.comm.len());
            let comm = raw.comm.get(..len).unwrap_or_default();
            Some(Event::OomKill {
                pid: raw.pid,
                cgroup_id: raw.cgroup_id,
                comm: String::from_utf8_lossy(comm).into_owned(),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of(event: &OomEvent) -> Vec<u8> {
        // SAFETY: OomEvent is repr(C) plain old data without padding.
        unsafe {
            std::slice::from_raw_parts(
                std::ptr::from_ref(event).cast::<u8>(),
                size_of::<OomEvent>(),
            )
        }
        .to_vec()
    }

    #[test]
    fn decodes_an_oom_record() {
        let mut comm = [0u8; 16];
        comm[..6].copy_from_slice(b"stress");
        let raw = OomEvent {
            kind: EVENT_OOM_KILL,
            pid: 42,
            cgroup_id: 7,
            comm,
        };
        assert_eq!(
            parse(&bytes_of(&raw)),
            Some(Event::OomKill {
                pid: 42,
                cgroup_id: 7,
                comm: "stress".into()
            })
        );
    }

    #[test]
    fn full_comm_and_unknown_kinds() {
        let raw = OomEvent {
            kind: EVENT_OOM_KILL,
            pid: 1,
            cgroup_id: 2,
            comm: *b"0123456789abcdef",
        };
        let Some(Event::OomKill { comm, .. }) = parse(&bytes_of(&raw)) else {
            panic!("not decoded");
        };
        assert_eq!(comm, "0123456789abcdef");
        assert_eq!(parse(&bytes_of(&OomEvent { kind: 99, ..raw })), None);
        assert_eq!(parse(&[0u8; 8]), None);
    }
}
