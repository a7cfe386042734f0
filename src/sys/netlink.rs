//! `NETLINK_SOCK_DIAG`: the kernel's socket table, as `ss` reads it. No privileges needed.
//!
//! A netlink socket is created, written and read with the generic calls in `socket.rs`
//! (`socket(AF_NETLINK, SOCK_RAW, NETLINK_SOCK_DIAG)`, `send`, `recv`: an unconnected netlink
//! socket sends to the kernel). What lives here is the kernel ABI those bytes follow
//! (`linux/netlink.h`, `linux/sock_diag.h`, `linux/inet_diag.h`), so the parser above `sys` can stay
//! in safe code and plain byte offsets.

/// socket(2)'s protocol for socket diagnostics.
pub const NETLINK_SOCK_DIAG: libc::c_int = 4;
/// `struct nlmsghdr`'s size: len u32, type u16, flags u16, seq u32, pid u32.
pub const NLMSG_HDRLEN: usize = 16;
/// Message type: the end of a multi-part dump.
pub const NLMSG_DONE: u16 = 3;
/// Message type: an error (an `nlmsgerr` with a negative errno follows).
pub const NLMSG_ERROR: u16 = 2;
/// Message type of a sock_diag request and of its answers.
pub const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// Flags: a request, asking for a dump of all matching entries.
pub const NLM_F_REQUEST_DUMP: u16 = 0x1 | 0x300;
/// `struct inet_diag_req_v2`'s size.
pub const INET_DIAG_REQ_V2_LEN: usize = 56;
/// `struct inet_diag_msg`'s size.
pub const INET_DIAG_MSG_LEN: usize = 72;
/// Extension bit: ask for `struct tcp_info` (attribute `INET_DIAG_INFO`).
pub const INET_DIAG_INFO: u16 = 2;
