//! `socklab bench`: a load generator on socklab's own syscall layer.
//!
//! One thread and one epoll instance drive every connection (10,000 connections need no 10,000
//! threads): sockets are nonblocking and edge-triggered, so each readiness event is answered by
//! reading until nothing is outstanding or `EAGAIN`, then writing what the mode allows.
//!
//! - `pingpong`: each connection sends a `size`-byte message and waits for all of its echo before
//!   sending the next; each round trip's latency goes into an HDR histogram.
//! - `bulk`: each connection keeps sending `size`-byte writes, with at most a window of bytes not
//!   yet echoed, and reads the echo as it comes.
//! - `connrate`: each connection slot connects, sends `size` bytes, reads the echo, closes, and
//!   starts over; latency is connect-to-echo.
//!
//! Every byte sent comes from a seeded pseudo-random stream (`pattern.rs`) and every echoed byte is
//! compared with what was sent at that offset. At the end each connection gets a grace period to
//! receive its outstanding echo; what never came back is reported as lost.

mod pattern;
mod report;
#[cfg(target_os = "linux")]
mod syscalls;

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::SockAddr;
use crate::ready::{Epoll, Events, Interest, Readiness, Token};
use crate::socket::{Domain, Socket, Type};
use pattern::Pattern;
pub use report::{Latency, Progress, Report};

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Request/response: latency and round trips per second.
    Pingpong,
    /// Streaming: echoed MiB per second.
    Bulk,
    /// Connection setup and teardown per second.
    Connrate,
}

impl Mode {
    /// The CLI's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Pingpong => "pingpong",
            Mode::Bulk => "bulk",
            Mode::Connrate => "connrate",
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(text: &str) -> Result<Mode, String> {
        [Mode::Pingpong, Mode::Bulk, Mode::Connrate]
            .into_iter()
            .find(|m| m.name() == text)
            .ok_or_else(|| format!("unknown mode '{text}': use pingpong, bulk or connrate"))
    }
}

/// A benchmark run.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// The echo server.
    pub addr: SocketAddr,
    /// What to measure.
    pub mode: Mode,
    /// Connections at once.
    pub conns: usize,
    /// Bytes per message (pingpong, connrate) or per write (bulk).
    pub size: usize,
    /// How long to generate load.
    pub duration: Duration,
    /// After the duration, how long connections may take to receive their outstanding echo
    /// before what is missing counts as lost ([`GRACE`] is the CLI's).
    pub grace: Duration,
    /// Seed of the payload stream.
    pub seed: u64,
    /// The server's processes, whose system calls are counted during the run (empty: the
    /// processes listening at `addr`, found in /proc).
    pub server_pids: Vec<i32>,
}

/// The CLI's grace period.
pub const GRACE: Duration = Duration::from_secs(5);

/// The most bytes one recv asks for.
const RECV_BUF: usize = 65536;

/// One connection's state: no buffers, only counters into its stream.
#[derive(Debug)]
struct Conn {
    socket: Option<Socket>,
    connected: bool,
    /// Offset of this connection's first byte in the pattern.
    base: u64,
    /// Bytes sent, bytes received (and checked).
    tx: u64,
    rx: u64,
    /// May send while `tx < limit`.
    limit: u64,
    /// When the current round (pingpong) or connection (connrate) began.
    started: Instant,
    served: bool,
    /// connrate: the whole echo came back and our FIN is sent; the server must close now, and any
    /// byte that still arrives is one it should not have sent.
    draining: bool,
}

struct Run<'a> {
    config: &'a BenchConfig,
    epoll: Epoll,
    pattern: Pattern,
    conns: Vec<Conn>,
    hist: Histogram<u64>,
    buf: Vec<u8>,
    ending: bool,
    window: u64,
    round_trips: u64,
    connections: u64,
    bytes: u64,
    errors: u64,
    mismatches: u64,
    lost: u64,
    first_error: Option<String>,
    /// Connections opened so far (connrate spreads them over source addresses).
    opened: u64,
}

/// Runs the benchmark, calling `progress` about once a second.
pub fn run(config: &BenchConfig, progress: &mut dyn FnMut(&Progress)) -> io::Result<Report> {
    if config.conns == 0 || config.size == 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "--conns and --size must be at least 1"));
    }
    crate::process::raise_open_files(Some(config.conns as u64 + 64))?;
    let hist = Histogram::new_with_bounds(1, 60_000_000_000, 3).map_err(io::Error::other)?;
    let mut run = Run {
        config,
        epoll: Epoll::new()?,
        pattern: Pattern::new(config.seed, config.size.max(RECV_BUF)),
        conns: Vec::with_capacity(config.conns),
        hist,
        buf: vec![0u8; RECV_BUF],
        ending: false,
        // Bulk keeps this much unechoed data in flight per connection: enough to fill the pipes.
        window: (4 * config.size as u64).max(1 << 20),
        round_trips: 0,
        connections: 0,
        bytes: 0,
        errors: 0,
        mismatches: 0,
        lost: 0,
        first_error: None,
        opened: 0,
    };
    let counters = server_counters(config);
    let counted_from = counters.as_ref().ok().and_then(|c| c.total());
    // Our own CPU time over the run: a generator at one whole CPU measured itself, not the server.
    let cpu_from = crate::process::cpu_time().ok();
    let mut cpu_to = None;
    let start = Instant::now();
    for i in 0..config.conns {
        run.conns.push(Conn {
            socket: None,
            connected: false,
            base: Pattern::start_of(i),
            tx: 0,
            rx: 0,
            limit: 0,
            started: start,
            served: false,
            draining: false,
        });
        run.open(i)?;
    }
    let mut events = Events::with_capacity(1024);
    let deadline = start + config.duration;
    let mut next_tick = start + Duration::from_secs(1);
    let mut end = None;
    loop {
        let now = Instant::now();
        if !run.ending && now >= deadline {
            run.ending = true;
            end = Some(now);
            cpu_to = crate::process::cpu_time().ok();
            run.stop_offering();
        }
        if run.ending && (run.quiet() || now >= deadline + config.grace) {
            break;
        }
        if now >= next_tick {
            progress(&run.progress(now - start));
            next_tick += Duration::from_secs(1);
        }
        let wake = if run.ending { deadline + config.grace } else { deadline.min(next_tick) };
        let timeout = wake.saturating_duration_since(now).clamp(Duration::from_millis(1), Duration::from_secs(1));
        run.epoll.wait(&mut events, Some(timeout))?;
        for event in events.iter() {
            run.ready(event)?;
        }
    }
    let elapsed = end.unwrap_or_else(Instant::now) - start;
    let generator_cpu = match (cpu_from, cpu_to) {
        (Some(from), Some(to)) if !elapsed.is_zero() => {
            Some(to.saturating_sub(from).as_secs_f64() / elapsed.as_secs_f64())
        }
        _ => None,
    };
    for conn in &mut run.conns {
        run.lost += conn.tx - conn.rx;
    }
    // Read before our connections close: the server's calls for the echoes, not for the goodbyes.
    let server_syscalls = match (counters, counted_from) {
        (Ok(c), Some(from)) => c.total().map(|to| to - from).ok_or_else(|| "a counter could not be read".into()),
        (Ok(_), None) => Err("a counter could not be read".into()),
        (Err(why), _) => Err(why),
    };
    let served = run.conns.iter().filter(|c| c.served).count();
    Ok(Report {
        mode: config.mode,
        addr: config.addr,
        conns: config.conns,
        size: config.size,
        elapsed,
        served,
        round_trips: run.round_trips,
        connections: run.connections,
        bytes: run.bytes,
        errors: run.errors,
        mismatches: run.mismatches,
        lost_bytes: run.lost,
        latency: Latency::from_histogram(&run.hist),
        first_error: run.first_error,
        server_syscalls,
        generator_cpu,
    })
}

/// The server's system-call counters (Linux), or why there are none.
#[cfg(target_os = "linux")]
fn server_counters(config: &BenchConfig) -> Result<Counters, String> {
    syscalls::attach(&config.server_pids, config.addr).map(Counters)
}

#[cfg(not(target_os = "linux"))]
fn server_counters(_: &BenchConfig) -> Result<Counters, String> {
    Err("counting another process's system calls is implemented for Linux only".into())
}

/// Kernel counters of the server's system calls.
struct Counters(#[cfg(target_os = "linux")] Vec<crate::process::SyscallCount>);

impl Counters {
    fn total(&self) -> Option<u64> {
        #[cfg(target_os = "linux")]
        return syscalls::total(&self.0);
        #[cfg(not(target_os = "linux"))]
        None
    }
}

impl Run<'_> {
    /// Starts connection `i`: a nonblocking socket and connect(2), which returns `EINPROGRESS`
    /// while the handshake is on its way; epoll reports it writable once it is established.
    fn open(&mut self, i: usize) -> io::Result<()> {
        let addr = self.config.addr;
        let socket = Socket::new(Domain::for_address(&addr), Type::STREAM.nonblocking(), None)?;
        self.opened += 1;
        if let Some(source) = self.source_address() {
            // Let connect pick the port for the whole 4-tuple, not bind for the address alone.
            socket.set_bind_address_no_port(true)?;
            socket.bind(&SockAddr::from(source))?;
        }
        let conn = &mut self.conns[i];
        conn.started = Instant::now();
        if let Err(e) = socket.connect_nonblocking(&SockAddr::from(addr)) {
            return self.fail(i, &crate::error::context("connect", Some(addr), e), false);
        }
        self.epoll.add(&socket, Token(i), Interest::READABLE.and_writable().edge_triggered())?;
        let conn = &mut self.conns[i];
        conn.socket = Some(socket);
        conn.connected = false;
        conn.draining = false;
        (conn.tx, conn.rx, conn.limit) = (0, 0, 0);
        Ok(())
    }

    /// connrate against 127.0.0.1 would run out of ports: each closed connection leaves our side in
    /// TIME-WAIT for 60 s, holding one of the ~28,000 ephemeral ports toward the server's address,
    /// so after a couple of seconds every connect waits for a port. The whole 127.0.0.0/8 is
    /// loopback, so connections go out from 127.0.0.2 to 127.0.0.251 in turn, each with its own
    /// set of ports. IPv6 has one loopback address (::1/128), so against [::1] every connection
    /// goes out from ::1; there connect reuses ports in TIME-WAIT when net.ipv4.tcp_tw_reuse
    /// allows it (it covers IPv6 too; its default, 2, allows it on loopback only).
    fn source_address(&self) -> Option<SocketAddr> {
        let std::net::IpAddr::V4(ip) = self.config.addr.ip() else { return None };
        if self.config.mode != Mode::Connrate || !ip.is_loopback() {
            return None;
        }
        Some(SocketAddr::from(([127, 0, 0, 2 + (self.opened % 250) as u8], 0)))
    }

    /// An epoll event for connection `i`.
    fn ready(&mut self, event: Readiness) -> io::Result<()> {
        let i = event.token.0;
        let Some(socket) = &self.conns[i].socket else { return Ok(()) };
        if !self.conns[i].connected {
            // The handshake ended: SO_ERROR says how.
            match socket.take_error() {
                Ok(None) => {}
                Ok(Some(e)) | Err(e) => {
                    let e = crate::error::context("connect", Some(self.config.addr), e);
                    return self.fail(i, &e, true);
                }
            }
            if !(event.writable || event.error || event.hangup) {
                return Ok(());
            }
            let _ = socket.set_nodelay(true);
            let conn = &mut self.conns[i];
            conn.connected = true;
            conn.limit = match self.config.mode {
                Mode::Bulk => self.window,
                _ => self.config.size as u64,
            };
            if self.config.mode == Mode::Pingpong {
                conn.started = Instant::now();
            }
        }
        self.pump(i)
    }

    /// Reads what is outstanding, checks it, advances the mode's state, writes what is allowed.
    fn pump(&mut self, i: usize) -> io::Result<()> {
        let size = self.config.size as u64;
        loop {
            let conn = &self.conns[i];
            let Some(socket) = &conn.socket else { return Ok(()) };
            if conn.draining {
                match socket.recv(&mut self.buf) {
                    Ok(0) => return self.connrate_done(i),
                    Ok(n) => {
                        self.mismatches += 1;
                        let msg = format!("{n} extra bytes came after the echo");
                        return self.fail(i, &io::Error::new(io::ErrorKind::InvalidData, msg), false);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return self.fail(i, &e, false),
                }
            }
            if conn.rx == conn.tx {
                break; // nothing outstanding: whatever more arrives comes with a new edge
            }
            let want = ((conn.tx - conn.rx) as usize).min(RECV_BUF);
            match socket.recv(&mut self.buf[..want]) {
                Ok(0) => {
                    let e = io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection");
                    return self.fail(i, &e, false);
                }
                Ok(n) => {
                    if self.buf[..n] != *self.pattern.at(conn.base + conn.rx, n) {
                        self.mismatches += 1;
                        let e = io::Error::new(io::ErrorKind::InvalidData, "echoed bytes differ from those sent");
                        return self.fail(i, &e, false);
                    }
                    self.conns[i].rx += n as u64;
                    self.bytes += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.fail(i, &e, false),
            }
        }
        let now = Instant::now();
        let ending = self.ending;
        let conn = &mut self.conns[i];
        match self.config.mode {
            Mode::Pingpong if conn.rx == conn.limit && conn.rx > 0 && conn.rx == conn.tx => {
                let _ = self.hist.record(duration_ns(now - conn.started));
                self.round_trips += 1;
                conn.served = true;
                if !ending {
                    conn.limit += size;
                    conn.started = now;
                }
            }
            Mode::Bulk => {
                // Served means "some echo came back", also when it arrives in the grace period
                // (on a loaded machine the first echo of a short run can come after the deadline).
                conn.served |= conn.rx > 0;
                if !ending {
                    conn.limit = conn.rx + self.window;
                }
            }
            Mode::Connrate if conn.rx == size && !conn.draining => {
                // The echo is complete; it must also be all there is. Send our FIN and read on
                // until the server's: bytes before it are extra (a mismatch), its FIN ends the
                // connection (see `connrate_done`).
                let _ = self.hist.record(duration_ns(now - conn.started));
                conn.draining = true;
                if let Some(socket) = &conn.socket {
                    if let Err(e) = socket.shutdown(std::net::Shutdown::Write) {
                        return self.fail(i, &e, false);
                    }
                }
                return self.pump(i);
            }
            _ => {}
        }
        while let Some(socket) = &self.conns[i].socket {
            let conn = &self.conns[i];
            if conn.tx >= conn.limit {
                break;
            }
            let len = (conn.limit - conn.tx).min(size) as usize;
            match socket.send(self.pattern.at(conn.base + conn.tx, len)) {
                Ok(n) => self.conns[i].tx += n as u64,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.fail(i, &e, false),
            }
        }
        Ok(())
    }

    /// connrate: the server closed after exactly the echo. Count the connection and start over.
    fn connrate_done(&mut self, i: usize) -> io::Result<()> {
        self.connections += 1;
        let conn = &mut self.conns[i];
        conn.served = true;
        conn.draining = false;
        if let Some(socket) = conn.socket.take() {
            socket.close()?;
        }
        conn.tx = 0;
        conn.rx = 0;
        if self.ending { Ok(()) } else { self.open(i) }
    }

    /// Connection `i` failed: count it, close it, and (connrate, before the end) start over.
    fn fail(&mut self, i: usize, err: &io::Error, reopen: bool) -> io::Result<()> {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(err.to_string());
        }
        let conn = &mut self.conns[i];
        self.lost += conn.tx - conn.rx;
        (conn.tx, conn.rx, conn.limit) = (0, 0, 0);
        conn.socket = None;
        if reopen && self.config.mode == Mode::Connrate && !self.ending {
            return self.open(i);
        }
        Ok(())
    }

    /// The duration is over: no new rounds, writes or connections; outstanding echoes may finish.
    fn stop_offering(&mut self) {
        for conn in &mut self.conns {
            conn.limit = conn.limit.min(conn.tx);
            if !conn.connected {
                conn.socket = None;
            }
        }
    }

    /// Every connection has received all it sent.
    fn quiet(&self) -> bool {
        self.conns.iter().all(|c| c.socket.is_none() || (c.rx == c.tx && !c.draining))
    }

    fn progress(&self, elapsed: Duration) -> Progress {
        Progress {
            elapsed,
            round_trips: self.round_trips,
            connections: self.connections,
            bytes: self.bytes,
            errors: self.errors + self.mismatches,
        }
    }
}

fn duration_ns(d: Duration) -> u64 {
    d.as_nanos().clamp(1, u64::MAX as u128) as u64
}
