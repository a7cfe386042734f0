//! `--step`: stop before each system call until the student says go.
//!
//! On a terminal, "go" is Enter. When stdin is not a terminal (a script, a test, a background
//! job), it is SIGUSR1: the signal is blocked in every thread (so its default action, killing the
//! process, never happens) and the paused thread waits for it with sigwait(3).

use std::io::{self, IsTerminal};
use std::sync::{Mutex, MutexGuard};

use super::format;
use crate::process::{self, SIGUSR1};
use crate::sys::trace::Call;

/// One pause at a time, even when several threads make calls.
static PAUSE: Mutex<()> = Mutex::new(());

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
    let _one_at_a_time = PAUSE.lock().unwrap_or_else(|p| p.into_inner());
    let next = format::line(call);
    let tty = io::stdin().is_terminal();
    let how = if tty {
        "press Enter to make it".to_string()
    } else {
        format!("send SIGUSR1 to make it: kill -USR1 {}", super::pid())
    };
    // One write, so nothing (not even the terminal echoing an early Enter) lands mid-prompt.
    let prompt = format!("[step] next: {}{next}  ({how})\n", super::pid_mark());
    super::emit(&prompt);
    if tty {
        // The line the user typed, in one read(0) (narrated, like every call the program makes).
        // EOF (Ctrl-D) or an error: just go on.
        let _ = crate::file::read_stdin_once();
    } else {
        // The wait is a system call of its own: it is narrated too, which is the truth.
        let _ = process::wait_for_signal(&[SIGUSR1]);
    }
}
