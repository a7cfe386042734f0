//! The datagram echo (UDP, Unix datagram): no listen, no accept, no connection to close. Each
//! datagram carries its sender's address, and the echo goes back to that address.
//!
//! ```text
//! loop {
//!     (data, from) = recvfrom(sock, 2048, MSG_TRUNC)   // one whole datagram; the real length
//!     sendto(sock, data, from)                          // one datagram back
//! }
//! ```
//!
//! A datagram longer than the buffer is cut by the kernel and the rest is gone; `MSG_TRUNC`
//! makes recvfrom return the real length, so the server can say how much was lost (and echoes
//! what it kept). Two models serve datagrams: `iterative` (the loop above, blocking) and `epoll`
//! (one thread, nonblocking, reading until `EAGAIN` on each wake-up). The others exist to serve
//! many *connections* at once, and a datagram socket has none, so they refuse it.
//!
//! Stop: the stop switch shuts the socket down, which wakes a blocked recvfrom (it returns 0)
//! and makes epoll report it readable; the loop then sees the request.

use std::io;
use std::sync::Arc;

use super::config::{Model, ServerConfig};
use super::endpoint::Datagram;
use super::event::{Event, Sink};
use super::stop::Stop;
use crate::{SockAddr, UnixName};

/// Serves datagrams with `config.model` (iterative or epoll) until `stop` is requested.
pub fn serve(sock: &Datagram, config: &ServerConfig, stop: &Arc<Stop>, sink: &Sink) -> io::Result<()> {
    let mut guard = Guard::new(sock, config.udp_rate);
    let result = match config.model {
        Model::Iterative => serve_blocking(sock, config, stop, sink, &mut guard),
        #[cfg(socklab_epoll)]
        Model::Epoll => serve_epoll(sock, config, stop, sink, &mut guard),
        other => Err(refused(other)),
    };
    let counts: Vec<(DropReason, u64)> =
        DropReason::ALL.iter().map(|d| (*d, guard.counts[*d as usize])).filter(|c| c.1 > 0).collect();
    if !counts.is_empty() {
        sink(&Event::DropSummary(&counts));
    }
    result
}

/// Why a UDP datagram went unanswered: an answer would start a loop. A UDP echo server answers
/// whatever address a datagram claims to come from, and UDP's source address is not checked by
/// anyone, so one forged datagram can make it answer itself, or another server that answers
/// everything, for ever (the echo/chargen loop of CVE-1999-0103).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The source is this server's own port on a local address: the answer would come back to it.
    OwnPort,
    /// The source port is 0, where nobody can receive (sendto would fail with EINVAL).
    PortZero,
    /// The source is one of the small services that answer everything (echo 7, discard 9,
    /// daytime 13, chargen 19, time 37), which inetd refuses to answer for the same reason.
    SmallService,
    /// The source already had its `--udp-rate` answers this second.
    Rate,
}

impl DropReason {
    /// Every reason, in the order the summary lists them.
    pub const ALL: [DropReason; 4] =
        [DropReason::OwnPort, DropReason::PortZero, DropReason::SmallService, DropReason::Rate];

    /// A short name, for JSON and the summary.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::OwnPort => "own_port",
            DropReason::PortZero => "port_0",
            DropReason::SmallService => "small_service",
            DropReason::Rate => "rate",
        }
    }

    /// Why such a datagram is not answered, in a sentence.
    pub fn why(self) -> &'static str {
        match self {
            DropReason::OwnPort => {
                "its source is this server's own port on a local address (a forged source: answering it would make the server answer itself for ever)"
            }
            DropReason::PortZero => "its source port is 0, which nobody can receive on (sendto would fail with EINVAL)",
            DropReason::SmallService => {
                "its source is a small service that answers everything (echo 7, discard 9, daytime 13, chargen 19, time 37): answering would start an endless loop, so inetd refuses them too"
            }
            DropReason::Rate => {
                "its source already had its --udp-rate answers this second (a loop between two echo servers, or a flood aimed at a forged victim, stops here)"
            }
        }
    }
}

/// The ports of the small services that answer every datagram (as inetd's refusal list).
const SMALL_SERVICES: [u16; 5] = [7, 9, 13, 19, 37];

/// The most sources `--udp-rate` remembers; when that many sent within the last second, a new
/// source is not answered until some are forgotten (memory stays bounded under forged sources).
const RATE_SOURCES: usize = 65_536;

/// Decides which datagrams go unanswered, and counts them.
struct Guard {
    local: Option<std::net::SocketAddr>,
    counts: [u64; DropReason::ALL.len()],
    /// `--udp-rate`: at most this many answers per source address and port in each second.
    rate: Option<u32>,
    /// Per source: when its current second began, and the answers it got in it.
    windows: std::collections::HashMap<std::net::SocketAddr, (std::time::Instant, u32)>,
}

impl Guard {
    fn new(sock: &Datagram, rate: Option<u32>) -> Guard {
        let local = sock.as_ref().local_addr().ok().and_then(|a| a.as_socket());
        Guard { local, counts: [0; DropReason::ALL.len()], rate, windows: std::collections::HashMap::new() }
    }

    /// Why a datagram from `from` must not be answered, if it must not.
    fn check(&mut self, from: &SockAddr) -> Option<DropReason> {
        let (Some(from), Some(local)) = (from.as_socket(), self.local) else { return None };
        let why = self.never_answered(from, local);
        if why.is_some() {
            return why;
        }
        let limit = self.rate?;
        // Fixed one-second windows per source: one forged datagram bouncing between two echo
        // servers goes round tens of thousands of times a second, so it meets the limit within
        // a fraction of a second; one drop ends the loop.
        let now = std::time::Instant::now();
        let second = std::time::Duration::from_secs(1);
        if self.windows.len() >= RATE_SOURCES && !self.windows.contains_key(&from) {
            self.windows.retain(|_, (start, _)| now.duration_since(*start) < second);
            if self.windows.len() >= RATE_SOURCES {
                return Some(DropReason::Rate);
            }
        }
        let (start, answered) = self.windows.entry(from).or_insert((now, 0));
        if now.duration_since(*start) >= second {
            (*start, *answered) = (now, 0);
        }
        if *answered >= limit {
            return Some(DropReason::Rate);
        }
        *answered += 1;
        None
    }

    /// The sources never answered, whatever the rate: see [`DropReason`].
    fn never_answered(&self, from: std::net::SocketAddr, local: std::net::SocketAddr) -> Option<DropReason> {
        if from.port() == 0 {
            return Some(DropReason::PortZero);
        }
        if SMALL_SERVICES.contains(&from.port()) {
            return Some(DropReason::SmallService);
        }
        if from.port() == local.port() && self.is_local(from.ip(), local.ip()) {
            return Some(DropReason::OwnPort);
        }
        None
    }

    /// Whether `ip` is one of this machine's addresses: loopback, the bound address, or (bound to
    /// the wildcard) an address a socket can bind (the kernel says EADDRNOTAVAIL for any other).
    /// Asked only for datagrams from the server's own port number, which are rare.
    fn is_local(&self, ip: std::net::IpAddr, bound: std::net::IpAddr) -> bool {
        let ip = match ip {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
            v4 => v4,
        };
        ip.is_loopback()
            || ip.is_unspecified()
            || ip == bound
            || (bound.is_unspecified() && crate::UdpSocket::bind(&std::net::SocketAddr::new(ip, 0), None).is_ok())
    }
}

/// The error for a model that serves connections only.
pub fn refused(model: Model) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "the {} model serves connections, and a datagram socket (UDP, Unix datagram) has none; use --model \
             iterative or --model epoll",
            model.name()
        ),
    )
}

/// The blocking loop: one datagram at a time.
fn serve_blocking(
    sock: &Datagram,
    config: &ServerConfig,
    stop: &Stop,
    sink: &Sink,
    guard: &mut Guard,
) -> io::Result<()> {
    let mut buf = vec![0u8; config.buffer()];
    stop.serving(); // set up (no system call): --ready-file is written now
    loop {
        let got = sock.recv_from(&mut buf);
        if stop.requested() {
            return Ok(());
        }
        let (len, from) = got?;
        echo_one(sock, &buf, len, &from, sink, guard);
    }
}

/// One thread, nonblocking, epoll: on each wake-up, every queued datagram until `EAGAIN`.
#[cfg(socklab_epoll)]
fn serve_epoll(sock: &Datagram, config: &ServerConfig, stop: &Stop, sink: &Sink, guard: &mut Guard) -> io::Result<()> {
    use crate::ready::{Epoll, Events, Interest, Token};
    sock.as_ref().set_nonblocking(true)?;
    let epoll = Epoll::new()?;
    epoll.add(sock, Token(0), Interest::READABLE)?;
    stop.serving(); // the epoll instance is set up (no system call): --ready-file is written now
    let mut events = Events::with_capacity(1);
    let mut buf = vec![0u8; config.buffer()];
    loop {
        epoll.wait(&mut events, None)?;
        if stop.requested() {
            return Ok(());
        }
        loop {
            match sock.recv_from(&mut buf) {
                Ok((len, from)) => echo_one(sock, &buf, len, &from, sink, guard),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
            if stop.requested() {
                return Ok(());
            }
        }
    }
}

/// Echoes one received datagram (what fitted of it) to its sender.
fn echo_one(sock: &Datagram, buf: &[u8], len: usize, from: &SockAddr, sink: &Sink, guard: &mut Guard) {
    if let Some(reason) = guard.check(from) {
        let count = &mut guard.counts[reason as usize];
        *count += 1;
        // Said once per reason: a flood of forged datagrams must not become a flood of lines.
        if *count == 1 {
            sink(&Event::DatagramDropped(*from, reason));
        }
        return;
    }
    let kept = len.min(buf.len());
    if len > kept {
        sink(&Event::Truncated(*from, kept, len));
    }
    sink(&Event::ServerReceived(*from, &[&buf[..kept]]));
    if from.as_unix() == Some(UnixName::Unnamed) {
        // A Unix datagram client that never bound a name can send, but cannot be answered.
        let e = io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            "the sender has no name to reply to (a Unix datagram client must bind, e.g. autobind)",
        );
        sink(&Event::ConnectionError(*from, &e));
        return;
    }
    sink(&Event::ServerSending(*from, &[&buf[..kept]]));
    if let Err(e) = sock.send_to(&buf[..kept], from) {
        // The reply is lost (EAGAIN: our send buffer is full; ECONNREFUSED: the sender's Unix
        // socket is gone). Datagrams are independent: serve the next one.
        sink(&Event::ConnectionError(*from, &e));
    }
}
