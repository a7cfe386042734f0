//! SIGINT / SIGTERM as a stop request, without a signal handler.
//!
//! Both signals are blocked in every thread (the mask is inherited by threads spawned later), and
//! one small thread waits for them with sigwait(3). When one arrives it requests the server's
//! stop, which wakes whatever the server is blocked in. Nothing runs in signal-handler context,
//! and the server's own accept/recv never see EINTR from these two signals.

use std::io;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use socklab::echo::Stop;
use socklab::process::{self, Disposition, SIGALRM, SIGINT, SIGTERM};

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

/// Routes SIGINT and SIGTERM to `stop.request()`. Call before spawning other threads.
pub fn stop_on_signals(stop: Arc<Stop>) -> io::Result<SignalThread> {
    process::block_signals(&[SIGINT, SIGTERM])?;
    let thread = thread::Builder::new().name("socklab-signals".into()).spawn(move || {
        // Timer signals (`--interrupt-every`) are for the serving threads, not this one.
        let _ = process::block_signals(&[SIGALRM]);
        if process::wait_for_signal(&[SIGINT, SIGTERM]).is_ok() {
            stop.request();
        }
    })?;
    Ok(SignalThread(thread))
}

/// The thread waiting for SIGINT/SIGTERM.
#[derive(Debug)]
pub struct SignalThread(thread::JoinHandle<()>);

impl SignalThread {
    /// Joins the thread if it has done its job (the stop was requested, so it is returning):
    /// exiting with it still running would leak it (valgrind reports its stack). If the server
    /// ended some other way the thread is still in sigwait and is left to the process exit.
    pub fn finish(self, stop: &Stop) {
        if stop.requested() {
            let _ = self.0.join();
        }
    }
}
