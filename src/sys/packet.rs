//! `AF_PACKET`: a socket that receives copies of the frames an interface sees (what tcpdump uses).
//!
//! A packet socket is created, bound and read with the generic calls in `socket.rs`
//! (`socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL))`, which needs CAP_NET_RAW; `bind` with
//! [`SockAddr::packet`](super::SockAddr::packet); `recv`). The one call of its own is asking when
//! the last frame arrived. The bytes are parsed above `sys`, in safe code.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::trace::Arg;

pub use super::addr::ETH_P_ALL;

/// `socket(2)`'s protocol argument for "every EtherType": `htons(ETH_P_ALL)`.
pub const ALL_PROTOCOLS: libc::c_int = ETH_P_ALL.to_be() as libc::c_int;

/// `SIOCGSTAMPNS` (asm-generic `SIOCGSTAMPNS_OLD`): the kernel time stamp of the last frame read.
const SIOCGSTAMPNS: libc::c_ulong = 0x8907;

/// `ioctl(fd, SIOCGSTAMPNS, &ts)`: when the kernel received the frame the last recv returned, as
/// CLOCK_REALTIME `(seconds, nanoseconds)`. The first call also switches time stamping on.
///
/// Man pages: [`ioctl(2)`](https://man7.org/linux/man-pages/man2/ioctl.2.html), [`socket(7)`](https://man7.org/linux/man-pages/man7/socket.7.html).
pub fn ioctl_siocgstampns(fd: BorrowedFd<'_>) -> io::Result<(i64, i64)> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    let ptr: *mut libc::timespec = &mut ts;
    syscall!(
        "ioctl",
        // SAFETY: SIOCGSTAMPNS writes one struct timespec through `ptr`, which is valid for it.
        unsafe { libc::ioctl(fd.as_raw_fd(), SIOCGSTAMPNS as _, ptr) },
        [Arg::Fd(fd.as_raw_fd()), Arg::Name("SIOCGSTAMPNS"), Arg::OptOut]
            => |_res| [Arg::Fd(fd.as_raw_fd()), Arg::Name("SIOCGSTAMPNS"), Arg::Timespec { sec: ts.tv_sec as i64, nsec: ts.tv_nsec as i64 }]
    )?;
    Ok((ts.tv_sec as i64, ts.tv_nsec as i64))
}
