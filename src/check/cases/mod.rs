//! The cases, in suite order, each with a stable id, a group, a time limit, what a correct server
//! does, and the lesson for the code when it does not.

mod close;
mod echo;
mod family;
mod load;
mod process;

use std::time::{Duration, Instant};

use super::flow::{Conn, Eof, Plan, left};
use super::{CaseResult, Ctx, Outcome, Transcript};

/// What a case needs of the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Any target.
    Any,
    /// A server spawned by `check` (it reads /proc, signals it, restarts it).
    Spawn,
}

/// One case.
#[derive(Debug)]
pub struct Case {
    /// Stable id: `group.name`.
    pub id: &'static str,
    /// Its group.
    pub group: &'static str,
    /// One line: what it does.
    pub title: &'static str,
    /// What a correct echo server does here.
    pub expected: &'static str,
    /// What a failure means for the code, and the man page to read.
    pub lesson: &'static str,
    /// Time limit.
    pub limit: Duration,
    /// Time limit with `--quick` (smaller sizes and counts).
    pub quick_limit: Duration,
    /// What it needs of the target.
    pub needs: Needs,
    pub(crate) run: fn(&mut Ctx) -> Verdict,
}

const fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

/// Every case, in the order they run. Ids are stable: scripts and `--case` refer to them.
pub static CASES: &[Case] = &[
    echo::BASIC,
    echo::TUTORIAL,
    echo::SPLIT,
    echo::BINARY,
    echo::ZERO_LENGTH,
    echo::BYTE_AT_A_TIME,
    echo::PIPELINED,
    echo::RANDOM_SIZES,
    echo::SLOW_READER,
    echo::WRITE_ALL_THEN_READ,
    close::HALF_CLOSE,
    close::EOF_PROMPT,
    close::EMPTY_SESSIONS,
    close::RST_MID_STREAM,
    close::RST_MID_ECHO,
    load::SEQUENTIAL,
    load::IDLE_CLIENT,
    load::SLOWLORIS,
    load::NEVER_READER,
    load::CONCURRENT_100,
    load::CONCURRENT_1000,
    load::STORM,
    family::IPV6,
    family::IPV4_MAPPED,
    process::FD_LEAK,
    process::THREADS,
    process::MEMORY,
    process::SIGPIPE,
    process::EMFILE,
    process::SIGTERM,
    process::RESTART,
];

/// What a case found.
#[derive(Debug)]
pub(crate) struct Verdict {
    outcome: Outcome,
    observed: String,
    expected: Option<String>,
    lesson: Option<String>,
}

impl Verdict {
    pub fn pass(observed: impl Into<String>) -> Verdict {
        Verdict { outcome: Outcome::Passed, observed: observed.into(), expected: None, lesson: None }
    }

    pub fn fail(observed: impl Into<String>) -> Verdict {
        Verdict { outcome: Outcome::Failed, observed: observed.into(), expected: None, lesson: None }
    }

    pub fn info(observed: impl Into<String>) -> Verdict {
        Verdict { outcome: Outcome::Informational, observed: observed.into(), expected: None, lesson: None }
    }

    pub fn skip(observed: impl Into<String>) -> Verdict {
        Verdict { outcome: Outcome::Skipped, observed: observed.into(), expected: None, lesson: None }
    }

    /// Failed, unless `expect concurrent` was not asked for: then informational.
    pub fn not_concurrent(ctx: &Ctx, observed: impl Into<String>) -> Verdict {
        if ctx.expect == super::Expect::Concurrent {
            Verdict::fail(format!("{} (--expect concurrent)", observed.into()))
        } else {
            Verdict::info(observed)
        }
    }

    /// `text` before what was observed.
    pub fn prefix(mut self, text: &str) -> Verdict {
        self.observed = format!("{text}{}", self.observed);
        self
    }

    /// A lesson for this particular failure instead of the case's.
    pub fn lesson(mut self, lesson: impl Into<String>) -> Verdict {
        self.lesson = Some(lesson.into());
        self
    }

    /// The server process ended during the case (it was not the case that stopped it).
    pub fn server_died(self, status: &str, stderr: &str) -> Verdict {
        let lesson = if status.contains("SIGPIPE") {
            LESSON_SIGPIPE
        } else if status.starts_with("killed by") {
            LESSON_KILLED
        } else {
            LESSON_DIED
        };
        let observed = if self.outcome == Outcome::Failed || self.outcome == Outcome::Passed {
            format!("{}; and the server process ended during the case: {status}{stderr}", self.observed)
        } else {
            format!("the server process ended during the case: {status}{stderr}")
        };
        Verdict { outcome: Outcome::Failed, observed, expected: self.expected, lesson: Some(lesson.into()) }
    }

    pub fn into_result(self, case: &'static Case, seed: u64, elapsed: Duration, transcript: Transcript) -> CaseResult {
        CaseResult {
            id: case.id,
            group: case.group,
            title: case.title,
            outcome: self.outcome,
            expected: self.expected.unwrap_or_else(|| case.expected.to_string()),
            observed: self.observed,
            lesson: self.lesson.unwrap_or_else(|| case.lesson.to_string()),
            seconds: elapsed.as_secs_f64(),
            seed,
            transcript,
            strace: Vec::new(),
        }
    }
}

/// The lesson when a server dies of SIGPIPE.
pub const LESSON_SIGPIPE: &str = "The server was killed by SIGPIPE. Writing to a connection whose peer has gone (reset it, \
or closed it and the server wrote on) makes send(2) fail with EPIPE and, unless told otherwise, the kernel also sends the \
process SIGPIPE, whose default action is to terminate it: one vanished client takes every other client down. Ignore the \
signal once at startup (signal(SIGPIPE, SIG_IGN)) or pass MSG_NOSIGNAL to every send, and treat EPIPE and ECONNRESET as \
the end of that one client. Read: send(2) (EPIPE), signal(7), socket(7).";

/// The lesson when a server is killed by another signal.
pub const LESSON_KILLED: &str = "The server process was killed by a signal while serving this case's clients (SIGSEGV, \
SIGABRT: a crash in its own code, often a buffer overrun on data it did not expect, such as a long message or a \
connection reset). A server must survive anything one client does. Read: signal(7), and run the server under \
valgrind or a sanitizer with this case (--case ID --seed N replays it).";

/// The lesson when a server exits during a case.
pub const LESSON_DIED: &str = "The server exited while serving this case's clients: an error on one connection \
(ECONNRESET from recv or send, EPIPE, a client that vanished) ended the whole process — in Python an uncaught \
ConnectionResetError or BrokenPipeError, in C an exit() in the error path. An error on one client's socket ends \
that client: close its socket and go back to accept (or to the event loop). Read: recv(2) and send(2) (ERRORS), \
tcp(7) (ECONNRESET).";

/// A small seeded generator (xorshift64*): the sizes and bytes of a case, replayable by seed.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15 | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: usize, high: usize) -> usize {
        low + (self.next() % (high - low + 1) as u64) as usize
    }

    /// `len` pseudo-random bytes (every value, NUL included).
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        out.truncate(len);
        out
    }

    /// Write sizes from `low` to `high` bytes summing to `total`.
    pub fn chunks(&mut self, total: usize, low: usize, high: usize) -> Vec<usize> {
        let mut sizes = Vec::new();
        let mut left = total;
        while left > 0 {
            let n = self.between(low, high).min(left);
            sizes.push(n);
            left -= n;
        }
        sizes
    }
}

/// Connects, noting it in the transcript; a failure is the verdict.
pub(crate) fn connect(ctx: &mut Ctx) -> Result<Conn, Verdict> {
    let deadline = ctx.deadline;
    let started = Instant::now();
    match Conn::connect(&ctx.peer, deadline) {
        Ok(conn) => {
            ctx.transcript.step(format!("connect {}: connected in {}", ctx.peer, ms(started.elapsed())));
            Ok(conn)
        }
        Err(e) => {
            ctx.transcript.step(format!("connect {}: {e}", ctx.peer));
            Err(Verdict::fail(format!("could not connect: {e}")).lesson(LESSON_CONNECT))
        }
    }
}

/// When the case cannot even connect.
pub const LESSON_CONNECT: &str = "The server did not accept this connection: nothing listens any more (it exited, or \
closed its listening socket), or its accept queue is full and the kernel drops the SYNs because the server stopped \
calling accept. A server keeps its listening socket open and keeps accepting for as long as it runs. Read: listen(2), \
accept(2).";

/// `d` as `12 ms` or `1.25 s`.
pub(crate) fn ms(d: Duration) -> String {
    if d < Duration::from_secs(1) { format!("{} ms", d.as_millis()) } else { format!("{:.2} s", d.as_secs_f64()) }
}

/// A fresh client connects, sends 32 bytes, gets them back, half-closes and sees the server's
/// FIN, all within `within`: "the server lives on and serves the next client".
pub(crate) fn next_client(ctx: &mut Ctx, within: Duration) -> Result<Duration, String> {
    let started = Instant::now();
    let deadline = (started + within).min(ctx.deadline);
    let conn = Conn::connect(&ctx.peer, deadline).map_err(|e| format!("the next client could not connect: {e}"))?;
    let data = Rng::new(ctx.seed ^ 0x5eed).bytes(32);
    let flow = conn.pump(&Plan::whole(&data), deadline, &mut ctx.transcript);
    if !flow.complete() {
        return Err(format!("the next client was not served: {}", flow.says(data.len())));
    }
    conn.shutdown_write().map_err(|e| format!("shutdown: {e}"))?;
    match conn.expect_eof(left(deadline)) {
        Eof::After(_) => {
            ctx.transcript.step(format!("the next client was served in {}", ms(started.elapsed())));
            Ok(started.elapsed())
        }
        other => Err(format!("the next client got its echo but then {}", eof_says(&other))),
    }
}

/// What an [`Eof`] that is not a clean end means, for `observed`.
pub(crate) fn eof_says(eof: &Eof) -> String {
    match eof {
        Eof::After(d) => format!("the server closed {} after our FIN", ms(*d)),
        Eof::Extra(n) => format!("{n} bytes came that were never sent"),
        Eof::None(d) => format!("the server did not close within {} of our FIN", ms(*d)),
        Eof::Error(e) => format!("recv failed instead of returning 0: {}", super::flow::describe(e)),
    }
}
