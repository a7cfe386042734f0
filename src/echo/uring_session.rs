//! One client of the io_uring server: what it has asked the kernel to do, and what to ask next.
//!
//! A connection has at most two requests in the kernel at a time: one multishot recv (armed once,
//! it completes each time data arrives, into a buffer the kernel takes from the provided-buffer
//! ring), and one send of everything queued (or of what a short send left). The recv stays armed
//! while a send is in flight, so receiving and sending overlap. With incremental buffer
//! consumption (Linux 6.12) consecutive recvs land one after another in the same buffer, and a
//! piece that directly follows the last queued one is joined to it. From Linux 6.16 each recv is
//! a bundle: it takes all the socket holds, up to its limit, into as many buffers as that needs
//! (a piece per buffer), where a plain recv stops at the end of one buffer — the epoll model's one
//! large recv, in 64 KiB buffers. Pieces in different buffers go out together in one `sendmsg`
//! with an iovec each (`IORING_OP_SENDMSG`): one send echoes what the recvs brought, as the epoll
//! model's one send echoes its recv. A seqpacket message is sent on its own, so the echo keeps
//! the boundaries. A buffer goes back to the kernel once the kernel has used it up and every
//! piece of it has been sent.
//!
//! Backpressure: received pieces wait in `queue` while the client does not read its echoes. When
//! [`MAX_QUEUED_BYTES`] bytes or [`MAX_PIECES`] pieces are waiting, the recv is cancelled — the
//! server stops reading, as the epoll model does — and armed again once half of that has been
//! sent; where the kernel can (6.16), the recv is armed with a limit of what is left below the
//! bound and ends by itself there, so a bundle never takes more than that. A client that never
//! reads thus holds at most that much of the pool (plus the one buffer a bundle may start in the
//! middle of), whatever it sends.
//!
//! A connection is closed only when neither request is in the kernel any more: until then the
//! kernel holds the socket, and closing our descriptor would neither end it nor free its number
//! for reuse safely.

use std::collections::VecDeque;
use std::io;
use std::os::fd::AsFd;
use std::time::Instant;

use super::endpoint::Stream;
use super::event::{Event, Sink};
use super::limits::{Clock, Limits};
use crate::SockAddr;
use crate::ready::uring::{Done, Piece, RECV, Ring};

/// Received bytes a connection may hold before its recv is cancelled (backpressure).
pub const MAX_QUEUED_BYTES: u64 = 256 << 10;
/// Received pieces a connection may hold before its recv is cancelled: each may keep a whole
/// provided buffer from going back to the kernel.
pub const MAX_PIECES: usize = 4;

/// The token of the cancel requests themselves (their completions need no handling).
pub const CANCEL_TOKEN: u64 = 1 << 40;

/// One client.
#[derive(Debug)]
pub struct Conn {
    stream: Stream,
    peer: SockAddr,
    clock: Clock,
    /// Received, not yet sent in full, oldest first.
    queue: VecDeque<Piece>,
    /// Bytes in `queue` not yet sent.
    queued: u64,
    /// Bytes of the oldest piece already sent.
    sent: u32,
    /// A multishot recv is in the kernel (its last completion has not come).
    receiving: bool,
    /// That recv is being cancelled.
    cancelling: bool,
    /// A send is in the kernel.
    sending: bool,
    /// The recv ended for lack of buffers (`ENOBUFS`); arm it again once some are recycled.
    pub starved: bool,
    /// It had a completion this loop turn and is listed to be resumed (the model's bookkeeping).
    pub touched: bool,
    /// Nothing more will be read: the peer closed, or the connection failed or timed out.
    finished: bool,
    /// It failed: what is queued is dropped, not sent.
    failed: bool,
}

impl Conn {
    /// A new connection; its clock starts now. Call [`Conn::resume`] to start receiving.
    pub fn new(stream: Stream, peer: SockAddr, limits: Limits) -> Conn {
        Conn {
            stream,
            peer,
            clock: Clock::new(limits),
            queue: VecDeque::new(),
            queued: 0,
            sent: 0,
            receiving: false,
            cancelling: false,
            sending: false,
            starved: false,
            touched: false,
            finished: false,
            failed: false,
        }
    }

    /// When its next time limit passes.
    pub fn next_expiry(&self) -> Option<Instant> {
        if self.finished { None } else { self.clock.next_expiry() }
    }

    /// Ends it if a time limit has passed at `now`.
    pub fn check_limits(&mut self, now: Instant, sink: &Sink) {
        if let Some(e) = self.clock.expired(now).filter(|_| !self.finished) {
            self.fail(&e, sink);
        }
    }

    /// A completion of its recv: data in a buffer, end of stream, or the recv ended.
    pub fn on_recv(&mut self, ring: &mut Ring, done: &mut Done, sink: &Sink) {
        if !done.more {
            (self.receiving, self.cancelling) = (false, false);
        }
        match (done.res, done.piece.take()) {
            (Ok(real), Some(piece)) if !self.finished => {
                self.clock.progress();
                let message = matches!(self.stream, Stream::Seqpacket(_));
                if message && real > piece.len() {
                    // A seqpacket message longer than the buffer: the kernel kept what fitted and
                    // dropped the rest; MSG_TRUNC made the result its real length.
                    sink(&Event::Truncated(self.peer, piece.len() as usize, real as usize));
                }
                // A bundle's bytes run on into the next buffers of the ring: a piece each, in
                // order. One recv, one line, however many buffers it filled.
                let first = [ring.data(&piece)];
                let all: Vec<&[u8]>;
                let data: &[&[u8]] = if done.more_pieces.is_empty() {
                    &first // no allocation for the usual one-buffer recv
                } else {
                    all = first.into_iter().chain(done.more_pieces.iter().map(|p| ring.data(p))).collect();
                    &all
                };
                sink(&Event::ServerReceived(self.peer, data));
                sink(&Event::ServerSending(self.peer, data));
                for piece in std::iter::once(piece).chain(done.more_pieces.drain(..)) {
                    self.queued += u64::from(piece.len());
                    // Bytes of a stream that follow each other in one buffer go out in one send; a
                    // message is sent on its own, so that the echo keeps the message boundaries.
                    let piece = match self.queue.back_mut() {
                        Some(last) if !message => ring.join(last, piece).err(),
                        _ => Some(piece),
                    };
                    self.queue.extend(piece);
                }
            }
            (Ok(_), Some(piece)) => {
                // After the end: nobody wants them.
                ring.release(piece);
                done.more_pieces.drain(..).for_each(|p| ring.release(p));
            }
            (Ok(0), None) if !self.finished => {
                // recv returned 0: the client closed its side; echo what is queued, then close.
                sink(&Event::ServerRecvOver(self.peer));
                self.finished = true;
            }
            (Ok(0), None) => {}
            (Ok(_), None) => {
                let e = io::Error::other("a recv completed without the buffer it filled");
                self.fail(&e, sink);
            }
            (Err(libc::ENOBUFS), _) => self.starved = true,
            (Err(libc::ECANCELED), _) => {}
            (Err(errno), _) => self.fail(&io::Error::from_raw_os_error(errno), sink),
        }
    }

    /// A completion of its send: the pieces it sent in full go (their buffers back to the kernel
    /// once nothing else of them is held); a short send leaves the rest for the next.
    pub fn on_send(&mut self, ring: &mut Ring, done: &Done, sink: &Sink) {
        self.sending = false;
        match done.res {
            Ok(n) => {
                self.clock.progress();
                self.queued = self.queued.saturating_sub(u64::from(n));
                let mut left = n;
                while let Some(piece) = self.queue.front() {
                    let rest = piece.len() - self.sent;
                    if left < rest {
                        self.sent += left;
                        break;
                    }
                    left -= rest;
                    self.sent = 0;
                    if let Some(piece) = self.queue.pop_front() {
                        ring.release(piece);
                    }
                }
            }
            Err(errno) => self.fail(&io::Error::from_raw_os_error(errno), sink),
        }
    }

    /// Asks the kernel for what the connection needs next: the next send, a cancel of the recv
    /// (too much queued, or finished), or a new recv (queue drained). `token` is its own.
    pub fn resume(&mut self, ring: &mut Ring, token: u64, sink: &Sink) {
        if self.failed && !self.sending {
            // Nothing of ours is in the kernel any more: the pieces can go back.
            while let Some(piece) = self.queue.pop_front() {
                ring.release(piece);
            }
            (self.queued, self.sent) = (0, 0);
        }
        if !self.sending
            && !self.failed
            && let Some(front) = self.queue.front()
        {
            // A stream's queued pieces go out together: one sendmsg when they lie in different
            // buffers. A message (seqpacket) goes on its own, so the echo keeps the boundaries.
            let fd = self.stream.as_fd();
            let sent = if self.queue.len() == 1 || matches!(self.stream, Stream::Seqpacket(_)) {
                ring.send(fd, front, self.sent, token)
            } else {
                ring.send_gather(fd, &self.queue, self.sent, token)
            };
            match sent {
                Ok(()) => self.sending = true,
                Err(e) => self.fail(&e, sink),
            }
        }
        let full = self.queued >= MAX_QUEUED_BYTES || self.queue.len() >= MAX_PIECES;
        if self.receiving && (self.finished || full) && !self.cancelling {
            ring.cancel(token, RECV, CANCEL_TOKEN);
            self.cancelling = true;
        }
        let room = self.queued < MAX_QUEUED_BYTES / 2 && self.queue.len() < MAX_PIECES / 2;
        if !self.receiving && !self.finished && !self.starved && room {
            // It ends by itself once the queue would be full (6.16): one io_uring_enter can
            // otherwise bring a whole burst of completions before a cancel goes in.
            let room = MAX_QUEUED_BYTES.saturating_sub(self.queued) as u32;
            ring.recv(self.stream.as_fd(), token, room);
            self.receiving = true;
        }
    }

    /// Nothing left to do and nothing in the kernel: it can be closed.
    pub fn is_done(&self) -> bool {
        self.finished && !self.receiving && !self.sending && self.queue.is_empty()
    }

    fn fail(&mut self, err: &io::Error, sink: &Sink) {
        if !self.failed {
            sink(&Event::ConnectionError(self.peer, err));
        }
        (self.finished, self.failed) = (true, true);
    }
}
