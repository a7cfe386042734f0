//! `pipe2(2)` and `splice(2)`: moving bytes between a socket and a pipe inside the kernel, so an
//! echo never copies them into user memory (the `--splice` option of the epoll server).
//!
//! Linux only (cfg `socklab_epoll`, which is the same set of systems).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::socket::{cvt, wide};
use super::trace::{self, Arg};

pub use libc::{O_CLOEXEC, O_NONBLOCK, SPLICE_F_MOVE, SPLICE_F_NONBLOCK};

/// `pipe2(2)`: a new pipe, `(read end, write end)`. Pass `O_CLOEXEC | O_NONBLOCK`.
pub fn pipe2(flags: libc::c_int) -> io::Result<(OwnedFd, OwnedFd)> {
    let args = [Arg::Int(flags.into())];
    if trace::enabled() {
        trace::enter("pipe2", &args);
    }
    let mut fds = [-1 as libc::c_int; 2];
    // SAFETY: `fds` is a writable array of two ints, which the kernel fills on success.
    let res = cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), flags) });
    if trace::enabled() {
        trace::exit("pipe2", &args, &wide(res.as_ref().copied()));
    }
    // SAFETY: on success both descriptors are fresh and owned by nobody else.
    res.map(|_| unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `splice(2)`: moves up to `len` bytes from `from` to `to`, one of which must be a pipe, without
/// copying them through user memory. Returns how many moved; 0 means end of input.
pub fn splice(from: BorrowedFd<'_>, to: BorrowedFd<'_>, len: usize, flags: libc::c_uint) -> io::Result<usize> {
    let args = [Arg::Fd(from.as_raw_fd()), Arg::Null, Arg::Fd(to.as_raw_fd()), Arg::Null, Arg::Int(len as i64)];
    if trace::enabled() {
        trace::enter("splice", &args);
    }
    // SAFETY: null offsets mean "use the descriptors' own positions" (required for sockets and
    // pipes); no memory of ours is passed.
    let ret = unsafe {
        libc::splice(from.as_raw_fd(), std::ptr::null_mut(), to.as_raw_fd(), std::ptr::null_mut(), len, flags)
    };
    let res = if ret == -1 { Err(io::Error::from_raw_os_error(errno::errno().0)) } else { Ok(ret as usize) };
    if trace::enabled() {
        trace::exit("splice", &args, &wide(res.as_ref().copied()));
    }
    res
}
