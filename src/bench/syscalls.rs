//! Which process serves the target, and how many system calls it makes while it is measured.
//!
//! Time on a shared machine is noisy; the number of system calls per echoed round trip is not. The
//! server is found the way `ss -ltnp` finds it: its listening socket's inode in `/proc/net/tcp`
//! (or `tcp6`), then the process holding a descriptor to that inode (`/proc/PID/fd/N` →
//! `socket:[inode]`). The count is the kernel's: [`crate::process::SyscallCount`].

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use crate::file;
use crate::process::{Pid, SyscallCount};

/// The processes with a socket listening at `addr` (or at the wildcard address on its port).
pub fn listener_pids(addr: SocketAddr) -> Vec<Pid> {
    let table = if addr.is_ipv4() { "/proc/net/tcp" } else { "/proc/net/tcp6" };
    let Ok(text) = file::read_to_string(Path::new(table)) else { return Vec::new() };
    let inodes: Vec<String> = text
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
            let (ip, port) = local.split_once(':')?;
            let listening = *state == "0A" && u16::from_str_radix(port, 16).ok()? == addr.port();
            let ip = parse_ip(ip)?;
            (listening && (ip == addr.ip() || ip.is_unspecified())).then(|| inode.to_string())
        })
        .collect();
    if inodes.is_empty() {
        return Vec::new();
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    let Ok(procs) = file::read_dir(Path::new("/proc")) else { return Vec::new() };
    let mut pids = Vec::new();
    for pid in procs.iter().filter_map(|p| p.to_str()?.parse::<Pid>().ok()) {
        let fd_dir = Path::new("/proc").join(pid.to_string()).join("fd");
        let Ok(fds) = file::read_dir(&fd_dir) else { continue };
        let holds = fds.iter().any(|fd| {
            file::read_link(&fd_dir.join(fd)).is_ok_and(|t| wanted.iter().any(|w| t.to_str() == Some(w.as_str())))
        });
        if holds {
            pids.push(pid);
        }
    }
    pids
}

/// An address as `/proc/net/tcp` prints it: the bytes of each 32-bit word in host order, in hex.
fn parse_ip(hex: &str) -> Option<IpAddr> {
    let word = |i: usize| u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok().map(u32::to_ne_bytes);
    match hex.len() {
        8 => Some(IpAddr::from(word(0)?)),
        32 => {
            let mut octets = [0u8; 16];
            for i in 0..4 {
                octets[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            Some(IpAddr::from(octets))
        }
        _ => None,
    }
}

/// Counters on every process in `pids` (or on the processes listening at `addr` when `pids` is
/// empty); `Err` says why the server's system calls cannot be counted.
pub fn attach(pids: &[Pid], addr: SocketAddr) -> Result<Vec<SyscallCount>, String> {
    let found;
    let pids = if pids.is_empty() {
        found = listener_pids(addr);
        if found.is_empty() {
            return Err(format!(
                "no process on this machine listens at {addr} (or it belongs to another network namespace or \
                 user): pass --server-pid"
            ));
        }
        &found
    } else {
        pids
    };
    if pids.contains(&(std::process::id() as Pid)) {
        return Err("the server runs in this process: its system calls cannot be told from the load \
                    generator's"
            .into());
    }
    pids.iter().map(|&pid| SyscallCount::attach(pid)).collect()
}

/// The sum of the counters, `None` if one cannot be read.
pub fn total(counts: &[SyscallCount]) -> Option<u64> {
    counts.iter().map(|c| c.read().ok()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_tcp_addresses_parse() {
        assert_eq!(parse_ip("0100007F"), Some(IpAddr::from([127, 0, 0, 1])));
        assert_eq!(parse_ip("00000000000000000000000001000000"), Some("::1".parse().unwrap()));
        assert_eq!(parse_ip("zz"), None);
    }

    #[test]
    fn this_process_is_found_listening() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let pids = listener_pids(listener.local_addr().unwrap());
        assert_eq!(pids, vec![std::process::id() as Pid]);
    }
}
