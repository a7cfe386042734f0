//! One thread, many clients: nonblocking sockets and `poll(2)`.
//!
//! ```text
//! loop {
//!     poll([listener: POLLIN, each conn: POLLIN, or POLLOUT while it has unsent bytes])
//!     for each ready conn { recv once, send what fits, keep the rest (see nonblocking.rs) }
//!     if listener ready { accept until EAGAIN }
//! }
//! ```
//!
//! Trade-off: no process or thread per client and no locks, but every poll call copies the whole
//! descriptor list into the kernel and back, and the loop scans it all, so each wake-up costs time
//! in the number of clients — fine for hundreds, slow for tens of thousands (see epoll.rs).
//!
//! Stop: the stop switch shuts the listener down, which makes poll report it (POLLHUP); the loop
//! sees the request and closes every connection.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Instant;

use super::event::Sink;
use super::limits;
use super::nonblocking::{Accepting, Conn, Want, accept_burst};
use super::server::ServerConfig;
use super::stop::Stop;
use crate::sys::{self, POLLIN, POLLOUT, PollFd};
use crate::tcp::TcpListener;

/// Serves every client from this one thread until `stop` is requested.
pub fn serve(listener: &TcpListener, config: &ServerConfig, stop: &Arc<Stop>, sink: &Sink) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let max = config.max_conns.unwrap_or(usize::MAX);
    let mut buf = vec![0u8; config.buffer];
    let mut conns: Vec<Conn> = Vec::new();
    let mut fds: Vec<PollFd> = Vec::new();
    let mut paused = false;
    let limits = config.limits();
    loop {
        // fds[0] is the listener (events 0 while paused or full: only POLLHUP, the stop, is
        // reported then); fds[i + 1] is conns[i].
        let accepting = !paused && conns.len() < max;
        fds.clear();
        fds.push(PollFd { fd: listener.as_raw_fd(), events: if accepting { POLLIN } else { 0 }, revents: 0 });
        for conn in &conns {
            let events = if conn.want() == Want::Read { POLLIN } else { POLLOUT };
            fds.push(PollFd { fd: conn.stream.as_raw_fd(), events, revents: 0 });
        }
        // Wake for the first connection time limit to pass, if any; and while paused after
        // EMFILE, look again after 100 ms: descriptors may have been freed.
        let due = conns.iter().filter_map(Conn::next_expiry).min();
        let timeout = match limits::timeout_ms(due, Instant::now()) {
            t if paused && !(0..=100).contains(&t) => 100,
            t => t,
        };
        match sys::poll(&mut fds, timeout) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        if stop.requested() {
            return Ok(()); // dropping `conns` closes every connection
        }
        let mut i = 0;
        conns.retain_mut(|conn| {
            i += 1;
            // POLLHUP/POLLERR need no asking: the recv or send in `ready` reports them.
            fds[i].revents == 0 || conn.ready(&mut buf, sink) != Want::Close
        });
        if due.is_some() {
            let now = Instant::now();
            conns.retain(|conn| conn.check_limits(now, sink) != Want::Close);
        }
        paused = false;
        if fds[0].revents & POLLIN != 0 {
            let room = max.saturating_sub(conns.len());
            let burst = accept_burst(listener, room, sink, |stream, peer| conns.push(Conn::new(stream, peer, limits)))?;
            paused = burst == Accepting::Pause && conns.len() < max;
        }
    }
}
