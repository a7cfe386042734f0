//! `--explain`: one plain sentence per call saying what the kernel just did, for a student.

use super::fds::Known;
use crate::sys::trace::{Arg, Call};
use crate::sys::{SockAddr, names};
use std::io;

/// What the narration knew when the call was made, beyond its arguments.
#[derive(Debug, Default)]
pub struct Context {
    /// What the program's earlier narrated calls did to the call's descriptor (`None`: the
    /// narration never saw it created).
    pub fd: Option<Known>,
    /// For close: the answer of `ioctl(fd, FIONREAD)` asked just before it (bytes left unread in
    /// the receive queue), when it was asked.
    pub unread: Option<io::Result<i32>>,
}

/// The sentence for a finished call, or `None` for calls with nothing worth saying, knowing
/// nothing beyond the call itself.
pub fn sentence(call: &Call<'_>, result: &io::Result<i64>) -> Option<String> {
    sentence_in(call, result, &Context::default())
}

/// The sentence for a finished call, using what the narration knew about its descriptor.
pub fn sentence_in(call: &Call<'_>, result: &io::Result<i64>, cx: &Context) -> Option<String> {
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
        Err(e) => return failure(call, e.raw_os_error().unwrap_or(0), addr, cx),
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
            Some(Arg::SockOpt(libc::SOL_SOCKET, libc::SO_RCVTIMEO)) => match call.args.get(2) {
                Some(Arg::OptTimeval { sec: 0, usec: 0 }) => "recv on this socket waits for ever again.".into(),
                Some(Arg::OptTimeval { sec, usec }) => format!(
                    "From now on a recv on this socket that gets no byte for {} fails with EAGAIN instead of waiting \
                     for ever.",
                    show_timeval(*sec, *usec)
                ),
                _ => "The kernel changed this socket's receive timeout.".into(),
            },
            Some(Arg::SockOpt(libc::SOL_SOCKET, libc::SO_SNDTIMEO)) => match call.args.get(2) {
                Some(Arg::OptTimeval { sec: 0, usec: 0 }) => "send on this socket waits for ever again.".into(),
                Some(Arg::OptTimeval { sec, usec }) => format!(
                    "From now on a send on this socket that can queue no byte for {0} fails with EAGAIN, and on \
                     Linux a blocking connect that is not answered within {0} gives up with EINPROGRESS.",
                    show_timeval(*sec, *usec)
                ),
                _ => "The kernel changed this socket's send timeout.".into(),
            },
            _ => "The kernel changed one option of this socket.".into(),
        },
        "bind" => match addr.and_then(SockAddr::as_socket) {
            Some(a) if a.port() == 0 => format!(
                "The socket now owns the address {}; port 0 asked the kernel to pick a free port (getsockname tells \
                 which).",
                a.ip()
            ),
            Some(a) if cx.fd.is_some_and(|k| k.ty == libc::SOCK_DGRAM) => {
                format!(
                    "The socket now owns the local address {a}: datagrams sent there now queue in its receive buffer."
                )
            }
            Some(a) if cx.fd.is_some_and(|k| k.ty == libc::SOCK_STREAM) => format!(
                "The socket now owns the local address {a}, but it does not accept connections yet: until listen is \
                 called, a SYN sent there is answered with a RST (connection refused)."
            ),
            Some(a) => format!("The socket now owns the local address {a}."),
            None => "The socket now owns a local address.".into(),
        },
        "listen" if family(cx) == Family::Unix => format!(
            "The socket is now a listener: a connect to its name is now linked to it inside the kernel (AF_UNIX has \
             no wire and no handshake packets) and queued until the program calls accept. Up to backlog + 1 = {} \
             wait (the backlog is capped at net.core.somaxconn); when the queue is full a blocking connect waits \
             and a nonblocking one fails with EAGAIN: nothing is dropped or retried.",
            int(1) + 1
        ),
        "listen" => format!(
            "The socket is now a listener: from here on the kernel itself answers SYNs with SYN-ACKs and queues \
             finished handshakes until the program calls accept. Linux queues backlog + 1 = {} of them (the backlog \
             is capped at net.core.somaxconn; handshakes finishing at the same moment on different CPUs can slip \
             in more); when the queue is full it drops new SYNs and the clients retry.",
            int(1) + 1
        ),
        "getsockname" => format!("The kernel reported the socket's own address: {}.", show(addr)),
        "getpeername" => {
            format!("The kernel reported the address of the peer this socket is connected to: {}.", show(addr))
        }
        "connect" => match family(cx) {
            Family::Udp => format!(
                "No packet was sent: a UDP connect only records {} as this socket's default destination, so send \
                 needs no address, and from now on only datagrams from that address are received.",
                show(addr)
            ),
            Family::UnixDgram => format!(
                "Nothing was sent: this AF_UNIX datagram socket now sends to {} by default and receives only from it.",
                show(addr)
            ),
            Family::Unix => format!(
                "The kernel linked this socket to the listener at {} directly, in memory (AF_UNIX has no wire and no \
                 handshake packets); the connection waits in the listener's queue until its accept takes it.",
                show(addr)
            ),
            Family::Netlink => format!(
                "Nothing was sent: a netlink connect only sets this socket's default destination, {}.",
                show(addr)
            ),
            Family::Tcp => connect_tcp(addr, ""),
            Family::Unknown => connect_tcp(addr, "If this is a TCP socket (the narration did not see it made): "),
        },
        "accept" | "accept4" if family(cx) == Family::Unix => format!(
            "A client's connect had already linked its socket to this listener and queued it (no packets: AF_UNIX); \
             accept only took that connection off the queue and gave it its own descriptor, {ret}."
        ),
        "accept" | "accept4" => format!(
            "The handshake with {} had already completed inside the kernel; accept only took that connection off the \
             listener's accept queue and gave it its own descriptor, {ret}.",
            show(addr)
        ),
        "recvfrom" if ret == 0 => match family(cx) {
            Family::Udp | Family::UnixDgram => "recv returned 0: an empty datagram arrived (a datagram socket has no \
                end of stream, so 0 is not a close)."
                .into(),
            Family::Unix => "recv returned 0: end of file. The peer closed its end or shut it for writing (AF_UNIX \
                sends no FIN: the kernel marks the peer's end shut), and everything it wrote has been read."
                .into(),
            Family::Netlink => "recv returned 0: the kernel's answer was empty.".into(),
            _ => "recv returned 0: the peer sent a FIN, so it will send nothing more, and everything it sent before \
                has been read."
                .into(),
        },
        "recvfrom" => match family(cx) {
            Family::Udp => format!(
                "The kernel copied one datagram of {ret} bytes out of this socket's receive queue (a datagram is read \
                 whole, or cut to the buffer; UDP sends no acknowledgement)."
            ),
            Family::UnixDgram => format!(
                "The kernel copied one message of {ret} bytes out of this socket's receive queue, where the sender's \
                 call had put it directly (AF_UNIX has no wire)."
            ),
            Family::Unix => format!(
                "The kernel copied {ret} bytes out of this socket's receive queue, where the peer's send had put them \
                 directly (AF_UNIX: no segments, no acknowledgements)."
            ),
            Family::Netlink => format!(
                "The kernel's answer: {ret} bytes of netlink messages, which the kernel itself wrote into this \
                 socket's receive queue."
            ),
            _ => format!(
                "The kernel copied {ret} bytes out of this socket's receive queue; they had already arrived in a TCP \
                 segment, which the kernel acknowledged by itself."
            ),
        },
        "sendto" => match family(cx) {
            Family::Udp => format!(
                "The kernel sent {ret} bytes as one UDP datagram. Nothing acknowledges it: returning means only that \
                 the datagram was handed on, not that anyone received it."
            ),
            Family::UnixDgram => format!(
                "The kernel put {ret} bytes as one message straight into the receiving socket's queue (AF_UNIX has no \
                 wire); returning does not mean it has been read."
            ),
            Family::Unix => format!(
                "The kernel copied {ret} bytes straight into the peer socket's receive queue (AF_UNIX has no wire and \
                 no segments); returning does not mean the peer has read them."
            ),
            Family::Netlink => format!(
                "A request of {ret} bytes to the kernel: a netlink sendto goes to no network; the kernel answers into \
                 this socket's receive queue."
            ),
            _ => format!(
                "The kernel copied {ret} bytes into this socket's send buffer and sends them as a TCP segment; \
                 returning does not mean the peer has read them."
            ),
        },
        "shutdown" => shutdown(call, cx.fd),
        "close" => close(cx),
        "ioctl" if matches!(call.args.get(1), Some(Arg::Name("FIONREAD"))) => format!(
            "--explain asked the kernel how many bytes wait unread in this socket's receive queue before the close \
             that follows: {}.",
            match call.args.get(2) {
                Some(Arg::OptInt(n)) => n.to_string(),
                _ => "unknown".into(),
            }
        ),
        "getsockopt" => "The kernel reported one option of this socket.".into(),
        "poll" if matches!(call.args.get(1), Some(Arg::Int(0))) => {
            "poll with no descriptor only waits: the timeout passed (a signal would have ended it early).".into()
        }
        "poll" => format!("{ret} of the watched descriptors became ready."),
        "rt_sigaction" => sigaction(call),
        _ => return None,
    };
    Some(text)
}

/// What a sigaction just set.
fn sigaction(call: &Call<'_>) -> String {
    let sig = match call.args.first() {
        Some(Arg::Signal(sig)) => crate::names::signal(*sig),
        _ => "the signal".into(),
    };
    match call.args.get(1) {
        Some(Arg::Handler(h, _)) if *h == libc::SIG_IGN => format!(
            "{sig} is now ignored{}.",
            if sig == "SIGPIPE" {
                ": a write to a pipe or socket whose reader is gone fails with EPIPE instead of killing the process"
            } else {
                ""
            }
        ),
        Some(Arg::Handler(h, _)) if *h == libc::SIG_DFL => format!("{sig} does its default action again."),
        Some(Arg::Handler(_, flags)) if flags & libc::SA_RESTART == 0 => format!(
            "From now on {sig} runs this handler. Without SA_RESTART in sa_flags, a blocking call the signal \
             interrupts (accept, recv) is not restarted after the handler: it returns EINTR, which is how the \
             signal wakes the loop."
        ),
        _ => format!(
            "From now on {sig} runs this handler; with SA_RESTART, a blocking call it interrupts is restarted by \
             the kernel after the handler, and the program never sees EINTR."
        ),
    }
}

/// The sentence under the handler's `rt_sigreturn`.
pub fn sigreturn(caught: &crate::process::Caught) -> String {
    let what = match caught.signo {
        libc::SIGINT | libc::SIGTERM => {
            "; the handler counted the stop request, and the loop, woken by the EINTR, reads that count and stops"
        }
        _ => "",
    };
    format!(
        "The handler for {} returned: rt_sigreturn restored the signal mask and the registers of the interrupted call, \
         which ends with EINTR{what}.",
        crate::names::signal(caught.signo)
    )
}

fn failure(call: &Call<'_>, errno: i32, addr: Option<&SockAddr>, cx: &Context) -> Option<String> {
    let flags = call.args.iter().find_map(|a| match a {
        Arg::MsgFlags(f) => Some(*f),
        _ => None,
    });
    let text = match (call.name, errno) {
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
        ("ioctl", libc::EINVAL) if cx.fd.is_some_and(|k| k.listening) => {
            "A listener has no receive queue of bytes, so FIONREAD does not apply to it.".into()
        }
        (_, libc::EINTR) => "A signal arrived while the call waited, and the call returned EINTR having done \
            nothing: the signal's handler was installed without SA_RESTART, so the kernel did not restart the call \
            after the handler (strace shows `? ERESTARTSYS`), and the program gets to look at what the handler \
            recorded."
            .into(),
        (name, libc::EAGAIN) => {
            let what = match name {
                "read" if cx.fd.is_some_and(|k| k.signalfd) => "no signal was pending for this signalfd",
                "accept" | "accept4" => "no finished connection was waiting in the accept queue",
                "recvfrom" => "no data was waiting in the receive queue",
                "read" if cx.fd.is_some_and(|k| k.domain != 0) => "no data was waiting in the receive queue",
                "read" => "nothing was waiting to be read on this descriptor",
                "sendto" | "write" => "the send buffer was full",
                "connect" => "the listener's queue was full",
                _ => "the call could not be done at once",
            };
            let dontwait = flags.is_some_and(|f| f & libc::MSG_DONTWAIT != 0);
            let why = match cx.fd {
                _ if dontwait => "MSG_DONTWAIT asked the kernel not to wait, so it returned at once".to_string(),
                Some(k) if k.signalfd => "it was made with SFD_NONBLOCK, so the kernel returned at once instead \
                    of waiting"
                    .to_string(),
                Some(k) if k.nonblocking => "this descriptor is nonblocking, so the kernel returned at once \
                    instead of waiting"
                    .to_string(),
                Some(k) if k.recv_timeout && name == "recvfrom" => {
                    "the kernel waited until the socket's SO_RCVTIMEO timeout ran out".to_string()
                }
                _ => "the descriptor is nonblocking or has a timeout, so the kernel did not wait (longer)".to_string(),
            };
            let lead =
                if cx.fd.is_some_and(|k| k.domain != 0) { "Not an error in the connection" } else { "Not a failure" };
            format!("{lead}: {what}, and {why} (EAGAIN: try again later).")
        }
        (_, errno) => format!("The call failed: {}.", names::errno_text(errno)),
    };
    Some(text)
}

/// shutdown's sentence: what goes on the wire depends on what the socket is.
fn shutdown(call: &Call<'_>, fd: Option<Known>) -> String {
    let how = match call.args.get(1) {
        Some(Arg::How(h)) => *h,
        _ => libc::SHUT_RDWR,
    };
    match fd {
        // A listener: SHUT_RD or SHUT_RDWR makes the kernel disconnect it (inet_shutdown calls
        // tcp_disconnect); SHUT_WR alone does nothing to it.
        Some(k) if k.listening && k.is_tcp() && how == libc::SHUT_WR => {
            "This socket is a listener: SHUT_WR does nothing to it (it sends no data, so it has no FIN to send).".into()
        }
        Some(k) if k.listening && k.is_tcp() => "This socket is a listener (listen was called on it): the kernel \
            stops listening, answers each connection still waiting in its accept queue with a RST (no FIN: they \
            were never accepted), and a blocked accept fails with EINVAL."
            .into(),
        Some(k) if k.domain == libc::AF_UNIX => match how {
            libc::SHUT_RD => "AF_UNIX: nothing is sent; reads on this end now return end-of-file.".into(),
            _ => "AF_UNIX has no wire and no FIN: the kernel only marks this end shut, so the peer's reads return \
                end-of-file (and pollers watching it wake up)."
                .into(),
        },
        Some(k) if k.is_tcp() => match how {
            libc::SHUT_RD => "Further input on this TCP socket is discarded; nothing is sent to the peer.".into(),
            _ if k.wr_shut => "Our FIN was already sent by an earlier shutdown; nothing new goes on the wire.".into(),
            libc::SHUT_WR => {
                "The kernel sends a FIN: we will write no more, but can still read what the peer sends.".into()
            }
            _ => "The kernel sends a FIN (we will write no more) and discards further input; the descriptor stays \
                open until close."
                .into(),
        },
        _ => match how {
            libc::SHUT_WR => "We will write no more on this socket; a connected TCP socket sends a FIN.".into(),
            libc::SHUT_RD => "Further input on this socket is discarded.".into(),
            _ => "Both directions are shut and blocked calls on this socket wake up (the narration did not see \
                this socket created, so it cannot say what goes on the wire)."
                .into(),
        },
    }
}

/// close's sentence, from what was asked of the kernel just before (FIONREAD) and what the
/// program's own calls did to the socket.
fn close(cx: &Context) -> String {
    let Some(k) = cx.fd else {
        return "The descriptor is released.".into();
    };
    if k.signalfd {
        return "The signalfd is released (it is not a socket: nothing is sent anywhere).".into();
    }
    if k.shared() && k.listening {
        return "Another process still holds this listener (a fork copied it, or it was passed with SCM_RIGHTS): \
            a close ends a socket only when it drops the last reference to it, so the listener stays open there \
            and new connections are still accepted, not refused."
            .into();
    }
    if k.shared() && !k.signalfd {
        let unread = match &cx.unread {
            Some(Ok(n)) if *n > 0 => format!(", and the {n} unread bytes stay queued for the other holder to read"),
            _ => String::new(),
        };
        return format!(
            "Another process holds this socket too (a fork copied the descriptor, or it was passed with \
             SCM_RIGHTS): a close ends a connection only when it drops the last reference to the socket, so unless \
             the other holder has already closed its copy, nothing is sent now{unread}."
        );
    }
    if k.listening {
        return if k.is_tcp() {
            "The listener is closed: the kernel answers each connection still waiting in its accept queue with a \
             RST, and new SYNs to its port now get a RST too."
                .into()
        } else {
            "The listener is closed: connections still waiting in its queue are dropped (their peers read an \
             error)."
                .into()
        };
    }
    let unread = match &cx.unread {
        Some(Ok(n)) => Some(*n),
        _ => None,
    };
    if k.domain == libc::AF_UNIX && k.ty == libc::SOCK_DGRAM {
        return "The descriptor is released. An AF_UNIX datagram socket has no connection, so nothing tells the other \
            side; messages still queued for this socket are thrown away, and a peer connected to it gets \
            ECONNREFUSED at its next send."
            .into();
    }
    if k.domain == libc::AF_UNIX {
        return match unread {
            Some(0) => "FIONREAD found nothing unread. AF_UNIX has no wire and no FIN: the peer's reads now return \
                end-of-file."
                .into(),
            Some(n) => format!(
                "FIONREAD found {n} bytes never read; they are thrown away. AF_UNIX has no wire: the peer's next \
                 read fails with ECONNRESET."
            ),
            None => "The descriptor is released; an AF_UNIX peer reads end-of-file (nothing goes on a wire).".into(),
        };
    }
    if !k.is_tcp() {
        return "The descriptor is released; nothing is sent for this kind of socket.".into();
    }
    if !k.connected && k.connect_failed {
        return "This socket's connect failed, so it never had a connection: the close sends nothing (no FIN) and \
            leaves no TIME-WAIT."
            .into();
    }
    if !k.connected && k.connect_pending {
        return "The narration never saw this socket's connect finish (it returned EINPROGRESS, and no send or recv \
            went through since): if the handshake was still unfinished, the kernel drops it, sends no FIN and \
            keeps no TIME-WAIT; if it had finished unseen, this close sends a FIN like any other."
            .into();
    }
    if k.linger_zero {
        return "SO_LINGER was set to {l_onoff=1, l_linger=0} on this socket: the kernel sends a RST instead of a \
            FIN and forgets the connection at once (no TIME-WAIT)."
            .into();
    }
    match unread {
        Some(n) if n > 0 => format!(
            "FIONREAD found {n} bytes still unread in the receive queue, so the kernel throws them away and sends \
             a RST, not a FIN: the connection is gone at once and the peer's next call fails with ECONNRESET."
        ),
        Some(_) if k.wr_shut => "FIONREAD found no unread bytes, and our FIN was already sent by shutdown, so \
            nothing new goes on the wire: the close finishes as the shutdown started it."
            .into(),
        Some(_) => {
            let fin = "the kernel sends a FIN (if the socket is connected)";
            let end = if k.peer_eof {
                "The peer had closed first (recv returned 0), so this side waits in LAST-ACK for its ACK and keeps \
                 no TIME-WAIT."
            } else {
                "If the peer has not closed yet, this side closes first and will end in TIME-WAIT."
            };
            format!("FIONREAD found no unread bytes, so {fin}. {end}")
        }
        None => "The descriptor is released. For a connected TCP socket the kernel sends a FIN, or a RST if unread \
            data was still in its receive queue (it was not checked)."
            .into(),
    }
}

/// What the narration knows the descriptor to be, for sentences that differ by family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Tcp,
    Udp,
    /// AF_UNIX stream or seqpacket: connections, but no wire.
    Unix,
    UnixDgram,
    Netlink,
    /// The narration did not see the descriptor made.
    Unknown,
}

fn family(cx: &Context) -> Family {
    match cx.fd {
        None => Family::Unknown,
        Some(k) if k.is_tcp() => Family::Tcp,
        Some(k) if k.domain == libc::AF_NETLINK => Family::Netlink,
        Some(k) if k.domain == libc::AF_UNIX && k.ty == libc::SOCK_DGRAM => Family::UnixDgram,
        Some(k) if k.domain == libc::AF_UNIX => Family::Unix,
        Some(k) if k.ty == libc::SOCK_DGRAM => Family::Udp,
        Some(_) => Family::Unknown,
    }
}

/// A TCP connect that returned 0, with `lead` before it when the socket's kind is a guess.
fn connect_tcp(addr: Option<&SockAddr>, lead: &str) -> String {
    format!(
        "{lead}The kernel sent a SYN to {}, got a SYN-ACK back and answered with an ACK: the three-way handshake is \
         complete. It was done by the two kernels alone; whether the server program is blocked in accept or has not \
         called it yet, the connection now waits in the server's accept queue until accept takes it.",
        show(addr)
    )
}

fn show(addr: Option<&SockAddr>) -> String {
    addr.map_or_else(|| "the peer".into(), |a| a.to_string())
}

/// `10 s`, `1.5 s`, `200 ms`.
fn show_timeval(sec: i64, usec: i64) -> String {
    match (sec, usec) {
        (s, 0) => format!("{s} s"),
        (0, u) if u % 1000 == 0 => format!("{} ms", u / 1000),
        (s, u) => format!("{:.3} s", s as f64 + u as f64 / 1e6),
    }
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

    #[test]
    fn eagain_says_which_queue_was_empty_and_why_the_kernel_did_not_wait() {
        let again = Err(io::Error::from_raw_os_error(libc::EAGAIN));
        let args = [Arg::Fd(3), Arg::PtrLen(0x1000, 128), Arg::AcceptFlags(libc::SOCK_CLOEXEC)];
        let call = Call { name: "accept4", args: &args, phase: Phase::Exit(&again) };
        let nonblocking = Known { domain: libc::AF_INET, ty: libc::SOCK_STREAM, nonblocking: true, ..Known::default() };
        let text = sentence_in(&call, &again, &Context { fd: Some(nonblocking), unread: None }).unwrap();
        assert!(text.contains("accept queue") && text.contains("nonblocking") && !text.contains("refused"), "{text}");
        let args = [Arg::Fd(3), Arg::Ptr(0x1000), Arg::Int(10), Arg::MsgFlags(0), Arg::Null, Arg::Null];
        let call = Call { name: "recvfrom", args: &args, phase: Phase::Exit(&again) };
        let timed = Known { domain: libc::AF_INET, ty: libc::SOCK_STREAM, recv_timeout: true, ..Known::default() };
        let text = sentence_in(&call, &again, &Context { fd: Some(timed), unread: None }).unwrap();
        assert!(text.contains("SO_RCVTIMEO") && text.contains("receive queue"), "{text}");
    }

    #[test]
    fn close_and_shutdown_depend_on_what_the_socket_is() {
        let ok = Ok(0);
        let call = Call { name: "close", args: &[Arg::Fd(4)], phase: Phase::Exit(&ok) };
        let tcp = Known { domain: libc::AF_INET, ty: libc::SOCK_STREAM, ..Known::default() };
        let unix = Known { domain: libc::AF_UNIX, ..tcp };
        let with = |fd, unread| Context { fd: Some(fd), unread: Some(Ok(unread)) };
        assert!(sentence_in(&call, &ok, &with(tcp, 3)).unwrap().contains("RST"));
        assert!(!sentence_in(&call, &ok, &with(tcp, 0)).unwrap().contains("RST"));
        assert!(!sentence_in(&call, &ok, &with(unix, 0)).unwrap().contains("sends a FIN"));
        let unknown = sentence_in(&call, &ok, &Context::default()).unwrap();
        assert!(!unknown.contains("FIN"), "nothing known, nothing claimed: {unknown}");
        let args = [Arg::Fd(4), Arg::How(libc::SHUT_RDWR)];
        let call = Call { name: "shutdown", args: &args, phase: Phase::Exit(&ok) };
        assert!(sentence_in(&call, &ok, &Context { fd: Some(unix), unread: None }).unwrap().contains("no FIN"));
        let listener = Known { listening: true, ..tcp };
        let text = sentence_in(&call, &ok, &Context { fd: Some(listener), unread: None }).unwrap();
        assert!(text.contains("RST") && text.contains("EINVAL"), "{text}");
    }
}
