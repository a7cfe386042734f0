//! One direction of a faulty connection: bytes read from one socket wait in a queue, each chunk
//! with the time it may leave, and are written to the other socket when that time comes.
//!
//! ```text
//! source ──recv──▶ take(): drop (timeout), cut at limit, delay (latency ± jitter), cut into
//!                  slices (slicer), space out (bandwidth) ──▶ queue [(due, bytes)…]
//! queue ──send when due──▶ destination;  source's FIN ──(slow_close later)──▶ shutdown(SHUT_WR)
//! ```
//!
//! The queue is bounded ([`CAP`]): a pipe that holds that much stops reading its source, so the
//! sender's kernel buffers fill and it blocks, as it would behind a slow link (no unbounded memory).

use std::collections::VecDeque;
use std::io;
use std::net::Shutdown;
use std::time::{Duration, Instant};

use super::rng::Rng;
use super::spec::{Fault, Kind, ResetAfter};
use crate::tcp::TcpStream;

/// The most bytes one direction holds before it stops reading.
pub const CAP: usize = 256 * 1024;

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

#[derive(Debug)]
struct Chunk {
    due: Instant,
    data: Vec<u8>,
}

/// One direction's state.
#[derive(Debug)]
pub struct Pipe {
    active: Active,
    /// When `active` was set: reset_peer's and timeout's clocks start here.
    since: Instant,
    queue: VecDeque<Chunk>,
    queued: usize,
    /// The due time of the last chunk queued: chunks never overtake each other.
    last_due: Instant,
    /// When the bandwidth limit lets the next byte go.
    free_at: Instant,
    /// The source sent its FIN.
    pub eof: bool,
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
            queued: 0,
            last_due: now,
            free_at: now,
            eof: false,
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
            && self.queued < CAP
            && self.active.byte_cap().is_none_or(|cap| self.taken < cap)
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
            self.queue.push_back(Chunk { due, data: slice.to_vec() });
            self.queued += slice.len();
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
            match dest.send(&chunk.data) {
                Ok(n) => {
                    total += n;
                    self.sent += n as u64;
                    self.queued -= n;
                    if n == chunk.data.len() {
                        self.queue.pop_front();
                    } else {
                        chunk.data.drain(..n);
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
