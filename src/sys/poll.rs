//! `poll(2)`: wait until one of several descriptors is ready.

use std::io;

use super::socket::{cvt, wide};
use super::trace::{self, Arg};

pub use libc::pollfd as PollFd;
pub use libc::{POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT};

/// `poll(2)`: blocks until an event in `fds[i].events` happens on some descriptor (the kernel sets
/// `fds[i].revents`), or `timeout_ms` passes (`-1`: forever). Returns how many entries have events.
pub fn poll(fds: &mut [PollFd], timeout_ms: libc::c_int) -> io::Result<usize> {
    let (len, timeout) = (Arg::Int(fds.len() as i64), Arg::Int(timeout_ms.into()));
    if trace::enabled() {
        trace::enter("poll", &[Arg::PollFds(fds), len, timeout]);
    }
    // SAFETY: `fds` is a valid, writable array of `fds.len()` pollfd structs for the whole call.
    let ret = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    let res = cvt(ret);
    if trace::enabled() {
        trace::exit("poll", &[Arg::PollFds(fds), len, timeout], &wide(res.as_ref().copied()));
    }
    res.map(|n| n as usize)
}
