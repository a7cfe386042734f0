//! `setsockopt(2)` / `getsockopt(2)`, typed by the C value each option takes.
//!
//! One C call, several Rust functions: an option's value is an `int`, a `struct linger`, a
//! `struct timeval` or a struct the caller parses from bytes, and each function passes exactly
//! that type, with its size as `optlen`. The safe layer (`Socket`) names each option.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use super::trace::Arg;

/// Passes `value` (a plain C struct or int) as the option value.
fn set<T>(fd: BorrowedFd<'_>, level: libc::c_int, name: libc::c_int, value: &T, shown: Arg<'_>) -> io::Result<()> {
    let len = mem::size_of::<T>() as libc::socklen_t;
    syscall!(
        "setsockopt",
        // SAFETY: `value` points to a live, initialised `T` of exactly `len` bytes.
        unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, (value as *const T).cast(), len) },
        [Arg::Fd(fd.as_raw_fd()), Arg::SockOpt(level, name), shown, Arg::Int(len.into())]
    )
    .map(drop)
}

/// Reads an option into `value` (a plain C struct or int); `show` describes it once written.
fn get<T>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: &mut T,
    show: impl Fn(&T) -> Arg<'static>,
) -> io::Result<libc::socklen_t> {
    let mut len = mem::size_of::<T>() as libc::socklen_t;
    let (ptr, len_ptr): (*mut T, *mut libc::socklen_t) = (&mut *value, &mut len);
    syscall!(
        "getsockopt",
        // SAFETY: `ptr` is writable for `len` bytes; the kernel writes at most that many and stores
        // the real length back through `len_ptr`.
        unsafe { libc::getsockopt(fd.as_raw_fd(), level, name, ptr.cast(), len_ptr) },
        [Arg::Fd(fd.as_raw_fd()), Arg::SockOpt(level, name), Arg::OptOut, Arg::OptLen(len)]
            => |res| [Arg::Fd(fd.as_raw_fd()), Arg::SockOpt(level, name), if res.is_ok() { show(value) } else { Arg::OptOut }, Arg::OptLen(len)]
    )?;
    Ok(len)
}

/// `setsockopt(fd, level, name, &int, 4)`: SO_REUSEADDR, TCP_NODELAY, SO_KEEPALIVE, SO_RCVBUF...
///
/// Man page: [`getsockopt(2)`](https://man7.org/linux/man-pages/man2/getsockopt.2.html).
pub fn setsockopt_int(fd: BorrowedFd<'_>, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    set(fd, level, name, &value, Arg::OptInt(value))
}

/// `setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, 8)`. `Some(0)` makes close send RST at once
/// (an abortive close: no FIN, no TIME-WAIT); `None` restores the normal graceful close.
///
/// Man pages: [`getsockopt(2)`](https://man7.org/linux/man-pages/man2/getsockopt.2.html), [`socket(7)`](https://man7.org/linux/man-pages/man7/socket.7.html).
pub fn setsockopt_linger(fd: BorrowedFd<'_>, linger: Option<Duration>) -> io::Result<()> {
    let value = libc::linger {
        l_onoff: linger.is_some() as libc::c_int,
        l_linger: linger.map_or(0, |d| d.as_secs().min(libc::c_int::MAX as u64) as libc::c_int),
    };
    set(fd, libc::SOL_SOCKET, libc::SO_LINGER, &value, Arg::OptLinger { onoff: value.l_onoff, linger: value.l_linger })
}

/// `setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO or SO_SNDTIMEO, &timeval, 16)`. `None` (a zero timeval)
/// means block forever. A timed-out recv/send fails with `EAGAIN`.
///
/// Man pages: [`getsockopt(2)`](https://man7.org/linux/man-pages/man2/getsockopt.2.html), [`socket(7)`](https://man7.org/linux/man-pages/man7/socket.7.html).
pub fn setsockopt_timeval(fd: BorrowedFd<'_>, name: libc::c_int, timeout: Option<Duration>) -> io::Result<()> {
    let d = timeout.unwrap_or(Duration::ZERO);
    // A non-zero timeout shorter than 1 µs would round to zero, which means "forever": round up.
    let usec = if timeout.is_some() && d.as_micros() == 0 { 1 } else { d.subsec_micros() };
    let value = libc::timeval {
        tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
        tv_usec: usec as libc::suseconds_t,
    };
    let shown = Arg::OptTimeval { sec: value.tv_sec as i64, usec: value.tv_usec as i64 };
    set(fd, libc::SOL_SOCKET, name, &value, shown)
}

/// `getsockopt(fd, level, name, &int, [4])` for options whose value is an int (SO_ERROR, SO_TYPE,
/// SO_REUSEADDR, TCP_NODELAY, SO_RCVBUF...).
///
/// Man page: [`getsockopt(2)`](https://man7.org/linux/man-pages/man2/getsockopt.2.html).
pub fn getsockopt_int(fd: BorrowedFd<'_>, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    get(fd, level, name, &mut value, |v| Arg::OptInt(*v))?;
    Ok(value)
}

/// `getsockopt(SO_LINGER)`: the current linger setting.
///
/// Man pages: [`getsockopt(2)`](https://man7.org/linux/man-pages/man2/getsockopt.2.html), [`socket(7)`](https://man7.org/linux/man-pages/man7/socket.7.html).
pub fn getsockopt_linger(fd: BorrowedFd<'_>) -> io::Result<Option<Duration>> {
    let mut value = libc::linger { l_onoff: 0, l_linger: 0 };
    get(fd, libc::SOL_SOCKET, libc::SO_LINGER, &mut value, |v| Arg::OptLinger {
        onoff: v.l_onoff,
        linger: v.l_linger,
    })?;
    Ok((value.l_onoff != 0).then(|| Duration::from_secs(value.l_linger.max(0) as u64)))
}

/// `getsockopt(SO_RCVTIMEO / SO_SNDTIMEO)`: `None` when the call blocks forever.
///
/// Man pages: [`getsockopt(2)`](https://man7.org/linux/man-pages/man2/getsockopt.2.html), [`socket(7)`](https://man7.org/linux/man-pages/man7/socket.7.html).
pub fn getsockopt_timeval(fd: BorrowedFd<'_>, name: libc::c_int) -> io::Result<Option<Duration>> {
    let mut value = libc::timeval { tv_sec: 0, tv_usec: 0 };
    get(fd, libc::SOL_SOCKET, name, &mut value, |v| Arg::OptTimeval { sec: v.tv_sec as i64, usec: v.tv_usec as i64 })?;
    let d = Duration::new(value.tv_sec.max(0) as u64, (value.tv_usec.max(0) as u32) * 1000);
    Ok((!d.is_zero()).then_some(d))
}

/// `getsockopt(fd, level, name, buf, [len])` for options whose value is a struct the caller parses
/// from bytes (`TCP_INFO`'s `struct tcp_info`). Returns how many bytes the kernel wrote, which may
/// be fewer than `buf.len()` on an older kernel with a shorter struct.
///
/// Man page: [`getsockopt(2)`](https://man7.org/linux/man-pages/man2/getsockopt.2.html).
pub fn getsockopt_bytes(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    buf: &mut [u8],
) -> io::Result<usize> {
    let mut len = buf.len().min(libc::socklen_t::MAX as usize) as libc::socklen_t;
    let (ptr, len_ptr): (*mut u8, *mut libc::socklen_t) = (buf.as_mut_ptr(), &mut len);
    syscall!(
        "getsockopt",
        // SAFETY: `buf` is writable for `len` bytes; the kernel writes at most `len` and stores the
        // real length back through `len_ptr`.
        unsafe { libc::getsockopt(fd.as_raw_fd(), level, name, ptr.cast(), len_ptr) },
        [Arg::Fd(fd.as_raw_fd()), Arg::SockOpt(level, name), Arg::OptOut, Arg::OptLen(len)]
            => |res| [Arg::Fd(fd.as_raw_fd()), Arg::SockOpt(level, name), match res { Ok(_) => Arg::Data(&buf[..(len as usize).min(buf.len())]), Err(_) => Arg::Ptr(buf.as_ptr() as usize) }, Arg::OptLen(len)]
    )?;
    Ok((len as usize).min(buf.len()))
}

/// `getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &ucred, [12])` (Linux): who is at the other end of a
/// connected `AF_UNIX` socket — the pid, uid and gid the kernel recorded when the peer called
/// connect (or socketpair). Not forgeable by the peer: the kernel filled it in.
///
/// Man pages: [`getsockopt(2)`](https://man7.org/linux/man-pages/man2/getsockopt.2.html), [`unix(7)`](https://man7.org/linux/man-pages/man7/unix.7.html).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn getsockopt_peercred(fd: BorrowedFd<'_>) -> io::Result<(i32, u32, u32)> {
    let mut value = libc::ucred { pid: 0, uid: 0, gid: 0 };
    get(fd, libc::SOL_SOCKET, libc::SO_PEERCRED, &mut value, |v| Arg::PeerCred { pid: v.pid, uid: v.uid, gid: v.gid })?;
    Ok((value.pid, value.uid, value.gid))
}
