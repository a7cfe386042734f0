//! Load with nothing lost: a thousand connections of seeded pseudo-random data in random-sized
//! writes, verified byte for byte; and (with SOCKLAB_LONG=1) a 60 s soak of mixed traffic with no
//! fd or memory growth.
//!
//! The load client is one thread driving every connection with poll(2) (socklab's own wrapper),
//! non-blocking std sockets as the independent peer. Data is generated and verified as a stream
//! per connection (xorshift seeded by the connection's number), so memory stays small however
//! many bytes go through.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use socklab::sys::{POLLERR, POLLHUP, POLLIN, POLLOUT, PollFd, poll};

use crate::harness::{self, Server, long, models};

/// A seeded byte stream: the same seed gives the same bytes, consumed in any chunk sizes.
#[derive(Clone)]
struct Stream(u64);

impl Stream {
    fn new(seed: u64) -> Stream {
        Stream(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.next() as u8;
        }
    }
}

/// One connection of the load test.
struct Conn {
    id: u64,
    sock: TcpStream,
    total: usize,
    sent: usize,
    received: usize,
    outgoing: Stream,
    expected: Stream,
    sizes: Stream,
    /// Bytes generated but not yet taken by the kernel (a short write).
    pending: Vec<u8>,
}

impl Conn {
    fn open(addr: SocketAddr, id: u64, total: usize) -> Conn {
        let sock = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connection {id}: connect: {e}"));
        sock.set_nonblocking(true).unwrap();
        let conn = Conn {
            id,
            sock,
            total,
            sent: 0,
            received: 0,
            outgoing: Stream::new(id),
            expected: Stream::new(id),
            sizes: Stream::new(!id),
            pending: Vec::new(),
        };
        if total == 0 {
            conn.sock.shutdown(Shutdown::Write).unwrap();
        }
        conn
    }

    /// Writes as much as the kernel takes, in random-sized writes (1 byte to 64 KiB).
    fn write_some(&mut self) -> usize {
        let mut moved = 0;
        while self.sent < self.total {
            if self.pending.is_empty() {
                // Mostly small writes, sometimes large ones: sizes 1..=2^k for k in 0..=16.
                let k = self.sizes.next() % 17;
                let size = (1 + self.sizes.next() % (1 << k)) as usize;
                self.pending.resize(size.min(self.total - self.sent), 0);
                self.outgoing.fill(&mut self.pending);
            }
            match self.sock.write(&self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                    self.sent += n;
                    moved += n;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("connection {}: send after {} bytes: {e}", self.id, self.sent),
            }
        }
        if self.sent == self.total && moved > 0 {
            self.sock.shutdown(Shutdown::Write).unwrap(); // our FIN: the server's recv sees 0 at the end
        }
        moved
    }

    /// Reads what is there and checks it; returns (bytes, finished).
    fn read_some(&mut self, buf: &mut [u8]) -> (usize, bool) {
        let mut moved = 0;
        loop {
            match self.sock.read(buf) {
                Ok(0) => {
                    assert_eq!(self.received, self.total, "connection {}: EOF after {} bytes", self.id, self.received);
                    return (moved, true);
                }
                Ok(n) => {
                    for (i, &b) in buf[..n].iter().enumerate() {
                        let want = self.expected.next() as u8;
                        assert!(
                            b == want,
                            "connection {}: byte {} is {b:#04x}, sent {want:#04x}",
                            self.id,
                            self.received + i
                        );
                    }
                    self.received += n;
                    moved += n;
                    assert!(self.received <= self.total, "connection {}: more came back than was sent", self.id);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return (moved, false),
                Err(e) => panic!("connection {}: recv after {} bytes: {e}", self.id, self.received),
            }
        }
    }
}

/// Figures of one load run.
#[derive(Debug)]
pub struct Figures {
    pub connections: u64,
    pub bytes_each_way: u64,
    pub elapsed: Duration,
}

/// Runs `conns` connections of `each` bytes with at most `concurrency` open at once; panics on
/// any lost or corrupted byte, or when nothing moves for 30 s.
pub fn load(addr: SocketAddr, conns: u64, each: usize, concurrency: usize) -> Figures {
    let started = Instant::now();
    let mut open: Vec<Conn> = Vec::new();
    let (mut next, mut done) = (0u64, 0u64);
    let mut buf = vec![0u8; 64 << 10];
    let mut last_progress = Instant::now();
    let mut bytes = 0u64;
    while done < conns {
        while open.len() < concurrency && next < conns {
            open.push(Conn::open(addr, next, each));
            next += 1;
        }
        let mut fds: Vec<PollFd> = open
            .iter()
            .map(|c| PollFd {
                fd: c.sock.as_raw_fd(),
                events: POLLIN | if c.sent < c.total { POLLOUT } else { 0 },
                revents: 0,
            })
            .collect();
        poll(&mut fds, 1000).expect("poll");
        let mut finished = Vec::new();
        for (i, fd) in fds.iter().enumerate() {
            let conn = &mut open[i];
            if fd.revents & POLLOUT != 0 {
                let n = conn.write_some();
                if n > 0 {
                    last_progress = Instant::now();
                }
            }
            if fd.revents & (POLLIN | POLLHUP | POLLERR) != 0 {
                let (n, end) = conn.read_some(&mut buf);
                bytes += n as u64;
                if n > 0 || end {
                    last_progress = Instant::now();
                }
                if end {
                    finished.push(i);
                }
            }
        }
        for i in finished.into_iter().rev() {
            open.swap_remove(i);
            done += 1;
        }
        assert!(
            last_progress.elapsed() < Duration::from_secs(30),
            "no progress for 30 s: {done} of {conns} connections done, {} open",
            open.len()
        );
    }
    Figures { connections: conns, bytes_each_way: bytes, elapsed: started.elapsed() }
}

/// 1,000 connections x 32 KiB by default (1 MiB with SOCKLAB_LONG=1), concurrent for every
/// model but the iterative one (sequential there), each verified byte for byte.
#[test]
fn thousand_connections_nothing_lost() {
    let each = if long() { 1 << 20 } else { 32 << 10 };
    let have = harness::raise_nofile(4096);
    for model in models() {
        let concurrency = if model.one_at_a_time() { 1 } else { 1000.min(have.saturating_sub(64) as usize / 2) };
        let server = Server::start(&model, &["--quiet", "--backlog", "1024", "--buffer", "16384"]);
        let figures = load(server.addr, 1000, each, concurrency);
        let mib = figures.bytes_each_way as f64 / (1 << 20) as f64;
        eprintln!(
            "[{}] load: {} connections ({} at once) x {} KiB: {mib:.0} MiB echoed, 0 lost or corrupted, in {:.2?} ({:.0} MiB/s)",
            model.name,
            figures.connections,
            concurrency,
            each >> 10,
            figures.elapsed,
            mib / figures.elapsed.as_secs_f64()
        );
        assert_eq!(figures.bytes_each_way, 1000 * each as u64);
        assert!(server.out.matching(" ended").is_empty(), "[{}] {}", model.name, server.out.dump());
        server.finish();
    }
}

/// The soak (SOCKLAB_LONG=1; SOCKLAB_SOAK_SECS overrides the 60 s): connect/echo/close churn of
/// random sizes plus long-lived streams, sampling the server's fds and memory every second. No
/// growth between the first and the last 10 s, nothing lost, fds back to idle at the end.
#[test]
fn soak_mixed_traffic() {
    if !long() {
        crate::common::skip("the 60 s soak runs with SOCKLAB_LONG=1");
        return;
    }
    let secs: u64 = std::env::var("SOCKLAB_SOAK_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    for model in models() {
        let server = Server::start(&model, &["--quiet", "--backlog", "256"]);
        let pid = server.pid();
        let stop = Arc::new(AtomicBool::new(false));
        let (sessions, bytes) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (churners, streams) = if model.one_at_a_time() { (1, 0) } else { (6, 2) };
        let mut workers = Vec::new();
        for w in 0..churners + streams {
            let (stop, sessions, bytes, addr) = (stop.clone(), sessions.clone(), bytes.clone(), server.addr);
            workers.push(thread::spawn(move || {
                let mut sizes = Stream::new(1000 + w as u64);
                let mut long_lived = (w >= churners).then(|| harness::connect(addr));
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    match long_lived.as_mut() {
                        Some(s) => {
                            let data = crate::common::pattern(64 << 10, n);
                            assert!(harness::echo_on(s, &data) == data, "long-lived stream {w}: echo differs");
                            bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                        }
                        None => {
                            // Mostly tiny sessions, one in eight up to 2 MiB.
                            let size =
                                if sizes.next() % 8 == 0 { sizes.next() % (2 << 20) } else { sizes.next() % 512 };
                            let data = crate::common::pattern(size as usize, n);
                            assert!(crate::common::echo_with_std(addr, &data) == data, "churn {w}: echo differs");
                            bytes.fetch_add(size, Ordering::Relaxed);
                        }
                    }
                    sessions.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        let mut samples = Vec::new();
        let started = Instant::now();
        for second in 1..=secs {
            // Sampling once a second is the point here, not synchronisation.
            thread::sleep((started + Duration::from_secs(second)).saturating_duration_since(Instant::now()));
            samples.push((harness::fd_count(pid), harness::rss_kib_tree(pid)));
        }
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.join().expect("a soak worker failed");
        }
        let window = 10.min(samples.len() / 2).max(1);
        let first = &samples[..window];
        let last = &samples[samples.len() - window..];
        let max = |s: &[(usize, u64)], f: fn(&(usize, u64)) -> u64| s.iter().map(f).max().unwrap_or(0);
        let (fd_first, fd_last) = (max(first, |s| s.0 as u64), max(last, |s| s.0 as u64));
        let (rss_first, rss_last) = (max(first, |s| s.1), max(last, |s| s.1));
        eprintln!(
            "[{}] soak {secs} s: {} sessions, {} MiB echoed; fds max {fd_first} (first 10 s) / {fd_last} (last 10 s); memory (PSS) max {rss_first} / {rss_last} KiB",
            model.name,
            sessions.load(Ordering::Relaxed),
            bytes.load(Ordering::Relaxed) >> 20
        );
        // Connections come and go, so the count moves with them; growth beyond the number of
        // clients at once would be a leak.
        assert!(fd_last <= fd_first + (churners + streams) as u64, "[{}] fds grew", model.name);
        assert!(rss_last <= rss_first + 2048, "[{}] RSS grew from {rss_first} to {rss_last} KiB", model.name);
        server.finish();
    }
}
