//! `--step`: stop before each system call until the student says go.
//!
//! On a terminal, "go" is Enter. When stdin is not a terminal (a script, a test, a background
//! job), it is SIGUSR1: the signal is blocked in every thread (so its default action, killing the
//! process, never happens) and the paused thread waits for it with sigwait(3).
//!
//! **Ctrl-C always works.** At a prompt on a terminal, Ctrl-C ends the program at once:
//! `exit_group(130)`, the status a shell reports for a program Ctrl-C killed (the call about to be
//! made is not made: it may be the accept the server would block in). A program whose SIGINT
//! handler interrupts the paused read(0) (the tutorial's server) is caught by the read's `EINTR`;
//! one that takes SIGINT on a signal thread (every other server) calls [`interrupted`] from that
//! thread. Ctrl-C while a call runs (a blocked accept) is the program's own stop, and it runs
//! unpaused: after a Ctrl-C nothing pauses any more.

use std::io::{self, IsTerminal};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::format;
use crate::process::{self, SIGUSR1};
use crate::sys::trace::Call;

/// One pause at a time, even when several threads make calls.
static PAUSE: Mutex<()> = Mutex::new(());

/// A thread waits at a prompt on a terminal.
static AT_PROMPT: AtomicBool = AtomicBool::new(false);
/// Ctrl-C at a prompt: the program is ending, nothing pauses any more.
static ENDING: AtomicBool = AtomicBool::new(false);
/// Ctrl-C while no thread waited at a prompt (taken by a signal thread): the program is stopping,
/// unpaused.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// The exit status of a program ended by Ctrl-C at a prompt: 128 + SIGINT, as a shell reports it.
const CTRL_C_STATUS: i32 = 128 + libc::SIGINT;

/// SIGINT arrived (a signal thread took it): if a thread waits at a prompt on a terminal, ends
/// the program at once; otherwise returns, and the program stops as it does unstepped.
pub fn interrupted() {
    if AT_PROMPT.load(Ordering::Relaxed) {
        end_program();
    }
    if io::stdin().is_terminal() {
        STOPPING.store(true, Ordering::Relaxed);
    }
}

fn end_program() -> ! {
    ENDING.store(true, Ordering::Relaxed);
    super::emit("[step] Ctrl-C: ending the program\n");
    process::exit_now(CTRL_C_STATUS)
}

/// Holds the one-pause lock, for [`super::ForkLocks`].
pub(super) fn hold() -> MutexGuard<'static, ()> {
    PAUSE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Blocks SIGUSR1 in the calling thread (and so in every thread it spawns later).
pub(super) fn prepare() -> io::Result<()> {
    if io::stdin().is_terminal() {
        return Ok(());
    }
    // Kept blocked even where the program resets its mask (a fork child restoring an empty
    // mask), so a stepped child is paused by SIGUSR1, not killed by it.
    process::keep_blocked(SIGUSR1);
    process::block_signals(&[SIGUSR1])
}

/// Prints the call about to be made and waits for the go-ahead.
pub(super) fn pause(call: &Call<'_>) {
    if ENDING.load(Ordering::Relaxed) {
        return; // the exit_group of a Ctrl-C (the lock may be held by a thread at a prompt)
    }
    let tty = io::stdin().is_terminal();
    // After a Ctrl-C on a terminal (caught by the program's handler, or by its signal thread)
    // the program stops unpaused.
    if tty && (STOPPING.load(Ordering::Relaxed) || process::stop_signals() > 0) {
        return;
    }
    let _one_at_a_time = PAUSE.lock().unwrap_or_else(|p| p.into_inner());
    let next = format::line(call);
    let how = if tty {
        "press Enter to make it; Ctrl-C ends the program".to_string()
    } else {
        format!("send SIGUSR1 to make it: kill -USR1 {}", super::pid())
    };
    // One write, so nothing (not even the terminal echoing an early Enter) lands mid-prompt.
    let prompt = format!("[step] next: {}{next}  ({how})\n", super::pid_mark());
    super::emit(&prompt);
    if tty {
        // The line the user typed, in one read(0) (narrated, like every call the program makes).
        // EOF (Ctrl-D) or an error: just go on. EINTR: Ctrl-C if the stop handler counted one
        // more SIGINT meanwhile, else some other signal (wait on).
        let stops = process::stop_signals();
        AT_PROMPT.store(true, Ordering::Relaxed);
        while let Err(e) = crate::file::read_stdin_interruptible() {
            if e.kind() != io::ErrorKind::Interrupted {
                break;
            }
            if process::stop_signals() > stops {
                end_program();
            }
        }
        AT_PROMPT.store(false, Ordering::Relaxed);
    } else {
        // The wait is a system call of its own: it is narrated too, which is the truth.
        let _ = process::wait_for_signal(&[SIGUSR1]);
    }
}
