//! `epoll(7)`: one kernel object that remembers which descriptors we care about, so each wait
//! costs time in the number of *ready* descriptors, not in the number watched (unlike poll(2),
//! which hands the whole list to the kernel on every call).
//!
//! Linux only (cfg `socklab_epoll`). The safe type above this is `crate::ready::Epoll`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::trace::Arg;

pub use libc::epoll_event as EpollEvent;
pub use libc::{
    EPOLL_CLOEXEC, EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD, EPOLLERR, EPOLLEXCLUSIVE, EPOLLHUP, EPOLLIN, EPOLLOUT,
    EPOLLRDHUP,
};

/// `epoll_create1(2)`: a new, empty epoll instance. Pass `EPOLL_CLOEXEC`.
///
/// Man page: [`epoll_create(2)`](https://man7.org/linux/man-pages/man2/epoll_create.2.html).
pub fn epoll_create1(flags: libc::c_int) -> io::Result<OwnedFd> {
    let fd = syscall!(
        "epoll_create1",
        // SAFETY: takes an integer and touches no memory of ours.
        unsafe { libc::epoll_create1(flags) },
        [Arg::EpollFlags(flags)]
    )?;
    // SAFETY: the kernel returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `epoll_ctl(2)`: adds (`EPOLL_CTL_ADD`), changes (`EPOLL_CTL_MOD`) or removes (`EPOLL_CTL_DEL`)
/// `fd` in the interest list of `epfd`. `events` is a mask of `EPOLLIN`, `EPOLLOUT`...; `data` comes
/// back unchanged with every event of this descriptor (callers store a token in it).
///
/// Man page: [`epoll_ctl(2)`](https://man7.org/linux/man-pages/man2/epoll_ctl.2.html).
pub fn epoll_ctl(epfd: BorrowedFd<'_>, op: libc::c_int, fd: BorrowedFd<'_>, events: u32, data: u64) -> io::Result<()> {
    let mut event = EpollEvent { events, u64: data };
    // EPOLL_CTL_DEL's event is ignored by the kernel (since Linux 2.6.9): pass NULL, as strace
    // then shows it, so the narration says what was really passed.
    let shown = if op == EPOLL_CTL_DEL { Arg::Null } else { Arg::EpollEvent { events, data } };
    let ptr: *mut EpollEvent = if op == EPOLL_CTL_DEL { std::ptr::null_mut() } else { &mut event };
    syscall!(
        "epoll_ctl",
        // SAFETY: `ptr` is NULL (EPOLL_CTL_DEL, where the kernel ignores it) or points to `event`,
        // a valid epoll_event for the whole call (the kernel only reads it).
        unsafe { libc::epoll_ctl(epfd.as_raw_fd(), op, fd.as_raw_fd(), ptr) },
        [Arg::Fd(epfd.as_raw_fd()), Arg::EpollOp(op), Arg::Fd(fd.as_raw_fd()), shown]
    )
    .map(drop)
}

/// `epoll_wait(2)`: blocks until at least one watched descriptor is ready or `timeout_ms` passes
/// (`-1`: forever), and fills the front of `events`. Returns how many entries were filled.
///
/// Man page: [`epoll_wait(2)`](https://man7.org/linux/man-pages/man2/epoll_wait.2.html).
pub fn epoll_wait(epfd: BorrowedFd<'_>, events: &mut [EpollEvent], timeout_ms: libc::c_int) -> io::Result<usize> {
    let max = events.len().min(libc::c_int::MAX as usize) as libc::c_int;
    let ptr = events.as_mut_ptr();
    let n = syscall!(
        "epoll_wait",
        // SAFETY: `events` is valid for writes of `max` epoll_event structs for the whole call.
        unsafe { libc::epoll_wait(epfd.as_raw_fd(), ptr, max, timeout_ms) },
        [Arg::Fd(epfd.as_raw_fd()), Arg::EpollEvents(&[]), Arg::Int(max.into()), Arg::Int(timeout_ms.into())]
            => |res| [Arg::Fd(epfd.as_raw_fd()), Arg::EpollEvents(&events[..*res.as_ref().unwrap_or(&0) as usize]), Arg::Int(max.into()), Arg::Int(timeout_ms.into())]
    )?;
    Ok(n as usize)
}
