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
}
