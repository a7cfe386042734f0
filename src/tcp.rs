//! Floor 3: `TcpListener` and `TcpStream`, shaped like std's, built on [`Socket`].
//!
//! The server side is the tutorial's sequence: socket → setsockopt(SO_REUSEADDR) → bind → listen,
//! then accept per client. The client side is socket → connect. Errors from these steps are a
//! [`CallError`]: the call, the address, and the OS error (`raw_os_error()`, `kind()`, as std's).

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};

use std::time::Duration;

use crate::error::CallError;
use crate::socket::{Domain, Socket, Type, socket_type_traits};
use crate::sys::SockAddr;

/// The backlog `TcpListener::bind` uses: the tutorial's `listen(5)` is too small for anything but
/// one client at a time, so this matches Linux's historical SOMAXCONN instead.
pub const DEFAULT_BACKLOG: i32 = 128;

/// A listening TCP socket.
///
/// # Example
///
/// ```
/// use std::io::{Read, Write};
/// use socklab::{TcpListener, TcpStream};
///
/// // Port 0: the kernel picks a free port; local_addr() says which.
/// let listener = TcpListener::bind(&"127.0.0.1:0".parse()?)?;
/// let mut client = TcpStream::connect(&listener.local_addr()?)?;
/// let (mut conn, peer) = listener.accept()?;
/// assert_eq!(peer, client.local_addr()?);
/// client.write_all(b"Hello")?;
/// let mut buf = [0u8; 5];
/// conn.read_exact(&mut buf)?;
/// conn.write_all(&buf)?; // the echo
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct TcpListener {
    socket: Socket,
}

impl TcpListener {
    /// socket, setsockopt(SO_REUSEADDR), bind, listen(DEFAULT_BACKLOG). Port 0 lets the kernel
    /// choose a free port: read it back with [`local_addr`](Self::local_addr).
    pub fn bind(addr: &SocketAddr) -> Result<TcpListener, CallError> {
        TcpListener::bind_with_backlog(addr, DEFAULT_BACKLOG)
    }

    /// Like [`bind`](Self::bind) with an explicit listen backlog: how many connections that have
    /// completed the handshake may wait for accept.
    pub fn bind_with_backlog(addr: &SocketAddr, backlog: i32) -> Result<TcpListener, CallError> {
        TcpListener::bind_with(addr, backlog, None)
    }

    /// Like [`bind_with_backlog`](Self::bind_with_backlog), and on an IPv6 address with
    /// `only_v6` set, IPV6_V6ONLY before bind: `Some(false)` makes a `::` listener dual-stack
    /// (IPv4 clients arrive as `::ffff:a.b.c.d`), `Some(true)` refuses IPv4; `None` keeps the
    /// system's default (`net.ipv6.bindv6only`, normally 0).
    pub fn bind_with(addr: &SocketAddr, backlog: i32, only_v6: Option<bool>) -> Result<TcpListener, CallError> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)
            .map_err(|e| CallError::new("socket", Some(*addr), e))?;
        if let Some(on) = only_v6 {
            socket.set_only_v6(on).map_err(|e| CallError::new("setsockopt IPV6_V6ONLY", Some(*addr), e))?;
        }
        // Without SO_REUSEADDR a restarted server could not bind while old connections of its
        // port are still in TIME-WAIT.
        socket.set_reuse_address(true).map_err(|e| CallError::new("setsockopt SO_REUSEADDR", Some(*addr), e))?;
        socket.bind(&SockAddr::from(addr)).map_err(|e| CallError::new("bind", Some(*addr), e))?;
        socket.listen(backlog).map_err(|e| CallError::new("listen", Some(*addr), e))?;
        Ok(TcpListener { socket })
    }

    /// Builds a listener from a socket that is already bound and listening.
    pub fn from_socket(socket: Socket) -> TcpListener {
        TcpListener { socket }
    }

    /// Takes the next connection from the accept queue, blocking while it is empty. The handshake
    /// already happened in the kernel; this only hands the connection to the program.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (socket, addr) = self.socket.accept()?;
        Ok((TcpStream { socket }, addr.to_socket()?))
    }

    /// Like [`accept`](Self::accept), for an event loop: the connection comes out nonblocking, and
    /// a nonblocking listener with an empty queue fails with `WouldBlock`.
    pub fn accept_nonblocking(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (socket, addr) = self.socket.accept_nonblocking()?;
        Ok((TcpStream { socket }, addr.to_socket()?))
    }

    /// Like [`accept`](Self::accept), but a signal handler's `EINTR` comes back as an error
    /// (`ErrorKind::Interrupted`) instead of being retried.
    pub fn accept_interruptible(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (socket, addr) = self.socket.accept_interruptible()?;
        Ok((TcpStream { socket }, addr.to_socket()?))
    }

    /// Blocks until a connection is waiting in the accept queue (poll(2) reports the listener
    /// readable), without taking it. Also returns when the listener is shut down.
    pub fn wait_for_connection(&self) -> io::Result<()> {
        self.socket.wait_for(crate::sys::POLLIN, None).map(drop)
    }

    /// The address the listener is bound to (with the real port after binding port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()?.to_socket()
    }

    /// Makes accept return `WouldBlock` instead of waiting.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.socket.set_nonblocking(on)
    }

    /// The underlying socket, for options this type does not wrap.
    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    /// Unwraps the socket.
    pub fn into_socket(self) -> Socket {
        self.socket
    }

    /// close(2), reporting its error.
    pub fn close(self) -> io::Result<()> {
        self.socket.close()
    }
}

/// A connected TCP socket: the client's, or one accepted by a server.
///
/// # Example
///
/// ```
/// use std::io::Read;
/// use std::net::Shutdown;
/// use socklab::{TcpListener, TcpStream};
///
/// let listener = TcpListener::bind(&"127.0.0.1:0".parse()?)?;
/// let client = TcpStream::connect(&listener.local_addr()?)?;
/// let (conn, _) = listener.accept()?;
/// client.send_all(b"Hello")?;
/// client.shutdown(Shutdown::Write)?; // our FIN: the server's recv returns 0 after the data
/// let mut got = Vec::new();
/// (&conn).read_to_end(&mut got)?;
/// assert_eq!(got, b"Hello");
/// conn.send_all(&got)?;
/// conn.close()?; // and the server's FIN
/// let mut echo = Vec::new();
/// (&client).read_to_end(&mut echo)?;
/// assert_eq!(echo, b"Hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct TcpStream {
    socket: Socket,
}

impl TcpStream {
    /// socket + connect: performs the three-way handshake with `addr`.
    pub fn connect(addr: &SocketAddr) -> Result<TcpStream, CallError> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)
            .map_err(|e| CallError::new("socket", Some(*addr), e))?;
        socket.connect(&SockAddr::from(addr)).map_err(|e| CallError::new("connect", Some(*addr), e))?;
        Ok(TcpStream { socket })
    }

    /// socket + connect, giving up after `timeout` (a listener whose accept queue is full drops our
    /// SYNs, and connect(2) alone would wait for the kernel's retries, over two minutes). The
    /// timeout stays on the stream as SO_RCVTIMEO / SO_SNDTIMEO, so every later recv and send is
    /// bounded too. A timeout is `TimedOut`, naming the call, the address and `--timeout`.
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> Result<TcpStream, CallError> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)
            .map_err(|e| CallError::new("socket", Some(*addr), e))?;
        // Two socket options, and the rest is the tutorial's blocking sequence: on Linux
        // SO_SNDTIMEO also bounds a blocking connect (one that outlives it fails with EINPROGRESS,
        // the handshake abandoned), and SO_RCVTIMEO bounds every recv.
        socket
            .set_write_timeout(Some(timeout))
            .map_err(|e| CallError::new("setsockopt SO_SNDTIMEO", Some(*addr), e))?;
        socket.set_read_timeout(Some(timeout)).map_err(|e| CallError::new("setsockopt SO_RCVTIMEO", Some(*addr), e))?;
        match socket.connect(&SockAddr::from(addr)) {
            Ok(()) => Ok(TcpStream { socket }),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) || e.kind() == io::ErrorKind::WouldBlock => {
                let msg = format!(
                    "no answer within {timeout:?} (--timeout; the server's accept queue may be full, or nothing routes there)"
                );
                Err(CallError::new("connect", Some(*addr), io::Error::new(io::ErrorKind::TimedOut, msg)))
            }
            Err(e) => Err(CallError::new("connect", Some(*addr), e)),
        }
    }

    /// Tries each address in turn (as a resolver returns them). If none answers, returns the
    /// error of the first: the address the user most likely meant.
    pub fn connect_any(addrs: &[SocketAddr]) -> Result<TcpStream, CallError> {
        let mut first = None;
        for addr in addrs {
            match TcpStream::connect(addr) {
                Ok(stream) => return Ok(stream),
                Err(e) => first = first.or(Some(e)),
            }
        }
        Err(first.unwrap_or_else(|| {
            CallError::new("connect", None, io::Error::new(io::ErrorKind::InvalidInput, "no addresses to connect to"))
        }))
    }

    /// Builds a stream from a connected socket.
    pub fn from_socket(socket: Socket) -> TcpStream {
        TcpStream { socket }
    }

    /// recv(2): `Ok(0)` once the peer has closed its sending side.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket.recv(buf)
    }

    /// send(2) once; may take fewer bytes than offered.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.socket.send(buf)
    }

    /// Sends every byte of `buf`, looping over short writes.
    pub fn send_all(&self, buf: &[u8]) -> io::Result<()> {
        self.socket.send_all(buf)
    }

    /// shutdown(2). `Shutdown::Write` sends FIN: "I have no more to say", while still reading.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.socket.shutdown(how)
    }

    /// Our address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()?.to_socket()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.socket.peer_addr()?.to_socket()
    }

    /// TCP_NODELAY.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.socket.set_nodelay(on)
    }

    /// Reads TCP_NODELAY.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.socket.nodelay()
    }

    /// SO_RCVTIMEO.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.socket.set_read_timeout(timeout)
    }

    /// SO_SNDTIMEO.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.socket.set_write_timeout(timeout)
    }

    /// SO_LINGER; `Some(Duration::ZERO)` makes close send RST.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        self.socket.set_linger(linger)
    }

    /// O_NONBLOCK.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.socket.set_nonblocking(on)
    }

    /// SO_ERROR.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.socket.take_error()
    }

    /// The underlying socket.
    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    /// Unwraps the socket.
    pub fn into_socket(self) -> Socket {
        self.socket
    }

    /// close(2), reporting its error.
    pub fn close(self) -> io::Result<()> {
        self.socket.close()
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket.recv(buf)
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket.recv(buf)
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.socket.send(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        // One send per call keeps strace's picture simple; the first non-empty slice goes out.
        match bufs.iter().find(|b| !b.is_empty()) {
            Some(buf) => self.socket.send(buf),
            None => Ok(0),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(()) // the kernel owns the send buffer; there is nothing of ours to flush
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

socket_type_traits!(TcpListener, std::net::TcpListener);

impl AsRef<Socket> for TcpListener {
    fn as_ref(&self) -> &Socket {
        &self.socket
    }
}

impl AsRef<Socket> for TcpStream {
    fn as_ref(&self) -> &Socket {
        &self.socket
    }
}
socket_type_traits!(TcpStream, std::net::TcpStream);
