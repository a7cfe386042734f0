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
        ("bind", libc::EADDRINUSE) => port_in_use(port),
        ("bind (UDP)", libc::EADDRINUSE) => format!(
            "another UDP socket is bound to this port (UDP has no listen: the bound socket is the server); choose \
             another with --port (ss -uanp 'sport = :{port}' shows who has it)"
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

/// Why a TCP port is taken, from the kernel's socket table: a listener, TIME-WAIT records, or
/// connections still using it. Asked only here, after the failed bind.
fn port_in_use(port: u16) -> String {
    let other = format!("choose another with --port (ss -tanp 'sport = :{port}' shows who has it)");
    let Ok(found) = socklab::diag::port::port_use(port) else {
        return format!("another socket holds this port; {other}");
    };
    if let Some(first) = found.listeners.first() {
        let who = match first {
            Some((pid, comm)) => format!("process {pid} ({comm})"),
            None => "a process this user cannot see in /proc".to_string(),
        };
        return format!("{who} is listening on this port; stop it, or {other}");
    }
    if found.time_wait > 0 {
        let n = found.time_wait;
        return format!(
            "no one listens on this port, but {n} connection{s} in TIME-WAIT still hold{v} it: the side that \
             closes first keeps the connection's ports for 60 s (Linux's fixed TIME-WAIT length) so that its late segments are not taken for a \
             new connection's. The kernel lets a new socket bind such a port only when both the new socket and \
             the closed one set SO_REUSEADDR (the tutorial's Python server does not set it); wait up to 60 s, or \
             {other}",
            s = if n == 1 { "" } else { "s" },
            v = if n == 1 { "s" } else { "" },
        );
    }
    if found.bound > 0 {
        return format!(
            "no one listens on this port, but a socket is bound to it without listen() (ss shows it as UNCONN): \
             bind alone takes the port; {other}"
        );
    }
    if !found.others.is_empty() {
        let states: Vec<String> = found.others.iter().map(|(state, n)| format!("{state} ×{n}")).collect();
        return format!(
            "no one listens on this port, but connections still use it as their local port ({}); it is free \
             once their programs close them; {other}",
            states.join(", ")
        );
    }
    format!(
        "no TCP socket on this port shows in this network namespace's socket table (sock_diag) any more: it \
         may have just closed; try again, or {other}"
    )
}
