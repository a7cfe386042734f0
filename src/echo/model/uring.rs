//! Many clients per thread with `io_uring(7)`: instead of asking the kernel "which sockets are
//! ready?" and then making the recv and send calls ourselves, we hand it the recvs and sends, and
//! read what they returned from a ring in shared memory.
//!
//! ```text
//! each of N threads, with its own ring and its own provided-buffer ring:
//!     submit: multishot accept on the listener, poll on the wake line
//!     loop {
//!         io_uring_enter(submit everything queued this turn, wait for >= 1 completion;
//!                        with many connections for several, or 50 µs once one is there)
//!         for each completion {
//!             accept:    a new connection; submit a multishot recv on it
//!             recv:      data in a piece of a provided buffer, or in several (a bundle): queue
//!                        them (a piece joined to the last if it follows it in the same buffer)
//!             send:      let go of the pieces sent in full (a buffer goes back to the kernel
//!                        once used up and all sent); a short send leaves the rest queued
//!             wake line: the stop was requested: return (the ring cancels what is left)
//!         }
//!         for each connection that had a completion, once: unless a send is out, send all
//!             that is queued (one sendmsg when the pieces lie in different buffers); too much
//!             waiting for the client to read: stop the recv; room again: arm it
//!     }
//! ```
//!
//! Calls it adds to the tutorial's (besides the common ones in `model/mod.rs`): per thread
//! `io_uring_setup`, the rings' and the buffer pool's `mmap`, `io_uring_register` of the buffer
//! ring, then `io_uring_enter` per loop turn (the accepts, recvs and sends are ring entries, not
//! calls; its wait says `IORING_ENTER_NO_IOWAIT` where the kernel has it, 6.15, so that an idle
//! server does not show in `top` as a CPU waiting for I/O); for the thread count one `sched_getaffinity` (the CPUs this process may run on; on a
//! loopback address or a Unix socket half of them are used, as in the epoll model).
//!
//! Trade-off: one system call per loop turn for any number of recvs, sends and accepts, and no
//! readiness round trip (epoll_wait, then recv); in exchange, memory the kernel writes into at
//! any time (the provided buffers) and a completion for every request, including cancelled ones.
//! strace shows only the io_uring_enter calls: the recvs and sends happen inside the kernel,
//! which is why `--trace` prints the ring's traffic beneath each call.
//!
//! A seqpacket server (`--unix --seqpacket`) keeps messages whole: its buffers are not shared
//! between recvs (incremental consumption would cut a message at what is left of a buffer), each
//! recv asks with `MSG_TRUNC` so a message longer than `--buffer` is reported with its real length,
//! and each message goes back in a send of its own.
//!
//! With `--max-conns` the accept is one-shot, armed only while there is room; without, it is
//! multishot. After EMFILE (and while at the bound) the thread looks again when one of its
//! connections closes, or after 100 ms. The connection's state machine is in `../uring_session.rs`.

use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::echo::accept::{Failure, announce, classify};
use crate::echo::config::{ServerConfig, auto_threads_for};
use crate::echo::endpoint::{Listener, Stream, Transport};
use crate::echo::event::{Event, Sink};
use crate::echo::limits::Limits;
use crate::echo::stop::Stop;
use crate::echo::uring_session::{CANCEL_TOKEN, Conn};
use crate::ready::uring::{RECV, Ring, SEND, SENDMSG, too_old};
use crate::socket::{Socket, Type};
use crate::unix::UnixKind;

/// Tokens of the listener and the wake line; a connection's is its descriptor number.
const LISTENER: u64 = 1 << 41;
const WAKE: u64 = LISTENER + 1;

/// Submission slots per ring (completions: 8× as many).
const ENTRIES: u32 = 1024;

/// The memory of a thread's provided buffers. The kernel takes them in ring order and we give
/// them back at the tail, so over time every buffer is written: all of it becomes resident.
const POOL_BYTES: usize = 4 << 20;

/// Batched waits: one completion asked for per BATCH_PER open connections, at most BATCH_MAX,
/// and no longer than BATCH_WAIT_USEC once the first is there (BENCHMARKS.md).
const BATCH_PER: u32 = 8;
const BATCH_MAX: u32 = 16;
const BATCH_WAIT_USEC: u32 = 50;

/// The buffer size where each recv uses up a whole buffer (kernels before 6.12).
const SMALL_BUFFER: u32 = 4096;

/// What every thread shares.
struct Shared<'a> {
    listener: &'a Listener,
    wake: &'a Socket,
    config: &'a ServerConfig,
    sink: &'a Sink,
    stop: &'a Stop,
    /// Connections open in all threads, for `max_conns`.
    open: AtomicUsize,
}

/// Serves with `config.threads` threads until `stop` is requested; 0: the epoll model's rule
/// ([`auto_threads`](crate::echo::auto_threads)): one per CPU, half the CPUs where the clients
/// run on this machine too (loopback, Unix sockets).
pub fn serve(listener: &Listener, config: &ServerConfig, stop: &Arc<Stop>, sink: &Sink) -> io::Result<()> {
    let threads = match config.threads {
        0 => auto_threads_for(match listener {
            Listener::Tcp(tcp) => tcp.local_addr()?.ip().is_loopback(),
            Listener::Unix(_) | Listener::Seqpacket(_) => true,
        }),
        n => n,
    };
    let (wake, _other_end) = Socket::pair(Type::STREAM)?;
    let wake = Arc::new(wake);
    let _watch = stop.watch(wake.clone());
    let shared = Shared { listener, wake: &wake, config, sink, stop, open: AtomicUsize::new(0) };
    // A failing thread (no io_uring here...) ends the others through the wake line, not the stop
    // switch: the server ends with the error, and nobody asked it to stop.
    let work = || worker(&shared).inspect_err(|_| drop(wake.shutdown(Shutdown::Both)));
    super::on_threads("uring", threads, stop, work)
}

/// One thread's loop over its own ring.
fn worker(shared: &Shared<'_>) -> io::Result<()> {
    let (size, count) = buffer_shape(shared.config.buffer());
    let messages = matches!(shared.config.transport, Transport::Unix(_, UnixKind::Seqpacket));
    let mut ring = if messages { Ring::for_messages(ENTRIES, count, size)? } else { Ring::new(ENTRIES, count, size)? };
    if !messages && !ring.incremental() && size > SMALL_BUFFER && shared.config.buffer.is_none() {
        // Before Linux 6.12 each recv uses up a whole buffer: large ones would leave few for
        // many connections. Smaller ones, as many as fit in the pool.
        drop(ring);
        let (size, count) = buffer_shape(SMALL_BUFFER as usize);
        ring = Ring::new(ENTRIES, count, size)?;
    }
    ring.poll_in(shared.wake.as_fd(), WAKE);
    shared.stop.serving(); // this thread's ring is set up (no system call)
    let bounded = shared.config.max_conns.is_some();
    let max = shared.config.max_conns.unwrap_or(usize::MAX);
    let limits = shared.config.limits();
    // This thread's connections, indexed by descriptor number (their token). Declared after the
    // ring, so dropped before it: the ring's drop then cancels their requests and the sockets close.
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let (mut accepting, mut paused_at): (bool, Option<Instant>) = (false, None);
    let mut first_accept = true;
    // How many of `conns` are open (counted, not scanned for: a loop turn costs the same with
    // 10,000 connections as with one).
    let mut open_here: u32 = 0;
    // Connections that had completions this turn, and those whose recv ran out of buffers
    // (kept to reuse their allocations).
    let mut touched: Vec<u64> = Vec::new();
    let mut starved: Vec<u64> = Vec::new();
    loop {
        // Stopping (the listener was shut down): accept nothing more; serve the connections open
        // until their clients close (see stop.rs), or until the cut's wake line.
        let stopping = shared.stop.requested();
        if stopping && open_here == 0 {
            return Ok(());
        }
        // Arm the accept unless one is armed, at the bound, or paused after EMFILE (for 100 ms,
        // or until a connection of this thread closes, which clears `paused_at`).
        let pause_over = paused_at.is_none_or(|at| at.elapsed() >= Duration::from_millis(100));
        if !stopping && !accepting && pause_over && (!bounded || reserve(&shared.open, max)) {
            ring.accept(shared.listener.as_fd(), !bounded, LISTENER);
            (accepting, paused_at) = (true, None);
        }
        let due =
            if limits == Limits::default() { None } else { conns.iter().flatten().filter_map(Conn::next_expiry).min() };
        let mut timeout = due.map(|at| at.saturating_duration_since(Instant::now()));
        if !accepting {
            timeout = Some(timeout.map_or(Duration::from_millis(100), |t| t.min(Duration::from_millis(100))));
        }
        // Batching: with many connections, wait for several completions (or BATCH_WAIT, once one is
        // there) per io_uring_enter; with few, for one, so a lone client's echo is not delayed.
        ring.set_batch((open_here / BATCH_PER).clamp(1, BATCH_MAX), BATCH_WAIT_USEC);
        match ring.wait(timeout) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            result => result?,
        }
        let mut done = ring.take();
        let mut recycled = false;
        for c in &mut done {
            match c.token {
                WAKE => {
                    // The cut: dropping `conns` closes every connection.
                    shared.stop.connections_cut(open_here as usize);
                    return Ok(());
                }
                CANCEL_TOKEN => {}
                LISTENER => {
                    accepting &= c.more;
                    match (c.res, c.accepted.take()) {
                        (Ok(_), Some(fd)) => {
                            first_accept = false;
                            let socket = Socket::from(fd);
                            open_here +=
                                u32::from(add_conn(&mut ring, &mut conns, shared, shared.listener.stream(socket)));
                        }
                        // The stop shut the listener down: no accept is armed again.
                        _ if shared.stop.requested() => accepting = false,
                        (Err(libc::EINVAL), _) if first_accept && !bounded => {
                            return Err(too_old("multishot accept (IORING_ACCEPT_MULTISHOT)", "5.19"));
                        }
                        (res, _) => {
                            if bounded {
                                shared.open.fetch_sub(1, Ordering::Relaxed); // the reserved slot
                            }
                            let err = io::Error::from_raw_os_error(res.err().unwrap_or(libc::EIO));
                            match classify(&err) {
                                Failure::Fatal => return Err(err),
                                Failure::BackOff => paused_at = Some(Instant::now()),
                                Failure::Skip => {}
                            }
                            (shared.sink)(&Event::AcceptError(&err));
                        }
                    }
                }
                token => {
                    let Some(conn) = conns.get_mut(token as usize).and_then(Option::as_mut) else { continue };
                    if c.op == RECV && c.res == Err(libc::EINVAL) {
                        return Err(too_old("multishot recv (IORING_RECV_MULTISHOT)", "6.0"));
                    }
                    match c.op {
                        RECV => {
                            conn.on_recv(&mut ring, c, shared.sink);
                            if conn.starved {
                                starved.push(token); // at most once: no recv is armed while starved
                            }
                        }
                        SEND | SENDMSG => {
                            conn.on_send(&mut ring, c, shared.sink);
                            recycled = true;
                        }
                        _ => {}
                    }
                    if !conn.touched {
                        conn.touched = true;
                        touched.push(token);
                    }
                }
            }
        }
        ring.give_back(done);
        // Each connection a completion touched asks for what it needs next once, after all of this
        // turn's completions: what several recvs brought goes out in one send.
        for token in touched.drain(..) {
            let Some(conn) = conns.get_mut(token as usize).and_then(Option::as_mut) else { continue };
            conn.touched = false;
            conn.resume(&mut ring, token, shared.sink);
            if conn.is_done() {
                conns[token as usize] = None; // closes the socket: nothing of it is in the kernel
                open_here -= 1;
                shared.open.fetch_sub(1, Ordering::Relaxed);
                shared.stop.connection_ended(); // counted only while stopping
                paused_at = None;
            }
        }
        // Buffers went back to the kernel: connections whose recv ran out of them read again.
        if recycled {
            for token in starved.drain(..) {
                if let Some(conn) = conns.get_mut(token as usize).and_then(Option::as_mut).filter(|c| c.starved) {
                    conn.starved = false;
                    conn.resume(&mut ring, token, shared.sink);
                }
            }
        }
        if due.is_some() {
            let now = Instant::now();
            for (fd, conn) in conns.iter_mut().enumerate().filter_map(|(fd, c)| Some((fd, c.as_mut()?))) {
                conn.check_limits(now, shared.sink);
                conn.resume(&mut ring, fd as u64, shared.sink); // cancels the recv of an expired one
            }
        }
    }
}

/// Takes a new connection: TCP_NODELAY, its peer's address, and a multishot recv. False if it
/// was gone before it could be served.
fn add_conn(ring: &mut Ring, conns: &mut Vec<Option<Conn>>, shared: &Shared<'_>, stream: Stream) -> bool {
    if shared.config.max_conns.is_none() {
        shared.open.fetch_add(1, Ordering::Relaxed); // with a bound the slot was reserved before accepting
    }
    let Ok(peer) = stream.as_ref().peer_addr() else {
        shared.open.fetch_sub(1, Ordering::Relaxed); // it reset before we looked: nothing to serve
        return false;
    };
    announce(&stream, &peer, shared.sink);
    shared.stop.connection_opened();
    let fd = stream.as_raw_fd() as usize;
    if conns.len() <= fd {
        conns.resize_with(fd + 1, || None);
    }
    let conn = conns[fd].insert(Conn::new(stream, peer, shared.config.limits()));
    conn.resume(ring, fd as u64, shared.sink);
    true
}

/// Reserves one connection slot under the `max_conns` bound (shared by the threads).
fn reserve(open: &AtomicUsize, max: usize) -> bool {
    open.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < max).then_some(n + 1)).is_ok()
}

/// Provided buffers of `--buffer` bytes, as many as fit in [`POOL_BYTES`] (a power of two,
/// 16 to 4096).
fn buffer_shape(buffer: usize) -> (u32, u16) {
    let size = buffer.clamp(1, 1 << 20);
    let count = (POOL_BYTES / size).clamp(16, 4096);
    (size as u32, 1 << count.ilog2())
}
