//! Floor 4: the event model every timeline view renders — who did what, when.
//!
//! A [`Timeline`] is a list of [`Event`]s ordered by CLOCK_MONOTONIC ([`crate::clock::monotonic_ns`]),
//! whatever recorded them: a process's system call, a TCP segment on the wire, a socket's state, a
//! note. A system call is not an instant but a span (it entered the kernel, it returned); it is
//! placed at the end of the span that matters for the order ([`place`]). Recording is [`crate::walkthrough`]'s job; turning it into text or JSON is the renderers'
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
        /// When it entered the kernel (CLOCK_MONOTONIC ns).
        start_ns: u64,
        /// When it returned. The event's time is one of the two ([`place`]).
        end_ns: u64,
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

/// Whether the call `line` hands the kernel something that goes to the peer: bytes
/// (`sendto`/`sendmsg` that sent some), a connection request (`connect`), the end of this side's
/// stream (`shutdown` other than `SHUT_RD`, `close`).
fn hands_over(line: &str) -> bool {
    let name = line.split('(').next().unwrap_or("");
    let result = line.rsplit(" = ").next().unwrap_or("").split(' ').next().unwrap_or("");
    match name {
        "sendto" | "sendmsg" => result.parse::<u64>().is_ok_and(|n| n > 0),
        "shutdown" => !line.contains("SHUT_RD)") && !line.contains("SHUT_RD "),
        "close" | "connect" => true,
        _ => false,
    }
}

/// Where a call `line` made from `start_ns` to `end_ns` is placed on the timeline.
///
/// A call that hands something to the kernel for the peer — `sendto`/`sendmsg` with bytes,
/// `connect` (its SYN), `shutdown` (not `SHUT_RD`) and `close` (its FIN or RST) — is placed where it
/// *entered* the kernel: the segment it sends leaves during the call, so it is listed after the
/// call, and the peer's call that sees it (a `recvfrom` that returns the bytes, a `recvfrom` = 0)
/// returns after the cause started. Every other call — `recvfrom`, `accept`, `poll`, which wait for
/// something — is placed where it *returned*: what it waited for is listed before it. So a cause
/// always comes before its effect, one process's calls keep their order (each returned before the
/// next entered), and the times down the timeline only grow.
pub fn place(line: &str, start_ns: u64, end_ns: u64) -> u64 {
    if hands_over(line) { start_ns } else { end_ns }
}

/// The event for a narrated call: placed by [`place`].
pub fn call(side: Side, start_ns: u64, end_ns: u64, line: String, explain: Option<String>) -> Event {
    let t_ns = place(&line, start_ns, end_ns.max(start_ns));
    Event { t_ns, what: What::Call { side, start_ns, end_ns: end_ns.max(start_ns), line, explain } }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(mut events: Vec<Event>) -> Vec<String> {
        events.sort_by_key(|e| e.t_ns);
        events
            .iter()
            .map(|e| match &e.what {
                What::Call { side, line, .. } => format!("{} {}", side.name(), line.split('(').next().unwrap()),
                What::Note(n) => n.clone(),
                _ => String::new(),
            })
            .collect()
    }

    fn c(side: Side, start_ns: u64, end_ns: u64, line: &str) -> Event {
        call(side, start_ns, end_ns, line.to_string(), None)
    }

    #[test]
    fn a_receive_follows_the_send_that_fed_it_and_an_eof_the_close_that_caused_it() {
        use Side::{Client, Server};
        // By return time the client's recv (t=110) would come before the server's sendto that fed
        // it (entered at 100, returned at 120), and the server's recv of 0 (t=210) before the
        // client's close (entered at 200, returned at 220).
        let events = vec![
            c(Client, 10, 20, r#"sendto(3, "Hello", 5, MSG_NOSIGNAL, NULL, 0) = 5"#),
            c(Server, 30, 40, r#"recvfrom(4, "Hello", 2048, 0, NULL, NULL) = 5"#),
            c(Client, 50, 110, r#"recvfrom(3, "Hello", 10, 0, NULL, NULL) = 5"#),
            c(Server, 100, 120, r#"sendto(4, "Hello", 5, MSG_NOSIGNAL, NULL, 0) = 5"#),
            Event { t_ns: 150, what: What::Note("a note".into()) },
            c(Server, 130, 210, r#"recvfrom(4, "", 2048, 0, NULL, NULL) = 0"#),
            c(Client, 200, 220, "close(3) = 0"),
            c(Server, 230, 240, "close(4) = 0"),
        ];
        assert_eq!(
            lines(events),
            [
                "client sendto",
                "server recvfrom",
                "server sendto",
                "client recvfrom",
                "a note",
                "client close",
                "server recvfrom",
                "server close"
            ]
        );
    }

    #[test]
    fn a_segment_sent_by_a_call_is_listed_after_it_and_one_process_keeps_its_order() {
        use Side::{Client, Server};
        let seg = |t_ns| Event { t_ns, what: What::Note(format!("segment at {t_ns}")) };
        // The PSH-ACK left at 105, inside the sendto (100..120); the FIN at 305, inside the close;
        // the SYN at 55 inside connect (50..90), whose SYN-ACK came at 60.
        let events = vec![
            c(Client, 50, 90, "connect(3, {sa_family=AF_INET}, 16) = 0"),
            seg(55),
            seg(60),
            c(Server, 10, 70, "accept4(3, NULL, NULL, SOCK_CLOEXEC) = 4"),
            c(Server, 100, 120, r#"sendto(4, "Hello", 5, MSG_NOSIGNAL, NULL, 0) = 5"#),
            seg(105),
            c(Server, 300, 310, "close(4) = 0"),
            seg(305),
        ];
        assert_eq!(
            lines(events.clone()),
            [
                "client connect",
                "segment at 55",
                "segment at 60",
                "server accept4",
                "server sendto",
                "segment at 105",
                "server close",
                "segment at 305"
            ]
        );
        // Each call's place lies inside its span, so the server's calls stay in their order.
        for e in &events {
            if let What::Call { start_ns, end_ns, .. } = e.what {
                assert!(start_ns <= e.t_ns && e.t_ns <= end_ns);
            }
        }
    }

    #[test]
    fn a_hang_up_follows_the_shutdown_that_caused_it_and_shut_rd_sends_nothing() {
        use Side::{Client, Server};
        let events = vec![
            c(Server, 10, 50, "poll([{fd=4, events=POLLIN}], 1, -1) = 1 ([{fd=4, revents=POLLIN|POLLHUP}])"),
            c(Client, 20, 60, "shutdown(3, SHUT_RDWR) = 0"),
        ];
        assert_eq!(lines(events), ["client shutdown", "server poll"]);
        assert_eq!(place("shutdown(3, SHUT_RD) = 0", 20, 60), 60);
        assert_eq!(place(r#"recvfrom(3, "", 10, 0, NULL, NULL) = 0"#, 20, 60), 60);
    }
}
