//! Floor 4: the timeline for a person — one line per event (two with `--explain`).

use super::{Timeline, What};
use crate::diag::ss_addr;

/// The whole timeline as text: a header, then each event with its time since the start.
pub fn render(timeline: &Timeline) -> String {
    let mut out = format!(
        "socklab walkthrough: echo server on {} and its client, as two processes.\n\
         Sources: server/client = system calls (strace's syntax), wire = TCP segments on lo, \
         ss = socket states and queues (sock_diag).\n\
         A call's time is when it was made if it hands the peer something (send, connect, shutdown, close: \
         what it sends follows it), else when it returned (what it waited for comes before it); \
         <seconds> after it is how long it took, as strace -T prints it.\n\n",
        timeline.server_addr()
    );
    out.push_str(&events(timeline));
    out
}

/// The events alone, one line each (for a recording with a header of its own: the scenarios).
pub fn events(timeline: &Timeline) -> String {
    let mut out = String::new();
    for e in &timeline.events {
        let t = format!("{:+.6}", timeline.seconds(e.t_ns));
        let line = match &e.what {
            What::Call { side, line, explain, start_ns, end_ns } => {
                let took = end_ns.saturating_sub(*start_ns) as f64 / 1e9;
                let mut s = format!("{t}  {:<6}  {line} <{took:.6}>", side.name());
                if let Some(x) = explain {
                    s.push_str(&format!("\n{:>10}          # {x}", ""));
                }
                s
            }
            What::Segment { segment: s, rel_seq, rel_ack, note, .. } => {
                let mut text = format!(
                    "{t}  wire    {} > {}  {:<8} seq {rel_seq:<4} ack {rel_ack:<4} len {}",
                    s.src,
                    s.dst,
                    s.flags.names(),
                    s.len
                );
                if let Some(n) = note {
                    text.push_str(&format!("   {n}"));
                }
                text
            }
            What::State { role, local, remote, state, recv_q, send_q } => {
                let mut text = format!(
                    "{t}  ss      {role:<8} {state:<10} {} {}  Recv-Q {recv_q} Send-Q {send_q}",
                    ss_addr(local),
                    ss_addr(remote)
                );
                if *role == "listener" && state == "LISTEN" {
                    text.push_str(&format!("   (accept queue: {recv_q} waiting; backlog {send_q})"));
                }
                text
            }
            What::Gone { role, local, remote } => format!(
                "{t}  ss      {role:<8} {:<10} {} {}  (left sock_diag's table: the kernel destroyed the socket)",
                "gone",
                ss_addr(local),
                ss_addr(remote)
            ),
            What::Note(n) => format!("{t}  note    {n}"),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}
