//! One direction of a faulty connection: bytes read from one socket wait in a queue, each chunk
//! with the time it may leave, and are written to the other socket when that time comes.
//!
//! ```text
//! source ──recv──▶ take(): drop (timeout), cut at limit, delay (latency ± jitter), cut into
//!                  slices (slicer), space out (bandwidth) ──▶ queue [(due, bytes)…]
//! queue ──send when due──▶ destination;  source's FIN ──(slow_close later)──▶ shutdown(SHUT_WR)
//! ```
//!
//! The queue is bounded ([`CAP`] bytes, [`MAX_CHUNKS`] chunks): a pipe that holds that much stops
//! reading its source, so the sender's kernel buffers fill and it blocks, as it would behind a slow
//! link (no unbounded memory). A read takes no more than the queue has room for ([`Pipe::room`]),
//! and a chunk is a due time and a length over one byte buffer: cut into one-byte slices
//! (`slicer=1b`, `bandwidth=1b`), a byte costs 24 bytes of bookkeeping, not an allocation.

use std::collections::VecDeque;
use std::io;
use std::net::Shutdown;
use std::time::{Duration, Instant};

use super::rng::Rng;
use super::spec::{Fault, Kind, ResetAfter};
use crate::tcp::TcpStream;

/// The most bytes one direction holds before it stops reading.
pub const CAP: usize = 256 * 1024;
/// The most chunks (slices waiting for their time) one direction holds.
pub const MAX_CHUNKS: usize = 4096;

/// The faults one direction of one connection actually got (each fault's probability was rolled
/// when the connection was accepted, or when the faults were changed).
#[derive(Debug, Clone, Default)]
pub struct Active {
    latency: Option<(Duration, Duration)>,
    bandwidth: Option<u64>,
    slicer: Option<(usize, usize, Duration)>,
    limit: Option<u64>,
    reset: Option<ResetAfter>,
    timeout: Option<Option<Duration>>,
    slow_close: Option<Duration>,
    half_open: bool,
}

impl Active {
    /// The faults of `faults` that act in this direction and won their roll. Returns them and how
    /// many there are (for the fixture's `faults_applied` count).
    pub fn roll(faults: &[Fault], upstream: bool, rng: &mut Rng) -> (Active, u64) {
        let mut active = Active::default();
        let mut applied = 0;
        for fault in faults.iter().filter(|f| f.kind != Kind::Refuse && f.direction.covers(upstream)) {
            if rng.unit() >= fault.probability {
                continue;
            }
            applied += 1;
            match fault.kind {
                Kind::Latency { delay, jitter } => active.latency = Some((delay, jitter)),
                Kind::Bandwidth(rate) => active.bandwidth = Some(rate),
                Kind::Slicer { size, variation, delay } => active.slicer = Some((size, variation, delay)),
                Kind::LimitData(n) => active.limit = Some(n),
                Kind::ResetPeer(after) => active.reset = Some(after),
                Kind::Timeout(after) => active.timeout = Some(after),
                Kind::SlowClose(d) => active.slow_close = Some(d),
                Kind::HalfOpen => active.half_open = true,
                Kind::Refuse => {}
            }
        }
        (active, applied)
    }

    /// The most bytes this direction will pass on (limit_data, reset_peer=after=N).
    fn byte_cap(&self) -> Option<u64> {
        let reset = match self.reset {
            Some(ResetAfter::Bytes(n)) => Some(n),
            _ => None,
        };
        match (self.limit, reset) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// How a direction's faults end the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// reset_peer: RST the destination (SO_LINGER 0, then close), close the other side.
    Reset,
    /// limit_data, timeout: close both sides.
    Close,
}

/// The next `len` bytes of the pipe's buffer leave at `due`.
#[derive(Debug)]
struct Chunk {
    due: Instant,
    len: usize,
}

/// One direction's state.
#[derive(Debug)]
pub struct Pipe {
    active: Active,
    /// When `active` was set: reset_peer's and timeout's clocks start here.
    since: Instant,
    queue: VecDeque<Chunk>,
    /// The queued bytes, in order; the chunks cut them up.
    bytes: VecDeque<u8>,
    /// The due time of the last chunk queued: chunks never overtake each other.
    last_due: Instant,
    /// When the bandwidth limit lets the next byte go.
    free_at: Instant,
    /// The source sent its FIN (read as recv = 0).
    pub eof: bool,
    /// The source sent its FIN while half_open kept it unread (seen as `EPOLLRDHUP`).
    pub gone: bool,
    /// The FIN was passed on (shutdown(SHUT_WR) of the destination).
    pub shut: bool,
    fin_at: Option<Instant>,
    /// Bytes read from the source that count against the byte cap.
    taken: u64,
    /// Bytes written to the destination.
    pub sent: u64,
    /// The destination's send buffer was full: wait for it to be writable.
    pub blocked: bool,
}

impl Pipe {
    /// A direction with `active` faults, set at `now`.
    pub fn new(active: Active, now: Instant) -> Pipe {
        Pipe {
            active,
            since: now,
            queue: VecDeque::new(),
            bytes: VecDeque::new(),
            last_due: now,
            free_at: now,
            eof: false,
            gone: false,
            shut: false,
            fin_at: None,
            taken: 0,
            sent: 0,
            blocked: false,
        }
    }

    /// Replaces the faults (`set_faults` while running); their clocks restart at `now`.
    pub fn set_active(&mut self, active: Active, now: Instant) {
        self.active = active;
        self.since = now;
    }

    /// Whether to read the source now.
    pub fn wants_read(&self) -> bool {
        !self.eof
            && !self.active.half_open
            && self.room() > 0
            && self.active.byte_cap().is_none_or(|cap| self.taken < cap)
    }

    /// How many bytes the next read may take: what fits under [`CAP`] and, cut into this
    /// direction's slices, under [`MAX_CHUNKS`] (bandwidth alone cuts 100 ms worth per chunk).
    pub fn room(&self) -> usize {
        let bytes = CAP.saturating_sub(self.bytes.len());
        let chunks = MAX_CHUNKS.saturating_sub(self.queue.len());
        let slice = match (self.active.slicer, self.active.bandwidth) {
            (Some((size, var, _)), _) => (size - var).max(1),
            (None, Some(rate)) => (rate / 10).max(1) as usize,
            (None, None) => return if chunks > 0 { bytes } else { 0 },
        };
        bytes.min(chunks.saturating_mul(slice))
    }

    /// Whether this direction will pass nothing more on: its FIN was passed on, or its source
    /// has ended while a fault holds everything back — a timeout (which drops what it reads) or
    /// half_open (which reads nothing).
    pub fn done(&self) -> bool {
        let frozen = self.active.half_open || self.active.timeout.is_some();
        self.shut || (frozen && (self.eof || self.gone))
    }

    /// timeout's end (as Toxiproxy's timeout toxic): it drains its source until the source
    /// closes, then the link closes.
    pub fn drained(&self) -> bool {
        self.active.timeout.is_some() && self.eof
    }

    /// Whether half_open holds this direction (its source is not read).
    pub fn half_open(&self) -> bool {
        self.active.half_open
    }

    /// Bytes just read from the source: shaped by the faults and queued.
    pub fn take(&mut self, data: &[u8], now: Instant, rng: &mut Rng) {
        if self.active.timeout.is_some() {
            return; // timeout: nothing gets through
        }
        let data = match self.active.byte_cap() {
            Some(cap) => &data[..data.len().min(cap.saturating_sub(self.taken) as usize)],
            None => data,
        };
        self.taken += data.len() as u64;
        let mut due = now;
        if let Some((delay, jitter)) = self.active.latency {
            due += delay;
            if !jitter.is_zero() {
                let shift = jitter.mul_f64(rng.unit());
                due = if rng.unit() < 0.5 { due + shift } else { due.checked_sub(shift).unwrap_or(now).max(now) };
            }
        }
        let mut rest = data;
        while !rest.is_empty() {
            let (n, gap) = match self.active.slicer {
                Some((size, var, delay)) => (size - var + (rng.unit() * (2 * var + 1) as f64) as usize, delay),
                // Bandwidth alone: 100 ms worth of bytes at a time, so the stream flows evenly.
                None => (self.active.bandwidth.map_or(rest.len(), |r| (r / 10).max(1) as usize), Duration::ZERO),
            };
            let (slice, tail) = rest.split_at(n.clamp(1, rest.len()));
            due = due.max(self.last_due).max(self.free_at);
            if let Some(rate) = self.active.bandwidth {
                self.free_at = due + Duration::from_secs_f64(slice.len() as f64 / rate as f64);
            }
            self.queue.push_back(Chunk { due, len: slice.len() });
            self.bytes.extend(slice);
            self.last_due = due;
            due += gap;
            rest = tail;
        }
    }

    /// Sends every chunk that is due, until the destination's buffer is full. Returns the bytes sent.
    pub fn write(&mut self, dest: &TcpStream, now: Instant) -> io::Result<usize> {
        if self.active.half_open || self.active.timeout.is_some() {
            return Ok(0);
        }
        let mut total = 0;
        while let Some(chunk) = self.queue.front_mut().filter(|c| c.due <= now) {
            // The chunk's bytes, or the part before the ring buffer wraps (the rest goes next).
            let (head, _) = self.bytes.as_slices();
            match dest.send(&head[..chunk.len.min(head.len())]) {
                Ok(n) => {
                    total += n;
                    self.sent += n as u64;
                    self.bytes.drain(..n);
                    chunk.len -= n;
                    if chunk.len == 0 {
                        self.queue.pop_front();
                    }
                    self.blocked = false;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.blocked = true;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        // A drained queue gives back what a burst made it grow to (an idle link keeps little).
        if self.queue.is_empty() && self.bytes.capacity() > 64 * 1024 {
            self.bytes = VecDeque::new();
            self.queue = VecDeque::new();
        }
        Ok(total)
    }

    /// Passes the source's FIN on once everything before it is sent (slow_close: that much later).
    pub fn finish(&mut self, dest: &TcpStream, now: Instant) -> io::Result<()> {
        if !self.eof || self.shut || !self.queue.is_empty() || self.active.half_open || self.active.timeout.is_some() {
            return Ok(());
        }
        let at = *self.fin_at.get_or_insert(now + self.active.slow_close.unwrap_or_default());
        if at <= now {
            self.shut = true;
            dest.shutdown(Shutdown::Write)?;
        }
        Ok(())
    }

    /// Whether this direction's faults end the connection at `now`.
    pub fn verdict(&self, now: Instant) -> Option<End> {
        match self.active.reset {
            Some(ResetAfter::Delay(d)) if self.since + d <= now => return Some(End::Reset),
            Some(ResetAfter::Bytes(n)) if self.sent >= n => return Some(End::Reset),
            _ => {}
        }
        if self.active.limit.is_some_and(|n| self.sent >= n) {
            return Some(End::Close);
        }
        match self.active.timeout {
            Some(Some(t)) if self.since + t <= now => Some(End::Close),
            _ => None,
        }
    }

    /// When this direction next needs the loop without a socket event.
    pub fn deadline(&self) -> Option<Instant> {
        let frozen = self.active.half_open || self.active.timeout.is_some();
        let chunk = self.queue.front().filter(|_| !self.blocked && !frozen).map(|c| c.due);
        let fin = self.fin_at.filter(|_| !self.shut);
        let reset = match self.active.reset {
            Some(ResetAfter::Delay(d)) => Some(self.since + d),
            _ => None,
        };
        let timeout = self.active.timeout.flatten().map(|t| self.since + t);
        [chunk, fin, reset, timeout].into_iter().flatten().min()
    }
}
