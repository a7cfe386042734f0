//! What the echo server and client report, and how the tutorial printed it.

use std::fmt;
use std::io;
use std::sync::Arc;

use crate::{PeerCred, SockAddr};

/// Something that happened in the echo server or client.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// The server is listening (after socket, setsockopt, bind, listen), or for a datagram
    /// server, bound (no listen: there are no connections).
    Listening(SockAddr),
    /// accept returned a connection from this peer (any family: `127.0.0.1:40000`, `[::1]:40000`,
    /// `(unnamed)` for a Unix client that did not bind).
    Accepted(SockAddr),
    /// SO_PEERCRED of a Unix connection: the process that connected.
    PeerCred(SockAddr, PeerCred),
    /// The server's recv returned these bytes (a datagram server: one datagram from this sender),
    /// in the pieces of memory they lie in: one, except for an io_uring recv bundle, which fills
    /// several provided buffers with one recv.
    ServerReceived(SockAddr, &'a [&'a [u8]]),
    /// The server is sending these bytes back (in pieces, as above).
    ServerSending(SockAddr, &'a [&'a [u8]]),
    /// A datagram or a seqpacket message did not fit the buffer: `(sender, bytes kept, its real
    /// length)`; the kernel dropped the rest (recv/recvfrom with MSG_TRUNC reported the real length).
    Truncated(SockAddr, usize, usize),
    /// pass-fd: the connection from this peer (our descriptor `.1`) was sent to process `.2`
    /// with SCM_RIGHTS.
    HandedOff(SockAddr, i32, i32),
    /// pass-fd: process `.2` received the connection from this peer as its descriptor `.1`.
    TookOver(SockAddr, i32, i32),
    /// recv returned 0: the peer closed its side; the server closes the connection.
    ServerRecvOver(SockAddr),
    /// A connection ended with an error (reset, broken pipe); the server goes on.
    ConnectionError(SockAddr, &'a io::Error),
    /// fork, or a thread's spawn, failed for this accepted connection (the error names the call in
    /// strace's spelling, `clone` or `clone3`). The connection stays open and the server accepts
    /// no one else (the next clients wait in the listen queue) until a retry after at most `.2`,
    /// or sooner when one of its processes or threads ends.
    SpawnDeferred(SockAddr, &'a io::Error, std::time::Duration),
    /// accept failed in a way the server survives (aborted connection, out of descriptors).
    AcceptError(&'a io::Error),
    /// A stop was requested and the server has ended its connections: how many of those open at
    /// the request were finished by their clients within the grace period, and how many were cut.
    Drained(super::stop::Drained),
    /// A datagram from this sender was not answered, for this reason (reported the first time per
    /// reason only; the rest are counted).
    DatagramDropped(SockAddr, super::datagram::DropReason),
    /// At the stop: how many datagrams went unanswered, per reason (only reasons that occurred).
    DropSummary(&'a [(super::datagram::DropReason, u64)]),
    /// A stop request started the grace period while connections were open: how many, and how
    /// long they have to finish (a second request cuts them at once).
    Grace {
        /// Connections being served at the request.
        open: usize,
        /// The grace period (`--grace`).
        grace: std::time::Duration,
    },
    /// The server stopped and closed its listener.
    Stopped,
    /// The client connected: its own address, then the server's.
    ClientConnected(SockAddr, SockAddr),
    /// The client's sendall handed this many bytes to the kernel.
    ClientSent(usize),
    /// The client's recv returned these bytes.
    ClientReceived(&'a [u8]),
    /// The client is about to close its socket.
    ClientClosing,
}

/// Where events go. Shared between threads, so it must be `Send + Sync`.
pub type Sink = Arc<dyn Fn(&Event<'_>) + Send + Sync>;

/// Bytes for a human: text as text (control characters escaped), anything else escaped byte by
/// byte; long data cut after 256 characters with the total length. Only what is shown is escaped,
/// so a server printing every 64 KiB recv does not format 64 KiB twice per recv.
pub fn show_data(data: &[u8]) -> String {
    show_parts(&[data])
}

/// The same for bytes that lie in several pieces (an io_uring recv bundle's buffers), shown as
/// one run of bytes.
pub fn show_parts(parts: &[&[u8]]) -> String {
    const LIMIT: usize = 256;
    let total = total(parts);
    // One piece is shown from itself; several from a copy of enough of their first bytes (an
    // escaped byte takes up to 4 characters).
    let joined: Vec<u8>;
    let data = match parts {
        [one] => *one,
        _ => {
            joined = parts.iter().flat_map(|p| p.iter().copied()).take(4 * LIMIT + 4).collect();
            &joined[..]
        }
    };
    let text = match std::str::from_utf8(data) {
        Ok(text) => Some(text),
        // Text whose copy ends in the middle of a character.
        Err(e) if e.error_len().is_none() && data.len() < total => std::str::from_utf8(&data[..e.valid_up_to()]).ok(),
        Err(_) => None,
    };
    let mut shown: String = match text {
        Some(text) => text.escape_debug().take(LIMIT + 1).collect(),
        None => data.escape_ascii().take(LIMIT + 1).map(char::from).collect(),
    };
    if shown.chars().count() > LIMIT {
        shown.pop();
        shown.push_str(&format!("... ({total} bytes)"));
    }
    shown
}

/// How many bytes lie in `parts`.
fn total(parts: &[&[u8]]) -> usize {
    parts.iter().map(|p| p.len()).sum()
}

/// An error as the kernel names it (`ECONNRESET (Connection reset by peer)`) when it has an errno,
/// so a log line can be matched against strace and man pages; otherwise its own message.
fn show_error(err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(errno) => crate::names::errno_display(errno),
        None => err.to_string(),
    }
}

/// Why fork or a thread's spawn fails, as fork(2) and clone(2) document it (inferred from the
/// errno: the kernel does not say which limit it hit).
fn spawn_hint(err: &io::Error) -> &'static str {
    match crate::error::errno(err) {
        Some(libc::EAGAIN) => {
            ": a limit on processes is reached (likely RLIMIT_NPROC, `ulimit -u`; or the system's \
             threads-max, pid_max, or a cgroup's pids.max)"
        }
        Some(libc::ENOMEM) => ": the kernel could not allocate the new task's memory",
        _ => "",
    }
}

impl fmt::Display for Event<'_> {
    /// The tutorial's lines, with the peer's address added.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Listening(addr) => match addr.as_socket() {
                Some(ip) => write!(f, "Server start, listening {} (on {addr})", ip.port()),
                None => write!(f, "Server start, listening on {addr}"),
            },
            Event::Accepted(peer) => write!(f, "Server Accept: {peer}"),
            Event::PeerCred(peer, cred) => write!(f, "Server peer {peer} is {cred} (SO_PEERCRED)"),
            Event::HandedOff(peer, fd, pid) => {
                write!(f, "Server handed fd {fd} (the connection from {peer}) to pid {pid} with SCM_RIGHTS")
            }
            Event::TookOver(peer, fd, pid) => {
                write!(f, "Server [pid {pid}] received fd {fd} (SCM_RIGHTS): the connection from {peer}; serving it")
            }
            Event::Truncated(peer, kept, total) => write!(
                f,
                "Server Recv cut: the message from {peer} was {total} bytes, the buffer held {kept}; {} bytes were lost (MSG_TRUNC)",
                total - kept
            ),
            Event::ServerReceived(peer, data) => write!(f, "Server Recv Data: {} (from {peer})", show_parts(data)),
            Event::ServerSending(peer, data) => write!(f, "Server Send Data: {} (to {peer})", show_parts(data)),
            Event::ServerRecvOver(peer) => write!(f, "Server Recv Over (from {peer})"),
            Event::ConnectionError(peer, err) => write!(f, "Server connection {peer} ended: {}", show_error(err)),
            Event::SpawnDeferred(peer, err, retry) => write!(
                f,
                "Server cannot serve {peer} yet: {}{}; the client stays connected and queued, retried when one \
                 ends or in {} ms",
                show_error(err),
                spawn_hint(err),
                retry.as_millis()
            ),
            Event::AcceptError(err) => write!(f, "Server accept failed: {}", show_error(err)),
            Event::Drained(d) => write!(f, "Server stopping: finished {}, cut {}", d.finished, d.cut),
            Event::DatagramDropped(peer, reason) => write!(
                f,
                "Server Drop: a datagram from {peer} is not answered: {} (later ones for this reason are only counted)",
                reason.why()
            ),
            Event::DropSummary(counts) => {
                write!(f, "Server dropped unanswered datagrams:")?;
                for (i, (reason, n)) in counts.iter().enumerate() {
                    write!(f, "{} {n} {}", if i == 0 { "" } else { "," }, reason.name())?;
                }
                Ok(())
            }
            Event::Grace { open, grace } => write!(
                f,
                "stopping: {open} connection{} finishing, up to {}; Ctrl-C again to stop now",
                if *open == 1 { "" } else { "s" },
                super::limits::show_duration(*grace)
            ),
            Event::Stopped => write!(f, "Server stopped"),
            Event::ClientConnected(local, server) => write!(f, "Client connected to {server} (from {local})"),
            Event::ClientSent(n) => write!(f, "Client sent {n} bytes"),
            Event::ClientReceived(data) => write!(f, "Client Received: {}", show_data(data)),
            Event::ClientClosing => write!(f, "Closing connection to the server"),
        }
    }
}

impl Event<'_> {
    /// Whether the tutorial printed this event (the client's connect and send it did not: the
    /// human output keeps the tutorial's lines; `--json` has them all).
    pub fn in_tutorial(&self) -> bool {
        !matches!(self, Event::ClientConnected(..) | Event::ClientSent(_) | Event::Grace { .. })
    }

    /// The event as one JSON object (`--json`): `event` is one of `listening`, `accepted`,
    /// `connected`, `data` (with `dir` "in" or "out", seen from the program printing it, and
    /// `bytes`), `closed`, `error`, `deferred` (with `call`, `errno` and
    /// `retry_ms`), `grace` (with `open` and `grace_ms`: a stop request left that many connections
    /// that long to finish), `stopping` (with `finished` and `cut`), `stopped`; addresses are strings, byte counts integers. These
    /// names and keys are stable for scripts.
    pub fn json(&self) -> String {
        use crate::timeline::json::{Value, object};
        let s = |text: String| Value::Str(text);
        let addr = |a: &SockAddr| Value::Str(a.to_string());
        let bytes = |n: usize| Value::Int(i64::try_from(n).unwrap_or(i64::MAX));
        let errno = |e: &io::Error| match crate::error::errno(e) {
            Some(n) => Value::Str(crate::names::errno_name(n)),
            None => Value::Null,
        };
        let event = |name: &str| ("event", Value::Str(name.to_string()));
        match self {
            Event::Listening(a) => object(&[
                event("listening"),
                ("addr", addr(a)),
                ("port", a.as_socket().map_or(Value::Null, |s| Value::Int(s.port().into()))),
            ]),
            Event::Accepted(p) => object(&[event("accepted"), ("peer", addr(p))]),
            Event::ServerReceived(p, d) => {
                object(&[event("data"), ("dir", s("in".into())), ("peer", addr(p)), ("bytes", bytes(total(d)))])
            }
            Event::ServerSending(p, d) => {
                object(&[event("data"), ("dir", s("out".into())), ("peer", addr(p)), ("bytes", bytes(total(d)))])
            }
            Event::ServerRecvOver(p) => object(&[event("closed"), ("peer", addr(p)), ("by", s("peer".into()))]),
            Event::ConnectionError(p, e) => {
                object(&[event("error"), ("peer", addr(p)), ("errno", errno(e)), ("error", s(show_error(e)))])
            }
            Event::SpawnDeferred(p, e, retry) => object(&[
                event("deferred"),
                ("peer", addr(p)),
                ("call", crate::error::call_error(e).map_or(Value::Null, |c| s(c.call.into()))),
                ("errno", errno(e)),
                ("error", s(show_error(e))),
                ("retry_ms", Value::Int(i64::try_from(retry.as_millis()).unwrap_or(i64::MAX))),
            ]),
            Event::AcceptError(e) => object(&[
                event("error"),
                ("call", s("accept".into())),
                ("errno", errno(e)),
                ("error", s(show_error(e))),
            ]),
            Event::Drained(d) => object(&[
                event("stopping"),
                ("finished", Value::Int(i64::try_from(d.finished).unwrap_or(i64::MAX))),
                ("cut", Value::Int(i64::try_from(d.cut).unwrap_or(i64::MAX))),
            ]),
            Event::DatagramDropped(p, reason) => object(&[
                event("dropped"),
                ("peer", addr(p)),
                ("reason", s(reason.name().into())),
                ("why", s(reason.why().into())),
            ]),
            Event::DropSummary(counts) => {
                let mut fields = vec![event("drops")];
                fields
                    .extend(counts.iter().map(|(r, n)| (r.name(), Value::Int(i64::try_from(*n).unwrap_or(i64::MAX)))));
                object(&fields)
            }
            Event::Grace { open, grace } => object(&[
                event("grace"),
                ("open", Value::Int(i64::try_from(*open).unwrap_or(i64::MAX))),
                ("grace_ms", Value::Int(i64::try_from(grace.as_millis()).unwrap_or(i64::MAX))),
            ]),
            Event::Stopped => object(&[event("stopped")]),
            Event::ClientConnected(l, p) => object(&[event("connected"), ("local", addr(l)), ("peer", addr(p))]),
            Event::ClientSent(n) => object(&[event("data"), ("dir", s("out".into())), ("bytes", bytes(*n))]),
            Event::ClientReceived(d) => object(&[event("data"), ("dir", s("in".into())), ("bytes", bytes(d.len()))]),
            Event::ClientClosing => object(&[event("closed"), ("by", s("client".into()))]),
            Event::PeerCred(p, c) => object(&[
                event("peercred"),
                ("peer", addr(p)),
                ("pid", Value::Int(c.pid.into())),
                ("uid", Value::Int(c.uid.into())),
                ("gid", Value::Int(c.gid.into())),
            ]),
            Event::Truncated(p, kept, total) => {
                object(&[event("truncated"), ("peer", addr(p)), ("kept", bytes(*kept)), ("bytes", bytes(*total))])
            }
            Event::HandedOff(p, fd, pid) => object(&[
                event("handed_off"),
                ("peer", addr(p)),
                ("fd", Value::Int((*fd).into())),
                ("pid", Value::Int((*pid).into())),
            ]),
            Event::TookOver(p, fd, pid) => object(&[
                event("took_over"),
                ("peer", addr(p)),
                ("fd", Value::Int((*fd).into())),
                ("pid", Value::Int((*pid).into())),
            ]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_shown_readably() {
        assert_eq!(show_data(b"Hello"), "Hello");
        assert_eq!(show_data(b"a\nb"), "a\\nb");
        assert_eq!(show_data(&[0xff, 0x00]), "\\xff\\x00");
        assert!(show_data(&[b'x'; 1000]).ends_with("... (1000 bytes)"));
        assert_eq!(show_data("你好".as_bytes()), "你好");
    }

    #[test]
    fn bytes_in_several_buffers_are_shown_as_one_recv() {
        // An io_uring recv bundle: one recv, its bytes in three buffers.
        assert_eq!(show_parts(&[b"Hel", b"l", b"o"]), "Hello");
        let big = [vec![b'x'; 60_000], vec![b'y'; 65_536], vec![b'z'; 100]];
        let parts: Vec<&[u8]> = big.iter().map(Vec::as_slice).collect();
        let shown = show_parts(&parts);
        assert!(shown.starts_with("xxx") && shown.ends_with("... (125636 bytes)"), "{shown}");
        // Text cut in the middle of a character by the shown part is still text.
        let han = "你好".repeat(400);
        let (a, b) = han.as_bytes().split_at(1000);
        assert!(show_parts(&[a, b]).starts_with("你好你好"), "{}", show_parts(&[a, b]));
        let peer = SockAddr::from("127.0.0.1:9".parse::<std::net::SocketAddr>().unwrap());
        let line = Event::ServerReceived(peer, &[b"Hel", b"lo"]).to_string();
        assert_eq!(line, "Server Recv Data: Hello (from 127.0.0.1:9)");
        let json = Event::ServerSending(peer, &[b"Hel", b"lo"]).json();
        assert!(json.ends_with(r#""dir": "out", "peer": "127.0.0.1:9", "bytes": 5}"#), "{json}");
    }

    #[test]
    fn errors_are_shown_by_errno_name() {
        let peer = SockAddr::from("127.0.0.1:9".parse::<std::net::SocketAddr>().unwrap());
        let err = io::Error::from_raw_os_error(libc::EPIPE);
        assert_eq!(
            Event::ConnectionError(peer, &err).to_string(),
            "Server connection 127.0.0.1:9 ended: EPIPE (Broken pipe)"
        );
        let err = io::Error::from_raw_os_error(libc::EMFILE);
        assert!(Event::AcceptError(&err).to_string().starts_with("Server accept failed: EMFILE ("));
        let err = crate::error::context("clone", None, io::Error::from_raw_os_error(libc::EAGAIN));
        let deferred = Event::SpawnDeferred(peer, &err, std::time::Duration::from_millis(40));
        let line = deferred.to_string();
        assert!(line.starts_with("Server cannot serve 127.0.0.1:9 yet: clone: EAGAIN ("), "{line}");
        assert!(line.contains("RLIMIT_NPROC") && line.ends_with("in 40 ms"), "{line}");
        let json = deferred.json();
        assert!(json.contains(r#""event": "deferred""#) && json.contains(r#""call": "clone""#), "{json}");
        assert!(json.contains(r#""errno": "EAGAIN""#) && json.contains(r#""retry_ms": 40"#), "{json}");
    }
}
