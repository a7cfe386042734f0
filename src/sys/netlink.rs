//! Netlink protocols socklab speaks. No calls of their own: a netlink socket is created, bound,
//! written and read with the generic calls in `socket.rs` (`socket(AF_NETLINK, SOCK_RAW,
//! PROTOCOL)`, `bind`, `send`, `recv`: an unconnected netlink socket sends to the kernel). The
//! messages are built and parsed above `sys`, in safe code (`diag/parse.rs`, `nfqueue.rs`), so
//! nothing but the protocol numbers lives here.
//!
//! - `NETLINK_SOCK_DIAG`: the kernel's socket table, as `ss` reads it. No privileges needed.
//! - `NETLINK_NETFILTER`: netfilter's subsystems; socklab uses `nfnetlink_queue`, which hands a
//!   program the packets an `NFQUEUE` firewall rule sends it and waits for its verdict
//!   (`netfilter.org`'s libnetfilter_queue does the same over the same socket). Needs
//!   CAP_NET_ADMIN in the socket's network namespace.

/// socket(2)'s protocol for socket diagnostics.
pub const NETLINK_SOCK_DIAG: libc::c_int = 4;

/// socket(2)'s protocol for netfilter (`nfnetlink`): the packet queue among others.
pub const NETLINK_NETFILTER: libc::c_int = 12;
