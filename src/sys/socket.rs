//! One function per socket system call, each named after the call it makes.
//!
//! Contract of this file (every function keeps it):
//! - exactly one system call, made through `libc`; no retries — an `EINTR` comes back as an error
//!   and the safe layer above decides what to do with it;
//! - `-1` becomes `io::Error` built from `errno` (read with the `errno` crate right after the call);
//! - a new descriptor is wrapped in `OwnedFd` before anything else can fail, so it cannot leak;
//! - the call is reported to the narration hook (`sys::trace`) under the kernel's name for it.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};

use super::addr::{AddrBuf, RawAddr};
use super::trace::{self, Arg};

/// Turns a C return value into a Result: `-1` means "look at errno".
pub(crate) fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 { Err(io::Error::from_raw_os_error(errno::errno().0)) } else { Ok(ret) }
}

/// Same, for calls that return `ssize_t` byte counts.
fn cvt_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret == -1 { Err(io::Error::from_raw_os_error(errno::errno().0)) } else { Ok(ret as usize) }
}

/// Widens a result for the narration hook.
pub(crate) fn wide<T: TryInto<i64>>(res: Result<T, &io::Error>) -> io::Result<i64> {
    match res {
        Ok(v) => Ok(v.try_into().unwrap_or(i64::MAX)),
        Err(e) => Err(io::Error::from_raw_os_error(e.raw_os_error().unwrap_or(0))),
    }
}

/// `socket(2)`: creates an endpoint and returns a descriptor for it.
///
/// `ty` may carry `SOCK_CLOEXEC` / `SOCK_NONBLOCK` where the platform has them (cfg
/// `socklab_sock_flags`). The kernel picks the lowest free descriptor number.
pub fn socket(domain: libc::c_int, ty: libc::c_int, protocol: libc::c_int) -> io::Result<OwnedFd> {
    let args = [Arg::Domain(domain), Arg::SockType(ty), Arg::Protocol(protocol)];
    if trace::enabled() {
        trace::enter("socket", &args);
    }
    // SAFETY: socket(2) takes three integers and touches no memory of ours.
    let res = cvt(unsafe { libc::socket(domain, ty, protocol) });
    if trace::enabled() {
        trace::exit("socket", &args, &wide(res.as_ref().copied()));
    }
    // SAFETY: on success the kernel returned a fresh descriptor that nothing else owns.
    res.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `socketpair(2)`: two sockets already connected to each other (`AF_UNIX` only). socklab uses
/// one as a wake-up line: shutting one end down makes it readable in every poll/epoll watching it.
pub fn socketpair(domain: libc::c_int, ty: libc::c_int, protocol: libc::c_int) -> io::Result<(OwnedFd, OwnedFd)> {
    let args = [Arg::Domain(domain), Arg::SockType(ty), Arg::Protocol(protocol)];
    if trace::enabled() {
        trace::enter("socketpair", &args);
    }
    let mut fds = [-1 as libc::c_int; 2];
    // SAFETY: `fds` is a writable array of two ints, which the kernel fills on success.
    let res = cvt(unsafe { libc::socketpair(domain, ty, protocol, fds.as_mut_ptr()) });
    if trace::enabled() {
        trace::exit("socketpair", &args, &wide(res.as_ref().copied()));
    }
    // SAFETY: on success both descriptors are fresh and owned by nobody else.
    res.map(|_| unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `bind(2)`: gives the socket its local address (the server's "well-known port").
pub fn bind(fd: BorrowedFd<'_>, addr: &SocketAddr) -> io::Result<()> {
    let raw = RawAddr::new(addr);
    let args = [Arg::Fd(fd.as_raw_fd()), Arg::Addr(*addr), Arg::Int(raw.len().into())];
    if trace::enabled() {
        trace::enter("bind", &args);
    }
    // SAFETY: `raw` is a valid sockaddr of `raw.len()` bytes, alive for the whole call.
    let res = cvt(unsafe { libc::bind(fd.as_raw_fd(), raw.as_ptr(), raw.len()) });
    if trace::enabled() {
        trace::exit("bind", &args, &wide(res.as_ref().copied()));
    }
    res.map(drop)
}

/// `listen(2)`: turns the socket into a listener. From here on the *kernel* answers SYNs with
/// SYN-ACKs and queues completed connections (up to `backlog`) before the program calls accept.
pub fn listen(fd: BorrowedFd<'_>, backlog: libc::c_int) -> io::Result<()> {
    let args = [Arg::Fd(fd.as_raw_fd()), Arg::Int(backlog.into())];
    if trace::enabled() {
        trace::enter("listen", &args);
    }
    // SAFETY: plain integers; no memory is passed.
    let res = cvt(unsafe { libc::listen(fd.as_raw_fd(), backlog) });
    if trace::enabled() {
        trace::exit("listen", &args, &wide(res.as_ref().copied()));
    }
    res.map(drop)
}

/// `accept4(2)` (or `accept(2)` where there is no accept4): takes the oldest *already established*
/// connection off the listener's queue — the three-way handshake finished before this call — and
/// returns a new descriptor for it with the peer's address. Blocks while the queue is empty.
///
/// `flags` (`SOCK_CLOEXEC`, `SOCK_NONBLOCK`) apply atomically to the new descriptor with accept4;
/// without accept4 they are ignored here and the caller sets them with fcntl.
pub fn accept(fd: BorrowedFd<'_>, flags: libc::c_int) -> io::Result<(OwnedFd, SocketAddr)> {
    let mut peer = AddrBuf::new();
    let name = if cfg!(socklab_accept4) { "accept4" } else { "accept" };
    if trace::enabled() {
        let cap = AddrBuf::capacity();
        trace::enter(name, &[Arg::Fd(fd.as_raw_fd()), Arg::AddrOut(None, cap, None), Arg::AcceptFlags(flags)]);
    }
    // SAFETY: `peer.storage` is a writable sockaddr_storage and `peer.len` holds its size, so the
    // kernel writes at most that many bytes and stores the real length back into `peer.len`.
    #[cfg(socklab_accept4)]
    let ret = unsafe { libc::accept4(fd.as_raw_fd(), peer.as_mut_ptr(), &mut peer.len, flags) };
    // SAFETY: as above; plain accept(2) takes no flags.
    #[cfg(not(socklab_accept4))]
    let ret = unsafe { libc::accept(fd.as_raw_fd(), peer.as_mut_ptr(), &mut peer.len) };
    // SAFETY: on success the kernel returned a fresh descriptor that nothing else owns; wrap it
    // before anything below can fail, so it is closed on every path.
    let res = cvt(ret).map(|new| unsafe { OwnedFd::from_raw_fd(new) });
    let res = res.and_then(|new| Ok((new, peer.to_socket_addr()?)));
    if trace::enabled() {
        let ret = wide(res.as_ref().map(|(new, _)| new.as_raw_fd()));
        match &res {
            Ok((_, addr)) => {
                let out = Arg::AddrOut(Some(*addr), AddrBuf::capacity(), Some(peer.len));
                trace::exit(name, &[Arg::Fd(fd.as_raw_fd()), out, Arg::AcceptFlags(flags)], &ret);
            }
            // The kernel wrote no address: strace shows the buffer's address and the length as passed.
            Err(_) => {
                let (ptr, len) = (Arg::Ptr(peer.as_mut_ptr() as usize), Arg::AddrLen(AddrBuf::capacity()));
                trace::exit(name, &[Arg::Fd(fd.as_raw_fd()), ptr, len, Arg::AcceptFlags(flags)], &ret);
            }
        }
    }
    res
}

/// `connect(2)`: for TCP, sends the SYN and blocks until the SYN-ACK arrives and our ACK is sent —
/// the client's side of the three-way handshake. It returns as soon as the connection is
/// established, which is before the server program calls accept.
pub fn connect(fd: BorrowedFd<'_>, addr: &SocketAddr) -> io::Result<()> {
    let raw = RawAddr::new(addr);
    let args = [Arg::Fd(fd.as_raw_fd()), Arg::Addr(*addr), Arg::Int(raw.len().into())];
    if trace::enabled() {
        trace::enter("connect", &args);
    }
    // SAFETY: `raw` is a valid sockaddr of `raw.len()` bytes, alive for the whole call.
    let res = cvt(unsafe { libc::connect(fd.as_raw_fd(), raw.as_ptr(), raw.len()) });
    if trace::enabled() {
        trace::exit("connect", &args, &wide(res.as_ref().copied()));
    }
    res.map(drop)
}

/// `recv(2)`, made as `recvfrom(fd, buf, len, flags, NULL, NULL)` — the call the kernel receives on
/// x86-64 and arm64 anyway. Copies up to `buf.len()` bytes out of the socket's receive queue; blocks
/// while it is empty; returns 0 once the peer has sent its FIN and everything before it was read.
pub fn recv(fd: BorrowedFd<'_>, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize> {
    let len = buf.len();
    if trace::enabled() {
        let args =
            [Arg::Fd(fd.as_raw_fd()), Arg::Data(&[]), Arg::Int(len as i64), Arg::MsgFlags(flags), Arg::Null, Arg::Null];
        trace::enter("recvfrom", &args);
    }
    // SAFETY: `buf` is valid for writes of `len` bytes; null address pointers mean "don't tell me
    // the sender", which recvfrom(2) allows.
    let ret = unsafe {
        libc::recvfrom(fd.as_raw_fd(), buf.as_mut_ptr().cast(), len, flags, std::ptr::null_mut(), std::ptr::null_mut())
    };
    let res = cvt_size(ret);
    if trace::enabled() {
        // On failure nothing was written: strace shows the buffer's address instead of its bytes.
        let data = match &res {
            Ok(n) => Arg::Data(&buf[..*n]),
            Err(_) => Arg::Ptr(buf.as_ptr() as usize),
        };
        let args = [Arg::Fd(fd.as_raw_fd()), data, Arg::Int(len as i64), Arg::MsgFlags(flags), Arg::Null, Arg::Null];
        trace::exit("recvfrom", &args, &wide(res.as_ref().copied()));
    }
    res
}

/// `send(2)`, made as `sendto(fd, buf, len, flags, NULL, 0)`. Copies bytes into the socket's send
/// buffer and returns how many it took — possibly fewer than offered (a short write), so callers
/// loop (see `send_all` in the safe layer). Pass `MSG_NOSIGNAL` to get `EPIPE` instead of SIGPIPE.
pub fn send(fd: BorrowedFd<'_>, buf: &[u8], flags: libc::c_int) -> io::Result<usize> {
    let args = [
        Arg::Fd(fd.as_raw_fd()),
        Arg::Data(buf),
        Arg::Int(buf.len() as i64),
        Arg::MsgFlags(flags),
        Arg::Null,
        Arg::Int(0),
    ];
    if trace::enabled() {
        trace::enter("sendto", &args);
    }
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes; a null destination is what send(2) means.
    let ret = unsafe { libc::sendto(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), flags, std::ptr::null(), 0) };
    let res = cvt_size(ret);
    if trace::enabled() {
        trace::exit("sendto", &args, &wide(res.as_ref().copied()));
    }
    res
}

/// `shutdown(2)`: ends one or both directions without closing the descriptor. `SHUT_WR` sends our
/// FIN (the peer's recv then returns 0) while we can still read what the peer sends.
pub fn shutdown(fd: BorrowedFd<'_>, how: libc::c_int) -> io::Result<()> {
    let args = [Arg::Fd(fd.as_raw_fd()), Arg::How(how)];
    if trace::enabled() {
        trace::enter("shutdown", &args);
    }
    // SAFETY: plain integers; no memory is passed.
    let res = cvt(unsafe { libc::shutdown(fd.as_raw_fd(), how) });
    if trace::enabled() {
        trace::exit("shutdown", &args, &wide(res.as_ref().copied()));
    }
    res.map(drop)
}

/// `close(2)`: releases the descriptor. For a connected TCP socket whose peer has not closed yet,
/// this starts the four-way close (our FIN); the side that closes first ends in TIME-WAIT.
///
/// Never retried: on Linux the descriptor is gone even when close reports `EINTR`, and a retry
/// could close a descriptor another thread just got with the same number.
pub fn close(fd: OwnedFd) -> io::Result<()> {
    let raw: RawFd = fd.into_raw_fd();
    let args = [Arg::Fd(raw)];
    if trace::enabled() {
        trace::enter("close", &args);
    }
    // SAFETY: we took ownership of `raw` from the OwnedFd, so nobody else will use or close it.
    let res = cvt(unsafe { libc::close(raw) });
    if trace::enabled() {
        trace::exit("close", &args, &wide(res.as_ref().copied()));
    }
    res.map(drop)
}

/// `getsockname(2)`: the local address, e.g. the port the kernel chose after binding port 0.
pub fn getsockname(fd: BorrowedFd<'_>) -> io::Result<SocketAddr> {
    name_call("getsockname", fd, libc::getsockname)
}

/// `getpeername(2)`: the remote address of a connected socket (`ENOTCONN` otherwise).
pub fn getpeername(fd: BorrowedFd<'_>) -> io::Result<SocketAddr> {
    name_call("getpeername", fd, libc::getpeername)
}

type NameFn = unsafe extern "C" fn(libc::c_int, *mut libc::sockaddr, *mut libc::socklen_t) -> libc::c_int;

/// The shared body of getsockname/getpeername: same signature, same value-result length.
fn name_call(name: &'static str, fd: BorrowedFd<'_>, call: NameFn) -> io::Result<SocketAddr> {
    let mut buf = AddrBuf::new();
    // SAFETY: `buf.storage` is writable for `buf.len` bytes; the kernel stores the real length back.
    let res = cvt(unsafe { call(fd.as_raw_fd(), buf.as_mut_ptr(), &mut buf.len) });
    let addr = res.as_ref().map_err(|e| io::Error::from_raw_os_error(e.raw_os_error().unwrap_or(0)));
    let addr = addr.and_then(|_| buf.to_socket_addr());
    if trace::enabled() {
        let got = res.as_ref().ok().map(|_| buf.len);
        let args = [Arg::Fd(fd.as_raw_fd()), Arg::AddrOut(addr.as_ref().ok().copied(), AddrBuf::capacity(), got)];
        trace::exit(name, &args, &wide(res.as_ref().copied()));
    }
    addr
}
