//! `AF_PACKET`: a socket that receives copies of the frames an interface sees (what tcpdump uses).
//!
//! Only the two calls a packet socket needs beyond the generic ones in `socket.rs` live here:
//! binding to one interface (a `sockaddr_ll`, not an IP address) and asking when the last frame
//! arrived. Creating it is `socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL))`, which needs
//! CAP_NET_RAW; reading is plain `recv`. The bytes are parsed above `sys`, in safe code.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::socket::{cvt, wide};
use super::trace::{self, Arg};

/// `ETH_P_ALL`: every protocol, for socket(2)'s third argument (after `htons`).
pub const ETH_P_ALL: u16 = 0x0003;

/// `socket(2)`'s protocol argument for "every EtherType": `htons(ETH_P_ALL)`.
pub const ALL_PROTOCOLS: libc::c_int = ETH_P_ALL.to_be() as libc::c_int;

/// `SIOCGSTAMPNS` (asm-generic `SIOCGSTAMPNS_OLD`): the kernel time stamp of the last frame read.
const SIOCGSTAMPNS: libc::c_ulong = 0x8907;

/// `bind(2)` with a `sockaddr_ll`: receive only the frames of interface `ifindex`.
pub fn bind(fd: BorrowedFd<'_>, ifindex: i32, protocol: u16) -> io::Result<()> {
    // SAFETY: sockaddr_ll is a plain C struct; all-zero bytes are a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as libc::c_ushort;
    sll.sll_protocol = protocol.to_be();
    sll.sll_ifindex = ifindex;
    let len = mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    let args = [Arg::Fd(fd.as_raw_fd()), Arg::PacketAddr { ifindex, protocol }, Arg::Int(len.into())];
    if trace::enabled() {
        trace::enter("bind", &args);
    }
    // SAFETY: `sll` is a valid sockaddr_ll of `len` bytes, alive for the whole call.
    let res = cvt(unsafe { libc::bind(fd.as_raw_fd(), (&sll as *const libc::sockaddr_ll).cast(), len) });
    if trace::enabled() {
        trace::exit("bind", &args, &wide(res.as_ref().copied()));
    }
    res.map(drop)
}

/// `ioctl(fd, SIOCGSTAMPNS, &ts)`: when the kernel received the frame the last recv returned, as
/// CLOCK_REALTIME `(seconds, nanoseconds)`. The first call also switches time stamping on.
pub fn ioctl_siocgstampns(fd: BorrowedFd<'_>) -> io::Result<(i64, i64)> {
    // SAFETY: timespec is plain C data; all-zero is valid.
    let mut ts: libc::timespec = unsafe { mem::zeroed() };
    // SAFETY: SIOCGSTAMPNS writes one struct timespec through the pointer, which is valid for it.
    let res = cvt(unsafe { libc::ioctl(fd.as_raw_fd(), SIOCGSTAMPNS as _, &mut ts as *mut libc::timespec) });
    if trace::enabled() {
        let args = [
            Arg::Fd(fd.as_raw_fd()),
            Arg::Name("SIOCGSTAMPNS"),
            Arg::Timespec { sec: ts.tv_sec as i64, nsec: ts.tv_nsec as i64 },
        ];
        trace::exit("ioctl", &args, &wide(res.as_ref().copied()));
    }
    res.map(|_| (ts.tv_sec as i64, ts.tv_nsec as i64))
}
