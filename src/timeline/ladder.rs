//! Floor 4: the rows a sequence diagram draws, built from the same [`Timeline`] as the text and
//! JSON views — so the terminal diagram ([`super::diagram`]) and the SVG ([`super::svg`]) cannot
//! say anything the timeline does not.
//!
//! Only what was observed becomes a row: each captured segment an arrow, each system call a
//! label beside the lifeline of the process that made it, each socket state sock_diag reported a
//! state label on its side. What the recording could not see is said in [`Ladder::caveats`].

use super::{Side, Timeline, What};

/// One thing drawn at one time.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A captured segment, an arrow from `from` to the other lifeline.
    Arrow {
        /// The sender.
        from: Side,
        /// `SYN`, `PSH-ACK`, ... (as [`crate::capture::Flags::names`]).
        flags: String,
        /// Relative sequence and acknowledgment numbers, payload bytes.
        seq: u32,
        /// See `seq`.
        ack: u32,
        /// See `seq`.
        len: usize,
        /// The tutorial's line for it (`C: 约么?`), for the three handshake segments.
        caption: Option<String>,
        /// The rest of the walkthrough's note on it (`SYN: the client's kernel asks to connect`).
        note: Option<String>,
        /// The client's port, when the session has more than one connection (`--clients`).
        conn: Option<u16>,
    },
    /// A system call: the strace line, and its short form (`connect(3) = 0`).
    Call {
        /// Who made it.
        side: Side,
        /// `name(fd) = result`, or `name(fd, "data") = result` for data calls.
        short: String,
        /// The whole strace line.
        line: String,
    },
    /// A socket state sock_diag reported (or, when `inferred`, the socket's absence from its table).
    State {
        /// The lifeline it belongs to (the listener and the accepted connection are the server's).
        side: Side,
        /// `listener`, `server` or `client`.
        role: String,
        /// `ESTAB`, `TIME-WAIT`, ... or `gone`.
        state: String,
        /// True for `gone`: the socket left the table; not a state the kernel reported.
        inferred: bool,
        /// For a listener: (connections waiting for accept, backlog).
        queue: Option<(u32, u32)>,
    },
    /// Something the walkthrough said.
    Note(String),
}

/// An item at a time (seconds since the timeline's start).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Seconds since the start.
    pub t: f64,
    /// What is drawn.
    pub item: Item,
}

/// Everything a diagram shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Ladder {
    /// The server's address.
    pub host: std::net::IpAddr,
    /// The server's port.
    pub port: u16,
    /// In time order.
    pub rows: Vec<Row>,
    /// What the diagram cannot show, in words (drawn above it).
    pub caveats: Vec<String>,
}

impl Ladder {
    /// The server's address and port: `127.0.0.1:5000`, `[::1]:5000`.
    pub fn server_addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::new(self.host, self.port)
    }

    /// The arrows, in captured order.
    pub fn arrows(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| matches!(r.item, Item::Arrow { .. }))
    }
}

/// What sock_diag polling can and cannot see, said under every diagram that has states.
pub const STATES_CAVEAT: &str = "states are what sock_diag reported, polled about every millisecond: a state \
     that lasted less (SYN-SENT usually does) is not drawn; 'gone' means the socket left the kernel's table (sock_diag never reports CLOSED)";

/// How a call's row is timed, said under every diagram that has calls (see [`super::model::place`]).
pub const CALL_TIMES: &str = "a call that sends (send, connect, shutdown, close) is drawn when it was made, \
     so the segments it sends come after it; any other call is drawn when it returned";

/// The rows of `timeline`.
pub fn build(timeline: &Timeline) -> Ladder {
    let mut rows = Vec::new();
    let mut caveats = Vec::new();
    if let Some(why) = &timeline.capture_error {
        let short = if why.contains("CAP_NET_RAW") { "needs CAP_NET_RAW" } else { why.as_str() };
        caveats.push(format!("segments not captured: {short}; no arrows are drawn"));
    }
    let client_port =
        |from: Side, s: &crate::capture::Segment| if from == Side::Client { s.src.port() } else { s.dst.port() };
    let mut conns: Vec<u16> = timeline
        .events
        .iter()
        .filter_map(|e| match &e.what {
            What::Segment { from, segment, .. } => Some(client_port(*from, segment)),
            _ => None,
        })
        .collect();
    conns.sort_unstable();
    conns.dedup();
    let many = conns.len() > 1;
    let mut any_segment = false;
    let mut any_state = false;
    for e in &timeline.events {
        // To the microsecond, as `--json` saves it: a session drawn live and drawn from its saved
        // JSON give the same picture.
        let t: f64 = format!("{:.6}", timeline.seconds(e.t_ns)).parse().unwrap_or(0.0);
        let item = match &e.what {
            What::Call { side, line, .. } => Item::Call { side: *side, short: short_call(line), line: line.clone() },
            What::Segment { from, segment, rel_seq, rel_ack, note } => {
                any_segment = true;
                let (caption, note) = split_note(note.as_deref());
                Item::Arrow {
                    from: *from,
                    flags: segment.flags.names(),
                    seq: *rel_seq,
                    ack: *rel_ack,
                    len: segment.len,
                    caption,
                    note,
                    conn: many.then(|| client_port(*from, segment)),
                }
            }
            What::State { role, state, recv_q, send_q, .. } => {
                any_state = true;
                let side = if *role == "client" { Side::Client } else { Side::Server };
                let queue = (*role == "listener" && state == "LISTEN").then_some((*recv_q, *send_q));
                Item::State { side, role: role.to_string(), state: state.clone(), inferred: false, queue }
            }
            What::Gone { role, .. } => {
                any_state = true;
                let side = if *role == "client" { Side::Client } else { Side::Server };
                Item::State { side, role: role.to_string(), state: "gone".into(), inferred: true, queue: None }
            }
            What::Note(n) => {
                // The capture error is already the first caveat.
                if timeline.capture_error.is_some() && n.starts_with("no segments shown:") {
                    continue;
                }
                if n.contains("dropped") && n.contains("frames") {
                    caveats.push(n.clone());
                }
                Item::Note(n.clone())
            }
        };
        rows.push(Row { t, item });
    }
    if !any_segment && timeline.capture_error.is_none() {
        caveats.push("no segments were captured in this session; no arrows are drawn".into());
    }
    if rows.iter().any(|r| matches!(r.item, Item::Call { .. })) {
        caveats.push(CALL_TIMES.into());
    }
    if any_state {
        caveats.push(STATES_CAVEAT.into());
    } else {
        caveats.push("no socket states were observed (sock_diag); none are drawn".into());
    }
    Ladder { host: timeline.host, port: timeline.port, rows, caveats }
}

/// `C: 约么?  (SYN: the client's kernel asks to connect)` → (`C: 约么?`, `SYN: the client's ...`).
fn split_note(note: Option<&str>) -> (Option<String>, Option<String>) {
    let Some(note) = note else { return (None, None) };
    if note.starts_with("C: ") || note.starts_with("S: ") {
        if let Some((words, rest)) = note.split_once("  (") {
            return (Some(words.to_string()), Some(rest.trim_end_matches(')').to_string()));
        }
        return (Some(note.to_string()), None);
    }
    (None, Some(note.to_string()))
}

/// `recvfrom(4, "Hello", 2048, 0, NULL, NULL) = 5` → `recvfrom(4, "Hello") = 5`;
/// `connect(3, {...}, 16) = 0` → `connect(3) = 0`; a failed call keeps its errno name.
pub fn short_call(line: &str) -> String {
    let Some((name, rest)) = line.split_once('(') else { return line.to_string() };
    let result = line.rsplit_once(" = ").map(|(_, r)| r.trim()).unwrap_or("?");
    // `= -1 ECONNRESET (Connection reset by peer)` → `-1 ECONNRESET`; `= 1 ([...])` → `1`.
    let result: Vec<&str> = result.split_whitespace().take_while(|w| !w.starts_with('(')).take(2).collect();
    let result = result.join(" ");
    let first = rest.split([',', ')']).next().unwrap_or("").trim();
    let first = if first.starts_with(['[', '{']) { "..." } else { first };
    let data = rest.split_once(", ").map(|(_, r)| r).filter(|r| r.starts_with('"'));
    let data = data.and_then(|r| r[1..].find('"').map(|end| &r[..end + 2]));
    match data {
        Some(d) if d.chars().count() <= 14 => format!("{name}({first}, {d}) = {result}"),
        Some(_) => format!("{name}({first}, \"...\") = {result}"),
        None if first.is_empty() => format!("{name}() = {result}"),
        None => format!("{name}({first}) = {result}"),
    }
}

/// Columns a terminal gives `s`: East Asian wide characters take two.
pub fn width(s: &str) -> usize {
    s.chars().map(|c| if is_wide(c) { 2 } else { 1 }).sum()
}

fn is_wide(c: char) -> bool {
    matches!(c as u32, 0x1100..=0x115F | 0x2E80..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x1F300..=0x1FAFF | 0x20000..=0x3FFFD)
}

/// `s` in lines of at most `cols` columns, broken between words (a longer word is cut).
pub fn wrap(s: &str, cols: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in s.split_whitespace() {
        let mut word = word.to_string();
        while width(&word) > cols {
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            let mut head = String::new();
            let mut rest = word.chars().peekable();
            while let Some(&c) = rest.peek() {
                if width(&head) + width(&c.to_string()) > cols {
                    break;
                }
                head.push(c);
                rest.next();
            }
            lines.push(head);
            word = rest.collect();
        }
        let need = if line.is_empty() { width(&word) } else { width(&line) + 1 + width(&word) };
        if need > cols && !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// The tutorial's Chinese words in ASCII (pinyin and meaning), then anything else not ASCII as `?`.
pub fn to_ascii(s: &str) -> String {
    let s = s.replace("约么?", "yue me? (shall we?)").replace("好的", "hao de (OK)").replace('约', "yue (let's)");
    s.chars()
        .map(|c| match c {
            c if c.is_ascii() => c.to_string(),
            '—' | '–' => "-".into(),
            '…' => "...".into(),
            '≈' => "~".into(),
            _ => "?".into(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_calls() {
        assert_eq!(short_call("recvfrom(4, \"Hello\", 2048, 0, NULL, NULL) = 5"), "recvfrom(4, \"Hello\") = 5");
        assert_eq!(short_call("connect(3, {sa_family=AF_INET, sin_port=htons(1)}, 16) = 0"), "connect(3) = 0");
        assert_eq!(
            short_call("poll([{fd=3, events=POLLIN}], 1, -1)    = 1 ([{fd=3, revents=POLLIN}])"),
            "poll(...) = 1"
        );
        assert_eq!(
            short_call("recvfrom(3, 0x7f, 10, 0, NULL, NULL) = -1 ECONNRESET (Connection reset by peer)"),
            "recvfrom(3) = -1 ECONNRESET"
        );
    }

    #[test]
    fn wrapping_and_width() {
        assert_eq!(width("C: 约么?"), 8);
        assert_eq!(wrap("aaa bbb ccc", 7), ["aaa bbb", "ccc"]);
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert!(wrap("约约约约约", 4).iter().all(|l| width(l) <= 4));
        assert_eq!(to_ascii("C: 约么? S: 约 C: 好的 é"), "C: yue me? (shall we?) S: yue (let's) C: hao de (OK) ?");
    }
}
