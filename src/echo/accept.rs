//! Taking connections off the listener's queue, and what to do when that fails.
//!
//! One errno table ([`classify`]) decides for every model whether an accept failure ends the
//! server or is survived:
//! - one client's problem (it reset while queued: `ECONNABORTED`, `EPROTO`, `EPERM` from a
//!   firewall): report it and take the next;
//! - a passing shortage (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`): the connection stays queued, so
//!   accepting again at once would fail again and spin; back off (blocking models sleep 100 ms,
//!   event loops stop watching the listener for a while) and try again when descriptors may have
//!   been freed;
//! - anything else (the listener was shut down by the stop switch: `EINVAL`) ends the server.

use std::io;
use std::thread;
use std::time::Duration;

use super::endpoint::{Listener, Stream};
use super::event::{Event, Sink};
use super::stop::Stop;
use crate::SockAddr;
use crate::tcp::{TcpListener, TcpStream};

/// What an accept failure means for the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// One client's problem: report it, accept the next.
    Skip,
    /// A shortage that passes: report it, back off, try again.
    BackOff,
    /// The server cannot go on.
    Fatal,
}

/// The one table of accept errors.
pub fn classify(err: &io::Error) -> Failure {
    match err.raw_os_error() {
        Some(libc::ECONNABORTED | libc::EPROTO | libc::EPERM) => Failure::Skip,
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => Failure::BackOff,
        _ => Failure::Fatal,
    }
}

/// For blocking models: reports a survivable failure (sleeping 100 ms on a shortage) and returns
/// `Ok`, or returns the error that ends the server.
pub fn survive_accept_error(err: io::Error, sink: &Sink) -> io::Result<()> {
    match classify(&err) {
        Failure::Skip => sink(&Event::AcceptError(&err)),
        Failure::BackOff => {
            sink(&Event::AcceptError(&err));
            thread::sleep(Duration::from_millis(100));
        }
        Failure::Fatal => return Err(err),
    }
    Ok(())
}

/// TCP_NODELAY on an accepted connection: an echo is a small reply that must leave at once, not
/// wait for Nagle's algorithm to batch it with the next one (which would never come).
pub fn no_delay(conn: &Stream) {
    // Fails only if the connection is already gone; its next recv reports why.
    let _ = conn.set_nodelay(true);
}

/// Reports a new connection: `Accepted`, and for a Unix peer who it is (SO_PEERCRED: the kernel
/// recorded the peer's pid, uid and gid when it connected; the peer cannot forge them). Then
/// TCP_NODELAY for a TCP connection.
pub fn announce(conn: &Stream, peer: &SockAddr, sink: &Sink) {
    announce_peer(conn, peer, sink);
    no_delay(conn);
}

/// [`announce`] without TCP_NODELAY (the tutorial's own loop sets no options on a connection).
pub fn announce_peer(conn: &Stream, peer: &SockAddr, sink: &Sink) {
    sink(&Event::Accepted(*peer));
    if let Some(Ok(cred)) = conn.peer_cred() {
        sink(&Event::PeerCred(*peer, cred));
    }
}

/// `--accept-delay`: waits until a finished handshake is queued (the listener polls readable),
/// then leaves it there for `delay` before the caller accepts it, so the accept queue can be seen
/// at work. Counting from the arrival, not from listen, keeps the delay visible however late the
/// client starts. Returns false if the server was stopped meanwhile.
pub fn hold_in_queue(listener: &Listener, delay: Duration, stop: &Stop) -> io::Result<bool> {
    if delay.is_zero() {
        return Ok(true);
    }
    match listener.wait_for_connection() {
        // A stop signal interrupted the wait (the tutorial's stop): the server is stopping.
        Err(e) if e.kind() == io::ErrorKind::Interrupted && stop.requested() => return Ok(false),
        other => other?,
    }
    Ok(stop.wait(delay))
}

/// accept(2) for an event loop: the new connection is nonblocking too (`SOCK_NONBLOCK` in accept4;
/// on Linux an accepted socket does not inherit O_NONBLOCK), with TCP_NODELAY. On an empty queue
/// it fails with `WouldBlock`.
pub fn accept_nonblocking(listener: &Listener) -> io::Result<(Stream, SockAddr)> {
    listener.accept_nonblocking()
}

/// A listener an event loop drains with [`accept_burst`]: the echo's [`Listener`] (any stream
/// family) or a plain [`TcpListener`] (the fault proxy's).
pub trait Accepts {
    /// What accept hands out.
    type Conn;
    /// accept(2) of a nonblocking connection; `WouldBlock` on an empty queue.
    fn accept_conn(&self) -> io::Result<(Self::Conn, SockAddr)>;
    /// Reports the new connection and prepares it (TCP_NODELAY; SO_PEERCRED for Unix peers).
    fn announce(conn: &Self::Conn, peer: &SockAddr, sink: &Sink);
}

impl Accepts for Listener {
    type Conn = Stream;
    fn accept_conn(&self) -> io::Result<(Stream, SockAddr)> {
        accept_nonblocking(self)
    }
    fn announce(conn: &Stream, peer: &SockAddr, sink: &Sink) {
        announce(conn, peer, sink)
    }
}

impl Accepts for TcpListener {
    type Conn = TcpStream;
    fn accept_conn(&self) -> io::Result<(TcpStream, SockAddr)> {
        let (stream, peer) = self.accept_nonblocking()?;
        Ok((stream, SockAddr::from(peer)))
    }
    fn announce(conn: &TcpStream, peer: &SockAddr, sink: &Sink) {
        sink(&Event::Accepted(*peer));
        let _ = conn.set_nodelay(true);
    }
}

/// How an accept burst ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Burst {
    /// The queue is empty (`EAGAIN`): wait for the listener to be readable again.
    Drained,
    /// Out of descriptors or memory (`EMFILE`...), or at the `max_conns` bound: the connection
    /// stays queued, so the listener stays readable and waiting for it again would spin. Stop
    /// watching the listener until a connection closes (or a short timeout passes).
    Pause,
}

/// Accepts until the queue is empty — one readiness event may stand for many connections — or
/// `room` connections were taken. Each goes to `take`.
pub fn accept_burst<L: Accepts>(
    listener: &L,
    room: usize,
    sink: &Sink,
    mut take: impl FnMut(L::Conn, SockAddr),
) -> io::Result<Burst> {
    for _ in 0..room {
        match listener.accept_conn() {
            Ok((stream, peer)) => {
                L::announce(&stream, &peer, sink);
                take(stream, peer);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Burst::Drained),
            Err(e) => match classify(&e) {
                Failure::Skip => sink(&Event::AcceptError(&e)),
                Failure::BackOff => {
                    sink(&Event::AcceptError(&e));
                    return Ok(Burst::Pause);
                }
                Failure::Fatal => return Err(e),
            },
        }
    }
    Ok(Burst::Pause)
}
