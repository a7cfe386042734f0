//! `poll(2)`: wait until one of several descriptors is ready. The safe type above this is
//! `crate::ready::PollSet`.

use std::io;

use super::trace::Arg;

pub use libc::pollfd as PollFd;
pub use libc::{POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT};

/// `poll(2)`: blocks until an event in `fds[i].events` happens on some descriptor (the kernel sets
/// `fds[i].revents`), or `timeout_ms` passes (`-1`: forever). Returns how many entries have events.
///
/// Man page: [`poll(2)`](https://man7.org/linux/man-pages/man2/poll.2.html).
pub fn poll(fds: &mut [PollFd], timeout_ms: libc::c_int) -> io::Result<usize> {
    let (ptr, len) = (fds.as_mut_ptr(), fds.len());
    let n = syscall!(
        "poll",
        // SAFETY: `fds` is a valid, writable array of `len` pollfd structs for the whole call.
        unsafe { libc::poll(ptr, len as libc::nfds_t, timeout_ms) },
        [Arg::PollFds(fds), Arg::Int(len as i64), Arg::Int(timeout_ms.into())]
    )?;
    Ok(n as usize)
}
