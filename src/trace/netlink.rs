//! strace's decoding of `NETLINK_SOCK_DIAG` messages, for the `sendto`/`recvfrom` of `states`
//! and the walkthrough's sampler: `[{nlmsg_len=72, nlmsg_type=SOCK_DIAG_BY_FAMILY,
//! nlmsg_flags=NLM_F_REQUEST|NLM_F_DUMP, nlmsg_seq=1, nlmsg_pid=0}, {sdiag_family=AF_INET6, ...}]`.
//!
//! Copied from strace's `netlink.c`, `nlattr.c`, `netlink_sock_diag.c` and `netlink_inet_diag.c`
//! for the messages socklab sends and receives (`inet_diag_req_v2` requests, `inet_diag_msg`
//! replies, `NLMSG_DONE`, `NLMSG_ERROR`), and checked against this machine's strace 6.1:
//! - a buffer holding several messages is an array `[[{hdr}, payload], ...]`, one message is
//!   `[{hdr}, payload]`; after 32 elements (strace's `-s`) the rest is `...`;
//! - bytes strace does not decode (`INET_DIAG_INFO`'s `tcp_info`, an unknown attribute) print in
//!   hex, `"\x0a\x00..."`, at most 32 of them;
//! - strace learns a netlink socket's protocol from the kernel's socket table, which lists a
//!   netlink socket only once it has an address. socklab's diag socket is not bound: it gets its
//!   address (its port id) at its first send, so strace decodes the first request of a process
//!   without knowing the protocol (`nlmsg_type=0x14 /* NLMSG_??? */`, payload in hex), and
//!   everything after with it. `protocol: None` reproduces that first line.

use std::fmt::Write as _;

use crate::sys::names;

use super::format::MAX_STRLEN;

const NETLINK_SOCK_DIAG: i32 = 4;
const NETLINK_NETFILTER: i32 = 12;
const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_MIN_TYPE: u16 = 0x10;
const NLM_F_REQUEST: u16 = 1;
/// `struct inet_diag_req_v2` and `struct inet_diag_msg`.
const REQ_V2_LEN: usize = 56;
const MSG_LEN: usize = 72;

/// The payload of a `sendto`/`recvfrom` on a netlink socket of `protocol` (`None`: not known to
/// strace yet, see the module doc), as strace prints it.
pub fn decode(data: &[u8], protocol: Option<i32>) -> String {
    elements(data, NLMSG_HDRLEN, |m| u32_at(m, 0) as usize, |m| message(m, protocol))
}

/// A run of netlink elements (messages, or attributes), each starting with its own length and
/// padded to 4 bytes, as strace prints them: one bare, several in `[...]`, at most [`MAX_STRLEN`]
/// then `...`, and a tail too short for a header in hex.
fn elements(mut rest: &[u8], header: usize, len_of: fn(&[u8]) -> usize, one: impl Fn(&[u8]) -> String) -> String {
    let mut out = String::new();
    let mut elt = 0;
    let mut is_array = false;
    loop {
        if rest.len() < header {
            out.push_str(&hex(rest));
            break;
        }
        elt += 1;
        if elt > MAX_STRLEN {
            out.push_str("...");
            break;
        }
        let len = len_of(rest);
        let aligned = align4(len);
        let next = if len >= header && rest.len() > aligned { Some(&rest[aligned..]) } else { None };
        if !is_array && next.is_some() {
            out.push('[');
            is_array = true;
        }
        out.push_str(&one(rest));
        match next {
            Some(n) => {
                out.push_str(", ");
                rest = n;
            }
            None => break,
        }
    }
    if is_array {
        out.push(']');
    }
    out
}

/// One message: its header, and its payload when it has one.
fn message(buf: &[u8], protocol: Option<i32>) -> String {
    let (len, ty, flags) = (u32_at(buf, 0) as usize, u16_at(buf, 4), u16_at(buf, 6));
    let shown = len.min(buf.len());
    let header = format!(
        "{{nlmsg_len={len}, nlmsg_type={}, nlmsg_flags={}, nlmsg_seq={}, nlmsg_pid={}}}",
        msg_type(ty, protocol),
        msg_flags(flags, ty, protocol),
        u32_at(buf, 8),
        u32_at(buf, 12)
    );
    if shown <= NLMSG_HDRLEN {
        return header;
    }
    format!("[{header}, {}]", payload(&buf[NLMSG_HDRLEN..shown], ty, flags, protocol))
}

fn msg_type(ty: u16, protocol: Option<i32>) -> String {
    if ty >= NLMSG_MIN_TYPE && protocol == Some(NETLINK_NETFILTER) {
        return netfilter_type(ty);
    }
    if ty >= NLMSG_MIN_TYPE && protocol == Some(NETLINK_SOCK_DIAG) {
        return match ty {
            18 => "TCPDIAG_GETSOCK".into(),
            19 => "DCCPDIAG_GETSOCK".into(),
            20 => "SOCK_DIAG_BY_FAMILY".into(),
            21 => "SOCK_DESTROY".into(),
            _ => format!("{ty:#x} /* SOCK_DIAG_??? */"),
        };
    }
    match ty {
        1 => "NLMSG_NOOP".into(),
        NLMSG_ERROR => "NLMSG_ERROR".into(),
        NLMSG_DONE => "NLMSG_DONE".into(),
        4 => "NLMSG_OVERRUN".into(),
        _ => format!("{ty:#x} /* NLMSG_??? */"),
    }
}

fn msg_flags(bits: u16, ty: u16, protocol: Option<i32>) -> String {
    let mut table: Vec<(i32, &str)> = vec![
        (0x1, "NLM_F_REQUEST"),
        (0x2, "NLM_F_MULTI"),
        (0x4, "NLM_F_ACK"),
        (0x8, "NLM_F_ECHO"),
        (0x10, "NLM_F_DUMP_INTR"),
        (0x20, "NLM_F_DUMP_FILTERED"),
    ];
    if ty == NLMSG_ERROR {
        table.extend([(0x100, "NLM_F_CAPPED"), (0x200, "NLM_F_ACK_TLVS")]);
    } else if ty >= NLMSG_MIN_TYPE && protocol == Some(NETLINK_SOCK_DIAG) {
        // sock_diag messages are all "get" requests: NLM_F_DUMP is NLM_F_ROOT|NLM_F_MATCH.
        table.extend([(0x300, "NLM_F_DUMP"), (0x100, "NLM_F_ROOT"), (0x200, "NLM_F_MATCH"), (0x400, "NLM_F_ATOMIC")]);
    }
    flags(i32::from(bits), &table)
}

fn payload(body: &[u8], ty: u16, flags: u16, protocol: Option<i32>) -> String {
    if ty == NLMSG_ERROR {
        return error(body, protocol);
    }
    if ty >= NLMSG_MIN_TYPE
        && protocol == Some(NETLINK_SOCK_DIAG)
        && let Some(text) = sock_diag(body, flags)
    {
        return text;
    }
    if ty >= NLMSG_MIN_TYPE && protocol == Some(NETLINK_NETFILTER) {
        return netfilter(body, ty);
    }
    if ty == NLMSG_DONE && body.len() == 4 {
        return (u32_at(body, 0) as i32).to_string();
    }
    hex(body)
}

/// `NLMSG_ERROR`: `{error=-ENOENT, msg={...}}` (the request it answers, capped to its header).
fn error(body: &[u8], protocol: Option<i32>) -> String {
    if body.len() < 4 + NLMSG_HDRLEN {
        return hex(body);
    }
    let errno = u32_at(body, 0) as i32;
    let error = if errno == 0 { "0".to_string() } else { format!("-{}", names::errno_name(-errno)) };
    let msg = &body[4..];
    let inner_len = (u32_at(msg, 0) as usize).max(NLMSG_HDRLEN);
    let shown = &msg[..inner_len.min(msg.len())];
    let text = format!("{{error={error}, msg={}}}", message(shown, protocol));
    // Extended-ack attributes after the request (socklab does not ask for them): their bytes.
    if msg.len() > shown.len() { format!("[{text}, {}]", hex(&msg[shown.len()..])) } else { text }
}

/// A netfilter message type, as strace's `decode_nlmsg_type_netfilter`: the two batch markers by
/// name, anything else split into subsystem and message, `NFNL_SUBSYS_QUEUE<<8|NFQNL_MSG_VERDICT`.
/// Message names are known for the queue subsystem (the one socklab speaks); other subsystems'
/// messages print in hex here, where strace would name them.
fn netfilter_type(ty: u16) -> String {
    const SUBSYS: [&str; 13] = [
        "NFNL_SUBSYS_NONE",
        "NFNL_SUBSYS_CTNETLINK",
        "NFNL_SUBSYS_CTNETLINK_EXP",
        "NFNL_SUBSYS_QUEUE",
        "NFNL_SUBSYS_ULOG",
        "NFNL_SUBSYS_OSF",
        "NFNL_SUBSYS_IPSET",
        "NFNL_SUBSYS_ACCT",
        "NFNL_SUBSYS_CTNETLINK_TIMEOUT",
        "NFNL_SUBSYS_CTHELPER",
        "NFNL_SUBSYS_NFTABLES",
        "NFNL_SUBSYS_NFT_COMPAT",
        "NFNL_SUBSYS_HOOK",
    ];
    const QUEUE: [&str; 4] = ["NFQNL_MSG_PACKET", "NFQNL_MSG_VERDICT", "NFQNL_MSG_CONFIG", "NFQNL_MSG_VERDICT_BATCH"];
    match ty {
        0x10 => return "NFNL_MSG_BATCH_BEGIN".into(),
        0x11 => return "NFNL_MSG_BATCH_END".into(),
        _ => {}
    }
    let (subsys, msg) = (usize::from(ty >> 8), usize::from(ty & 0xff));
    let subsys_name =
        SUBSYS.get(subsys).map_or_else(|| format!("{subsys:#x} /* NFNL_SUBSYS_??? */"), |s| s.to_string());
    let msg_name = match (subsys, QUEUE.get(msg)) {
        (3, Some(name)) => name.to_string(),
        _ => format!("{msg:#x} /* NFNL_SUBSYS_??? */"),
    };
    format!("{subsys_name}<<8|{msg_name}")
}

/// A netfilter payload: `struct nfgenmsg`, then its attributes, which strace prints undecoded
/// (`[{nla_len=8, nla_type=0x1}, "\x01\x00\x00\x00"]`).
fn netfilter(body: &[u8], ty: u16) -> String {
    if body.len() < 4 {
        return hex(body);
    }
    let version = if body[1] == 0 { "NFNETLINK_V0".to_string() } else { format!("{:#x} /* NFNETLINK_??? */", body[1]) };
    let mut out = format!(
        "{{nfgen_family={}, version={version}, res_id=htons({})}}",
        names::domain(i32::from(body[0])),
        u16::from_be_bytes([body[2], body[3]])
    );
    if body.len() > 4 {
        out.push_str(", ");
        // Batch markers carry raw bytes; everything else, attributes.
        if matches!(ty, 0x10 | 0x11) {
            out.push_str(&hex(&body[4..]));
        } else {
            out.push_str(&elements(&body[4..], 4, |a| usize::from(u16_at(a, 0)), bare_attribute));
        }
    }
    out
}

/// An attribute strace has no table for: its type in hex and its value's bytes.
fn bare_attribute(buf: &[u8]) -> String {
    let (len, raw_type) = (usize::from(u16_at(buf, 0)), u16_at(buf, 2));
    let mut kind = String::new();
    if raw_type & 0x8000 != 0 {
        kind.push_str("NLA_F_NESTED|");
    }
    if raw_type & 0x4000 != 0 {
        kind.push_str("NLA_F_NET_BYTEORDER|");
    }
    kind.push_str(&format!("{:#x}", raw_type & 0x3fff));
    let header = format!("{{nla_len={len}, nla_type={kind}}}");
    let shown = len.min(buf.len());
    if shown <= 4 { header } else { format!("[{header}, {}]", hex(&buf[4..shown])) }
}

/// A sock_diag payload: the request (`NLM_F_REQUEST`) or the answer for its address family.
fn sock_diag(body: &[u8], flags: u16) -> Option<String> {
    let family = i32::from(*body.first()?);
    if body.len() <= 1 {
        return None;
    }
    let inet = matches!(family, libc::AF_INET | libc::AF_INET6);
    Some(match (inet, flags & NLM_F_REQUEST != 0) {
        (true, true) => inet_request(body, family),
        (true, false) => inet_answer(body, family),
        // socklab asks for TCP sockets only; other families print as strace's fallback does.
        (false, _) => format!("{{family={}, data={}}}", names::domain(family), hex(&body[1..])),
    })
}

/// `struct inet_diag_req_v2`.
fn inet_request(body: &[u8], family: i32) -> String {
    let mut out = format!("{{sdiag_family={}, ", names::domain(family));
    if body.len() < REQ_V2_LEN {
        out.push_str("...}");
        return out;
    }
    let _ = write!(
        out,
        "sdiag_protocol={}, idiag_ext={}, idiag_states={}, id={}}}",
        names::protocol(i32::from(body[1])),
        ext_flags(body[2]),
        state_flags(u32_at(body, 4)),
        sockid(&body[8..56], family)
    );
    if body.len() > REQ_V2_LEN {
        // Request attributes (a bytecode filter): socklab sends none.
        let _ = write!(out, ", {}", hex(&body[REQ_V2_LEN..]));
    }
    out
}

/// `struct inet_diag_msg` and its attributes.
fn inet_answer(body: &[u8], family: i32) -> String {
    let mut out = format!("{{idiag_family={}, ", names::domain(family));
    if body.len() < MSG_LEN {
        out.push_str("...}");
        return out;
    }
    let _ = write!(
        out,
        "idiag_state={}, idiag_timer={}, idiag_retrans={}, id={}, idiag_expires={}, idiag_rqueue={}, \
         idiag_wqueue={}, idiag_uid={}, idiag_inode={}}}",
        tcp_state(body[1]),
        body[2],
        body[3],
        sockid(&body[4..52], family),
        u32_at(body, 52),
        u32_at(body, 56),
        u32_at(body, 60),
        u32_at(body, 64),
        u32_at(body, 68)
    );
    if body.len() > MSG_LEN {
        let _ = write!(out, ", {}", attributes(&body[MSG_LEN..]));
    }
    out
}

/// `struct inet_diag_sockid`: ports and addresses in network byte order.
fn sockid(id: &[u8], family: i32) -> String {
    let port = |at: usize| u16::from_be_bytes([id[at], id[at + 1]]);
    let addr = |at: usize, field: &str| -> String {
        if family == libc::AF_INET {
            let ip = std::net::Ipv4Addr::new(id[at], id[at + 1], id[at + 2], id[at + 3]);
            format!("{field}=inet_addr(\"{ip}\")")
        } else {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&id[at..at + 16]);
            format!("inet_pton(AF_INET6, \"{}\", &{field})", std::net::Ipv6Addr::from(octets))
        }
    };
    format!(
        "{{idiag_sport=htons({}), idiag_dport=htons({}), {}, {}, idiag_if={}, idiag_cookie=[{}, {}]}}",
        port(0),
        port(2),
        addr(4, "idiag_src"),
        addr(20, "idiag_dst"),
        u32_at(id, 36),
        u32_at(id, 40),
        u32_at(id, 44)
    )
}

/// The attributes after an `inet_diag_msg`: `[[{nla_len=5, nla_type=INET_DIAG_SHUTDOWN}, 0], ...]`.
fn attributes(rest: &[u8]) -> String {
    elements(rest, 4, |a| usize::from(u16_at(a, 0)), attribute)
}

const ATTRS: &[&str] = &[
    "INET_DIAG_NONE",
    "INET_DIAG_MEMINFO",
    "INET_DIAG_INFO",
    "INET_DIAG_VEGASINFO",
    "INET_DIAG_CONG",
    "INET_DIAG_TOS",
    "INET_DIAG_TCLASS",
    "INET_DIAG_SKMEMINFO",
    "INET_DIAG_SHUTDOWN",
    "INET_DIAG_DCTCPINFO",
    "INET_DIAG_PROTOCOL",
    "INET_DIAG_SKV6ONLY",
    "INET_DIAG_LOCALS",
    "INET_DIAG_PEERS",
    "INET_DIAG_PAD",
    "INET_DIAG_MARK",
    "INET_DIAG_BBRINFO",
    "INET_DIAG_CLASS_ID",
    "INET_DIAG_MD5SIG",
    "INET_DIAG_ULP_INFO",
    "INET_DIAG_SK_BPF_STORAGES",
    "INET_DIAG_CGROUP_ID",
    "INET_DIAG_SOCKOPT",
];

/// One attribute: `{nla_len=8, nla_type=INET_DIAG_MARK}`, with its value when it has one.
fn attribute(buf: &[u8]) -> String {
    let (len, raw_type) = (usize::from(u16_at(buf, 0)), u16_at(buf, 2));
    let ty = raw_type & 0x3fff;
    let mut kind = String::new();
    if raw_type & 0x8000 != 0 {
        kind.push_str("NLA_F_NESTED|");
    }
    if raw_type & 0x4000 != 0 {
        kind.push_str("NLA_F_NET_BYTEORDER|");
    }
    match ATTRS.get(usize::from(ty)) {
        Some(name) => kind.push_str(name),
        None => kind.push_str(&format!("{ty:#x} /* INET_DIAG_??? */")),
    }
    let header = format!("{{nla_len={len}, nla_type={kind}}}");
    let shown = len.min(buf.len());
    if shown <= 4 {
        return header;
    }
    let value = &buf[4..shown];
    let decoded = match ATTRS.get(usize::from(ty)).copied() {
        Some("INET_DIAG_SHUTDOWN") if !value.is_empty() => Some(shutdown(value[0])),
        Some("INET_DIAG_TOS" | "INET_DIAG_TCLASS" | "INET_DIAG_SKV6ONLY") if !value.is_empty() => {
            Some(value[0].to_string())
        }
        Some("INET_DIAG_MARK" | "INET_DIAG_CLASS_ID") if value.len() >= 4 => Some(u32_at(value, 0).to_string()),
        Some("INET_DIAG_CGROUP_ID") if value.len() >= 8 => {
            Some(u64::from_ne_bytes(value[..8].try_into().unwrap_or_default()).to_string())
        }
        Some("INET_DIAG_PROTOCOL") if !value.is_empty() => Some(names::protocol(i32::from(value[0]))),
        Some("INET_DIAG_CONG") => {
            let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
            Some(super::format::quote(&value[..end]))
        }
        Some("INET_DIAG_SOCKOPT") if value.len() >= 2 => Some(sockopt(value)),
        // INET_DIAG_INFO (tcp_info) and the rest: strace prints their bytes.
        _ => None,
    };
    format!("[{header}, {}]", decoded.unwrap_or_else(|| hex(value)))
}

/// `sk_shutdown`: strace prints the number with the names as a comment (the names are not in the
/// kernel's user-space headers): `0x1 /* RCV_SHUTDOWN */`.
fn shutdown(v: u8) -> String {
    if v == 0 {
        return "0".into();
    }
    let names = flags(i32::from(v), &[(1, "RCV_SHUTDOWN"), (2, "SEND_SHUTDOWN")]);
    format!("{v:#x} /* {names} */")
}

/// `struct inet_diag_sockopt`'s bits; strace shows only those set: `{is_icsk=1, mc_loop=1}`.
fn sockopt(v: &[u8]) -> String {
    const BITS: [&str; 11] = [
        "recverr",
        "is_icsk",
        "freebind",
        "hdrincl",
        "mc_loop",
        "transparent",
        "mc_all",
        "nodefrag",
        "bind_address_no_port",
        "recverr_rfc4884",
        "defer_connect",
    ];
    let word = u16::from_le_bytes([v[0], v[1]]);
    let mut set: Vec<String> =
        BITS.iter().enumerate().filter(|(i, _)| word & (1 << i) != 0).map(|(_, n)| format!("{n}=1")).collect();
    let unused = word >> 11;
    if unused != 0 {
        set.push(format!("unused={unused:#x} /* bits 3..8 */"));
    }
    let mut out = format!("{{{}}}", set.join(", "));
    if v[2..].iter().any(|&b| b != 0) {
        let _ = write!(out, ", {}", hex(&v[2..]));
    }
    out
}

fn tcp_state(v: u8) -> String {
    const STATES: [&str; 13] = [
        "",
        "TCP_ESTABLISHED",
        "TCP_SYN_SENT",
        "TCP_SYN_RECV",
        "TCP_FIN_WAIT1",
        "TCP_FIN_WAIT2",
        "TCP_TIME_WAIT",
        "TCP_CLOSE",
        "TCP_CLOSE_WAIT",
        "TCP_LAST_ACK",
        "TCP_LISTEN",
        "TCP_CLOSING",
        "TCP_NEW_SYN_RECV",
    ];
    match STATES.get(usize::from(v)) {
        Some(name) if !name.is_empty() => (*name).to_string(),
        _ => format!("{v:#x} /* TCP_??? */"),
    }
}

/// `idiag_states`: `1<<TCP_ESTABLISHED|...`, the bits strace 6.1 names (up to TCP_NEW_SYN_RECV;
/// newer versions also name TCP_BOUND_INACTIVE) and the rest in hex.
fn state_flags(v: u32) -> String {
    const NAMES: [&str; 12] = [
        "1<<TCP_ESTABLISHED",
        "1<<TCP_SYN_SENT",
        "1<<TCP_SYN_RECV",
        "1<<TCP_FIN_WAIT1",
        "1<<TCP_FIN_WAIT2",
        "1<<TCP_TIME_WAIT",
        "1<<TCP_CLOSE",
        "1<<TCP_CLOSE_WAIT",
        "1<<TCP_LAST_ACK",
        "1<<TCP_LISTEN",
        "1<<TCP_CLOSING",
        "1<<TCP_NEW_SYN_RECV",
    ];
    let table: Vec<(i32, &str)> = NAMES.iter().enumerate().map(|(i, n)| (1 << (i + 1), *n)).collect();
    flags(v as i32, &table)
}

/// `idiag_ext`: `1<<(INET_DIAG_INFO-1)`.
fn ext_flags(v: u8) -> String {
    let table: Vec<(i32, String)> = (1..=8).map(|i| (1 << (i - 1), format!("1<<({}-1)", ATTRS[i]))).collect();
    let table: Vec<(i32, &str)> = table.iter().map(|(b, n)| (*b, n.as_str())).collect();
    flags(i32::from(v), &table)
}

/// Bytes strace does not decode: every byte in hex, at most [`MAX_STRLEN`], then `...`.
fn hex(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for b in &bytes[..bytes.len().min(MAX_STRLEN)] {
        let _ = write!(out, "\\x{b:02x}");
    }
    out.push('"');
    if bytes.len() > MAX_STRLEN {
        out.push_str("...");
    }
    out
}

/// `A|B|0x300`, as strace's printflags: each name takes its bits out of what is left, so a
/// combined name (`NLM_F_DUMP`) hides its parts; `0` when nothing is set.
fn flags(v: i32, table: &[(i32, &str)]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut left = v;
    for &(bits, name) in table {
        if bits != 0 && left & bits == bits {
            out.push(name.to_string());
            left &= !bits;
        }
    }
    if left != 0 || out.is_empty() {
        out.push(if left == 0 { "0".to_string() } else { format!("{left:#x}") });
    }
    out.join("|")
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(len: u32, ty: u16, flags: u16, seq: u32, pid: u32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(len.to_ne_bytes());
        v.extend(ty.to_ne_bytes());
        v.extend(flags.to_ne_bytes());
        v.extend(seq.to_ne_bytes());
        v.extend(pid.to_ne_bytes());
        v
    }

    #[test]
    fn done_alone_is_one_message_with_its_int() {
        let mut done = header(20, NLMSG_DONE, 2, 1, 77);
        done.extend(0i32.to_ne_bytes());
        assert_eq!(
            decode(&done, Some(NETLINK_SOCK_DIAG)),
            "[{nlmsg_len=20, nlmsg_type=NLMSG_DONE, nlmsg_flags=NLM_F_MULTI, nlmsg_seq=1, nlmsg_pid=77}, 0]"
        );
    }

    #[test]
    fn request_unknown_protocol_and_known() {
        let mut req = header(72, 20, 0x301, 1, 0);
        req.extend([libc::AF_INET6 as u8, 6, 2, 0]);
        req.extend(u32::MAX.to_ne_bytes());
        req.extend([0u8; 48]);
        let known = decode(&req, Some(NETLINK_SOCK_DIAG));
        assert!(
            known.starts_with(
                "[{nlmsg_len=72, nlmsg_type=SOCK_DIAG_BY_FAMILY, nlmsg_flags=NLM_F_REQUEST|NLM_F_DUMP, \
                 nlmsg_seq=1, nlmsg_pid=0}, {sdiag_family=AF_INET6, sdiag_protocol=IPPROTO_TCP, \
                 idiag_ext=1<<(INET_DIAG_INFO-1), idiag_states=1<<TCP_ESTABLISHED|"
            ),
            "{known}"
        );
        assert!(known.ends_with(
            "1<<TCP_NEW_SYN_RECV|0xffffe001, id={idiag_sport=htons(0), idiag_dport=htons(0), \
             inet_pton(AF_INET6, \"::\", &idiag_src), inet_pton(AF_INET6, \"::\", &idiag_dst), idiag_if=0, \
             idiag_cookie=[0, 0]}}]"
        ));
        let unknown = decode(&req, None);
        assert!(
            unknown.starts_with(
                "[{nlmsg_len=72, nlmsg_type=0x14 /* NLMSG_??? */, nlmsg_flags=NLM_F_REQUEST|0x300, \
                 nlmsg_seq=1, nlmsg_pid=0}, \"\\x0a\\x06\\x02\\x00\\xff"
            ),
            "{unknown}"
        );
        assert!(unknown.ends_with("\"...]"));
    }

    #[test]
    fn attributes_print_as_strace_does() {
        let mut attrs = Vec::new();
        attrs.extend([5u8, 0, 8, 0, 1, 0, 0, 0]); // SHUTDOWN = RCV_SHUTDOWN, padded
        attrs.extend([6u8, 0, 22, 0, 0x52, 0, 0, 0]); // SOCKOPT is_icsk, mc_loop, mc_all
        assert_eq!(
            attributes(&attrs),
            "[[{nla_len=5, nla_type=INET_DIAG_SHUTDOWN}, 0x1 /* RCV_SHUTDOWN */], \
             [{nla_len=6, nla_type=INET_DIAG_SOCKOPT}, {is_icsk=1, mc_loop=1, mc_all=1}]]"
        );
    }

    #[test]
    fn nfqueue_messages_print_as_strace_printed_them() {
        // Bytes and lines from `strace -f` (6.1) of a queue program inside its namespace.
        let mut cfg = header(28, 3 << 8 | 2, 5, 1, 0);
        cfg.extend([0, 0, 0, 0, 8, 0, 1, 0, 1, 0, 0, 0]);
        assert_eq!(
            decode(&cfg, Some(NETLINK_NETFILTER)),
            "[{nlmsg_len=28, nlmsg_type=NFNL_SUBSYS_QUEUE<<8|NFQNL_MSG_CONFIG, nlmsg_flags=NLM_F_REQUEST|NLM_F_ACK, \
             nlmsg_seq=1, nlmsg_pid=0}, {nfgen_family=AF_UNSPEC, version=NFNETLINK_V0, res_id=htons(0)}, \
             [{nla_len=8, nla_type=0x1}, \"\\x01\\x00\\x00\\x00\"]]"
        );
        let mut ack = header(36, NLMSG_ERROR, 0x100, 1, 1260);
        ack.extend(0i32.to_ne_bytes());
        ack.extend(&cfg[..16]);
        assert_eq!(
            decode(&ack, Some(NETLINK_NETFILTER)),
            "[{nlmsg_len=36, nlmsg_type=NLMSG_ERROR, nlmsg_flags=NLM_F_CAPPED, nlmsg_seq=1, nlmsg_pid=1260}, \
             {error=0, msg={nlmsg_len=28, nlmsg_type=NFNL_SUBSYS_QUEUE<<8|NFQNL_MSG_CONFIG, \
             nlmsg_flags=NLM_F_REQUEST|NLM_F_ACK, nlmsg_seq=1, nlmsg_pid=0}}]"
        );
        let mut pkt = header(48, 3 << 8, 0, 0, 0);
        pkt.extend([2, 0, 0, 0]);
        pkt.extend([11, 0, 1, 0, 0, 0, 0, 1, 8, 0, 3, 0]);
        pkt.extend([8, 0, 6, 0, 0, 0, 0, 1]);
        pkt.extend([8, 0, 10, 0, 0x45, 0, 0, 0x3c]);
        assert_eq!(
            decode(&pkt, Some(NETLINK_NETFILTER)),
            "[{nlmsg_len=48, nlmsg_type=NFNL_SUBSYS_QUEUE<<8|NFQNL_MSG_PACKET, nlmsg_flags=0, nlmsg_seq=0, \
             nlmsg_pid=0}, {nfgen_family=AF_INET, version=NFNETLINK_V0, res_id=htons(0)}, \
             [[{nla_len=11, nla_type=0x1}, \"\\x00\\x00\\x00\\x01\\x08\\x00\\x03\"], [{nla_len=8, nla_type=0x6}, \
             \"\\x00\\x00\\x00\\x01\"], [{nla_len=8, nla_type=0xa}, \"\\x45\\x00\\x00\\x3c\"]]]"
        );
    }
}
