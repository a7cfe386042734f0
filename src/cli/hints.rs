//! Turns an error into one line that says what failed and what to do about it.

use std::io;

use socklab::error::{call_error, errno};

/// `bind 127.0.0.1:5000: EADDRINUSE (Address already in use): another process ...`
pub fn explain(err: &io::Error) -> String {
    let hint = call_error(err).and_then(|call| {
        let addr = call.addr.map_or_else(String::new, |a| a.to_string());
        let port = call.addr.map_or(0, |a| a.port());
        match &call.unix {
            Some(name) => unix_hint(call.call, errno(err)?, name),
            None => hint(call.call, errno(err)?, &addr, port),
        }
    });
    match (hint, err.raw_os_error()) {
        (Some(hint), _) => format!("{err}: {hint}"),
        // A bare OS error: the kernel's name for it, as strace and the man pages write it.
        (None, Some(errno)) => socklab::names::errno_display(errno),
        (None, None) => err.to_string(),
    }
}

/// Hints for calls on a Unix socket name.
fn unix_hint(call: &str, errno: i32, name: &str) -> Option<String> {
    let text = match (call, errno) {
        ("bind", libc::EADDRINUSE) if name.starts_with('@') => {
            "another socket is bound to this abstract name; choose another name".to_string()
        }
        ("bind", libc::EADDRINUSE) => format!(
            "the file {name} already exists: a server is running there, or one ended without removing its socket \
             file; remove a stale one with --unlink"
        ),
        ("bind", libc::ENOENT) => "the directory of that path does not exist".to_string(),
        ("bind" | "connect", libc::EACCES) => "no permission on that path or its directory".to_string(),
        ("connect", libc::ENOENT) => {
            format!("there is no socket at {name}; start one with: socklab server --unix {name}")
        }
        // An abstract name has no file: nothing stale is left when its server ends, and connecting
        // to a name nobody bound is refused outright (a path gives ENOENT instead).
        ("connect", libc::ECONNREFUSED) if name.starts_with('@') => format!(
            "no socket of this type listens on the abstract name {name} (abstract names have no file, so none \
             is stale: no server has it bound, or it does not listen, or it is of another type: check \
             --seqpacket/--dgram); start one with: socklab server --unix {name}"
        ),
        ("connect", libc::ECONNREFUSED) => format!(
            "nothing is listening on {name} (a stale socket file left by a server that ended, or a socket of \
             another type: check --seqpacket/--dgram)"
        ),
        ("connect", libc::EPROTOTYPE) => {
            "the server's socket is of another type; match its --seqpacket or --dgram".to_string()
        }
        _ => return None,
    };
    Some(text)
}

fn hint(call: &str, errno: i32, addr: &str, port: u16) -> Option<String> {
    let text = match (call, errno) {
        ("recv (UDP)", libc::ECONNREFUSED) => format!(
            "no UDP server on {addr}: the kernel answered our datagram with ICMP port unreachable, which a \
             connected UDP socket reports as ECONNREFUSED; start one with: socklab server --udp --port {port}"
        ),
        ("bind", libc::EADDRINUSE) => format!(
            "another process is listening on this port; choose another with --port (ss -ltnp 'sport = :{port}' shows who has it)"
        ),
        ("bind", libc::EACCES) => {
            "ports below 1024 need root or CAP_NET_BIND_SERVICE; choose a port of 1024 or more with --port".into()
        }
        ("bind", libc::EADDRNOTAVAIL) => {
            "that address does not belong to this machine; use --host localhost, 127.0.0.1 or ::1".into()
        }
        ("connect", libc::ECONNREFUSED) => {
            format!("no server is listening on {addr}; start one with: socklab server --port {port}")
        }
        ("connect", libc::ETIMEDOUT) => format!("{addr} did not answer; check the host and any firewall"),
        ("connect", libc::ENETUNREACH | libc::EHOSTUNREACH) => format!("there is no route to {addr}"),
        ("recv" | "send", libc::ECONNRESET) => {
            format!("{addr} reset the connection (it was killed, or closed with data unread); see its log")
        }
        ("send", libc::EPIPE) => format!("{addr} closed the connection before reading everything we sent"),
        ("socket", libc::EAFNOSUPPORT) => {
            "this address family is not available here (IPv6 disabled?); try 127.0.0.1".into()
        }
        ("socket", libc::EMFILE | libc::ENFILE) => "out of file descriptors; raise the limit with ulimit -n".into(),
        _ => return None,
    };
    Some(text)
}
