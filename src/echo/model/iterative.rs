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
    loop {
        if !hold_in_queue(listener, config.accept_delay, stop)? {
            return Ok(());
        }
        let accepted = listener.accept();
        if stop.requested() {
            return Ok(());
        }
        match accepted {
            Ok((conn, peer)) => {
                announce_peer(&conn, &peer, sink);
                // No TCP_NODELAY here: the tutorial's server sets none, and this loop makes its calls.
                // The stop switch shuts this connection down, which ends its recv at once.
                let conn = Arc::new(conn);
                let _watch = stop.watch(conn.clone());
                session::serve(&conn, peer, &mut buf, config.limits(), &quiet_at_stop);
                // `conn` is closed here, when the last Arc (ours or the watch's) is dropped.
            }
            Err(e) => survive_accept_error(e, sink)?,
        }
    }
}
