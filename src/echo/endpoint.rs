//! What a server listens on, for every family: a [`Listener`] hands out [`Stream`]s (TCP over
//! IPv4/IPv6, Unix stream, Unix seqpacket), a [`Datagram`] socket has no connections at all (UDP,
//! Unix datagram). The models are written once against these two small enums; each method is one
//! match that forwards to the floor-3 type (`tcp.rs`, `unix.rs`, `udp.rs`), all of which are a
//! [`Socket`] underneath, so the hot path pays one predictable branch.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use crate::SockAddr;
use crate::socket::Socket;
use crate::tcp::{TcpListener, TcpStream};
use crate::udp::UdpSocket;
use crate::unix::{UnixDatagram, UnixKind, UnixListener, UnixStream, unlink_stale};

/// Which kind of socket a server binds, and where. IP transports listen on `ServerConfig::addr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// TCP on `addr` (IPv4 or IPv6): the tutorial's.
    #[default]
    Tcp,
    /// UDP on `addr`: a datagram echo, no connections.
    Udp,
    /// A Unix stream or seqpacket socket at this path or `@name`.
    Unix(SockAddr, UnixKind),
    /// A Unix datagram socket at this path or `@name`.
    UnixDgram(SockAddr),
}

impl Transport {
    /// Datagram transports have no accept and no connections.
    pub fn is_datagram(&self) -> bool {
        matches!(self, Transport::Udp | Transport::UnixDgram(_))
    }

    /// The Unix name, for the Unix transports.
    pub fn unix_addr(&self) -> Option<&SockAddr> {
        match self {
            Transport::Unix(addr, _) | Transport::UnixDgram(addr) => Some(addr),
            _ => None,
        }
    }
}

/// What a server bound.
#[derive(Debug)]
pub enum Bound {
    /// A listening socket.
    Listener(Listener),
    /// A datagram socket.
    Datagram(Datagram),
}

impl Bound {
    /// socket, (options), bind, and listen for the connection-oriented transports. `only_v6` sets
    /// IPV6_V6ONLY before bind on an IPv6 address; `unlink` first removes a stale socket file.
    pub fn bind(
        transport: &Transport,
        addr: SocketAddr,
        backlog: i32,
        only_v6: Option<bool>,
        unlink: bool,
    ) -> io::Result<Bound> {
        if unlink && let Some(name) = transport.unix_addr() {
            unlink_stale(name)?;
        }
        Ok(match transport {
            Transport::Tcp => Bound::Listener(Listener::Tcp(TcpListener::bind_with(&addr, backlog, only_v6)?)),
            Transport::Unix(name, UnixKind::Stream) => {
                Bound::Listener(Listener::Unix(UnixListener::bind(name, UnixKind::Stream, backlog)?))
            }
            Transport::Unix(name, UnixKind::Seqpacket) => {
                Bound::Listener(Listener::Seqpacket(UnixListener::bind(name, UnixKind::Seqpacket, backlog)?))
            }
            Transport::Udp => Bound::Datagram(Datagram::Udp(UdpSocket::bind(&addr, only_v6)?)),
            Transport::UnixDgram(name) => Bound::Datagram(Datagram::Unix(UnixDatagram::bind(name)?)),
        })
    }

    /// The bound address (getsockname): the real port after port 0, the path, `@name`.
    pub fn local_addr(&self) -> io::Result<SockAddr> {
        self.socket().local_addr()
    }

    /// The socket underneath.
    pub fn socket(&self) -> &Socket {
        match self {
            Bound::Listener(l) => l.as_ref(),
            Bound::Datagram(d) => d.as_ref(),
        }
    }

    /// close(2), reporting its error.
    pub fn close(self) -> io::Result<()> {
        match self {
            Bound::Listener(Listener::Tcp(l)) => l.close(),
            Bound::Listener(Listener::Unix(l) | Listener::Seqpacket(l)) => l.close(),
            Bound::Datagram(Datagram::Udp(d)) => Socket::from(std::os::fd::OwnedFd::from(d)).close(),
            Bound::Datagram(Datagram::Unix(d)) => Socket::from(std::os::fd::OwnedFd::from(d)).close(),
        }
    }
}

impl AsRef<Socket> for Bound {
    fn as_ref(&self) -> &Socket {
        self.socket()
    }
}

/// A listening socket of any stream family.
#[derive(Debug)]
pub enum Listener {
    /// TCP, IPv4 or IPv6.
    Tcp(TcpListener),
    /// Unix stream.
    Unix(UnixListener),
    /// Unix seqpacket.
    Seqpacket(UnixListener),
}

impl Listener {
    fn wrap(&self, (socket, peer): (Socket, SockAddr)) -> (Stream, SockAddr) {
        (self.stream(socket), peer)
    }

    /// A connection this listener accepted (by any means: accept(2), io_uring), typed as its kind.
    pub fn stream(&self, socket: Socket) -> Stream {
        match self {
            Listener::Tcp(_) => Stream::Tcp(TcpStream::from_socket(socket)),
            Listener::Unix(_) => Stream::Unix(UnixStream::from_socket(socket)),
            Listener::Seqpacket(_) => Stream::Seqpacket(UnixStream::from_socket(socket)),
        }
    }

    /// accept(2), blocking; retries EINTR.
    pub fn accept(&self) -> io::Result<(Stream, SockAddr)> {
        Ok(self.wrap(self.as_ref().accept()?))
    }

    /// accept(2) for an event loop: the connection is nonblocking; `WouldBlock` on an empty queue.
    pub fn accept_nonblocking(&self) -> io::Result<(Stream, SockAddr)> {
        Ok(self.wrap(self.as_ref().accept_nonblocking()?))
    }

    /// accept(2) that returns EINTR as `Interrupted`.
    pub fn accept_interruptible(&self) -> io::Result<(Stream, SockAddr)> {
        Ok(self.wrap(self.as_ref().accept_interruptible()?))
    }

    /// Blocks until a connection waits in the accept queue (or the listener is shut down).
    pub fn wait_for_connection(&self) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.wait_for_connection(),
            Listener::Unix(l) | Listener::Seqpacket(l) => l.wait_for_connection(),
        }
    }

    /// O_NONBLOCK on the listener.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.as_ref().set_nonblocking(on)
    }
}

impl AsRef<Socket> for Listener {
    fn as_ref(&self) -> &Socket {
        match self {
            Listener::Tcp(l) => l.socket(),
            Listener::Unix(l) | Listener::Seqpacket(l) => l.socket(),
        }
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.as_ref().as_fd()
    }
}

/// A connection of any stream family.
#[derive(Debug)]
pub enum Stream {
    /// TCP.
    Tcp(TcpStream),
    /// Unix stream.
    Unix(UnixStream),
    /// Unix seqpacket: a connection that keeps message boundaries.
    Seqpacket(UnixStream),
}

impl Stream {
    /// recv(2). On seqpacket: one message, cut to `buf.len()` (see [`recv_message`](Self::recv_message)).
    #[inline]
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.as_ref().recv(buf)
    }

    /// recv(2) that tells a cut message: `(bytes in buf, the message's real length)`. On
    /// seqpacket, recv with `MSG_TRUNC` returns the real length (Linux) and the kernel drops the
    /// part that did not fit; a byte stream is never cut (the rest waits for the next recv), so
    /// there both are the count.
    pub fn recv_message(&self, buf: &mut [u8]) -> io::Result<(usize, usize)> {
        match self {
            Stream::Seqpacket(s) => s.recv_trunc(buf).map(|real| (real.min(buf.len()), real)),
            _ => self.recv(buf).map(|n| (n, n)),
        }
    }

    /// send(2) once.
    #[inline]
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.as_ref().send(buf)
    }

    /// Sends every byte, looping over short writes.
    pub fn send_all(&self, buf: &[u8]) -> io::Result<()> {
        self.as_ref().send_all(buf)
    }

    /// SO_RCVTIMEO.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.as_ref().set_read_timeout(timeout)
    }

    /// SO_SNDTIMEO.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.as_ref().set_write_timeout(timeout)
    }

    /// TCP_NODELAY on TCP; nothing on a Unix socket (it has no Nagle algorithm: a send is
    /// delivered to the peer's queue at once).
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_nodelay(on),
            Stream::Unix(_) | Stream::Seqpacket(_) => Ok(()),
        }
    }

    /// SO_PEERCRED for a Unix connection; `None` for TCP (or where the platform lacks it).
    pub fn peer_cred(&self) -> Option<io::Result<crate::PeerCred>> {
        match self {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Stream::Unix(s) | Stream::Seqpacket(s) => Some(s.peer_cred()),
            _ => None,
        }
    }

    /// shutdown(2).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.as_ref().shutdown(how)
    }

    /// close(2), reporting its error.
    pub fn close(self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.close(),
            Stream::Unix(s) | Stream::Seqpacket(s) => s.close(),
        }
    }
}

impl AsRef<Socket> for Stream {
    #[inline]
    fn as_ref(&self) -> &Socket {
        match self {
            Stream::Tcp(s) => s.socket(),
            Stream::Unix(s) | Stream::Seqpacket(s) => s.socket(),
        }
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.as_ref().as_fd()
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        self.as_ref().as_raw_fd()
    }
}

/// A datagram socket of either family.
#[derive(Debug)]
pub enum Datagram {
    /// UDP, IPv4 or IPv6.
    Udp(UdpSocket),
    /// Unix datagram.
    Unix(UnixDatagram),
}

impl Datagram {
    /// recvfrom(2) with `MSG_TRUNC`: `(real length, sender)`; more than `buf.len()` means cut.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SockAddr)> {
        self.as_ref().recv_from_trunc(buf)
    }

    /// sendto(2): one datagram back to `to`.
    pub fn send_to(&self, buf: &[u8], to: &SockAddr) -> io::Result<usize> {
        self.as_ref().send_to(buf, to)
    }
}

impl AsRef<Socket> for Datagram {
    fn as_ref(&self) -> &Socket {
        match self {
            Datagram::Udp(s) => s.socket(),
            Datagram::Unix(s) => s.socket(),
        }
    }
}

impl AsFd for Datagram {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.as_ref().as_fd()
    }
}
