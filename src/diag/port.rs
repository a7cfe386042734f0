//! Who holds a TCP port, for the hint after `bind` fails with `EADDRINUSE`: a listener (and its
//! process, where `/proc` shows it), TIME-WAIT records, or connections that still use the port.
//! Read from the kernel's socket table (sock_diag), only on that error path.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use super::{Diag, TcpState};
use crate::file;

/// What the kernel's TCP table shows on one local port.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PortUse {
    /// Listeners on the port: `(pid, command)` of the process holding each, when `/proc` tells
    /// (another user's processes or another PID namespace's are not readable).
    pub listeners: Vec<Option<(u32, String)>>,
    /// TIME-WAIT records: no socket any more, only the kernel's memory of a closed connection.
    pub time_wait: usize,
    /// Sockets bound to the port that neither listen nor connect (ss's `UNCONN`).
    pub bound: usize,
    /// Other sockets with the port as their local port, counted by state (`ESTAB`, `CLOSE-WAIT`...).
    pub others: BTreeMap<String, usize>,
}

/// The TCP sockets (IPv4 and IPv6) whose local port is `port`.
pub fn port_use(port: u16) -> io::Result<PortUse> {
    let mut diag = Diag::open()?;
    let mut found = PortUse::default();
    for s in diag.dump_all(false)?.into_iter().filter(|s| s.local.port() == port) {
        match s.state {
            TcpState::Listen => found.listeners.push(process_of(s.inode)),
            TcpState::TimeWait => found.time_wait += 1,
            TcpState::Close => found.bound += 1,
            state => *found.others.entry(state.name()).or_default() += 1,
        }
    }
    Ok(found)
}

/// The process with `socket:[inode]` among its descriptors: `/proc/PID/fd/*` read one by one.
pub fn process_of(inode: u32) -> Option<(u32, String)> {
    let wanted = format!("socket:[{inode}]");
    let procs = file::read_dir(Path::new("/proc")).ok()?;
    procs.iter().filter_map(|p| p.to_str()?.parse::<u32>().ok()).find_map(|pid| {
        let dir = Path::new("/proc").join(pid.to_string());
        let fds = file::read_dir(&dir.join("fd")).ok()?;
        fds.iter().any(|fd| file::read_link(&dir.join("fd").join(fd)).is_ok_and(|t| t == wanted.as_str())).then(|| {
            let comm = file::read_to_string(&dir.join("comm")).unwrap_or_default();
            (pid, comm.trim().to_string())
        })
    })
}
