//! Many clients per thread with `epoll(7)`: the kernel keeps the list of watched sockets, and each
//! wait returns only the ready ones.
//!
//! ```text
//! each of N threads, with its own epoll instance:
//!     epoll_ctl(ADD, listener, EPOLLIN | EPOLLEXCLUSIVE); epoll_ctl(ADD, wake line, EPOLLIN)
//!     loop {
//!         for each event of epoll_wait() {
//!             listener:  accept until EAGAIN; epoll_ctl(ADD, conn, EPOLLIN)
//!             conn:      recv once into the thread's buffer, send what fits; if some is left,
//!                        keep only that and switch to EPOLLOUT (stop reading: backpressure);
//!                        once it is sent, back to EPOLLIN
//!             wake line: the stop was requested: close every connection, return
//!         }
//!     }
//! ```
//!
//! Calls it adds to the tutorial's (besides the common ones in `model/mod.rs`): per thread an
//! `epoll_create1`, `epoll_ctl` ADD/DEL per socket, `epoll_wait` per turn, a `socketpair` wake
//! line; `accept4(SOCK_NONBLOCK)` until `EAGAIN`, `setsockopt(TCP_NODELAY)`; for the thread count
//! one `sched_getaffinity` (the CPUs this process may run on; a CPU quota set in the cgroup is
//! not read).
//!
//! Trade-off: the cost of a wake-up is the number of ready sockets, not of all sockets, and a
//! client costs a few dozen bytes (its socket, its address, an empty remainder), so 10,000 idle
//! clients are cheap; in exchange the code is a state machine instead of a straight loop.
//!
//! How many threads: `config.threads`, or when 0 [`auto_threads`](crate::echo::auto_threads):
//! one per CPU, but half the CPUs on a loopback address or a Unix socket, whose clients share
//! this machine's CPUs (measured on 2 CPUs with the load generator on the same machine: one
//! thread was as fast within the noise and does not depend on how the connections split;
//! BENCHMARKS.md).
//!
//! Threads share the one listener, each registering it with `EPOLLEXCLUSIVE` so a new connection
//! wakes one waiting thread instead of all of them (the thundering herd). Whichever thread wakes
//! accepts until the queue is empty, so a burst of connects can land on one thread: 100
//! connections opened at once were split anywhere from 100/0 to 50/50 between 2 threads. The
//! alternative, one `SO_REUSEPORT` listener per thread, hashes each connection to a thread (the
//! C echo's split stayed within 39/61), but would need a different bind sequence, cannot move a
//! connection queued on a busy thread to an idle one, and resets connections still queued on a
//! listener when it closes. A trial build with it, in the same interleaved rounds as the shared
//! listener (2 threads, pingpong 100 conns), was no faster (paired with the C echo: 1.03, 0.95
//! and 0.99x against 1.10, 1.02 and 0.93x), so the shared listener is kept. See BENCHMARKS.md.
//!
//! Stop: `EPOLLEXCLUSIVE` wakes only some waiters, so the listener's shutdown cannot be the stop
//! signal here. Each epoll also watches two socketpair ends, which the stop switch shuts down;
//! each then stays readable, waking every thread (level-triggered, not exclusive). The first (the
//! drain line) at the request: the thread stops watching the listener and keeps serving its
//! connections until their clients close. The second (the cut line) at the end of the grace
//! period: the thread closes every connection left.
//!
//! EMFILE: an accept that fails for lack of descriptors leaves the connection queued and the
//! listener readable, so waiting again would spin. The thread removes the listener from its epoll
//! until one of its connections closes, or 100 ms pass.

use crate::SockAddr;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::echo::accept::{Burst, accept_burst};
use crate::echo::config::{ServerConfig, auto_threads_for};
use crate::echo::endpoint::{Listener, Stream};
use crate::echo::event::{Event, Sink};
use crate::echo::limits::Limits;
use crate::echo::session::{Conn, Want};
use crate::echo::stop::Stop;
use crate::ready::{self, Epoll, Events, Interest, Token};
use crate::socket::{Socket, Type};

/// Tokens of the listener and the wake line; a connection's is its descriptor number.
const LISTENER: Token = Token(usize::MAX);
const WAKE: Token = Token(usize::MAX - 1);
const DRAIN: Token = Token(usize::MAX - 2);

/// What every thread shares.
struct Shared<'a> {
    listener: &'a Listener,
    wake: &'a Socket,
    drain: &'a Socket,
    config: &'a ServerConfig,
    sink: &'a Sink,
    stop: &'a Stop,
    /// Connections open in all threads, for `max_conns`.
    open: AtomicUsize,
    /// Register the listener with EPOLLEXCLUSIVE (more than one thread).
    exclusive: bool,
}

/// Serves with `config.threads` threads (0: [`auto_threads`](crate::echo::auto_threads)) until
/// `stop` is requested.
pub fn serve(listener: &Listener, config: &ServerConfig, stop: &Arc<Stop>, sink: &Sink) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let threads = match config.threads {
        // A Unix socket's clients are on this machine by definition.
        0 => auto_threads_for(match listener {
            Listener::Tcp(tcp) => tcp.local_addr()?.ip().is_loopback(),
            Listener::Unix(_) | Listener::Seqpacket(_) => true,
        }),
        n => n,
    };
    let (wake, _other_end) = Socket::pair(Type::STREAM)?;
    let wake = Arc::new(wake);
    let _watch = stop.watch(wake.clone());
    let (drain, _drain_other_end) = Socket::pair(Type::STREAM)?;
    let drain = Arc::new(drain);
    let _drain_watch = stop.watch_listener(drain.clone());
    let open = AtomicUsize::new(0);
    let shared = Shared { listener, wake: &wake, drain: &drain, config, sink, stop, open, exclusive: threads > 1 };
    // A failing thread stops the others, so the server ends as a whole.
    super::on_threads("epoll", threads, stop, || worker(&shared).inspect_err(|_| stop.abort()))
}

/// One thread's event loop over its own epoll instance.
fn worker(shared: &Shared<'_>) -> io::Result<()> {
    let epoll = Epoll::new()?;
    let accepting = if shared.exclusive { Interest::READABLE.exclusive() } else { Interest::READABLE };
    epoll.add(shared.wake, WAKE, Interest::READABLE)?;
    epoll.add(shared.drain, DRAIN, Interest::READABLE)?;
    epoll.add(shared.listener, LISTENER, accepting)?;
    shared.stop.serving(); // this thread's epoll is set up (no system call)
    let max = shared.config.max_conns.unwrap_or(usize::MAX);
    let mut buf = vec![0u8; shared.config.buffer()];
    let mut events = Events::with_capacity(256);
    // This thread's connections, indexed by descriptor number (the epoll data of their events).
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut paused = false;
    let mut stopping = false;
    let limits = shared.config.limits();
    loop {
        if stopping && conns.iter().all(Option::is_none) {
            return Ok(()); // every connection of this thread was finished by its client
        }
        // Wake for the first connection time limit to pass (a scan only when limits are set), and
        // after 100 ms while paused.
        let due =
            if limits == Limits::default() { None } else { conns.iter().flatten().filter_map(Conn::next_expiry).min() };
        let pause = Duration::from_millis(100);
        let timeout = match ready::until(due) {
            t if paused => Some(t.map_or(pause, |t| t.min(pause))),
            t => t,
        };
        epoll.wait(&mut events, timeout)?;
        let mut closed_any = false;
        for event in events.iter() {
            match event.token {
                WAKE => {
                    // The cut: dropping `conns` closes every connection.
                    shared.stop.connections_cut(conns.iter().flatten().count());
                    return Ok(());
                }
                DRAIN => {
                    // The stop request: accept nothing more; serve what is open.
                    stopping = true;
                    let _ = epoll.delete(shared.listener); // ENOENT while paused
                    epoll.delete(shared.drain)?;
                }
                LISTENER if stopping => {}
                LISTENER => {
                    let room = reserve(&shared.open, max);
                    let take = |stream, peer| add_conn(&epoll, &mut conns, shared, stream, peer);
                    let burst = accept_burst(shared.listener, room, shared.sink, take);
                    if max != usize::MAX {
                        shared.open.fetch_sub(room, Ordering::Relaxed); // add_conn counted each one taken
                    }
                    let burst = match burst {
                        // The stop shut the listener down (EINVAL) before this thread saw the drain
                        // line, which it will see next.
                        Err(_) if shared.stop.requested() => {
                            let _ = epoll.delete(shared.listener);
                            continue;
                        }
                        burst => burst?,
                    };
                    if burst == Burst::Pause {
                        epoll.delete(shared.listener)?;
                        paused = true;
                    }
                }
                token => {
                    let Some(conn) = conns.get_mut(token.0).and_then(Option::as_mut) else { continue };
                    let before = conn.want();
                    let now = conn.ready(&mut buf, shared.sink);
                    let interest = if now == Want::Read { Interest::READABLE } else { Interest::WRITABLE };
                    if now == Want::Close || (now != before && epoll.modify(&conn.stream, token, interest).is_err()) {
                        // Closing the socket also removes it from the epoll instance.
                        conns[token.0] = None;
                        shared.open.fetch_sub(1, Ordering::Relaxed);
                        shared.stop.connection_ended(); // counted only while stopping
                        closed_any = true;
                    }
                }
            }
        }
        if due.is_some() {
            let now = Instant::now();
            for slot in
                conns.iter_mut().filter(|c| c.as_ref().is_some_and(|c| c.check_limits(now, shared.sink) == Want::Close))
            {
                *slot = None; // closing removes it from the epoll instance
                shared.open.fetch_sub(1, Ordering::Relaxed);
                shared.stop.connection_ended();
                closed_any = true;
            }
        }
        if paused && !stopping && (events.is_empty() || closed_any) {
            epoll.add(shared.listener, LISTENER, accepting)?;
            paused = false;
        }
    }
}

/// How many connections this thread may accept now. With a `--max-conns` bound the slots are
/// reserved in `open` for the length of the burst: other threads accept too, and two threads that
/// both saw room for the last client would otherwise both take one and go over the bound. (Without
/// a bound there is nothing to reserve, and threads must not hold each other back.)
fn reserve(open: &AtomicUsize, max: usize) -> usize {
    if max == usize::MAX {
        return usize::MAX;
    }
    match open.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some(max.max(n))) {
        Ok(before) => max.saturating_sub(before),
        Err(_) => 0,
    }
}

/// Registers a new connection for reading and keeps it in the slot of its descriptor number.
fn add_conn(epoll: &Epoll, conns: &mut Vec<Option<Conn>>, shared: &Shared<'_>, stream: Stream, peer: SockAddr) {
    let fd = stream.as_raw_fd() as usize;
    if let Err(e) = epoll.add(&stream, Token(fd), Interest::READABLE) {
        // ENOMEM / ENOSPC (max_user_watches): this client cannot be served; it is closed.
        (shared.sink)(&Event::ConnectionError(peer, &e));
        return;
    }
    if conns.len() <= fd {
        conns.resize_with(fd + 1, || None);
    }
    conns[fd] = Some(Conn::new(stream, peer, shared.config.limits()));
    shared.open.fetch_add(1, Ordering::Relaxed);
    shared.stop.connection_opened();
}
