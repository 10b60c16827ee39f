//! The cgroup-attached enforcement programs, one copy per cgroup level.
//!
//! A program attached to a cgroup runs for that cgroup and all its
//! descendants, and cannot tell which cgroup it was attached to. Each copy
//! here has the level baked in: the copy for level `L` is attached only to
//! groups at level `L` (below the cgroup2 root, level 0) and finds its group as
//! the level-`L` ancestor of the task's or packet's cgroup. So a group's rules
//! cover its subtree, nested policy groups each apply their own rules (a packet
//! of a sub-group is charged to both budgets, as cgroup limits nest), and a
//! group never acts twice on one packet or call.
//!
//! Userspace (`enforcer::bpf::layout`) derives the names, `<kind>_<level>`, for
//! levels 1 to `enforcer_common::ENFORCE_MAX_LEVEL`, and loads only the copies
//! for levels in use.
//!
//! | kind | hook | body |
//! |---|---|---|
//! | `enforce_egress_L` | `cgroup_skb` egress | `limits::skb` |
//! | `enforce_ingress_L` | `cgroup_skb` ingress | `limits::skb` |
//! | `enforce_connect4_L` | `cgroup_sock_addr` connect4 | `netrules::sock_addr` |
//! | `enforce_connect6_L` | `cgroup_sock_addr` connect6 | `netrules::sock_addr` |
//! | `enforce_bind4_L` | `cgroup_sock_addr` bind4 | `netrules::sock_addr` |
//! | `enforce_bind6_L` | `cgroup_sock_addr` bind6 | `netrules::sock_addr` |
//! | `enforce_sendmsg4_L` | `cgroup_sock_addr` sendmsg4 | `netrules::sock_addr` |
//! | `enforce_sendmsg6_L` | `cgroup_sock_addr` sendmsg6 | `netrules::sock_addr` |
//! | `enforce_sock_create_L` | `cgroup_sock` sock_create | `deny::sock_create` |
//! | `enforce_setsockopt_L` | `cgroup_sockopt` setsockopt | `deny::setsockopt` |
//! | `enforce_socket_listen_L` | `lsm_cgroup` hook = "socket_listen" | `deny::lsm` |
//! | `enforce_socket_accept_L` | `lsm_cgroup` hook = "socket_accept" | `deny::lsm` |
//! | `enforce_bprm_check_L` | `lsm_cgroup` hook = "bprm_check_security" | `deny::lsm` |

use aya_ebpf::{
    macros::{cgroup_skb, cgroup_sock, cgroup_sock_addr, cgroup_sockopt, lsm_cgroup},
    programs::{LsmContext, SkBuffContext, SockAddrContext, SockContext, SockoptContext},
};
use enforcer_common::enforce::{direction, hook, op};

use crate::{deny, limits, netrules};

macro_rules! level {
    ($level:literal, $enforce_egress:ident, $enforce_ingress:ident, $enforce_connect4:ident, $enforce_connect6:ident, $enforce_bind4:ident, $enforce_bind6:ident, $enforce_sendmsg4:ident, $enforce_sendmsg6:ident, $enforce_sock_create:ident, $enforce_setsockopt:ident, $enforce_socket_listen:ident, $enforce_socket_accept:ident, $enforce_bprm_check:ident $(,)?) => {
        #[cgroup_skb(egress)]
        fn $enforce_egress(ctx: SkBuffContext) -> i32 {
            limits::skb(&ctx, $level, direction::EGRESS)
        }

        #[cgroup_skb(ingress)]
        fn $enforce_ingress(ctx: SkBuffContext) -> i32 {
            limits::skb(&ctx, $level, direction::INGRESS)
        }

        #[cgroup_sock_addr(connect4)]
        fn $enforce_connect4(ctx: SockAddrContext) -> i32 {
            netrules::sock_addr(&ctx, $level, op::CONNECT4)
        }

        #[cgroup_sock_addr(connect6)]
        fn $enforce_connect6(ctx: SockAddrContext) -> i32 {
            netrules::sock_addr(&ctx, $level, op::CONNECT6)
        }

        #[cgroup_sock_addr(bind4)]
        fn $enforce_bind4(ctx: SockAddrContext) -> i32 {
            netrules::sock_addr(&ctx, $level, op::BIND4)
        }

        #[cgroup_sock_addr(bind6)]
        fn $enforce_bind6(ctx: SockAddrContext) -> i32 {
            netrules::sock_addr(&ctx, $level, op::BIND6)
        }

        #[cgroup_sock_addr(sendmsg4)]
        fn $enforce_sendmsg4(ctx: SockAddrContext) -> i32 {
            netrules::sock_addr(&ctx, $level, op::SENDMSG4)
        }

        #[cgroup_sock_addr(sendmsg6)]
        fn $enforce_sendmsg6(ctx: SockAddrContext) -> i32 {
            netrules::sock_addr(&ctx, $level, op::SENDMSG6)
        }

        #[cgroup_sock(sock_create)]
        fn $enforce_sock_create(ctx: SockContext) -> i32 {
            deny::sock_create(&ctx, $level, hook::SOCKET_CREATE)
        }

        #[cgroup_sockopt(setsockopt)]
        fn $enforce_setsockopt(ctx: SockoptContext) -> i32 {
            deny::setsockopt(&ctx, $level, hook::SOCKET_SETSOCKOPT)
        }

        #[lsm_cgroup(hook = "socket_listen")]
        fn $enforce_socket_listen(ctx: LsmContext) -> i32 {
            deny::lsm(&ctx, $level, hook::SOCKET_LISTEN)
        }

        #[lsm_cgroup(hook = "socket_accept")]
        fn $enforce_socket_accept(ctx: LsmContext) -> i32 {
            deny::lsm(&ctx, $level, hook::SOCKET_ACCEPT)
        }

        #[lsm_cgroup(hook = "bprm_check_security")]
        fn $enforce_bprm_check(ctx: LsmContext) -> i32 {
            deny::lsm(&ctx, $level, hook::BPRM_CHECK)
        }
    };
}

level!(
    1,
    enforce_egress_1,
    enforce_ingress_1,
    enforce_connect4_1,
    enforce_connect6_1,
    enforce_bind4_1,
    enforce_bind6_1,
    enforce_sendmsg4_1,
    enforce_sendmsg6_1,
    enforce_sock_create_1,
    enforce_setsockopt_1,
    enforce_socket_listen_1,
    enforce_socket_accept_1,
    enforce_bprm_check_1
);
level!(
    2,
    enforce_egress_2,
    enforce_ingress_2,
    enforce_connect4_2,
    enforce_connect6_2,
    enforce_bind4_2,
    enforce_bind6_2,
    enforce_sendmsg4_2,
    enforce_sendmsg6_2,
    enforce_sock_create_2,
    enforce_setsockopt_2,
    enforce_socket_listen_2,
    enforce_socket_accept_2,
    enforce_bprm_check_2
);
level!(
    3,
    enforce_egress_3,
    enforce_ingress_3,
    enforce_connect4_3,
    enforce_connect6_3,
    enforce_bind4_3,
    enforce_bind6_3,
    enforce_sendmsg4_3,
    enforce_sendmsg6_3,
    enforce_sock_create_3,
    enforce_setsockopt_3,
    enforce_socket_listen_3,
    enforce_socket_accept_3,
    enforce_bprm_check_3
);
level!(
    4,
    enforce_egress_4,
    enforce_ingress_4,
    enforce_connect4_4,
    enforce_connect6_4,
    enforce_bind4_4,
    enforce_bind6_4,
    enforce_sendmsg4_4,
    enforce_sendmsg6_4,
    enforce_sock_create_4,
    enforce_setsockopt_4,
    enforce_socket_listen_4,
    enforce_socket_accept_4,
    enforce_bprm_check_4
);
level!(
    5,
    enforce_egress_5,
    enforce_ingress_5,
    enforce_connect4_5,
    enforce_connect6_5,
    enforce_bind4_5,
    enforce_bind6_5,
    enforce_sendmsg4_5,
    enforce_sendmsg6_5,
    enforce_sock_create_5,
    enforce_setsockopt_5,
    enforce_socket_listen_5,
    enforce_socket_accept_5,
    enforce_bprm_check_5
);
level!(
    6,
    enforce_egress_6,
    enforce_ingress_6,
    enforce_connect4_6,
    enforce_connect6_6,
    enforce_bind4_6,
    enforce_bind6_6,
    enforce_sendmsg4_6,
    enforce_sendmsg6_6,
    enforce_sock_create_6,
    enforce_setsockopt_6,
    enforce_socket_listen_6,
    enforce_socket_accept_6,
    enforce_bprm_check_6
);
level!(
    7,
    enforce_egress_7,
    enforce_ingress_7,
    enforce_connect4_7,
    enforce_connect6_7,
    enforce_bind4_7,
    enforce_bind6_7,
    enforce_sendmsg4_7,
    enforce_sendmsg6_7,
    enforce_sock_create_7,
    enforce_setsockopt_7,
    enforce_socket_listen_7,
    enforce_socket_accept_7,
    enforce_bprm_check_7
);
level!(
    8,
    enforce_egress_8,
    enforce_ingress_8,
    enforce_connect4_8,
    enforce_connect6_8,
    enforce_bind4_8,
    enforce_bind6_8,
    enforce_sendmsg4_8,
    enforce_sendmsg6_8,
    enforce_sock_create_8,
    enforce_setsockopt_8,
    enforce_socket_listen_8,
    enforce_socket_accept_8,
    enforce_bprm_check_8
);
