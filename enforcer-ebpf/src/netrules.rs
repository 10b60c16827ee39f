//! `enforce_connect4/6`, `enforce_bind4/6`, `enforce_sendmsg4/6` (one copy per
//! cgroup level, see `levels.rs`): connect, bind and UDP sendmsg allow and deny
//! lists, answered at the syscall with EPERM. The connect and bind programs
//! also refuse every call when the group's syscall rules deny `connect` or
//! `bind` (`deny.rs`).
//!
//! A group's connect list (which also covers UDP `sendto`/`sendmsg` with a
//! destination) and its bind list live in the LPM trie `NET_RULES`, keyed by
//! (owner, generation, list, family, address prefix). Userspace stores at each
//! prefix of a list *every* rule of that list whose network contains the
//! prefix, and always a `/0` entry, so one longest-prefix lookup returns all
//! the rules that can match an address: a bounded scan of at most
//! `RULES_PER_PREFIX` (port range, protocol) entries follows.
//!
//! Replacing a group's rules never leaves a gap: userspace writes the new
//! generation's entries, then flips `GroupPolicy::net_generation` (one value
//! replaced), then deletes the old generation's entries shortest prefix first.
//! A lookup therefore finds either the correct longest match of the generation
//! it read or nothing at all (its generation was deleted meanwhile), and then
//! the program re-reads the generation and looks again; if that keeps
//! failing it denies (fails closed).

use aya_ebpf::{
    macros::map,
    maps::lpm_trie::{Key, LpmTrie},
    programs::SockAddrContext,
};
use enforcer_common::{
    EVENT_NET_DENIED, EnforceCounter, NetKey, NetRuleSet, RULE_NONE, RULES_PER_PREFIX,
    enforce::{MAX_NET_RULE_KEYS, action, hook, list, op},
};

use crate::deny::denied;
use crate::events::{emit, task_event};
use crate::policy::{count, current_owner, rules};

/// (owner, generation, list, family, prefix) -> the rules that apply at that
/// prefix. Written by userspace.
#[map]
static NET_RULES: LpmTrie<NetKey, NetRuleSet> = LpmTrie::with_max_entries(MAX_NET_RULE_KEYS, 0);

/// sock_addr verdicts.
const ALLOW: i32 = 1;
const DENY: i32 = 0;

/// Lookups tried before failing closed (each retry means userspace replaced
/// the group's rules during this call).
const ATTEMPTS: usize = 3;

/// The address, port and protocol of one call.
struct Target {
    family: u8,
    addr: [u8; 16],
    port: u16,
    proto: u8,
}

#[inline(always)]
fn target(ctx: &SockAddrContext, v6: bool) -> Target {
    let sa = ctx.sock_addr;
    let mut addr = [0u8; 16];
    // SAFETY: `sa` is the bpf_sock_addr context of this program; the verifier
    // rewrites these 4-byte loads into reads of the kernel's sockaddr.
    let (port, proto) = unsafe {
        if v6 {
            for (i, chunk) in addr.chunks_exact_mut(4).enumerate() {
                let word = core::ptr::addr_of!((*sa).user_ip6)
                    .cast::<u32>()
                    .wrapping_add(i)
                    .read_volatile();
                chunk.copy_from_slice(&word.to_ne_bytes());
            }
        } else {
            let word = core::ptr::addr_of!((*sa).user_ip4).read_volatile();
            if let Some(head) = addr.get_mut(..4) {
                head.copy_from_slice(&word.to_ne_bytes());
            }
        }
        (
            core::ptr::addr_of!((*sa).user_port).read_volatile(),
            core::ptr::addr_of!((*sa).protocol).read_volatile(),
        )
    };
    Target {
        family: if v6 { list::V6 } else { list::V4 },
        addr,
        // user_port holds the port in network byte order in its low 16 bits.
        port: u16::from_be(port as u16),
        proto: proto as u8,
    }
}

/// Looks `addr` up in one list of one generation. `None`: the generation is
/// gone (its `/0` entry is always present while it is live). `Some(rule)`:
/// the index of the first matching rule, or `None` if no rule matches.
#[inline(always)]
fn lookup(
    owner: u64,
    generation: u32,
    which: u8,
    family: u8,
    addr: [u8; 16],
    t: &Target,
) -> Option<Option<u32>> {
    let bits = if family == list::V4 { 32 } else { 128 };
    let key = Key::new(
        // At most FIXED_BITS + 128 = 256: cannot wrap, the same value as a plain add.
        NetKey::FIXED_BITS.wrapping_add(bits),
        NetKey::new(owner, generation, which, family, addr),
    );
    let set = NET_RULES.get(&key)?;
    let count = set.count as usize;
    for i in 0..RULES_PER_PREFIX {
        if i >= count {
            break;
        }
        let Some(e) = set.entries.get(i) else {
            break;
        };
        if t.port >= e.port_lo && t.port <= e.port_hi && (e.proto == 0 || e.proto == t.proto) {
            return Some(Some(u32::from(e.rule)));
        }
    }
    Some(None)
}

/// Whether `addr` is an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`).
#[inline(always)]
fn v4_mapped(addr: &[u8; 16]) -> Option<[u8; 16]> {
    let (head, tail) = addr.split_at(12);
    if head.iter().take(10).all(|&b| b == 0) && head.get(10..12) == Some(&[0xff, 0xff][..]) {
        let mut v4 = [0u8; 16];
        v4.get_mut(..4)?.copy_from_slice(tail);
        return Some(v4);
    }
    None
}

/// The matching rule for `t` in the current generation of `owner`'s list, or
/// `Err(())` if the rules changed under us. IPv4 rules also apply to
/// IPv4-mapped IPv6 addresses (a dual-stack socket reaching an IPv4 peer).
#[inline(always)]
fn matching(owner: u64, generation: u32, which: u8, t: &Target) -> Result<Option<u32>, ()> {
    let own = lookup(owner, generation, which, t.family, t.addr, t).ok_or(())?;
    if own.is_some() || t.family == list::V4 {
        return Ok(own);
    }
    match v4_mapped(&t.addr) {
        Some(v4) => lookup(owner, generation, which, list::V4, v4, t).ok_or(()),
        None => Ok(None),
    }
}

/// The decision for one call: `Ok(())` to allow, `Err(rule)` to deny.
#[inline(always)]
fn decide(owner: u64, which: u8, t: &Target) -> Result<(), u32> {
    for _ in 0..ATTEMPTS {
        let Some(policy) = rules(owner) else {
            return Ok(());
        };
        let mode = if which == list::BIND {
            policy.bind
        } else {
            policy.connect
        };
        if mode == list::NONE {
            return Ok(());
        }
        let generation = policy.net_generation;
        match matching(owner, generation, which, t) {
            Ok(Some(rule)) if mode == list::DENY => return Err(rule),
            Ok(None) if mode == list::ALLOW => return Err(RULE_NONE),
            Ok(_) => return Ok(()),
            Err(()) => continue,
        }
    }
    Err(RULE_NONE)
}

/// The program body for `op` at cgroup `level`.
#[inline(always)]
pub(crate) fn sock_addr(ctx: &SockAddrContext, level: i32, op: u32) -> i32 {
    let (owner, task_cgroup) = current_owner(level);
    if owner == 0 {
        return ALLOW;
    }
    let v6 = matches!(op, op::CONNECT6 | op::BIND6 | op::SENDMSG6);
    let which = if matches!(op, op::BIND4 | op::BIND6) {
        list::BIND
    } else {
        list::CONNECT
    };
    // Syscall rules with `action = "deny"` for connect or bind refuse every
    // such call of the group, whatever the address (see `deny.rs`).
    let syscall_hook = match op {
        op::CONNECT4 | op::CONNECT6 => hook::SOCKET_CONNECT,
        op::BIND4 | op::BIND6 => hook::SOCKET_BIND,
        _ => 0,
    };
    if syscall_hook != 0 && denied(owner, task_cgroup, syscall_hook) {
        return DENY;
    }
    let t = target(ctx, v6);
    let Err(rule) = decide(owner, which, &t) else {
        return ALLOW;
    };
    count(owner, |c: &mut EnforceCounter| {
        let field = match op {
            op::BIND4 | op::BIND6 => &mut c.bind_denied,
            op::SENDMSG4 | op::SENDMSG6 => &mut c.sendmsg_denied,
            _ => &mut c.connect_denied,
        };
        *field = field.wrapping_add(1);
    });
    let mut event = task_event(EVENT_NET_DENIED, owner, task_cgroup);
    event.action = action::DENY;
    event.detail = op;
    event.rule = rule;
    event.port = t.port;
    event.proto = t.proto;
    event.family = t.family;
    event.addr = t.addr;
    emit(&event);
    DENY
}
