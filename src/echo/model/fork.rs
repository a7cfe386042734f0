//! Fork per client: the parent accepts, and a child process echoes each connection.
//!
//! ```text
//! block SIGCHLD; sfd = signalfd([SIGCHLD])
//! loop {
//!     poll([listener: POLLIN, sfd: POLLIN])
//!     if sfd readable { read it; reap finished children }   // waitpid(pid, WNOHANG) for each child
//!     if listener readable {
//!         conn = accept(listener)
//!         if fork() == child { close(listener); echo(conn); _exit(0) }
//!         close(conn)                   // the parent's copy; the child's keeps the connection open
//!     }
//!     // fork failed (EAGAIN, out of processes)? keep conn open, stop watching the listener, and
//!     // fork again when a child ends or after a back-off (20 ms doubling to 1 s)
//! }
//! ```
//!
//! Calls it adds to the tutorial's (besides the common ones in `model/mod.rs`): per client a
//! `clone` (fork), the child's `close` of its listener copy and its `exit_group`, the parent's
//! `close` of the connection; SIGCHLD on a signalfd (`signalfd4`, `poll`, `read`) and `wait4`
//! with WNOHANG to reap; `openat`/`read` of `/proc/sys/net/core/somaxconn` for the backlog.
//!
//! Trade-off: clients are isolated from each other (a crash kills one child), but every client
//! costs a process (a fork, page tables, a scheduler entity), so this tops out at a few thousand.
//!
//! Zombies: a child that exits stays a zombie until its parent waits for it, and the kernel tells
//! the parent with SIGCHLD. That signal is sent to the process, not to a thread: in a program with
//! several threads it lands on any thread that does not block it, and a handler meant to interrupt
//! the accepting thread's accept may run on another thread instead (then nobody reaps until the
//! next client comes). So SIGCHLD is blocked (the CLI blocks it in every thread before starting
//! any) and read from a signalfd that sits in the accept loop's poll set next to the listener:
//! whichever thread the kernel picks, the signal stays pending and the descriptor readable. As a
//! safety net for programs that leave SIGCHLD unblocked in some thread of their own, the poll also
//! wakes every second to reap. The loop waits for each of *its own* children by pid rather than
//! with `waitpid(-1, WNOHANG)`: in a program that also runs other children (a test harness), `-1`
//! would steal their exit statuses.
//!
//! Stop: the listener's shutdown makes poll report it (POLLHUP); the parent accepts nothing more
//! and waits for its children to end by themselves; at the cut (the end of the grace period) it
//! kills the rest with SIGKILL. The children keep SIGINT and SIGTERM blocked, as inherited: a
//! Ctrl-C, which the terminal sends to the whole process group, reaches the parent's stop and not
//! the children's echoes.

use crate::SockAddr;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::echo::accept::{announce, survive_accept_error};
use crate::echo::config::ServerConfig;
use crate::echo::endpoint::{Listener, Stream};
use crate::echo::event::{Event, Sink};
use crate::echo::limits::Limits;
use crate::echo::session;
use crate::echo::stop::Stop;
use crate::process::{self, Forked, Pid, SIGCHLD, SIGKILL, SignalFd};
use crate::ready::{Interest, PollSet, Token};
use crate::socket::{Socket, Type};

const LISTENER: Token = Token(0);
const CHILDREN: Token = Token(1);
const CUT: Token = Token(2);

/// What a child must close: the parent's descriptors it inherited.
struct Inherited<'a> {
    listener: &'a Listener,
    signals: &'a SignalFd,
    cut: &'a Socket,
}

/// Forks a child per client until `stop` is requested; then waits for the children to end (at
/// most until the cut, which kills the rest) and reaps every one.
pub fn serve(listener: &Listener, config: &ServerConfig, stop: &Arc<Stop>, sink: &Sink) -> io::Result<()> {
    // Blocked in this thread (and, in the CLI, in every thread), so SIGCHLD stays pending for the
    // signalfd. A program that set SIGCHLD to SIG_IGN has the kernel reap for it: waitpid then
    // says ECHILD, and `reap` forgets the child.
    process::block_signals(&[SIGCHLD])?;
    let signals = SignalFd::new(&[SIGCHLD])?;
    // The accept loop only accepts when poll says a connection is queued; nonblocking, so a client
    // that resets in between costs an EAGAIN instead of a blocked loop. (An accepted socket does
    // not inherit O_NONBLOCK on Linux: the child's echo stays blocking.)
    listener.set_nonblocking(true)?;
    // The cut's wake line: the stop switch shuts it down when the grace period ends.
    let (cut, _other_end) = Socket::pair(Type::STREAM)?;
    let cut = Arc::new(cut);
    let _watch = stop.watch(cut.clone());
    let inherited = Inherited { listener, signals: &signals, cut: &cut };
    // Allocated before any fork, so a child never needs the allocator (see `process::fork`).
    let mut buf = vec![0u8; config.buffer()];
    let mut set = PollSet::new();
    stop.serving(); // signalfd and wake line made (no system call): --ready-file is written now
    let mut children: Vec<Pid> = Vec::new();
    let max = config.max_conns.unwrap_or(usize::MAX);
    // A client accepted while fork fails (EAGAIN: out of processes): kept open, not closed, and
    // forked for as soon as a child ends or its back-off is over.
    let mut waiting: Option<Waiting> = None;
    let result = loop {
        let stopping = stop.requested();
        if stopping && children.is_empty() && waiting.is_none() {
            break Ok(());
        }
        if stop.is_cut() {
            break Ok(());
        }
        set.clear();
        // Once stopping, the listener (shut down, so always reporting POLLHUP) leaves the set. At
        // the --max-conns bound, or while a client waits for its fork, it is watched for nothing:
        // the next clients wait in the listen queue until a child ends.
        let accepting = !stopping && waiting.is_none() && children.len() < max;
        if stopping {
            set.push(&*cut, CUT, Interest::READABLE);
        } else {
            set.push(listener, LISTENER, if accepting { Interest::READABLE } else { Interest::NONE });
        }
        set.push(&signals, CHILDREN, Interest::READABLE);
        let wake = waiting.as_ref().map_or(SAFETY_NET, |w| w.due.saturating_duration_since(Instant::now()));
        set.wait(Some(wake.min(SAFETY_NET)))?;
        // Every wake-up reaps: a SIGCHLD, or the one-second safety net.
        signals.drain()?;
        let before = children.len();
        reap(&mut children);
        // Each reaped child was a connection served to its end (counted as finished while stopping).
        for _ in children.len()..before {
            stop.connection_ended();
        }
        // The waiting client's retry: when a child has ended (a process is free) or the back-off
        // is over. Also while stopping: it was accepted, so the grace period is for it too.
        if let Some(w) = waiting.take() {
            if children.len() < before || Instant::now() >= w.due {
                let Waiting { conn, peer, delay, .. } = w;
                match fork_child(&inherited, conn, peer, &mut buf, config.limits(), sink) {
                    Ok(pid) => children.push(pid),
                    // Each failure doubles the wait, up to the safety net's second.
                    Err((conn, e)) => waiting = Waiting::after(conn, peer, (delay * 2).min(SAFETY_NET), e, sink),
                }
            } else {
                waiting = Some(w);
            }
            continue;
        }
        if stopping || !set.readiness(0).any() {
            continue;
        }
        if stop.requested() {
            continue; // the listener's POLLHUP: the stop begins
        }
        let (conn, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue, // the client left meanwhile
            Err(e) => match survive_accept_error(e, sink) {
                Ok(()) => continue,
                Err(_) if stop.requested() => continue,
                Err(e) => break Err(e),
            },
        };
        announce(&conn, &peer, sink);
        stop.connection_opened();
        match fork_child(&inherited, conn, peer, &mut buf, config.limits(), sink) {
            Ok(pid) => children.push(pid),
            Err((conn, e)) => waiting = Waiting::first(conn, peer, e, sink),
        }
    };
    // A client still waiting for its fork at the cut (or on an error) is closed unserved.
    if waiting.take().is_some() && stop.requested() {
        stop.connections_cut(1);
    }
    // At the cut (or on an error) the children still running are blocked in recv on connections
    // only they hold, so the stop switch cannot reach them. SIGKILL, not SIGTERM: a child has
    // nothing to flush, and it keeps SIGTERM blocked.
    if stop.requested() {
        stop.connections_cut(children.len());
    }
    for &pid in &children {
        let _ = process::kill(pid, SIGKILL);
    }
    for pid in children {
        let _ = process::wait(pid); // ECHILD: already reaped (SIGCHLD ignored)
    }
    result
}

/// How long poll waits at most: the safety net that reaps even if SIGCHLD never arrives.
const SAFETY_NET: Duration = Duration::from_secs(1);

/// The first retry of a failed fork comes this soon; each failure doubles it, up to [`SAFETY_NET`]
/// (so a server at its process limit tries at most about once a second, plus once per child that
/// ends, and logs one line per try).
const FIRST_RETRY: Duration = Duration::from_millis(20);

/// A client accepted while fork failed: its connection, and when to try again.
struct Waiting {
    conn: Stream,
    peer: SockAddr,
    delay: Duration,
    due: Instant,
}

impl Waiting {
    /// After the first failed fork for `peer`: keeps the client if fork may succeed later
    /// (EAGAIN, ENOMEM: a limit or memory that an ending child frees), else closes it.
    fn first(conn: Stream, peer: SockAddr, e: io::Error, sink: &Sink) -> Option<Waiting> {
        Waiting::after(conn, peer, FIRST_RETRY, e, sink)
    }

    /// After a failed fork: keeps the client and tries again in `delay`, or closes it.
    fn after(conn: Stream, peer: SockAddr, delay: Duration, e: io::Error, sink: &Sink) -> Option<Waiting> {
        // The call as strace shows it: glibc's fork() is clone(2). No address: clone has none.
        let transient = matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::ENOMEM));
        let e = crate::error::context("clone", None, e);
        if !transient {
            sink(&Event::ConnectionError(peer, &e));
            return None; // `conn` is closed here
        }
        sink(&Event::SpawnDeferred(peer, &e, delay));
        Some(Waiting { conn, peer, delay, due: Instant::now() + delay })
    }
}

/// Forks a child to serve `conn`. In the parent: the child's pid (and the parent's copy of the
/// connection is closed), or fork's error with the connection still open.
fn fork_child(
    parent: &Inherited<'_>,
    conn: Stream,
    peer: SockAddr,
    buf: &mut [u8],
    limits: Limits,
    sink: &Sink,
) -> Result<Pid, (Stream, io::Error)> {
    match process::fork() {
        Ok(Forked::Child) => child(parent, conn, peer, buf, limits, sink),
        Ok(Forked::Parent(pid)) => Ok(pid), // `conn` (the parent's copy) is closed here
        Err(e) => Err((conn, e)),
    }
}

/// Waits, without blocking, for every child of ours that has exited.
fn reap(children: &mut Vec<Pid>) {
    children.retain(|&pid| matches!(process::reap(pid), Ok(None)));
}

/// The child: only this thread exists here. It unblocks SIGCHLD (blocked for the parent's
/// signalfd; SIGINT and SIGTERM stay as inherited), closes its copies of the parent's descriptors,
/// echoes, and `_exit`s without returning into the parent's code or running its destructors.
fn child(parent: &Inherited<'_>, conn: Stream, peer: SockAddr, buf: &mut [u8], limits: Limits, sink: &Sink) -> ! {
    process::mark_fork_child();
    let served = panic::catch_unwind(AssertUnwindSafe(|| {
        let _ = process::unblock_signals(&[SIGCHLD]);
        let _ = process::close_inherited(parent.listener);
        let _ = process::close_inherited(parent.signals);
        let _ = process::close_inherited(parent.cut);
        session::serve(&conn, peer, buf, limits, None, sink);
        conn.close()
    }));
    process::exit_now(if matches!(served, Ok(Ok(()))) { 0 } else { 1 })
}
