//! Floor 2: `Socket`, an owned socket descriptor of any family, with safe methods over `sys`.
//!
//! What this layer adds to the raw calls:
//! - **Types instead of integers**: [`Domain`], [`Type`] and [`Protocol`] name socket(2)'s three
//!   arguments, and every option has a method of its own; no raw `c_int` flag climbs above here.
//! - **Ownership**: a `Socket` owns its descriptor and closes it (through `sys::close`, so the close
//!   is narrated) when dropped. Close is never retried.
//! - **Safe defaults**: every descriptor is close-on-exec from birth (`SOCK_CLOEXEC`, `accept4`;
//!   `fcntl(FD_CLOEXEC)` where the platform lacks them), and every send passes `MSG_NOSIGNAL` (or
//!   the socket has `SO_NOSIGPIPE`) so writing to a closed peer is an `EPIPE` error, not a SIGPIPE
//!   death.
//! - **EINTR**: blocking calls (accept, recv, send, poll) are retried when a signal handler
//!   interrupts them; data is never lost by a retry because an interrupted call transferred
//!   nothing. Once a stop signal was caught (`process::catch_stop_signals`) the `EINTR` is
//!   returned instead: the caller is being asked to stop. An interrupted `connect` keeps going
//!   in the kernel, so it is finished by waiting for writability and reading `SO_ERROR`, not by
//!   calling connect again.

use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::sys::{self, SockAddr, names};

/// An address family: socket(2)'s first argument.
///
/// # Example
///
/// ```
/// use socklab::{Domain, Protocol, Socket, Type};
///
/// // socket(2)'s three arguments, typed; their Debug is the C name strace prints.
/// let addr: std::net::SocketAddr = "[::1]:0".parse().unwrap();
/// assert_eq!(Domain::for_address(&addr), Domain::IPV6);
/// assert_eq!(format!("{:?}", Domain::IPV4), "AF_INET");
/// let udp = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
/// assert_eq!(udp.local_addr()?.family(), Domain::IPV4.raw());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Domain(libc::c_int);

impl Domain {
    /// `AF_INET`: IPv4.
    pub const IPV4: Domain = Domain(libc::AF_INET);
    /// `AF_INET6`: IPv6 (and IPv4-mapped addresses on a dual-stack socket).
    pub const IPV6: Domain = Domain(libc::AF_INET6);
    /// `AF_UNIX`: processes on this machine, named by a path or an abstract name.
    pub const UNIX: Domain = Domain(libc::AF_UNIX);
    /// `AF_PACKET`: link-layer frames (Linux; needs CAP_NET_RAW).
    #[cfg(socklab_af_packet)]
    pub const PACKET: Domain = Domain(libc::AF_PACKET);
    /// `AF_NETLINK`: messages to and from the kernel (Linux).
    #[cfg(socklab_sock_diag)]
    pub const NETLINK: Domain = Domain(libc::AF_NETLINK);

    /// The family of an IP address: `IPV4` or `IPV6`.
    pub fn for_address(addr: &SocketAddr) -> Domain {
        if addr.is_ipv4() { Domain::IPV4 } else { Domain::IPV6 }
    }

    /// The C value.
    pub fn raw(self) -> libc::c_int {
        self.0
    }
}

impl fmt::Debug for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&names::domain(self.0))
    }
}

/// A socket type, with its creation flags: socket(2)'s second argument.
///
/// # Example
///
/// ```
/// use socklab::{Domain, Socket, Type};
///
/// assert_eq!(format!("{:?}", Type::STREAM), "SOCK_STREAM");
/// // A nonblocking socket from birth: a recv with nothing queued says WouldBlock instead of waiting.
/// let (a, _b) = Socket::pair(Type::STREAM.nonblocking())?;
/// let err = a.recv(&mut [0u8; 8]).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
/// let _ = Socket::new(Domain::UNIX, Type::SEQPACKET, None)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Type(libc::c_int);

impl Type {
    /// `SOCK_STREAM`: a reliable byte stream (TCP for internet domains).
    pub const STREAM: Type = Type(libc::SOCK_STREAM);
    /// `SOCK_DGRAM`: datagrams (UDP for internet domains).
    pub const DGRAM: Type = Type(libc::SOCK_DGRAM);
    /// `SOCK_SEQPACKET`: reliable, ordered messages with boundaries (Unix domain).
    pub const SEQPACKET: Type = Type(libc::SOCK_SEQPACKET);
    /// `SOCK_RAW`: whole packets (packet and netlink sockets).
    pub const RAW: Type = Type(libc::SOCK_RAW);

    /// The same type created nonblocking (`SOCK_NONBLOCK`, set atomically where the platform can;
    /// elsewhere [`Socket::new`] sets `O_NONBLOCK` right after creation).
    pub const fn nonblocking(self) -> Type {
        Type(self.0 | NONBLOCK_FLAG)
    }

    fn is_nonblocking(self) -> bool {
        NONBLOCK_FLAG != 0 && self.0 & NONBLOCK_FLAG != 0
    }

    /// The C value.
    pub fn raw(self) -> libc::c_int {
        self.0
    }
}

impl fmt::Debug for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&names::sock_type(self.0))
    }
}

/// A protocol within a family: socket(2)'s third argument.
///
/// # Example
///
/// ```
/// use socklab::{Domain, Protocol, Socket, Type};
///
/// assert_eq!(format!("{:?}", Protocol::TCP), "IPPROTO_TCP");
/// let tcp = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
/// tcp.set_nodelay(true)?; // a TCP option: only a TCP socket has it
/// assert!(tcp.nodelay()?);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Protocol(libc::c_int);

impl Protocol {
    /// `IPPROTO_TCP`.
    pub const TCP: Protocol = Protocol(libc::IPPROTO_TCP);
    /// `IPPROTO_UDP`.
    pub const UDP: Protocol = Protocol(libc::IPPROTO_UDP);
    /// `IPPROTO_RAW`, for a `SOCK_RAW` IPv4 socket: the program writes whole IP packets, header
    /// included (`IP_HDRINCL` is implied).
    pub const RAW_IP: Protocol = Protocol(libc::IPPROTO_RAW);
    /// Every EtherType, for a packet socket: `htons(ETH_P_ALL)`.
    #[cfg(socklab_af_packet)]
    pub const ALL_FRAMES: Protocol = Protocol(sys::packet::ALL_PROTOCOLS);
    /// `NETLINK_SOCK_DIAG`: the kernel's socket table, as `ss` reads it.
    #[cfg(socklab_sock_diag)]
    pub const SOCK_DIAG: Protocol = Protocol(sys::netlink::NETLINK_SOCK_DIAG);
    /// `NETLINK_NETFILTER`: netfilter's subsystems, among them the packet queue (`NFQUEUE`).
    #[cfg(socklab_sock_diag)]
    pub const NETFILTER: Protocol = Protocol(sys::netlink::NETLINK_NETFILTER);

    /// The C value.
    pub fn raw(self) -> libc::c_int {
        self.0
    }
}

impl fmt::Debug for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&names::protocol(self.0))
    }
}

/// How a nonblocking connect started.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use socklab::{Connect, Domain, SockAddr, Socket, TcpListener, Type};
///
/// let listener = TcpListener::bind(&"127.0.0.1:0".parse()?)?;
/// let socket = Socket::new(Domain::IPV4, Type::STREAM.nonblocking(), None)?;
/// match socket.connect_nonblocking(&SockAddr::from(listener.local_addr()?))? {
///     Connect::Done => {}
///     // The SYN is out: writable means the handshake ended, SO_ERROR says how.
///     Connect::InProgress => {
///         socket.wait_for(libc::POLLOUT, Some(Duration::from_secs(5)))?;
///         assert!(socket.take_error()?.is_none());
///     }
/// }
/// assert_eq!(socket.peer_addr()?, SockAddr::from(listener.local_addr()?));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connect {
    /// Connected already (Unix sockets, sometimes loopback TCP).
    Done,
    /// `EINPROGRESS`: the SYN is out; the socket turns writable when the handshake ends, and
    /// [`Socket::take_error`] then says how.
    InProgress,
}

/// Who is at the other end of a Unix socket (SO_PEERCRED), as the kernel recorded it.
///
/// # Example
///
/// ```
/// use socklab::{UnixKind, UnixStream};
///
/// // The kernel recorded who made the other end: here, this very process.
/// let (ours, _theirs) = UnixStream::pair(UnixKind::Stream)?;
/// let cred = ours.peer_cred()?;
/// assert_eq!(cred.pid as u32, std::process::id());
/// assert!(cred.to_string().starts_with("pid "));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCred {
    /// The peer's process id.
    pub pid: i32,
    /// Its user id.
    pub uid: u32,
    /// Its group id.
    pub gid: u32,
}

impl fmt::Display for PeerCred {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {}, uid {}, gid {}", self.pid, self.uid, self.gid)
    }
}

/// An owned socket descriptor. Closed on drop.
///
/// # Example
///
/// ```
/// use socklab::{Domain, SockAddr, Socket, Type};
///
/// // The tutorial's calls, one method each: socket, bind, listen, connect, accept, send, recv.
/// let listener = Socket::new(Domain::IPV4, Type::STREAM, None)?;
/// listener.bind(&SockAddr::from(std::net::SocketAddr::from(([127, 0, 0, 1], 0))))?;
/// listener.listen(5)?;
/// let client = Socket::new(Domain::IPV4, Type::STREAM, None)?;
/// client.connect(&listener.local_addr()?)?; // the kernel finished the handshake: accept has not run
/// let (conn, peer) = listener.accept()?;
/// assert_eq!(peer, client.local_addr()?);
/// client.send_all(b"Hello")?;
/// let mut buf = [0u8; 2048];
/// let n = conn.recv(&mut buf)?;
/// conn.send_all(&buf[..n])?;
/// let n = client.recv(&mut buf)?;
/// assert_eq!(&buf[..n], b"Hello");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Socket {
    // Always `Some` while the Socket is alive; `None` only after `into_raw_fd`/`close` took it, so
    // that Drop knows not to close it again.
    fd: Option<OwnedFd>,
}

/// Retries `f` while it fails with `EINTR`, unless a stop signal was caught
/// ([`crate::process::catch_stop_signals`]): then the `EINTR` is the program's cue to stop, and
/// goes to the caller.
pub(crate) fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted && crate::process::stop_signals() == 0 => continue,
            other => return other,
        }
    }
}

#[cfg(socklab_sock_flags)]
const CLOEXEC_FLAG: libc::c_int = libc::SOCK_CLOEXEC;
#[cfg(not(socklab_sock_flags))]
const CLOEXEC_FLAG: libc::c_int = 0;

#[cfg(socklab_sock_flags)]
const NONBLOCK_FLAG: libc::c_int = libc::SOCK_NONBLOCK;
#[cfg(not(socklab_sock_flags))]
const NONBLOCK_FLAG: libc::c_int = 0;

#[cfg(socklab_msg_nosignal)]
const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(not(socklab_msg_nosignal))]
const SEND_FLAGS: libc::c_int = 0;

impl Socket {
    /// socket(2): a new socket of `domain` and `ty`, close-on-exec. `protocol` `None` lets the
    /// kernel pick the family's default for the type (TCP for IP streams, UDP for IP datagrams).
    pub fn new(domain: Domain, ty: Type, protocol: Option<Protocol>) -> io::Result<Socket> {
        let socket = Socket::from(sys::socket(domain.0, ty.0 | CLOEXEC_FLAG, protocol.map_or(0, |p| p.0))?);
        socket.finish_setup(ty.is_nonblocking() && !cfg!(socklab_sock_flags))?;
        Ok(socket)
    }

    /// socketpair(2): two connected `AF_UNIX` sockets, close-on-exec.
    pub fn pair(ty: Type) -> io::Result<(Socket, Socket)> {
        let (a, b) = sys::socketpair(libc::AF_UNIX, ty.0 | CLOEXEC_FLAG, 0)?;
        let (a, b) = (Socket::from(a), Socket::from(b));
        let late_nonblock = ty.is_nonblocking() && !cfg!(socklab_sock_flags);
        a.finish_setup(late_nonblock)?;
        b.finish_setup(late_nonblock)?;
        Ok((a, b))
    }

    /// Sets what the platform could not set atomically at creation.
    fn finish_setup(&self, nonblocking: bool) -> io::Result<()> {
        #[cfg(not(socklab_sock_flags))]
        sys::fcntl_set(self.as_fd(), libc::F_SETFD, libc::FD_CLOEXEC)?;
        #[cfg(socklab_so_nosigpipe)]
        sys::setsockopt_int(self.as_fd(), libc::SOL_SOCKET, libc::SO_NOSIGPIPE, 1)?;
        if nonblocking {
            self.set_nonblocking(true)?;
        }
        Ok(())
    }

    /// Wraps an existing descriptor. It should be a socket; calls on anything else fail with ENOTSOCK.
    pub fn from_fd(fd: OwnedFd) -> Socket {
        Socket { fd: Some(fd) }
    }

    fn fd(&self) -> BorrowedFd<'_> {
        match &self.fd {
            Some(fd) => fd.as_fd(),
            // `fd` is only taken by methods that consume `self`.
            None => unreachable!("socket used after its descriptor was taken"),
        }
    }

    /// bind(2): assigns the local address.
    pub fn bind(&self, addr: &SockAddr) -> io::Result<()> {
        sys::bind(self.fd(), addr)
    }

    /// listen(2): the kernel starts completing handshakes and queues finished connections for
    /// accept (Linux allows `backlog + 1`, more only when handshakes finish at once on several CPUs,
    /// and caps `backlog` at `net.core.somaxconn`).
    pub fn listen(&self, backlog: i32) -> io::Result<()> {
        sys::listen(self.fd(), backlog)
    }

    /// accept(2): the next established connection, close-on-exec. Retries on EINTR.
    pub fn accept(&self) -> io::Result<(Socket, SockAddr)> {
        self.accept_as(false, true)
    }

    /// accept(2) of a nonblocking connection (`SOCK_NONBLOCK` in accept4: on Linux an accepted
    /// socket does not inherit O_NONBLOCK from the listener). Retries on EINTR; on an empty queue
    /// of a nonblocking listener it fails with `WouldBlock`.
    pub fn accept_nonblocking(&self) -> io::Result<(Socket, SockAddr)> {
        self.accept_as(true, true)
    }

    /// accept(2) once, *without* retrying `EINTR`: for a server that wants a signal to wake it.
    pub fn accept_interruptible(&self) -> io::Result<(Socket, SockAddr)> {
        self.accept_as(false, false)
    }

    fn accept_as(&self, nonblocking: bool, retry_eintr: bool) -> io::Result<(Socket, SockAddr)> {
        let flags = CLOEXEC_FLAG | if nonblocking { NONBLOCK_FLAG } else { 0 };
        let call = || sys::accept(self.fd(), flags);
        let (fd, addr) = if retry_eintr { retry(call)? } else { call()? };
        let socket = Socket::from(fd);
        socket.finish_setup(nonblocking && NONBLOCK_FLAG == 0)?;
        Ok((socket, addr))
    }

    /// connect(2): for TCP, the three-way handshake. Returns once established (or refused).
    pub fn connect(&self, addr: &SockAddr) -> io::Result<()> {
        match sys::connect(self.fd(), addr) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => self.finish_interrupted_connect(),
            other => other,
        }
    }

    /// connect(2) on a nonblocking socket: starts the handshake and returns at once.
    pub fn connect_nonblocking(&self, addr: &SockAddr) -> io::Result<Connect> {
        match sys::connect(self.fd(), addr) {
            Ok(()) => Ok(Connect::Done),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(Connect::InProgress),
            // Interrupted: the handshake goes on in the kernel, just as with EINPROGRESS.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(Connect::InProgress),
            Err(e) => Err(e),
        }
    }

    /// After an interrupted connect the handshake goes on in the kernel; calling connect again would
    /// fail with EALREADY. Wait until the socket is writable, then SO_ERROR tells how it ended.
    fn finish_interrupted_connect(&self) -> io::Result<()> {
        self.wait_for(sys::POLLOUT, None)?;
        match self.take_error()? {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }

    /// poll(2) on this socket alone until one of `events` (or an error/hang-up) is reported, or
    /// `timeout` passes (`Ok(0)`). On a listener, `POLLIN` means "the accept queue is not empty".
    /// Retries on EINTR.
    pub fn wait_for(&self, events: libc::c_short, timeout: Option<Duration>) -> io::Result<libc::c_short> {
        let ms = timeout.map_or(-1, |d| d.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int);
        let mut fds = [sys::PollFd { fd: self.as_raw_fd(), events, revents: 0 }];
        retry(|| sys::poll(&mut fds, ms))?;
        Ok(fds[0].revents)
    }

    /// recv(2): up to `buf.len()` bytes; `Ok(0)` means the peer closed its side. Retries on EINTR.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        retry(|| sys::recv(self.fd(), buf, 0))
    }

    /// recv(2) with `MSG_PEEK`: the bytes stay queued for the next recv.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        retry(|| sys::recv(self.fd(), buf, libc::MSG_PEEK))
    }

    /// recv(2) with `MSG_DONTWAIT`: `WouldBlock` instead of waiting, on a blocking socket too.
    pub fn recv_nowait(&self, buf: &mut [u8]) -> io::Result<usize> {
        retry(|| sys::recv(self.fd(), buf, libc::MSG_DONTWAIT))
    }

    /// send(2) with `MSG_NOSIGNAL`: returns how many bytes the kernel took (maybe fewer than
    /// `buf.len()`). Retries on EINTR.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        retry(|| sys::send(self.fd(), buf, SEND_FLAGS))
    }

    /// recvfrom(2) with the sender's address: one datagram (or, on a stream, up to `buf.len()`
    /// bytes). Retries on EINTR.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SockAddr)> {
        retry(|| sys::recvfrom(self.fd(), buf, 0))
    }

    /// recvfrom(2) with `MSG_TRUNC`, for datagram and seqpacket sockets only (on a TCP socket
    /// `MSG_TRUNC` would *discard* the bytes): returns the datagram's real length, which is more
    /// than `buf.len()` when the kernel had to cut it to fit (the rest is lost). Retries on EINTR.
    pub fn recv_from_trunc(&self, buf: &mut [u8]) -> io::Result<(usize, SockAddr)> {
        retry(|| sys::recvfrom(self.fd(), buf, libc::MSG_TRUNC))
    }

    /// recv(2) with `MSG_TRUNC` on a connected datagram or seqpacket socket: the message's real
    /// length (see [`recv_from_trunc`](Self::recv_from_trunc)). Retries on EINTR.
    pub fn recv_trunc(&self, buf: &mut [u8]) -> io::Result<usize> {
        retry(|| sys::recv(self.fd(), buf, libc::MSG_TRUNC))
    }

    /// sendto(2): one datagram to `addr`, with `MSG_NOSIGNAL`. Retries on EINTR.
    pub fn send_to(&self, buf: &[u8], addr: &SockAddr) -> io::Result<usize> {
        retry(|| sys::sendto(self.fd(), buf, SEND_FLAGS, addr))
    }

    /// sendmsg(2) of `data` (at least one byte) with the descriptors `fds` attached as
    /// `SCM_RIGHTS`: the receiving process gets its own descriptors for the same open sockets or
    /// files. `AF_UNIX` only. Retries on EINTR.
    pub fn send_fds(&self, data: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
        if data.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "descriptors travel with at least one data byte"));
        }
        retry(|| sys::sendmsg_fds(self.fd(), data, fds, SEND_FLAGS))
    }

    /// recvmsg(2): data into `buf` and any descriptors passed with it (`SCM_RIGHTS`), owned and
    /// close-on-exec. Fails with `InvalidData` if the kernel had to drop descriptors that did
    /// not fit (`MSG_CTRUNC`). Retries on EINTR.
    pub fn recv_fds(&self, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
        let got = retry(|| sys::recvmsg_fds(self.fd(), buf, 0))?;
        if got.flags & libc::MSG_CTRUNC != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("more than {} descriptors were passed; the kernel closed the rest (MSG_CTRUNC)", sys::MAX_FDS),
            ));
        }
        Ok((got.len, got.fds))
    }

    /// SO_PEERCRED (Linux): the process at the other end of a connected `AF_UNIX` socket, as the
    /// kernel recorded it at connect time.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub fn peer_cred(&self) -> io::Result<PeerCred> {
        let (pid, uid, gid) = sys::getsockopt_peercred(self.fd())?;
        Ok(PeerCred { pid, uid, gid })
    }

    /// Sends all of `buf`, looping over short writes (the tutorial's `sendall`, UNP's `writen`).
    pub fn send_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.send(buf)? {
                0 => return Err(io::Error::new(io::ErrorKind::WriteZero, "send accepted no bytes")),
                n => buf = &buf[n..],
            }
        }
        Ok(())
    }

    /// shutdown(2): `Write` sends our FIN; `Read` discards further input; `Both` does both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let how = match how {
            Shutdown::Read => libc::SHUT_RD,
            Shutdown::Write => libc::SHUT_WR,
            Shutdown::Both => libc::SHUT_RDWR,
        };
        sys::shutdown(self.fd(), how)
    }

    /// close(2), reporting its error (dropping a Socket closes it too, ignoring the error).
    pub fn close(mut self) -> io::Result<()> {
        match self.fd.take() {
            Some(fd) => sys::close(fd),
            None => Ok(()),
        }
    }

    /// getsockname(2).
    pub fn local_addr(&self) -> io::Result<SockAddr> {
        sys::getsockname(self.fd())
    }

    /// getpeername(2).
    pub fn peer_addr(&self) -> io::Result<SockAddr> {
        sys::getpeername(self.fd())
    }

    fn set_int(&self, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
        sys::setsockopt_int(self.fd(), level, name, value)
    }

    fn get_int(&self, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
        sys::getsockopt_int(self.fd(), level, name)
    }

    /// SO_REUSEADDR: lets a server bind its port again while old connections sit in TIME-WAIT.
    pub fn set_reuse_address(&self, on: bool) -> io::Result<()> {
        self.set_int(libc::SOL_SOCKET, libc::SO_REUSEADDR, on.into())
    }

    /// Reads SO_REUSEADDR.
    pub fn reuse_address(&self) -> io::Result<bool> {
        Ok(self.get_int(libc::SOL_SOCKET, libc::SO_REUSEADDR)? != 0)
    }

    /// SO_REUSEPORT: several sockets may bind the same port; the kernel spreads connections.
    pub fn set_reuse_port(&self, on: bool) -> io::Result<()> {
        self.set_int(libc::SOL_SOCKET, libc::SO_REUSEPORT, on.into())
    }

    /// IPV6_V6ONLY: an IPv6 socket that refuses IPv4 (off: a `::` listener also takes IPv4
    /// clients, seen as IPv4-mapped `::ffff:a.b.c.d`). Set before bind.
    pub fn set_only_v6(&self, on: bool) -> io::Result<()> {
        self.set_int(libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, on.into())
    }

    /// IP_BIND_ADDRESS_NO_PORT (Linux): bind a source address now and pick the port at connect,
    /// so many connections to different servers can share a port.
    #[cfg(target_os = "linux")]
    pub fn set_bind_address_no_port(&self, on: bool) -> io::Result<()> {
        self.set_int(libc::IPPROTO_IP, libc::IP_BIND_ADDRESS_NO_PORT, on.into())
    }

    /// SO_KEEPALIVE with its timing: after `idle` without traffic the kernel sends a probe (an
    /// empty ACK) every `interval` (TCP_KEEPIDLE, TCP_KEEPINTVL, whole seconds, at least 1);
    /// `count` unanswered probes (TCP_KEEPCNT), or an RST in answer, end the connection
    /// (ETIMEDOUT, ECONNRESET). A peer that is alive answers each probe; no data is sent.
    pub fn set_keepalive_probes(&self, idle: Duration, interval: Duration, count: u32) -> io::Result<()> {
        let secs = |d: Duration| i32::try_from(d.as_secs().max(1)).unwrap_or(i32::MAX);
        self.set_int(libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
        self.set_int(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs(idle))?;
        self.set_int(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, secs(interval))?;
        self.set_int(libc::IPPROTO_TCP, libc::TCP_KEEPCNT, i32::try_from(count.max(1)).unwrap_or(i32::MAX))
    }

    /// TCP_MAXSEG, before connect: the largest segment this socket sends and the MSS it
    /// announces in its SYN, so the peer sends it segments no larger either (on loopback the MSS
    /// is otherwise about 65,000 bytes, and the peer's send buffer is sized from it).
    pub fn set_max_segment(&self, bytes: u32) -> io::Result<()> {
        self.set_int(libc::IPPROTO_TCP, libc::TCP_MAXSEG, i32::try_from(bytes).unwrap_or(i32::MAX))
    }

    /// TCP_NODELAY: send small segments at once instead of waiting (Nagle's algorithm off).
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.set_int(libc::IPPROTO_TCP, libc::TCP_NODELAY, on.into())
    }

    /// Reads TCP_NODELAY.
    pub fn nodelay(&self) -> io::Result<bool> {
        Ok(self.get_int(libc::IPPROTO_TCP, libc::TCP_NODELAY)? != 0)
    }

    /// SO_RCVBUF: the receive buffer size to ask for (the kernel doubles it for bookkeeping and
    /// caps it at `net.core.rmem_max`).
    pub fn set_recv_buffer_size(&self, bytes: usize) -> io::Result<()> {
        self.set_int(libc::SOL_SOCKET, libc::SO_RCVBUF, bytes.min(i32::MAX as usize) as libc::c_int)
    }

    /// SO_SNDBUF: the send buffer size to ask for (doubled by the kernel, as SO_RCVBUF): how much
    /// a send may queue before it blocks.
    pub fn set_send_buffer_size(&self, bytes: usize) -> io::Result<()> {
        self.set_int(libc::SOL_SOCKET, libc::SO_SNDBUF, bytes.min(i32::MAX as usize) as libc::c_int)
    }

    /// SO_RCVBUFFORCE (Linux, needs CAP_NET_ADMIN): like SO_RCVBUF, past `net.core.rmem_max`.
    #[cfg(target_os = "linux")]
    pub fn set_recv_buffer_size_force(&self, bytes: usize) -> io::Result<()> {
        self.set_int(libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, bytes.min(i32::MAX as usize) as libc::c_int)
    }

    /// SO_RCVTIMEO: recv fails with `WouldBlock` after this long without data. `None`: wait forever.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        check_timeout(timeout)?;
        sys::setsockopt_timeval(self.fd(), libc::SO_RCVTIMEO, timeout)
    }

    /// Reads SO_RCVTIMEO.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        sys::getsockopt_timeval(self.fd(), libc::SO_RCVTIMEO)
    }

    /// SO_SNDTIMEO: send fails with `WouldBlock` after this long without buffer space.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        check_timeout(timeout)?;
        sys::setsockopt_timeval(self.fd(), libc::SO_SNDTIMEO, timeout)
    }

    /// Reads SO_SNDTIMEO.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        sys::getsockopt_timeval(self.fd(), libc::SO_SNDTIMEO)
    }

    /// SO_LINGER. `Some(Duration::ZERO)` makes close abort the connection with a RST (no FIN, no
    /// TIME-WAIT); `None` is the normal graceful close.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        sys::setsockopt_linger(self.fd(), linger)
    }

    /// Reads SO_LINGER.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        sys::getsockopt_linger(self.fd())
    }

    /// SO_ERROR: the pending error of the socket (clears it), e.g. how a non-blocking connect ended.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        let errno = self.get_int(libc::SOL_SOCKET, libc::SO_ERROR)?;
        Ok((errno != 0).then(|| io::Error::from_raw_os_error(errno)))
    }

    /// TCP_INFO (Linux): the kernel's `struct tcp_info` for this connection, as bytes (parsed by
    /// `diag`). Returns how many bytes the kernel wrote.
    #[cfg(socklab_tcp_info)]
    pub fn tcp_info(&self, buf: &mut [u8]) -> io::Result<usize> {
        sys::getsockopt_bytes(self.fd(), libc::IPPROTO_TCP, libc::TCP_INFO, buf)
    }

    /// PACKET_IGNORE_OUTGOING (Linux 4.20+): a packet socket skips the frames this host sends. On
    /// `lo` every frame is both sent and received, so without it each is captured twice.
    #[cfg(socklab_af_packet)]
    pub fn set_packet_ignore_outgoing(&self, on: bool) -> io::Result<()> {
        self.set_int(libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, on.into())
    }

    /// PACKET_STATISTICS: `(frames received, frames dropped)` since the last call (reading resets).
    #[cfg(socklab_af_packet)]
    pub fn packet_statistics(&self) -> io::Result<(u32, u32)> {
        let mut stats = [0u8; 8]; // struct tpacket_stats { tp_packets, tp_drops }
        let n = sys::getsockopt_bytes(self.fd(), libc::SOL_PACKET, libc::PACKET_STATISTICS, &mut stats)?;
        if n < 8 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "short PACKET_STATISTICS"));
        }
        let word = |i: usize| u32::from_ne_bytes([stats[i], stats[i + 1], stats[i + 2], stats[i + 3]]);
        Ok((word(0), word(4)))
    }

    /// ioctl(SIOCGSTAMPNS) on a packet socket: when the kernel received the last frame read, as
    /// CLOCK_REALTIME `(seconds, nanoseconds)`. The first call switches time stamping on.
    #[cfg(socklab_af_packet)]
    pub fn last_frame_time(&self) -> io::Result<(i64, i64)> {
        sys::packet::ioctl_siocgstampns(self.fd())
    }

    /// O_NONBLOCK: calls that would block fail with `WouldBlock` instead.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        let flags = sys::fcntl_get(self.fd(), libc::F_GETFL)?;
        let new = if on { flags | libc::O_NONBLOCK } else { flags & !libc::O_NONBLOCK };
        if new == flags { Ok(()) } else { sys::fcntl_set(self.fd(), libc::F_SETFL, new) }
    }
}

/// A zero timeout would mean "forever" to the kernel; std rejects it too.
fn check_timeout(timeout: Option<Duration>) -> io::Result<()> {
    if timeout == Some(Duration::ZERO) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a zero timeout is not allowed; use None to wait forever",
        ));
    }
    Ok(())
}

impl Drop for Socket {
    fn drop(&mut self) {
        if let Some(fd) = self.fd.take() {
            // Errors from close cannot be reported from drop; `Socket::close` reports them.
            let _ = sys::close(fd);
        }
    }
}

impl From<OwnedFd> for Socket {
    fn from(fd: OwnedFd) -> Socket {
        Socket::from_fd(fd)
    }
}

impl From<Socket> for OwnedFd {
    fn from(mut socket: Socket) -> OwnedFd {
        match socket.fd.take() {
            Some(fd) => fd,
            None => unreachable!("socket used after its descriptor was taken"),
        }
    }
}

impl AsRef<Socket> for Socket {
    fn as_ref(&self) -> &Socket {
        self
    }
}

impl AsFd for Socket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd()
    }
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd().as_raw_fd()
    }
}

impl IntoRawFd for Socket {
    fn into_raw_fd(self) -> RawFd {
        OwnedFd::from(self).into_raw_fd()
    }
}

/// The descriptor traits every socket type above this floor shares (`TcpListener`, `TcpStream`,
/// and later the UDP and Unix types): `AsFd`, `AsRawFd`, `IntoRawFd`, `From<OwnedFd>`, and the
/// conversions to and from the std type of the same name. The type must have a `socket: Socket`
/// field.
macro_rules! socket_type_traits {
    ($ty:ident, $std:ty) => {
        impl std::os::fd::AsFd for $ty {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                self.socket.as_fd()
            }
        }
        impl std::os::fd::AsRawFd for $ty {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.socket.as_raw_fd()
            }
        }
        impl std::os::fd::IntoRawFd for $ty {
            fn into_raw_fd(self) -> std::os::fd::RawFd {
                self.socket.into_raw_fd()
            }
        }
        impl From<std::os::fd::OwnedFd> for $ty {
            fn from(fd: std::os::fd::OwnedFd) -> $ty {
                $ty { socket: $crate::socket::Socket::from(fd) }
            }
        }
        impl From<$ty> for std::os::fd::OwnedFd {
            fn from(value: $ty) -> std::os::fd::OwnedFd {
                std::os::fd::OwnedFd::from(value.socket)
            }
        }
        impl From<$std> for $ty {
            fn from(value: $std) -> $ty {
                $ty::from(std::os::fd::OwnedFd::from(value))
            }
        }
        impl From<$ty> for $std {
            fn from(value: $ty) -> $std {
                <$std>::from(std::os::fd::OwnedFd::from(value))
            }
        }
    };
}
pub(crate) use socket_type_traits;
