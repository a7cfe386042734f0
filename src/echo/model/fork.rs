//! Fork per client: the parent accepts, and a child process echoes each connection.
//!
//! ```text
//! loop {
//!     reap finished children            // waitpid(pid, WNOHANG) for each child of ours
//!     conn = accept(listener)           // SIGCHLD interrupts it (EINTR): loop, reap, accept again
//!     if fork() == child { close(listener); echo(conn); _exit(0) }
//!     close(conn)                       // the parent's copy; the child's keeps the connection open
//! }
//! ```
//!
//! Trade-off: clients are isolated from each other (a crash kills one child), but every client
//! costs a process (a fork, page tables, a scheduler entity), so this tops out at a few thousand.
//!
//! Zombies: a child that exits stays a zombie until its parent waits for it. A do-nothing SIGCHLD
//! handler (installed without SA_RESTART) makes the kernel interrupt the parent's accept when a
//! child ends — SIGCHLD goes to the thread that forked, which is the one blocked in accept — and
//! the loop then reaps. It waits for each of *its own* children by pid rather than with
//! `waitpid(-1, WNOHANG)`: in a program that also runs other children (a test harness), `-1` would
//! steal their exit statuses.

use crate::SockAddr;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use crate::echo::accept::{announce, survive_accept_error};
use crate::echo::config::ServerConfig;
use crate::echo::endpoint::{Listener, Stream};
use crate::echo::event::{Event, Sink};
use crate::echo::limits::Limits;
use crate::echo::session;
use crate::echo::stop::Stop;
use crate::process::{self, Disposition, Forked, Pid, SIGCHLD, SIGKILL};
use crate::ready::{Interest, PollSet, Token};

/// Forks a child per client until `stop` is requested; then ends and reaps every child.
pub fn serve(listener: &Listener, config: &ServerConfig, stop: &Arc<Stop>, sink: &Sink) -> io::Result<()> {
    // Keep a SIG_IGN the program chose (the kernel then reaps for us); replace the default.
    if process::set_disposition(SIGCHLD, Disposition::Interrupt)? == Disposition::Ignore {
        process::set_disposition(SIGCHLD, Disposition::Ignore)?;
    }
    process::unblock_signals(&[SIGCHLD])?;
    // Allocated before any fork, so a child never needs the allocator (see `process::fork`).
    let mut buf = vec![0u8; config.buffer()];
    let mut at_bound = PollSet::new();
    let mut children = Vec::new();
    let max = config.max_conns.unwrap_or(usize::MAX);
    let result = loop {
        reap(&mut children);
        if children.len() >= max {
            // At the --max-conns bound, accept nothing until a child ends: the next clients wait
            // in the listen queue. SIGCHLD interrupts this poll (EINTR); the stop makes the
            // listener report POLLHUP; the timeout covers a SIGCHLD that came just before it.
            at_bound.clear();
            at_bound.push(listener, Token(0), Interest::NONE);
            let _ = at_bound.wait(Some(Duration::from_millis(100)));
            if stop.requested() {
                break Ok(());
            }
            continue;
        }
        let accepted = listener.accept_interruptible();
        if stop.requested() {
            break Ok(());
        }
        let (conn, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue, // SIGCHLD: reap, go on
            Err(e) => match survive_accept_error(e, sink) {
                Ok(()) => continue,
                Err(e) => break Err(e),
            },
        };
        announce(&conn, &peer, sink);
        match process::fork() {
            Ok(Forked::Child) => child(listener, conn, peer, &mut buf, config.limits(), sink),
            Ok(Forked::Parent(pid)) => children.push(pid),
            Err(e) => sink(&Event::ConnectionError(peer, &e)), // EAGAIN: too many processes
        }
        // `conn` (the parent's copy) is closed here.
    };
    // The children are blocked in recv on connections only they hold, so the stop switch cannot
    // reach them. SIGKILL, not SIGTERM: a child has nothing to flush, and the program may have
    // blocked or caught SIGTERM (the CLI blocks it in every thread).
    for &pid in &children {
        let _ = process::kill(pid, SIGKILL);
    }
    for pid in children {
        let _ = process::wait(pid); // ECHILD: already reaped (SIGCHLD ignored)
    }
    result
}

/// Waits, without blocking, for every child of ours that has exited.
fn reap(children: &mut Vec<Pid>) {
    children.retain(|&pid| matches!(process::reap(pid), Ok(None)));
}

/// The child: only this thread exists here. It restores the signal mask it inherited (the CLI
/// blocks SIGINT/SIGTERM), closes its copy of the listener, echoes, and `_exit`s without
/// returning into the parent's code or running its destructors.
fn child(listener: &Listener, conn: Stream, peer: SockAddr, buf: &mut [u8], limits: Limits, sink: &Sink) -> ! {
    let served = panic::catch_unwind(AssertUnwindSafe(|| {
        let _ = process::set_signal_mask(&[]);
        let _ = process::close_inherited(listener);
        session::serve(&conn, peer, buf, limits, sink);
        conn.close()
    }));
    process::exit_now(if matches!(served, Ok(Ok(()))) { 0 } else { 1 })
}
