//! The stop switch: how another thread (or a signal-handling thread) ends a blocked server, in two
//! steps, as servers people trust do it.
//!
//! 1. **Stop accepting** ([`Stop::request`]): the listener is shut down at once, so no new client
//!    is taken, but connections already open go on until their clients close (their echo is
//!    finished), for at most the grace period.
//! 2. **Cut** (the grace period is over, or [`Stop::request`] is called a second time): every
//!    connection still open is shut down and closed.
//!
//! A flag alone would not wake a server blocked in accept or recv, and signals cannot target a
//! thread inside a library. So each step also calls `shutdown(SHUT_RDWR)` on the sockets
//! registered for it ([`Stop::watch_listener`] for step 1, [`Stop::watch`] for step 2):
//! - on the listener, Linux closes the listening state and wakes accept (or makes poll report
//!   POLLHUP), which then fails with `EINVAL`; the server sees the flag and stops accepting;
//! - on a connection, recv returns 0 and send fails with `EPIPE`, so the per-connection loop ends.
//!
//! The shutdown state persists, so there is no lost wake-up: a server that checks the flag just
//! before the request still finds its next accept or recv failing at once.
//!
//! The grace period is timed by [`Stop::keep_grace`], which the server runs on a thread of its own
//! for as long as it serves: the models only stop accepting, keep serving, and close what is left
//! when cut. They count how each connection that was open at the request ended
//! ([`Stop::connection_ended`]): finished by its client, or cut.
//!
//! **The tutorial's way** ([`Stop::follow_signals`]), for the iterative server run as the
//! tutorial's program: no thread at all. SIGINT/SIGTERM handlers count
//! (`process::catch_stop_signals`), the blocked accept or recv returns `EINTR`, and the loop reads
//! the count: one signal is the request, two the cut. The connection being served times its own
//! grace period ([`Stop::grace_left`]): its recv and send wait at most what is left of it
//! (`SO_RCVTIMEO`/`SO_SNDTIMEO`, set only once a stop was asked for).

use std::net::Shutdown;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::socket::Socket;

type Watched = Arc<dyn AsRef<Socket> + Send + Sync>;

/// How the connections open at a stop request ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drained {
    /// Ended by their clients within the grace period: every byte was echoed.
    pub finished: usize,
    /// Still open when the grace period ended (or at a second request), and closed by the server.
    pub cut: usize,
}

#[derive(Default)]
struct State {
    /// Shut down at the request: what accepts.
    listeners: Vec<Watched>,
    /// Shut down at the cut: connections, and the wake lines of event loops.
    watched: Vec<Watched>,
    requested_at: Option<Instant>,
    /// The server has ended; [`Stop::keep_grace`] returns.
    done: bool,
    /// A grace period is kept ([`Stop::keep_grace`] runs): a first request only stops accepting.
    /// Without one, a request cuts at once.
    graceful: bool,
    /// The grace period: timed by the connection being served when following signals, by
    /// [`Stop::keep_grace`] otherwise; told to the announcer.
    grace: Duration,
    /// Called once when a stop request starts a grace period with connections open
    /// ([`Stop::on_grace`]).
    announce: Option<Announce>,
    /// Called once when every loop of the server has set up ([`Stop::when_serving`]).
    on_serving: Option<Box<dyn FnOnce() + Send>>,
}

/// What [`Stop::on_grace`] calls: the connections open, and the grace period they have.
type Announce = Box<dyn FnOnce(usize, Duration) + Send>;

/// A stop request shared between a server and whoever may stop it.
#[derive(Default)]
pub struct Stop {
    requested: AtomicBool,
    /// Also requested by the process's caught stop signals (see [`Stop::follow_signals`]).
    signals: AtomicBool,
    cut: AtomicBool,
    finished: AtomicUsize,
    cut_count: AtomicUsize,
    /// Connections being served: opened by the models at accept, ended or cut.
    open: AtomicUsize,
    /// Loops still setting up (see [`Stop::serving`]).
    setting_up: AtomicUsize,
    state: Mutex<State>,
    changed: Condvar,
}

impl std::fmt::Debug for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stop")
            .field("requested", &self.requested())
            .field("cut", &self.is_cut())
            .finish_non_exhaustive()
    }
}

impl Stop {
    /// A new, un-triggered switch.
    pub fn new() -> Arc<Stop> {
        Arc::new(Stop::default())
    }

    /// Has a stop been requested (accept nothing more)?
    pub fn requested(&self) -> bool {
        self.requested.load(Ordering::Acquire) || self.signalled(1)
    }

    /// Has the cut come (close every connection now)?
    pub fn is_cut(&self) -> bool {
        self.cut.load(Ordering::Acquire) || self.signalled(2)
    }

    /// Following signals, have at least `n` stop signals been caught?
    fn signalled(&self, n: u64) -> bool {
        self.signals.load(Ordering::Relaxed) && crate::process::stop_signals() >= n
    }

    /// The tutorial's stop: SIGINT/SIGTERM caught by `process::catch_stop_signals`'s handler are
    /// this switch's requests (the first stops accepting, the second cuts), and the grace period
    /// is timed by the connection being served ([`grace_left`](Self::grace_left)), not by a
    /// thread. Only for a server whose every blocking call is made on the thread the signal
    /// lands on (the iterative model, alone in its process).
    pub fn follow_signals(&self, grace: Duration) {
        self.lock().grace = grace;
        self.signals.store(true, Ordering::Relaxed);
    }

    /// Does this switch follow the process's stop signals ([`follow_signals`](Self::follow_signals))?
    pub fn follows_signals(&self) -> bool {
        self.signals.load(Ordering::Relaxed)
    }

    /// Following signals, after a stop request: how much of the grace period is left for the
    /// connection being served (zero: cut it now). `None` before the request, or when a thread
    /// keeps the grace period. The clock starts at the first call after the request: the serving
    /// loop makes it as soon as the signal's `EINTR` woke it.
    pub fn grace_left(&self) -> Option<Duration> {
        if !self.follows_signals() || !self.requested() {
            return None;
        }
        if self.is_cut() {
            return Some(Duration::ZERO);
        }
        let mut state = self.lock();
        let at = match state.requested_at {
            Some(at) => at,
            // The loop noticed the signal just now: the grace period starts, and is announced.
            None => {
                let now = Instant::now();
                state.requested_at = Some(now);
                let (announce, grace) = (state.announce.take(), state.grace);
                drop(state);
                self.announce(announce, grace);
                return Some(grace);
            }
        };
        Some(state.grace.saturating_sub(at.elapsed()))
    }

    /// `announce` is called once, when a stop request starts a grace period while connections
    /// are open, with their number and the grace period (`grace`: how long it is): the CLI's
    /// "stopping: 3 connections finishing, up to 5s" line. Not called when the request cuts at
    /// once (no grace, a second request) or when no connection is open.
    pub fn on_grace(&self, grace: Duration, announce: impl FnOnce(usize, Duration) + Send + 'static) {
        let mut state = self.lock();
        state.grace = grace;
        state.announce = Some(Box::new(announce));
    }

    fn announce(&self, announce: Option<Announce>, grace: Duration) {
        let open = self.open_connections();
        if let Some(announce) = announce.filter(|_| open > 0 && !grace.is_zero() && !self.is_cut()) {
            announce(open, grace);
        }
    }

    /// A connection was accepted: it is being served until [`connection_ended`](Self::connection_ended)
    /// or [`connections_cut`](Self::connections_cut).
    pub fn connection_opened(&self) {
        self.open.fetch_add(1, Ordering::Relaxed);
    }

    /// Connections being served now (opened, not yet ended or cut).
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    fn closed(&self, n: usize) {
        let _ = self.open.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |open| Some(open.saturating_sub(n)));
    }

    /// The first call stops accepting (the listener is shut down) and starts the grace period;
    /// a second call cuts every connection at once.
    pub fn request(&self) {
        let mut state = self.lock();
        if self.requested.swap(true, Ordering::AcqRel) {
            drop(state);
            return self.cut();
        }
        state.requested_at = Some(Instant::now());
        for socket in &state.listeners {
            wake(socket);
        }
        self.changed.notify_all();
        if !state.graceful {
            drop(state);
            self.cut();
            return;
        }
        let (announce, grace) = (state.announce.take(), state.grace);
        drop(state);
        self.announce(announce, grace);
    }

    /// Stops at once, with no grace: the request and the cut together.
    pub fn abort(&self) {
        self.requested.store(true, Ordering::Release);
        self.lock().requested_at.get_or_insert_with(Instant::now);
        self.cut();
    }

    /// Closes every connection now: shuts down every watched socket (and the listeners, in case
    /// the request was skipped).
    pub fn cut(&self) {
        let state = self.lock();
        self.requested.store(true, Ordering::Release);
        self.cut.store(true, Ordering::Release);
        for socket in state.listeners.iter().chain(&state.watched) {
            wake(socket);
        }
        self.changed.notify_all();
    }

    /// Registers a listener to shut down at the request until the returned guard is dropped.
    pub fn watch_listener(self: &Arc<Self>, socket: Watched) -> Watch {
        self.add(socket, true)
    }

    /// Registers a socket (a connection, a wake line) to shut down at the cut until the returned
    /// guard is dropped. If the cut has come already, the socket is shut down at once.
    pub fn watch(self: &Arc<Self>, socket: Watched) -> Watch {
        self.add(socket, false)
    }

    fn add(self: &Arc<Self>, socket: Watched, listener: bool) -> Watch {
        let mut state = self.lock();
        if self.is_cut() || (listener && self.requested()) {
            wake(&socket);
        }
        let list = if listener { &mut state.listeners } else { &mut state.watched };
        list.push(Arc::clone(&socket));
        Watch { stop: Arc::clone(self), socket, listener }
    }

    /// Times the grace period: waits for the request, then `grace` (or less, if a second request
    /// cuts sooner), then cuts. Returns when the cut is done or the server has ended
    /// ([`server_ended`](Self::server_ended)). The server runs it on a thread of its own.
    pub fn keep_grace(&self, grace: Duration) {
        let mut state = self.lock();
        loop {
            if state.done || self.is_cut() {
                return;
            }
            let wait = match state.requested_at {
                None => None,
                Some(at) => match (at + grace).checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => break,
                },
            };
            state = match wait {
                None => self.changed.wait(state).unwrap_or_else(|p| p.into_inner()),
                Some(left) => self.changed.wait_timeout(state, left).unwrap_or_else(|p| p.into_inner()).0,
            };
        }
        drop(state);
        self.cut();
    }

    /// Whether a grace period is kept: call with `true` before [`keep_grace`](Self::keep_grace)
    /// runs (and `false` if it cannot). Without one, a request cuts at once (the default).
    pub fn set_graceful(&self, on: bool) {
        self.lock().graceful = on;
        if !on && self.requested() {
            self.cut(); // a request that came while a grace period was expected
        }
    }

    /// The server has ended: [`keep_grace`](Self::keep_grace) returns.
    pub fn server_ended(&self) {
        let mut state = self.lock();
        state.done = true;
        // The announcer holds a clone of the server's sink (and so the log's queue): let it go with
        // the server, or the log's writer would wait for a line that can no longer come.
        state.announce = None;
        drop(state);
        // Following signals, no thread waits (and a notify would be a futex call of its own).
        if !self.follows_signals() {
            self.changed.notify_all();
        }
    }

    /// A connection ended. If it was open when the stop was requested, counts it as finished (it
    /// ended before the cut) or cut.
    pub fn connection_ended(&self) {
        self.closed(1);
        if !self.requested() {
            return;
        }
        let counter = if self.is_cut() { &self.cut_count } else { &self.finished };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts `n` connections cut at once (an event loop closing what is left).
    pub fn connections_cut(&self, n: usize) {
        self.closed(n);
        self.cut_count.fetch_add(n, Ordering::Relaxed);
    }

    /// How the connections open at the request ended, so far.
    pub fn drained(&self) -> Drained {
        Drained { finished: self.finished.load(Ordering::Relaxed), cut: self.cut_count.load(Ordering::Relaxed) }
    }

    /// Waits `delay`, or less if a stop is requested meanwhile. Returns false when stopped.
    ///
    /// Following signals, the wait is a `poll(NULL, 0, ms)` (poll with no descriptor: a
    /// narrated sleep the stop signal's `EINTR` ends); otherwise a condition variable that
    /// [`request`](Self::request) wakes.
    pub fn wait(&self, delay: Duration) -> bool {
        if self.follows_signals() {
            if !self.requested() {
                // An error (none is expected: no descriptor can be bad) only shortens the wait.
                let _ = crate::ready::PollSet::new().wait(Some(delay));
            }
            return !self.requested();
        }
        let until = Instant::now() + delay;
        let mut state = self.lock();
        while !self.requested() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            state = self.changed.wait_timeout(state, left).unwrap_or_else(|p| p.into_inner()).0;
        }
        false
    }

    /// Runs `hook` once the server's loops have all set up: made their epoll instances, rings,
    /// signalfds and wake lines, so from then on the process opens descriptors only for its
    /// connections. The CLI writes `--ready-file` here, so a caller that counts descriptors for a
    /// leak check can take its baseline when the file appears. Set it before the server runs.
    pub fn when_serving(&self, hook: impl FnOnce() + Send + 'static) {
        self.lock().on_serving = Some(Box::new(hook));
    }

    /// A model that runs `n` loops (threads) says so before starting them; each calls
    /// [`Stop::serving`] once set up. (Without it, the first call counts.)
    pub(crate) fn loops(&self, n: usize) {
        self.setting_up.store(n, Ordering::Release);
    }

    /// One loop has set up and is about to serve; the last one runs the [`Stop::when_serving`]
    /// hook. Memory only: no system call, so the tutorial's strace is unchanged.
    pub(crate) fn serving(&self) {
        let before = self.setting_up.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| Some(n.saturating_sub(1)));
        if before.unwrap_or(0) <= 1 {
            let hook = self.lock().on_serving.take();
            if let Some(hook) = hook {
                hook();
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the lists inconsistent; keep going.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn wake(socket: &Watched) {
    // ENOTCONN (the peer already left) is fine: there is nothing left to wake.
    let _ = (**socket).as_ref().shutdown(Shutdown::Both);
}

/// `sink`, minus `ServerRecvOver` once the cut has come: the stop switch shuts watched
/// connections down, so their recv returns 0 although the client never closed, and "Server Recv
/// Over" would claim a FIN that was not seen. (During the grace period a recv of 0 is still the
/// client's FIN, and is reported.)
pub fn unless_stopped(stop: &Arc<Stop>, sink: &super::event::Sink) -> super::event::Sink {
    let (stop, sink) = (Arc::clone(stop), Arc::clone(sink));
    Arc::new(move |event: &super::event::Event<'_>| {
        if !(matches!(event, super::event::Event::ServerRecvOver(_)) && stop.is_cut()) {
            sink(event);
        }
    })
}

/// Unregisters its socket from the [`Stop`] when dropped.
pub struct Watch {
    stop: Arc<Stop>,
    socket: Watched,
    listener: bool,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").field("fd", &(*self.socket).as_ref().as_fd()).finish()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut state = self.stop.lock();
        let list = if self.listener { &mut state.listeners } else { &mut state.watched };
        if let Some(i) = list.iter().position(|s| Arc::ptr_eq(s, &self.socket)) {
            list.swap_remove(i);
        }
    }
}
