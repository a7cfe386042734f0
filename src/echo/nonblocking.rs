//! What the poll and epoll servers share: a connection's whole state, and what to do when the
//! kernel says it is readable or writable.
//!
//! Backpressure: the echo is sent from the thread's read buffer. If the client does not read and
//! its socket's send buffer fills, send takes only part (or `EAGAIN`); the unsent remainder is the
//! only thing kept per connection, and the server stops reading that client until the remainder
//! is gone (it waits for writability instead). A client that never reads thus costs at most one
//! buffer's worth of memory, not unbounded buffering.

use std::io;
use std::mem;
use std::net::SocketAddr;
use std::time::Instant;

use super::event::{Event, Sink};
use super::iterative::no_delay;
use super::limits::{Clock, Limits};
use crate::tcp::{TcpListener, TcpStream};

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
    pub stream: TcpStream,
    peer: SocketAddr,
    /// Echo bytes that did not fit into the send buffer yet. Empty (no allocation) normally.
    unsent: Vec<u8>,
    /// `--idle-timeout` / `--max-conn-time`: a nonblocking socket never waits in recv, so the
    /// loop keeps the clock (see `limits.rs`).
    clock: Clock,
}

impl Conn {
    /// Wraps an accepted nonblocking connection; its clock starts now.
    pub fn new(stream: TcpStream, peer: SocketAddr, limits: Limits) -> Conn {
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
        let n = match self.stream.recv(buf) {
            Ok(0) => {
                sink(&Event::ServerRecvOver(self.peer));
                return Want::Close;
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Want::Read, // a spurious wake-up
            Err(e) => return self.failed(&e, sink),
        };
        self.clock.progress();
        sink(&Event::ServerReceived(self.peer, &buf[..n]));
        sink(&Event::ServerSending(self.peer, &buf[..n]));
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

/// accept(2) for a nonblocking server: the new connection is nonblocking too (`SOCK_NONBLOCK` in
/// accept4 where it exists — on Linux an accepted socket does not inherit O_NONBLOCK), with
/// TCP_NODELAY. On an empty queue it fails with `WouldBlock`.
pub fn accept(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
    let (stream, peer) = listener.accept_nonblocking()?;
    no_delay(&stream);
    Ok((stream, peer))
}

/// How an accept burst ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepting {
    /// The queue is empty (`EAGAIN`): wait for the listener to be readable again.
    Drained,
    /// Out of descriptors or memory (`EMFILE`...), or at the `max_conns` bound: the connection
    /// stays queued, so the listener stays readable and waiting for it again would spin. Stop
    /// watching the listener until a connection closes (or a short timeout passes).
    Pause,
}

/// Accepts until the queue is empty — one readiness event may stand for many connections — or
/// `room` connections were taken. Each goes to `take`.
pub fn accept_burst(
    listener: &TcpListener,
    room: usize,
    sink: &Sink,
    mut take: impl FnMut(TcpStream, SocketAddr),
) -> io::Result<Accepting> {
    for _ in 0..room {
        match accept(listener) {
            Ok((stream, peer)) => {
                sink(&Event::Accepted(peer));
                take(stream, peer);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Accepting::Drained),
            // One client's problem (it reset while queued): go on with the next.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ECONNABORTED | libc::EPROTO | libc::EPERM)) => {
                sink(&Event::AcceptError(&e));
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)) => {
                sink(&Event::AcceptError(&e));
                return Ok(Accepting::Pause);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Accepting::Pause)
}
