//! Floor 3: `UdpSocket`, shaped like std's, built on [`Socket`].
//!
//! UDP has no connection: no handshake, no accept, no close sequence. A server binds and answers
//! each datagram to the address it came from (recvfrom / sendto). A client may still `connect`:
//! that sends nothing, it only fixes the peer, so plain send/recv work — and the kernel can then
//! report an ICMP "port unreachable" for a datagram to a port nobody listens on as
//! `ECONNREFUSED` on the next call (an unconnected socket would never hear about it).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::error::CallError;
use crate::socket::{Domain, Socket, Type, socket_type_traits};
use crate::sys::SockAddr;

/// The largest UDP payload over IPv4: 65535 - 20 (IP header) - 8 (UDP header).
pub const MAX_UDP_PAYLOAD: usize = 65_507;

/// A UDP socket.
///
/// # Example
///
/// ```
/// use socklab::UdpSocket;
///
/// // No listen, no accept: the server answers each datagram to the address recvfrom reported.
/// let server = UdpSocket::bind(&"127.0.0.1:0".parse()?, None)?;
/// let client = UdpSocket::connect(&server.local_addr()?)?; // connect sends nothing on UDP
/// client.send(b"Hello")?;
/// let mut buf = [0u8; 2048];
/// let (n, from) = server.recv_from(&mut buf)?;
/// assert_eq!(from, client.local_addr()?);
/// server.send_to(&buf[..n], &from)?;
/// let n = client.recv(&mut buf)?;
/// assert_eq!(&buf[..n], b"Hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct UdpSocket {
    socket: Socket,
}

impl UdpSocket {
    /// socket(SOCK_DGRAM) + bind. `only_v6` (IPv6 only) sets IPV6_V6ONLY before bind.
    pub fn bind(addr: &SocketAddr, only_v6: Option<bool>) -> Result<UdpSocket, CallError> {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, None)
            .map_err(|e| CallError::new("socket", Some(*addr), e))?;
        if let Some(on) = only_v6 {
            socket.set_only_v6(on).map_err(|e| CallError::new("setsockopt IPV6_V6ONLY", Some(*addr), e))?;
        }
        // Named apart from TCP's bind: the same port number is another port for UDP.
        socket.bind(&SockAddr::from(addr)).map_err(|e| CallError::new("bind (UDP)", Some(*addr), e))?;
        Ok(UdpSocket { socket })
    }

    /// socket(SOCK_DGRAM) + connect: fixes the peer (no packet is sent).
    pub fn connect(addr: &SocketAddr) -> Result<UdpSocket, CallError> {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, None)
            .map_err(|e| CallError::new("socket", Some(*addr), e))?;
        socket.connect(&SockAddr::from(addr)).map_err(|e| CallError::new("connect", Some(*addr), e))?;
        Ok(UdpSocket { socket })
    }

    /// recvfrom(2) with `MSG_TRUNC`: `(real length, sender)`. A length over `buf.len()` means the
    /// datagram did not fit and the kernel cut it (the rest is gone).
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let (n, from) = self.socket.recv_from_trunc(buf)?;
        Ok((n, from.to_socket()?))
    }

    /// sendto(2): one datagram to `addr`.
    pub fn send_to(&self, buf: &[u8], addr: &SocketAddr) -> io::Result<usize> {
        self.socket.send_to(buf, &SockAddr::from(addr))
    }

    /// send(2) on a connected socket: one datagram to the peer.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.socket.send(buf)
    }

    /// recv(2) with `MSG_TRUNC` on a connected socket: the datagram's real length.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket.recv_trunc(buf)
    }

    /// SO_RCVTIMEO: a recv that waits longer fails with `WouldBlock`.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.socket.set_read_timeout(timeout)
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()?.to_socket()
    }

    /// The underlying socket.
    pub fn socket(&self) -> &Socket {
        &self.socket
    }
}

socket_type_traits!(UdpSocket, std::net::UdpSocket);

impl AsRef<Socket> for UdpSocket {
    fn as_ref(&self) -> &Socket {
        &self.socket
    }
}
