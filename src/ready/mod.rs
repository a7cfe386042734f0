//! Floor 3: readiness, safe. Which of many sockets can make progress now, without blocking?
//!
//! - [`PollSet`] (`poll.rs`): poll(2), everywhere. The whole list goes to the kernel on every wait.
//! - [`Epoll`] (`epoll.rs`, Linux): the kernel keeps the interest list; a wait returns only the
//!   ready descriptors.
//! - [`uring`] (`uring.rs`, Linux): not readiness but completion — io_uring runs the recvs and
//!   sends itself; a safe ring with provided buffers, for the `uring` model.
//!
//! Both speak the same small vocabulary: an [`Interest`] (readable, writable, and epoll's extra
//! flags) registered for a descriptor with a [`Token`] (the caller's name for it, handed back with
//! every event), and [`Readiness`] coming out. No raw event masks leave this floor.
//! Interrupted waits (`EINTR`) come back as "nothing ready": callers recompute their timeouts and
//! wait again.

#[cfg(socklab_epoll)]
mod epoll;
mod poll;
#[cfg(socklab_uring)]
pub mod uring;

use std::time::{Duration, Instant};

#[cfg(socklab_epoll)]
pub use epoll::{Epoll, Events};
pub use poll::PollSet;

/// The caller's name for a registered descriptor (a slot index, a connection id).
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use socklab::ready::{Interest, PollSet, Readiness, Token};
/// use socklab::{UnixKind, UnixStream};
///
/// // The caller names each descriptor with a Token and gets it back with what is ready.
/// let (a, b) = UnixStream::pair(UnixKind::Stream)?;
/// let mut set = PollSet::new();
/// set.push(&b, Token(42), Interest::READABLE);
/// a.send(b"x")?;
/// set.wait(Some(Duration::from_secs(5)))?;
/// let ready: Vec<Readiness> = set.ready().collect();
/// assert_eq!(ready[0].token, Token(42));
/// assert!(ready[0].readable && !ready[0].hangup && ready[0].any());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token(pub usize);

/// What to wait for.
///
/// # Example
///
/// ```
/// use socklab::ready::Interest;
///
/// let both = Interest::READABLE.and_writable();
/// assert!(both.is_readable() && both.is_writable());
/// // epoll's extras: one waiter woken per event on a shared listener, and edge-triggered reports.
/// let shared = Interest::READABLE.exclusive();
/// assert!(shared.is_readable() && !shared.is_writable());
/// assert!(!Interest::NONE.is_readable());
/// let _ = Interest::READABLE.edge_triggered();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interest {
    readable: bool,
    writable: bool,
    exclusive: bool,
    edge: bool,
    peer_close: bool,
}

impl Interest {
    /// Bytes to read, a connection to accept, or the peer's FIN.
    pub const READABLE: Interest =
        Interest { readable: true, writable: false, exclusive: false, edge: false, peer_close: false };
    /// Room in the send buffer, or a nonblocking connect that finished.
    pub const WRITABLE: Interest =
        Interest { readable: false, writable: true, exclusive: false, edge: false, peer_close: false };
    /// Only errors and hang-ups, which are always reported (poll's `events = 0`).
    pub const NONE: Interest =
        Interest { readable: false, writable: false, exclusive: false, edge: false, peer_close: false };

    /// Both.
    pub const fn and_writable(self) -> Interest {
        Interest { writable: true, ..self }
    }

    /// epoll's `EPOLLRDHUP`: also report the peer's FIN (its half-close) — even on a socket not
    /// watched for reading, or whose unread bytes hide the FIN behind them.
    pub const fn and_peer_close(self) -> Interest {
        Interest { peer_close: true, ..self }
    }

    /// epoll's `EPOLLEXCLUSIVE`: when several epoll instances wait on this descriptor, an event
    /// wakes one of them, not all (no thundering herd on a shared listener).
    pub const fn exclusive(self) -> Interest {
        Interest { exclusive: true, ..self }
    }

    /// epoll's `EPOLLET`: report a change once (an edge), not for as long as it lasts; the caller
    /// must then read or write until `WouldBlock`.
    pub const fn edge_triggered(self) -> Interest {
        Interest { edge: true, ..self }
    }

    /// Whether it asks for readability.
    pub fn is_readable(self) -> bool {
        self.readable
    }

    /// Whether it asks for writability.
    pub fn is_writable(self) -> bool {
        self.writable
    }
}

/// What the kernel reported for one descriptor.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use socklab::ready::{Interest, PollSet, Readiness, Token};
/// use socklab::{UnixKind, UnixStream};
///
/// // The caller names each descriptor with a Token and gets it back with what is ready.
/// let (a, b) = UnixStream::pair(UnixKind::Stream)?;
/// let mut set = PollSet::new();
/// set.push(&b, Token(42), Interest::READABLE);
/// a.send(b"x")?;
/// set.wait(Some(Duration::from_secs(5)))?;
/// let ready: Vec<Readiness> = set.ready().collect();
/// assert_eq!(ready[0].token, Token(42));
/// assert!(ready[0].readable && !ready[0].hangup && ready[0].any());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    /// The token it was registered with.
    pub token: Token,
    /// Readable: data, a queued connection, or end of stream.
    pub readable: bool,
    /// Writable.
    pub writable: bool,
    /// The peer hung up, or the socket was shut down (`POLLHUP`/`EPOLLHUP`, `EPOLLRDHUP`).
    pub hangup: bool,
    /// An error is pending (`SO_ERROR` says which).
    pub error: bool,
}

impl Readiness {
    /// Anything at all.
    pub fn any(&self) -> bool {
        self.readable || self.writable || self.hangup || self.error
    }
}

/// A wait's timeout in milliseconds for poll(2)/epoll_wait(2): until `deadline`, rounded up so the
/// loop does not wake a moment early and spin; `-1` (forever) without one.
pub(crate) fn timeout_ms(timeout: Option<Duration>) -> libc::c_int {
    timeout.map_or(-1, |d| d.as_micros().div_ceil(1000).min(libc::c_int::MAX as u128) as libc::c_int)
}

/// How long until `deadline` (`None`: no deadline, wait forever).
pub fn until(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|at| at.saturating_duration_since(Instant::now()))
}
