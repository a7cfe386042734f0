//! The tutorial's client: connect, send the message, read the echo back `chunk` bytes at a time
//! until as many bytes came back as were sent, then close.

use std::fmt;
use std::io;
use std::net::SocketAddr;

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
}

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
    let stream = TcpStream::connect_any(&config.addrs)?;
    let server = stream.peer_addr()?;
    sink(&Event::ClientConnected(stream.local_addr()?, server));
    let result = exchange(&stream, config, sink);
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
fn exchange(stream: &TcpStream, config: &ClientConfig, sink: &Sink) -> io::Result<usize> {
    if config.message.len() <= INLINE_SEND_LIMIT {
        stream.send_all(&config.message)?;
        sink(&Event::ClientSent(config.message.len()));
        return receive(stream, config, sink);
    }
    std::thread::scope(|scope| {
        let sender = scope.spawn(|| {
            stream.send_all(&config.message)?;
            sink(&Event::ClientSent(config.message.len()));
            Ok(())
        });
        let received = receive(stream, config, sink);
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
    Ok(recvs)
}
