//! The tutorial's server loop: one client at a time.
//!
//! ```text
//! loop {
//!     conn = accept(listener)           // blocks until a handshake has completed
//!     loop {
//!         data = recv(conn, 2048)       // blocks until bytes arrive; 0 = the client closed
//!         if data is empty { break }
//!         send_all(conn, data)          // echo it back
//!     }
//!     close(conn)
//! }
//! ```
//!
//! `--max-conns` changes nothing here: one connection is served at a time, and the others wait,
//! handshake done, in the listen queue.
//!
//! Stop: accept nothing more, but let the client being served finish (within the grace period).
//! Run as the tutorial's program (`socklab server`, no flag that needs more), it is stopped as a
//! C server is: the SIGINT handler (installed without SA_RESTART) makes the blocked accept or
//! recv return EINTR, and the loop checks the count the handler keeps (`Stop::follow_signals`);
//! the client being served times its grace period with SO_RCVTIMEO/SO_SNDTIMEO, set only then.
//!
//! Calls it adds to the tutorial's, under `strace -f socklab server --port P` (the README's
//! "Under strace"): `setsockopt(SO_REUSEADDR)` before bind, so a restart can bind the port while
//! the last run's connections sit in TIME-WAIT; two `rt_sigaction`s before `socket()` (the
//! handlers); and at Ctrl-C the kernel's `rt_sigreturn` after the handler. No thread.
//!
//! Trade-off: the simplest possible server, and while it serves one client every other client
//! waits — their handshakes complete anyway (the kernel does them) and they sit in the accept queue.

use std::io;
use std::sync::Arc;

use crate::echo::accept::{announce_peer, hold_in_queue, survive_accept_error};
use crate::echo::config::ServerConfig;
use crate::echo::endpoint::Listener;
use crate::echo::event::Sink;
use crate::echo::session;
use crate::echo::stop::{Stop, unless_stopped};

/// Serves clients one after another until `stop` is requested.
pub fn serve(listener: &Listener, config: &ServerConfig, stop: &Arc<Stop>, sink: &Sink) -> io::Result<()> {
    let mut buf = vec![0u8; config.buffer()];
    let quiet_at_stop = unless_stopped(stop, sink);
    stop.serving(); // set up (no system call): --ready-file is written now
    loop {
        // The loop checks the flag, as a C server checks the one its signal handler sets: a
        // request that came while a client was served ends the server here.
        if stop.requested() || !hold_in_queue(listener, config.accept_delay, stop)? {
            return Ok(());
        }
        // A stop signal interrupts this accept (EINTR), and the check below ends the loop.
        let accepted = listener.accept();
        if stop.requested() {
            return Ok(());
        }
        match accepted {
            Ok((conn, peer)) => {
                announce_peer(&conn, &peer, sink);
                stop.connection_opened();
                // No TCP_NODELAY here: the tutorial's server sets none, and this loop makes its calls.
                // The stop switch shuts this connection down, which ends its recv at once.
                let conn = Arc::new(conn);
                let _watch = stop.watch(conn.clone());
                session::serve(&conn, peer, &mut buf, config.limits(), Some(stop), &quiet_at_stop);
                // After a stop request the session went on until its client closed (finished) or the
                // grace period ran out (cut); then the loop's next check ends the server.
                stop.connection_ended();
                // `conn` is closed here, when the last Arc (ours or the watch's) is dropped.
            }
            Err(e) => survive_accept_error(e, sink)?,
        }
    }
}
