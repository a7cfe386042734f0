//! Floor 4: the second story — many clients at once against the tutorial's iterative server with
//! `listen(5)`, and what the kernel does when its accept queue is full.
//!
//! [`run`] starts the server (backlog 5) and stops it (SIGSTOP) before any client exists, so the
//! server program takes nobody off the queue; then it starts N clients at once (each
//! `socklab client`, narrated), all on one CPU (see the comment in [`run`] for why). The kernel completes handshakes on its own until the accept queue
//! holds backlog + 1 connections (Linux queues one more than the backlog), then drops further SYNs
//! (or answers with SYN cookies when its queue of half-open connections is full too). The server
//! is let go (SIGCONT) once sock_diag showed the full queue and the kernel counted a drop (or
//! after [`HOLD_LIMIT`]); it then serves the clients one at a time, and the dropped ones get in
//! when their SYNs are retransmitted.
//!
//! Everything shown is observed: the queue lengths by sock_diag, the segments on lo, each
//! client's calls and how it ended, and the kernel's counters from `/proc/net/netstat` (`TcpExt`)
//! before and after, which are system-wide: other traffic on this machine can add to them.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{Poller, Process, TempDir, calls, complaints, wait_listening, wait_or_kill};
use crate::capture::{self, Capture, Captured, Flags};
use crate::clock::monotonic_ns;
use crate::timeline::{Event, Side, Timeline, What};

/// The most clients [`run`] starts.
pub const MAX_CLIENTS: usize = 500;
/// The tutorial's `listen(5)`.
pub const BACKLOG: u32 = 5;
/// The longest the server is held stopped.
pub const HOLD_LIMIT: Duration = Duration::from_secs(5);
/// The kernel counters shown, from `/proc/net/netstat`'s `TcpExt` lines.
pub const COUNTERS: [&str; 6] =
    ["ListenOverflows", "ListenDrops", "SyncookiesSent", "SyncookiesRecv", "SyncookiesFailed", "TCPReqQFullDoCookies"];

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// How many clients (1 to [`MAX_CLIENTS`]).
    pub clients: usize,
    /// The server's port (0: let the kernel choose).
    pub port: u16,
    /// The server's `--accept-delay` (before each accept).
    pub accept_delay: Duration,
    /// The whole run's limit: clients still running then are killed (and reported).
    pub time_limit: Duration,
}

/// How one client ended, from its own calls and exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// Connected and got its echo back.
    Echoed,
    /// connect() returned 0, then a later call failed with ECONNRESET.
    ResetAfterConnect,
    /// connect() itself failed.
    ConnectFailed,
    /// Failed otherwise.
    OtherError,
    /// Still running at the time limit (killed).
    Unfinished,
}

impl Outcome {
    /// A phrase for the summary.
    pub fn describe(self) -> &'static str {
        match self {
            Outcome::Echoed => "connected and got the echo",
            Outcome::ResetAfterConnect => "connect() succeeded, then reset (ECONNRESET) on a later call",
            Outcome::ConnectFailed => "connect() failed",
            Outcome::OtherError => "failed otherwise",
            Outcome::Unfinished => "still waiting at the time limit (killed)",
        }
    }
}

/// What [`run`] observed, besides the timeline.
#[derive(Debug, Clone)]
pub struct Report {
    /// The listener's backlog as sock_diag reports it (its Send-Q).
    pub backlog: u32,
    /// The longest accept queue sock_diag saw (the listener's Recv-Q).
    pub max_queue: u32,
    /// Whether the hold ended because a drop was counted (not by [`HOLD_LIMIT`]).
    pub drop_seen_while_held: bool,
    /// `TcpExt` counters: (name, before, after).
    pub counters: Vec<(&'static str, u64, u64)>,
    /// How many clients ended each way.
    pub outcomes: Vec<(Outcome, usize)>,
    /// SYNs a client sent again (its earlier SYN got no answer), and RSTs, on the wire.
    pub retransmitted_syns: usize,
    /// Segments with RST.
    pub resets: usize,
}

impl Report {
    /// after − before of one counter (0 if it is not there).
    pub fn delta(&self, name: &str) -> u64 {
        self.counters.iter().find(|(n, ..)| *n == name).map_or(0, |(_, b, a)| a.saturating_sub(*b))
    }

    /// The summary in sentences, one per line.
    pub fn lines(&self, clients: usize) -> Vec<String> {
        let mut out = vec![if self.max_queue <= self.backlog + 1 {
            format!(
                "accept queue: at most {} waiting (sock_diag), backlog {}: Linux queues backlog + 1",
                self.max_queue, self.backlog
            )
        } else {
            format!(
                "accept queue: at most {} waiting (sock_diag), backlog {}: {} more than backlog + 1, the most Linux \
                 queues when handshakes finish one at a time; it checks the queue's length and adds to it in two \
                 steps, so handshakes finishing at the same moment on different CPUs can both pass the check",
                self.max_queue,
                self.backlog,
                self.max_queue - self.backlog - 1
            )
        }];
        out.push(if self.drop_seen_while_held {
            "the server was held stopped until the queue was full and the kernel had counted a dropped SYN".into()
        } else {
            format!("the server was held stopped until the queue was full, or at most {} s", HOLD_LIMIT.as_secs())
        });
        for (outcome, n) in &self.outcomes {
            out.push(format!("{n} of {clients} clients: {}", outcome.describe()));
        }
        out.push(format!(
            "on the wire: {} SYNs sent again (the earlier one got no answer), {} segments with RST",
            self.retransmitted_syns, self.resets
        ));
        for (name, before, after) in &self.counters {
            out.push(format!("TcpExt {name}: {before} -> {after} (+{})", after.saturating_sub(*before)));
        }
        out.push(
            "these counters are system-wide: other traffic on this machine can add to them. ListenOverflows: \
             a SYN or handshake ACK met a full accept queue; ListenDrops: a SYN or ACK the listener dropped for \
             any reason; SyncookiesSent/Recv/Failed: SYN-ACKs carrying a cookie, valid and invalid cookie ACKs"
                .into(),
        );
        out
    }
}

/// `TcpExt` counters from `/proc/net/netstat` (header line of names, then a line of values).
pub fn tcp_ext() -> io::Result<HashMap<String, u64>> {
    parse_netstat(&crate::file::read_to_string(Path::new("/proc/net/netstat"))?)
        .ok_or_else(|| io::Error::other("/proc/net/netstat has no TcpExt lines"))
}

/// The `TcpExt` name → value pairs of a `/proc/net/netstat` text.
pub fn parse_netstat(text: &str) -> Option<HashMap<String, u64>> {
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let names = lines.next()?.split_whitespace().skip(1);
    let values = lines.next()?.split_whitespace().skip(1).map(|v| v.parse().unwrap_or(0));
    Some(names.map(str::to_string).zip(values).collect())
}

/// A client process whose stderr goes to a file (hundreds of clients, no pipe threads).
struct Client {
    child: Child,
    log: std::path::PathBuf,
}

/// Runs the story; the timeline has every client's calls (as the client side), the segments, the
/// socket states and, at the end, the summary as notes.
pub fn run(exe: &Path, config: &Config) -> io::Result<(Timeline, Report)> {
    if !(1..=MAX_CLIENTS).contains(&config.clients) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("--clients: use 1 to {MAX_CLIENTS}")));
    }
    let deadline = Instant::now() + config.time_limit;
    let start_ns = monotonic_ns();
    let before = tcp_ext().unwrap_or_default();
    let (capture, capture_error) = match Capture::start_loopback() {
        Ok(c) => (Some(c), None),
        Err(e) if capture::is_permission_error(&e) => {
            (None, Some(capture::no_permission_help(&exe.display().to_string())))
        }
        Err(e) => (None, Some(format!("capturing on lo failed: {e}"))),
    };
    let logs = TempDir::create()?;
    let (port, delay, backlog) =
        (config.port.to_string(), format!("{}ms", config.accept_delay.as_millis()), BACKLOG.to_string());
    let mut server = Process::spawn(
        exe,
        &[
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--backlog",
            &backlog,
            "--accept-delay",
            &delay,
            "--quiet",
            "--trace-machine",
        ],
    )?;
    let port = match wait_listening(&mut server, super::PHASE_LIMIT) {
        Ok(port) => port,
        Err(why) => {
            let err = complaints(&server.finish(Duration::ZERO));
            return Err(io::Error::other(format!("the server did not start: {}", why.unwrap_or(err))));
        }
    };
    let states = Poller::start(port, vec![libc::AF_INET]);
    let server_pid = server.child.id() as i32;
    let mut events = Vec::new();
    let note =
        |events: &mut Vec<Event>, text: String| events.push(Event { t_ns: monotonic_ns(), what: What::Note(text) });
    crate::process::kill(server_pid, libc::SIGSTOP)?;
    note(
        &mut events,
        format!(
            "the walkthrough stops the server (SIGSTOP): its program takes no one off the accept queue; the kernel still \
         answers SYNs. {} clients start at once",
            config.clients
        ),
    );

    // The clients start on one CPU. Linux takes a finished handshake into the accept queue if the
    // queue holds no more than the backlog, but it checks the length and adds to the queue in two
    // steps: two handshakes finishing at the same moment on two CPUs can both pass the check and
    // leave backlog + 2 waiting. On loopback a handshake is finished on the CPU of the client that
    // sent its packets, so clients on one CPU finish them one at a time, and the queue stops at
    // backlog + 1, the limit the story is about. (The mask is inherited by each spawned client.)
    let pinned = pin_for_spawning();
    match &pinned {
        Ok((cpu, _)) => note(
            &mut events,
            format!(
                "the clients run on CPU {cpu} only (sched_setaffinity, set by the walkthrough and inherited): on \
                 loopback their handshakes then finish one at a time, so the queue stops at backlog + 1 (two \
                 finishing at once on different CPUs can both get in)"
            ),
        ),
        Err(e) => note(&mut events, format!("the clients run on every CPU (setting their CPU failed: {e})")),
    }
    let port_text = port.to_string();
    let mut clients = Vec::new();
    let mut spawn_error = None;
    for i in 0..config.clients {
        let log = logs.0.join(format!("client-{i}.err"));
        let spawned = crate::file::File::create(&log).and_then(|f| {
            Command::new(exe)
                .args(["client", "--host", "127.0.0.1", "--port", &port_text, "--message", "Hello", "--quiet"])
                .arg("--trace-machine")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(f.into_fd())
                .spawn()
        });
        match spawned {
            Ok(child) => clients.push(Client { child, log }),
            Err(e) => {
                spawn_error = Some(e);
                break;
            }
        }
    }

    if let Ok((_, all)) = &pinned {
        // This thread goes back to every CPU it had; the clients keep theirs.
        let _ = crate::process::set_thread_cpus(all);
    }

    // Hold until sock_diag shows the queue full and the kernel counted a drop (or HOLD_LIMIT).
    let hold_until = (Instant::now() + HOLD_LIMIT).min(deadline);
    let mut drop_seen_while_held = false;
    while Instant::now() < hold_until && spawn_error.is_none() {
        let full = states.listener_queue().is_some_and(|(q, b)| q > b);
        let dropped = tcp_ext().is_ok_and(|now| {
            let d = |k: &str| now.get(k).copied().unwrap_or(0).saturating_sub(before.get(k).copied().unwrap_or(0));
            d("ListenOverflows") + d("ListenDrops") + d("TCPReqQFullDoCookies") > 0
        });
        if full && (dropped || config.clients <= BACKLOG as usize + 1) {
            drop_seen_while_held = dropped;
            break;
        }
        thread::sleep(Duration::from_millis(2));
    }
    let _ = crate::process::kill(server_pid, libc::SIGCONT);
    note(
        &mut events,
        "the walkthrough lets the server go on (SIGCONT): it accepts and serves one client at a time".into(),
    );

    // Reap every client by the deadline; the ones still running are killed.
    let mut outcomes: HashMap<Outcome, usize> = HashMap::new();
    let mut client_events = Vec::new();
    for mut c in clients {
        let left = deadline.saturating_duration_since(Instant::now());
        let finished = matches!(c.child.try_wait(), Ok(Some(_))) || wait_or_kill_reports(&mut c.child, left);
        let log = crate::file::read_to_string(&c.log).unwrap_or_default();
        let narrated = calls(Side::Client, &log);
        let outcome = if !finished {
            Outcome::Unfinished
        } else {
            classify(&narrated, c.child.try_wait().ok().flatten().is_some_and(|s| s.success()))
        };
        *outcomes.entry(outcome).or_default() += 1;
        client_events.extend(narrated);
    }
    states.wait_for_close(Duration::from_secs(2).min(deadline.saturating_duration_since(Instant::now())));
    let server_err = server.stop(super::PHASE_LIMIT);
    let max_queue_seen = states.max_listener_queue();
    let state_events = states.stop();
    let after = tcp_ext().unwrap_or_default();
    let (captured, dropped) = capture.map(Capture::stop).unwrap_or_default();

    let (segments, retransmitted_syns, resets) = annotate(port, captured);
    events.extend(calls(Side::Server, &server_err));
    events.extend(client_events);
    events.extend(segments);
    events.extend(state_events);
    if let Some(e) = spawn_error {
        note(&mut events, format!("starting clients stopped early: {e}"));
    }
    if dropped > 0 {
        note(&mut events, format!("the capture dropped {dropped} frames (lo was busy): some segments may be missing"));
    }
    if let Some(why) = &capture_error {
        events.push(Event { t_ns: start_ns, what: What::Note(format!("no segments shown: {why}")) });
    }
    let (backlog, max_queue) = max_queue_seen.unwrap_or((0, 0));
    let mut outcomes: Vec<(Outcome, usize)> = outcomes.into_iter().collect();
    outcomes.sort();
    let report = Report {
        backlog,
        max_queue,
        drop_seen_while_held,
        counters: COUNTERS
            .iter()
            .map(|k| (*k, before.get(*k).copied().unwrap_or(0), after.get(*k).copied().unwrap_or(0)))
            .collect(),
        outcomes,
        retransmitted_syns,
        resets,
    };
    let end = monotonic_ns();
    for line in report.lines(config.clients) {
        events.push(Event { t_ns: end, what: What::Note(line) });
    }
    events.sort_by_key(|e| e.t_ns);
    Ok((Timeline { host: std::net::Ipv4Addr::LOCALHOST.into(), port, start_ns, events, capture_error }, report))
}

/// Lets this thread run only on the first of its CPUs, so the clients it spawns start there.
/// Returns that CPU and every CPU the thread had (to go back to).
fn pin_for_spawning() -> io::Result<(usize, Vec<usize>)> {
    let all = crate::process::thread_cpus()?;
    let first = *all.first().ok_or_else(|| io::Error::other("sched_getaffinity reported no CPU"))?;
    crate::process::set_thread_cpus(&[first])?;
    Ok((first, all))
}

/// Waits up to `limit`; false (after killing it) if it had to be killed.
fn wait_or_kill_reports(child: &mut Child, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        thread::sleep(Duration::from_millis(5));
    }
    wait_or_kill(child, Duration::ZERO);
    false
}

/// How a client ended, from its narrated calls.
fn classify(calls: &[Event], success: bool) -> Outcome {
    let line = |e: &Event| match &e.what {
        What::Call { line, .. } => line.clone(),
        _ => String::new(),
    };
    let connected = calls.iter().map(line).any(|l| l.starts_with("connect(") && l.ends_with("= 0"));
    let reset = calls.iter().map(line).any(|l| l.contains("ECONNRESET"));
    match (success, connected, reset) {
        (true, ..) => Outcome::Echoed,
        (false, true, true) => Outcome::ResetAfterConnect,
        (false, false, _) => Outcome::ConnectFailed,
        _ => Outcome::OtherError,
    }
}

/// Every segment of the port, its numbers relative to its own connection's initial ones; notes
/// for a SYN sent again and for resets. Returns the events, the repeated SYNs and the RSTs.
fn annotate(port: u16, captured: Vec<Captured>) -> (Vec<Event>, usize, usize) {
    let mine: Vec<Captured> =
        captured.into_iter().filter(|c| c.segment.src.port() == port || c.segment.dst.port() == port).collect();
    let from = |c: &Captured| if c.segment.dst.port() == port { Side::Client } else { Side::Server };
    let conn = |c: &Captured| if from(c) == Side::Client { c.segment.src.port() } else { c.segment.dst.port() };
    let mut isn: HashMap<(u16, bool), u32> = HashMap::new();
    let mut syns: HashMap<u16, usize> = HashMap::new();
    let (mut again, mut resets) = (0, 0);
    let mut events = Vec::new();
    for c in &mine {
        let (side, f) = (from(c), c.segment.flags);
        if f.has(Flags::SYN) {
            isn.entry((conn(c), side == Side::Client)).or_insert(c.segment.seq);
        }
        let own = isn.get(&(conn(c), side == Side::Client)).copied().unwrap_or(c.segment.seq);
        let other = isn.get(&(conn(c), side != Side::Client)).copied().unwrap_or(0);
        let note = if f.has(Flags::SYN) && !f.has(Flags::ACK) {
            let n = syns.entry(conn(c)).or_default();
            *n += 1;
            (*n > 1).then(|| {
                again += 1;
                format!("SYN sent again (try {n}): the earlier one got no answer")
            })
        } else if f.has(Flags::RST) {
            resets += 1;
            Some(format!("RST: the {}'s kernel resets this connection", side.name()))
        } else {
            None
        };
        let rel_ack = if f.has(Flags::ACK) { c.segment.ack.wrapping_sub(other) } else { 0 };
        let what = What::Segment {
            from: side,
            segment: c.segment.clone(),
            rel_seq: c.segment.seq.wrapping_sub(own),
            rel_ack,
            note,
        };
        events.push(Event { t_ns: c.t_ns, what });
    }
    (events, again, resets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(max_queue: u32) -> Report {
        Report {
            backlog: 5,
            max_queue,
            drop_seen_while_held: true,
            counters: vec![],
            outcomes: vec![],
            retransmitted_syns: 0,
            resets: 0,
        }
    }

    /// The queue line says backlog + 1 only when that is what sock_diag saw; more (seen with
    /// clients on two CPUs) is counted and explained.
    #[test]
    fn the_queue_line_is_true_for_the_length_seen() {
        let usual = &report(6).lines(20)[0];
        assert_eq!(usual, "accept queue: at most 6 waiting (sock_diag), backlog 5: Linux queues backlog + 1");
        let over = &report(7).lines(20)[0];
        assert!(over.starts_with("accept queue: at most 7 waiting (sock_diag), backlog 5: 1 more than"), "{over}");
        assert!(over.contains("different CPUs") && !over.contains("Linux queues backlog + 1"), "{over}");
    }

    #[test]
    fn netstat_counters() {
        let text = "TcpExt: SyncookiesSent ListenOverflows ListenDrops\nTcpExt: 3 14 15\n\
                    IpExt: InNoRoutes\nIpExt: 0\n";
        let c = parse_netstat(text).unwrap();
        assert_eq!((c["SyncookiesSent"], c["ListenOverflows"], c["ListenDrops"]), (3, 14, 15));
        assert!(parse_netstat("IpExt: a\nIpExt: 1\n").is_none());
    }
}
