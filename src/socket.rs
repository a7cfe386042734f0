//! Floor 2: `Socket`, an owned socket descriptor with safe methods over `sys`.
//!
//! What this layer adds to the raw calls:
//! - **Ownership**: a `Socket` owns its descriptor and closes it (through `sys::close`, so the close
//!   is narrated) when dropped. Close is never retried.
//! - **Safe defaults**: every descriptor is close-on-exec from birth (`SOCK_CLOEXEC`, `accept4`;
//!   `fcntl(FD_CLOEXEC)` where the platform lacks them), and every send passes `MSG_NOSIGNAL` (or
//!   the socket has `SO_NOSIGPIPE`) so writing to a closed peer is an `EPIPE` error, not a SIGPIPE
//!   death.
//! - **EINTR**: blocking calls (accept, recv, send) are retried when a signal handler interrupts
//!   them; data is never lost by a retry because an interrupted call transferred nothing. An
//!   interrupted `connect` keeps going in the kernel, so it is finished by waiting for writability
//!   and reading `SO_ERROR`, not by calling connect again.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::sys;

/// What kind of socket to create: the `type` argument of socket(2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// `SOCK_STREAM`: a reliable byte stream (TCP for internet domains).
    Stream,
    /// `SOCK_DGRAM`: datagrams (UDP).
    Datagram,
}

/// An owned socket descriptor. Closed on drop.
#[derive(Debug)]
pub struct Socket {
    // Always `Some` while the Socket is alive; `None` only after `into_raw_fd`/`close` took it, so
    // that Drop knows not to close it again.
    fd: Option<OwnedFd>,
}

/// Retries `f` while it fails with `EINTR`.
fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[cfg(socklab_sock_flags)]
const CLOEXEC_FLAG: libc::c_int = libc::SOCK_CLOEXEC;
#[cfg(not(socklab_sock_flags))]
const CLOEXEC_FLAG: libc::c_int = 0;

#[cfg(socklab_msg_nosignal)]
const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(not(socklab_msg_nosignal))]
const SEND_FLAGS: libc::c_int = 0;

impl Socket {
    /// Creates a socket of `ty` for the family of `addr` (AF_INET or AF_INET6), close-on-exec.
    pub fn new(addr: &SocketAddr, ty: Type) -> io::Result<Socket> {
        let domain = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
        let ty = match ty {
            Type::Stream => libc::SOCK_STREAM,
            Type::Datagram => libc::SOCK_DGRAM,
        };
        let socket = Socket::from(sys::socket(domain, ty | CLOEXEC_FLAG, 0)?);
        socket.finish_setup()?;
        Ok(socket)
    }

    /// Sets what the platform could not set atomically at creation.
    #[cfg(all(socklab_sock_flags, not(socklab_so_nosigpipe)))]
    fn finish_setup(&self) -> io::Result<()> {
        Ok(())
    }

    #[cfg(not(all(socklab_sock_flags, not(socklab_so_nosigpipe))))]
    fn finish_setup(&self) -> io::Result<()> {
        #[cfg(not(socklab_sock_flags))]
        sys::fcntl_set(self.as_fd(), libc::F_SETFD, libc::FD_CLOEXEC)?;
        #[cfg(socklab_so_nosigpipe)]
        sys::setsockopt_int(self.as_fd(), libc::SOL_SOCKET, libc::SO_NOSIGPIPE, 1)?;
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
    pub fn bind(&self, addr: &SocketAddr) -> io::Result<()> {
        sys::bind(self.fd(), addr)
    }

    /// listen(2): starts accepting connections into a queue of up to `backlog` (the kernel caps it
    /// at `net.core.somaxconn`).
    pub fn listen(&self, backlog: i32) -> io::Result<()> {
        sys::listen(self.fd(), backlog)
    }

    /// accept(2): the next established connection, close-on-exec. Retries on EINTR.
    pub fn accept(&self) -> io::Result<(Socket, SocketAddr)> {
        self.accept_with_flags(CLOEXEC_FLAG)
    }

    /// accept(2) with extra `SOCK_*` flags (such as `SOCK_NONBLOCK`) besides close-on-exec.
    pub fn accept_with_flags(&self, flags: libc::c_int) -> io::Result<(Socket, SocketAddr)> {
        let (fd, addr) = retry(|| sys::accept(self.fd(), flags | CLOEXEC_FLAG))?;
        let socket = Socket::from(fd);
        socket.finish_setup()?;
        Ok((socket, addr))
    }

    /// accept(2) once, *without* retrying `EINTR`: for a server that wants a signal to wake it (the
    /// fork model reaps its children when SIGCHLD interrupts accept).
    pub fn accept_interruptible(&self) -> io::Result<(Socket, SocketAddr)> {
        let (fd, addr) = sys::accept(self.fd(), CLOEXEC_FLAG)?;
        let socket = Socket::from(fd);
        socket.finish_setup()?;
        Ok((socket, addr))
    }

    /// connect(2): the TCP three-way handshake. Returns once established (or refused).
    pub fn connect(&self, addr: &SocketAddr) -> io::Result<()> {
        match sys::connect(self.fd(), addr) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => self.finish_interrupted_connect(),
            other => other,
        }
    }

    /// After an interrupted connect the handshake goes on in the kernel; calling connect again would
    /// fail with EALREADY. Wait until the socket is writable, then SO_ERROR tells how it ended.
    fn finish_interrupted_connect(&self) -> io::Result<()> {
        self.wait_for(sys::POLLOUT)?;
        match self.take_error()? {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }

    /// poll(2) on this socket alone until one of `events` (or an error/hang-up) is reported.
    /// On a listener, `POLLIN` means "the accept queue is not empty". Retries on EINTR.
    pub fn wait_for(&self, events: libc::c_short) -> io::Result<libc::c_short> {
        let mut fds = [sys::PollFd { fd: self.as_raw_fd(), events, revents: 0 }];
        retry(|| sys::poll(&mut fds, -1))?;
        Ok(fds[0].revents)
    }

    /// recv(2): up to `buf.len()` bytes; `Ok(0)` means the peer closed its side. Retries on EINTR.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        retry(|| sys::recv(self.fd(), buf, 0))
    }

    /// recv(2) with explicit `MSG_*` flags (`MSG_PEEK`, `MSG_DONTWAIT`...). Retries on EINTR.
    pub fn recv_with_flags(&self, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize> {
        retry(|| sys::recv(self.fd(), buf, flags))
    }

    /// send(2) with `MSG_NOSIGNAL`: returns how many bytes the kernel took (maybe fewer than
    /// `buf.len()`). Retries on EINTR.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        retry(|| sys::send(self.fd(), buf, SEND_FLAGS))
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
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sys::getsockname(self.fd())
    }

    /// getpeername(2).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        sys::getpeername(self.fd())
    }

    /// SO_REUSEADDR: lets a server bind its port again while old connections sit in TIME-WAIT.
    pub fn set_reuse_address(&self, on: bool) -> io::Result<()> {
        sys::setsockopt_int(self.fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, on.into())
    }

    /// Reads SO_REUSEADDR.
    pub fn reuse_address(&self) -> io::Result<bool> {
        Ok(sys::getsockopt_int(self.fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR)? != 0)
    }

    /// SO_REUSEPORT: several sockets may bind the same port; the kernel spreads connections.
    pub fn set_reuse_port(&self, on: bool) -> io::Result<()> {
        sys::setsockopt_int(self.fd(), libc::SOL_SOCKET, libc::SO_REUSEPORT, on.into())
    }

    /// TCP_NODELAY: send small segments at once instead of waiting (Nagle's algorithm off).
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        sys::setsockopt_int(self.fd(), libc::IPPROTO_TCP, libc::TCP_NODELAY, on.into())
    }

    /// Reads TCP_NODELAY.
    pub fn nodelay(&self) -> io::Result<bool> {
        Ok(sys::getsockopt_int(self.fd(), libc::IPPROTO_TCP, libc::TCP_NODELAY)? != 0)
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
        let errno = sys::getsockopt_int(self.fd(), libc::SOL_SOCKET, libc::SO_ERROR)?;
        Ok((errno != 0).then(|| io::Error::from_raw_os_error(errno)))
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
