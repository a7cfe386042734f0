//! The server's log: never allowed to stall the service.
//!
//! A server that printed each event with a blocking write to stdout would stop serving every
//! client as soon as stdout is a pipe nobody reads (`socklab server | less`, left alone): the
//! clients would decide how much is logged and the log would decide when they are served. So the
//! serving threads only put lines into a bounded queue, and one writer thread does the blocking
//! writes. When the queue is full the line is dropped and counted; at exit the count is reported
//! on stderr.
//!
//! A fork child has no writer thread (fork copies only the calling thread) and must not touch the
//! queue, whose lock another thread may have held at the fork. It writes its own lines directly,
//! after poll(2) says stdout has room, and drops them otherwise.

use socklab::process::SpawnCounted;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::thread;
use std::time::{Duration, Instant};

use socklab::echo::{Event, Sink};
use socklab::ready::{Interest, PollSet, Token};

/// Lines that may wait for the writer: enough for bursts, bounded so a stalled stdout costs at
/// most this many lines of memory.
const QUEUE: usize = 4096;

/// How long the end of the program waits for the writer to flush what is queued.
const FLUSH_WAIT: Duration = Duration::from_secs(2);

/// The writer thread and the count of dropped lines.
#[derive(Debug)]
pub struct Log {
    dropped: Arc<AtomicU64>,
    /// Lines queued, and lines the writer wrote: the difference at exit was never shown.
    queued: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
    writer: Option<thread::JoinHandle<()>>,
}

/// Starts the writer and returns the sink the server reports to: the lines of the CLI's printer
/// (`json`: one JSON object per event). Under `quiet` only what a script needs is logged: the
/// listening line and the errors.
pub fn start(quiet: bool, json: bool) -> io::Result<(Sink, Log)> {
    let (tx, rx) = mpsc::sync_channel::<String>(QUEUE);
    let (queued, written) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let count_written = written.clone();
    // The writer writes to its own duplicate of descriptor 1, not through `io::stdout()`: blocked
    // on a full pipe it would hold std's stdout lock, and the flush at the end of `main` would
    // then wait for it for ever.
    let mut out = socklab::process::duplicate(io::stdout()).map(socklab::file::File::from_fd)?;
    let writer = thread::Builder::new().name("socklab-log".into()).spawn_counted(move || {
        for line in rx {
            if out.write_all(format!("{line}\n").as_bytes()).is_err() {
                break; // stdout is closed: nothing more can be shown
            }
            count_written.fetch_add(1, Ordering::Relaxed);
        }
        drop(out); // close(2), narrated
    })?;
    let dropped = Arc::new(AtomicU64::new(0));
    let counter = dropped.clone();
    let count_queued = queued.clone();
    let tx: SyncSender<String> = tx;
    let sink: Sink = Arc::new(move |event: &Event<'_>| {
        if quiet
            && !matches!(
                event,
                Event::Listening(_) | Event::ConnectionError(..) | Event::SpawnDeferred(..) | Event::AcceptError(_)
            )
        {
            return;
        }
        // The same lines as the CLI's printer: `--json` every event, else the tutorial's.
        let line = if json {
            event.json()
        } else if event.in_tutorial() {
            event.to_string()
        } else {
            return;
        };
        if socklab::process::in_fork_child() {
            write_if_room(&line);
            return;
        }
        match tx.try_send(line) {
            Ok(()) => drop(count_queued.fetch_add(1, Ordering::Relaxed)),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    Ok((sink, Log { dropped, queued, written, writer: Some(writer) }))
}

impl Log {
    /// Waits (a little) for the queued lines to be written, then says on stderr how many lines
    /// were dropped, if any. Call after the server (and with it every sender) is gone. A writer
    /// still blocked on a stdout nobody reads is left to the process exit.
    pub fn finish(mut self) {
        // Polled, not a blocking receive: a channel operation that blocks makes std create a
        // handle for the blocked thread, and this is the main thread of a program entered through
        // C's main, which never frees it (valgrind: "possibly lost", whenever the writer was not
        // done yet). Polling asks the thread's state only.
        let until = Instant::now() + FLUSH_WAIT;
        while self.writer.as_ref().is_some_and(|w| !w.is_finished()) && Instant::now() < until {
            thread::sleep(Duration::from_millis(1));
        }
        if let Some(writer) = self.writer.take_if(|w| w.is_finished()) {
            let _ = writer.join();
        }
        // Lines still queued (or cut off by a closed stdout) were never shown either.
        let unwritten = self.queued.load(Ordering::Relaxed).saturating_sub(self.written.load(Ordering::Relaxed));
        let dropped = self.dropped.load(Ordering::Relaxed) + unwritten;
        if dropped > 0 {
            let _ = writeln!(
                io::stderr(),
                "socklab: note: {dropped} log lines were dropped because stdout was not being read fast enough"
            );
        }
    }
}

/// A sink that writes each of the tutorial's lines at once if stdout has room, and drops it (and
/// counts it in `dropped`) otherwise: for `pass-fd`, whose two processes print as things happen
/// (a queue for a writer thread would print the acceptor's lines after the worker's) and whose
/// worker is forked before any thread could exist. Never blocks, whatever reads stdout.
pub fn direct_printer(dropped: Arc<AtomicU64>) -> Sink {
    Arc::new(move |event: &Event<'_>| {
        if event.in_tutorial() && !write_if_room(&event.to_string()) {
            dropped.fetch_add(1, Ordering::Relaxed);
        }
    })
}

/// One line, written only if stdout has room now (so the write does not block: a line is far
/// below PIPE_BUF), without the stdout lock a parent thread may have held at a fork: for fork
/// children and for pass-fd's two processes. Returns whether it was written.
fn write_if_room(line: &str) -> bool {
    let stdout = io::stdout();
    let fd = stdout.as_fd();
    let mut set = PollSet::new();
    set.push(&fd, Token(0), Interest::WRITABLE);
    if set.wait(Some(Duration::ZERO)).is_err() || !set.readiness(0).writable {
        return false;
    }
    // One write(2) to descriptor 1: no buffer, no lock of std's.
    socklab::file::write_stdout(format!("{line}\n").as_bytes()).is_ok()
}
