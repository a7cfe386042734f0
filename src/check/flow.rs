//! One client connection of a case, every wait bounded: a nonblocking [`Socket`] driven with
//! poll(2) against the case's deadline, so no server (silent, stalled or flooding) can hold a
//! case past its limit.
//!
//! [`Conn::pump`] is the one loop every byte-exact case runs: it writes a plan of chunks (sizes,
//! pauses, zero-length writes), reads the echo together with the writes, after them, slowly or
//! never, compares each echoed byte with the byte sent at that offset, and says how it ended.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use crate::SockAddr;
use crate::socket::{Connect, Domain, Socket, Type};

use super::Transcript;

/// Where the cases connect: the server's TCP address or Unix socket name.
#[derive(Debug, Clone)]
pub enum Peer {
    /// TCP over IPv4 or IPv6.
    Tcp(SocketAddr),
    /// A Unix stream socket.
    Unix(SockAddr),
}

impl Peer {
    fn sockaddr(&self) -> SockAddr {
        match self {
            Peer::Tcp(a) => SockAddr::from(*a),
            Peer::Unix(a) => *a,
        }
    }

    fn domain(&self) -> Domain {
        match self {
            Peer::Tcp(a) => Domain::for_address(a),
            Peer::Unix(_) => Domain::UNIX,
        }
    }

    /// The TCP address, when the peer is TCP.
    pub fn tcp(&self) -> Option<SocketAddr> {
        match self {
            Peer::Tcp(a) => Some(*a),
            Peer::Unix(_) => None,
        }
    }
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peer::Tcp(a) => write!(f, "{a}"),
            Peer::Unix(a) => write!(f, "{}", crate::trace::format::sockaddr(a)),
        }
    }
}

/// Time left until `deadline` (zero once it passed).
pub fn left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// A connected client socket, nonblocking.
#[derive(Debug)]
pub struct Conn {
    socket: Socket,
}

/// How a connect failed.
#[derive(Debug)]
pub enum ConnectError {
    /// The kernel answered with an error (ECONNREFUSED: nothing listens; ECONNRESET...).
    Refused(io::Error),
    /// No answer before the deadline (SYNs dropped: a full accept queue, or nothing routes).
    Timeout(Duration),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Refused(e) => write!(f, "connect failed: {}", describe(e)),
            ConnectError::Timeout(d) => write!(f, "connect had no answer within {:.1} s", d.as_secs_f64()),
        }
    }
}

/// An errno as socklab names it: `ECONNRESET (Connection reset by peer)`.
pub fn describe(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => crate::names::errno_display(n),
        None => e.to_string(),
    }
}

impl Conn {
    /// connect(2), nonblocking, waiting for the handshake until `deadline`. A Unix listener whose
    /// queue is full answers EAGAIN; that is retried until the deadline too.
    pub fn connect(peer: &Peer, deadline: Instant) -> Result<Conn, ConnectError> {
        Conn::connect_tuned(peer, deadline, |_| {})
    }

    /// The same, with `tune` setting options on the socket before connect (those that act on the
    /// handshake: TCP_MAXSEG, the buffer sizes the window is scaled for).
    pub fn connect_tuned(peer: &Peer, deadline: Instant, tune: impl Fn(&Socket)) -> Result<Conn, ConnectError> {
        let started = Instant::now();
        loop {
            let socket = Socket::new(peer.domain(), Type::STREAM.nonblocking(), None).map_err(ConnectError::Refused)?;
            tune(&socket);
            match socket.connect_nonblocking(&peer.sockaddr()) {
                Ok(Connect::Done) => return Ok(Conn { socket }),
                Ok(Connect::InProgress) => {
                    let revents =
                        socket.wait_for(libc::POLLOUT, Some(left(deadline))).map_err(ConnectError::Refused)?;
                    if revents == 0 {
                        return Err(ConnectError::Timeout(started.elapsed()));
                    }
                    return match socket.take_error() {
                        Ok(None) => Ok(Conn { socket }),
                        Ok(Some(e)) | Err(e) => Err(ConnectError::Refused(e)),
                    };
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(ConnectError::Timeout(started.elapsed()));
                }
                Err(e) => return Err(ConnectError::Refused(e)),
            }
        }
    }

    /// The socket, for options (TCP_NODELAY, SO_LINGER, buffer sizes).
    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    /// TCP_NODELAY, so each small write leaves as its own segment (no effect on Unix sockets).
    pub fn nodelay(&self) {
        let _ = self.socket.set_nodelay(true);
    }

    /// shutdown(2) SHUT_WR: our FIN; the server's recv returns 0 once it has read everything.
    pub fn shutdown_write(&self) -> io::Result<()> {
        self.socket.shutdown(Shutdown::Write)
    }

    /// close(2) with SO_LINGER {on, 0}: the kernel discards what is queued and sends RST (TCP).
    pub fn reset(self) {
        let _ = self.socket.set_linger(Some(Duration::ZERO));
        let _ = self.socket.close();
    }

    /// Writes everything in `plan`, reading the echo as `plan.read` says, until everything came
    /// back, the server closed or reset, nothing moved for `plan.stall`, or `deadline`.
    pub fn pump(&self, plan: &Plan<'_>, deadline: Instant, transcript: &mut Transcript) -> Flow {
        let data = plan.data;
        let mut flow = Flow { sent: 0, received: 0, end: End::Complete, stalled_after: None };
        let mut chunk = 0usize; // index into plan.chunks
        let mut in_chunk = 0usize; // bytes of that chunk already sent
        let mut next_write = Instant::now();
        let mut next_read = Instant::now();
        let mut last_progress = Instant::now();
        let mut buf = vec![0u8; 64 * 1024];
        let mut shut = false;
        loop {
            let now = Instant::now();
            let writing = chunk < plan.chunks.len();
            if !writing && plan.half_close && !shut {
                shut = true;
                if let Err(e) = self.shutdown_write() {
                    flow.end = End::Error("shutdown", e);
                    return flow;
                }
                transcript.step("shutdown(SHUT_WR): our FIN; nothing more will be sent".into());
            }
            if flow.received == data.len() && !writing {
                return flow;
            }
            // A plan that never reads ends once written; one with `stop_at` once that much came back.
            if (!writing && matches!(plan.read, ReadMode::Never)) || plan.stop_at.is_some_and(|at| flow.received >= at)
            {
                return flow;
            }
            if now >= deadline {
                flow.end = End::Deadline;
                return flow;
            }
            if now.duration_since(last_progress) >= plan.stall {
                flow.stalled_after = Some(now.duration_since(last_progress));
                flow.end = End::Stalled { writing };
                return flow;
            }
            // Write while the socket takes bytes and the plan allows.
            let mut want_out = false;
            while chunk < plan.chunks.len() && Instant::now() >= next_write {
                let size = plan.chunks[chunk];
                let piece = &data[flow.sent..flow.sent + (size - in_chunk)];
                match self.socket.send(piece) {
                    Ok(n) => {
                        if n > 0 || size == 0 {
                            last_progress = Instant::now();
                        }
                        flow.sent += n;
                        in_chunk += n;
                        if in_chunk == size {
                            chunk += 1;
                            in_chunk = 0;
                            next_write = Instant::now() + plan.pause;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        want_out = true;
                        break;
                    }
                    Err(e) => {
                        flow.end = End::Error("send", e);
                        return flow;
                    }
                }
            }
            let reading = match plan.read {
                ReadMode::Together => true,
                ReadMode::AfterAll => chunk >= plan.chunks.len(),
                ReadMode::Slow { .. } => Instant::now() >= next_read,
                ReadMode::Never => false,
            };
            let mut want_in = false;
            if reading {
                let cap = match plan.read {
                    ReadMode::Slow { bytes, .. } => bytes.min(buf.len()),
                    _ => buf.len(),
                };
                loop {
                    match self.socket.recv_nowait(&mut buf[..cap]) {
                        Ok(0) => {
                            flow.end = End::Eof;
                            return flow;
                        }
                        Ok(n) => {
                            last_progress = Instant::now();
                            let expect = &data[flow.received.min(data.len())..(flow.received + n).min(data.len())];
                            if let Some(at) = first_difference(expect, &buf[..n]) {
                                transcript.diverged(data, flow.received + at, &buf[at..n]);
                                flow.received += at;
                                flow.end = End::Mismatch(flow.received);
                                return flow;
                            }
                            flow.received += n;
                            if let ReadMode::Slow { pause, .. } = plan.read {
                                next_read = Instant::now() + pause;
                                break;
                            }
                            if flow.received == data.len() {
                                break;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            want_in = true;
                            break;
                        }
                        Err(e) => {
                            flow.end = End::Error("recv", e);
                            return flow;
                        }
                    }
                }
            }
            if flow.received == data.len() && chunk >= plan.chunks.len() {
                continue; // the top of the loop returns (after the shutdown, if planned)
            }
            // Wait for the socket, the next planned write or read, the stall limit or the deadline.
            let mut wake = deadline.min(last_progress + plan.stall);
            if chunk < plan.chunks.len() && !want_out {
                wake = wake.min(next_write);
            }
            if matches!(plan.read, ReadMode::Slow { .. }) && !want_in {
                wake = wake.min(next_read);
            }
            let mut events = 0;
            if want_in {
                events |= libc::POLLIN;
            }
            if want_out {
                events |= libc::POLLOUT;
            }
            let wait = left(wake).max(Duration::from_millis(1));
            if events == 0 {
                std::thread::sleep(wait.min(Duration::from_millis(50)));
            } else if let Err(e) = self.socket.wait_for(events, Some(wait)) {
                flow.end = End::Error("poll", e);
                return flow;
            }
        }
    }

    /// After the echo: waits for the server's FIN (recv = 0). Bytes before it are extra.
    pub fn expect_eof(&self, within: Duration) -> Eof {
        let started = Instant::now();
        let deadline = started + within;
        let mut buf = [0u8; 4096];
        let mut extra = 0usize;
        loop {
            match self.socket.recv_nowait(&mut buf) {
                Ok(0) => return if extra > 0 { Eof::Extra(extra) } else { Eof::After(started.elapsed()) },
                Ok(n) => extra += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return if extra > 0 { Eof::Extra(extra) } else { Eof::None(within) };
                    }
                    if let Err(e) = self.socket.wait_for(libc::POLLIN, Some(left(deadline))) {
                        return Eof::Error(e);
                    }
                }
                Err(e) => return Eof::Error(e),
            }
        }
    }
}

/// How the server ended a connection we closed or half-closed.
#[derive(Debug)]
pub enum Eof {
    /// recv returned 0 this long after we started waiting.
    After(Duration),
    /// Bytes we never sent came before the end.
    Extra(usize),
    /// Nothing within the limit: the connection stays open.
    None(Duration),
    /// recv failed (ECONNRESET: the server reset instead of closing).
    Error(io::Error),
}

/// The index of the first byte where `a` and `b` differ (over their common length, then length).
pub fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => Some(i),
        None if b.len() > a.len() => Some(a.len()),
        None => None,
    }
}

/// What to write and how to read.
#[derive(Debug, Clone)]
pub struct Plan<'a> {
    /// Every byte to send; the echo must be exactly these.
    pub data: &'a [u8],
    /// Write sizes, in order, summing to `data.len()`; a 0 is a zero-length send(2).
    pub chunks: Vec<usize>,
    /// Pause after each chunk.
    pub pause: Duration,
    /// When to read.
    pub read: ReadMode,
    /// shutdown(SHUT_WR) once everything is written.
    pub half_close: bool,
    /// Give up when no byte moves either way for this long.
    pub stall: Duration,
    /// Return (as [`End::Complete`]) once this many bytes of echo came back.
    pub stop_at: Option<usize>,
}

impl<'a> Plan<'a> {
    /// `data` in one write, read as it comes back.
    pub fn whole(data: &'a [u8]) -> Plan<'a> {
        Plan {
            data,
            chunks: vec![data.len()],
            pause: Duration::ZERO,
            read: ReadMode::Together,
            half_close: false,
            stall: Duration::from_secs(3),
            stop_at: None,
        }
    }
}

/// When [`Conn::pump`] reads the echo.
#[derive(Debug, Clone, Copy)]
pub enum ReadMode {
    /// While writing (the way a correct client avoids the buffer deadlock).
    Together,
    /// Only after writing everything.
    AfterAll,
    /// At most `bytes` per read, one read every `pause`.
    Slow {
        /// Most bytes a read asks for.
        bytes: usize,
        /// Pause between reads.
        pause: Duration,
    },
    /// Never.
    Never,
}

/// How a pump went.
#[derive(Debug)]
pub struct Flow {
    /// Bytes the kernel took from us.
    pub sent: usize,
    /// Echo bytes received and found equal to those sent.
    pub received: usize,
    /// How it ended.
    pub end: End,
    /// With [`End::Stalled`]: how long nothing moved.
    pub stalled_after: Option<Duration>,
}

/// Why a pump stopped.
#[derive(Debug)]
pub enum End {
    /// Everything came back.
    Complete,
    /// The server closed (recv = 0) before everything came back.
    Eof,
    /// Byte at this offset differs from the byte sent there.
    Mismatch(usize),
    /// A call failed (ECONNRESET, EPIPE...).
    Error(&'static str, io::Error),
    /// No byte moved for the plan's stall time (`writing`: we still had bytes to send).
    Stalled {
        /// We had bytes left to write.
        writing: bool,
    },
    /// The case's deadline came first.
    Deadline,
}

impl Flow {
    /// Everything came back, byte-exact.
    pub fn complete(&self) -> bool {
        matches!(self.end, End::Complete)
    }

    /// What happened, in one sentence, for `observed`.
    pub fn says(&self, total: usize) -> String {
        let moved = format!("{} of {} bytes sent, {} echoed back", self.sent, total, self.received);
        match &self.end {
            End::Complete => format!("all {total} bytes echoed back, byte-exact"),
            End::Eof => format!("the server closed the connection (recv returned 0) after {moved}"),
            End::Mismatch(at) => format!("the echo differs from what was sent at byte {at} ({moved})"),
            End::Error(call, e) => format!("{call} failed: {} ({moved})", describe(e)),
            End::Stalled { writing } => format!(
                "nothing moved for {:.1} s ({moved}{})",
                self.stalled_after.unwrap_or_default().as_secs_f64(),
                if *writing { "; our send was blocked: the server stopped reading" } else { "" }
            ),
            End::Deadline => format!("the case's time limit came first ({moved})"),
        }
    }
}
