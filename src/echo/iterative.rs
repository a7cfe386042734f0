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
use std::thread;
use std::time::Duration;

use super::event::{Event, Sink};
use super::limits::{Limits, echo_limited};
use super::server::ServerConfig;
use super::stop::Stop;
use crate::tcp::{TcpListener, TcpStream};

/// Serves clients one after another until `stop` is requested.
pub fn serve(listener: &TcpListener, config: &ServerConfig, stop: &Arc<Stop>, sink: &Sink) -> io::Result<()> {
    let mut buf = vec![0u8; config.buffer];
    loop {
        if !config.accept_delay.is_zero() {
            // Show the accept queue at work: wait until a finished handshake is queued (the
            // listener polls readable), then leave it there for `accept_delay` before taking it.
            // Counting from the arrival, not from listen, keeps the delay visible however late
            // the client starts.
            listener.wait_for_connection()?;
            if !stop.wait(config.accept_delay) {
                return Ok(());
            }
        }
        let accepted = listener.accept();
        if stop.requested() {
            return Ok(());
        }
        match accepted {
            Ok((conn, peer)) => {
                sink(&Event::Accepted(peer));
                no_delay(&conn);
                let conn = Arc::new(conn);
                let _watch = stop.watch(conn.clone());
                echo_limited(&conn, peer, &mut buf, config.limits(), sink);
                // `conn` is closed here when the last Arc (ours or the watch's) is dropped.
            }
            Err(e) => survive_accept_error(e, sink)?,
        }
    }
}

/// TCP_NODELAY on an accepted connection: an echo is a small reply that must leave at once, not
/// wait for Nagle's algorithm to batch it with the next one (which would never come).
pub fn no_delay(conn: &TcpStream) {
    // Fails only if the connection is already gone; its next recv reports why.
    let _ = conn.set_nodelay(true);
}

/// recv, send back, until the peer closes or the connection fails. Errors end this connection only.
/// No time limits: see [`echo_limited`] for the loop with `--idle-timeout` / `--max-conn-time`.
pub fn echo_connection(conn: &TcpStream, peer: std::net::SocketAddr, buf: &mut [u8], sink: &Sink) {
    echo_limited(conn, peer, buf, Limits::default(), sink)
}

/// Decides whether an accept failure ends the server. Failures caused by one client (it reset
/// before we accepted) or by a passing shortage (out of descriptors or memory) are reported and
/// survived; anything else is returned.
pub fn survive_accept_error(err: io::Error, sink: &Sink) -> io::Result<()> {
    match err.raw_os_error() {
        Some(libc::ECONNABORTED | libc::EPROTO | libc::EPERM) => {
            sink(&Event::AcceptError(&err));
            Ok(())
        }
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
            // The connection stays queued, so accept would fail again at once: back off instead
            // of spinning, and try again when descriptors may have been freed.
            sink(&Event::AcceptError(&err));
            thread::sleep(Duration::from_millis(100));
            Ok(())
        }
        _ => Err(err),
    }
}
