//! Floor 4: the event model every timeline view renders — who did what, when.
//!
//! A [`Timeline`] is a list of [`Event`]s ordered by CLOCK_MONOTONIC ([`crate::clock::monotonic_ns`]),
//! whatever recorded them: a process's system call, a TCP segment on the wire, a socket's state, a
//! note. Recording is [`crate::walkthrough`]'s job; turning it into text or JSON is the renderers'
//! ([`super::text`], [`super::jsonl`]), which only read it.

use std::net::{IpAddr, SocketAddr};

use crate::capture::Segment;

/// Which program made a call or sent a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// `socklab server`.
    Server,
    /// `socklab client`.
    Client,
}

impl Side {
    /// `server` / `client`.
    pub fn name(self) -> &'static str {
        match self {
            Side::Server => "server",
            Side::Client => "client",
        }
    }
}

/// One entry of the timeline.
#[derive(Debug, Clone)]
pub enum What {
    /// A system call, as strace prints it.
    Call {
        /// Who made it.
        side: Side,
        /// When it started (CLOCK_MONOTONIC ns); the event's time is when it returned.
        start_ns: u64,
        /// The strace line.
        line: String,
        /// The `--explain` sentence.
        explain: Option<String>,
    },
    /// A TCP segment on `lo`.
    Segment {
        /// Who sent it.
        from: Side,
        /// The segment.
        segment: Segment,
        /// Sequence number relative to the sender's initial one (the SYN's is 0).
        rel_seq: u32,
        /// Acknowledgment relative to the receiver's initial sequence number.
        rel_ack: u32,
        /// The tutorial's words for it, for the handshake and the close.
        note: Option<String>,
    },
    /// A socket's state or queues changed, as sock_diag reported them.
    State {
        /// `listener`, `server` (the accepted connection) or `client`.
        role: &'static str,
        /// Local address.
        local: SocketAddr,
        /// Remote address.
        remote: SocketAddr,
        /// `LISTEN`, `ESTAB`, `TIME-WAIT`, ... as sock_diag named it.
        state: String,
        /// Recv-Q: for a listener, connections waiting for accept.
        recv_q: u32,
        /// Send-Q: for a listener, its backlog.
        send_q: u32,
    },
    /// A socket left sock_diag's table between two dumps: the kernel destroyed it. This is an
    /// absence, not a reported state (sock_diag never reports `CLOSED`); its last reported state
    /// is the [`What::State`] before it.
    Gone {
        /// `listener`, `server` or `client`.
        role: &'static str,
        /// Local address.
        local: SocketAddr,
        /// Remote address.
        remote: SocketAddr,
    },
    /// Something the walkthrough itself says.
    Note(String),
}

/// A timed entry (CLOCK_MONOTONIC nanoseconds).
#[derive(Debug, Clone)]
pub struct Event {
    /// When.
    pub t_ns: u64,
    /// What.
    pub what: What,
}

/// The merged result.
#[derive(Debug)]
pub struct Timeline {
    /// The server's address (127.0.0.1, ::1, or a wildcard for a dual-stack listener).
    pub host: IpAddr,
    /// The server's port.
    pub port: u16,
    /// Time zero of the relative timestamps.
    pub start_ns: u64,
    /// Every event, in time order.
    pub events: Vec<Event>,
    /// Why no segments were captured, if they were not.
    pub capture_error: Option<String>,
}

impl Timeline {
    /// The server's address and port: `127.0.0.1:5000`, `[::1]:5000`.
    pub fn server_addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }

    /// Seconds from [`Timeline::start_ns`] to `t_ns` (0 for earlier times).
    pub fn seconds(&self, t_ns: u64) -> f64 {
        t_ns.saturating_sub(self.start_ns) as f64 / 1e9
    }
}
