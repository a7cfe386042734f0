//! TCP under a bad network, seen: `socklab walkthrough --scenario NAME`.
//!
//! Each scenario runs a client in namespace A and a server in namespace B ([`crate::netns`]),
//! with socklab's packet queue in A dropping, holding back or copying one chosen segment, and
//! records side by side:
//! - the segments on A's veth (an `AF_PACKET` capture there: what `tcpdump -i sl-a` shows);
//! - what the queue did (a segment it dropped before the veth is on the timeline only as its
//!   note: no capture on the veth can show it);
//! - both sides' sockets through sock_diag with `tcp_info` (state, queues, retransmits, backoff,
//!   rto, cwnd, ssthresh, unacked, sacked, lost), sampled about every millisecond;
//! - what the client and server code saw (connect's duration, a send that blocked);
//! - each side's TCP counters (`nstat`'s names) before and after.
//!
//! It says beforehand what it will do ([`Scenario::plan`]) and afterwards what the kernel did,
//! checked against what the textbook expects ([`Check`]); where the kernel did something else, the
//! check says so instead of the textbook's line.

use std::io;
use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::capture::{Capture, Captured, Flags};
use crate::clock::monotonic_ns;
use crate::diag::{Diag, TcpInfo};
use crate::netns::{self, ADDR_A, ADDR_B, Action, Did, Dir, Fault, Kind, Pair};
use crate::tcp::{TcpListener, TcpStream};
use crate::timeline::{Event, Side, Timeline, What};

/// The server's port (the namespaces are private, so it is always free).
pub const PORT: u16 = 5000;

/// No phase of a scenario waits longer than this (never hang).
const LIMIT: Duration = Duration::from_secs(20);

/// One story of TCP on a bad link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// The client's first SYN is dropped.
    SynLost,
    /// The server's first SYN-ACK is dropped.
    SynackLost,
    /// The client's data segment is dropped, and its first retransmission too.
    DataLost,
    /// One segment of a burst is dropped: duplicate ACKs, SACK, fast retransmit.
    FastRetransmit,
    /// The server stops reading: its window closes, the client probes it.
    ZeroWindow,
    /// The client's FIN is dropped.
    FinLost,
    /// The client's second data segment is held back until its third has passed.
    Reorder,
    /// The client's first data segment arrives twice.
    Duplicate,
}

/// Every scenario by name, in the order of the list.
pub const ALL: [(&str, Scenario); 8] = [
    ("syn-lost", Scenario::SynLost),
    ("synack-lost", Scenario::SynackLost),
    ("data-lost", Scenario::DataLost),
    ("fast-retransmit", Scenario::FastRetransmit),
    ("zero-window", Scenario::ZeroWindow),
    ("fin-lost", Scenario::FinLost),
    ("reorder", Scenario::Reorder),
    ("duplicate", Scenario::Duplicate),
];

impl FromStr for Scenario {
    type Err = String;

    fn from_str(text: &str) -> Result<Scenario, String> {
        ALL.iter().find(|(n, _)| *n == text.trim()).map(|(_, s)| *s).ok_or_else(|| {
            let names: Vec<&str> = ALL.iter().map(|(n, _)| *n).collect();
            format!("unknown scenario '{text}': use one of {}", names.join(", "))
        })
    }
}

impl Scenario {
    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        ALL.iter().find(|(_, s)| *s == self).map_or("?", |(n, _)| n)
    }

    fn faults(self) -> Vec<Fault> {
        let f = |action, kind, dir, nth| Fault { action, kind, dir: Some(dir), nth };
        match self {
            Scenario::SynLost => vec![f(Action::Drop, Kind::Syn, Dir::Out, 1)],
            Scenario::SynackLost => vec![f(Action::Drop, Kind::SynAck, Dir::In, 1)],
            Scenario::DataLost => {
                vec![f(Action::Drop, Kind::Data, Dir::Out, 1), f(Action::Drop, Kind::Data, Dir::Out, 2)]
            }
            Scenario::FastRetransmit => vec![f(Action::Drop, Kind::Data, Dir::Out, 4)],
            Scenario::ZeroWindow => vec![],
            Scenario::FinLost => vec![f(Action::Drop, Kind::Fin, Dir::Out, 1)],
            Scenario::Reorder => vec![f(Action::Reorder, Kind::Data, Dir::Out, 2)],
            Scenario::Duplicate => vec![f(Action::Duplicate, Kind::Data, Dir::Out, 1)],
        }
    }

    /// A delay each way (socklab's queue), so the recovery lasts long enough for tcp_info samples
    /// (about one a millisecond) to see cwnd change.
    fn delay(self) -> Option<Duration> {
        (self == Scenario::FastRetransmit).then_some(Duration::from_millis(50))
    }

    /// Sysctls set in a namespace for the story to be the textbook's, each said in the plan.
    fn sysctls(self) -> &'static [(netns::Side, &'static str, &'static str)] {
        match self {
            // Tail loss probes (RFC 8985) would retransmit the lost segment before the RTO: off,
            // so the retransmission timer is seen alone.
            Scenario::DataLost | Scenario::FinLost => &[(netns::Side::A, "net.ipv4.tcp_early_retrans", "0")],
            _ => &[],
        }
    }

    /// What the scenario will do and what the textbook expects, said before it runs.
    pub fn plan(self) -> String {
        let faults: Vec<String> = self.faults().iter().map(|f| f.to_string()).collect();
        let queue = if faults.is_empty() { "no packet faults".to_string() } else { faults.join(", ") };
        let sysctls: Vec<String> =
            self.sysctls().iter().map(|(side, k, v)| format!("{k}={v} in side {side:?} (configured)")).collect();
        let story = match self {
            Scenario::SynLost => {
                "the client's first SYN is dropped before it reaches the link. Expected: connect() waits; the kernel \
                 sends the SYN again after its initial retransmission timeout, 1 s (RFC 6298 2.1, Linux's \
                 TCP_TIMEOUT_INIT), and connect() returns about 1 s late"
            }
            Scenario::SynackLost => {
                "the server's first SYN-ACK is dropped in side A after crossing the link. Expected: both sides wait \
                 about 1 s; the client's SYN is sent again and/or the server's SYN-ACK is; meanwhile the server has \
                 a half-open request (SYN-RECV), not yet in the accept queue"
            }
            Scenario::DataLost => {
                "the client's data segment and its first retransmission are dropped. Expected: the retransmission \
                 timer fires (about 200 ms here: RTO's floor), fires again after twice as long (exponential \
                 backoff: rto doubles), and the third copy gets through"
            }
            Scenario::FastRetransmit => {
                "the client sends 64 KiB at once and its 4th data segment is dropped. Expected: the segments after \
                 it arrive; the server answers each with a duplicate ACK carrying SACK blocks; after three the \
                 client retransmits the hole before any timeout (fast retransmit) and halves cwnd (ssthresh)"
            }
            Scenario::ZeroWindow => {
                "the server makes its receive buffer small and does not read for 2 s while the client sends 256 KiB. \
                 Expected: the server's window shrinks to 0, the client's send() blocks when its own buffer is \
                 full, the client sends window probes (backing off), and everything flows once the server reads"
            }
            Scenario::FinLost => {
                "the client's FIN is dropped. Expected: close() returns at once (the FIN is the kernel's job); the \
                 client stays in FIN-WAIT-1 until the retransmitted FIN is acknowledged; the server sees the end \
                 of the stream only then"
            }
            Scenario::Reorder => {
                "the client sends three 1000-byte messages; the second is held back until the third has passed. \
                 Expected: the server's TCP answers the early third with a duplicate ACK (SACK) and queues it \
                 out of order; the application reads the bytes in order, never knowing"
            }
            Scenario::Duplicate => {
                "the client's first data segment is let through twice. Expected: the server's TCP drops the copy \
                 and answers it with a D-SACK (RFC 2883); the application reads each byte once"
            }
        };
        let mut plan = format!("scenario {}: {story}. Queue in side A: {queue}", self.name());
        if let Some(d) = self.delay() {
            plan.push_str(&format!(", every packet delayed {} ms each way (configured)", d.as_millis()));
        }
        if !sysctls.is_empty() {
            plan.push_str(&format!("; {}", sysctls.join(", ")));
        }
        plan
    }
}

/// A counter of one side, before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    /// Which namespace counted.
    pub side: netns::Side,
    /// `nstat`'s name: `TcpRetransSegs`, `TcpExtTCPTimeouts`...
    pub name: String,
    /// Before the scenario.
    pub before: u64,
    /// After it.
    pub after: u64,
}

/// One expectation and what was observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The textbook's expectation.
    pub expected: String,
    /// What this run showed.
    pub observed: String,
    /// Whether the two agree.
    pub agrees: bool,
}

/// A scenario's record.
#[derive(Debug)]
pub struct Outcome {
    /// Everything, in time order (side A is the timeline's client, side B its server).
    pub timeline: Timeline,
    /// The counters shown (those the story is about).
    pub counters: Vec<Counter>,
    /// What the queue did.
    pub faults: Vec<netns::Event>,
    /// The expectations checked.
    pub checks: Vec<Check>,
}

/// The counters each scenario reports, for both sides.
const COUNTERS: [&str; 13] = [
    "TcpRetransSegs",
    "TcpExtTCPSynRetrans",
    "TcpExtTCPTimeouts",
    "TcpExtTCPFastRetrans",
    "TcpExtTCPSackRecovery",
    "TcpExtTCPWinProbe",
    "TcpExtTCPLossProbes",
    "TcpExtTCPOFOQueue",
    "TcpExtTCPDSACKOldSent",
    // A reduction the sender took back (it learnt the retransmission was not needed, or undid part).
    "TcpExtTCPFullUndo",
    "TcpExtTCPPartialUndo",
    "TcpExtTCPDSACKUndo",
    "TcpExtTCPLossUndo",
];

/// `None` when this process may run scenarios (root); otherwise what to do, with the command.
pub fn needs_root(scenario: Scenario) -> Option<String> {
    let status = crate::file::read_to_string(std::path::Path::new("/proc/self/status")).unwrap_or_default();
    let uid = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().nth(1));
    (uid != Some("0")).then(|| {
        format!(
            "the {} scenario needs root: it builds two network namespaces, serves a packet queue (CAP_NET_ADMIN) \
             and captures on their link (CAP_NET_RAW). Run: sudo socklab walkthrough --scenario {}",
            scenario.name(),
            scenario.name()
        )
    })
}

/// Runs the scenario in a pair of namespaces of its own (deleted afterwards).
pub fn run(scenario: Scenario) -> io::Result<Outcome> {
    if let Some(why) = needs_root(scenario) {
        return Err(io::Error::new(io::ErrorKind::PermissionDenied, why));
    }
    let mut pair = Pair::create("sl-walk")?;
    run_on(&mut pair, scenario)
}

/// Runs the scenario in `pair` (fresh: its queue and sysctls are set here).
pub fn run_on(pair: &mut Pair, scenario: Scenario) -> io::Result<Outcome> {
    let start_ns = monotonic_ns();
    let mut events = vec![Event { t_ns: start_ns, what: What::Note(scenario.plan()) }];
    for (side, key, value) in scenario.sysctls() {
        pair.sysctl(*side, key, value)?;
    }
    let before = counters(pair)?;
    let index = pair.veth_index(netns::Side::A)?;
    let capture = pair.run_in(netns::Side::A, move || Capture::start_interface(index))??;
    let sampler = Sampler::start(pair)?;
    if let Some(d) = scenario.delay() {
        pair.apply(&[netns::Condition::Delay(d, Duration::ZERO)])?;
    }
    pair.faults(&scenario.faults(), 0.0, 1)?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = pair.spawn_in(netns::Side::B, move || server(scenario, ready_tx))?;
    match ready_rx.recv_timeout(LIMIT) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(io::Error::other("the scenario's server did not start")),
    }
    // Pacing, not synchronisation: one more dump of B's table shows the listener before the SYN.
    std::thread::sleep(Duration::from_millis(10));
    let client = pair.spawn_in(netns::Side::A, move || client(scenario))?;
    let client_result = client.join().map_err(|_| io::Error::other("the scenario's client panicked"))?;
    let server_result = server.join().map_err(|_| io::Error::other("the scenario's server panicked"))?;
    // The last ACKs (and a retransmitted FIN) cross the link after the programs are done.
    sampler.settle(scenario);
    let sampled = sampler.stop();
    let (segments, dropped_frames) = capture.stop();
    let faults = pair.fault_events();
    let after = counters(pair)?;
    events.extend(client_result??);
    events.extend(server_result??);
    events.extend(sampled);
    events.extend(annotate(&segments, &faults));
    if dropped_frames > 0 {
        let note = format!("the capture dropped {dropped_frames} frames: some segments may be missing");
        events.push(Event { t_ns: monotonic_ns(), what: What::Note(note) });
    }
    let counters: Vec<Counter> = [netns::Side::A, netns::Side::B]
        .into_iter()
        .flat_map(|side| {
            let (b, a) = (&before, &after);
            COUNTERS.iter().map(move |name| Counter {
                side,
                name: name.to_string(),
                before: value(b, side, name),
                after: value(a, side, name),
            })
        })
        .collect();
    let checks = checks(scenario, &counters, &faults, &segments, &events);
    let end_ns = monotonic_ns();
    for (side, who) in [(netns::Side::A, "client (side A)"), (netns::Side::B, "server (side B)")] {
        let changed: Vec<String> = counters
            .iter()
            .filter(|c| c.side == side && c.after != c.before)
            .map(|c| format!("{} {} -> {} (+{})", c.name, c.before, c.after, c.after - c.before))
            .collect();
        let text = if changed.is_empty() { "none changed".to_string() } else { changed.join(", ") };
        events.push(Event {
            t_ns: end_ns,
            what: What::Note(format!("counters of the {who}, from nstat's files: {text}")),
        });
    }
    for c in &checks {
        let text = if c.agrees {
            format!("as expected: {}; observed: {}", c.expected, c.observed)
        } else {
            format!("the kernel did something else: expected {}; observed {}", c.expected, c.observed)
        };
        events.push(Event { t_ns: end_ns + 1, what: What::Note(text) });
    }
    events.sort_by_key(|e| e.t_ns);
    let timeline = Timeline { host: IpAddr::V4(ADDR_B), port: PORT, start_ns, events, capture_error: None };
    Ok(Outcome { timeline, counters, faults, checks })
}

type Counters = [(netns::Side, Vec<(String, u64)>); 2];

fn counters(pair: &Pair) -> io::Result<Counters> {
    Ok([(netns::Side::A, pair.counters(netns::Side::A)?), (netns::Side::B, pair.counters(netns::Side::B)?)])
}

fn value(all: &Counters, side: netns::Side, name: &str) -> u64 {
    all.iter()
        .find(|(s, _)| *s == side)
        .and_then(|(_, list)| list.iter().find(|(n, _)| n == name))
        .map_or(0, |(_, v)| *v)
}

fn note(text: String) -> Event {
    Event { t_ns: monotonic_ns(), what: What::Note(text) }
}

/// Side B: listen, accept one connection, then read (and echo) as the scenario wants.
fn server(scenario: Scenario, ready: std::sync::mpsc::Sender<io::Result<()>>) -> io::Result<Vec<Event>> {
    let mut notes = Vec::new();
    let addr = SocketAddr::from((ADDR_B, PORT));
    let listener = match TcpListener::bind(&addr) {
        Ok(l) => l,
        Err(e) => {
            let e = io::Error::from(e);
            let _ = ready.send(Err(io::Error::new(e.kind(), e.to_string())));
            return Err(e);
        }
    };
    if scenario == Scenario::ZeroWindow {
        // A small receive buffer (the connection inherits it): the window closes after a few KiB.
        listener.socket().set_recv_buffer_size(4096)?;
    }
    let _ = ready.send(Ok(()));
    if listener.socket().wait_for(libc::POLLIN, Some(LIMIT))? == 0 {
        return Err(io::Error::new(io::ErrorKind::TimedOut, "no connection reached the server"));
    }
    let (conn, _) = listener.accept()?;
    notes.push(note("server: accept() returned the connection".into()));
    conn.set_read_timeout(Some(LIMIT))?;
    conn.set_write_timeout(Some(LIMIT))?;
    if scenario == Scenario::ZeroWindow {
        notes.push(note("server: not reading for 2 s (configured)".into()));
        std::thread::sleep(Duration::from_secs(2));
        notes.push(note("server: reading now".into()));
    }
    let echo = !matches!(scenario, Scenario::ZeroWindow | Scenario::FastRetransmit);
    let mut buf = vec![0u8; 65536];
    let mut total = 0usize;
    loop {
        let n = conn.recv(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n;
        if echo {
            conn.send_all(&buf[..n])?;
        }
    }
    notes.push(note(format!("server: recv() returned 0 (the client's FIN) after {total} bytes; closing")));
    conn.close()?;
    Ok(notes)
}

/// Side A: connect, then send as the scenario wants.
fn client(scenario: Scenario) -> io::Result<Vec<Event>> {
    let mut notes = Vec::new();
    let addr = SocketAddr::from((ADDR_B, PORT));
    let started = Instant::now();
    let stream = TcpStream::connect(&addr)?;
    let took = started.elapsed();
    notes.push(note(format!("client: connect() returned after {:.3} s", took.as_secs_f64())));
    stream.set_read_timeout(Some(LIMIT))?;
    stream.set_write_timeout(Some(LIMIT))?;
    let mut buf = vec![0u8; 65536];
    match scenario {
        Scenario::FastRetransmit => {
            stream.set_nodelay(true)?;
            stream.send_all(&vec![b'x'; 64 * 1024])?;
            notes.push(note("client: send() of 64 KiB returned (the bytes are in its kernel's buffer)".into()));
        }
        Scenario::ZeroWindow => {
            stream.socket().set_send_buffer_size(8192)?;
            let data = vec![b'z'; 16 * 1024];
            for _ in 0..16 {
                let mut rest = &data[..];
                while !rest.is_empty() {
                    let t = Instant::now();
                    let n = stream.send(rest)?;
                    if t.elapsed() >= Duration::from_millis(100) {
                        notes.push(note(format!(
                            "client: send() blocked {:.3} s: its send buffer was full and the server's window was 0",
                            t.elapsed().as_secs_f64()
                        )));
                    }
                    rest = &rest[n..];
                }
            }
            notes.push(note("client: all 256 KiB handed to the kernel".into()));
        }
        Scenario::Reorder => {
            stream.set_nodelay(true)?;
            for fill in [b'a', b'b', b'c'] {
                stream.send_all(&[fill; 1000])?;
            }
            let mut got = Vec::new();
            while got.len() < 3000 {
                let n = stream.recv(&mut buf)?;
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            let in_order =
                got.len() == 3000 && got[..1000].iter().all(|&b| b == b'a') && got[2000..].iter().all(|&b| b == b'c');
            notes.push(note(format!(
                "client: the echo came back {} ({} bytes: a*1000 b*1000 c*1000 {})",
                if in_order { "in order" } else { "OUT OF ORDER" },
                got.len(),
                if in_order { "as sent" } else { "not as sent" }
            )));
        }
        _ => {
            let t = Instant::now();
            stream.send_all(b"hello")?;
            let mut got = Vec::new();
            while got.len() < 5 {
                let n = stream.recv(&mut buf)?;
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            notes.push(note(format!(
                "client: the echo {:?} came back {:.3} s after send()",
                String::from_utf8_lossy(&got),
                t.elapsed().as_secs_f64()
            )));
        }
    }
    stream.shutdown(std::net::Shutdown::Write)?;
    notes.push(note("client: shutdown(SHUT_WR) returned at once: the FIN is its kernel's job".into()));
    let mut echoed = 0;
    loop {
        let n = stream.recv(&mut buf)?;
        if n == 0 {
            break;
        }
        echoed += n;
    }
    if echoed > 0 {
        notes.push(note(format!("client: read {echoed} more bytes, then the server's FIN")));
    }
    stream.close()?;
    Ok(notes)
}

/// Polls sock_diag (with tcp_info) in both namespaces and records each change.
struct Sampler {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<io::Result<io::Result<Vec<Event>>>>>,
    quiet_a: Arc<AtomicBool>,
}

impl Sampler {
    fn start(pair: &Pair) -> io::Result<Sampler> {
        let stop = Arc::new(AtomicBool::new(false));
        let quiet_a = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        for side in [netns::Side::A, netns::Side::B] {
            let (stop, quiet, ready) = (stop.clone(), quiet_a.clone(), ready_tx.clone());
            threads.push(pair.spawn_in(side, move || sample(side, &stop, &quiet, ready))?);
        }
        // Both tables dumped once (or failed) before anything happens.
        for _ in 0..2 {
            let _ = ready_rx.recv_timeout(Duration::from_secs(5));
        }
        Ok(Sampler { stop, threads, quiet_a })
    }

    /// Waits (at most 3 s) until side A has no connection left but TIME-WAIT or none.
    fn settle(&self, _scenario: Scenario) {
        let until = Instant::now() + Duration::from_secs(3);
        std::thread::sleep(Duration::from_millis(50));
        while Instant::now() < until && !self.quiet_a.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn stop(self) -> Vec<Event> {
        self.stop.store(true, Ordering::Release);
        let mut events = Vec::new();
        for t in self.threads {
            match t.join() {
                Ok(Ok(Ok(e))) => events.extend(e),
                Ok(Ok(Err(e)) | Err(e)) => events.push(note(format!("socket states unavailable: {e}"))),
                Err(_) => events.push(note("socket states unavailable: the sampler panicked".into())),
            }
        }
        events
    }
}

type Key = (SocketAddr, SocketAddr);

fn sample(
    side: netns::Side,
    stop: &AtomicBool,
    quiet: &AtomicBool,
    ready: std::sync::mpsc::Sender<()>,
) -> io::Result<Vec<Event>> {
    let mut ready = Some(ready);
    let mut diag = Diag::open()?;
    let mut events = Vec::new();
    let mut states: std::collections::HashMap<Key, (&'static str, String, u32, u32)> = Default::default();
    let mut infos: std::collections::HashMap<Key, TcpInfo> = Default::default();
    let until = Instant::now() + Duration::from_secs(120);
    while !stop.load(Ordering::Acquire) && Instant::now() < until {
        let sockets = diag.dump_timed(libc::AF_INET, true)?;
        let end_ns = monotonic_ns();
        let mut seen = Vec::new();
        let mut busy = false;
        for (t_ns, s) in sockets.iter().filter(|(_, s)| s.local.port() == PORT || s.remote.port() == PORT) {
            let role = match (s.remote.port() == 0, side) {
                (true, _) => "listener",
                (false, netns::Side::A) => "client",
                (false, netns::Side::B) => "server",
            };
            let key = (s.local, s.remote);
            seen.push(key);
            if role == "client" && s.state != crate::diag::TcpState::TimeWait {
                busy = true;
            }
            let now = (role, s.state.name().to_string(), s.recv_q, s.send_q);
            if states.get(&key) != Some(&now) {
                let what = What::State {
                    role,
                    local: s.local,
                    remote: s.remote,
                    state: now.1.clone(),
                    recv_q: s.recv_q,
                    send_q: s.send_q,
                };
                events.push(Event { t_ns: *t_ns, what });
                states.insert(key, now);
            }
            if let Some(info) = s.info.filter(|_| role != "listener") {
                if let Some(text) = info_change(role, infos.get(&key), &info) {
                    events.push(Event { t_ns: *t_ns, what: What::Note(text) });
                    infos.insert(key, info);
                }
            }
        }
        states.retain(|key, (role, ..)| {
            let keep = seen.contains(key);
            if !keep {
                events.push(Event { t_ns: end_ns, what: What::Gone { role, local: key.0, remote: key.1 } });
            }
            keep
        });
        if side == netns::Side::A {
            quiet.store(!busy, Ordering::Release);
        }
        if let Some(ready) = ready.take() {
            let _ = ready.send(());
        }
        // Pacing: a dump every millisecond or so catches each state that lasts longer.
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(events)
}

const CA_STATES: [&str; 5] = ["Open", "Disorder", "CWR", "Recovery", "Loss"];

/// A tcp_info sample as a note, when something a student watches changed: `client TCP_INFO: cwnd
/// 10 -> 5, ssthresh -> 5, ca_state Open -> Recovery`. The rto counts as changed when it moved by
/// a quarter or more (it follows every RTT sample by a little).
fn info_change(role: &str, old: Option<&TcpInfo>, new: &TcpInfo) -> Option<String> {
    let ssthresh = |v: u32| if v >= 0x7fff_ffff { "-".to_string() } else { v.to_string() };
    let ca = |v: u8| CA_STATES.get(usize::from(v)).map_or(v.to_string(), |s| s.to_string());
    let fields = |i: &TcpInfo| {
        [
            ("retransmits", i.retransmits.to_string()),
            ("backoff", i.backoff.to_string()),
            ("probes", i.probes.to_string()),
            ("rto", format!("{}ms", i.rto_us / 1000)),
            ("cwnd", i.snd_cwnd.to_string()),
            ("ssthresh", ssthresh(i.snd_ssthresh)),
            ("unacked", i.unacked.to_string()),
            ("sacked", i.sacked.to_string()),
            ("lost", i.lost.to_string()),
            ("ca_state", ca(i.ca_state)),
        ]
    };
    let Some(old) = old else {
        let all: Vec<String> = fields(new).iter().map(|(n, v)| format!("{n} {v}")).collect();
        return Some(format!("{role} TCP_INFO: {}", all.join(", ")));
    };
    let rto_moved = {
        let (a, b) = (f64::from(old.rto_us), f64::from(new.rto_us));
        (a - b).abs() >= a.max(1.0) / 4.0
    };
    let changed: Vec<String> = fields(old)
        .iter()
        .zip(fields(new).iter())
        .filter(|((n, a), (_, b))| a != b && (*n != "rto" || rto_moved))
        .map(|((n, a), (_, b))| format!("{n} {a} -> {b}"))
        .collect();
    (!changed.is_empty()).then(|| format!("{role} TCP_INFO: {}", changed.join(", ")))
}

/// Per sender: what it sent so far.
#[derive(Default)]
struct Sent {
    isn: Option<u32>,
    /// One past the highest sequence number sent (SYN and FIN count one).
    next: Option<u32>,
    syn_at: Option<u64>,
    fin_seq: Option<u32>,
    last_ack: Option<u32>,
    dup: u32,
    window: Option<u16>,
}

fn after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// The captured segments as timeline events, each retransmission, duplicate ACK, zero window
/// and window probe named; and what the queue did, as notes at the time it did it.
fn annotate(captured: &[Captured], faults: &[netns::Event]) -> Vec<Event> {
    let from = |ip: IpAddr| if ip == IpAddr::V4(ADDR_A) { Side::Client } else { Side::Server };
    let mut sent = [Sent::default(), Sent::default()];
    let slot = |s: Side| if s == Side::Client { 0 } else { 1 };
    // The ISNs: from any SYN the capture or the queue saw.
    for c in captured {
        if c.segment.flags.has(Flags::SYN) {
            sent[slot(from(c.segment.src.ip()))].isn.get_or_insert(c.segment.seq);
        }
    }
    for f in faults {
        if f.segment.flags & 0x02 != 0 {
            let side = if f.segment.dir == Dir::Out { Side::Client } else { Side::Server };
            sent[slot(side)].isn.get_or_insert(f.segment.seq);
        }
    }
    let isn = |sent: &[Sent; 2], s: Side| sent[slot(s)].isn.unwrap_or(0);
    let mut events = Vec::new();
    for f in faults {
        let side = if f.segment.dir == Dir::Out { Side::Client } else { Side::Server };
        let other = if side == Side::Client { Side::Server } else { Side::Client };
        let s = &f.segment;
        let rel = s.seq.wrapping_sub(isn(&sent, side));
        let what = format!(
            "the {}'s [{}] seq {rel}{} ack {}",
            side.name(),
            s.flag_letters(),
            if s.len > 0 { format!(":{}", rel.wrapping_add(s.len)) } else { String::new() },
            if s.flags & 0x10 != 0 { s.ack.wrapping_sub(isn(&sent, other)) } else { 0 },
        );
        let by = f.fault.map_or("random loss".to_string(), |x| x.to_string());
        let text = match (f.did, s.dir) {
            (Did::Dropped | Did::Lost, Dir::Out) => {
                format!("LOST: side A's queue dropped {what} ({by}): it never reached the link (no capture shows it)")
            }
            (Did::Dropped | Did::Lost, Dir::In) => format!(
                "LOST: side A's queue dropped {what} ({by}) after it crossed the link (the capture shows it): side \
                 A's TCP never saw it"
            ),
            (Did::Held, _) => format!("HELD: side A's queue holds {what} back ({by}) until the next one has passed"),
            (Did::Released, _) => format!("RELEASED: side A's queue lets {what} go now"),
            (Did::Duplicated, _) => format!("DUPLICATED: side A's queue lets {what} through and sends a copy ({by})"),
        };
        events.push(Event { t_ns: f.at_ns, what: What::Note(text) });
    }
    // Each segment side A's queue dropped on its way in crossed the veth first: the last captured
    // copy before the drop with its sequence number, flags and length is the one.
    let dropped_after_capture: Vec<usize> = faults
        .iter()
        .filter(|f| f.segment.dir == Dir::In && matches!(f.did, Did::Dropped | Did::Lost))
        .filter_map(|f| {
            captured.iter().rposition(|c| {
                c.t_ns <= f.at_ns
                    && c.segment.src == SocketAddr::V4(f.segment.src)
                    && c.segment.seq == f.segment.seq
                    && c.segment.flags.0 == f.segment.flags
                    && c.segment.len == f.segment.len as usize
            })
        })
        .collect();
    for (i, c) in captured.iter().enumerate() {
        let s = &c.segment;
        let side = from(s.src.ip());
        let (me, peer) = (slot(side), 1 - slot(side));
        let f = s.flags;
        let mut said: Vec<String> = Vec::new();
        let end = s.seq.wrapping_add(s.len as u32).wrapping_add(u32::from(f.has(Flags::SYN) || f.has(Flags::FIN)));
        if f.has(Flags::SYN) {
            match sent[me].syn_at {
                Some(at) => said.push(format!(
                    "{} sent again, {:.3} s after the last",
                    if f.has(Flags::ACK) { "SYN-ACK" } else { "SYN" },
                    c.t_ns.saturating_sub(at) as f64 / 1e9
                )),
                // The first of the client's SYNs on the link, after the queue dropped one before it.
                None if !faults.iter().any(|x| {
                    x.segment.dir == Dir::Out
                        && side == Side::Client
                        && x.segment.seq == s.seq
                        && x.segment.flags & 0x02 != 0
                        && x.at_ns <= c.t_ns
                }) => {}
                None => said.push(format!(
                    "{} sent again: the first was dropped by the queue",
                    if f.has(Flags::ACK) { "SYN-ACK" } else { "SYN" }
                )),
            }
            sent[me].syn_at = Some(c.t_ns);
        }
        let resent = s.len > 0 && sent[me].next.is_some_and(|next| after(next, s.seq));
        if resent {
            let rel = s.seq.wrapping_sub(isn(&sent, side));
            said.push(format!("retransmission of bytes {rel}:{}", rel.wrapping_add(s.len as u32)));
        } else if s.len > 0
            && faults.iter().any(|x| {
                x.segment.dir == Dir::Out
                    && x.segment.seq == s.seq
                    && matches!(x.did, Did::Dropped | Did::Lost)
                    && x.at_ns <= c.t_ns
                    && side == Side::Client
            })
        {
            // The original was dropped before the capture point: this is its retransmission.
            let rel = s.seq.wrapping_sub(isn(&sent, side));
            said.push(format!(
                "retransmission of bytes {rel}:{} (the first copy was dropped)",
                rel.wrapping_add(s.len as u32)
            ));
        }
        if f.has(Flags::FIN) {
            if sent[me].fin_seq == Some(s.seq)
                || faults.iter().any(|x| {
                    x.segment.flags & 0x01 != 0
                        && x.segment.seq == s.seq
                        && x.segment.dir == Dir::Out
                        && x.at_ns <= c.t_ns
                        && side == Side::Client
                })
            {
                said.push("FIN sent again: the first was not acknowledged".into());
            }
            sent[me].fin_seq = Some(s.seq);
        }
        if sent[me].next.is_none_or(|next| after(end, next)) {
            sent[me].next = Some(end);
        }
        let pure_ack = s.len == 0 && f.0 & (Flags::SYN | Flags::FIN | Flags::RST) == 0 && f.has(Flags::ACK);
        if pure_ack {
            let outstanding = sent[peer].next.is_some_and(|next| after(next, s.ack));
            if sent[me].last_ack == Some(s.ack) && outstanding {
                sent[me].dup += 1;
                said.push(format!(
                    "duplicate ACK #{} (ack {}): bytes from there on are missing at the {}",
                    sent[me].dup,
                    s.ack.wrapping_sub(isn(&sent, if side == Side::Client { Side::Server } else { Side::Client })),
                    side.name()
                ));
            } else {
                sent[me].dup = 0;
            }
            // A zero-window probe: one byte below what the peer acknowledged, sent into a 0 window.
            if sent[peer].window == Some(0) && sent[me].next.is_some_and(|next| s.seq == next.wrapping_sub(1)) {
                said.push("window probe: asks the receiver to say its window again".into());
            }
        }
        if !s.sack.is_empty() {
            // Relative to the peer's ISN, as the ack is; a block at or below the ack is a D-SACK.
            let base = isn(&sent, if side == Side::Client { Side::Server } else { Side::Client });
            let blocks: Vec<String> = s
                .sack
                .iter()
                .map(|(l, r)| {
                    let (l, r) = (l.wrapping_sub(base), r.wrapping_sub(base));
                    if !after(r.wrapping_add(base), s.ack) {
                        format!("D-SACK {l}:{r}: the {} got these bytes twice", side.name())
                    } else {
                        format!("SACK {l}:{r}: the {} holds these bytes beyond the ack", side.name())
                    }
                })
                .collect();
            said.push(blocks.join("; "));
        }
        if f.has(Flags::ACK) {
            sent[me].last_ack = Some(s.ack);
        }
        if s.window == 0 && sent[me].window != Some(0) {
            said.push(format!("window 0: the {}'s receive buffer is full", side.name()));
        } else if s.window > 0 && sent[me].window == Some(0) {
            said.push(format!("the {}'s window opens again", side.name()));
        }
        sent[me].window = Some(s.window);
        if dropped_after_capture.contains(&i) {
            said.push("dropped by side A's queue after this capture point".into());
        }
        let other = if side == Side::Client { Side::Server } else { Side::Client };
        let rel_ack = if f.has(Flags::ACK) { s.ack.wrapping_sub(isn(&sent, other)) } else { 0 };
        let note = (!said.is_empty()).then(|| said.join("; "));
        let what = What::Segment {
            from: side,
            segment: s.clone(),
            rel_seq: s.seq.wrapping_sub(isn(&sent, side)),
            rel_ack,
            note,
        };
        events.push(Event { t_ns: c.t_ns, what });
    }
    events
}

fn delta(counters: &[Counter], side: netns::Side, name: &str) -> u64 {
    counters.iter().find(|c| c.side == side && c.name == name).map_or(0, |c| c.after.saturating_sub(c.before))
}

/// Seconds between a fault on a segment and the next captured segment of the same sender with the
/// same sequence number (its retransmission).
fn resent_after(f: &netns::Event, captured: &[Captured]) -> Option<f64> {
    let src = SocketAddr::V4(f.segment.src);
    captured
        .iter()
        .find(|c| c.t_ns > f.at_ns && c.segment.src == src && c.segment.seq == f.segment.seq)
        .map(|c| (c.t_ns - f.at_ns) as f64 / 1e9)
}

fn check(expected: impl Into<String>, observed: impl Into<String>, agrees: bool) -> Check {
    Check { expected: expected.into(), observed: observed.into(), agrees }
}

fn checks(
    scenario: Scenario,
    counters: &[Counter],
    faults: &[netns::Event],
    captured: &[Captured],
    events: &[Event],
) -> Vec<Check> {
    use netns::Side::{A, B};
    let d = |side, name| delta(counters, side, name);
    let dropped: Vec<&netns::Event> = faults.iter().filter(|f| matches!(f.did, Did::Dropped | Did::Lost)).collect();
    let said = |needle: &str| {
        events.iter().any(|e| {
            matches!(&e.what, What::Note(n) if n.contains(needle))
                || matches!(&e.what, What::Segment { note: Some(n), .. } if n.contains(needle))
        })
    };
    let mut out = Vec::new();
    match scenario {
        Scenario::SynLost => {
            let gap = dropped.first().and_then(|f| resent_after(f, captured));
            // The client's own clock around connect(): the kernel's timer, whatever the queue's lag.
            let took = client_connect_seconds(events);
            out.push(match took {
                Some(t) => check(
                    "connect() returns about 1 s late (the initial RTO)",
                    format!("after {t:.3} s"),
                    (0.9..3.0).contains(&t),
                ),
                None => check("connect() returns about 1 s late (the initial RTO)", "connect() did not return", false),
            });
            out.push(match gap {
                Some(g) => check(
                    "the SYN sent again about 1 s after the first, as the queue and the capture timed them",
                    format!("{g:.3} s"),
                    (0.5..2.5).contains(&g),
                ),
                None => check("the SYN sent again", "no retransmitted SYN was captured", false),
            });
            let n = d(A, "TcpExtTCPSynRetrans");
            out.push(check("side A's TCPSynRetrans +1", format!("+{n}"), n == 1));
        }
        Scenario::SynackLost => {
            let (a, b) = (d(A, "TcpExtTCPSynRetrans"), d(B, "TcpExtTCPSynRetrans"));
            out.push(check(
                "a retransmission of the handshake: side B's SYN-ACK (TCPSynRetrans of B) and/or side A's SYN",
                format!("side A TCPSynRetrans +{a}, side B TCPSynRetrans +{b}"),
                a + b >= 1,
            ));
        }
        Scenario::DataLost => {
            // Each copy's wait: until the next copy, dropped by the queue or captured on the link.
            let gaps: Vec<f64> = dropped
                .iter()
                .filter_map(|f| {
                    let next_drop = faults
                        .iter()
                        .find(|g| g.at_ns > f.at_ns && g.segment.seq == f.segment.seq)
                        .map(|g| (g.at_ns - f.at_ns) as f64 / 1e9);
                    match (next_drop, resent_after(f, captured)) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    }
                })
                .collect();
            let n = d(A, "TcpExtTCPTimeouts");
            out.push(check("two retransmission timeouts on side A (TCPTimeouts +2)", format!("+{n}"), n == 2));
            // The kernel's own word: the rto tcp_info reported before and after the first timeout.
            let doubled = rto_doubling(events);
            out.push(match doubled {
                Some((before, after)) => check(
                    "the RTO doubles after a timeout (tcp_info: backoff 0 -> 1)",
                    format!("rto {before} ms -> {after} ms"),
                    (1.6..2.5).contains(&(f64::from(after) / f64::from(before.max(1)))),
                ),
                None => {
                    check("the RTO doubles after a timeout (tcp_info: backoff 0 -> 1)", "no sample showed it", false)
                }
            });
            // The waits as the queue saw them (its thread's clock: late by its own scheduling).
            out.push(match gaps.as_slice() {
                [first, second, ..] => check(
                    "the second wait about twice the first, as the queue timed the copies",
                    format!("{first:.3} s, then {second:.3} s ({:.2}x)", second / first),
                    (1.2..3.5).contains(&(second / first)),
                ),
                _ => {
                    check("two retransmissions, the second after a longer wait", format!("waits seen: {gaps:?}"), false)
                }
            });
        }
        Scenario::FastRetransmit => {
            let (fr, sr, to) = (d(A, "TcpExtTCPFastRetrans"), d(A, "TcpExtTCPSackRecovery"), d(A, "TcpExtTCPTimeouts"));
            out.push(check(
                "a fast retransmit, no timeout (TCPFastRetrans +1, TCPTimeouts +0)",
                format!("TCPFastRetrans +{fr}, TCPTimeouts +{to}"),
                fr >= 1 && to == 0,
            ));
            out.push(check("SACK recovery entered (TCPSackRecovery +1)", format!("+{sr}"), sr >= 1));
            out.push(check(
                "duplicate ACKs before the retransmission",
                if said("duplicate ACK #") { "seen" } else { "none seen" },
                said("duplicate ACK #"),
            ));
            let cut = cwnd_cut(events);
            out.push(check(
                "cwnd cut in the client's TCP_INFO",
                cut.clone().unwrap_or_else(|| "no sample showed a smaller cwnd".into()),
                cut.is_some(),
            ));
            let set = said("ssthresh - -> ");
            out.push(check(
                "ssthresh set (from - to a number) in the client's TCP_INFO",
                if set { "seen" } else { "no sample showed ssthresh change" },
                set,
            ));
        }
        Scenario::ZeroWindow => {
            out.push(check(
                "the server advertises window 0",
                if said("window 0:") { "seen" } else { "not seen" },
                said("window 0:"),
            ));
            let p = d(A, "TcpExtTCPWinProbe");
            out.push(check("window probes from side A (TCPWinProbe > 0)", format!("+{p}"), p >= 1));
            out.push(check(
                "the client's send() blocks",
                if said("send() blocked") { "seen" } else { "not seen" },
                said("send() blocked"),
            ));
        }
        Scenario::FinLost => {
            let gap = dropped.first().and_then(|f| resent_after(f, captured));
            out.push(match gap {
                Some(g) => check(
                    "the FIN sent again after the RTO (200 ms or more), as the queue and the capture timed them",
                    format!("{g:.3} s"),
                    g >= 0.1,
                ),
                None => check("the FIN sent again after the RTO", "no retransmitted FIN was captured", false),
            });
            let n = d(A, "TcpRetransSegs");
            out.push(check("side A's TcpRetransSegs +1 (the FIN)", format!("+{n}"), n == 1));
            out.push(check(
                "the client in FIN-WAIT-1 meanwhile",
                if said_state(events, "FIN-WAIT-1") { "seen" } else { "not seen by sock_diag" },
                said_state(events, "FIN-WAIT-1"),
            ));
        }
        Scenario::Reorder => {
            let q = d(B, "TcpExtTCPOFOQueue");
            out.push(check(
                "the server's TCP queues the early segment out of order (TCPOFOQueue > 0)",
                format!("+{q}"),
                q >= 1,
            ));
            out.push(check(
                "the application reads the bytes in order",
                if said("came back in order") { "in order" } else { "not in order" },
                said("came back in order"),
            ));
        }
        Scenario::Duplicate => {
            let ds = d(B, "TcpExtTCPDSACKOldSent");
            out.push(check(
                "the server answers the copy with a D-SACK (TCPDSACKOldSent +1)",
                format!("+{ds}"),
                ds >= 1,
            ));
        }
    }
    out
}

/// How long the client's connect() took, from its own note.
fn client_connect_seconds(events: &[Event]) -> Option<f64> {
    events.iter().find_map(|e| match &e.what {
        What::Note(n) => n.strip_prefix("client: connect() returned after ")?.strip_suffix(" s")?.parse().ok(),
        _ => None,
    })
}

/// The client's rto (ms) before and after its first timeout, from the TCP_INFO note that shows
/// `backoff 0 -> 1` with `rto A ms -> B ms`.
fn rto_doubling(events: &[Event]) -> Option<(u32, u32)> {
    events.iter().find_map(|e| {
        let What::Note(n) = &e.what else { return None };
        let rest = n.strip_prefix("client TCP_INFO: ")?;
        if !rest.contains("backoff 0 -> 1") {
            return None;
        }
        let rto = rest.split(", ").find_map(|f| f.strip_prefix("rto "))?;
        let (a, b) = rto.split_once(" -> ")?;
        Some((a.trim_end_matches("ms").parse().ok()?, b.trim_end_matches("ms").parse().ok()?))
    })
}

/// The first client TCP_INFO note where cwnd went down: `cwnd 20 -> 14, ...`.
fn cwnd_cut(events: &[Event]) -> Option<String> {
    events.iter().find_map(|e| {
        let What::Note(n) = &e.what else { return None };
        let rest = n.strip_prefix("client TCP_INFO: ")?;
        let down = rest.split(", ").any(|f| {
            let Some(v) = f.strip_prefix("cwnd ") else { return false };
            let (a, b) = v.split_once(" -> ").unwrap_or(("0", "0"));
            b.parse::<u32>().unwrap_or(0) < a.parse::<u32>().unwrap_or(0)
        });
        down.then(|| rest.to_string())
    })
}

fn said_state(events: &[Event], state: &str) -> bool {
    events.iter().any(|e| matches!(&e.what, What::State { state: s, .. } if s == state))
}

/// The segments of a timeline as `(src, dst, flags, seq, len)`, for comparing with tcpdump.
pub fn segments(timeline: &Timeline) -> Vec<(SocketAddrV4, SocketAddrV4, u8, u32, usize)> {
    timeline
        .events
        .iter()
        .filter_map(|e| match &e.what {
            What::Segment { segment: s, .. } => match (s.src, s.dst) {
                (SocketAddr::V4(a), SocketAddr::V4(b)) => Some((a, b, s.flags.0, s.seq, s.len)),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_a_bad_one_lists_them() {
        for (name, s) in ALL {
            assert_eq!(name.parse::<Scenario>(), Ok(s));
            assert_eq!(s.name(), name);
            assert!(s.plan().starts_with(&format!("scenario {name}: ")));
        }
        let err = "syn-lose".parse::<Scenario>().unwrap_err();
        assert!(err.contains("syn-lose") && err.contains("fast-retransmit"), "{err}");
    }

    #[test]
    fn tcp_info_notes_name_what_changed() {
        let mut a = TcpInfo::parse(&[0u8; 104]).unwrap();
        a.snd_cwnd = 10;
        a.snd_ssthresh = u32::MAX >> 1;
        a.rto_us = 200_000;
        let first = info_change("client", None, &a).unwrap();
        assert!(first.contains("cwnd 10") && first.contains("ssthresh -"), "{first}");
        let mut b = a;
        b.rto_us = 210_000;
        assert_eq!(info_change("client", Some(&a), &b), None, "a small rto move is not news");
        b.snd_cwnd = 5;
        b.snd_ssthresh = 5;
        b.ca_state = 3;
        assert_eq!(
            info_change("client", Some(&a), &b).unwrap(),
            "client TCP_INFO: cwnd 10 -> 5, ssthresh - -> 5, ca_state Open -> Recovery"
        );
    }
}
