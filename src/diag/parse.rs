//! sock_diag's netlink messages, built and parsed as bytes in safe code.
//!
//! Layouts (native byte order for netlink's own fields, network order for ports and addresses):
//! - `nlmsghdr`: len u32, type u16, flags u16, seq u32, pid u32 (16 bytes), then the payload,
//!   each message padded to 4 bytes;
//! - `inet_diag_req_v2` (request): family u8, protocol u8, ext u8, pad u8, states u32, then a
//!   48-byte `inet_diag_sockid` (zero: match all);
//! - `inet_diag_msg` (answer): family, state, timer, retrans (u8 each), sockid (sport, dport,
//!   `src[16]`, `dst[16]`, if, `cookie[2]`), expires, rqueue, wqueue, uid, inode (u32 each), then
//!   attributes (`rtattr`: len u16, type u16, data), one of which may be `INET_DIAG_INFO`: a
//!   `struct tcp_info`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

// The kernel ABI these bytes follow (`linux/netlink.h`, `linux/sock_diag.h`, `linux/inet_diag.h`).
/// `struct nlmsghdr`'s size: len u32, type u16, flags u16, seq u32, pid u32.
const NLMSG_HDRLEN: usize = 16;
/// Message type: the end of a multi-part dump.
const NLMSG_DONE: u16 = 3;
/// Message type: an error (an `nlmsgerr` with a negative errno follows).
const NLMSG_ERROR: u16 = 2;
/// Message type of a sock_diag request and of its answers.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// Flags: a request, asking for a dump of all matching entries.
const NLM_F_REQUEST_DUMP: u16 = 0x1 | 0x300;
/// `struct inet_diag_req_v2`'s size.
const INET_DIAG_REQ_V2_LEN: usize = 56;
/// `struct inet_diag_msg`'s size.
const INET_DIAG_MSG_LEN: usize = 72;
/// Extension bit: ask for `struct tcp_info` (attribute `INET_DIAG_INFO`).
const INET_DIAG_INFO: u16 = 2;

/// A message that does not have the shape the kernel's headers describe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad sock_diag message: {}", self.0)
    }
}

impl std::error::Error for Error {}

fn err<T>(what: impl Into<String>) -> Result<T, Error> {
    Err(Error(what.into()))
}

/// TCP states, as `ss` names them (numbers from the kernel's `include/net/tcp_states.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpState {
    /// Both sides may send (after the three-way handshake).
    Established,
    /// The client sent SYN and waits for SYN-ACK.
    SynSent,
    /// The server got a SYN and answered SYN-ACK; waits for the final ACK.
    SynRecv,
    /// We sent FIN; waiting for its ACK.
    FinWait1,
    /// Our FIN was acknowledged; waiting for the peer's FIN.
    FinWait2,
    /// Both FINs done; the active closer waits 2×MSL so late segments die out.
    TimeWait,
    /// Closed.
    Close,
    /// The peer sent FIN; the program has not closed yet.
    CloseWait,
    /// We closed after the peer's FIN; waiting for the ACK of our FIN.
    LastAck,
    /// A listener.
    Listen,
    /// Both sides sent FIN at the same time.
    Closing,
    /// Any other number.
    Other(u8),
}

impl TcpState {
    /// From the kernel's number (12, `TCP_NEW_SYN_RECV`, is a SYN-RECEIVED request socket).
    pub fn from_kernel(n: u8) -> TcpState {
        match n {
            1 => TcpState::Established,
            2 => TcpState::SynSent,
            3 | 12 => TcpState::SynRecv,
            4 => TcpState::FinWait1,
            5 => TcpState::FinWait2,
            6 => TcpState::TimeWait,
            7 => TcpState::Close,
            8 => TcpState::CloseWait,
            9 => TcpState::LastAck,
            10 => TcpState::Listen,
            11 => TcpState::Closing,
            other => TcpState::Other(other),
        }
    }

    /// `ss -tan`'s column: `ESTAB`, `SYN-SENT`, `TIME-WAIT`, `LISTEN`...
    pub fn name(self) -> String {
        match self {
            TcpState::Established => "ESTAB".into(),
            TcpState::SynSent => "SYN-SENT".into(),
            TcpState::SynRecv => "SYN-RECV".into(),
            TcpState::FinWait1 => "FIN-WAIT-1".into(),
            TcpState::FinWait2 => "FIN-WAIT-2".into(),
            TcpState::TimeWait => "TIME-WAIT".into(),
            TcpState::Close => "UNCONN".into(),
            TcpState::CloseWait => "CLOSE-WAIT".into(),
            TcpState::LastAck => "LAST-ACK".into(),
            TcpState::Listen => "LISTEN".into(),
            TcpState::Closing => "CLOSING".into(),
            TcpState::Other(n) => format!("STATE-{n}"),
        }
    }
}

/// The `struct tcp_info` fields socklab shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpInfo {
    /// Smoothed round-trip time, microseconds.
    pub rtt_us: u32,
    /// Its variation, microseconds.
    pub rttvar_us: u32,
    /// Congestion window, in segments.
    pub snd_cwnd: u32,
    /// Retransmissions of the current segment (timeouts in a row).
    pub retransmits: u8,
    /// Retransmitted segments over the connection's life.
    pub total_retrans: u32,
    /// The congestion-avoidance state (`tcpi_ca_state`): 0 Open, 1 Disorder, 2 CWR, 3 Recovery,
    /// 4 Loss.
    pub ca_state: u8,
    /// Zero-window probes sent without an answer (`tcpi_probes`).
    pub probes: u8,
    /// Exponential backoff of the retransmission timer: it is `rto` after this many doublings
    /// (`tcpi_backoff`).
    pub backoff: u8,
    /// The retransmission timeout, microseconds (`tcpi_rto`).
    pub rto_us: u32,
    /// Segments sent and not yet acknowledged (`tcpi_unacked`).
    pub unacked: u32,
    /// Segments the receiver reported by SACK (`tcpi_sacked`).
    pub sacked: u32,
    /// Segments the sender counts as lost (`tcpi_lost`).
    pub lost: u32,
    /// Slow-start threshold, segments (`tcpi_snd_ssthresh`; 2147483647: not set yet).
    pub snd_ssthresh: u32,
}

impl TcpInfo {
    /// Parses the leading part of a `struct tcp_info` (104 bytes: every kernel since 2.6 has it).
    pub fn parse(b: &[u8]) -> Result<TcpInfo, Error> {
        if b.len() < 104 {
            return err(format!("tcp_info of {} bytes, need 104", b.len()));
        }
        Ok(TcpInfo {
            ca_state: b[1],
            retransmits: b[2],
            probes: b[3],
            backoff: b[4],
            rto_us: ne32(b, 8),
            unacked: ne32(b, 24),
            sacked: ne32(b, 28),
            lost: ne32(b, 32),
            rtt_us: ne32(b, 68),
            rttvar_us: ne32(b, 72),
            snd_ssthresh: ne32(b, 76),
            snd_cwnd: ne32(b, 80),
            total_retrans: ne32(b, 100),
        })
    }
}

/// One socket of the kernel's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SockInfo {
    /// Its TCP state.
    pub state: TcpState,
    /// Local address and port.
    pub local: SocketAddr,
    /// Remote address and port (`0.0.0.0:0` / `[::]:0` for a listener).
    pub remote: SocketAddr,
    /// ss's Recv-Q: bytes not yet read, or for a listener the connections waiting for accept.
    pub recv_q: u32,
    /// ss's Send-Q: bytes not yet acknowledged, or for a listener its backlog.
    pub send_q: u32,
    /// Owner's user id.
    pub uid: u32,
    /// The socket's inode (0 for TIME-WAIT, which has no socket any more, only a kernel record).
    pub inode: u32,
    /// The kernel's cookie for the socket (`inet_diag_sockid.idiag_cookie`): unique while the
    /// system runs, and kept by the TIME-WAIT record, so it tells a new connection from an old one
    /// with the same addresses and ports.
    pub cookie: u64,
    /// `tcp_info`, when asked for and present.
    pub info: Option<TcpInfo>,
}

fn ne16(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn ne32(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// A dump request for every TCP socket of `family` (`AF_INET` / `AF_INET6`), with `tcp_info` if asked.
pub fn request(family: u8, seq: u32, with_info: bool) -> Vec<u8> {
    let len = NLMSG_HDRLEN + INET_DIAG_REQ_V2_LEN;
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m.extend_from_slice(&NLM_F_REQUEST_DUMP.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes()); // pid 0: the kernel
    let ext: u8 = if with_info { 1 << (INET_DIAG_INFO - 1) } else { 0 };
    m.extend_from_slice(&[family, libc::IPPROTO_TCP as u8, ext, 0]);
    m.extend_from_slice(&u32::MAX.to_ne_bytes()); // every state
    m.resize(len, 0); // inet_diag_sockid: all zero, match any
    m
}

/// What one `recv` of a dump contained: sockets, and whether the dump is finished.
#[derive(Debug, Default)]
pub struct Batch {
    /// Sockets in this batch.
    pub sockets: Vec<SockInfo>,
    /// `NLMSG_DONE` was seen.
    pub done: bool,
}

/// Parses one datagram of netlink messages.
pub fn messages(mut b: &[u8]) -> Result<Batch, Error> {
    let mut batch = Batch::default();
    while !b.is_empty() {
        if b.len() < NLMSG_HDRLEN {
            return err(format!("{} trailing bytes, shorter than a header", b.len()));
        }
        let len = ne32(b, 0) as usize;
        if len < NLMSG_HDRLEN || len > b.len() {
            return err(format!("message length {len} with {} bytes left", b.len()));
        }
        let payload = &b[NLMSG_HDRLEN..len];
        match ne16(b, 4) {
            NLMSG_DONE => {
                batch.done = true;
                return Ok(batch);
            }
            NLMSG_ERROR => {
                let errno = if payload.len() >= 4 { -(ne32(payload, 0) as i32) } else { 0 };
                return err(format!("the kernel answered with error {errno}"));
            }
            SOCK_DIAG_BY_FAMILY => batch.sockets.push(socket(payload)?),
            _ => {} // other types (NLMSG_NOOP...) carry nothing for us
        }
        b = &b[align4(len).min(b.len())..];
    }
    Ok(batch)
}

/// One `inet_diag_msg` and its attributes.
pub fn socket(p: &[u8]) -> Result<SockInfo, Error> {
    if p.len() < INET_DIAG_MSG_LEN {
        return err(format!("inet_diag_msg of {} bytes, need {INET_DIAG_MSG_LEN}", p.len()));
    }
    let addr = |at: usize, port_at: usize| -> Result<SocketAddr, Error> {
        let port = u16::from_be_bytes([p[port_at], p[port_at + 1]]);
        let ip = match i32::from(p[0]) {
            libc::AF_INET => IpAddr::V4(Ipv4Addr::new(p[at], p[at + 1], p[at + 2], p[at + 3])),
            libc::AF_INET6 => {
                let mut o = [0u8; 16];
                o.copy_from_slice(&p[at..at + 16]);
                IpAddr::V6(Ipv6Addr::from(o))
            }
            other => return err(format!("address family {other}")),
        };
        Ok(SocketAddr::new(ip, port))
    };
    let mut info = None;
    let mut attrs = &p[INET_DIAG_MSG_LEN..];
    while attrs.len() >= 4 {
        let len = usize::from(ne16(attrs, 0));
        if len < 4 || len > attrs.len() {
            return err(format!("attribute length {len} with {} bytes left", attrs.len()));
        }
        if ne16(attrs, 2) == INET_DIAG_INFO {
            info = Some(TcpInfo::parse(&attrs[4..len])?);
        }
        attrs = &attrs[align4(len).min(attrs.len())..];
    }
    Ok(SockInfo {
        state: TcpState::from_kernel(p[1]),
        local: addr(8, 4)?,
        remote: addr(24, 6)?,
        recv_q: ne32(p, 56),
        send_q: ne32(p, 60),
        uid: ne32(p, 64),
        inode: ne32(p, 68),
        cookie: u64::from(ne32(p, 44)) | (u64::from(ne32(p, 48)) << 32),
        info,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer() -> Vec<u8> {
        let mut msg = vec![0u8; INET_DIAG_MSG_LEN];
        msg[0] = libc::AF_INET as u8;
        msg[1] = 10; // LISTEN
        msg[4..6].copy_from_slice(&5000u16.to_be_bytes());
        msg[8..12].copy_from_slice(&[127, 0, 0, 1]);
        msg[56..60].copy_from_slice(&1u32.to_ne_bytes());
        msg[60..64].copy_from_slice(&5u32.to_ne_bytes());
        let mut info = vec![0u8; 4 + 104];
        info[0..2].copy_from_slice(&108u16.to_ne_bytes());
        info[2..4].copy_from_slice(&INET_DIAG_INFO.to_ne_bytes());
        info[4 + 68..4 + 72].copy_from_slice(&42u32.to_ne_bytes());
        msg.extend(info);
        let mut m = Vec::new();
        m.extend_from_slice(&((NLMSG_HDRLEN + msg.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend(msg);
        let mut done = vec![0u8; 20];
        done[0..4].copy_from_slice(&20u32.to_ne_bytes());
        done[4..6].copy_from_slice(&NLMSG_DONE.to_ne_bytes());
        m.extend(done);
        m
    }

    #[test]
    fn parses_a_listener_with_its_queue() {
        let batch = messages(&answer()).unwrap();
        assert!(batch.done);
        let s = &batch.sockets[0];
        assert_eq!((s.state, s.recv_q, s.send_q), (TcpState::Listen, 1, 5));
        assert_eq!(s.local, "127.0.0.1:5000".parse().unwrap());
        assert_eq!(s.info.map(|i| i.rtt_us), Some(42));
        assert_eq!(request(libc::AF_INET as u8, 1, false).len(), 72);
    }

    #[test]
    fn truncated_and_garbage_messages_are_errors_not_panics() {
        let a = answer();
        let first = NLMSG_HDRLEN + INET_DIAG_MSG_LEN + 108;
        for cut in 1..first {
            assert!(messages(&a[..cut]).is_err(), "prefix of {cut} bytes accepted");
        }
        let mut bad = a.clone();
        bad[0..4].copy_from_slice(&3u32.to_ne_bytes()); // length below a header
        assert!(messages(&bad).is_err());
        let mut bad = a.clone();
        bad[NLMSG_HDRLEN + INET_DIAG_MSG_LEN..][..2].copy_from_slice(&2u16.to_ne_bytes()); // attribute len 2
        assert!(messages(&bad).is_err());
        let mut x: u32 = 0x9e37_79b9;
        for len in 0..300 {
            let junk = crate::testutil::garbage(&mut x, len);
            let _ = messages(&junk);
            let _ = socket(&junk);
            let _ = TcpInfo::parse(&junk);
        }
    }
}
