//! Thread per client: the main thread accepts, and a new thread echoes each connection with the
//! same blocking loop as the iterative server.
//!
//! ```text
//! loop {
//!     if max_conns threads are running { wait until one finishes }   // the rest wait in the backlog
//!     conn = accept(listener)
//!     spawn thread { echo(conn); close(conn) }
//!     // spawn failed (EAGAIN, out of threads)? keep conn, accept no one else, and spawn again
//!     // when a thread ends or after a back-off (20 ms doubling to 1 s)
//! }
//! ```
//!
//! Calls it adds to the tutorial's (besides the common ones in `model/mod.rs`): per client a
//! thread (`clone3`, its stack's `mmap`/`mprotect`, `set_robust_list`, `rseq`; `futex` at its
//! join, `madvise`/`munmap` at its end); `openat`/`read` of `/proc/sys/net/core/somaxconn`.
//!
//! Trade-off: as simple to read as the iterative loop, and clients no longer wait for each other;
//! but each client costs a thread (a stack, a kernel task, a context switch per message), so the
//! number of threads is bounded, and a slow client holds one for as long as it stays connected.

use crate::process::SpawnCounted;
use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::SockAddr;
use crate::echo::accept::{announce, survive_accept_error};
use crate::echo::config::{DEFAULT_MAX_THREADS, ServerConfig};
use crate::echo::endpoint::{Listener, Stream};
use crate::echo::event::{Event, Sink};
use crate::echo::session;
use crate::echo::stop::{Stop, unless_stopped};

/// Spawns a thread per client, at most `config.max_conns` at once, until `stop` is requested;
/// then waits for every thread: each ends when its client closes, or at the cut (the end of the
/// grace period), which shuts its connection down.
pub fn serve(listener: &Listener, config: &ServerConfig, stop: &Arc<Stop>, sink: &Sink) -> io::Result<()> {
    let max = config.max_conns.unwrap_or(DEFAULT_MAX_THREADS);
    // Each thread sends its id when it is done, so the loop can join it (and wait at the bound).
    let (done_tx, done_rx) = mpsc::channel();
    let mut running: HashMap<u64, JoinHandle<()>> = HashMap::new();
    let mut next_id = 0u64;
    stop.serving(); // set up (no system call): --ready-file is written now
    let result = loop {
        join_finished(&mut running, &done_rx, max);
        let accepted = listener.accept();
        if stop.requested() {
            break Ok(());
        }
        let (conn, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => match survive_accept_error(e, sink) {
                Ok(()) => continue,
                Err(e) => break Err(e),
            },
        };
        announce(&conn, &peer, sink);
        stop.connection_opened();
        let conn = Arc::new(conn);
        let (id, mut delay) = (next_id, FIRST_RETRY);
        next_id += 1;
        // Out of threads (EAGAIN from clone3: RLIMIT_NPROC counts threads too)? The connection is
        // kept (this loop holds a reference), nothing else is accepted (the next clients wait in
        // the listen queue), and the spawn is tried again when a thread ends or the back-off is
        // over: 20 ms, doubling up to 1 s.
        loop {
            let spawned = spawn_session(Arc::clone(&conn), peer, id, &done_tx, config, stop, sink);
            let e = match spawned {
                Ok(handle) => {
                    drop(running.insert(id, handle));
                    break;
                }
                Err(e) => e,
            };
            let transient = matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::ENOMEM));
            // The call as strace shows it: std's spawn is pthread_create, which makes the task with
            // clone3 (clone on older kernels). No address: clone3 has none.
            let e = crate::error::context("clone3", None, e);
            if !transient {
                sink(&Event::ConnectionError(peer, &e));
                break; // our reference, the last, closes the connection
            }
            sink(&Event::SpawnDeferred(peer, &e, delay));
            if let Ok(ended) = done_rx.recv_timeout(delay) {
                if let Some(handle) = running.remove(&ended) {
                    let _ = handle.join();
                }
            }
            if stop.is_cut() {
                stop.connections_cut(1); // accepted but never served: cut unserved
                break;
            }
            delay = (delay * 2).min(MAX_RETRY);
        }
    };
    for (_, handle) in running.drain() {
        let _ = handle.join();
    }
    result
}

/// The first retry of a failed spawn comes this soon; each failure doubles the wait.
const FIRST_RETRY: Duration = Duration::from_millis(20);
/// The longest wait between retries (a thread that ends wakes the loop sooner).
const MAX_RETRY: Duration = Duration::from_secs(1);

/// Starts connection thread `id`, which echoes on `conn` until the peer closes, then says "done".
fn spawn_session(
    conn: Arc<Stream>,
    peer: SockAddr,
    id: u64,
    done: &Sender<u64>,
    config: &ServerConfig,
    stop: &Arc<Stop>,
    sink: &Sink,
) -> io::Result<JoinHandle<()>> {
    let watch = stop.watch(conn.clone());
    let (done, conn_sink, size, limits, conn_stop) =
        (done.clone(), unless_stopped(stop, sink), config.buffer(), config.limits(), Arc::clone(stop));
    thread::Builder::new().name(format!("socklab-conn-{id}")).spawn_counted(move || {
        // Declared first, dropped last: the loop hears "done" after the connection is closed,
        // and even if this thread panics.
        let _done = Done(done, id);
        let mut buf = vec![0u8; size];
        session::serve(&conn, peer, &mut buf, limits, None, &conn_sink);
        conn_stop.connection_ended();
        drop(watch);
        drop(conn);
    })
}

/// Tells the accept loop that connection thread `.1` is finished, when dropped.
struct Done(Sender<u64>, u64);

impl Drop for Done {
    fn drop(&mut self) {
        let _ = self.0.send(self.1);
    }
}

/// Joins the threads that have finished. At the bound, first blocks until one does — which a stop
/// request guarantees, since it shuts down every connection.
fn join_finished(running: &mut HashMap<u64, JoinHandle<()>>, done: &Receiver<u64>, max: usize) {
    let mut finished = if running.len() >= max { done.recv().ok() } else { None };
    while let Some(id) = finished.or_else(|| done.try_recv().ok()) {
        if let Some(handle) = running.remove(&id) {
            let _ = handle.join();
        }
        finished = None;
    }
}
