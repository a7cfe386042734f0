//! The tutorial's client: connect, send the message, read the echo back `chunk` bytes at a time
//! until as many bytes came back as were sent, check that nothing more comes (shutdown(SHUT_WR),
//! then recv until the server's FIN), then close. Over a Unix stream socket the same.
//!
//! [`run_stream`] is the client used as `nc` is: the message is an input read a chunk at a time
//! (standard input for `--message -`) and sent while the echo streams back, each chunk compared
//! as its echo arrives, so memory stays bounded however long the input is.
//!
//! Over a *message* socket (UDP, Unix datagram, Unix seqpacket) the message goes out as one
//! datagram and comes back as one: a single recv with a `chunk`-byte buffer, and `MSG_TRUNC` to
//! learn the echo's real length, since whatever does not fit is cut off by the kernel and lost.

use std::fmt;
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::time::Duration;

use super::endpoint::{Stream, Transport};
use super::event::{Event, Sink};
use crate::SockAddr;
use crate::error::{CallError, context};
use crate::ready::{Interest, PollSet, Token};
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
    /// The echoed datagram (or message) was shorter than the one sent: nothing closed, the
    /// server sent it cut.
    ShortMessage {
        /// Bytes in the echoed message.
        received: usize,
        /// A datagram (no connection) or a seqpacket message (its connection stays open).
        datagram: bool,
        /// Bytes sent.
        expected: usize,
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
            EchoError::ShortMessage { received, expected, datagram } => {
                let (what, tail) = if *datagram {
                    ("A datagram", "there is no connection to close")
                } else {
                    ("A seqpacket message", "the connection was not closed")
                };
                write!(
                    f,
                    "short echo: the echoed message held {received} of the {expected} bytes sent. {what} arrives \
                     whole or not at all, so the server sent it cut (its receive buffer, --buffer on a socklab \
                     server, was smaller than the message, or it echoed fewer bytes); {tail}"
                )
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
    let Some(stream) = connect(config)? else { return run_message(config, sink) };
    let server = stream.as_ref().peer_addr()?;
    sink(&Event::ClientConnected(stream.as_ref().local_addr()?, server));
    let result = exchange(&stream, &server, config, sink);
    sink(&Event::ClientClosing);
    let recvs = result?;
    stream.close()?;
    Ok(ClientReport { server, bytes: config.message.len(), recvs })
}

/// Connects a stream socket (TCP, Unix stream) with the configured timeouts; `None` for a message
/// transport.
fn connect(config: &ClientConfig) -> io::Result<Option<Stream>> {
    let stream = match config.transport {
        Transport::Tcp => Stream::Tcp(match config.timeout {
            None => TcpStream::connect_any(&config.addrs)?,
            Some(timeout) => connect_any_within(&config.addrs, timeout)?,
        }),
        Transport::Unix(addr, UnixKind::Stream) => Stream::Unix(UnixStream::connect(&addr, UnixKind::Stream)?),
        _ => return Ok(None),
    };
    // A TCP stream got its timeouts before connect (`TcpStream::connect_timeout`).
    if let (Some(timeout), false) = (config.timeout, matches!(config.transport, Transport::Tcp)) {
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
    }
    Ok(Some(stream))
}

/// How much one read of the input asks for, and so the most one send carries.
pub const STREAM_CHUNK: usize = 64 * 1024;

/// How many input chunks may be sent and not yet echoed before the sender waits for the echo to
/// catch up. With [`STREAM_CHUNK`] this bounds what the client holds at about 1 MiB, whatever the
/// input's length (the rest in flight sits in the kernel's socket buffers).
pub const STREAM_WINDOW: usize = 16;

/// The client as `nc` is used: connect, then send `input` a chunk at a time from a second thread
/// while this one receives the echo `chunk` bytes at a time, comparing each byte with the one
/// sent at its offset. At the input's end: shutdown(SHUT_WR), then read to the server's FIN; the
/// echo must be exactly the input (a short echo, a wrong byte, an extra byte fail the session
/// with an [`EchoError`]); an error reading `input` comes back as it is. `config.message` is not
/// used. Stream transports only (TCP, Unix
/// stream); a datagram's message is read whole.
///
/// Memory is bounded: sent chunks wait in a queue of [`STREAM_WINDOW`] until their echo has been
/// compared; when it is full, the sender waits for the echo rather than reading more input.
///
/// `--timeout` applies while bytes are due: an echo not yet back, or the server's FIN after ours.
/// While the input is idle (a terminal nobody types into) nothing is due and the client waits,
/// as `nc` does.
pub fn run_stream(config: &ClientConfig, input: impl Read + AsFd + Send, sink: &Sink) -> io::Result<ClientReport> {
    if config.chunk == 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "the receive chunk must be at least 1 byte"));
    }
    let Some(stream) = connect(config)? else {
        let why =
            "streaming the input needs a stream socket (TCP or a Unix stream); a datagram's message is read whole";
        return Err(io::Error::new(io::ErrorKind::InvalidInput, why));
    };
    let server = stream.as_ref().peer_addr()?;
    sink(&Event::ClientConnected(stream.as_ref().local_addr()?, server));
    let result = stream_exchange(&stream, &server, config, input, sink);
    sink(&Event::ClientClosing);
    let (bytes, recvs) = result?;
    stream.close()?;
    Ok(ClientReport { server, bytes, recvs })
}

/// How the receiving side of a stream session ended, when it did not end well.
enum Ended {
    /// The server's FIN came with `received` bytes echoed and more sent.
    Early { received: usize },
    /// Anything else: a wrong or extra byte, a reset, a timeout.
    Failed(io::Error),
}

/// Returns (bytes sent and echoed, recvs).
fn stream_exchange(
    stream: &Stream,
    server: &SockAddr,
    config: &ClientConfig,
    input: impl Read + AsFd + Send,
    sink: &Sink,
) -> io::Result<(usize, usize)> {
    let named = |call: &'static str| move |e: io::Error| name_error(call, server, config.timeout, e);
    let (queue, sent) = mpsc::sync_channel::<Arc<[u8]>>(STREAM_WINDOW);
    // Set just before our FIN: every chunk is queued by then, so an EOF from the server after it
    // with nothing left in the queue is the end of a complete echo.
    let fin_sent = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let sender = scope.spawn(|| send_input(stream, input, queue, &fin_sent, sink));
        let received = receive_stream(stream, config.chunk, sent, &fin_sent, sink);
        if received.is_err() {
            // Unblock the sender: a send to a server that stopped reading, or its wait for input
            // (poll reports the hang-up of a socket shut down both ways).
            let _ = stream.shutdown(Shutdown::Both);
        }
        let (total, sending) =
            sender.join().unwrap_or_else(|_| (0, Err(io::Error::other("the sending thread panicked"))));
        match received {
            Ok(recvs) => sending.map_err(named("send")).map(|()| (total, recvs)),
            Err(Ended::Early { received }) => {
                Err(io::Error::new(io::ErrorKind::UnexpectedEof, EchoError::Short { received, expected: total }))
            }
            Err(Ended::Failed(e)) => Err(named("recv")(e)),
        }
    })
}

/// The sending thread: waits for input (or for the socket to be shut down under it), reads a
/// chunk, queues it for the receiver's comparison, sends it. At the input's end sends our FIN.
/// Returns the bytes sent, and how sending ended.
fn send_input(
    stream: &Stream,
    mut input: impl Read + AsFd,
    queue: SyncSender<Arc<[u8]>>,
    fin_sent: &AtomicBool,
    sink: &Sink,
) -> (usize, io::Result<()>) {
    let mut total = 0;
    let mut set = PollSet::new();
    loop {
        // A read of a terminal or an idle pipe blocks for as long as nobody writes; poll also
        // watches the socket (hang-ups and errors only) so that a receiver that gave up, or a
        // reset, ends this wait.
        set.clear();
        set.push(&input, Token(0), Interest::READABLE);
        set.push(stream, Token(1), Interest::NONE);
        if let Err(e) = set.wait(None) {
            return (total, Err(e));
        }
        if set.readiness(1).any() {
            // The receiver reports why (reset, mismatch, timeout).
            return (total, Ok(()));
        }
        if !set.readiness(0).any() {
            continue; // interrupted
        }
        let mut buf = vec![0u8; STREAM_CHUNK];
        let n = match input.read(&mut buf) {
            Ok(n) => n,
            Err(e) => return (total, Err(e)),
        };
        if n == 0 {
            fin_sent.store(true, Ordering::Release);
            // Our FIN: the server echoes what it still has, then closes its side.
            return (total, stream.shutdown(Shutdown::Write));
        }
        buf.truncate(n);
        let chunk: Arc<[u8]> = buf.into();
        // Queued before it is sent, so its echo always finds it; blocks while the window is full.
        if queue.send(Arc::clone(&chunk)).is_err() {
            return (total, Ok(())); // the receiver ended; it says why
        }
        if let Err(e) = stream.send_all(&chunk) {
            return (total, Err(e));
        }
        total += n;
        sink(&Event::ClientSent(n));
    }
}

/// The receiving side: recv `chunk` bytes at a time until the server's FIN, comparing each byte
/// with the queued chunk it echoes. Returns the number of recvs that returned data.
fn receive_stream(
    stream: &Stream,
    chunk: usize,
    queue: Receiver<Arc<[u8]>>,
    fin_sent: &AtomicBool,
    sink: &Sink,
) -> Result<usize, Ended> {
    let mut buf = vec![0u8; chunk];
    // The chunk being compared, and the offset in it of the next byte due.
    let mut due: Option<(Arc<[u8]>, usize)> = None;
    let (mut received, mut recvs) = (0, 0);
    loop {
        let n = match stream.recv(&mut buf) {
            Ok(n) => n,
            // SO_RCVTIMEO ran out. A timeout only if something was due: an echo, or the FIN
            // after ours; otherwise the input is idle and there is nothing to wait for yet.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if next_due(&mut due, &queue) || fin_sent.load(Ordering::Acquire) {
                    return Err(Ended::Failed(e));
                }
                continue;
            }
            Err(e) => return Err(Ended::Failed(e)),
        };
        if n == 0 {
            // The server's FIN. The end of a whole echo only if ours went first and every
            // queued chunk came back.
            if fin_sent.load(Ordering::Acquire) && !next_due(&mut due, &queue) {
                return Ok(recvs);
            }
            return Err(Ended::Early { received });
        }
        recvs += 1;
        sink(&Event::ClientReceived(&buf[..n]));
        let mut got = &buf[..n];
        while !got.is_empty() {
            if !next_due(&mut due, &queue) {
                let unmatched = got.len();
                return Err(Ended::Failed(extra(stream, &mut buf, received, unmatched, fin_sent)));
            }
            let (sent, at) = due.as_mut().expect("next_due filled it");
            let k = got.len().min(sent.len() - *at);
            if let Some(i) = (0..k).find(|&i| sent[*at + i] != got[i]) {
                let err = EchoError::Mismatch { offset: received + i, sent: sent[*at + i], got: got[i] };
                return Err(Ended::Failed(io::Error::new(io::ErrorKind::InvalidData, err)));
            }
            (*at, received, got) = (*at + k, received + k, &got[k..]);
            if *at == sent.len() {
                due = None;
            }
        }
    }
}

/// Whether bytes are due: fills `due` from the queue if it is empty.
fn next_due(due: &mut Option<(Arc<[u8]>, usize)>, queue: &Receiver<Arc<[u8]>>) -> bool {
    if due.is_none() {
        match queue.try_recv() {
            Ok(chunk) => *due = Some((chunk, 0)),
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => return false,
        }
    }
    true
}

/// Bytes came that were never sent. After our FIN, read to the server's to count them all (as
/// the whole-message client does); before it, the server is sending on its own: stop at once.
fn extra(stream: &Stream, buf: &mut [u8], echoed: usize, unmatched: usize, fin_sent: &AtomicBool) -> io::Error {
    let mut extra = unmatched;
    if fin_sent.load(Ordering::Acquire) {
        loop {
            match stream.recv(buf) {
                Ok(0) => break,
                Ok(more) => extra += more,
                Err(e) => return e,
            }
        }
    }
    io::Error::new(io::ErrorKind::InvalidData, EchoError::Extra { expected: echoed, extra })
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
            // Only what this recv got is counted: more may wait unread behind it.
            let err = format!(
                "the server sent more than the {expected}-byte message: {extra} extra bytes in the recv that went \
                 past its end (any after them were not read)"
            );
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
    if len < expected {
        let datagram = !matches!(sock, Messages::Seqpacket(_));
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            EchoError::ShortMessage { received: len, expected, datagram },
        ));
    }
    if len > expected {
        return Err(io::Error::new(io::ErrorKind::InvalidData, EchoError::Extra { expected, extra: len - expected }));
    }
    Ok(1)
}
