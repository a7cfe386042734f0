//! The stop switch: how another thread (or a signal-handling thread) ends a blocked server.
//!
//! A server spends its life blocked in accept or recv. Setting a flag alone would not wake it, and
//! signals cannot target a thread inside a library. So [`Stop::request`] also calls
//! `shutdown(SHUT_RDWR)` on every socket the server registered with [`Stop::watch`]:
//! - on the listener, Linux closes the listening state and wakes accept, which then fails with
//!   `EINVAL`; the server sees the flag and returns;
//! - on a connection, recv returns 0 and send fails with `EPIPE`, so the per-connection loop ends.
//!
//! The shutdown state persists, so there is no lost wake-up: a server that checks the flag just
//! before the request still finds its next accept or recv failing at once.

use std::net::Shutdown;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::socket::Socket;

type Watched = Arc<dyn AsRef<Socket> + Send + Sync>;

/// A stop request shared between a server and whoever may stop it.
#[derive(Default)]
pub struct Stop {
    requested: AtomicBool,
    watched: Mutex<Vec<Watched>>,
}

impl std::fmt::Debug for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stop").field("requested", &self.requested()).finish_non_exhaustive()
    }
}

impl Stop {
    /// A new, un-triggered switch.
    pub fn new() -> Arc<Stop> {
        Arc::new(Stop::default())
    }

    /// Has a stop been requested?
    pub fn requested(&self) -> bool {
        self.requested.load(Ordering::Acquire)
    }

    /// Requests the stop and wakes the server by shutting down the sockets it watches.
    pub fn request(&self) {
        self.requested.store(true, Ordering::Release);
        for socket in self.lock().iter() {
            wake(socket);
        }
    }

    /// Registers a socket to shut down on a stop request until the returned guard is dropped. If
    /// the stop was already requested, the socket is shut down at once.
    pub fn watch(self: &Arc<Self>, socket: Watched) -> Watch {
        let mut watched = self.lock();
        if self.requested() {
            wake(&socket);
        }
        watched.push(Arc::clone(&socket));
        Watch { stop: Arc::clone(self), socket }
    }

    /// Waits `delay`, or less if a stop is requested meanwhile. Returns false when stopped.
    pub fn wait(&self, delay: std::time::Duration) -> bool {
        let until = std::time::Instant::now() + delay;
        // Short naps keep a stop request answered within 10 ms; the loop ends at `until` at the latest.
        while !self.requested() {
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return true;
            }
            std::thread::sleep(left.min(std::time::Duration::from_millis(10)));
        }
        false
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Watched>> {
        // A panic while holding this lock cannot leave the Vec inconsistent; keep going.
        self.watched.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn wake(socket: &Watched) {
    // ENOTCONN (the peer already left) is fine: there is nothing left to wake.
    let _ = (**socket).as_ref().shutdown(Shutdown::Both);
}

/// `sink`, minus `ServerRecvOver` once the stop was requested: the stop switch shuts watched
/// connections down, so their recv returns 0 although the client never closed, and "Server Recv
/// Over" would claim a FIN that was not seen.
pub fn unless_stopped(stop: &Arc<Stop>, sink: &super::event::Sink) -> super::event::Sink {
    let (stop, sink) = (Arc::clone(stop), Arc::clone(sink));
    Arc::new(move |event: &super::event::Event<'_>| {
        if !(matches!(event, super::event::Event::ServerRecvOver(_)) && stop.requested()) {
            sink(event);
        }
    })
}

/// Unregisters its socket from the [`Stop`] when dropped.
pub struct Watch {
    stop: Arc<Stop>,
    socket: Watched,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").field("fd", &(*self.socket).as_ref().as_fd()).finish()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut watched = self.stop.lock();
        if let Some(i) = watched.iter().position(|s| Arc::ptr_eq(s, &self.socket)) {
            watched.swap_remove(i);
        }
    }
}
