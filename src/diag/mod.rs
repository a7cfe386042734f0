//! Floor 4: the kernel's TCP socket table through `NETLINK_SOCK_DIAG` — what `ss -tan` shows.
//!
//! A dump lists every TCP socket of one address family with its state (LISTEN, SYN-SENT, ESTAB,
//! FIN-WAIT-2, TIME-WAIT...) and its two queues. For a listener, Recv-Q is the number of finished
//! handshakes waiting in the accept queue and Send-Q its backlog; for a connection they are bytes
//! not yet read by the program and bytes not yet acknowledged by the peer. No privileges needed.
//!
//! [`tcp_info`] reads `TCP_INFO` (rtt, cwnd, retransmits) of a socket this process owns.

pub mod parse;
pub mod port;

use std::io;
use std::net::{IpAddr, SocketAddr};

pub use parse::{SockInfo, TcpInfo, TcpState};

use crate::clock::monotonic_ns;
use crate::socket::{Domain, Protocol, Socket, Type};

/// An open sock_diag socket, reusable for many dumps (the walkthrough polls it).
#[derive(Debug)]
pub struct Diag {
    socket: Socket,
    buf: Vec<u8>,
    seq: u32,
}

/// The most datagrams one dump may take: bounds the reading loop (each holds dozens of sockets).
const MAX_DATAGRAMS: usize = 100_000;

impl Diag {
    /// `socket(AF_NETLINK, SOCK_RAW|SOCK_CLOEXEC, NETLINK_SOCK_DIAG)`.
    pub fn open() -> io::Result<Diag> {
        let socket = Socket::new(Domain::NETLINK, Type::RAW, Some(Protocol::SOCK_DIAG))?;
        Ok(Diag { socket, buf: vec![0u8; 64 * 1024], seq: 0 })
    }

    /// Every TCP socket of `family` (`libc::AF_INET` or `libc::AF_INET6`), with `tcp_info` if asked.
    pub fn dump(&mut self, family: i32, with_info: bool) -> io::Result<Vec<SockInfo>> {
        Ok(self.dump_timed(family, with_info)?.into_iter().map(|(_, s)| s).collect())
    }

    /// Like [`dump`](Self::dump), with each socket stamped (CLOCK_MONOTONIC ns) with a time by
    /// which the kernel had read it. A dump is not one snapshot: the kernel fills each answer
    /// datagram while the *previous* call (the send, then each recv) is running, so a datagram's
    /// rows are stamped with the end of that call.
    pub fn dump_timed(&mut self, family: i32, with_info: bool) -> io::Result<Vec<(u64, SockInfo)>> {
        self.seq = self.seq.wrapping_add(1);
        let request = parse::request(family as u8, self.seq, with_info);
        // An unconnected netlink socket sends to the kernel.
        self.socket.send_all(&request)?;
        let mut filled_by = monotonic_ns();
        let mut sockets = Vec::new();
        for _ in 0..MAX_DATAGRAMS {
            let n = self.socket.recv(&mut self.buf)?;
            let stamp = std::mem::replace(&mut filled_by, monotonic_ns());
            if n == 0 {
                break;
            }
            let batch = parse::messages(&self.buf[..n]).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            sockets.extend(batch.sockets.into_iter().map(|s| (stamp, s)));
            if batch.done {
                return Ok(sockets);
            }
        }
        Err(io::Error::new(io::ErrorKind::InvalidData, "the sock_diag dump did not end"))
    }

    /// IPv4 and IPv6 TCP sockets together (IPv6 skipped when the kernel has no IPv6).
    pub fn dump_all(&mut self, with_info: bool) -> io::Result<Vec<SockInfo>> {
        let mut all = self.dump(libc::AF_INET, with_info)?;
        if let Ok(v6) = self.dump(libc::AF_INET6, with_info) {
            all.extend(v6);
        }
        Ok(all)
    }
}

/// An address as `ss` prints it: `127.0.0.1:5000`, `[::1]:5000`, `*` for a wildcard address or port.
pub fn ss_addr(a: &SocketAddr) -> String {
    let ip = match a.ip() {
        ip if ip.is_unspecified() => "*".to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
        IpAddr::V4(ip) => ip.to_string(),
    };
    let port = if a.port() == 0 { "*".to_string() } else { a.port().to_string() };
    format!("{ip}:{port}")
}

/// `getsockopt(TCP_INFO)` on a socket of this process.
pub fn tcp_info(socket: &Socket) -> io::Result<TcpInfo> {
    let mut buf = [0u8; 256];
    let n = socket.tcp_info(&mut buf)?;
    TcpInfo::parse(&buf[..n]).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}
