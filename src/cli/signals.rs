//! SIGINT / SIGTERM as a stop request, without a signal handler.
//!
//! Both signals are blocked in every thread (the mask is inherited by threads spawned later), and
//! one small thread waits for them with sigwait(3). When one arrives it requests the server's
//! stop, which wakes whatever the server is blocked in. Nothing runs in signal-handler context,
//! and the server's own accept/recv never see EINTR from these two signals.

use std::io;
use std::sync::Arc;
use std::thread;

use nix::sys::signal::{SigSet, Signal};
use socklab::echo::Stop;

/// Routes SIGINT and SIGTERM to `stop.request()`. Call before spawning other threads.
pub fn stop_on_signals(stop: Arc<Stop>) -> io::Result<()> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.thread_block().map_err(io::Error::from)?;
    thread::Builder::new().name("socklab-signals".into()).spawn(move || {
        if set.wait().is_ok() {
            stop.request();
        }
    })?;
    Ok(())
}
