//! One client's echo session, in both shapes the models need.
//!
//! **Blocking** (iterative, fork, thread): the tutorial's loop, as it wrote it —
//!
//! ```text
//! loop {
//!     data = recv(conn, 2048)     // blocks until bytes arrive; 0 = the client sent its FIN
//!     if data is empty { break }
//!     send_all(conn, data)        // echo it back, looping over short writes
//! }
//! ```
//!
//! — with the time limits applied by wrapping the stream ([`Limited`]): the loop stays the
//! tutorial's, and `--idle-timeout` / `--max-conn-time` become errors of its recv and send.
//!
//! **Nonblocking** (poll, epoll): the same echo as a state machine ([`Conn`]) driven by readiness
//! events. Backpressure: the echo is sent from the thread's read buffer. If the client does not
//! read and its socket's send buffer fills, send takes only part (or `EAGAIN`); the unsent
//! remainder is the only thing kept per connection, and the server stops reading that client until
//! the remainder is gone (it waits for writability instead). A client that never reads thus costs
//! at most one buffer's worth of memory, not unbounded buffering.

use crate::SockAddr;
use std::io;
use std::mem;
use std::time::{Duration, Instant};

use super::endpoint::Stream;
use super::event::{Event, Sink};
use super::limits::{Clock, Deadline, Limits};
use super::stop::Stop;

/// A blocking connection with the server's time limits: its recv and send give up with a
/// `TimedOut` error that names the limit.
///
/// With a [`Stop`] that follows signals (the tutorial's stop, no thread), it also keeps the grace
/// period: a stop signal's `EINTR` wakes its recv or send, which then go on waiting for the client
/// at most what is left of the grace period (`SO_RCVTIMEO`/`SO_SNDTIMEO`); when that is spent, or
/// at a second signal, the connection is cut (`is_cut`).
#[derive(Debug)]
pub struct Limited<'a> {
    stream: &'a Stream,
    deadline: Deadline,
    stop: Option<&'a Stop>,
}

impl<'a> Limited<'a> {
    /// Starts the connection's clocks (and sets the kernel's socket timeouts they need).
    pub fn new(stream: &'a Stream, limits: Limits) -> io::Result<Limited<'a>> {
        Ok(Limited { stream, deadline: Deadline::start(stream, limits)?, stop: None })
    }

    /// The same, keeping `stop`'s grace period when it follows signals.
    pub fn until_stopped(stream: &'a Stream, limits: Limits, stop: &'a Stop) -> io::Result<Limited<'a>> {
        Ok(Limited { stop: Some(stop), ..Limited::new(stream, limits)? })
    }

    /// recv(2), within the limits: `(bytes in buf, real length)`, which differ only for a
    /// seqpacket message longer than `buf` (see [`Stream::recv_message`]).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, usize)> {
        self.io(|| self.stream.recv_message(buf))
    }

    /// send(2) until every byte is taken, within the limits: the budget is checked before every
    /// send, so a client reading one byte a second (progress on each send) is still closed when its
    /// time is up. EPIPE / ECONNRESET here mean the client left without reading its echo;
    /// MSG_NOSIGNAL turns what would be a SIGPIPE death into that error.
    pub fn send_all(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            match self.io(|| self.stream.send(data))? {
                0 => return Err(io::Error::new(io::ErrorKind::WriteZero, "send accepted no bytes")),
                sent => data = &data[sent..],
            }
        }
        Ok(())
    }

    /// One blocking recv or send within the limits and the grace period.
    fn io<T>(&self, mut call: impl FnMut() -> io::Result<T>) -> io::Result<T> {
        loop {
            self.before_io()?;
            match call() {
                Ok(done) => return Ok(done),
                // A stop signal woke the call (EINTR): the next round sets the grace period's
                // timeouts, or cuts at a second signal.
                Err(e) if e.kind() == io::ErrorKind::Interrupted && self.grace_left().is_some() => continue,
                // The socket timeout set from the grace period ran out: the grace is over.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && self.grace_left().is_some() => {
                    return Err(self.cut());
                }
                Err(e) => return Err(self.deadline.explain(e)),
            }
        }
    }

    fn grace_left(&self) -> Option<Duration> {
        self.stop.and_then(Stop::grace_left)
    }

    fn before_io(&self) -> io::Result<()> {
        self.deadline.before_io(self.stream)?;
        match self.grace_left() {
            None => Ok(()),
            Some(left) if left.is_zero() => Err(self.cut()),
            Some(left) => {
                self.stream.set_read_timeout(Some(left))?;
                self.stream.set_write_timeout(Some(left))
            }
        }
    }

    /// The grace period is over (or a second signal came): the connection is cut.
    fn cut(&self) -> io::Error {
        if let Some(stop) = self.stop {
            stop.cut();
        }
        io::Error::new(io::ErrorKind::TimedOut, "cut: the grace period after the stop request is over")
    }
}

/// Was this session's end the stop switch's cut (not the client's doing, not an error to report)?
fn is_cut(stop: Option<&Stop>) -> bool {
    stop.is_some_and(Stop::is_cut)
}

/// The tutorial's echo loop over `conn`, reporting what it does to `sink`.
pub fn echo(conn: &Limited<'_>, peer: SockAddr, buf: &mut [u8], sink: &Sink) -> io::Result<()> {
    loop {
        let (n, real) = conn.recv(buf)?;
        if real == 0 {
            // The client sent FIN: its side is closed, and so everything was echoed.
            sink(&Event::ServerRecvOver(peer));
            return Ok(());
        }
        if real > n {
            // A seqpacket message longer than the buffer: the kernel dropped the rest.
            sink(&Event::Truncated(peer, n, real));
        }
        sink(&Event::ServerReceived(peer, &[&buf[..n]]));
        sink(&Event::ServerSending(peer, &[&buf[..n]]));
        conn.send_all(&buf[..n])?;
    }
}

/// Serves one blocking connection to its end. Errors end this connection only and are reported
/// once, as `ConnectionError`; a cut by `stop` ends it silently (the server counts it).
pub fn serve(stream: &Stream, peer: SockAddr, buf: &mut [u8], limits: Limits, stop: Option<&Stop>, sink: &Sink) {
    let conn = match stop {
        Some(stop) => Limited::until_stopped(stream, limits, stop),
        None => Limited::new(stream, limits),
    };
    if let Err(e) = conn.and_then(|conn| echo(&conn, peer, buf, sink))
        && !is_cut(stop)
    {
        sink(&Event::ConnectionError(peer, &e));
    }
}

/// What a connection waits for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Bytes from the client.
    Read,
    /// Room in the send buffer for the unsent remainder.
    Write,
    /// Nothing: it is finished (closed by the peer, or failed). Drop it.
    Close,
}

/// One client of a nonblocking server.
#[derive(Debug)]
pub struct Conn {
    /// The connected, nonblocking socket.
    pub stream: Stream,
    peer: SockAddr,
    /// Echo bytes that did not fit into the send buffer yet. Empty (no allocation) normally.
    unsent: Vec<u8>,
    /// `--idle-timeout` / `--max-conn-time`: a nonblocking socket never waits in recv, so the
    /// loop keeps the clock (see `limits.rs`).
    clock: Clock,
}

impl Conn {
    /// Wraps an accepted nonblocking connection; its clock starts now.
    pub fn new(stream: Stream, peer: SockAddr, limits: Limits) -> Conn {
        Conn { stream, peer, unsent: Vec::new(), clock: Clock::new(limits) }
    }

    /// When its next time limit passes (`None`: no limits).
    pub fn next_expiry(&self) -> Option<Instant> {
        self.clock.next_expiry()
    }

    /// If a time limit has passed at `now`, reports it (one line) and says the connection is done.
    pub fn check_limits(&self, now: Instant, sink: &Sink) -> Want {
        match self.clock.expired(now) {
            Some(e) => self.failed(&e, sink),
            None => self.want(),
        }
    }

    /// What it waits for now.
    pub fn want(&self) -> Want {
        if self.unsent.is_empty() { Want::Read } else { Want::Write }
    }

    /// The kernel said "ready" (readable, writable, hung up or failed): does what the connection
    /// is waiting for, and returns what it waits for next.
    pub fn ready(&mut self, buf: &mut [u8], sink: &Sink) -> Want {
        match self.want() {
            Want::Read => self.readable(buf, sink),
            _ => self.writable(sink),
        }
    }

    /// One recv into the thread's buffer, then echo as much as the socket takes.
    fn readable(&mut self, buf: &mut [u8], sink: &Sink) -> Want {
        let n = match self.stream.recv_message(buf) {
            Ok((_, 0)) => {
                sink(&Event::ServerRecvOver(self.peer));
                return Want::Close;
            }
            Ok((n, real)) => {
                if real > n {
                    // A seqpacket message longer than the buffer: the kernel dropped the rest.
                    sink(&Event::Truncated(self.peer, n, real));
                }
                n
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Want::Read, // a spurious wake-up
            Err(e) => return self.failed(&e, sink),
        };
        self.clock.progress();
        sink(&Event::ServerReceived(self.peer, &[&buf[..n]]));
        sink(&Event::ServerSending(self.peer, &[&buf[..n]]));
        match self.send_some(&buf[..n], sink) {
            Ok(sent) if sent < n => {
                self.unsent.extend_from_slice(&buf[sent..n]);
                Want::Write
            }
            Ok(_) => Want::Read,
            Err(want) => want,
        }
    }

    /// Sends what is left over; resumes reading once all of it is gone.
    fn writable(&mut self, sink: &Sink) -> Want {
        let unsent = mem::take(&mut self.unsent);
        match self.send_some(&unsent, sink) {
            Ok(sent) if sent < unsent.len() => {
                self.unsent = unsent;
                self.unsent.drain(..sent);
                Want::Write
            }
            Ok(_) => Want::Read, // the remainder's memory is freed: back to zero bytes per connection
            Err(want) => want,
        }
    }

    /// Sends until done or the socket's send buffer is full (`EAGAIN`). Returns how much went out.
    fn send_some(&mut self, data: &[u8], sink: &Sink) -> Result<usize, Want> {
        let mut sent = 0;
        while sent < data.len() {
            match self.stream.send(&data[sent..]) {
                Ok(n) => {
                    sent += n;
                    self.clock.progress();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(self.failed(&e, sink)),
            }
        }
        Ok(sent)
    }

    fn failed(&self, err: &io::Error, sink: &Sink) -> Want {
        sink(&Event::ConnectionError(self.peer, err));
        Want::Close
    }
}
