//! `fcntl(2)` for the few descriptor flags socklab sets after the fact: `O_NONBLOCK`, and the
//! fallback for platforms whose socket(2)/accept(2) cannot set `SOCK_CLOEXEC` atomically.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::trace::Arg;

/// `fcntl(fd, F_GETFL)` / `fcntl(fd, F_GETFD)`: reads the status or descriptor flags.
///
/// Man page: [`fcntl(2)`](https://man7.org/linux/man-pages/man2/fcntl.2.html).
pub fn fcntl_get(fd: BorrowedFd<'_>, cmd: libc::c_int) -> io::Result<libc::c_int> {
    syscall!(
        "fcntl",
        // SAFETY: F_GETFL / F_GETFD take no third argument and touch no memory of ours.
        unsafe { libc::fcntl(fd.as_raw_fd(), cmd) },
        [Arg::Fd(fd.as_raw_fd()), Arg::Int(cmd.into())]
    )
}

/// `fcntl(fd, F_SETFL, flags)` / `fcntl(fd, F_SETFD, flags)`: writes them (e.g. `O_NONBLOCK`, `FD_CLOEXEC`).
///
/// Man page: [`fcntl(2)`](https://man7.org/linux/man-pages/man2/fcntl.2.html).
pub fn fcntl_set(fd: BorrowedFd<'_>, cmd: libc::c_int, flags: libc::c_int) -> io::Result<()> {
    syscall!(
        "fcntl",
        // SAFETY: F_SETFL / F_SETFD take an int argument and touch no memory of ours.
        unsafe { libc::fcntl(fd.as_raw_fd(), cmd, flags) },
        [Arg::Fd(fd.as_raw_fd()), Arg::Int(cmd.into()), Arg::Int(flags.into())]
    )
    .map(drop)
}

/// `fcntl(fd, F_DUPFD_CLOEXEC, 0)`: a new descriptor for the same open file, close-on-exec, the
/// lowest number free.
///
/// Man page: [`fcntl(2)`](https://man7.org/linux/man-pages/man2/fcntl.2.html).
pub fn dup_cloexec(fd: BorrowedFd<'_>) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let new = syscall!(
        "fcntl",
        // SAFETY: F_DUPFD_CLOEXEC takes an int argument and touches no memory of ours.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) },
        [Arg::Fd(fd.as_raw_fd()), Arg::Name("F_DUPFD_CLOEXEC"), Arg::Int(0)]
    )?;
    // SAFETY: fcntl returned a new descriptor that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(new) })
}
