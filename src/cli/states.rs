//! Top floor: `socklab states`, the `ss -tan`-like table, printed from `socklab::diag` (JSON lines
//! through `socklab::timeline::json`).
//!
//! For sockets that belong to a socklab process (found through /proc/PID/fd, as `ss -p` does),
//! the kernel's `tcp_info` is shown too: smoothed rtt, congestion window, retransmissions.

use std::collections::HashSet;
use std::io::{self, Write};
use std::path::Path;

use socklab::diag::{Diag, TcpState, ss_addr};
use socklab::file;
use socklab::timeline::json::{self, Value};

/// Prints the table (or JSON lines) for every TCP socket, or those with `port` at either end;
/// of one address family (`AF_INET`, `AF_INET6`) or both.
pub fn print(port: Option<u16>, family: Option<i32>, as_json: bool) -> io::Result<()> {
    let mut diag = Diag::open()?;
    let mut sockets = match family {
        Some(family) => diag.dump(family, true)?,
        None => diag.dump_all(true)?,
    };
    if let Some(p) = port {
        sockets.retain(|s| s.local.port() == p || s.remote.port() == p);
    }
    sockets.sort_by_key(|s| (s.state != TcpState::Listen, s.local.port(), s.remote.port()));
    let ours = socklab_inodes();
    let mut out = String::new();
    if !as_json {
        out.push_str(&format!(
            "{:<11}{:>7} {:>7} {:<28} {:<28} {}\n",
            "State", "Recv-Q", "Send-Q", "Local Address:Port", "Peer Address:Port", "socklab tcp_info"
        ));
    }
    for s in &sockets {
        let own = s.inode != 0 && ours.contains(&s.inode);
        // A listener has no round trips to measure: tcp_info is shown for connections only.
        let info = if own && s.state != TcpState::Listen { s.info } else { None };
        if as_json {
            out.push_str(&json::object(&[
                ("state", Value::Str(s.state.name())),
                ("recv_q", Value::Int(s.recv_q.into())),
                ("send_q", Value::Int(s.send_q.into())),
                ("local", Value::Str(s.local.to_string())),
                ("remote", Value::Str(s.remote.to_string())),
                ("inode", Value::Int(s.inode.into())),
                ("socklab", Value::Int(own.into())),
                ("rtt_us", info.map_or(Value::Null, |i| Value::Int(i.rtt_us.into()))),
                ("cwnd", info.map_or(Value::Null, |i| Value::Int(i.snd_cwnd.into()))),
                ("retransmits", info.map_or(Value::Null, |i| Value::Int(i.total_retrans.into()))),
            ]));
            out.push('\n');
        } else {
            let extra = info.map_or(String::new(), |i| {
                format!(
                    "rtt {:.3}/{:.3} ms cwnd {} retrans {}",
                    i.rtt_us as f64 / 1e3,
                    i.rttvar_us as f64 / 1e3,
                    i.snd_cwnd,
                    i.total_retrans
                )
            });
            out.push_str(&format!(
                "{:<11}{:>7} {:>7} {:<28} {:<28} {}\n",
                s.state.name(),
                s.recv_q,
                s.send_q,
                ss_addr(&s.local),
                ss_addr(&s.remote),
                extra
            ));
        }
    }
    io::stdout().lock().write_all(out.as_bytes())
}

/// The inodes of the sockets that socklab processes hold open (this one included).
fn socklab_inodes() -> HashSet<u32> {
    let mut inodes = HashSet::new();
    let Ok(procs) = file::read_dir(Path::new("/proc")) else { return inodes };
    // Only the numbered entries are processes.
    for pid in procs.iter().filter(|p| p.to_str().is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit()))) {
        let path = Path::new("/proc").join(pid);
        let is_socklab = file::read_to_string(&path.join("comm")).is_ok_and(|c| c.trim() == "socklab");
        if !is_socklab {
            continue;
        }
        let Ok(fds) = file::read_dir(&path.join("fd")) else { continue };
        for fd in fds {
            let target = file::read_link(&path.join("fd").join(fd))
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default();
            if let Some(n) = target.strip_prefix("socket:[").and_then(|t| t.strip_suffix(']')) {
                if let Ok(n) = n.parse() {
                    inodes.insert(n);
                }
            }
        }
    }
    inodes
}
