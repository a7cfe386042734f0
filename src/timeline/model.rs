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

/// What a call line means for the order of events between the two processes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    /// Data handed to the kernel: `sendto(...) = n`.
    Send(u64),
    /// Data taken from the kernel: `recvfrom(...) = n`, n > 0.
    Recv(u64),
    /// The end of the peer's stream seen: a recv that returned 0, or a poll that reported a hang-up.
    PeerEnd,
    /// This side ends its stream: `shutdown` (not `SHUT_RD`) or `close`.
    End,
    Other,
}

fn role(line: &str) -> Role {
    let name = line.split('(').next().unwrap_or("");
    let result = line.rsplit(" = ").next().unwrap_or("").split(' ').next().unwrap_or("");
    let n: Option<u64> = result.parse().ok();
    match name {
        "sendto" | "sendmsg" => n.map_or(Role::Other, Role::Send),
        "recvfrom" | "recvmsg" => match n {
            Some(0) => Role::PeerEnd,
            Some(n) => Role::Recv(n),
            None => Role::Other,
        },
        "poll" | "ppoll" | "epoll_wait" | "epoll_pwait"
            if line.rsplit(" = ").next().is_some_and(|r| r.contains("HUP")) =>
        {
            Role::PeerEnd
        }
        "shutdown" if !line.contains("SHUT_RD)") && !line.contains("SHUT_RD ") => Role::End,
        "close" => Role::End,
        _ => Role::Other,
    }
}

/// Puts each cause before its effect where the kernel's order is known but the calls' return
/// times say otherwise. Events come in sorted by when each call *returned*; two calls on two
/// processes can overlap, and then the effect may return first: the client's `recvfrom "Hello"`
/// returns while the server's `sendto` that fed it is still on its way back to user space. What
/// is known for certain:
/// - a receive that returned bytes needs the send that carried the last of them (counted byte by
///   byte, per direction) — that send had *started* before the receive returned;
/// - a receive that returned 0 (or a poll that reported a hang-up) needs the peer's first
///   `shutdown`/`close` after its last send.
///
/// When such a cause is listed after its effect and it started before the effect returned, it is
/// moved to just before the effect. Times are not changed (each still says when its call
/// returned), so a moved line may show a time a few microseconds later than the line after it.
/// Each side's own calls keep their order: every earlier call of the cause's side returned before
/// the cause started, so it is already listed before the effect.
pub fn order_causes(events: &mut Vec<Event>) {
    let call = |e: &Event| match &e.what {
        What::Call { side, start_ns, line, .. } => Some((*side, *start_ns, role(line))),
        _ => None,
    };
    // Pass 1, in list order: which event (by original index) each effect needs.
    let mut needs: Vec<(usize, usize)> = Vec::new();
    let mut sent: Vec<(Side, u64, usize)> = Vec::new(); // (sender, bytes sent through this send, index)
    let mut received = [0u64; 2]; // bytes received by the server, by the client
    let slot = |s: Side| if s == Side::Server { 0 } else { 1 };
    let peer = |s: Side| if s == Side::Server { Side::Client } else { Side::Server };
    for (i, e) in events.iter().enumerate() {
        let Some((side, _, role)) = call(e) else { continue };
        match role {
            Role::Send(n) => {
                let before = sent.iter().filter(|s| s.0 == side).map(|s| s.1).max().unwrap_or(0);
                sent.push((side, before + n, i));
            }
            Role::Recv(n) => {
                received[slot(side)] += n;
                let total = received[slot(side)];
                if let Some(&(_, _, j)) = sent.iter().find(|s| s.0 == peer(side) && s.1 >= total) {
                    needs.push((i, j));
                } else if let Some(j) = (i + 1..events.len())
                    .find(|&j| call(&events[j]).is_some_and(|(s, _, r)| s == peer(side) && matches!(r, Role::Send(_))))
                {
                    // The feeding send is listed later: the first later send of the peer (the
                    // byte count says which, but a later send is only ever the next one here).
                    needs.push((i, j));
                }
            }
            Role::PeerEnd => {
                let last_send = sent.iter().filter(|s| s.0 == peer(side)).map(|s| s.2).max();
                let from = last_send.map_or(0, |j| j + 1);
                if let Some(j) = (from..events.len())
                    .find(|&j| call(&events[j]).is_some_and(|(s, _, r)| s == peer(side) && r == Role::End))
                {
                    needs.push((i, j));
                }
            }
            _ => {}
        }
    }
    // Pass 2: move each cause listed after its effect to just before it, if it had started by then.
    let mut order: Vec<usize> = (0..events.len()).collect();
    for (effect, cause) in needs {
        let (Some(pe), Some(pc)) = (order.iter().position(|&k| k == effect), order.iter().position(|&k| k == cause))
        else {
            continue;
        };
        let started = call(&events[cause]).map_or(u64::MAX, |c| c.1);
        if pc > pe && started <= events[effect].t_ns {
            let k = order.remove(pc);
            order.insert(pe, k);
        }
    }
    let mut taken: Vec<Option<Event>> = std::mem::take(events).into_iter().map(Some).collect();
    events.extend(order.into_iter().filter_map(|k| taken[k].take()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(side: Side, start_ns: u64, end_ns: u64, line: &str) -> Event {
        Event { t_ns: end_ns, what: What::Call { side, start_ns, line: line.to_string(), explain: None } }
    }

    fn lines(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .map(|e| match &e.what {
                What::Call { side, line, .. } => format!("{} {}", side.name(), line.split('(').next().unwrap()),
                What::Note(n) => n.clone(),
                _ => String::new(),
            })
            .collect()
    }

    #[test]
    fn a_receive_follows_the_send_that_fed_it_and_an_eof_the_close_that_caused_it() {
        use Side::{Client, Server};
        // As sorted by return time: the client's recv returned (t=110) before the server's sendto
        // (started at 100) did (t=120); the server's recv of 0 returned (t=210) before the
        // client's close (started at 200) returned (t=220).
        let mut events = vec![
            call(Client, 10, 20, r#"sendto(3, "Hello", 5, MSG_NOSIGNAL, NULL, 0) = 5"#),
            call(Server, 30, 40, r#"recvfrom(4, "Hello", 2048, 0, NULL, NULL) = 5"#),
            call(Client, 50, 110, r#"recvfrom(3, "Hello", 10, 0, NULL, NULL) = 5"#),
            call(Server, 100, 120, r#"sendto(4, "Hello", 5, MSG_NOSIGNAL, NULL, 0) = 5"#),
            Event { t_ns: 150, what: What::Note("a note".into()) },
            call(Server, 130, 210, r#"recvfrom(4, "", 2048, 0, NULL, NULL) = 0"#),
            call(Client, 200, 220, "close(3) = 0"),
            call(Server, 230, 240, "close(4) = 0"),
        ];
        order_causes(&mut events);
        assert_eq!(
            lines(&events),
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
    fn a_cause_that_started_after_its_effect_returned_is_not_moved_and_order_already_right_is_kept() {
        use Side::{Client, Server};
        // Already in causal order: nothing moves.
        let mut events = vec![
            call(Server, 100, 120, r#"sendto(4, "Hello", 5, MSG_NOSIGNAL, NULL, 0) = 5"#),
            call(Client, 50, 130, r#"recvfrom(3, "Hello", 10, 0, NULL, NULL) = 5"#),
            call(Client, 140, 150, "close(3) = 0"),
            call(Server, 125, 160, r#"recvfrom(4, "", 2048, 0, NULL, NULL) = 0"#),
        ];
        let before = lines(&events);
        order_causes(&mut events);
        assert_eq!(lines(&events), before);
        // A "cause" that started after the effect returned cannot be its cause: left alone.
        let mut events = vec![
            call(Client, 50, 110, r#"recvfrom(3, "Hello", 10, 0, NULL, NULL) = 5"#),
            call(Server, 115, 120, r#"sendto(4, "Hello", 5, MSG_NOSIGNAL, NULL, 0) = 5"#),
        ];
        let before = lines(&events);
        order_causes(&mut events);
        assert_eq!(lines(&events), before);
    }

    #[test]
    fn a_hang_up_follows_the_shutdown_that_caused_it() {
        use Side::{Client, Server};
        let mut events = vec![
            call(Server, 10, 50, "poll([{fd=4, events=POLLIN}], 1, -1) = 1 ([{fd=4, revents=POLLIN|POLLHUP}])"),
            call(Client, 20, 60, "shutdown(3, SHUT_RDWR) = 0"),
        ];
        order_causes(&mut events);
        assert_eq!(lines(&events), ["client shutdown", "server poll"]);
    }
}
