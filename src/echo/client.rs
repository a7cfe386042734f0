//! The tutorial's client: connect, send the message, read the echo back `chunk` bytes at a time
//! until as many bytes came back as were sent, check that nothing more comes (shutdown(SHUT_WR),
//! then recv until the server's FIN), then close.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use super::event::{Event, Sink};
use crate::tcp::TcpStream;

/// What the client does.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Addresses to try, in order (a resolved host name can give several).
    pub addrs: Vec<SocketAddr>,
    /// The bytes to send. The tutorial's is `Hello`.
    pub message: Vec<u8>,
    /// The most one recv asks for. The tutorial's is 10.
    pub chunk: usize,
    /// How long to wait for the connection, and for each send and recv to make progress, before
    /// giving up with `TimedOut`. `None`: wait for ever (the tutorial's client).
    pub timeout: Option<Duration>,
}

/// The client's timeout when none is given (`--timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How an echo session went wrong after connecting.
#[derive(Debug)]
pub enum EchoError {
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
    /// Where it connected.
    pub server: SocketAddr,
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
    let stream = match config.timeout {
        None => TcpStream::connect_any(&config.addrs)?,
        Some(timeout) => connect_any_within(&config.addrs, timeout)?,
    };
    let server = stream.peer_addr()?;
    stream.set_read_timeout(config.timeout)?;
    stream.set_write_timeout(config.timeout)?;
    let result = exchange(&stream, server, config, sink);
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
fn exchange(stream: &TcpStream, server: SocketAddr, config: &ClientConfig, sink: &Sink) -> io::Result<usize> {
    let named = |call: &'static str| move |e: io::Error| name_error(call, server, config.timeout, e);
    if config.message.len() <= INLINE_SEND_LIMIT {
        stream.send_all(&config.message).map_err(named("send"))?;
        return receive(stream, config, sink).map_err(named("recv"));
    }
    std::thread::scope(|scope| {
        let sender = scope.spawn(|| stream.send_all(&config.message).map_err(named("send")));
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
fn receive(stream: &TcpStream, config: &ClientConfig, sink: &Sink) -> io::Result<usize> {
    let expected = config.message.len();
    let mut buf = vec![0u8; config.chunk];
    let (mut received, mut recvs) = (0, 0);
    while received < expected {
        // Never ask for more than is still due, so the echo of this message is all we read.
        let want = config.chunk.min(expected - received);
        let n = stream.recv(&mut buf[..want])?;
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
fn name_error(call: &'static str, server: SocketAddr, timeout: Option<Duration>, e: io::Error) -> io::Error {
    match e.kind() {
        io::ErrorKind::WouldBlock => io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "{call} {server}: no progress within {:?} (--timeout); the server accepted but does not answer",
                timeout.unwrap_or_default()
            ),
        ),
        _ if e.raw_os_error().is_none() => e,
        _ => crate::error::context(call, Some(server), e),
    }
}

/// [`TcpStream::connect_timeout`] to each address in turn; the first error if none answers.
fn connect_any_within(addrs: &[SocketAddr], timeout: Duration) -> io::Result<TcpStream> {
    let mut first = None;
    for addr in addrs {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) => first = first.or(Some(e)),
        }
    }
    Err(first.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no addresses to connect to")))
}
