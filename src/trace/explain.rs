//! `--explain`: one plain sentence per call saying what the kernel just did, for a student.

use crate::sys::trace::{Arg, Call};
use crate::sys::{SockAddr, names};
use std::io;

/// The sentence for a finished call, or `None` for calls with nothing worth saying.
pub fn sentence(call: &Call<'_>, result: &io::Result<i64>) -> Option<String> {
    let addr = call.args.iter().find_map(|a| match a {
        Arg::Addr(a) | Arg::AddrOut(Some(a), _, _) => Some(*a),
        _ => None,
    });
    let int = |i: usize| match call.args.get(i) {
        Some(Arg::Int(n)) => *n,
        _ => 0,
    };
    let ret = match result {
        Ok(n) => *n,
        Err(e) => return failure(call.name, e.raw_os_error().unwrap_or(0), addr),
    };
    let text = match call.name {
        "socket" => format!(
            "The kernel created a new socket, not yet connected to anything, and gave it descriptor {ret}, the \
             lowest free number."
        ),
        "setsockopt" => match call.args.get(1) {
            Some(Arg::SockOpt(libc::SOL_SOCKET, libc::SO_REUSEADDR)) => "SO_REUSEADDR lets this port be bound \
                again at once even while old connections on it are still in TIME-WAIT."
                .into(),
            _ => "The kernel changed one option of this socket.".into(),
        },
        "bind" => match addr.and_then(SockAddr::as_socket) {
            Some(a) if a.port() == 0 => format!(
                "The socket now owns the address {}; port 0 asked the kernel to pick a free port (getsockname tells \
                 which).",
                a.ip()
            ),
            Some(a) => format!(
                "The socket now owns the local address {a}. Until listen is called, a SYN sent there is answered with a \
                 RST (connection refused)."
            ),
            None => "The socket now owns a local address.".into(),
        },
        "listen" => format!(
            "The socket is now a listener: from here on the kernel itself answers SYNs with SYN-ACKs and queues \
             finished handshakes until the program calls accept. Linux queues up to backlog + 1 = {} of them (the \
             backlog is capped at net.core.somaxconn); when the queue is full it drops new SYNs and the clients \
             retry.",
            int(1) + 1
        ),
        "getsockname" => format!("The kernel reported the socket's own address: {}.", show(addr)),
        "getpeername" => {
            format!("The kernel reported the address of the peer this socket is connected to: {}.", show(addr))
        }
        "connect" => format!(
            "The kernel sent a SYN to {}, got a SYN-ACK back and answered with an ACK: the three-way handshake is \
             complete. It was done by the two kernels alone; whether the server program is blocked in accept or \
             has not called it yet, the connection now waits in the server's accept queue until accept takes it.",
            show(addr)
        ),
        "accept" | "accept4" => format!(
            "The handshake with {} had already completed inside the kernel; accept only took that connection off the \
             listener's accept queue and gave it its own descriptor, {ret}.",
            show(addr)
        ),
        "recvfrom" if ret == 0 => "recv returned 0: the peer sent a FIN, so it will send nothing more, and \
            everything it sent before has been read."
            .into(),
        "recvfrom" => format!(
            "The kernel copied {ret} bytes out of this socket's receive queue; they had already arrived in a TCP \
             segment, which the kernel acknowledged by itself."
        ),
        "sendto" => format!(
            "The kernel copied {ret} bytes into this socket's send buffer and sends them as a TCP segment; returning \
             does not mean the peer has read them."
        ),
        "shutdown" => match call.args.get(1) {
            Some(Arg::How(libc::SHUT_WR)) => {
                "The kernel sends a FIN: we will write no more, but can still read what the peer sends.".into()
            }
            Some(Arg::How(libc::SHUT_RD)) => "Further input on this socket is discarded; nothing is sent.".into(),
            _ => "Both directions are shut and blocked calls on this socket wake up. What goes on the wire depends on \
                  the socket: a connected TCP socket sends a FIN (if not sent already); a listener resets (RST) the \
                  connections waiting in its queue and its blocked accept fails with EINVAL; an AF_UNIX socket sends \
                  nothing, its peer just reads end-of-file."
                .into(),
        },
        "close" => "The descriptor is released. If it was the last one for a connected TCP socket, the kernel sends \
            a FIN (the side that closes first ends in TIME-WAIT) — unless unread data was still in its receive \
            queue: then it sends a RST and the connection is gone at once. A listener's queued connections are \
            reset."
            .into(),
        "getsockopt" => "The kernel reported one option of this socket.".into(),
        "poll" => format!("{ret} of the watched descriptors became ready."),
        _ => return None,
    };
    Some(text)
}

fn failure(call: &str, errno: i32, addr: Option<&SockAddr>) -> Option<String> {
    let text = match (call, errno) {
        ("connect", libc::ECONNREFUSED) => {
            format!("The kernel sent a SYN to {} and got a RST back: no socket is listening on that port.", show(addr))
        }
        ("bind", libc::EADDRINUSE) => "Another socket already owns this address and port.".into(),
        ("accept" | "accept4", libc::EINVAL) => {
            "The listener was shut down (the server is stopping), so there is nothing left to accept.".into()
        }
        ("recvfrom" | "sendto", libc::ECONNRESET) => "The peer reset the connection (it sent a RST).".into(),
        ("sendto", libc::EPIPE) => {
            "The connection is closed for writing; MSG_NOSIGNAL turned SIGPIPE into EPIPE.".into()
        }
        (_, libc::EINTR) => "A signal interrupted the call before it did anything.".into(),
        (_, libc::EAGAIN) => "Nothing to do yet: this descriptor is nonblocking (or has a timeout), so instead of \
            waiting the kernel returned at once; the program waits for readiness and tries again."
            .into(),
        (_, errno) => format!("The kernel refused the call: {}.", names::errno_text(errno)),
    };
    Some(text)
}

fn show(addr: Option<&SockAddr>) -> String {
    addr.map_or_else(|| "the peer".into(), |a| a.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::trace::Phase;

    #[test]
    fn accept_says_the_handshake_was_already_done() {
        let addr = SockAddr::from("127.0.0.1:40000".parse::<std::net::SocketAddr>().unwrap());
        let args = [Arg::Fd(3), Arg::AddrOut(Some(&addr), 128, Some(16)), Arg::AcceptFlags(0)];
        let res = Ok(4);
        let call = Call { name: "accept4", args: &args, phase: Phase::Exit(&res) };
        let text = sentence(&call, &res).unwrap();
        assert!(text.contains("already completed") && text.contains("accept queue"), "{text}");
        let refused = Err(io::Error::from_raw_os_error(libc::ECONNREFUSED));
        let call = Call { name: "connect", args: &[Arg::Fd(3), Arg::Addr(&addr)], phase: Phase::Exit(&refused) };
        assert!(sentence(&call, &refused).unwrap().contains("RST"));
    }
}
