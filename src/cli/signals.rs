//! SIGINT / SIGTERM as a stop request (the second one: stop at once), two ways.
//!
//! **The tutorial's server** (`socklab server`, iterative, no flag that needs more): as a C
//! server does it. A handler that only counts is installed for each signal without `SA_RESTART`
//! (`process::catch_stop_signals`), so the accept or recv the server is blocked in returns
//! `EINTR`; the loop sees the count and stops (the echo switch follows the count:
//! `Stop::follow_signals`). One thread, no descriptor. Its lines are printed by
//! [`tutorial_printer`]: one write(2) to stdout each, on the serving thread.
//!
//! **Every other server** ([`stop_on_signals`]): several threads, and a signal is delivered to
//! any one of them that does not block it, so a handler cannot know whose call it interrupts.
//! Both signals are blocked in every thread (the mask is inherited by threads spawned later), and
//! one small thread waits for them on a signalfd(2). When one arrives it requests the server's
//! stop, which wakes whatever the server is blocked in. Nothing runs in signal-handler context,
//! and the server's own accept/recv never see EINTR from these two signals.

use socklab::process::SpawnCounted;
use std::io;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use socklab::echo::{Event, Sink, Stop};
use socklab::process::{self, Disposition, SIGALRM, SIGCHLD, SIGINT, SIGTERM, SignalFd};
use socklab::ready::{Interest, PollSet, Token};
use socklab::socket::{Socket, Type};

/// The tutorial server's printer: each line of the tutorial's (or, with `quiet`, the listening
/// line and the errors) written to stdout at once, with one write(2), by the thread that saw the
/// event, as the tutorial's `print` does. A stdout nobody reads blocks the server, as it would
/// block the tutorial's (`--json` and `--ready-file`, for scripts, bring a log thread that never
/// lets it); a stop signal still ends that write.
pub fn tutorial_printer(quiet: bool) -> Sink {
    Arc::new(move |event: &Event<'_>| {
        let needed = matches!(
            event,
            Event::Listening(_) | Event::ConnectionError(..) | Event::SpawnDeferred(..) | Event::AcceptError(_)
        );
        if let (Event::Grace { .. }, false) = (event, quiet) {
            let _ = socklab::file::write_stderr(format!("{event}\n").as_bytes());
        }
        if (quiet && !needed) || !event.in_tutorial() {
            return;
        }
        let _ = socklab::file::write_stdout(format!("{event}\n").as_bytes());
    })
}

/// `sink`, with the stop's "stopping: N connections finishing, up to 5s; Ctrl-C again to stop
/// now" also written straight to stderr (unless `quiet`), not through the log's queue: it is for
/// the person who just pressed Ctrl-C and is waiting.
pub fn with_grace_line(sink: Sink, quiet: bool) -> Sink {
    Arc::new(move |event: &Event<'_>| {
        if let (Event::Grace { .. }, false) = (event, quiet) {
            let _ = socklab::file::write_stderr(format!("{event}\n").as_bytes());
        }
        sink(event)
    })
}

/// Sends SIGALRM to the process every `interval`, with a handler that only counts and no
/// SA_RESTART (`Disposition::Interrupt`): every blocking accept/recv/send is interrupted with EINTR
/// again and again. A test hook (`--interrupt-every`, hidden from --help); returns a guard that
/// stops the timer.
pub fn interrupt_every(interval: Duration) -> io::Result<TimerGuard> {
    process::set_disposition(SIGALRM, Disposition::Interrupt)?;
    process::set_interval_timer(Some(interval))?;
    Ok(TimerGuard)
}

/// Stops the interval timer when dropped and tells how many signals were caught.
#[derive(Debug)]
pub struct TimerGuard;

impl Drop for TimerGuard {
    fn drop(&mut self) {
        let _ = process::set_interval_timer(None);
        let caught = process::interrupts(SIGALRM);
        eprintln!("socklab: note: caught {caught} SIGALRM signals (--interrupt-every)");
    }
}

/// Routes SIGINT and SIGTERM to `stop.request()`: the first starts the graceful stop, a second
/// cuts at once. Also blocks SIGCHLD, for the fork model's signalfd: in every thread, so the
/// kernel can deliver it to none of them (see `echo/model/fork.rs`). Call before spawning other
/// threads.
pub fn stop_on_signals(stop: Arc<Stop>) -> io::Result<SignalThread> {
    // Under --step, no prompt between blocking SIGINT and the thread that takes it (a Ctrl-C at
    // that prompt would reach nobody).
    socklab::trace::without_pauses(|| start_signal_thread(stop))
}

fn start_signal_thread(stop: Arc<Stop>) -> io::Result<SignalThread> {
    process::block_signals(&[SIGINT, SIGTERM, SIGCHLD])?;
    let signals = SignalFd::new(&[SIGINT, SIGTERM])?;
    let (quit, quit_other) = Socket::pair(Type::STREAM)?;
    let thread = thread::Builder::new().name("socklab-signals".into()).spawn_counted(move || {
        // Under --step this thread's calls are not paused: it must stay free to take Ctrl-C.
        socklab::trace::never_pause_this_thread();
        // Timer signals (`--interrupt-every`) are for the serving threads, not this one.
        let _ = process::block_signals(&[SIGALRM]);
        let mut set = PollSet::new();
        set.push(&signals, Token(0), Interest::READABLE);
        set.push(&quit_other, Token(1), Interest::READABLE);
        loop {
            if set.wait(None).is_err() || set.readiness(1).any() {
                return; // the server has ended
            }
            // Under --step, Ctrl-C at a prompt ends the program here, before this thread's next
            // call would wait for that prompt (SIGTERM pending too: it is a stop all the same).
            if set.readiness(0).any() {
                socklab::trace::ctrl_c();
            }
            match signals.drain() {
                // Each wake-up with signals taken is one more request: the second one cuts.
                Ok(n) if n > 0 => stop.request(),
                Ok(_) => {}
                Err(_) => return,
            }
        }
    })?;
    Ok(SignalThread { thread, quit })
}

/// The thread waiting for SIGINT/SIGTERM.
#[derive(Debug)]
pub struct SignalThread {
    thread: thread::JoinHandle<()>,
    quit: Socket,
}

impl SignalThread {
    /// Ends the thread (shutting down its quit line wakes its poll) and joins it: exiting with it
    /// still running would leak it (valgrind reports its stack).
    pub fn finish(self) {
        let _ = self.quit.shutdown(std::net::Shutdown::Both);
        let _ = self.thread.join();
    }
}
