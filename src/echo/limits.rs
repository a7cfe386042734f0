//! Per-connection time limits, so a slow or silent client cannot hold a server forever. The echo
//! itself is in `session.rs`; this file only keeps the clocks.
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
use std::time::{Duration, Instant};

use super::endpoint::Stream;

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
    pub fn start(conn: &Stream, limits: Limits) -> io::Result<Deadline> {
        if limits.total.is_none() && limits.idle.is_some() {
            conn.set_read_timeout(limits.idle)?;
            conn.set_write_timeout(limits.idle)?;
        }
        Ok(Deadline { limits, started: Instant::now() })
    }

    /// Call before each blocking recv/send. With a total budget, lowers the socket timeouts to
    /// what is left of it (or fails with `TimedOut` once it is spent).
    pub fn before_io(&self, conn: &Stream) -> io::Result<()> {
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

    /// Bytes moved (received, or taken by send): the idle clock starts again. Without an idle
    /// limit nothing reads that clock, so it is not read either (once per recv and per send on
    /// the event loops' hot path, about 2 % of the epoll server's CPU samples in pingpong).
    pub fn progress(&mut self) {
        if self.limits.idle.is_some() {
            self.last_progress = Instant::now();
        }
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

/// A duration in the unit it was most likely given: `5s`, `250ms`.
pub(crate) fn show_duration(d: Duration) -> String {
    show(d)
}

fn show(d: Duration) -> String {
    if d.subsec_millis() == 0 { format!("{}s", d.as_secs()) } else { format!("{}ms", d.as_millis()) }
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
    }
}
