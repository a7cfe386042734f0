//! Floor 4: syscall narration for `--trace`, `--explain` and `--step`.
//!
//! `sys` reports every call it makes to one hook (see [`crate::sys::trace`]); this module installs
//! that hook and turns each report into:
//! - the line strace would print for the call ([`format`](mod@format)), on stderr, once the call returned;
//! - with `explain`, one sentence under it saying what the kernel just did ([`explain`]);
//! - with `step`, a pause *before* the call until Enter (or SIGUSR1 when stdin is not a terminal);
//! - with `machine`, the same line prefixed by CLOCK_MONOTONIC timestamps of the call's start and
//!   end, for `socklab walkthrough` to merge two processes' narration into one timeline.
//!
//! Nothing here costs anything until [`start`] is called: `sys` checks one atomic flag per call.
//! Nothing here prints on its own: every line goes to the writer the caller passes to [`start`]
//! (the CLI passes stderr), one `write_all` per call so lines of several threads never interleave.

pub mod explain;
pub mod fds;
pub mod format;
#[cfg(socklab_sock_diag)]
mod netlink;
mod step;
#[cfg(socklab_uring)]
pub mod uring;

use std::cell::{Cell, RefCell};
use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::sys::trace::{self as hook, Call, Phase};

/// What the narration prints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Add one plain sentence under each call.
    pub explain: bool,
    /// Pause before each call.
    pub step: bool,
    /// Prefix each line with `@trace START END` (monotonic nanoseconds) for `walkthrough`.
    pub machine: bool,
}

/// The prefix of a machine-readable narration line: `@trace <start_ns> <end_ns> <strace line>`.
pub const MACHINE_PREFIX: &str = "@trace ";

static OPTIONS: OnceLock<Options> = OnceLock::new();

/// Where narration and step prompts go.
static OUT: OnceLock<Mutex<Box<dyn Write + Send>>> = OnceLock::new();

thread_local! {
    /// When this thread's current call started (set at Enter, read at Exit).
    static STARTED: Cell<u64> = const { Cell::new(0) };
    /// Set while this thread pauses in `--step`: the calls the pause itself makes (its sigwait)
    /// are narrated, but do not pause again.
    static PAUSING: Cell<bool> = const { Cell::new(false) };
    /// This thread's id, asked once (0: not asked yet). Reset in a fork child.
    static TID: Cell<i32> = const { Cell::new(0) };
    /// The narration stream, held by this thread from the Enter of a call that wakes other
    /// threads (shutdown, kill) until its line is written: the woken thread's line (an `accept4`
    /// failing with EINVAL) waits, so an effect is never printed before its cause.
    static HELD: RefCell<Option<MutexGuard<'static, Box<dyn Write + Send>>>> = const { RefCell::new(None) };
    /// The narration's locks, held by a thread across its fork (see [`ForkLocks`]).
    static FORK_LOCKS: RefCell<Option<ForkLocks>> = const { RefCell::new(None) };
    /// The `[pid N]` mark of the call this thread is making, decided when it started.
    static MARK: RefCell<Option<String>> = const { RefCell::new(None) };
    /// `--explain`'s FIONREAD answer for the close this thread is making (asked at its Enter).
    static UNREAD: RefCell<Option<io::Result<i32>>> = const { RefCell::new(None) };
}

/// The process's id (its main thread's id), learned at [`start`] and in a fork child.
static PID: AtomicI32 = AtomicI32::new(0);
/// This is a fork child: its parent is followed too, so every line of it carries `[pid N]` (the
/// child cannot see when its parent's other tasks end; the parent outlives it in every model).
static CHILD: AtomicBool = AtomicBool::new(false);

/// The narration's own locks, taken by the thread about to fork and let go right after the fork
/// in both processes. fork(2) copies memory but only the calling thread: a lock another thread
/// held at that instant (the log thread paused in `--step`, or printing its line) would stay
/// locked in the child for ever, and the child would hang at its first narrated call. Taken in
/// the order every thread takes them (pause, then stream, then descriptor table).
struct ForkLocks {
    _pause: MutexGuard<'static, ()>,
    _fds: MutexGuard<'static, Option<std::collections::BTreeMap<std::os::fd::RawFd, fds::Known>>>,
}

/// Calls after which other threads may run at once: their narration waits for this call's line.
fn wakes_others(name: &str) -> bool {
    matches!(name, "shutdown" | "kill")
}

/// The calling thread's id, remembered per thread.
fn tid() -> i32 {
    TID.with(|t| {
        if t.get() == 0 {
            t.set(hook::own_tid());
        }
        t.get()
    })
}

/// Writes one whole piece of narration.
pub(crate) fn emit(text: &str) {
    let written = HELD.with(|held| {
        let mut held = held.borrow_mut();
        let out = held.as_mut()?;
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
        Some(())
    });
    if written.is_some() {
        return;
    }
    if let Some(out) = OUT.get() {
        let mut out = out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

/// The `[pid N] ` mark strace -f puts before a line while it follows more than one task (its
/// count of live tracees: it adds a task at its clone and drops it when the task exits). Ours:
/// the tasks socklab's code started and has not seen end ([`hook::tasks`]); any thread but the
/// first (one started outside `process::spawn` is alive, at least); a fork child.
fn pid_mark() -> String {
    let tid = tid();
    let many = tid != PID.load(Ordering::Relaxed) || CHILD.load(Ordering::Relaxed) || hook::tasks() > 1;
    if many { format!("[pid {tid:>5}] ") } else { String::new() }
}

/// Turns narration on for the whole process. Call early in `main`, before other threads exist:
/// step mode blocks SIGUSR1 here so that the mask is inherited by every thread spawned later.
pub fn start(options: Options, out: Box<dyn Write + Send>) -> io::Result<()> {
    if OPTIONS.set(options).is_err() {
        return Err(io::Error::other("narration was already started"));
    }
    let _ = OUT.set(Mutex::new(out));
    PID.store(tid(), Ordering::Relaxed);
    if options.step {
        step::prepare()?;
    }
    hook::install(on_call);
    Ok(())
}

/// On a terminal, `--step` never pauses the calling thread's calls (they are narrated all the
/// same): for a program's signal thread, which must stay free to take Ctrl-C while another thread
/// waits at a prompt. (Stepped by SIGUSR1, without a terminal, every call pauses.)
pub fn never_pause_this_thread() {
    if stepping_on_a_terminal() {
        PAUSING.with(|p| p.set(true));
    }
}

/// `--step` with stdin a terminal. (Asked only under `--step`: the question is an unnarrated
/// ioctl(TCGETS) of std's.)
fn stepping_on_a_terminal() -> bool {
    OPTIONS.get().is_some_and(|o| o.step) && io::stdin().is_terminal()
}

/// Runs `f` with `--step`'s pauses off on the calling thread, on a terminal (its calls narrated all the same):
/// for setting up a signal thread, between blocking SIGINT and the thread taking it, where a
/// prompt would leave a Ctrl-C with nobody to take it.
pub fn without_pauses<T>(f: impl FnOnce() -> T) -> T {
    let was = PAUSING.with(|p| p.replace(stepping_on_a_terminal() || p.get()));
    let result = f();
    PAUSING.with(|p| p.set(was));
    result
}

/// SIGINT arrived, taken by a signal thread of the program: under `--step` on a terminal, with a
/// thread waiting at a prompt, the program ends at once (see `step`); otherwise nothing happens.
pub fn ctrl_c() {
    if OPTIONS.get().is_some_and(|o| o.step) {
        step::interrupted();
    }
}

/// CLOCK_MONOTONIC in nanoseconds, the stamps of `--trace-machine` lines: [`sys::monotonic_ns`](crate::sys::monotonic_ns),
/// kept under this name for the narration's callers.
pub fn now_ns() -> u64 {
    crate::clock::monotonic_ns()
}

/// The hook `sys` calls around every system call.
fn on_call(call: &Call<'_>) {
    let options = OPTIONS.get().copied().unwrap_or_default();
    match call.phase {
        Phase::Enter => {
            if options.explain && call.name == "close" {
                probe_before_close(call);
            }
            if options.step && !PAUSING.with(Cell::get) {
                PAUSING.with(|p| p.set(true));
                step::pause(call);
                PAUSING.with(|p| p.set(false));
            }
            let forks = call.name == "clone";
            if forks {
                let pause = step::hold();
                if let Some(out) = OUT.get() {
                    let guard = out.lock().unwrap_or_else(|p| p.into_inner());
                    HELD.with(|held| *held.borrow_mut() = Some(guard));
                }
                let locks = ForkLocks { _pause: pause, _fds: fds::hold() };
                FORK_LOCKS.with(|l| *l.borrow_mut() = Some(locks));
            } else if wakes_others(call.name)
                && let Some(out) = OUT.get()
            {
                let guard = out.lock().unwrap_or_else(|p| p.into_inner());
                HELD.with(|held| *held.borrow_mut() = Some(guard));
            }
            // strace prints a line's mark when the call starts (a fork's line has none when it was
            // the only task; a blocking wait4 keeps the mark of its start).
            MARK.with(|m| *m.borrow_mut() = Some(pid_mark()));
            // After the pause, so the call's time is its own, not the student's.
            STARTED.with(|s| s.set(now_ns()));
        }
        Phase::Exit(result) => {
            if call.name == "clone" {
                // Both processes let go of their copy of the locks (a futex lock has no owner to
                // check, so the child may unlock what the parent's thread locked).
                FORK_LOCKS.with(|l| drop(l.borrow_mut().take()));
                // fork: both processes are followed from here on; the child has a new id.
                if matches!(result, Ok(0)) {
                    CHILD.store(true, Ordering::Relaxed);
                    HELD.with(|held| drop(held.borrow_mut().take()));
                    MARK.with(|m| m.borrow_mut().take());
                    TID.with(|t| t.set(0));
                    PID.store(tid(), Ordering::Relaxed);
                    // The child's descriptor table: its listener is the parent's too.
                    fds::learn(call, result);
                    // strace prints a fork once, in the parent, with the child's pid.
                    return;
                }
                if matches!(result, Ok(pid) if *pid > 0) {
                    hook::task_started();
                }
            }
            // A child reaped: one task fewer (strace dropped it when it exited, just before).
            if call.name == "wait4" && matches!(result, Ok(pid) if *pid > 0) {
                hook::task_ended();
            }
            let end = now_ns();
            let start = STARTED.with(|s| s.replace(0));
            let mut text = String::new();
            if options.machine {
                // Calls reported only at exit (getsockname...) start when they end, near enough.
                let start = if start == 0 || start > end { end } else { start };
                text.push_str(&format!("{MACHINE_PREFIX}{start} {end} "));
            }
            let mark = MARK.with(|m| m.borrow_mut().take()).unwrap_or_else(pid_mark);
            text.push_str(&mark);
            text.push_str(&format::line(call));
            text.push('\n');
            if options.explain {
                let fd = match call.args.first() {
                    Some(hook::Arg::Fd(fd)) => fds::known(*fd),
                    _ => None,
                };
                let unread = if call.name == "close" { UNREAD.with(|u| u.borrow_mut().take()) } else { None };
                let cx = explain::Context { fd, unread };
                if let Some(sentence) = explain::sentence_in(call, result, &cx) {
                    text.push_str(&format!("    # {sentence}\n"));
                }
            }
            if !options.machine
                && let Err(e) = result
                && e.raw_os_error() == Some(libc::EINTR)
            {
                signal_lines(&mark, options.explain, &mut text);
            }
            fds::learn(call, result);
            // One write per call, so lines from several threads do not interleave mid-line.
            emit(&text);
            HELD.with(|held| drop(held.borrow_mut().take()));
        }
    }
}

/// How many caught signals the narration has shown.
static SIGNALS_SHOWN: AtomicU64 = AtomicU64::new(0);

/// After a call that returned `EINTR`: the signal the handler caught meanwhile and the handler's
/// return, as strace prints them (the handler itself cannot narrate: a signal handler may take no
/// lock). Nothing when no new signal was caught, or its siginfo is one strace prints with fields
/// the handler does not keep.
fn signal_lines(mark: &str, explain: bool, text: &mut String) {
    let (seen, caught) = crate::process::last_caught();
    if seen == SIGNALS_SHOWN.swap(seen, Ordering::Relaxed) {
        return;
    }
    let Some((signal, ret)) = format::caught_signal(&caught) else { return };
    text.push_str(&format!("{mark}{signal}\n{mark}{ret}\n"));
    if explain {
        text.push_str(&format!("    # {}\n", explain::sigreturn(&caught)));
    }
}

/// `--explain` only: before closing a connected socket, asks the kernel how many bytes wait
/// unread in its receive queue (`ioctl(fd, FIONREAD)`, narrated like any call), because that
/// decides what close sends: a FIN when nothing is unread, a RST when something is. Listeners and
/// descriptors the narration never saw created are not asked.
fn probe_before_close(call: &Call<'_>) {
    let Some(hook::Arg::Fd(fd)) = call.args.first() else { return };
    let Some(known) = fds::known(*fd) else { return };
    if known.listening || known.linger_zero || known.signalfd {
        return;
    }
    let unread = crate::sys::ioctl_fionread(*fd);
    UNREAD.with(|u| *u.borrow_mut() = Some(unread));
}

/// Splits strace's `[pid N] ` mark off a narrated line: `(Some(N), rest)`, or `(None, line)`.
pub fn split_pid_mark(line: &str) -> (Option<i32>, &str) {
    let parsed = line.strip_prefix("[pid ").and_then(|rest| {
        let (pid, rest) = rest.split_once("] ")?;
        Some((pid.trim().parse().ok()?, rest))
    });
    match parsed {
        Some((pid, rest)) => (Some(pid), rest),
        None => (None, line),
    }
}

/// This process's id as the narration knows it (the `[pid N]` of its main thread).
pub(crate) fn pid() -> i32 {
    PID.load(Ordering::Relaxed)
}

/// Splits a machine-readable line into `(start_ns, end_ns, strace line)`; `None` for other lines.
pub fn parse_machine_line(line: &str) -> Option<(u64, u64, &str)> {
    let rest = line.strip_prefix(MACHINE_PREFIX)?;
    let (start, rest) = rest.split_once(' ')?;
    let (end, text) = rest.split_once(' ')?;
    Some((start.parse().ok()?, end.parse().ok()?, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_lines_round_trip() {
        assert_eq!(parse_machine_line("@trace 10 20 close(3) = 0"), Some((10, 20, "close(3) = 0")));
        assert_eq!(parse_machine_line("socklab: error"), None);
        assert_eq!(parse_machine_line("@trace x 20 close(3)"), None);
        assert!(now_ns() > 0);
    }
}
