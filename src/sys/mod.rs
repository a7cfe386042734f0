//! Floor 1: the only place socklab talks to the kernel, and the only module allowed `unsafe`.
//!
//! What this layer promises to the floors above:
//! - **One function per system call**, named after it, with the man page in its doc. Where the
//!   kernel receives a different call than the name suggests, the narration says so
//!   (`recv` is made as `recvfrom(..., NULL, NULL)`; `accept` as `accept4` where it exists).
//! - **`std::io::Result` everywhere**; errno is read with the `errno` crate immediately after the
//!   call. Nothing here retries: an `EINTR` is returned, and the safe layer decides (it retries
//!   blocking calls, never `close`).
//! - **No leaks**: a descriptor the kernel hands back is an `OwnedFd` before anything else can fail.
//! - **Checked addresses**: sockaddrs the kernel writes are read only after their family and length
//!   are checked (`addr.rs`).
//! - **Observable**: every call is reported to the narration hook (`trace.rs`) when one is
//!   installed; otherwise that costs one relaxed atomic load.
//!
//! Every `unsafe` block carries a `// SAFETY:` comment saying why its pointers and lengths are valid
//! (`clippy::undocumented_unsafe_blocks` enforces it).

// `unsafe_code` is allowed for this module alone, by the attribute on `pub mod sys` in lib.rs.
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
// time_t / suseconds_t are i64 on some targets and i32 on others; the casts are needed there.
#![allow(clippy::unnecessary_cast)]

mod addr;
#[cfg(socklab_epoll)]
pub mod epoll;
mod fcntl;
pub mod names;
#[cfg(socklab_sock_diag)]
pub mod netlink;
#[cfg(socklab_af_packet)]
pub mod packet;
mod poll;
pub mod process;
#[cfg(target_os = "linux")]
pub mod resource;
mod socket;
mod sockopt;
mod timer;
pub mod trace;
#[cfg(socklab_uring)]
pub mod uring;

pub use addr::decode_bytes as decode_sockaddr;
pub use fcntl::{fcntl_get, fcntl_set};
pub use poll::{POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, PollFd, poll};
pub use socket::{
    accept, bind, close, connect, getpeername, getsockname, listen, recv, send, shutdown, socket, socketpair,
};
pub use sockopt::{
    getsockopt_bytes, getsockopt_int, getsockopt_linger, getsockopt_timeval, setsockopt_int, setsockopt_linger,
    setsockopt_timeval,
};
pub use timer::setitimer;
