//! Floor 4: the tutorial's story as one timeline — handshake, accept queue, data, close, TIME-WAIT.
//!
//! This module records; [`crate::timeline`] holds what it records ([`Timeline`]) and renders it.
//!
//! [`run`] starts the echo server and the echo client as two processes (the current binary again,
//! with `--trace-machine`), and merges three sources into one list ordered by CLOCK_MONOTONIC:
//! - both processes' system calls, as strace would print them, with start and end times;
//! - the TCP segments on `lo`, from [`crate::capture`] (needs CAP_NET_RAW; without it the timeline
//!   says so and goes on without them);
//! - the sockets' states and queues, polled through [`crate::diag`] about every millisecond and
//!   recorded each time one changes.
//!
//! It talks to its children through machine channels only, never their human output: the calls
//! come from the `@trace` lines of `--trace-machine`, the server's port from its narrated `bind`
//! (or `getsockname`, for port 0) — so the server runs as the tutorial's, with no `--ready-file`
//! adding calls to its story — and every other stderr line is the child's own message. The client
//! is the tutorial's (`client --tutorial`: no timeouts, no shutdown, close after the echo).
//!
//! By default the timeline shows the tutorial's calls only (socket, setsockopt, bind, listen,
//! getsockname, getpeername, accept, connect, recv, send, shutdown, close, the prints' write, the
//! accept delay's poll); a note counts socklab's own calls left out (its signal handlers), and
//! [`Config::all`] shows them.
//!
//! The server waits `accept_delay` before calling accept, so the timeline shows what the tutorial
//! says and no single tool shows: connect() returns as soon as the kernel finished the handshake,
//! and the connection then waits in the listener's accept queue (Recv-Q 1) until accept takes it
//! (Recv-Q 0). The client closes first, so it is the side left in TIME-WAIT.

use crate::process::SpawnCounted;
use std::collections::HashMap;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::capture::{self, Capture, Captured, Flags, Segment};
use crate::clock::monotonic_ns;
use crate::diag::{Diag, TcpState};
use crate::timeline::{Event, Side, Timeline, What};
use crate::trace::parse_machine_line;

pub mod crowd;
#[cfg(socklab_epoll)]
pub mod scenario;

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The address the server listens on: 127.0.0.1, ::1, or a wildcard (`::` with v6only off
    /// is a dual-stack listener).
    pub host: IpAddr,
    /// The address the client connects to (None: `host`, or for a wildcard `host` the loopback
    /// address of its family).
    pub connect: Option<IpAddr>,
    /// The server's `--v6only` (None: the system's default).
    pub v6only: Option<bool>,
    /// The server's port (0: let the kernel choose).
    pub port: u16,
    /// How long the server waits before accept.
    pub accept_delay: Duration,
    /// Ask both processes for `--explain` sentences too.
    pub explain: bool,
    /// Show every call, socklab's own (signal handlers) too, not only the tutorial's.
    pub all: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            host: Ipv4Addr::LOCALHOST.into(),
            connect: None,
            v6only: None,
            port: 0,
            accept_delay: Duration::from_secs(1),
            explain: false,
            all: false,
        }
    }
}

impl Config {
    /// Where the client connects.
    pub fn client_target(&self) -> IpAddr {
        match (self.connect, self.host) {
            (Some(ip), _) => ip,
            (None, IpAddr::V4(ip)) if ip.is_unspecified() => Ipv4Addr::LOCALHOST.into(),
            (None, IpAddr::V6(ip)) if ip.is_unspecified() => Ipv6Addr::LOCALHOST.into(),
            (None, ip) => ip,
        }
    }

    /// The sock_diag families to poll: the server's and the client's (different for an IPv4
    /// client of a dual-stack listener).
    fn families(&self) -> Vec<i32> {
        let family = |ip: IpAddr| if ip.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
        let mut families = vec![family(self.host)];
        if family(self.client_target()) != families[0] {
            families.push(family(self.client_target()));
        }
        families
    }
}

/// The longest any one phase may take before the walkthrough gives up (never hang).
const PHASE_LIMIT: Duration = Duration::from_secs(30);

/// Runs server and client from the binary at `exe` and returns their merged timeline.
pub fn run(exe: &Path, config: &Config) -> io::Result<Timeline> {
    let start_ns = monotonic_ns();
    let (capture, capture_error) = match Capture::start_loopback() {
        Ok(c) => (Some(c), None),
        Err(e) if capture::is_permission_error(&e) => {
            (None, Some(capture::no_permission_help(&exe.display().to_string())))
        }
        Err(e) => (None, Some(format!("capturing on lo failed: {e}"))),
    };

    let delay = format!("{}ms", config.accept_delay.as_millis());
    let port = config.port.to_string();
    let host = config.host.to_string();
    let mut server_args = vec!["server", "--host", &host, "--port", &port, "--accept-delay", &delay];
    server_args.push("--trace-machine");
    match config.v6only {
        Some(true) => server_args.extend(["--v6only", "on"]),
        Some(false) => server_args.extend(["--v6only", "off"]),
        None => {}
    }
    if config.explain {
        server_args.push("--explain");
    }
    let mut server = Process::spawn(exe, &server_args)?;
    let port = match wait_listening(&mut server, PHASE_LIMIT) {
        Ok(port) => port,
        Err(why) => {
            let err = complaints(&server.finish(Duration::ZERO));
            return Err(io::Error::other(format!("the server did not start: {}", why.unwrap_or(err))));
        }
    };

    let states = Poller::start(port, config.families());
    let port_text = port.to_string();
    let target = config.client_target().to_string();
    let mut client_args = vec!["client", "--host", &target, "--port", &port_text, "--message", "Hello"];
    client_args.extend(["--tutorial", "--trace-machine"]);
    if config.explain {
        client_args.push("--explain");
    }
    let client = Process::spawn(exe, &client_args)?;
    let (client_ok, client_err) = client.wait(PHASE_LIMIT + config.accept_delay);

    // Let the close finish: the client's socket reaches TIME-WAIT, the server's connection is gone.
    states.wait_for_close(PHASE_LIMIT);
    let server_err = server.stop(PHASE_LIMIT);
    let state_events = states.stop();
    let (segments, dropped) = capture.map(Capture::stop).unwrap_or_default();

    let mut events = Vec::new();
    let mut own = Vec::new();
    for (side, text) in [(Side::Server, &server_err), (Side::Client, &client_err)] {
        let (tutorial, socklab): (Vec<Event>, Vec<Event>) =
            calls(side, text).into_iter().partition(|e| config.all || is_tutorial_call(e));
        events.extend(tutorial);
        own.extend(socklab);
    }
    if let Some(first) = own.first() {
        let mut names: Vec<String> = own.iter().filter_map(call_name).collect();
        names.dedup();
        let note = format!(
            "not shown: {} of socklab's own calls ({}), made before the tutorial's; --all shows them",
            own.len(),
            names.join(", ")
        );
        events.push(Event { t_ns: first.t_ns, what: What::Note(note) });
    }
    events.extend(annotate(port, segments));
    events.extend(state_events);
    let listen = events.iter().find(|e| is_call(e, Side::Server, "listen("));
    if let Some(listen) = listen.filter(|_| !config.accept_delay.is_zero()) {
        let note = format!(
            "configured, not observed: the server waits for a connection to be queued (poll), then {} ms more before calling accept (--accept-delay): watch the accept queue",
            config.accept_delay.as_millis()
        );
        events.push(Event { t_ns: listen.t_ns + 1, what: What::Note(note) });
    }
    if dropped > 0 {
        let note = format!("the capture dropped {dropped} frames (lo was busy): some segments may be missing");
        events.push(Event { t_ns: monotonic_ns(), what: What::Note(note) });
    }
    if let Some(why) = &capture_error {
        events.push(Event { t_ns: start_ns, what: What::Note(format!("no segments shown: {why}")) });
    }
    for (side, text) in [(Side::Server, &server_err), (Side::Client, &client_err)] {
        for line in messages(text) {
            events.push(Event { t_ns: monotonic_ns(), what: What::Note(format!("{} said: {line}", side.name())) });
        }
    }
    events.sort_by_key(|e| e.t_ns);
    let notes = sampling_notes(&events);
    events.extend(notes);
    events.sort_by_key(|e| e.t_ns);
    if !client_ok {
        return Err(io::Error::other(format!("the client failed: {}", complaints(&client_err))));
    }
    Ok(Timeline { host: config.host, port, start_ns, events, capture_error })
}

/// The lines of a child's stderr that are not narration: its own messages (errors, notes).
///
/// Narration is recognised by the machine protocol of `--trace-machine`: `@trace START END LINE`
/// (see [`crate::trace::parse_machine_line`]), each optionally followed by its `--explain`
/// sentence, indented as [`EXPLAIN_INDENT`]. Everything else is the child speaking.
fn messages(stderr: &str) -> impl Iterator<Item = &str> {
    let mut after_call = false;
    stderr.lines().filter(move |l| {
        let narration = parse_machine_line(l).is_some() || (after_call && l.starts_with(EXPLAIN_INDENT));
        after_call = narration;
        !narration && !l.trim().is_empty()
    })
}

/// How `--explain` indents its sentence under a narrated call.
const EXPLAIN_INDENT: &str = "    # ";

/// A child's messages on one line, for an error (its `socklab: ` tag left out: ours says it).
fn complaints(stderr: &str) -> String {
    let lines: Vec<&str> = messages(stderr).map(|l| l.strip_prefix("socklab: ").unwrap_or(l)).collect();
    if lines.is_empty() { "it exited without saying why".into() } else { lines.join("; ") }
}

/// What the polled socket table could not show exactly, said from what it did show:
/// - each drop of the listener's accept queue comes from an accept4 that returned earlier; the
///   sample that shows it lags the call by the polling interval, and the note says by how much;
/// - the closing states (FIN-WAIT-1/2, CLOSE-WAIT, LAST-ACK) usually last less than the time between
///   two dumps on loopback: those that no dump reported are named as not seen.
fn sampling_notes(events: &[Event]) -> Vec<Event> {
    let mut notes = Vec::new();
    let mut last_queue: Option<u32> = None;
    let mut last_accept: Option<u64> = None;
    let mut seen: Vec<&str> = Vec::new();
    for e in events {
        if is_call(e, Side::Server, "accept4(") || is_call(e, Side::Server, "accept(") {
            last_accept = Some(e.t_ns);
        }
        if let What::State { role, state, recv_q, .. } = &e.what {
            seen.push(state);
            if *role != "listener" || state != "LISTEN" {
                continue;
            }
            if let (Some(before), Some(accepted)) = (last_queue, last_accept.take()) {
                if *recv_q < before {
                    let lag = e.t_ns.saturating_sub(accepted) as f64 / 1e6;
                    let note = format!(
                        "the accept queue's drop to {recv_q} happened when accept4 took the connection; sock_diag \
                         is polled, so this sample was taken {lag:.1} ms after accept4 returned"
                    );
                    notes.push(Event { t_ns: e.t_ns + 1, what: What::Note(note) });
                }
            }
            last_queue = Some(*recv_q);
        }
    }
    let closing = ["FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT", "LAST-ACK"];
    let missed: Vec<&str> = closing.iter().copied().filter(|c| !seen.contains(c)).collect();
    if !seen.is_empty() && !missed.is_empty() {
        let note = format!(
            "not seen: {} - no dump of the socket table (about one per millisecond) caught these closing states; \
             they lasted less than that here. The FIN and ACK segments show when they began and ended.",
            missed.join(", ")
        );
        let t_ns = events.last().map_or(0, |e| e.t_ns + 1);
        notes.push(Event { t_ns, what: What::Note(note) });
    }
    notes
}

/// The calls of the tutorial's story: its programs' calls and what the kernel receives for them
/// (accept4, recvfrom, sendto), the prints' writes, and the accept delay's poll.
pub const TUTORIAL_CALLS: &[&str] = &[
    "socket",
    "setsockopt",
    "bind",
    "listen",
    "getsockname",
    "getpeername",
    "accept",
    "accept4",
    "connect",
    "recvfrom",
    "sendto",
    "shutdown",
    "close",
    "write",
    "poll",
];

/// The name of a narrated call: `accept4` of `accept4(3, ...) = 4`.
fn call_name(e: &Event) -> Option<String> {
    match &e.what {
        What::Call { line, .. } => line.split('(').next().map(str::to_string),
        _ => None,
    }
}

fn is_tutorial_call(e: &Event) -> bool {
    call_name(e).is_some_and(|n| TUTORIAL_CALLS.contains(&n.as_str()))
}

fn is_call(e: &Event, who: Side, prefix: &str) -> bool {
    matches!(&e.what, What::Call { side, line, .. } if *side == who && crate::trace::split_pid_mark(line).1.starts_with(prefix))
}

/// A private directory for the crowd's client logs, removed on drop. Its name is random and
/// mkdir(2) makes it new, mode 0700, as mkdtemp(3) does: a name guessed from the pid could be
/// planted in a shared /tmp beforehand (a symbolic link to another directory, whose files the
/// clean-up would then unlink).
struct TempDir(PathBuf);

impl TempDir {
    fn create() -> io::Result<TempDir> {
        let parent = std::env::temp_dir();
        crate::file::create_private_dir(&parent, "socklab-walkthrough")
            .map(TempDir)
            .map_err(|e| io::Error::new(e.kind(), format!("a private directory in {}: {e}", parent.display())))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = crate::file::remove_flat_dir(&self.0);
    }
}

/// Waits until the server's narration shows its `listen` (then it accepts connections), and
/// returns its port: the one its narrated `getsockname` read back (port 0), or else its `bind`'s.
/// `Err(None)` if the server exited first (its stderr says why); `Err(Some(why))` on a timeout.
fn wait_listening(server: &mut Process, limit: Duration) -> Result<u16, Option<String>> {
    let until = Instant::now() + limit;
    loop {
        let text = server.stderr_so_far();
        let lines: Vec<&str> = text.lines().filter_map(|l| parse_machine_line(l).map(|(_, _, t)| t)).collect();
        if lines.iter().any(|l| l.starts_with("listen(") && l.ends_with("= 0")) {
            let port = ["getsockname(", "bind("]
                .iter()
                .find_map(|call| lines.iter().rev().find(|l| l.starts_with(call)).and_then(|l| narrated_port(l)));
            // With port 0 the port comes from the getsockname after listen, whose narration may
            // not be written yet: wait for it (the time limit below still applies).
            if let Some(port) = port.filter(|p| *p != 0) {
                return Ok(port);
            }
        }
        if !matches!(server.child.try_wait(), Ok(None)) {
            return Err(None);
        }
        if Instant::now() >= until {
            return Err(Some(format!("no listening port in its narration after {} s: {text}", limit.as_secs())));
        }
        // Pacing of the check, not synchronisation: the narrated listen is the signal.
        thread::sleep(Duration::from_millis(2));
    }
}

/// The port in a narrated address: `sin_port=htons(5000)` or `sin6_port=htons(5000)`.
fn narrated_port(line: &str) -> Option<u16> {
    let at = line.find("_port=htons(")? + "_port=htons(".len();
    line[at..].split(')').next()?.parse().ok()
}

/// The narration lines of one process, with their `--explain` sentences attached.
fn calls(side: Side, stderr: &str) -> Vec<Event> {
    let mut events: Vec<Event> = Vec::new();
    for line in stderr.lines() {
        if let Some((start_ns, end_ns, text)) = parse_machine_line(line) {
            // The timeline tells the two processes apart by side; strace's `[pid N]` mark (the
            // server runs a second thread) is left out of its lines.
            let text = crate::trace::split_pid_mark(text).1;
            events.push(crate::timeline::model::call(side, start_ns, end_ns, text.to_string(), None));
        } else if let Some(sentence) = line.strip_prefix("    # ") {
            if let Some(Event { what: What::Call { explain, .. }, .. }) = events.last_mut() {
                *explain = Some(sentence.to_string());
            }
        }
    }
    events
}

/// Keeps this session's segments and labels the handshake and the close in the tutorial's words.
fn annotate(port: u16, captured: Vec<Captured>) -> Vec<Event> {
    let mine: Vec<Captured> =
        captured.into_iter().filter(|c| c.segment.src.port() == port || c.segment.dst.port() == port).collect();
    let from = |s: &Segment| if s.dst.port() == port { Side::Client } else { Side::Server };
    let isn = |side: Side| {
        mine.iter().find(|c| from(&c.segment) == side && c.segment.flags.has(Flags::SYN)).map_or(0, |c| c.segment.seq)
    };
    let (client_isn, server_isn) = (isn(Side::Client), isn(Side::Server));
    let (mut said_syn, mut said_synack, mut said_ack) = (false, false, false);
    let mut fins: Vec<Side> = Vec::new();
    let mut last_ack_done = false;
    let mut events = Vec::new();
    for c in mine {
        let s = &c.segment;
        let side = from(s);
        let (own, other) = if side == Side::Client { (client_isn, server_isn) } else { (server_isn, client_isn) };
        let f = s.flags;
        let note = if f.has(Flags::SYN) && !f.has(Flags::ACK) && !said_syn {
            said_syn = true;
            Some(
                "C: 约么?  (SYN: the client's kernel asks to connect. 约么? / 约 / 好的, \"shall we?\" / \"let's\" / \
                 \"OK\", are the tutorial's words for SYN, SYN-ACK, ACK)"
                    .to_string(),
            )
        } else if f.has(Flags::SYN) && f.has(Flags::ACK) && !said_synack {
            said_synack = true;
            Some("S: 约  (SYN-ACK: the server's kernel agrees; the server program is not involved)".to_string())
        } else if said_synack && !said_ack && side == Side::Client && f.0 == Flags::ACK && s.len == 0 {
            said_ack = true;
            Some("C: 好的  (ACK: handshake complete; connect() returns now)".to_string())
        } else if f.has(Flags::FIN) && !fins.contains(&side) {
            fins.push(side);
            Some(if fins.len() == 1 {
                format!("FIN: the {} closes first (the active close)", side.name())
            } else {
                format!("FIN: the {} closes too", side.name())
            })
        } else if fins.len() == 2 && !last_ack_done && f.0 == Flags::ACK && Some(&side) == fins.first() {
            last_ack_done = true;
            Some(format!("ACK of the last FIN: the {} now waits in TIME-WAIT", side.name()))
        } else {
            None
        };
        let rel_ack = if f.has(Flags::ACK) { s.ack.wrapping_sub(other) } else { 0 };
        let what = What::Segment { from: side, segment: s.clone(), rel_seq: s.seq.wrapping_sub(own), rel_ack, note };
        events.push(Event { t_ns: c.t_ns, what });
    }
    events
}

/// A child socklab process whose stdout and stderr are read on threads (so neither pipe fills).
/// Its stdout (the human lines) is not used: the timeline takes everything from the narration.
struct Process {
    child: Child,
    out_thread: JoinHandle<()>,
    err_thread: JoinHandle<()>,
    /// Its stderr as read so far (the whole of it once the process ended).
    err: Arc<Mutex<Vec<u8>>>,
}

/// Reads `r` to its end on a thread, appending to `into` as the bytes come.
fn read_all(mut r: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> io::Result<JoinHandle<()>> {
    thread::Builder::new().name("socklab-pipe".into()).spawn_counted(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n @ 1..) = r.read(&mut buf) {
            into.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(&buf[..n]);
        }
    })
}

impl Process {
    fn spawn(exe: &Path, args: &[&str]) -> io::Result<Process> {
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot start {}: {e}", exe.display())))?;
        let pipes = child.stdout.take().zip(child.stderr.take());
        let threads = pipes.ok_or_else(|| io::Error::other("no stdout or stderr pipe")).and_then(|(out, err)| {
            let err_text = Arc::new(Mutex::new(Vec::new()));
            let out_thread = read_all(out, Arc::new(Mutex::new(Vec::new())))?;
            Ok((out_thread, read_all(err, err_text.clone())?, err_text))
        });
        match threads {
            Ok((out_thread, err_thread, err)) => Ok(Process { child, out_thread, err_thread, err }),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
        }
    }

    /// Waits up to `limit` for the process to exit (killing it after that); returns success and stderr.
    fn wait(mut self, limit: Duration) -> (bool, String) {
        let ok = wait_or_kill(&mut self.child, limit);
        (ok, self.collect())
    }

    /// Asks the process to stop (SIGTERM), waits up to `limit`, returns its stderr.
    fn stop(mut self, limit: Duration) -> String {
        let _ = crate::process::kill(self.child.id() as i32, crate::process::SIGTERM);
        wait_or_kill(&mut self.child, limit);
        self.collect()
    }

    /// Kills at once (after `limit`) and returns stderr.
    fn finish(mut self, limit: Duration) -> String {
        wait_or_kill(&mut self.child, limit);
        self.collect()
    }

    /// What it wrote to stderr so far.
    fn stderr_so_far(&self) -> String {
        String::from_utf8_lossy(&self.err.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }

    fn collect(self) -> String {
        let Process { out_thread, err_thread, err, .. } = self;
        let _ = out_thread.join();
        let _ = err_thread.join();
        String::from_utf8_lossy(&err.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

/// Waits for exit, polling every 5 ms, for at most `limit`; then SIGKILL. True if it exited with 0.
fn wait_or_kill(child: &mut Child, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if Instant::now() < until => thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

/// Polls sock_diag on a thread and records every change of the sockets on one port.
struct Poller {
    stop: Arc<AtomicBool>,
    shared: Arc<Mutex<Polled>>,
    thread: JoinHandle<()>,
}

/// What the polling thread shares: the changes so far, and the latest dump's sockets.
#[derive(Default)]
struct Polled {
    events: Vec<Event>,
    /// `(role, state, recv_q)` of each socket of the port in the latest dump.
    now: Vec<(&'static str, TcpState, u32)>,
    /// How many dumps were made.
    dumps: u64,
    /// The listener's (Recv-Q, Send-Q) in the latest dump: (waiting for accept, backlog).
    listener: Option<(u32, u32)>,
    /// The longest accept queue seen so far, with the backlog: (backlog, Recv-Q).
    max_listener: Option<(u32, u32)>,
}

impl Poller {
    /// Polls the sockets on `port` of each address family in `families` (`AF_INET`, `AF_INET6`).
    fn start(port: u16, families: Vec<i32>) -> Poller {
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Mutex::new(Polled::default()));
        let (flag, out) = (Arc::clone(&stop), Arc::clone(&shared));
        let (ready, first_dump) = mpsc::channel();
        let thread = thread::spawn(move || {
            if let Err(e) = poll_states(port, &families, &flag, &out, ready) {
                let note = What::Note(format!("socket states unavailable: sock_diag failed: {e}"));
                lock(&out).events.push(Event { t_ns: monotonic_ns(), what: note });
            }
        });
        // The first dump records the listener before any client exists. (An error ends the wait too.)
        let _ = first_dump.recv_timeout(Duration::from_secs(5));
        Poller { stop, shared, thread }
    }

    /// Waits until a dump made after this call shows the close finished: the server's connection
    /// gone from the table, every client socket in TIME-WAIT, and the listener's accept queue
    /// empty again (so the timeline shows it back at 0 before the server is stopped).
    fn wait_for_close(&self, limit: Duration) {
        let until = Instant::now() + limit;
        let after = lock(&self.shared).dumps;
        while Instant::now() < until && !self.thread.is_finished() {
            let shared = lock(&self.shared);
            let done = shared.dumps > after
                && shared.now.iter().all(|(role, state, recv_q)| match *role {
                    "server" => false,
                    "client" => *state == TcpState::TimeWait,
                    _ => *recv_q == 0,
                });
            drop(shared);
            if done {
                return;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// The listener's accept queue in the latest dump: (waiting, backlog).
    fn listener_queue(&self) -> Option<(u32, u32)> {
        lock(&self.shared).listener
    }

    /// The longest accept queue seen: (backlog, waiting).
    fn max_listener_queue(&self) -> Option<(u32, u32)> {
        lock(&self.shared).max_listener
    }

    fn stop(self) -> Vec<Event> {
        self.stop.store(true, Ordering::Release);
        let _ = self.thread.join();
        std::mem::take(&mut lock(&self.shared).events)
    }
}

fn lock(m: &Mutex<Polled>) -> std::sync::MutexGuard<'_, Polled> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

type Key = (SocketAddr, SocketAddr);

fn poll_states(
    port: u16,
    families: &[i32],
    stop: &AtomicBool,
    out: &Mutex<Polled>,
    ready: Sender<()>,
) -> io::Result<()> {
    let mut ready = Some(ready);
    let mut diag = Diag::open()?;
    let mut last: HashMap<Key, (&'static str, TcpState, u32, u32)> = HashMap::new();
    // TIME-WAIT leftovers of an earlier run on the same port are not this story. They are told
    // apart by cookie, not by addresses: loopback reuses TIME-WAIT port pairs (tcp_tw_reuse), so
    // this session's client may have exactly the addresses of an old record.
    let mut earlier: Option<Vec<u64>> = None;
    let until = Instant::now() + Duration::from_secs(2 * 3600);
    while !stop.load(Ordering::Acquire) && Instant::now() < until {
        let mut sockets = Vec::new();
        for family in families {
            sockets.extend(diag.dump_timed(*family, false)?);
        }
        let end_ns = monotonic_ns();
        let ours = |s: &crate::diag::SockInfo| s.local.port() == port || s.remote.port() == port;
        let earlier = earlier.get_or_insert_with(|| {
            sockets.iter().filter(|(_, s)| ours(s) && s.state == TcpState::TimeWait).map(|(_, s)| s.cookie).collect()
        });
        let mut seen: Vec<Key> = Vec::new();
        let mut changes = Vec::new();
        // Each row is stamped with a time by which the kernel had read it (see `dump_timed`).
        for (t_ns, s) in sockets.iter().filter(|(_, s)| ours(s) && !earlier.contains(&s.cookie)) {
            // A listener has no peer (even after shutdown took it out of LISTEN).
            let role = match (s.remote.port() == 0, s.local.port() == port) {
                (true, _) => "listener",
                (false, true) => "server",
                (false, false) => "client",
            };
            let key = (s.local, s.remote);
            seen.push(key);
            let now = (role, s.state, s.recv_q, s.send_q);
            if last.get(&key) != Some(&now) {
                last.insert(key, now);
                changes.push((
                    *t_ns,
                    What::State {
                        role,
                        local: s.local,
                        remote: s.remote,
                        state: s.state.name(),
                        recv_q: s.recv_q,
                        send_q: s.send_q,
                    },
                ));
            }
        }
        last.retain(|key, (role, ..)| {
            let keep = seen.contains(key);
            if !keep {
                let (local, remote) = *key;
                let gone = What::Gone { role, local, remote };
                changes.push((end_ns, gone));
            }
            keep
        });
        let mut shared = lock(out);
        shared.events.extend(changes.into_iter().map(|(t_ns, what)| Event { t_ns, what }));
        shared.now = last.values().map(|(role, state, recv_q, _)| (*role, *state, *recv_q)).collect();
        let listening = last.values().find(|(role, state, ..)| *role == "listener" && *state == TcpState::Listen);
        shared.listener = listening.map(|(_, _, recv_q, send_q)| (*recv_q, *send_q));
        if let Some((waiting, backlog)) = shared.listener {
            if shared.max_listener.is_none_or(|(_, most)| waiting > most) {
                shared.max_listener = Some((backlog, waiting));
            }
        }
        shared.dumps += 1;
        drop(shared);
        if let Some(ready) = ready.take() {
            let _ = ready.send(());
        }
        // Pacing, not synchronisation: a dump every millisecond or so catches each state change
        // that lasts longer than that (the accept queue's second, TIME-WAIT's minute).
        thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_what_is_not_narration() {
        let stderr = "@trace 1 2 listen(3, 5) = 0\n    # The socket now accepts connections.\n\
                      bind failed: EADDRINUSE\n    # not after a call: a message\n\n\
                      socklab: note: something\n@trace 3 4 close(3) = 0\n";
        let said: Vec<&str> = messages(stderr).collect();
        assert_eq!(said, ["bind failed: EADDRINUSE", "    # not after a call: a message", "socklab: note: something"]);
        assert_eq!(complaints("@trace 1 2 close(3) = 0\n"), "it exited without saying why");
        assert_eq!(complaints("socklab: bind: EADDRINUSE\nplain\n"), "bind: EADDRINUSE; plain");
    }
}
