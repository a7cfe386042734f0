//! Per-connection time limits, so a slow or silent client cannot hold a server forever.
//!
//! Both limits are enforced with the kernel's socket timeouts, not with timers of our own:
//! `SO_RCVTIMEO` / `SO_SNDTIMEO` make a blocking recv/send give up with `EAGAIN` after that long
//! without progress. That keeps the server's syscall sequence the tutorial's (plus one or two
//! setsockopt calls) and works the same in every server model.
//!
//! - **idle timeout**: no byte received (or no send progress) for this long closes the connection;
//! - **max connection time**: an absolute budget from accept. Before each recv/send the socket
//!   timeouts are lowered to what is left of it, so a client dribbling one byte a second — never
//!   idle — is still closed when its time is up.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::event::{Event, Sink};
use crate::tcp::TcpStream;

/// The limits a server applies to each connection. `None`: no limit (the tutorial's behaviour).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Close a connection after this long without progress (`--idle-timeout`).
    pub idle: Option<Duration>,
    /// Close a connection this long after it was accepted, whatever it does (`--max-conn-time`).
    pub total: Option<Duration>,
}

/// One connection's clock, started at accept.
#[derive(Debug)]
pub struct Deadline {
    limits: Limits,
    started: Instant,
}

impl Deadline {
    /// Starts the clock and sets the idle timeout on `conn` (once: it never changes).
    pub fn start(conn: &TcpStream, limits: Limits) -> io::Result<Deadline> {
        if limits.total.is_none() && limits.idle.is_some() {
            conn.set_read_timeout(limits.idle)?;
            conn.set_write_timeout(limits.idle)?;
        }
        Ok(Deadline { limits, started: Instant::now() })
    }

    /// Call before each blocking recv/send. With a total budget, lowers the socket timeouts to
    /// what is left of it (or fails with `TimedOut` once it is spent).
    pub fn before_io(&self, conn: &TcpStream) -> io::Result<()> {
        let Some(total) = self.limits.total else { return Ok(()) };
        let left = total.saturating_sub(self.started.elapsed());
        if left.is_zero() {
            return Err(self.over_budget());
        }
        let wait = self.limits.idle.map_or(left, |idle| idle.min(left));
        conn.set_read_timeout(Some(wait))?;
        conn.set_write_timeout(Some(wait))
    }

    /// Turns the `EAGAIN` of a timed-out recv/send into an error that names the limit.
    pub fn explain(&self, err: io::Error) -> io::Error {
        if err.kind() != io::ErrorKind::WouldBlock {
            return err;
        }
        let over = self.limits.total.is_some_and(|total| self.started.elapsed() >= total);
        match (over, self.limits.idle) {
            (false, Some(idle)) => io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no progress for {} (--idle-timeout); closing", show(idle)),
            ),
            _ => self.over_budget(),
        }
    }

    fn over_budget(&self) -> io::Error {
        let total = self.limits.total.unwrap_or_default();
        io::Error::new(io::ErrorKind::TimedOut, format!("open longer than {} (--max-conn-time); closing", show(total)))
    }
}

/// The same limits for a nonblocking connection in an event loop (poll, epoll), where the kernel's
/// socket timeouts do not apply — a nonblocking recv never waits — so the loop keeps the clock:
/// [`progress`](Clock::progress) when bytes move, [`expired`](Clock::expired) after each wake-up,
/// and [`next_expiry`](Clock::next_expiry) to bound the poll/epoll_wait timeout.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    limits: Limits,
    accepted: Instant,
    last_progress: Instant,
}

impl Clock {
    /// Starts both clocks at accept.
    pub fn new(limits: Limits) -> Clock {
        let now = Instant::now();
        Clock { limits, accepted: now, last_progress: now }
    }

    /// Bytes moved (received, or taken by send): the idle clock starts again.
    pub fn progress(&mut self) {
        self.last_progress = Instant::now();
    }

    /// The error that ends the connection, if a limit has passed at `now`.
    pub fn expired(&self, now: Instant) -> Option<io::Error> {
        if self.limits.total.is_some_and(|total| now >= self.accepted + total) {
            let d = self.limits.total.unwrap_or_default();
            let msg = format!("open longer than {} (--max-conn-time); closing", show(d));
            return Some(io::Error::new(io::ErrorKind::TimedOut, msg));
        }
        if self.limits.idle.is_some_and(|idle| now >= self.last_progress + idle) {
            let d = self.limits.idle.unwrap_or_default();
            let msg = format!("no progress for {} (--idle-timeout); closing", show(d));
            return Some(io::Error::new(io::ErrorKind::TimedOut, msg));
        }
        None
    }

    /// When the next limit passes (`None`: no limits).
    pub fn next_expiry(&self) -> Option<Instant> {
        let idle = self.limits.idle.map(|d| self.last_progress + d);
        let total = self.limits.total.map(|d| self.accepted + d);
        match (idle, total) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// A poll(2)/epoll_wait(2) timeout in milliseconds until `next` (rounded up, so the loop does not
/// wake a moment early and spin); `-1` (wait forever) when there is none.
pub fn timeout_ms(next: Option<Instant>, now: Instant) -> libc::c_int {
    match next {
        None => -1,
        Some(at) => {
            let left = at.saturating_duration_since(now);
            left.as_micros().div_ceil(1000).min(libc::c_int::MAX as u128) as libc::c_int
        }
    }
}

fn show(d: Duration) -> String {
    if d.subsec_millis() == 0 { format!("{}s", d.as_secs()) } else { format!("{}ms", d.as_millis()) }
}

/// The echo loop with limits: recv, send back, until the peer closes, a limit is hit, or the
/// connection fails. Errors end this connection only and are reported once.
pub fn echo_limited(conn: &TcpStream, peer: SocketAddr, buf: &mut [u8], limits: Limits, sink: &Sink) {
    if let Err(e) = echo_loop(conn, peer, buf, limits, sink) {
        sink(&Event::ConnectionError(peer, &e));
    }
}

fn echo_loop(conn: &TcpStream, peer: SocketAddr, buf: &mut [u8], limits: Limits, sink: &Sink) -> io::Result<()> {
    let deadline = Deadline::start(conn, limits)?;
    loop {
        deadline.before_io(conn)?;
        let n = conn.recv(buf).map_err(|e| deadline.explain(e))?;
        if n == 0 {
            // The client sent FIN: its side is closed, and so everything was echoed.
            sink(&Event::ServerRecvOver(peer));
            return Ok(());
        }
        sink(&Event::ServerReceived(peer, &buf[..n]));
        sink(&Event::ServerSending(peer, &buf[..n]));
        // send_all, with the budget checked before every send: a client reading one byte a
        // second makes progress on each send and would otherwise never time out.
        // EPIPE / ECONNRESET here mean the client left without reading its echo; MSG_NOSIGNAL
        // turns what would be a SIGPIPE death into that error.
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            deadline.before_io(conn)?;
            match conn.send(rest).map_err(|e| deadline.explain(e))? {
                0 => return Err(io::Error::new(io::ErrorKind::WriteZero, "send accepted no bytes")),
                sent => rest = &rest[sent..],
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_in_the_unit_given() {
        assert_eq!(show(Duration::from_secs(3)), "3s");
        assert_eq!(show(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn the_event_loop_clock_names_the_limit_that_passed() {
        let limits = Limits { idle: Some(Duration::from_secs(2)), total: Some(Duration::from_secs(5)) };
        let mut clock = Clock::new(limits);
        let t0 = clock.accepted;
        assert!(clock.expired(t0 + Duration::from_secs(1)).is_none());
        assert!(clock.expired(t0 + Duration::from_secs(2)).unwrap().to_string().contains("--idle-timeout"));
        clock.last_progress = t0 + Duration::from_secs(4);
        assert_eq!(clock.next_expiry(), Some(t0 + Duration::from_secs(5)));
        assert!(clock.expired(t0 + Duration::from_secs(5)).unwrap().to_string().contains("--max-conn-time"));
        assert_eq!(Clock::new(Limits::default()).next_expiry(), None);
        assert_eq!(timeout_ms(None, t0), -1);
        assert_eq!(timeout_ms(Some(t0 + Duration::from_micros(1500)), t0), 2);
        assert_eq!(timeout_ms(Some(t0), t0 + Duration::from_secs(1)), 0);
    }
}
