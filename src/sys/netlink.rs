//! `NETLINK_SOCK_DIAG`: the kernel's socket table, as `ss` reads it. No privileges needed.
//!
//! A netlink socket is created, written and read with the generic calls in `socket.rs`
//! (`socket(AF_NETLINK, SOCK_RAW, NETLINK_SOCK_DIAG)`, `send`, `recv`: an unconnected netlink
//! socket sends to the kernel). The messages are built and parsed above `sys`, in safe code
//! (`diag/parse.rs`), so nothing but the protocol number lives here.

/// socket(2)'s protocol for socket diagnostics.
pub const NETLINK_SOCK_DIAG: libc::c_int = 4;
