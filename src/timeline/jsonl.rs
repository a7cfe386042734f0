//! Floor 4: the timeline for scripts — one JSON object per event, one per line (JSON Lines).
//!
//! Every line has `t` (seconds since the start) and `source`: `syscall`, `segment`, `state` or
//! `note`; the other keys depend on the source. Written with [`super::json`], readable with
//! [`super::json::parse`].

use super::json::{self, Value};
use super::{Timeline, What};

/// Every event as one JSON line.
pub fn render(timeline: &Timeline) -> String {
    let mut out = String::new();
    for e in &timeline.events {
        let t = ("t", Value::Num(timeline.seconds(e.t_ns)));
        let line = match &e.what {
            What::Call { side, start_ns, line, explain } => json::object(&[
                t,
                ("source", Value::Str("syscall".into())),
                ("side", Value::Str(side.name().into())),
                ("start", Value::Num(timeline.seconds(*start_ns))),
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
            What::Note(n) => json::object(&[t, ("source", Value::Str("note".into())), ("text", Value::Str(n.clone()))]),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}
