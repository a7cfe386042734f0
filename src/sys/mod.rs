//! Floor 1: the only place socklab talks to the kernel, and the only module allowed `unsafe`.
//!
//! What this layer promises to the floors above:
//! - **One function per system call**, named after it, with the man page in its doc. Where the
//!   kernel receives a different call than the name suggests, the narration says so
//!   (`recv` is made as `recvfrom(..., NULL, NULL)`; `accept` as `accept4` where it exists).
//! - **One helper for every call**: `syscall!` makes the call, turns `-1` into
//!   `io::Error::last_os_error()` (read at once, before anything else can touch errno) and reports
//!   the call to the narration hook. With no hook listening that costs one relaxed atomic load and
//!   one predictable branch; the argument list is built only inside the traced branch.
//! - **Nothing here retries**: an `EINTR` is returned, and the safe layer decides (it retries
//!   blocking calls, never `close`).
//! - **No leaks**: a descriptor the kernel hands back is an `OwnedFd` before anything else can fail.
//! - **One address type** ([`SockAddr`]) for every family, checked before it is read (`addr.rs`).
//!
//! Every `unsafe` block carries a `// SAFETY:` comment saying why its pointers and lengths are valid
//! (`clippy::undocumented_unsafe_blocks` enforces it).

// `unsafe_code` is allowed for this module alone, by the attribute on `pub mod sys` in lib.rs.
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
// time_t / suseconds_t are i64 on some targets and i32 on others; the casts are needed there.
#![allow(clippy::unnecessary_cast)]

use std::io;

/// Makes one system call and narrates it.
///
/// ```text
/// syscall!("name", unsafe { libc::call(...) }, [args...])                       // same args in and out
/// syscall!("name", unsafe { libc::call(...) }, [args in...] => |res| [args out...])  // out-parameters
/// ```
///
/// The call expression is written twice in the expansion (once per branch) so that the untraced
/// path is exactly: load the flag, branch, call, check for `-1`. The traced path reports the
/// arguments before the call (for `--step`) and again with the result (the line strace prints);
/// in the second list `res` is the `io::Result` of the call, for out-arguments that only exist on
/// success (a received buffer, an address the kernel wrote).
macro_rules! syscall {
    ($name:expr, $call:expr, [$($arg:expr),* $(,)?]) => {
        syscall!($name, $call, [$($arg),*] => |_res| [$($arg),*])
    };
    ($name:expr, $call:expr, [$($enter:expr),* $(,)?] => |$res:ident| [$($exit:expr),* $(,)?]) => {
        if $crate::sys::trace::enabled() {
            $crate::sys::trace::enter($name, &[$($enter),*]);
            let $res = $crate::sys::check($call);
            $crate::sys::trace::exit($name, &[$($exit),*], &$crate::sys::wide(&$res));
            $res
        } else {
            $crate::sys::check($call)
        }
    };
}

/// Narrates a call that never returns (`_exit`): only its entry can be reported.
macro_rules! syscall_noreturn {
    ($name:expr, [$($arg:expr),* $(,)?]) => {
        if $crate::sys::trace::enabled() {
            $crate::sys::trace::enter($name, &[$($arg),*]);
        }
    };
}

mod addr;
pub mod clock;
mod entry;
#[cfg(socklab_epoll)]
pub mod epoll;
mod fcntl;
mod fs;
#[cfg(socklab_uring)]
pub mod mem;
pub mod names;
#[cfg(socklab_sock_diag)]
pub mod netlink;
#[cfg(socklab_af_packet)]
pub mod packet;
#[cfg(target_os = "linux")]
pub mod perf;
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

pub use addr::{SockAddr, UnixName, decode_bytes as decode_sockaddr};
pub use clock::{monotonic_ns, realtime_ns};
pub use fcntl::{dup_cloexec, fcntl_get, fcntl_set, isatty};
pub use fs::{dirents, getdents64, lstat, mkdir, open, read, readlink, rename, rmdir, unlink, write};
pub use poll::{POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, PollFd, poll};
pub use socket::{
    MAX_FDS, Received, accept, bind, close, cmsg_len, connect, getpeername, getsockname, ioctl_fionread, listen, recv,
    recvfrom, recvmsg_fds, send, sendmsg_fds, sendto, shutdown, socket, socketpair,
};
#[cfg(any(target_os = "linux", target_os = "android"))]
pub use sockopt::getsockopt_peercred;
pub use sockopt::{
    getsockopt_bytes, getsockopt_int, getsockopt_linger, getsockopt_timeval, setsockopt_int, setsockopt_linger,
    setsockopt_timeval,
};
pub use timer::setitimer;

/// A C return value that means "look at errno" when it is `-1`: `int`, `ssize_t`, `long`.
pub(crate) trait Ret: Copy {
    fn is_minus_one(self) -> bool;
    fn widen(self) -> i64;
}

macro_rules! ret_impl {
    ($($t:ty),*) => {$(
        impl Ret for $t {
            fn is_minus_one(self) -> bool {
                self == -1
            }
            fn widen(self) -> i64 {
                self as i64
            }
        }
    )*};
}
ret_impl!(i32, i64, isize);

/// `-1` becomes the `io::Error` of errno, read right away; anything else is the call's result.
#[inline(always)]
pub(crate) fn check<T: Ret>(ret: T) -> io::Result<T> {
    if ret.is_minus_one() { Err(io::Error::last_os_error()) } else { Ok(ret) }
}

/// A result widened for the narration hook.
pub(crate) fn wide<T: Ret>(res: &io::Result<T>) -> io::Result<i64> {
    match res {
        Ok(v) => Ok(v.widen()),
        Err(e) => Err(io::Error::from_raw_os_error(e.raw_os_error().unwrap_or(0))),
    }
}
