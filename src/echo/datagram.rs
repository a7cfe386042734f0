//! The datagram echo (UDP, Unix datagram): no listen, no accept, no connection to close. Each
//! datagram carries its sender's address, and the echo goes back to that address.
//!
//! ```text
//! loop {
//!     (data, from) = recvfrom(sock, 2048, MSG_TRUNC)   // one whole datagram; the real length
//!     sendto(sock, data, from)                          // one datagram back
//! }
//! ```
//!
//! A datagram longer than the buffer is cut by the kernel and the rest is gone; `MSG_TRUNC`
//! makes recvfrom return the real length, so the server can say how much was lost (and echoes
//! what it kept). Two models serve datagrams: `iterative` (the loop above, blocking) and `epoll`
//! (one thread, nonblocking, reading until `EAGAIN` on each wake-up). The others exist to serve
//! many *connections* at once, and a datagram socket has none, so they refuse it.
//!
//! Stop: the stop switch shuts the socket down, which wakes a blocked recvfrom (it returns 0)
//! and makes epoll report it readable; the loop then sees the request.

use std::io;
use std::sync::Arc;

use super::config::{Model, ServerConfig};
use super::endpoint::Datagram;
use super::event::{Event, Sink};
use super::stop::Stop;
use crate::{SockAddr, UnixName};

/// Serves datagrams with `config.model` (iterative or epoll) until `stop` is requested.
pub fn serve(sock: &Datagram, config: &ServerConfig, stop: &Arc<Stop>, sink: &Sink) -> io::Result<()> {
    match config.model {
        Model::Iterative => serve_blocking(sock, config, stop, sink),
        #[cfg(socklab_epoll)]
        Model::Epoll => serve_epoll(sock, config, stop, sink),
        other => Err(refused(other)),
    }
}

/// The error for a model that serves connections only.
pub fn refused(model: Model) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "the {} model serves connections, and a datagram socket (UDP, Unix datagram) has none; use --model \
             iterative or --model epoll",
            model.name()
        ),
    )
}

/// The blocking loop: one datagram at a time.
fn serve_blocking(sock: &Datagram, config: &ServerConfig, stop: &Stop, sink: &Sink) -> io::Result<()> {
    let mut buf = vec![0u8; config.buffer()];
    loop {
        let got = sock.recv_from(&mut buf);
        if stop.requested() {
            return Ok(());
        }
        let (len, from) = got?;
        echo_one(sock, &buf, len, &from, sink);
    }
}

/// One thread, nonblocking, epoll: on each wake-up, every queued datagram until `EAGAIN`.
#[cfg(socklab_epoll)]
fn serve_epoll(sock: &Datagram, config: &ServerConfig, stop: &Stop, sink: &Sink) -> io::Result<()> {
    use crate::ready::{Epoll, Events, Interest, Token};
    sock.as_ref().set_nonblocking(true)?;
    let epoll = Epoll::new()?;
    epoll.add(sock, Token(0), Interest::READABLE)?;
    let mut events = Events::with_capacity(1);
    let mut buf = vec![0u8; config.buffer()];
    loop {
        epoll.wait(&mut events, None)?;
        if stop.requested() {
            return Ok(());
        }
        loop {
            match sock.recv_from(&mut buf) {
                Ok((len, from)) => echo_one(sock, &buf, len, &from, sink),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
            if stop.requested() {
                return Ok(());
            }
        }
    }
}

/// Echoes one received datagram (what fitted of it) to its sender.
fn echo_one(sock: &Datagram, buf: &[u8], len: usize, from: &SockAddr, sink: &Sink) {
    let kept = len.min(buf.len());
    if len > kept {
        sink(&Event::Truncated(*from, kept, len));
    }
    sink(&Event::ServerReceived(*from, &buf[..kept]));
    if from.as_unix() == Some(UnixName::Unnamed) {
        // A Unix datagram client that never bound a name can send, but cannot be answered.
        let e = io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            "the sender has no name to reply to (a Unix datagram client must bind, e.g. autobind)",
        );
        sink(&Event::ConnectionError(*from, &e));
        return;
    }
    sink(&Event::ServerSending(*from, &buf[..kept]));
    if let Err(e) = sock.send_to(&buf[..kept], from) {
        // The reply is lost (EAGAIN: our send buffer is full; ECONNREFUSED: the sender's Unix
        // socket is gone). Datagrams are independent: serve the next one.
        sink(&Event::ConnectionError(*from, &e));
    }
}
