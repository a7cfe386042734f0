//! `fcntl(2)` for the few descriptor flags socklab sets after the fact: `O_NONBLOCK`, and the
//! fallback for platforms whose socket(2)/accept(2) cannot set `SOCK_CLOEXEC` atomically. And
//! the terminal check (`ioctl(fd, TCGETS)`) that decides whether a live progress line is drawn.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::trace::Arg;

/// `ioctl(fd, TCGETS, &termios)`, what `isatty(3)` asks: whether `fd` is a terminal (the kernel
/// has terminal settings for it); anything else fails with `ENOTTY`, which is the answer, not an
/// error.
///
/// Man page: [`ioctl_tty(2)`](https://man7.org/linux/man-pages/man2/ioctl_tty.2.html).
pub fn isatty(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: struct termios is plain C data for which all-zero bytes are valid.
    let mut termios: libc::termios = unsafe { std::mem::zeroed() };
    let ptr: *mut libc::termios = &mut termios;
    syscall!(
        "ioctl",
        // SAFETY: TCGETS writes one struct termios through `ptr`, which is valid for it.
        unsafe { libc::ioctl(fd.as_raw_fd(), libc::TCGETS as _, ptr) },
        [Arg::Fd(fd.as_raw_fd()), Arg::Name("TCGETS"), Arg::Ptr(ptr as usize)]
            => |res| [Arg::Fd(fd.as_raw_fd()), Arg::Name("TCGETS"), match res {
                Ok(_) => Arg::Name("{...}"),
                Err(_) => Arg::Ptr(ptr as usize),
            }]
    )
    .is_ok()
}

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
