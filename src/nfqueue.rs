//! Floor 3: a netfilter packet queue (`nfnetlink_queue`), safe.
//!
//! A firewall rule with the target `NFQUEUE --queue-num N` takes each matching packet out of the
//! kernel's path and hands it, whole, to the program that bound queue `N` in that network
//! namespace. The packet waits in the kernel until the program gives its *verdict*: accept (the
//! packet goes on as if nothing happened), drop (it is gone), or repeat (it goes through the hook
//! again). The program may answer at once, later, or in another order than the packets came —
//! which is how a program drops, delays and reorders chosen packets on any kernel, without `netem`.
//!
//! The conversation, one netlink socket (`socket(AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER)`):
//! ```text
//! bind(fd, {AF_NETLINK, nl_pid=0})                      the kernel picks our port id
//! sendto  NFQNL_MSG_CONFIG  NFQA_CFG_CMD {BIND}          queue N is ours (one owner per queue)
//! recvfrom NLMSG_ERROR {error=0}                          the kernel's acknowledgement
//! sendto  NFQNL_MSG_CONFIG  NFQA_CFG_PARAMS {range, COPY_PACKET}   send us the packet's bytes
//! recvfrom NLMSG_ERROR {error=0}
//! loop:
//!   recvfrom NFQNL_MSG_PACKET  NFQA_PACKET_HDR {id, hook}, NFQA_PAYLOAD (IP header onwards)
//!   sendto   NFQNL_MSG_VERDICT NFQA_VERDICT_HDR {NF_ACCEPT | NF_DROP | NF_REPEAT, id}
//! ```
//! Messages are built and parsed here as bytes: netlink's and nfnetlink's headers in native byte
//! order, the queue's own fields (`packet_id`, `verdict`, `copy_range`, the queue number in
//! `res_id`) in network byte order (`linux/netfilter/nfnetlink_queue.h`).
//!
//! Needs CAP_NET_ADMIN in the namespace; only one socket may bind a given queue number there.
//! Closing the socket releases the queue, and the kernel drops the packets still waiting.

use std::io;
use std::time::Duration;

use crate::socket::{Domain, Protocol, Socket, Type};
use crate::sys::SockAddr;

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NFNL_SUBSYS_QUEUE: u16 = 3;
const NFQNL_MSG_PACKET: u16 = 0;
const NFQNL_MSG_VERDICT: u16 = 1;
const NFQNL_MSG_CONFIG: u16 = 2;
const NFQA_PACKET_HDR: u16 = 1;
const NFQA_VERDICT_HDR: u16 = 2;
const NFQA_PAYLOAD: u16 = 10;
const NFQA_CFG_CMD: u16 = 1;
const NFQA_CFG_PARAMS: u16 = 2;
const NFQNL_CFG_CMD_BIND: u8 = 1;
const NFQNL_COPY_PACKET: u8 = 2;
/// How many bytes of each packet to copy to us: all of them (the kernel caps it to the packet).
const COPY_RANGE: u32 = 0xffff;

/// What happens to a queued packet.
///
/// ```
/// use socklab::nfqueue::Verdict;
/// // A verdict is given per packet id: `queue.verdict(packet.id, Verdict::Drop)`.
/// assert_ne!(Verdict::Drop, Verdict::Accept);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// `NF_DROP`: the packet is gone; the sender learns nothing (no ICMP, no RST).
    Drop,
    /// `NF_ACCEPT`: the packet continues on its way.
    Accept,
    /// `NF_REPEAT`: the packet goes through the same hook again (and so, matching the same rule,
    /// comes back to the queue with a new id).
    Repeat,
}

impl Verdict {
    fn raw(self) -> u32 {
        match self {
            Verdict::Drop => 0,
            Verdict::Accept => 1,
            Verdict::Repeat => 4,
        }
    }
}

/// Where in the kernel's path the packet was queued (`NF_INET_*` hooks).
///
/// ```
/// use socklab::nfqueue::Hook;
/// // A rule in iptables' OUTPUT chain queues at LOCAL_OUT: packets this namespace sends.
/// let sent = |hook: Hook| hook == Hook::LocalOut;
/// assert!(sent(Hook::LocalOut) && !sent(Hook::LocalIn));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// `NF_INET_PRE_ROUTING`: just arrived, before routing.
    PreRouting,
    /// `NF_INET_LOCAL_IN`: arrived, for a socket of this namespace (iptables' INPUT chain).
    LocalIn,
    /// `NF_INET_FORWARD`: passing through.
    Forward,
    /// `NF_INET_LOCAL_OUT`: sent by a socket of this namespace (iptables' OUTPUT chain).
    LocalOut,
    /// `NF_INET_POST_ROUTING`: about to leave.
    PostRouting,
    /// A hook number this code does not know.
    Other(u8),
}

impl Hook {
    fn from_raw(v: u8) -> Hook {
        match v {
            0 => Hook::PreRouting,
            1 => Hook::LocalIn,
            2 => Hook::Forward,
            3 => Hook::LocalOut,
            4 => Hook::PostRouting,
            other => Hook::Other(other),
        }
    }
}

/// One packet the kernel handed us, waiting for its verdict.
///
/// ```
/// use socklab::nfqueue::{Hook, Queued};
/// let p = Queued { id: 1, hook: Hook::LocalOut, payload: vec![0x45, 0, 0, 20] };
/// assert_eq!(p.payload[0] >> 4, 4, "an IPv4 header");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// The kernel's id for it: the verdict names it.
    pub id: u32,
    /// Where it was taken out of the path.
    pub hook: Hook,
    /// The packet from its IP header on.
    pub payload: Vec<u8>,
}

/// A bound queue. Dropping it closes the socket, which unbinds the queue.
///
/// ```
/// use socklab::nfqueue::{NfQueue, Verdict};
/// use std::time::Duration;
///
/// // Root only (CAP_NET_ADMIN); anyone else is told so.
/// match NfQueue::bind(42) {
///     Ok(mut queue) => {
///         // No firewall rule names queue 42, so nothing comes: the wait times out.
///         let packets = queue.recv(Some(Duration::from_millis(10)))?;
///         for p in &packets {
///             queue.verdict(p.id, Verdict::Accept)?;
///         }
///         assert!(packets.is_empty());
///     }
///     Err(e) => assert!(e.to_string().contains("nfnetlink_queue: bind queue 42")),
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct NfQueue {
    socket: Socket,
    num: u16,
    seq: u32,
    buf: Vec<u8>,
}

impl NfQueue {
    /// Binds queue `num` in the calling thread's network namespace, asking for whole packets.
    /// Fails with `EPERM` without CAP_NET_ADMIN, `EBUSY` when another socket has the queue.
    pub fn bind(num: u16) -> io::Result<NfQueue> {
        let socket = Socket::new(Domain::NETLINK, Type::RAW, Some(Protocol::NETFILTER))?;
        socket.bind(&SockAddr::netlink(0, 0))?;
        let mut queue = NfQueue { socket, num, seq: 0, buf: vec![0u8; 128 * 1024] };
        let cmd = [NFQNL_CFG_CMD_BIND, 0, 0, 0]; // command, pad, pf (ignored since Linux 3.8)
        queue.config(NFQA_CFG_CMD, &cmd).map_err(|e| explain(e, num, "bind"))?;
        let mut params = COPY_RANGE.to_be_bytes().to_vec();
        params.push(NFQNL_COPY_PACKET);
        queue.config(NFQA_CFG_PARAMS, &params).map_err(|e| explain(e, num, "configure"))?;
        Ok(queue)
    }

    /// The queue number.
    pub fn num(&self) -> u16 {
        self.num
    }

    /// One `NFQNL_MSG_CONFIG` request with one attribute, and the kernel's acknowledgement.
    fn config(&mut self, attr: u16, value: &[u8]) -> io::Result<()> {
        let msg = self.message(NFQNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, attr, value);
        self.socket.send_all(&msg)?;
        let n = self.socket.recv(&mut self.buf)?;
        match parse(&self.buf[..n])?.into_iter().next() {
            Some(Message::Ack(0)) => Ok(()),
            Some(Message::Ack(errno)) => Err(io::Error::from_raw_os_error(errno)),
            _ => Err(io::Error::new(io::ErrorKind::InvalidData, "nfnetlink_queue: no acknowledgement")),
        }
    }

    /// `nlmsghdr` + `nfgenmsg` (the queue number as `res_id`) + one attribute.
    fn message(&mut self, ty: u16, flags: u16, attr: u16, value: &[u8]) -> Vec<u8> {
        self.seq = self.seq.wrapping_add(1);
        let attr_len = 4 + value.len();
        let len = NLMSG_HDRLEN + 4 + align4(attr_len);
        let mut m = Vec::with_capacity(len);
        m.extend((len as u32).to_ne_bytes());
        m.extend((NFNL_SUBSYS_QUEUE << 8 | ty).to_ne_bytes());
        m.extend(flags.to_ne_bytes());
        m.extend(self.seq.to_ne_bytes());
        m.extend(0u32.to_ne_bytes());
        m.extend([libc::AF_UNSPEC as u8, 0]); // nfgen_family, version NFNETLINK_V0
        m.extend(self.num.to_be_bytes());
        m.extend((attr_len as u16).to_ne_bytes());
        m.extend(attr.to_ne_bytes());
        m.extend(value);
        m.resize(len, 0);
        m
    }

    /// Waits at most `timeout` (`None`: for ever) for packets; returns those that came (none when
    /// the time ran out). A kernel error report (`NLMSG_ERROR` for a verdict) is returned as an
    /// error; `ENOBUFS` means our socket's buffer overflowed and the kernel dropped packets.
    pub fn recv(&mut self, timeout: Option<Duration>) -> io::Result<Vec<Queued>> {
        if timeout.is_some() && self.socket.wait_for(libc::POLLIN, timeout)? == 0 {
            return Ok(Vec::new());
        }
        let n = self.socket.recv(&mut self.buf)?;
        let mut packets = Vec::new();
        for m in parse(&self.buf[..n])? {
            match m {
                Message::Packet(p) => packets.push(p),
                Message::Ack(0) => {}
                Message::Ack(errno) => return Err(io::Error::from_raw_os_error(errno)),
            }
        }
        Ok(packets)
    }

    /// Gives packet `id` its verdict (`NFQNL_MSG_VERDICT`, no acknowledgement asked).
    pub fn verdict(&mut self, id: u32, verdict: Verdict) -> io::Result<()> {
        let mut hdr = verdict.raw().to_be_bytes().to_vec();
        hdr.extend(id.to_be_bytes());
        let msg = self.message(NFQNL_MSG_VERDICT, NLM_F_REQUEST, NFQA_VERDICT_HDR, &hdr);
        self.socket.send_all(&msg)
    }
}

fn explain(e: io::Error, num: u16, what: &str) -> io::Error {
    let hint = match e.raw_os_error() {
        Some(libc::EPERM) => " (a packet queue needs CAP_NET_ADMIN: run as root)",
        Some(libc::EBUSY) => " (another program already serves this queue number in this namespace)",
        _ => "",
    };
    io::Error::new(e.kind(), format!("nfnetlink_queue: {what} queue {num}: {e}{hint}"))
}

#[derive(Debug)]
enum Message {
    Packet(Queued),
    /// `NLMSG_ERROR`: 0 is an acknowledgement, anything else the (positive) errno.
    Ack(i32),
}

/// The messages of one datagram.
fn parse(mut rest: &[u8]) -> io::Result<Vec<Message>> {
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, format!("nfnetlink_queue: {why}"));
    let mut out = Vec::new();
    while rest.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes(rest[0..4].try_into().unwrap_or_default()) as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            return Err(bad("a message longer than the datagram"));
        }
        let ty = u16::from_ne_bytes([rest[4], rest[5]]);
        let body = &rest[NLMSG_HDRLEN..len];
        if ty == NLMSG_ERROR {
            let errno = body
                .get(0..4)
                .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or_else(|| bad("short error"))?;
            out.push(Message::Ack(-errno));
        } else if ty == (NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_PACKET) && body.len() >= 4 {
            let (mut id, mut hook, mut payload) = (None, Hook::Other(255), Vec::new());
            let mut attrs = &body[4..];
            while attrs.len() >= 4 {
                let alen = usize::from(u16::from_ne_bytes([attrs[0], attrs[1]]));
                if alen < 4 || alen > attrs.len() {
                    return Err(bad("an attribute longer than its message"));
                }
                let value = &attrs[4..alen];
                match u16::from_ne_bytes([attrs[2], attrs[3]]) & 0x3fff {
                    NFQA_PACKET_HDR if value.len() >= 7 => {
                        id = Some(u32::from_be_bytes([value[0], value[1], value[2], value[3]]));
                        hook = Hook::from_raw(value[6]);
                    }
                    NFQA_PAYLOAD => payload = value.to_vec(),
                    _ => {}
                }
                attrs = &attrs[align4(alen).min(attrs.len())..];
            }
            let id = id.ok_or_else(|| bad("a packet without NFQA_PACKET_HDR"))?;
            out.push(Message::Packet(Queued { id, hook, payload }));
        }
        rest = &rest[align4(len).min(rest.len())..];
    }
    Ok(out)
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packet_message_parses_and_a_verdict_is_built_as_the_kernel_wants() {
        // A packet message as recvfrom showed it under strace (id 1, LOCAL_OUT, 4 payload bytes).
        let mut m = Vec::new();
        let body_len = 4 + 12 + 8;
        m.extend(((NLMSG_HDRLEN + body_len) as u32).to_ne_bytes());
        m.extend((NFNL_SUBSYS_QUEUE << 8).to_ne_bytes());
        m.extend([0u8; 10]);
        m.extend([libc::AF_INET as u8, 0, 0, 0]);
        m.extend([11u8, 0, 1, 0, 0, 0, 0, 1, 8, 0, 3, 0]);
        m.extend([8u8, 0, 10, 0, 0x45, 0, 0, 0x3c]);
        let got = parse(&m).unwrap();
        assert!(
            matches!(&got[..], [Message::Packet(Queued { id: 1, hook: Hook::LocalOut, payload })] if payload == &[0x45, 0, 0, 0x3c]),
            "{got:?}"
        );
        // NLMSG_ERROR with -EPERM.
        let mut e = Vec::new();
        e.extend(36u32.to_ne_bytes());
        e.extend(NLMSG_ERROR.to_ne_bytes());
        e.extend([0u8; 10]);
        e.extend((-libc::EPERM).to_ne_bytes());
        e.extend([0u8; 16]);
        assert!(matches!(parse(&e).unwrap()[..], [Message::Ack(libc::EPERM)]));
        assert!(parse(&e[..20]).is_err(), "a truncated message is an error, not a panic");
    }
}
