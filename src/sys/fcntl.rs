//! `fcntl(2)` for the few descriptor flags socklab sets after the fact: the fallback for platforms
//! whose socket(2)/accept(2) cannot set `SOCK_CLOEXEC` / `SOCK_NONBLOCK` atomically.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::socket::{cvt, wide};
use super::trace::{self, Arg};

/// `fcntl(fd, F_GETFL)` / `fcntl(fd, F_GETFD)`: reads the status or descriptor flags.
pub fn fcntl_get(fd: BorrowedFd<'_>, cmd: libc::c_int) -> io::Result<libc::c_int> {
    // SAFETY: F_GETFL / F_GETFD take no third argument and touch no memory of ours.
    let res = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), cmd) });
    if trace::enabled() {
        trace::exit("fcntl", &[Arg::Fd(fd.as_raw_fd()), Arg::Int(cmd.into())], &wide(res.as_ref().copied()));
    }
    res
}

/// `fcntl(fd, F_SETFL, flags)` / `fcntl(fd, F_SETFD, flags)`: writes them (e.g. `O_NONBLOCK`, `FD_CLOEXEC`).
pub fn fcntl_set(fd: BorrowedFd<'_>, cmd: libc::c_int, flags: libc::c_int) -> io::Result<()> {
    let args = [Arg::Fd(fd.as_raw_fd()), Arg::Int(cmd.into()), Arg::Int(flags.into())];
    if trace::enabled() {
        trace::enter("fcntl", &args);
    }
    // SAFETY: F_SETFL / F_SETFD take an int argument and touch no memory of ours.
    let res = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), cmd, flags) });
    if trace::enabled() {
        trace::exit("fcntl", &args, &wide(res.as_ref().copied()));
    }
    res.map(drop)
}
