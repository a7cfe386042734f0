//! One file per concurrency model, each holding only its loop: what differs between the rungs of
//! the ladder. What they share is one floor down in `echo/`: the session (`session.rs`), the
//! accept policy (`accept.rs`), the configuration (`config.rs`) and the stop switch (`stop.rs`).
//!
//! Calls every model but the iterative one adds to the tutorial's under `strace -f socklab server
//! --model M` (one client, then SIGINT): the stop machinery of `cli/signals.rs` and `cli/log.rs`
//! (`rt_sigprocmask` blocking SIGINT/SIGTERM in every thread, `signalfd4`, a `socketpair` to end
//! the signal thread, `fcntl(1, F_DUPFD_CLOEXEC)` for the log thread; three threads, each a
//! `clone3` with its stack's `mmap`/`mprotect`, `prctl(PR_SET_NAME)` and `futex` waits; at the stop
//! the signal fd's `read` and `shutdown` of the listener), `prlimit64` raising the descriptor
//! limit, and what each model's doc lists. Why: a signal lands on any thread that does not block
//! it, so a server of several threads (or processes) cannot stop the tutorial's way, with a
//! handler and the blocked call's EINTR; and its log must never stall its clients.

#[cfg(socklab_epoll)]
pub mod epoll;
pub mod fork;
pub mod iterative;
pub mod poll;
pub mod thread;
#[cfg(socklab_uring)]
pub mod uring;

use crate::process::SpawnCounted;
use std::io;
use std::sync::Arc;

use super::config::{Model, ServerConfig};
use super::event::Sink;
use super::stop::Stop;
use crate::echo::endpoint::Listener;

/// Serves clients of `listener` with `config.model` until `stop` is requested.
pub fn serve(listener: &Listener, config: &ServerConfig, stop: &Arc<Stop>, sink: &Sink) -> io::Result<()> {
    match config.model {
        Model::Iterative => iterative::serve(listener, config, stop, sink),
        Model::Fork => fork::serve(listener, config, stop, sink),
        Model::Thread => thread::serve(listener, config, stop, sink),
        Model::Poll => poll::serve(listener, config, stop, sink),
        #[cfg(socklab_epoll)]
        Model::Epoll => epoll::serve(listener, config, stop, sink),
        #[cfg(not(socklab_epoll))]
        Model::Epoll => Err(io::Error::new(io::ErrorKind::Unsupported, "epoll is Linux-only; use --model poll")),
        #[cfg(socklab_uring)]
        Model::Uring => uring::serve(listener, config, stop, sink),
        #[cfg(not(socklab_uring))]
        Model::Uring => Err(io::Error::new(io::ErrorKind::Unsupported, "io_uring is Linux-only; use --model poll")),
    }
}

/// Runs `work` on `threads` threads (this one and `threads - 1` more, named `socklab-NAME-i`, so
/// `--threads 1` runs no extra thread at all) and returns the first error. If a thread cannot be
/// started, the stop switch ends the ones that were. For the models with a loop per thread.
pub(crate) fn on_threads(
    name: &str,
    threads: usize,
    stop: &Stop,
    work: impl Fn() -> io::Result<()> + Sync,
) -> io::Result<()> {
    stop.loops(threads.max(1));
    // One thread: no scope at all. `thread::scope` makes a handle for the calling thread, which in
    // a program entered through C's main (the CLI) is never freed (valgrind: "possibly lost").
    if threads <= 1 {
        return work();
    }
    std::thread::scope(|scope| {
        let (others, failed): (Vec<_>, Vec<_>) = (1..threads)
            .map(|i| std::thread::Builder::new().name(format!("socklab-{name}-{i}")).spawn_scoped_counted(scope, &work))
            .partition(Result::is_ok);
        let mut result = match failed.into_iter().find_map(Result::err) {
            Some(e) => {
                stop.abort(); // no grace: the server cannot run as configured
                // The call as strace shows it: std's spawn is pthread_create, made with clone3.
                let cause = crate::error::CallError::new("clone3", None, e);
                Err(io::Error::new(cause.kind(), format!("could not start the {threads} {name} threads: {cause}")))
            }
            None => work(),
        };
        for handle in others.into_iter().flatten() {
            let joined = handle.join().unwrap_or_else(|_| Err(io::Error::other(format!("a {name} thread panicked"))));
            // The first error is the one worth reading (the others stopped because of it).
            result = result.and(joined);
        }
        result
    })
}
