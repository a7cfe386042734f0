//! Ethernet, IPv4, IPv6 and TCP headers, parsed from bytes in safe code.
//!
//! Every length is checked before it is used: a short or malformed frame is an [`Error`], never a
//! panic or an out-of-bounds read. Only what the walkthrough shows is kept: addresses, ports,
//! sequence and acknowledgment numbers, flags, window and the payload length.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why a frame was not a TCP segment we could read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The buffer ends before a header does.
    Short {
        /// The header being read.
        what: &'static str,
        /// Bytes it needs.
        need: usize,
        /// Bytes there were.
        got: usize,
    },
    /// A header field holds an impossible value.
    Malformed(&'static str),
    /// Not IPv4 or IPv6 (the EtherType).
    NotIp(u16),
    /// An IP packet that does not carry TCP (the protocol number).
    NotTcp(u8),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Short { what, need, got } => write!(f, "{what} header cut short: need {need} bytes, got {got}"),
            Error::Malformed(what) => write!(f, "malformed header: {what}"),
            Error::NotIp(t) => write!(f, "not an IP frame (EtherType {t:#06x})"),
            Error::NotTcp(p) => write!(f, "not TCP (IP protocol {p})"),
        }
    }
}

impl std::error::Error for Error {}

/// TCP header flags (the low byte of the flags field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flags(pub u8);

impl Flags {
    /// Finish: the sender has no more data.
    pub const FIN: u8 = 0x01;
    /// Synchronize: the first segment of each direction, carrying the initial sequence number.
    pub const SYN: u8 = 0x02;
    /// Reset: abort the connection.
    pub const RST: u8 = 0x04;
    /// Push: hand the data to the application now.
    pub const PSH: u8 = 0x08;
    /// The acknowledgment number is valid.
    pub const ACK: u8 = 0x10;

    /// Is this flag set?
    pub fn has(self, flag: u8) -> bool {
        self.0 & flag != 0
    }

    /// `SYN`, `SYN-ACK`, `PSH-ACK`, `FIN-ACK`, `ACK`, `RST`: names a student reads.
    pub fn names(self) -> String {
        let mut parts = Vec::new();
        for (bit, name) in [(Self::SYN, "SYN"), (Self::FIN, "FIN"), (Self::RST, "RST"), (Self::PSH, "PSH")] {
            if self.has(bit) {
                parts.push(name);
            }
        }
        if self.has(Self::ACK) {
            parts.push("ACK");
        }
        if parts.is_empty() { "none".into() } else { parts.join("-") }
    }

    /// tcpdump's notation: `S`, `S.`, `.`, `P.`, `F.`, `R`, `R.` (the dot is ACK).
    pub fn tcpdump(self) -> String {
        let mut out = String::new();
        for (bit, c) in [(Self::FIN, 'F'), (Self::SYN, 'S'), (Self::RST, 'R'), (Self::PSH, 'P')] {
            if self.has(bit) {
                out.push(c);
            }
        }
        if self.has(Self::ACK) {
            out.push('.');
        }
        if out.is_empty() { "none".into() } else { out }
    }
}

/// One TCP segment as seen on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// Sequence number (absolute).
    pub seq: u32,
    /// Acknowledgment number (absolute; meaningful when ACK is set).
    pub ack: u32,
    /// Flags.
    pub flags: Flags,
    /// Advertised receive window (unscaled).
    pub window: u16,
    /// Payload bytes.
    pub len: usize,
    /// The SACK blocks of its options (RFC 2018): `(left edge, right edge)`, absolute sequence
    /// numbers of bytes the receiver holds beyond the acknowledgment (or, below it, a D-SACK:
    /// bytes it got twice, RFC 2883).
    pub sack: Vec<(u32, u32)>,
}

fn need(what: &'static str, bytes: &[u8], n: usize) -> Result<(), Error> {
    if bytes.len() < n { Err(Error::Short { what, need: n, got: bytes.len() }) } else { Ok(()) }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// An Ethernet frame (on `lo`, too, Linux shows a 14-byte Ethernet header with zero MACs).
pub fn ethernet(frame: &[u8]) -> Result<Segment, Error> {
    need("Ethernet", frame, 14)?;
    match be16(frame, 12) {
        0x0800 => ipv4(&frame[14..]),
        0x86dd => ipv6(&frame[14..]),
        other => Err(Error::NotIp(other)),
    }
}

/// An IPv4 packet carrying TCP.
pub fn ipv4(p: &[u8]) -> Result<Segment, Error> {
    need("IPv4", p, 20)?;
    if p[0] >> 4 != 4 {
        return Err(Error::Malformed("IPv4 version is not 4"));
    }
    let header = usize::from(p[0] & 0x0f) * 4;
    let total = usize::from(be16(p, 2));
    if header < 20 || total < header {
        return Err(Error::Malformed("IPv4 header or total length too small"));
    }
    need("IPv4", p, total)?;
    if p[9] != 6 {
        return Err(Error::NotTcp(p[9]));
    }
    let src = IpAddr::V4(Ipv4Addr::new(p[12], p[13], p[14], p[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(p[16], p[17], p[18], p[19]));
    tcp(src, dst, &p[header..total])
}

/// An IPv6 packet whose next header is TCP (extension headers are reported as not TCP).
pub fn ipv6(p: &[u8]) -> Result<Segment, Error> {
    need("IPv6", p, 40)?;
    if p[0] >> 4 != 6 {
        return Err(Error::Malformed("IPv6 version is not 6"));
    }
    let payload = usize::from(be16(p, 4));
    need("IPv6", p, 40 + payload)?;
    if p[6] != 6 {
        return Err(Error::NotTcp(p[6]));
    }
    let addr = |at: usize| {
        let mut octets = [0u8; 16];
        octets.copy_from_slice(&p[at..at + 16]);
        IpAddr::V6(Ipv6Addr::from(octets))
    };
    tcp(addr(8), addr(24), &p[40..40 + payload])
}

/// A TCP segment (header and payload), between the given IP addresses.
pub fn tcp(src: IpAddr, dst: IpAddr, t: &[u8]) -> Result<Segment, Error> {
    need("TCP", t, 20)?;
    let header = usize::from(t[12] >> 4) * 4;
    if header < 20 {
        return Err(Error::Malformed("TCP data offset below 5 words"));
    }
    need("TCP", t, header)?;
    Ok(Segment {
        src: SocketAddr::new(src, be16(t, 0)),
        dst: SocketAddr::new(dst, be16(t, 2)),
        seq: be32(t, 4),
        ack: be32(t, 8),
        flags: Flags(t[13]),
        window: be16(t, 14),
        len: t.len() - header,
        sack: sack_blocks(&t[20..header]),
    })
}

/// The SACK option's blocks among TCP options (kind 5; 1 is a no-op, 0 the end).
fn sack_blocks(mut options: &[u8]) -> Vec<(u32, u32)> {
    let mut blocks = Vec::new();
    while let Some(&kind) = options.first() {
        match kind {
            0 => break,
            1 => options = &options[1..],
            _ => {
                let Some(&len) = options.get(1) else { break };
                let len = usize::from(len);
                if len < 2 || len > options.len() {
                    break;
                }
                if kind == 5 {
                    blocks.extend(options[2..len].chunks_exact(8).map(|b| (be32(b, 0), be32(b, 4))));
                }
                options = &options[len..];
            }
        }
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real-shaped frame: Ethernet + IPv4 + TCP (with 12 option bytes) + "Hello".
    fn frame() -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let tcp_len = 32 + 5;
        let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1];
        ip[2..4].copy_from_slice(&((20 + tcp_len) as u16).to_be_bytes());
        let mut tcp = vec![0u8; 32];
        tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&5000u16.to_be_bytes());
        tcp[4..8].copy_from_slice(&1000u32.to_be_bytes());
        tcp[8..12].copy_from_slice(&2000u32.to_be_bytes());
        tcp[12] = 8 << 4;
        tcp[13] = Flags::PSH | Flags::ACK;
        tcp[14..16].copy_from_slice(&512u16.to_be_bytes());
        f.extend(ip);
        f.extend(tcp);
        f.extend(b"Hello");
        f
    }

    #[test]
    fn parses_a_segment() {
        let s = ethernet(&frame()).unwrap();
        assert_eq!(s.src, "127.0.0.1:40000".parse().unwrap());
        assert_eq!(s.dst, "127.0.0.1:5000".parse().unwrap());
        assert_eq!((s.seq, s.ack, s.window, s.len), (1000, 2000, 512, 5));
        assert_eq!(s.flags.names(), "PSH-ACK");
        assert_eq!(s.flags.tcpdump(), "P.");
        assert_eq!(Flags(Flags::SYN | Flags::ACK).names(), "SYN-ACK");
        assert_eq!(Flags(Flags::FIN | Flags::ACK).tcpdump(), "F.");
    }

    #[test]
    fn truncated_frames_are_errors_not_panics() {
        let f = frame();
        for cut in 0..f.len() {
            // Every prefix shorter than the whole packet is rejected (the IP total length says more follows).
            assert!(ethernet(&f[..cut]).is_err(), "prefix of {cut} bytes accepted");
        }
        assert!(ethernet(&f).is_ok());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut f = frame();
        f[14] = 0x41; // IHL 1 word
        assert_eq!(ethernet(&f), Err(Error::Malformed("IPv4 header or total length too small")));
        let mut f = frame();
        f[14 + 20 + 12] = 0x10; // TCP data offset 1 word
        assert!(matches!(ethernet(&f), Err(Error::Malformed(_))));
        let mut f = frame();
        f[14 + 9] = 17;
        assert_eq!(ethernet(&f), Err(Error::NotTcp(17)));
        // Deterministic pseudo-random garbage of every length up to 200 bytes.
        let mut x: u32 = 0x1234_5678;
        for len in 0..200 {
            let junk = crate::testutil::garbage(&mut x, len);
            let _ = ethernet(&junk);
            let _ = ipv4(&junk);
            let _ = ipv6(&junk);
            let mut ip6 = junk.clone();
            if ip6.len() >= 40 {
                ip6[0] = 0x60;
                ip6[6] = 6;
            }
            let _ = ipv6(&ip6);
        }
        assert!(matches!(ipv6(&[0x60; 10]), Err(Error::Short { what: "IPv6", .. })));
    }

    #[test]
    fn sack_blocks_are_read_from_the_options() {
        // nop, nop, timestamps (10 bytes), nop, nop, SACK with two blocks.
        let mut o = vec![1u8, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1, 5, 18];
        for v in [100u32, 200, 300, 400] {
            o.extend(v.to_be_bytes());
        }
        assert_eq!(sack_blocks(&o), vec![(100, 200), (300, 400)]);
        assert_eq!(sack_blocks(&[5, 40, 0]), Vec::<(u32, u32)>::new(), "a length past the end is ignored");
        assert_eq!(sack_blocks(&[0, 5, 10]), Vec::<(u32, u32)>::new());
    }
}
