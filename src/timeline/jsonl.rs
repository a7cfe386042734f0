//! Floor 4: the timeline for scripts — one JSON object per event, one per line (JSON Lines).
//!
//! Every line has `t` (seconds since the start) and `source`: `session` (the first line: the
//! server's address and port and why segments are missing, if they are), `syscall`, `segment`,
//! `state` or `note`; the other keys depend on the source. A `syscall` also has `start` and `end`
//! (when it entered the kernel and when it returned); its `t` is one of the two
//! ([`super::model::place`]). Written with [`super::json`], read back into a [`Timeline`] by
//! [`read`] (so a saved session can be drawn later: `socklab draw FILE`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::json::{self, Value};
use super::{Event, Side, Timeline, What};
use crate::capture::{Flags, Segment};

/// Every event as one JSON line, after one `session` line.
pub fn render(timeline: &Timeline) -> String {
    let mut out = json::object(&[
        ("t", Value::Num(0.0)),
        ("source", Value::Str("session".into())),
        ("host", Value::Str(timeline.host.to_string())),
        ("port", Value::Int(i64::from(timeline.port))),
        ("capture_error", timeline.capture_error.clone().map_or(Value::Null, Value::Str)),
    ]);
    out.push('\n');
    for e in &timeline.events {
        let t = ("t", Value::Num(timeline.seconds(e.t_ns)));
        let line = match &e.what {
            What::Call { side, start_ns, end_ns, line, explain } => json::object(&[
                t,
                ("source", Value::Str("syscall".into())),
                ("side", Value::Str(side.name().into())),
                ("start", Value::Num(timeline.seconds(*start_ns))),
                ("end", Value::Num(timeline.seconds(*end_ns))),
                ("call", Value::Str(line.split('(').next().unwrap_or("").into())),
                ("line", Value::Str(line.clone())),
                ("explain", explain.clone().map_or(Value::Null, Value::Str)),
            ]),
            What::Segment { from, segment: s, rel_seq, rel_ack, note } => json::object(&[
                t,
                ("source", Value::Str("segment".into())),
                ("from", Value::Str(from.name().into())),
                ("src", Value::Str(s.src.to_string())),
                ("dst", Value::Str(s.dst.to_string())),
                ("flags", Value::Str(s.flags.names())),
                ("tcpdump_flags", Value::Str(s.flags.tcpdump())),
                ("seq", Value::Int(i64::from(*rel_seq))),
                ("ack", Value::Int(i64::from(*rel_ack))),
                ("len", Value::Int(s.len as i64)),
                ("win", Value::Int(i64::from(s.window))),
                ("note", note.clone().map_or(Value::Null, Value::Str)),
            ]),
            What::State { role, local, remote, state, recv_q, send_q } => json::object(&[
                t,
                ("source", Value::Str("state".into())),
                ("socket", Value::Str((*role).into())),
                ("local", Value::Str(local.to_string())),
                ("remote", Value::Str(remote.to_string())),
                ("state", Value::Str(state.clone())),
                ("recv_q", Value::Int(i64::from(*recv_q))),
                ("send_q", Value::Int(i64::from(*send_q))),
            ]),
            What::Gone { role, local, remote } => json::object(&[
                t,
                ("source", Value::Str("gone".into())),
                ("socket", Value::Str((*role).into())),
                ("local", Value::Str(local.to_string())),
                ("remote", Value::Str(remote.to_string())),
            ]),
            What::Note(n) => json::object(&[t, ("source", Value::Str("note".into())), ("text", Value::Str(n.clone()))]),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Why [`read`] rejected a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    /// 1-based line number.
    pub line: usize,
    /// What was wrong with it.
    pub what: String,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.what)
    }
}

impl std::error::Error for ReadError {}

/// Reads what [`render`] wrote back into a [`Timeline`] whose time zero is 0 (times are kept to
/// the microsecond, as written). Absolute sequence numbers are not in the file: a segment's `seq`
/// and `ack` are its relative ones. Blank lines are skipped; a file without a `session` line (an
/// older one) gets port 0 and no capture error; one without `host` (older) gets 127.0.0.1.
pub fn read(text: &str) -> Result<Timeline, ReadError> {
    let mut timeline =
        Timeline { host: Ipv4Addr::LOCALHOST.into(), port: 0, start_ns: 0, events: Vec::new(), capture_error: None };
    // Every saved session has its `session` line (render writes it first): without one, an empty
    // file would draw as an empty session on port 0.
    let mut session = false;
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let fail = |what: String| ReadError { line: i + 1, what };
        let v = json::parse(line).map_err(|e| fail(e.to_string()))?;
        let field = |k: &str| v.get(k).ok_or_else(|| fail(format!("no \"{k}\"")));
        let text =
            |k: &str| field(k)?.as_str().map(str::to_string).ok_or_else(|| fail(format!("\"{k}\" is not a string")));
        let opt_text = |k: &str| match v.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Str(s)) => Ok(Some(s.clone())),
            Some(_) => Err(fail(format!("\"{k}\" is not a string or null"))),
        };
        let int = |k: &str, max: i64| match field(k)?.as_i64() {
            Some(n) if (0..=max).contains(&n) => Ok(n),
            _ => Err(fail(format!("\"{k}\" is not a whole number from 0 to {max}"))),
        };
        let ns = |k: &str| match field(k)?.as_f64() {
            Some(s) if s.is_finite() && s >= 0.0 => Ok((s * 1e9).round() as u64),
            _ => Err(fail(format!("\"{k}\" is not a time in seconds"))),
        };
        let addr = |k: &str| text(k)?.parse::<SocketAddr>().map_err(|_| fail(format!("\"{k}\" is not an address")));
        let side = |k: &str| match text(k)?.as_str() {
            "server" => Ok(Side::Server),
            "client" => Ok(Side::Client),
            other => Err(fail(format!("\"{k}\" is {other:?}, not server or client"))),
        };
        let role = || match text("socket")?.as_str() {
            "listener" => Ok("listener"),
            "server" => Ok("server"),
            "client" => Ok("client"),
            other => Err(fail(format!("unknown socket role {other:?}"))),
        };
        let t_ns = ns("t")?;
        let what = match text("source")?.as_str() {
            "session" => {
                session = true;
                timeline.port = int("port", i64::from(u16::MAX))? as u16;
                // Sessions saved before IPv6 walkthroughs have no host: theirs was 127.0.0.1.
                if let Some(host) = opt_text("host")? {
                    timeline.host = host.parse::<IpAddr>().map_err(|_| fail("\"host\" is not an IP address".into()))?;
                }
                timeline.capture_error = opt_text("capture_error")?;
                continue;
            }
            "syscall" => {
                // Sessions saved before "end" existed placed every call where it returned.
                let end_ns = if v.get("end").is_some() { ns("end")? } else { t_ns };
                let (side, line) = (side("side")?, text("line")?);
                timeline.events.push(super::model::call(side, ns("start")?, end_ns, line, opt_text("explain")?));
                continue;
            }
            "segment" => {
                let flags =
                    parse_tcpdump_flags(&text("tcpdump_flags")?).ok_or_else(|| fail("bad \"tcpdump_flags\"".into()))?;
                let (rel_seq, rel_ack) = (int("seq", u32::MAX.into())? as u32, int("ack", u32::MAX.into())? as u32);
                let segment = Segment {
                    src: addr("src")?,
                    dst: addr("dst")?,
                    seq: rel_seq,
                    ack: rel_ack,
                    flags,
                    window: int("win", u16::MAX.into())? as u16,
                    len: int("len", u32::MAX.into())? as usize,
                    // Not saved: the note names the SACK blocks where they matter.
                    sack: Vec::new(),
                };
                What::Segment { from: side("from")?, segment, rel_seq, rel_ack, note: opt_text("note")? }
            }
            // Files written before "gone" existed said state "CLOSED" for a socket that left the table.
            "gone" => What::Gone { role: role()?, local: addr("local")?, remote: addr("remote")? },
            "state" if text("state")? == "CLOSED" => {
                What::Gone { role: role()?, local: addr("local")?, remote: addr("remote")? }
            }
            "state" => What::State {
                role: role()?,
                local: addr("local")?,
                remote: addr("remote")?,
                state: text("state")?,
                recv_q: int("recv_q", u32::MAX.into())? as u32,
                send_q: int("send_q", u32::MAX.into())? as u32,
            },
            "note" => What::Note(text("text")?),
            other => return Err(fail(format!("unknown source {other:?}"))),
        };
        timeline.events.push(Event { t_ns, what });
    }
    if !session {
        let what = if text.trim().is_empty() { "the file is empty" } else { "no \"session\" line" };
        return Err(ReadError { line: 1, what: what.into() });
    }
    // An older session listed its calls by return time: placed again, the list is re-sorted
    // (stable: events at one time keep the file's order).
    timeline.events.sort_by_key(|e| e.t_ns);
    Ok(timeline)
}

/// `S`, `S.`, `P.`, `F.`, `R`, `.` (as [`Flags::tcpdump`] writes them) back into flags.
fn parse_tcpdump_flags(text: &str) -> Option<Flags> {
    if text == "none" {
        return Some(Flags(0));
    }
    let mut bits = 0;
    for c in text.chars() {
        bits |= match c {
            'F' => Flags::FIN,
            'S' => Flags::SYN,
            'R' => Flags::RST,
            'P' => Flags::PSH,
            '.' => Flags::ACK,
            _ => return None,
        };
    }
    Some(Flags(bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_old_closed_state_reads_back_as_gone() {
        let old = "{\"t\": 0.0, \"source\": \"session\", \"port\": 5000, \"capture_error\": null}\n\
                   {\"t\": 1.5, \"source\": \"state\", \"socket\": \"server\", \"local\": \"127.0.0.1:5000\", \
                   \"remote\": \"127.0.0.1:40000\", \"state\": \"CLOSED\", \"recv_q\": 0, \"send_q\": 0}\n";
        let timeline = read(old).unwrap();
        assert!(matches!(timeline.events[0].what, What::Gone { role: "server", .. }), "{:?}", timeline.events);
        assert!(render(&timeline).contains("\"source\": \"gone\""));
    }

    #[test]
    fn a_file_without_its_session_line_is_refused() {
        let empty = read("\n").unwrap_err();
        assert_eq!(empty.to_string(), "line 1: the file is empty");
        let note = "{\"t\": 0.5, \"source\": \"note\", \"text\": \"hi\"}\n";
        assert_eq!(read(note).unwrap_err().to_string(), "line 1: no \"session\" line");
        let saved = render(&Timeline {
            host: Ipv4Addr::LOCALHOST.into(),
            port: 5000,
            start_ns: 0,
            events: Vec::new(),
            capture_error: None,
        });
        assert_eq!(read(&saved).unwrap().port, 5000, "a session with no events is still a session");
    }
}
