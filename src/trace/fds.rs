//! What `--explain` knows about each descriptor: only what it saw the program's own narrated calls
//! do to it (socket's family and type, listen, SOCK_NONBLOCK / O_NONBLOCK, SO_RCVTIMEO,
//! SO_LINGER). Nothing here is guessed: a descriptor the narration never saw created is unknown,
//! and its sentences say less.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::RawFd;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::sys::trace::{Arg, Call};

/// What the narrated calls did to one descriptor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Known {
    /// `AF_INET`, `AF_UNIX`... as passed to socket/socketpair (inherited by accept's descriptor).
    pub domain: i32,
    /// `SOCK_STREAM`, `SOCK_DGRAM`... without the flag bits.
    pub ty: i32,
    /// socket(2)'s protocol (`NETLINK_SOCK_DIAG` for the diag socket).
    pub protocol: i32,
    /// A netlink socket has an address (a bind, or the kernel's autobind at its first send).
    pub nl_bound: bool,
    /// listen was called on it and succeeded.
    pub listening: bool,
    /// Created with SOCK_NONBLOCK or switched with fcntl(F_SETFL, O_NONBLOCK).
    pub nonblocking: bool,
    /// A non-zero SO_RCVTIMEO was set.
    pub recv_timeout: bool,
    /// SO_LINGER was set to `{l_onoff=1, l_linger=0}`: close sends a RST.
    pub linger_zero: bool,
    /// shutdown(SHUT_WR or SHUT_RDWR) succeeded on it: our FIN (TCP) was already sent.
    pub wr_shut: bool,
    /// A recv on it returned 0: the peer's FIN (or end-of-file) arrived and was read.
    pub peer_eof: bool,
    /// It has (had) a connection: accept made it, or a connect, send or recv on it succeeded.
    pub connected: bool,
    /// Its connect failed outright (ECONNREFUSED, ETIMEDOUT...): it never had a connection.
    pub connect_failed: bool,
    /// Its connect returned EINPROGRESS (or EINTR) and nothing since showed it finished.
    pub connect_pending: bool,
    /// A fork copied it and the copy is known to be open: in the parent, a socket while a child
    /// forked after it runs; in the child, the parent's own sockets (its listener above all), not
    /// the connection handed over.
    pub forked: bool,
    /// It was passed to another process with SCM_RIGHTS, which has its own descriptor for it.
    pub passed: bool,
    /// A signalfd, not a socket (only the fields above that default apply).
    pub signalfd: bool,
}

impl Known {
    /// Another process holds a descriptor for the same socket (a fork's copy, or one passed).
    pub fn shared(&self) -> bool {
        self.forked || self.passed
    }

    /// A TCP socket (stream socket of an IP family).
    pub fn is_tcp(&self) -> bool {
        matches!(self.domain, libc::AF_INET | libc::AF_INET6) && self.ty == libc::SOCK_STREAM
    }
}

/// Children forked and not yet reaped (while any runs, the parent's forked connections are shared).
static CHILDREN: AtomicUsize = AtomicUsize::new(0);

static FDS: Mutex<Option<BTreeMap<RawFd, Known>>> = Mutex::new(None);

/// Holds the table's lock, for [`super::ForkLocks`]: a fork made while another thread holds it
/// would leave the child's copy locked for ever.
pub(super) fn hold() -> std::sync::MutexGuard<'static, Option<BTreeMap<RawFd, Known>>> {
    FDS.lock().unwrap_or_else(|p| p.into_inner())
}

fn with<R>(f: impl FnOnce(&mut BTreeMap<RawFd, Known>) -> R) -> R {
    let mut fds = FDS.lock().unwrap_or_else(|p| p.into_inner());
    f(fds.get_or_insert_with(BTreeMap::new))
}

/// Changes what is known about `fd`, if anything is.
fn update(fd: RawFd, change: impl FnOnce(&mut Known)) {
    with(|m| m.get_mut(&fd).map(change));
}

/// What is known about `fd`, if the narration saw it created.
pub fn known(fd: RawFd) -> Option<Known> {
    with(|m| m.get(&fd).copied())
}

fn fd_arg(call: &Call<'_>, i: usize) -> Option<RawFd> {
    match call.args.get(i) {
        Some(Arg::Fd(fd)) => Some(*fd),
        _ => None,
    }
}

const FLAGS: i32 = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;

/// Learns from one finished call.
pub fn learn(call: &Call<'_>, result: &io::Result<i64>) {
    if let ("close", [Arg::Fd(fd)]) = (call.name, call.args) {
        // Gone even when close reports an error (Linux releases the number first).
        forget(*fd);
        return;
    }
    if let ("connect", Some(fd)) = (call.name, fd_arg(call, 0)) {
        match result.as_ref().map_err(|e| e.raw_os_error()) {
            Ok(_) => update(fd, |k| (k.connected, k.connect_pending) = (true, false)),
            // The handshake goes on in the kernel; the program learns its end later.
            Err(Some(libc::EINPROGRESS | libc::EINTR)) => update(fd, |k| k.connect_pending = true),
            Err(Some(libc::EALREADY | libc::EISCONN)) | Err(None) => {}
            Err(Some(_)) => update(fd, |k| (k.connect_failed, k.connect_pending) = (true, false)),
        }
        return;
    }
    let Ok(ret) = result else { return };
    let ret = *ret;
    match (call.name, call.args) {
        ("socket", [Arg::Domain(domain), Arg::SockType(ty), protocol, ..]) => with(|m| {
            let k = Known {
                domain: *domain,
                ty: ty & !FLAGS,
                protocol: if let Arg::Protocol(p) = protocol { *p } else { 0 },
                nonblocking: ty & libc::SOCK_NONBLOCK != 0,
                ..Known::default()
            };
            m.insert(ret as RawFd, k);
        }),
        ("socketpair", [Arg::Domain(domain), Arg::SockType(ty), _, Arg::FdPair(Some((a, b)))]) => with(|m| {
            let k = Known {
                domain: *domain,
                ty: ty & !FLAGS,
                nonblocking: ty & libc::SOCK_NONBLOCK != 0,
                ..Known::default()
            };
            m.insert(*a, k);
            m.insert(*b, k);
        }),
        ("accept4" | "accept", [Arg::Fd(listener), .., flags]) => with(|m| {
            let flags = match flags {
                Arg::AcceptFlags(f) => *f,
                _ => 0,
            };
            let Some(parent) = m.get(listener).copied() else { return };
            let k = Known {
                domain: parent.domain,
                ty: parent.ty,
                nonblocking: flags & libc::SOCK_NONBLOCK != 0,
                connected: true,
                ..Known::default()
            };
            m.insert(ret as RawFd, k);
        }),
        ("listen", _) => {
            if let Some(fd) = fd_arg(call, 0) {
                update(fd, |k| k.listening = true);
            }
        }
        ("fcntl", [Arg::Fd(fd), Arg::Int(cmd), Arg::Int(flags)]) if *cmd == i64::from(libc::F_SETFL) => {
            update(*fd, |k| k.nonblocking = flags & i64::from(libc::O_NONBLOCK) != 0);
        }
        (
            "setsockopt",
            [Arg::Fd(fd), Arg::SockOpt(libc::SOL_SOCKET, libc::SO_RCVTIMEO), Arg::OptTimeval { sec, usec }, ..],
        ) => {
            let on = *sec != 0 || *usec != 0;
            update(*fd, |k| k.recv_timeout = on);
        }
        (
            "setsockopt",
            [Arg::Fd(fd), Arg::SockOpt(libc::SOL_SOCKET, libc::SO_LINGER), Arg::OptLinger { onoff, linger }, ..],
        ) => {
            let zero = *onoff != 0 && *linger == 0;
            update(*fd, |k| k.linger_zero = zero);
        }
        ("shutdown", [Arg::Fd(fd), Arg::How(how)]) if *how != libc::SHUT_RD => {
            update(*fd, |k| k.wr_shut = true);
        }
        // fork: the parent's descriptors now each have a copy in the child. In the child, only the
        // listener is known to stay open in the parent (the server keeps it to accept the next one).
        ("clone", _) if ret > 0 => {
            CHILDREN.fetch_add(1, Ordering::Relaxed);
            with(|m| m.values_mut().filter(|k| !k.listening && k.domain != 0).for_each(|k| k.forked = true));
        }
        ("clone", _) => with(|m| {
            // The parent keeps its listener and its own sockets; the connection just accepted is the
            // one it hands over (and closes), so that one is not counted as shared here.
            for k in m.values_mut() {
                k.forked = k.domain != 0 && !k.connected;
            }
        }),
        // Once every child is reaped, none of their copies is open any more.
        ("wait4", _) if ret > 0 => child_reaped(),
        // The receiver of an SCM_RIGHTS message gets its own descriptor for each socket passed.
        ("sendmsg", [_, Arg::Msg { fds, .. }, ..]) => with(|m| {
            for fd in fds.iter() {
                if let Some(k) = m.get_mut(fd) {
                    k.passed = true;
                }
            }
        }),
        ("signalfd4", _) => with(|m| {
            m.insert(ret as RawFd, Known { signalfd: true, nonblocking: true, ..Known::default() });
        }),
        ("bind", [Arg::Fd(fd), ..]) => update(*fd, |k| k.nl_bound = true),
        // A send that went through on a stream socket means its connect had finished.
        ("sendto", [Arg::Fd(fd), ..]) => update(*fd, |k| {
            k.nl_bound = true;
            if k.connect_pending {
                (k.connected, k.connect_pending) = (true, false);
            }
        }),
        ("recvfrom", [Arg::Fd(fd), ..]) => update(*fd, |k| {
            if k.connect_pending {
                (k.connected, k.connect_pending) = (true, false);
            }
            // 0 from a datagram socket is an empty datagram, not an end of stream.
            if ret == 0 {
                k.peer_eof = k.ty == libc::SOCK_STREAM;
            }
        }),
        _ => {}
    }
}

/// A child was reaped: when it was the last, no fork's copy of a descriptor is open any more.
fn child_reaped() {
    if CHILDREN.fetch_sub(1, Ordering::Relaxed) <= 1 {
        CHILDREN.store(0, Ordering::Relaxed);
        with(|m| m.values_mut().for_each(|k| k.forked = false));
    }
}

/// Forgets a descriptor closed whatever the result (close never leaves it open on Linux).
pub fn forget(fd: RawFd) {
    with(|m| m.remove(&fd));
}
