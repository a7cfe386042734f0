//! The tutorial's client: connect, send the message, read the echo back `chunk` bytes at a time
//! until as many bytes came back as were sent, check that nothing more comes (shutdown(SHUT_WR),
//! then recv until the server's FIN), then close. Over a Unix stream socket the same.
//!
//! Over a *message* socket (UDP, Unix datagram, Unix seqpacket) the message goes out as one
//! datagram and comes back as one: a single recv with a `chunk`-byte buffer, and `MSG_TRUNC` to
//! learn the echo's real length, since whatever does not fit is cut off by the kernel and lost.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use super::endpoint::{Stream, Transport};
use super::event::{Event, Sink};
use crate::SockAddr;
use crate::error::{CallError, context};
use crate::tcp::TcpStream;
use crate::udp::UdpSocket;
use crate::unix::{UnixDatagram, UnixKind, UnixStream};

/// How long a datagram client waits for its echo: UDP does not retransmit, so a lost datagram
/// would otherwise leave it waiting forever.
pub const DATAGRAM_WAIT: Duration = Duration::from_secs(5);

/// What the client does.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Addresses to try, in order (a resolved host name can give several), for TCP and UDP.
    pub addrs: Vec<SocketAddr>,
    /// TCP (the tutorial's), UDP, or a Unix socket (which carries its own name).
    pub transport: Transport,
    /// The bytes to send. The tutorial's is `Hello`.
    pub message: Vec<u8>,
    /// The most one recv asks for. The tutorial's is 10.
    pub chunk: usize,
    /// How long to wait for a TCP connection, and for each send and recv of a stream to make
    /// progress, before giving up with `TimedOut`. `None`: wait for ever (the tutorial's client).
    pub timeout: Option<Duration>,
    /// After the echo, send our FIN (`shutdown(SHUT_WR)`) and read to the end of the stream: an
    /// echo server then closes, so any byte before that is one it should not have sent, and the
    /// session fails with [`EchoError::Extra`]. `false`: stop reading once the message came back,
    /// as the tutorial's client does (extra bytes after it go unnoticed).
    pub check_end: bool,
}

/// The client's timeout when none is given (`--timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How an echo session went wrong after connecting.
#[derive(Debug)]
pub enum EchoError {
    /// The echo datagram did not fit the receive buffer; the kernel cut it (`MSG_TRUNC`).
    Truncated {
        /// The echo's real length.
        len: usize,
        /// The buffer (`chunk`).
        buffer: usize,
    },
    /// The server closed before echoing everything.
    Short {
        /// Bytes that came back.
        received: usize,
        /// Bytes sent.
        expected: usize,
    },
    /// A byte came back different from the one sent.
    Mismatch {
        /// Offset of the first differing byte.
        offset: usize,
        /// The byte sent there.
        sent: u8,
        /// The byte that came back.
        got: u8,
    },
    /// The whole echo came back, and then more bytes before the server closed.
    Extra {
        /// Bytes sent (and echoed).
        expected: usize,
        /// Bytes that came after them.
        extra: usize,
    },
}

impl fmt::Display for EchoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EchoError::Truncated { len, buffer } => write!(
                f,
                "the echo message was {len} bytes but the receive buffer (--chunk) held {buffer}: the kernel cut \
                 {} bytes (MSG_TRUNC); use --chunk {len} or more",
                len - buffer
            ),
            EchoError::Short { received, expected } => {
                write!(f, "short echo: the server closed the connection after echoing {received} of {expected} bytes")
            }
            EchoError::Mismatch { offset, sent, got } => {
                write!(f, "echo mismatch at byte {offset}: sent {sent:#04x}, got {got:#04x}")
            }
            EchoError::Extra { expected, extra } => {
                write!(f, "echo too long: after the {expected} bytes sent, {extra} more bytes came back")
            }
        }
    }
}

impl std::error::Error for EchoError {}

/// What a successful session did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientReport {
    /// Where it connected (or sent its datagram).
    pub server: SockAddr,
    /// Bytes sent and echoed.
    pub bytes: usize,
    /// How many recv calls returned data.
    pub recvs: usize,
}

/// Runs one echo session. Connection errors come back as the `io::Error` of the failing call;
/// a short or wrong echo as an `io::Error` wrapping an [`EchoError`].
pub fn run(config: &ClientConfig, sink: &Sink) -> io::Result<ClientReport> {
    if config.chunk == 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "the receive chunk must be at least 1 byte"));
    }
    let stream = match config.transport {
        Transport::Tcp => Stream::Tcp(match config.timeout {
            None => TcpStream::connect_any(&config.addrs)?,
            Some(timeout) => connect_any_within(&config.addrs, timeout)?,
        }),
        Transport::Unix(addr, UnixKind::Stream) => Stream::Unix(UnixStream::connect(&addr, UnixKind::Stream)?),
        _ => return run_message(config, sink),
    };
    let server = stream.as_ref().peer_addr()?;
    // A TCP stream got its timeouts before connect (`TcpStream::connect_timeout`).
    if let (Some(timeout), false) = (config.timeout, matches!(config.transport, Transport::Tcp)) {
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
    }
    sink(&Event::ClientConnected(stream.as_ref().local_addr()?, server));
    let result = exchange(&stream, &server, config, sink);
    sink(&Event::ClientClosing);
    let recvs = result?;
    stream.close()?;
    Ok(ClientReport { server, bytes: config.message.len(), recvs })
}

/// Messages up to this size are sent before reading, exactly as the tutorial does.
///
/// The tutorial's sendall-then-recv deadlocks once the message outgrows the kernel's buffers: the
/// server blocks sending its echo to us because we are not reading yet, and we block sending
/// because the server is not reading. 64 KiB fits easily in loopback's default buffers; larger
/// messages are sent from a second thread while this one reads.
pub const INLINE_SEND_LIMIT: usize = 64 * 1024;

/// sendall, then recv in chunks, comparing as bytes arrive. Returns the number of recvs.
fn exchange(stream: &Stream, server: &SockAddr, config: &ClientConfig, sink: &Sink) -> io::Result<usize> {
    let named = |call: &'static str| move |e: io::Error| name_error(call, server, config.timeout, e);
    if config.message.len() <= INLINE_SEND_LIMIT {
        stream.send_all(&config.message).map_err(named("send"))?;
        sink(&Event::ClientSent(config.message.len()));
        return receive(stream, config, sink).map_err(named("recv"));
    }
    std::thread::scope(|scope| {
        let sender = scope.spawn(|| {
            stream.send_all(&config.message).map_err(named("send"))?;
            sink(&Event::ClientSent(config.message.len()));
            Ok(())
        });
        let received = receive(stream, config, sink).map_err(named("recv"));
        if received.is_err() {
            // Unblock the sender if it is stuck on a server that stopped reading.
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        let sent = sender.join().unwrap_or_else(|_| Err(io::Error::other("the sending thread panicked")));
        let recvs = received?;
        sent.map(|()| recvs)
    })
}

/// recv `chunk` bytes at a time until the whole message came back, comparing as bytes arrive.
fn receive(stream: &Stream, config: &ClientConfig, sink: &Sink) -> io::Result<usize> {
    let expected = config.message.len();
    let mut buf = vec![0u8; config.chunk];
    let (mut received, mut recvs) = (0, 0);
    while received < expected {
        // recv(chunk) every time, as the tutorial does, even when fewer bytes are still due.
        let n = stream.recv(&mut buf)?;
        if n > expected - received {
            let extra = received + n - expected;
            let err = format!("the server sent {extra} bytes more than the {expected}-byte message");
            return Err(io::Error::new(io::ErrorKind::InvalidData, err));
        }
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, EchoError::Short { received, expected }));
        }
        sink(&Event::ClientReceived(&buf[..n]));
        let sent = &config.message[received..received + n];
        if let Some(i) = (0..n).find(|&i| sent[i] != buf[i]) {
            let err = EchoError::Mismatch { offset: received + i, sent: sent[i], got: buf[i] };
            return Err(io::Error::new(io::ErrorKind::InvalidData, err));
        }
        received += n;
        recvs += 1;
    }
    if !config.check_end {
        return Ok(recvs);
    }
    // The echo is complete; it must also be all there is. Send our FIN (shutdown(SHUT_WR)) and
    // read until the server's: an echo server that got EOF closes, so anything before that is
    // extra bytes it should not have sent.
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut extra = 0;
    loop {
        match stream.recv(&mut buf)? {
            0 => break,
            n => extra += n,
        }
    }
    if extra > 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, EchoError::Extra { expected, extra }));
    }
    Ok(recvs)
}

/// The error of a send or recv to `server`, in the "call, address, errno name" form; a socket
/// timeout (`EAGAIN` from SO_RCVTIMEO / SO_SNDTIMEO) as `TimedOut`, naming `--timeout`.
fn name_error(call: &'static str, server: &SockAddr, timeout: Option<Duration>, e: io::Error) -> io::Error {
    match e.kind() {
        io::ErrorKind::WouldBlock => io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "{call} {server}: no progress within {:?} (--timeout); the server accepted but does not answer",
                timeout.unwrap_or_default()
            ),
        ),
        _ if e.raw_os_error().is_none() => e,
        _ => crate::error::context_at(call, server, e),
    }
}

/// [`TcpStream::connect_timeout`] to each address in turn; the first error if none answers.
fn connect_any_within(addrs: &[SocketAddr], timeout: Duration) -> Result<TcpStream, CallError> {
    let mut first = None;
    for addr in addrs {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) => first = first.or(Some(e)),
        }
    }
    Err(first.unwrap_or_else(|| {
        CallError::new("connect", None, io::Error::new(io::ErrorKind::InvalidInput, "no addresses to connect to"))
    }))
}

/// A message socket, connected to the server.
enum Messages {
    Udp(UdpSocket),
    UnixDgram(UnixDatagram),
    Seqpacket(UnixStream),
}

impl Messages {
    fn send(&self, data: &[u8]) -> io::Result<usize> {
        match self {
            Messages::Udp(s) => s.send(data),
            Messages::UnixDgram(s) => s.send(data),
            Messages::Seqpacket(s) => s.send(data),
        }
    }

    /// The message's real length (MSG_TRUNC).
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Messages::Udp(s) => s.recv(buf),
            Messages::UnixDgram(s) => s.recv(buf),
            Messages::Seqpacket(s) => s.recv_trunc(buf),
        }
    }
}

/// One message out, one echo back: UDP, Unix datagram, Unix seqpacket.
fn run_message(config: &ClientConfig, sink: &Sink) -> io::Result<ClientReport> {
    let (sock, server) = match config.transport {
        Transport::Udp => return run_udp(config, sink),
        Transport::UnixDgram(addr) => (Messages::UnixDgram(UnixDatagram::connect_autobind(&addr)?), addr),
        Transport::Unix(addr, kind) => (Messages::Seqpacket(UnixStream::connect(&addr, kind)?), addr),
        Transport::Tcp => unreachable!("TCP is served by run"),
    };
    if let Messages::UnixDgram(s) = &sock {
        s.socket().set_read_timeout(Some(DATAGRAM_WAIT))?;
    }
    let recvs = message_exchange(&sock, config, sink)?;
    sink(&Event::ClientClosing);
    Ok(ClientReport { server, bytes: config.message.len(), recvs })
}

/// UDP: connect (which only fixes the peer), send one datagram, wait for its echo. Tries each
/// address in turn while the answer is ECONNREFUSED (localhost is 127.0.0.1 and ::1).
fn run_udp(config: &ClientConfig, sink: &Sink) -> io::Result<ClientReport> {
    let mut first = None;
    for addr in &config.addrs {
        let sock = UdpSocket::connect(addr)?;
        sock.set_read_timeout(Some(DATAGRAM_WAIT))?;
        match message_exchange(&Messages::Udp(sock), config, sink) {
            Ok(recvs) => {
                sink(&Event::ClientClosing);
                return Ok(ClientReport { server: SockAddr::from(addr), bytes: config.message.len(), recvs });
            }
            Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
                first = first.or(Some(context("recv (UDP)", Some(*addr), e)));
            }
            Err(e) => return Err(e),
        }
    }
    Err(first.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no addresses to send to")))
}

/// send the message as one datagram, recv the echo with a `chunk`-byte buffer, compare.
fn message_exchange(sock: &Messages, config: &ClientConfig, sink: &Sink) -> io::Result<usize> {
    sock.send(&config.message)?;
    let mut buf = vec![0u8; config.chunk];
    let len = match sock.recv(&mut buf) {
        Ok(len) => len,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "no echo within {} s: a datagram service does not retransmit, so the message or its echo may \
                     have been lost, or the server is not answering",
                    DATAGRAM_WAIT.as_secs()
                ),
            ));
        }
        Err(e) => return Err(e),
    };
    if len > buf.len() {
        sink(&Event::ClientReceived(&buf));
        return Err(io::Error::new(io::ErrorKind::InvalidData, EchoError::Truncated { len, buffer: buf.len() }));
    }
    sink(&Event::ClientReceived(&buf[..len]));
    let expected = config.message.len();
    if let Some(i) = (0..len.min(expected)).find(|&i| config.message[i] != buf[i]) {
        let err = EchoError::Mismatch { offset: i, sent: config.message[i], got: buf[i] };
        return Err(io::Error::new(io::ErrorKind::InvalidData, err));
    }
    if len != expected {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, EchoError::Short { received: len, expected }));
    }
    Ok(1)
}
