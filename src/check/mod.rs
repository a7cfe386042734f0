//! `socklab check`: a conformance and robustness suite for any echo server — a student's, a
//! library's, a service in CI.
//!
//! [`run`] points the cases at one server ([`Target`]: a TCP address, a Unix socket, or a command
//! to spawn on a free port) and returns a [`Report`]: each case passed, failed (what was expected,
//! what was observed, and a lesson naming the man page to read) or informational (a property,
//! not a fault: "one client at a time").
//!
//! ```no_run
//! use socklab::check::{self, Options, Target};
//!
//! let report = check::run(&Target::Spawn("python3 server.py {port}".into()), &Options::default(), &mut |_| {})?;
//! assert_eq!(report.failed(), 0, "{:#?}", report.results);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Every case is bounded: each has its own time limit, every wait inside it is a poll(2) against
//! that deadline, and a case that still has not returned a few seconds after its limit is
//! abandoned (failed) by the runner, so no server — silent, dying or flooding — can hang `check`.
//! A spawned server that dies during a case fails that case and is restarted for the next.
//!
//! Cases draw their sizes from a seeded generator: `--case ID --seed N` replays one exactly.
//!
//! Uses (floor 4 on floor 4, by name): `bench` (the byte-exact load generator for the many-client
//! cases), `timeline::json` (the crate's JSON writer), `trace` (strace's spelling of addresses).

mod cases;
mod crowd;
mod flow;
pub mod html;
mod proc;
pub mod report;
mod server;
mod strace;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::SockAddr;
use crate::process::SpawnCounted;

pub use cases::{CASES, Case, Needs};
pub use flow::Peer;
pub use server::{Stopped, split_words};

/// The server under test.
#[derive(Debug, Clone)]
pub enum Target {
    /// A running TCP server (IPv4 or IPv6).
    Tcp(SocketAddr),
    /// A running server on a Unix stream socket.
    Unix(SockAddr),
    /// A command line with `{port}` in it: started on a free port, stopped at the end.
    Spawn(String),
}

/// What the server is expected to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expect {
    /// Anything: serving one client at a time is reported, not failed.
    #[default]
    Any,
    /// Concurrent: a client that idles or never reads must not hold the others up.
    Concurrent,
}

/// How to run the suite.
#[derive(Debug, Clone)]
pub struct Options {
    /// The suite's seed; each case derives its own from it and its id.
    pub seed: u64,
    /// Only these cases: ids (`echo.basic`) or groups (`echo`); empty: every case the target allows.
    pub cases: Vec<String>,
    /// Smaller sizes and counts (seconds instead of tens of seconds).
    pub quick: bool,
    /// What the server is expected to be.
    pub expect: Expect,
    /// With [`Target::Spawn`]: how long the server may take to accept its first connection.
    pub ready_timeout: Duration,
    /// With [`Target::Spawn`]: run it under `strace -f` and report what the calls show.
    pub strace: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            seed: 1,
            cases: Vec::new(),
            quick: false,
            expect: Expect::Any,
            ready_timeout: Duration::from_secs(10),
            strace: false,
        }
    }
}

/// How a case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The server did what a correct echo server does.
    Passed,
    /// It did not: a bug.
    Failed,
    /// A property, not a fault (e.g. it serves one client at a time).
    Informational,
    /// Not applicable to this target (e.g. an IPv6 case against a Unix socket).
    Skipped,
}

/// What one case sent, what came back, and where the two diverged.
#[derive(Debug, Clone, Default)]
pub struct Transcript {
    /// What happened, step by step ("sent 5 bytes", "recv = 0 after 2 ms").
    pub steps: Vec<String>,
    /// The first echoed byte that differs from the byte sent at that offset.
    pub divergence: Option<Divergence>,
}

/// Where the echo stopped matching.
#[derive(Debug, Clone)]
pub struct Divergence {
    /// Offset of the first differing byte in the stream.
    pub offset: usize,
    /// Offset of the first byte of the two windows below.
    pub window_start: usize,
    /// The bytes sent around the offset.
    pub sent: Vec<u8>,
    /// The bytes that came back around it.
    pub came_back: Vec<u8>,
}

const MAX_STEPS: usize = 60;

impl Transcript {
    /// Notes a step (at most a few dozen are kept).
    pub fn step(&mut self, text: String) {
        if self.steps.len() < MAX_STEPS {
            self.steps.push(text);
        } else if self.steps.len() == MAX_STEPS {
            self.steps.push("... (further steps not recorded)".into());
        }
    }

    /// The echo differs at `offset`; `got` are the bytes received from there on.
    pub fn diverged(&mut self, sent: &[u8], offset: usize, got: &[u8]) {
        if self.divergence.is_some() {
            return;
        }
        let start = offset.saturating_sub(16);
        let end = (offset + 48).min(sent.len());
        let mut came_back = sent[start..offset.min(sent.len())].to_vec();
        came_back.extend_from_slice(&got[..got.len().min(48)]);
        self.divergence =
            Some(Divergence { offset, window_start: start, sent: sent[start.min(end)..end].to_vec(), came_back });
    }
}

/// One case's result.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// Stable id (`echo.basic`).
    pub id: &'static str,
    /// Its group (`echo`).
    pub group: &'static str,
    /// One line saying what it does.
    pub title: &'static str,
    /// How it ended.
    pub outcome: Outcome,
    /// What a correct server does here.
    pub expected: String,
    /// What this one did.
    pub observed: String,
    /// What it means for the code, and the man page to read.
    pub lesson: String,
    /// How long it took.
    pub seconds: f64,
    /// The case's seed (derived from the suite's seed and the id).
    pub seed: u64,
    /// What was sent and what came back.
    pub transcript: Transcript,
    /// With `--strace`, for a failed case: the server's calls made while it ran (the first
    /// [`STRACE_LINES_PER_CASE`]), as strace printed them.
    pub strace: Vec<String>,
}

/// The most strace lines the report keeps for one failed case.
pub const STRACE_LINES_PER_CASE: usize = 60;

impl CaseResult {
    /// `Some(true)` passed, `Some(false)` failed, `None` informational or skipped.
    pub fn passed(&self) -> Option<bool> {
        match self.outcome {
            Outcome::Passed => Some(true),
            Outcome::Failed => Some(false),
            Outcome::Informational | Outcome::Skipped => None,
        }
    }
}

/// What the spawned server did over the run.
#[derive(Debug, Clone, Default)]
pub struct ServerNotes {
    /// The command line as run (the last start's port).
    pub command: String,
    /// The process id of the last start.
    pub pid: i32,
    /// How often it was started (1 + restarts after deaths and the restart case).
    pub starts: u32,
    /// Each death during a case: `case: killed by SIGPIPE`.
    pub deaths: Vec<String>,
    /// The end of its stderr (of the last start).
    pub stderr: String,
    /// How many bytes it wrote to stderr and stdout in all (last start).
    pub output_bytes: u64,
    /// How the final stop went.
    pub stop: Option<Stopped>,
    /// With `--strace`: findings, each quoting the line.
    pub strace: Vec<String>,
}

/// The whole run.
#[derive(Debug, Clone)]
pub struct Report {
    /// What was checked (`127.0.0.1:5000`, `/tmp/echo.sock`, the command line).
    pub target: String,
    /// The suite's seed.
    pub seed: u64,
    /// One per case run, in order.
    pub results: Vec<CaseResult>,
    /// With `--spawn`.
    pub server: Option<ServerNotes>,
    /// Cases left out because they need `--spawn`.
    pub need_spawn: usize,
    /// Wall-clock time of the run.
    pub seconds: f64,
}

impl Report {
    fn count(&self, outcome: Outcome) -> usize {
        self.results.iter().filter(|r| r.outcome == outcome).count()
    }

    /// Cases that failed.
    pub fn failed(&self) -> usize {
        self.count(Outcome::Failed)
    }

    /// Cases that passed.
    pub fn passed(&self) -> usize {
        self.count(Outcome::Passed)
    }

    /// Informational cases.
    pub fn informational(&self) -> usize {
        self.count(Outcome::Informational)
    }

    /// Skipped cases.
    pub fn skipped(&self) -> usize {
        self.count(Outcome::Skipped)
    }

    /// The result of case `id`.
    pub fn case(&self, id: &str) -> Option<&CaseResult> {
        self.results.iter().find(|r| r.id == id)
    }
}

/// What [`run`] reports while it goes.
#[derive(Debug)]
pub enum Progress<'a> {
    /// Case `index` (from 0) of `total` starts.
    Start {
        /// Its position.
        index: usize,
        /// How many will run.
        total: usize,
        /// The case.
        case: &'static Case,
    },
    /// A case ended.
    Done(&'a CaseResult),
    /// Something happened to the spawned server (a restart after a death).
    Server(String),
}

/// The spawned server, shared with the case that stops or restarts it.
#[derive(Debug)]
pub(crate) struct Slot {
    pub launch: server::Launch,
    pub spawned: Option<server::Spawned>,
    pub starts: u32,
}

impl Slot {
    /// Starts the server on `port` (a free one when `None`) and keeps it.
    pub fn start(&mut self, port: Option<u16>) -> io::Result<SocketAddr> {
        let port = match port {
            Some(p) => p,
            None => server::free_port()?,
        };
        // Under --strace each start writes its own file: FILE.1, FILE.2...
        let mut launch = self.launch.clone();
        if let Some(base) = &self.launch.strace {
            launch.strace = Some(PathBuf::from(format!("{}.{}", base.display(), self.starts + 1)));
        }
        let spawned = server::Spawned::start(&launch, port)?;
        let addr = spawned.addr;
        self.spawned = Some(spawned);
        self.starts += 1;
        Ok(addr)
    }
}

/// Everything a case gets.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub peer: Peer,
    pub seed: u64,
    pub deadline: Instant,
    pub quick: bool,
    pub expect: Expect,
    pub server: Option<Arc<Mutex<Slot>>>,
    pub transcript: Transcript,
    /// The case stopped the server itself (its end is not a death).
    pub stopped_server: bool,
}

/// The case's seed: the suite's, mixed with the id, so one id replays alone.
fn case_seed(seed: u64, id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in id.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The cases `options` selects for `target` (in suite order), and how many were left out because
/// they need `--spawn`. An unknown id or group is an `InvalidInput` error listing the known ones.
pub fn select(target: &Target, options: &Options) -> io::Result<(Vec<&'static Case>, usize)> {
    for want in &options.cases {
        if !CASES.iter().any(|c| c.id == want || c.group == want) {
            let groups: Vec<&str> = CASES.iter().map(|c| c.group).fold(Vec::new(), |mut v, g| {
                if !v.contains(&g) {
                    v.push(g);
                }
                v
            });
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "no case or group '{want}': groups are {}; `socklab check --list` shows every case",
                    groups.join(", ")
                ),
            ));
        }
    }
    let spawn = matches!(target, Target::Spawn(_));
    let mut chosen = Vec::new();
    let mut need_spawn = 0;
    for case in CASES {
        let wanted = options.cases.is_empty() || options.cases.iter().any(|w| w == case.id || w == case.group);
        if !wanted {
            continue;
        }
        if case.needs == Needs::Spawn && !spawn {
            if !options.cases.is_empty() && options.cases.iter().any(|w| w == case.id) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("case {} watches the server's process: it needs --spawn", case.id),
                ));
            }
            need_spawn += 1;
            continue;
        }
        chosen.push(case);
    }
    Ok((chosen, need_spawn))
}

/// How long past its limit a case may run before it is abandoned.
const OVERRUN: Duration = Duration::from_secs(5);

/// Runs the suite against `target`, calling `progress` as cases start and end.
pub fn run(target: &Target, options: &Options, progress: &mut dyn FnMut(&Progress<'_>)) -> io::Result<Report> {
    let started = Instant::now();
    let (chosen, need_spawn) = select(target, options)?;
    // The many-client cases hold up to a thousand connections and more at once.
    crate::process::raise_open_files(Some(4096))?;
    let strace_file = if matches!(target, Target::Spawn(_)) { strace_path(options)? } else { None };
    let (mut peer, slot, label) = match target {
        Target::Tcp(addr) => (Peer::Tcp(*addr), None, addr.to_string()),
        Target::Unix(addr) => (Peer::Unix(*addr), None, crate::trace::format::sockaddr(addr)),
        Target::Spawn(command) => {
            if !command.contains("{port}") {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("'{command}' has no {{port}}: write where the port goes, e.g. './a.out {{port}}'"),
                ));
            }
            let launch = server::Launch {
                command: command.clone(),
                ready_timeout: options.ready_timeout,
                nofile: None,
                strace: strace_file.clone(),
            };
            let mut slot = Slot { launch, spawned: None, starts: 0 };
            let addr = slot.start(None)?;
            (Peer::Tcp(addr), Some(Arc::new(Mutex::new(slot))), command.clone())
        }
    };
    let mut results = Vec::new();
    // When each case ran (wall clock), to find its calls in the strace.
    let mut windows: Vec<(f64, f64)> = Vec::new();
    let mut deaths = Vec::new();
    let total = chosen.len();
    for (index, case) in chosen.into_iter().enumerate() {
        progress(&Progress::Start { index, total, case });
        let seed = case_seed(options.seed, case.id);
        let limit = if options.quick { case.quick_limit } else { case.limit };
        let ctx = Ctx {
            peer: peer.clone(),
            seed,
            deadline: Instant::now() + limit,
            quick: options.quick,
            expect: options.expect,
            server: slot.clone(),
            transcript: Transcript::default(),
            stopped_server: false,
        };
        let case_started = Instant::now();
        let wall_started = wall_clock();
        let (tx, rx) = mpsc::channel();
        let run = case.run;
        let handle = std::thread::Builder::new().name(format!("check {}", case.id)).spawn_counted(move || {
            let mut ctx = ctx;
            let verdict = run(&mut ctx);
            let _ = tx.send((verdict, ctx.transcript, ctx.stopped_server));
        })?;
        let (mut verdict, transcript, stopped_server) = match rx.recv_timeout(limit + OVERRUN) {
            Ok(done) => {
                let _ = handle.join();
                done
            }
            Err(_) => (
                cases::Verdict::fail(format!(
                    "the case did not end within its limit of {:.0} s (+{} s): abandoned",
                    limit.as_secs_f64(),
                    OVERRUN.as_secs()
                )),
                Transcript::default(),
                false,
            ),
        };
        // A spawned server that ended during the case: the case failed (unless it stopped the
        // server itself), and a fresh one serves the next case.
        if let Some(slot) = &slot {
            let Ok(mut slot) = slot.try_lock() else {
                return Err(io::Error::other(format!("case {} still holds the server after its limit", case.id)));
            };
            // A process that is on its way out (an exit after the last reply) takes a few ms to go:
            // a short look keeps its death with the case that caused it.
            let settle = Instant::now() + Duration::from_millis(50);
            let status = loop {
                let status = slot.spawned.as_mut().and_then(|s| s.exited().map(|st| (st, s.stderr_quote())));
                if status.is_some() || stopped_server || Instant::now() >= settle {
                    break status;
                }
                std::thread::sleep(Duration::from_millis(5));
            };
            let needs_start = slot.spawned.is_none() || status.is_some();
            if let Some((status, stderr)) = status {
                if !stopped_server {
                    deaths.push(format!("{}: {status}", case.id));
                    verdict = verdict.server_died(&status, &stderr);
                }
            }
            if needs_start {
                let addr = slot.start(None)?;
                progress(&Progress::Server(format!("server restarted on {addr} after case {}", case.id)));
                peer = Peer::Tcp(addr);
            } else if let Some(s) = &slot.spawned {
                peer = Peer::Tcp(s.addr);
            }
        }
        let result = verdict.into_result(case, seed, case_started.elapsed(), transcript);
        windows.push((wall_started, wall_clock()));
        progress(&Progress::Done(&result));
        results.push(result);
    }
    let server = match slot {
        Some(slot) => {
            let mut slot = slot.lock().map_err(|_| io::Error::other("a case panicked holding the server"))?;
            let starts = slot.starts;
            let mut notes = ServerNotes { starts, deaths, ..ServerNotes::default() };
            let stop = slot.spawned.as_mut().map(|s| s.stop(Duration::from_secs(3)));
            if let Some(base) = &slot.launch.strace {
                for n in 1..=starts {
                    let path = PathBuf::from(format!("{}.{n}", base.display()));
                    if let Ok(text) = crate::file::read_to_string(&path) {
                        // Each failed case gets the calls made while it ran (strace -ttt's times
                        // are wall-clock seconds, as the windows are).
                        let timed = strace::timed(&text);
                        for (result, (from, to)) in results.iter_mut().zip(&windows) {
                            if result.outcome != Outcome::Failed {
                                continue;
                            }
                            let during = timed.iter().filter(|(t, _)| (*from..=*to).contains(t));
                            for (_, line) in during.take(STRACE_LINES_PER_CASE - result.strace.len()) {
                                result.strace.push(line.clone());
                            }
                        }
                        for finding in strace::findings(&text) {
                            if !notes.strace.contains(&finding) {
                                notes.strace.push(finding);
                            }
                        }
                    }
                }
                if let Some(dir) = base.parent() {
                    let _ = crate::file::remove_flat_dir(dir);
                }
            }
            let spawned = slot.spawned.as_mut();
            if let Some(s) = spawned {
                notes.command = s.command.clone();
                notes.pid = s.pid();
                notes.stop = stop;
                notes.stderr =
                    s.stderr.lock().map(|t| String::from_utf8_lossy(&t.bytes).into_owned()).unwrap_or_default();
                notes.output_bytes =
                    s.stderr.lock().map(|t| t.total).unwrap_or(0) + s.stdout.lock().map(|t| t.total).unwrap_or(0);
            }
            Some(notes)
        }
        None => None,
    };
    Ok(Report {
        target: label,
        seed: options.seed,
        results,
        server,
        need_spawn,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Seconds since the epoch (CLOCK_REALTIME), strace -ttt's clock.
fn wall_clock() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Where `--strace` has strace write the server's calls: a directory of this run's own, removed
/// at the end (one file per start of the server).
fn strace_path(options: &Options) -> io::Result<Option<PathBuf>> {
    if !options.strace {
        return Ok(None);
    }
    let dir = crate::file::create_private_dir(&std::env::temp_dir(), "socklab-check")?;
    Ok(Some(dir.join("server.strace")))
}
