//! One thread, many clients: nonblocking sockets and `poll(2)`.
//!
//! ```text
//! loop {
//!     poll([listener: POLLIN, each conn: POLLIN, or POLLOUT while it has unsent bytes])
//!     for each ready conn { recv once, send what fits, keep the rest (see session.rs) }
//!     if listener ready { accept until EAGAIN }
//! }
//! ```
//!
//! Calls it adds to the tutorial's (besides the common ones in `model/mod.rs`): `fcntl(F_SETFL,
//! O_NONBLOCK)` on the listener, `accept4(SOCK_NONBLOCK)` until `EAGAIN`, `setsockopt(TCP_NODELAY)`
//! per connection, and one `poll` per loop turn (recvs that find nothing return `EAGAIN`).
//!
//! Trade-off: no process or thread per client and no locks, but every poll call copies the whole
//! descriptor list into the kernel and back, and the loop scans it all, so each wake-up costs time
//! in the number of clients — fine for hundreds, slow for tens of thousands (see epoll.rs).
//!
//! Stop: the stop switch shuts the listener down, which makes poll report it (POLLHUP); the loop
//! sees the request, drops the listener from the set (it would report POLLHUP for ever) and keeps
//! serving its connections until their clients close. In the listener's place it watches a wake
//! line, which the stop switch shuts down at the cut (the end of the grace period); then it closes
//! every connection left.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::echo::accept::{Burst, accept_burst};
use crate::echo::config::ServerConfig;
use crate::echo::endpoint::Listener;
use crate::echo::event::Sink;
use crate::echo::session::{Conn, Want};
use crate::echo::stop::Stop;
use crate::ready::{self, Interest, PollSet, Token};
use crate::socket::{Socket, Type};

/// Entry 0: the listener, or once stopping the cut's wake line; connection `i` is `Token(i)` and
/// entry `i + 1`.
const LISTENER: Token = Token(usize::MAX);
const CUT: Token = Token(usize::MAX - 1);

/// Serves every client from this one thread until `stop` is requested.
pub fn serve(listener: &Listener, config: &ServerConfig, stop: &Arc<Stop>, sink: &Sink) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let max = config.max_conns.unwrap_or(usize::MAX);
    let mut buf = vec![0u8; config.buffer()];
    let mut conns: Vec<Conn> = Vec::new();
    let mut set = PollSet::new();
    let mut paused = false;
    let limits = config.limits();
    let (cut, _other_end) = Socket::pair(Type::STREAM)?;
    let cut = Arc::new(cut);
    let _watch = stop.watch(cut.clone());
    stop.serving(); // wake line made (no system call): --ready-file is written now
    loop {
        let stopping = stop.requested();
        if stop.is_cut() {
            stop.connections_cut(conns.len());
            return Ok(()); // dropping `conns` closes every connection
        }
        if stopping && conns.is_empty() {
            return Ok(());
        }
        // While paused or full, the listener is watched for nothing (only POLLHUP, the stop, is
        // reported then).
        let accepting = !paused && conns.len() < max;
        set.clear();
        if stopping {
            set.push(&*cut, CUT, Interest::READABLE);
        } else {
            set.push(listener, LISTENER, if accepting { Interest::READABLE } else { Interest::NONE });
        }
        for (i, conn) in conns.iter().enumerate() {
            let interest = if conn.want() == Want::Read { Interest::READABLE } else { Interest::WRITABLE };
            set.push(&conn.stream, Token(i), interest);
        }
        // Wake for the first connection time limit to pass, if any; and while paused after
        // EMFILE, look again after 100 ms: descriptors may have been freed.
        let due = conns.iter().filter_map(Conn::next_expiry).min();
        let pause = Duration::from_millis(100);
        let timeout = match ready::until(due) {
            t if paused => Some(t.map_or(pause, |t| t.min(pause))),
            t => t,
        };
        set.wait(timeout)?;
        if stop.requested() != stopping {
            continue; // the stop begins: the listener leaves the set
        }
        let mut i = 0;
        let open = conns.len();
        conns.retain_mut(|conn| {
            i += 1;
            // POLLHUP/POLLERR need no asking: the recv or send in `ready` reports them.
            !set.readiness(i).any() || conn.ready(&mut buf, sink) != Want::Close
        });
        if due.is_some() {
            let now = Instant::now();
            conns.retain(|conn| conn.check_limits(now, sink) != Want::Close);
        }
        for _ in conns.len()..open {
            stop.connection_ended(); // counted only while stopping
        }
        paused = false;
        if !stopping && set.readiness(0).readable {
            let room = max.saturating_sub(conns.len());
            let burst = accept_burst(listener, room, sink, |stream, peer| {
                stop.connection_opened();
                conns.push(Conn::new(stream, peer, limits));
            });
            paused = match burst {
                // The stop shut the listener down (EINVAL) after this loop last looked: not an
                // error, the stop; the next turn watches the wake line instead.
                Err(_) if stop.requested() => false,
                burst => burst? == Burst::Pause && conns.len() < max,
            };
        }
    }
}
