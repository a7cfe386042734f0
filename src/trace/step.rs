//! `--step`: stop before each system call until the student says go.
//!
//! On a terminal, "go" is Enter. When stdin is not a terminal (a script, a test, a background
//! job), it is SIGUSR1: the signal is blocked in every thread (so its default action, killing the
//! process, never happens) and the paused thread waits for it with sigwait(3).

use std::io::{self, BufRead, IsTerminal, Write};
use std::sync::Mutex;

use nix::sys::signal::{SigSet, Signal};

use super::format;
use crate::sys::trace::Call;

/// One pause at a time, even when several threads make calls.
static PAUSE: Mutex<()> = Mutex::new(());

fn usr1() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGUSR1);
    set
}

/// Blocks SIGUSR1 in the calling thread (and so in every thread it spawns later).
pub(super) fn prepare() -> io::Result<()> {
    if io::stdin().is_terminal() { Ok(()) } else { usr1().thread_block().map_err(io::Error::from) }
}

/// Prints the call about to be made and waits for the go-ahead.
pub(super) fn pause(call: &Call<'_>) {
    let _one_at_a_time = PAUSE.lock().unwrap_or_else(|p| p.into_inner());
    let next = format::line(call);
    let tty = io::stdin().is_terminal();
    let how = if tty {
        "press Enter to make it".to_string()
    } else {
        format!("send SIGUSR1 to make it: kill -USR1 {}", std::process::id())
    };
    // One write, so nothing (not even the terminal echoing an early Enter) lands mid-prompt.
    let prompt = format!("[step] next: {next}  ({how})\n");
    let _ = io::stderr().lock().write_all(prompt.as_bytes());
    if tty {
        let mut line = String::new();
        // EOF (Ctrl-D) or an error: just go on.
        let _ = io::stdin().lock().read_line(&mut line);
    } else {
        let _ = usr1().wait();
    }
}
