//! One function per socket system call, each named after the call it makes.
//!
//! Contract of this file (every function keeps it):
//! - exactly one system call, made through `libc` inside [`syscall!`], which turns `-1` into
//!   errno's `io::Error` and narrates the call; no retries — an `EINTR` comes back as an error and
//!   the safe layer above decides what to do with it;
//! - a new descriptor is wrapped in `OwnedFd` before anything else can fail, so it cannot leak;
//! - addresses go in and come out as [`SockAddr`], whatever the family.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};

use super::addr::SockAddr;
use super::trace::Arg;

/// Wraps a descriptor the kernel just returned.
fn owned(fd: libc::c_int) -> OwnedFd {
    // SAFETY: the kernel returned a fresh descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `socket(2)`: creates an endpoint and returns a descriptor for it.
///
/// `ty` may carry `SOCK_CLOEXEC` / `SOCK_NONBLOCK` where the platform has them (cfg
/// `socklab_sock_flags`). The kernel picks the lowest free descriptor number.
///
/// Man page: [`socket(2)`](https://man7.org/linux/man-pages/man2/socket.2.html).
pub fn socket(domain: libc::c_int, ty: libc::c_int, protocol: libc::c_int) -> io::Result<OwnedFd> {
    let fd = syscall!(
        "socket",
        // SAFETY: socket(2) takes three integers and touches no memory of ours.
        unsafe { libc::socket(domain, ty, protocol) },
        [Arg::Domain(domain), Arg::SockType(ty), Arg::Protocol(protocol)]
    )?;
    Ok(owned(fd))
}

/// `socketpair(2)`: two sockets already connected to each other (`AF_UNIX` only). socklab uses
/// one as a wake-up line: shutting one end down makes it readable in every poll/epoll watching it.
///
/// Man page: [`socketpair(2)`](https://man7.org/linux/man-pages/man2/socketpair.2.html).
pub fn socketpair(domain: libc::c_int, ty: libc::c_int, protocol: libc::c_int) -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1 as libc::c_int; 2];
    syscall!(
        "socketpair",
        // SAFETY: `fds` is a writable array of two ints, which the kernel fills on success.
        unsafe { libc::socketpair(domain, ty, protocol, fds.as_mut_ptr()) },
        [Arg::Domain(domain), Arg::SockType(ty), Arg::Protocol(protocol), Arg::FdPair(None)]
            => |res| [Arg::Domain(domain), Arg::SockType(ty), Arg::Protocol(protocol), Arg::FdPair(res.as_ref().ok().map(|_| (fds[0], fds[1])))]
    )?;
    Ok((owned(fds[0]), owned(fds[1])))
}

/// `bind(2)`: gives the socket its local address (the server's "well-known port", a Unix path,
/// an interface for a packet socket).
///
/// Man page: [`bind(2)`](https://man7.org/linux/man-pages/man2/bind.2.html).
pub fn bind(fd: BorrowedFd<'_>, addr: &SockAddr) -> io::Result<()> {
    syscall!(
        "bind",
        // SAFETY: `addr` is a valid sockaddr of `addr.len()` bytes, alive for the whole call.
        unsafe { libc::bind(fd.as_raw_fd(), addr.as_ptr(), addr.len()) },
        [Arg::Fd(fd.as_raw_fd()), Arg::Addr(addr), Arg::Int(addr.len().into())]
    )
    .map(drop)
}

/// `listen(2)`: turns the socket into a listener. From here on the *kernel* completes handshakes
/// and queues the finished connections (up to the backlog) before the program calls accept.
///
/// Man page: [`listen(2)`](https://man7.org/linux/man-pages/man2/listen.2.html).
pub fn listen(fd: BorrowedFd<'_>, backlog: libc::c_int) -> io::Result<()> {
    syscall!(
        "listen",
        // SAFETY: plain integers; no memory is passed.
        unsafe { libc::listen(fd.as_raw_fd(), backlog) },
        [Arg::Fd(fd.as_raw_fd()), Arg::Int(backlog.into())]
    )
    .map(drop)
}

/// `accept4(2)` (or `accept(2)` where there is no accept4): takes the oldest *already established*
/// connection off the listener's queue — the three-way handshake finished before this call — and
/// returns a new descriptor for it with the peer's address. Blocks while the queue is empty.
///
/// `flags` (`SOCK_CLOEXEC`, `SOCK_NONBLOCK`) apply atomically to the new descriptor with accept4;
/// without accept4 they are ignored here and the caller sets them with fcntl.
///
/// Man page: [`accept(2)`](https://man7.org/linux/man-pages/man2/accept.2.html).
pub fn accept(fd: BorrowedFd<'_>, flags: libc::c_int) -> io::Result<(OwnedFd, SockAddr)> {
    let name = if cfg!(socklab_accept4) { "accept4" } else { "accept" };
    let mut peer = SockAddr::for_kernel();
    let (storage, len) = peer.out_ptrs();
    let new = syscall!(
        name,
        // SAFETY: `storage` is a writable sockaddr_storage and `*len` holds its size, so the kernel
        // writes at most that many bytes and stores the real length back into `*len`.
        unsafe { accept_call(fd.as_raw_fd(), storage, len, flags) },
        [Arg::Fd(fd.as_raw_fd()), Arg::AddrOut(None, SockAddr::capacity(), None), Arg::AcceptFlags(flags)]
            => |res| [Arg::Fd(fd.as_raw_fd()), written(&res, &peer), Arg::AcceptFlags(flags)]
    )?;
    Ok((owned(new), peer))
}

/// The kernel call behind [`accept`].
///
/// # Safety
/// `storage` must be writable for `*len` bytes and `len` writable.
unsafe fn accept_call(
    fd: RawFd,
    storage: *mut libc::sockaddr,
    len: *mut libc::socklen_t,
    flags: libc::c_int,
) -> libc::c_int {
    #[cfg(socklab_accept4)]
    // SAFETY: the caller's contract.
    return unsafe { libc::accept4(fd, storage, len, flags) };
    #[cfg(not(socklab_accept4))]
    {
        let _ = flags;
        // SAFETY: the caller's contract; plain accept(2) takes no flags.
        unsafe { libc::accept(fd, storage, len) }
    }
}

/// What strace shows for an address the kernel wrote: the address with `[128 => 16]`, or, when
/// the call failed and the kernel wrote nothing, the buffer's pointer and the length as passed.
fn written<'a>(res: &io::Result<libc::c_int>, addr: &'a SockAddr) -> Arg<'a> {
    match res {
        Ok(_) => Arg::AddrOut(Some(addr), SockAddr::capacity(), Some(addr.len())),
        Err(_) => Arg::PtrLen(addr.as_ptr() as usize, SockAddr::capacity()),
    }
}

/// `connect(2)`: for TCP, sends the SYN and blocks until the SYN-ACK arrives and our ACK is sent —
/// the client's side of the three-way handshake. It returns as soon as the connection is
/// established, which may be before the server program calls accept. On a nonblocking socket it
/// returns `EINPROGRESS` at once and the handshake goes on in the kernel.
///
/// Man page: [`connect(2)`](https://man7.org/linux/man-pages/man2/connect.2.html).
pub fn connect(fd: BorrowedFd<'_>, addr: &SockAddr) -> io::Result<()> {
    syscall!(
        "connect",
        // SAFETY: `addr` is a valid sockaddr of `addr.len()` bytes, alive for the whole call.
        unsafe { libc::connect(fd.as_raw_fd(), addr.as_ptr(), addr.len()) },
        [Arg::Fd(fd.as_raw_fd()), Arg::Addr(addr), Arg::Int(addr.len().into())]
    )
    .map(drop)
}

/// `recv(2)`, made as `recvfrom(fd, buf, len, flags, NULL, NULL)` — the call the kernel receives on
/// x86-64 and arm64 anyway. Copies up to `buf.len()` bytes out of the socket's receive queue; blocks
/// while it is empty; returns 0 once the peer has sent its FIN and everything before it was read.
///
/// Man page: [`recv(2)`](https://man7.org/linux/man-pages/man2/recv.2.html).
pub fn recv(fd: BorrowedFd<'_>, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize> {
    let (len, ptr) = (buf.len(), buf.as_mut_ptr());
    let n = syscall!(
        "recvfrom",
        // SAFETY: `buf` is valid for writes of `len` bytes; null address pointers mean "don't tell
        // me the sender", which recvfrom(2) allows.
        unsafe { libc::recvfrom(fd.as_raw_fd(), ptr.cast(), len, flags, std::ptr::null_mut(), std::ptr::null_mut()) },
        [Arg::Fd(fd.as_raw_fd()), Arg::Data(&[]), Arg::Int(len as i64), Arg::MsgFlags(flags), Arg::Null, Arg::Null]
            => |res| [Arg::Fd(fd.as_raw_fd()), filled(&res, buf), Arg::Int(len as i64), Arg::MsgFlags(flags), Arg::Null, Arg::Null]
    )?;
    Ok(n as usize)
}

/// What the kernel wrote into a buffer: its bytes, or (a failed call) the buffer's address, as
/// strace shows it.
pub(super) fn filled<'a>(res: &io::Result<isize>, buf: &'a [u8]) -> Arg<'a> {
    match res {
        // With MSG_TRUNC the result may be the datagram's real length, more than the buffer holds.
        Ok(n) => Arg::Data(&buf[..(*n as usize).min(buf.len())]),
        Err(_) => Arg::Ptr(buf.as_ptr() as usize),
    }
}

/// `send(2)`, made as `sendto(fd, buf, len, flags, NULL, 0)`. Copies bytes into the socket's send
/// buffer and returns how many it took — possibly fewer than offered (a short write), so callers
/// loop (see `send_all` in the safe layer). Pass `MSG_NOSIGNAL` to get `EPIPE` instead of SIGPIPE.
///
/// Man page: [`send(2)`](https://man7.org/linux/man-pages/man2/send.2.html).
pub fn send(fd: BorrowedFd<'_>, buf: &[u8], flags: libc::c_int) -> io::Result<usize> {
    let n = syscall!(
        "sendto",
        // SAFETY: `buf` is valid for reads of `buf.len()` bytes; a null destination is what send(2) means.
        unsafe { libc::sendto(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), flags, std::ptr::null(), 0) },
        [
            Arg::Fd(fd.as_raw_fd()),
            Arg::Data(buf),
            Arg::Int(buf.len() as i64),
            Arg::MsgFlags(flags),
            Arg::Null,
            Arg::Int(0)
        ]
    )?;
    Ok(n as usize)
}

/// `shutdown(2)`: ends one or both directions without closing the descriptor. `SHUT_WR` sends our
/// FIN (the peer's recv then returns 0) while we can still read what the peer sends.
///
/// Man page: [`shutdown(2)`](https://man7.org/linux/man-pages/man2/shutdown.2.html).
pub fn shutdown(fd: BorrowedFd<'_>, how: libc::c_int) -> io::Result<()> {
    syscall!(
        "shutdown",
        // SAFETY: plain integers; no memory is passed.
        unsafe { libc::shutdown(fd.as_raw_fd(), how) },
        [Arg::Fd(fd.as_raw_fd()), Arg::How(how)]
    )
    .map(drop)
}

/// `close(2)`: releases the descriptor. For a connected TCP socket whose peer has not closed yet,
/// this starts the close (a FIN, or a RST when unread data is left in the receive queue); the side
/// that closes first ends in TIME-WAIT.
///
/// Never retried: on Linux the descriptor is gone even when close reports `EINTR`, and a retry
/// could close a descriptor another thread just got with the same number.
///
/// Man page: [`close(2)`](https://man7.org/linux/man-pages/man2/close.2.html).
pub fn close(fd: OwnedFd) -> io::Result<()> {
    let raw: RawFd = fd.into_raw_fd();
    syscall!(
        "close",
        // SAFETY: we took ownership of `raw` from the OwnedFd, so nobody else will use or close it.
        unsafe { libc::close(raw) },
        [Arg::Fd(raw)]
    )
    .map(drop)
}

/// `ioctl(fd, FIONREAD, &n)` (the same request as `SIOCINQ`): how many bytes wait unread in a
/// socket's receive queue. Fails with `EINVAL` on a listener (it has no byte stream).
///
/// Takes a plain descriptor number: `--explain` asks it about a descriptor the program is about
/// to close, which the narration knows only by number. Asking about a closed or reused number
/// cannot touch memory; at worst the kernel answers `EBADF` or `ENOTTY`.
///
/// Man pages: [`ioctl(2)`](https://man7.org/linux/man-pages/man2/ioctl.2.html), [`tcp(7)`](https://man7.org/linux/man-pages/man7/tcp.7.html).
pub fn ioctl_fionread(fd: RawFd) -> io::Result<i32> {
    let mut n: libc::c_int = 0;
    let ptr: *mut libc::c_int = &mut n;
    syscall!(
        "ioctl",
        // SAFETY: FIONREAD writes one int through `ptr`, which is valid for it.
        unsafe { libc::ioctl(fd, libc::FIONREAD as _, ptr) },
        [Arg::Fd(fd), Arg::Name("FIONREAD"), Arg::OptOut]
            => |res| [Arg::Fd(fd), Arg::Name("FIONREAD"), match res {
                Ok(_) => Arg::OptInt(n),
                Err(_) => Arg::Ptr(ptr as usize),
            }]
    )?;
    Ok(n)
}

/// `getsockname(2)`: the local address, e.g. the port the kernel chose after binding port 0.
///
/// Man page: [`getsockname(2)`](https://man7.org/linux/man-pages/man2/getsockname.2.html).
pub fn getsockname(fd: BorrowedFd<'_>) -> io::Result<SockAddr> {
    name_call("getsockname", fd, libc::getsockname)
}

/// `getpeername(2)`: the remote address of a connected socket (`ENOTCONN` otherwise).
///
/// Man page: [`getpeername(2)`](https://man7.org/linux/man-pages/man2/getpeername.2.html).
pub fn getpeername(fd: BorrowedFd<'_>) -> io::Result<SockAddr> {
    name_call("getpeername", fd, libc::getpeername)
}

type NameFn = unsafe extern "C" fn(libc::c_int, *mut libc::sockaddr, *mut libc::socklen_t) -> libc::c_int;

/// The shared body of getsockname/getpeername: same signature, same value-result length.
fn name_call(name: &'static str, fd: BorrowedFd<'_>, call: NameFn) -> io::Result<SockAddr> {
    let mut addr = SockAddr::for_kernel();
    let (storage, len) = addr.out_ptrs();
    syscall!(
        name,
        // SAFETY: `storage` is writable for `*len` bytes; the kernel stores the real length back.
        unsafe { call(fd.as_raw_fd(), storage, len) },
        [Arg::Fd(fd.as_raw_fd()), Arg::AddrOut(None, SockAddr::capacity(), None)]
            => |res| [Arg::Fd(fd.as_raw_fd()), written(&res, &addr)]
    )?;
    Ok(addr)
}

/// `recvfrom(2)` with the sender's address: for datagram sockets, where each datagram may come
/// from a different peer. With `MSG_TRUNC` in `flags` (Linux, UDP and Unix datagrams) the call
/// returns the datagram's *real* length even when the buffer was shorter and the rest was cut.
///
/// Man page: [`recv(2)`](https://man7.org/linux/man-pages/man2/recv.2.html).
pub fn recvfrom(fd: BorrowedFd<'_>, buf: &mut [u8], flags: libc::c_int) -> io::Result<(usize, SockAddr)> {
    let (len, ptr) = (buf.len(), buf.as_mut_ptr());
    let mut from = SockAddr::for_kernel();
    let (storage, addr_len) = from.out_ptrs();
    let n = syscall!(
        "recvfrom",
        // SAFETY: `buf` is valid for writes of `len` bytes; `storage` is a writable
        // sockaddr_storage and `*addr_len` holds its size, so the kernel writes at most that many
        // bytes and stores the real length back.
        unsafe { libc::recvfrom(fd.as_raw_fd(), ptr.cast(), len, flags, storage, addr_len) },
        [Arg::Fd(fd.as_raw_fd()), Arg::Data(&[]), Arg::Int(len as i64), Arg::MsgFlags(flags), Arg::AddrOut(None, SockAddr::capacity(), None)]
            => |res| [Arg::Fd(fd.as_raw_fd()), filled(&res, buf), Arg::Int(len as i64), Arg::MsgFlags(flags), written_n(&res, &from)]
    )?;
    Ok((n as usize, from))
}

/// [`written`] for calls returning `ssize_t`.
fn written_n<'a>(res: &io::Result<isize>, addr: &'a SockAddr) -> Arg<'a> {
    written(&res.as_ref().map(|_| 0).map_err(|e| io::Error::from_raw_os_error(e.raw_os_error().unwrap_or(0))), addr)
}

/// `sendto(2)` to `addr`: one datagram to that peer (an unconnected UDP or Unix datagram socket).
/// A datagram goes out whole or not at all (`EMSGSIZE` when it is too big).
///
/// Man page: [`send(2)`](https://man7.org/linux/man-pages/man2/send.2.html).
pub fn sendto(fd: BorrowedFd<'_>, buf: &[u8], flags: libc::c_int, addr: &SockAddr) -> io::Result<usize> {
    let n = syscall!(
        "sendto",
        // SAFETY: `buf` is valid for reads of `buf.len()` bytes and `addr` is a valid sockaddr of
        // `addr.len()` bytes, both alive for the whole call.
        unsafe { libc::sendto(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), flags, addr.as_ptr(), addr.len()) },
        [
            Arg::Fd(fd.as_raw_fd()),
            Arg::Data(buf),
            Arg::Int(buf.len() as i64),
            Arg::MsgFlags(flags),
            Arg::Addr(addr),
            Arg::Int(addr.len().into())
        ]
    )?;
    Ok(n as usize)
}

/// `CMSG_LEN(4 * n)`: the `cmsg_len` of an SCM_RIGHTS message carrying `n` descriptors.
///
/// Man page: [`cmsg(3)`](https://man7.org/linux/man-pages/man3/cmsg.3.html).
pub fn cmsg_len(n: usize) -> usize {
    // SAFETY: CMSG_LEN is pure arithmetic on its argument.
    unsafe { libc::CMSG_LEN((n * mem::size_of::<libc::c_int>()) as u32) as usize }
}

/// `CMSG_SPACE(4 * n)`: the control buffer for `n` descriptors, padded to alignment.
fn cmsg_space(n: usize) -> usize {
    // SAFETY: CMSG_SPACE is pure arithmetic on its argument.
    unsafe { libc::CMSG_SPACE((n * mem::size_of::<libc::c_int>()) as u32) as usize }
}

/// The most descriptors [`recvmsg_fds`] takes from one message.
pub const MAX_FDS: usize = 4;

/// `sendmsg(2)` of `data` with an `SCM_RIGHTS` control message carrying `fds`: the kernel
/// installs *copies* of these descriptors in the receiving process (new numbers, same open
/// sockets or files), as dup(2) would across processes. Needs an `AF_UNIX` socket and at least
/// one data byte (Linux does not pass control messages with an empty stream send).
///
/// Man pages: [`send(2)`](https://man7.org/linux/man-pages/man2/send.2.html), [`unix(7)`](https://man7.org/linux/man-pages/man7/unix.7.html).
pub fn sendmsg_fds(fd: BorrowedFd<'_>, data: &[u8], fds: &[BorrowedFd<'_>], flags: libc::c_int) -> io::Result<usize> {
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    // u64 words keep the buffer aligned for `struct cmsghdr`.
    let space = if raw.is_empty() { 0 } else { cmsg_space(raw.len()) };
    let mut control = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec { iov_base: data.as_ptr() as *mut libc::c_void, iov_len: data.len() };
    // SAFETY: msghdr is a plain C struct; all-zero bytes are a valid value (no name, no control).
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !raw.is_empty() {
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: `msg` points at a control buffer of `space` = CMSG_SPACE(4n) bytes, so
        // CMSG_FIRSTHDR is non-null and the header plus 4n data bytes fit inside it; the copy
        // reads `raw` (4n bytes) into that space.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = cmsg_len(raw.len()) as _;
            std::ptr::copy_nonoverlapping(raw.as_ptr(), libc::CMSG_DATA(cmsg).cast::<RawFd>(), raw.len());
        }
    }
    let shown = Arg::Msg { data: Some(data), iov_len: data.len(), fds: &raw, controllen: space, flags: 0 };
    let n = syscall!(
        "sendmsg",
        // SAFETY: `msg` points at `iov` (valid for `data.len()` bytes of reads) and at `control`,
        // all alive for the whole call; the kernel only reads them.
        unsafe { libc::sendmsg(fd.as_raw_fd(), &msg, flags) },
        [Arg::Fd(fd.as_raw_fd()), shown, Arg::MsgFlags(flags)]
    )?;
    Ok(n as usize)
}

/// What [`recvmsg_fds`] received.
///
/// # Example
///
/// ```
/// use std::os::fd::AsFd;
/// use socklab::sys::{recvmsg_fds, sendmsg_fds, socketpair};
///
/// // A descriptor passed over a Unix socket (SCM_RIGHTS): the receiver gets its own, new number.
/// let (a, b) = socketpair(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0)?;
/// let (passed, _other) = socketpair(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0)?;
/// sendmsg_fds(a.as_fd(), b"F", &[passed.as_fd()], 0)?;
/// let mut buf = [0u8; 1];
/// let got = recvmsg_fds(b.as_fd(), &mut buf, 0)?;
/// assert_eq!((got.len, got.fds.len(), got.flags & libc::MSG_CTRUNC), (1, 1, 0));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Received {
    /// Data bytes written into the buffer.
    pub len: usize,
    /// The descriptors that came with them, already owned (close-on-exec: `MSG_CMSG_CLOEXEC`).
    pub fds: Vec<OwnedFd>,
    /// `msg_flags`: `MSG_CTRUNC` when descriptors did not fit and the kernel closed them.
    pub flags: libc::c_int,
}

/// `recvmsg(2)` into `buf`, taking up to [`MAX_FDS`] descriptors from an `SCM_RIGHTS` message.
/// Each becomes an `OwnedFd` at once, so none can leak. `MSG_CMSG_CLOEXEC` (Linux) makes them
/// close-on-exec atomically, like every other descriptor socklab opens.
///
/// Man pages: [`recv(2)`](https://man7.org/linux/man-pages/man2/recv.2.html), [`cmsg(3)`](https://man7.org/linux/man-pages/man3/cmsg.3.html).
pub fn recvmsg_fds(fd: BorrowedFd<'_>, buf: &mut [u8], flags: libc::c_int) -> io::Result<Received> {
    #[cfg(target_os = "linux")]
    let flags = flags | libc::MSG_CMSG_CLOEXEC;
    let space = cmsg_space(MAX_FDS);
    let mut control = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: msghdr is a plain C struct; all-zero bytes are a valid value.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    let msg_ptr: *mut libc::msghdr = &mut msg;
    let mut raw: Vec<RawFd> = Vec::new();
    let n = syscall!(
        "recvmsg",
        // SAFETY: `msg` points at `iov` (writable for `buf.len()` bytes) and `control` (writable
        // for `space` bytes), alive for the whole call; the kernel writes at most those sizes and
        // updates `msg_controllen` and `msg_flags`.
        unsafe { libc::recvmsg(fd.as_raw_fd(), msg_ptr, flags) },
        [Arg::Fd(fd.as_raw_fd()), Arg::Msg { data: None, iov_len: buf.len(), fds: &[], controllen: space, flags: 0 }, Arg::MsgFlags(flags)]
            => |res| [Arg::Fd(fd.as_raw_fd()), received_msg(&res, &msg, buf, &mut raw), Arg::MsgFlags(flags)]
    );
    if n.is_ok() && raw.is_empty() {
        // Parsed only here when narration was off (the traced branch parsed it already).
        raw = control_fds(&msg);
    }
    // Own every descriptor before anything can fail.
    let fds: Vec<OwnedFd> = raw.into_iter().map(owned).collect();
    let n = n?;
    Ok(Received { len: n as usize, fds, flags: msg.msg_flags })
}

/// The descriptors in the SCM_RIGHTS messages the kernel wrote into `msg`'s control buffer.
fn control_fds(msg: &libc::msghdr) -> Vec<RawFd> {
    let mut fds = Vec::new();
    if msg.msg_control.is_null() || (msg.msg_controllen as usize) < mem::size_of::<libc::cmsghdr>() {
        return fds;
    }
    // SAFETY: the kernel filled `msg_controllen` bytes of the control buffer with well-formed
    // cmsghdrs; CMSG_FIRSTHDR/NXTHDR stay within that length, and each header's `cmsg_len`
    // bounds the data read after it.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let bytes = ((*cmsg).cmsg_len as usize).saturating_sub(cmsg_len(0));
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                for i in 0..bytes / mem::size_of::<RawFd>() {
                    fds.push(std::ptr::read_unaligned(data.add(i)));
                }
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    fds
}

/// The `Arg` strace shows for a returned recvmsg; also collects the descriptors into `raw`.
fn received_msg<'a>(res: &io::Result<isize>, msg: &libc::msghdr, buf: &'a [u8], raw: &'a mut Vec<RawFd>) -> Arg<'a> {
    match res {
        Ok(n) => {
            *raw = control_fds(msg);
            let raw: &'a Vec<RawFd> = raw;
            Arg::Msg {
                data: Some(&buf[..(*n as usize).min(buf.len())]),
                iov_len: buf.len(),
                fds: raw,
                controllen: msg.msg_controllen as usize,
                flags: msg.msg_flags,
            }
        }
        Err(_) => Arg::Ptr(msg as *const libc::msghdr as usize),
    }
}
