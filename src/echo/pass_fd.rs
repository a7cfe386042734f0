//! `socklab pass-fd`: one process accepts a TCP connection and hands it to another process over a
//! Unix socket, which then serves it — descriptor passing with `SCM_RIGHTS`.
//!
//! ```text
//! socketpair(AF_UNIX, SOCK_STREAM)            // a private line between the two processes
//! fork()
//!   child:   loop { recvmsg(line) -> fd (SCM_RIGHTS); echo on fd; close(fd) }   // until EOF
//!   parent:  socket, bind, listen; accept -> conn
//!            sendmsg(line, "F" + SCM_RIGHTS [conn])   // the kernel installs a copy in the child
//!            close(conn)                              // the connection lives on in the child
//!            close(line); wait(child)
//! ```
//!
//! The descriptor number the child gets is its own lowest free one, not the parent's: what passes
//! is the open socket, as if the child had called dup(2) on the parent's descriptor. This is how
//! a privileged front process hands connections to workers (and how systemd socket activation
//! and zero-downtime restarts move listeners between processes).

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::panic::{self, AssertUnwindSafe};

use super::endpoint::{Listener, Stream};
use super::event::{Event, Sink};
use super::limits::Limits;
use super::session;
use crate::SockAddr;
use crate::process::{self, Forked};
use crate::tcp::{TcpListener, TcpStream};
use crate::unix::{UnixKind, UnixStream};

/// A pass-fd demo with its worker process started and its listener bound.
#[derive(Debug)]
pub struct PassFd {
    listener: Listener,
    line: UnixStream,
    worker: process::Pid,
    addr: SocketAddr,
}

impl PassFd {
    /// socketpair, fork the worker (which waits for descriptors), then bind and listen on `addr`.
    /// Call before starting any thread: the worker is forked from this one.
    pub fn start(addr: SocketAddr, sink: &Sink) -> io::Result<PassFd> {
        let (line, worker_end) = UnixStream::pair(UnixKind::Stream)?;
        // Allocated before the fork, so the child needs no allocator lock.
        let mut buf = vec![0u8; 2048];
        match process::fork()? {
            Forked::Child => {
                let served = panic::catch_unwind(AssertUnwindSafe(|| {
                    let _ = process::set_signal_mask(&[]);
                    let _ = process::close_inherited(line.as_fd());
                    worker(&worker_end, &mut buf, sink)
                }));
                process::exit_now(if matches!(served, Ok(Ok(()))) { 0 } else { 1 })
            }
            Forked::Parent(worker) => {
                drop(worker_end);
                let listener = TcpListener::bind(&addr)?;
                let addr = listener.local_addr()?;
                Ok(PassFd { listener: Listener::Tcp(listener), line, worker, addr })
            }
        }
    }

    /// The TCP address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Accepts `count` connections and hands each to the worker; then closes the line (the worker
    /// ends once it served them) and waits for the worker.
    pub fn run(self, count: usize, sink: &Sink) -> io::Result<()> {
        sink(&Event::Listening(SockAddr::from(self.addr)));
        let result = (0..count).try_for_each(|_| self.hand_one(sink));
        // EOF on the line tells the worker there is nothing more to come.
        drop(self.line);
        drop(self.listener);
        let status = process::wait(self.worker)?;
        result?;
        if status != 0 {
            return Err(io::Error::other(format!("the worker process ended with status {status:#x}")));
        }
        Ok(())
    }

    fn hand_one(&self, sink: &Sink) -> io::Result<()> {
        let (conn, peer) = self.listener.accept()?;
        sink(&Event::Accepted(peer));
        // One data byte carries the control message: Linux passes no descriptors on an empty send.
        self.line.send_fds(b"F", &[conn.as_fd()])?;
        sink(&Event::HandedOff(peer, conn.as_raw_fd(), self.worker));
        // Our copy goes; the worker's copy keeps the connection open.
        conn.close()
    }
}

/// The worker: receive descriptors until the line closes; serve each one as an echo connection.
fn worker(line: &UnixStream, buf: &mut [u8], sink: &Sink) -> io::Result<()> {
    let mut byte = [0u8; 1];
    loop {
        let (n, fds) = line.recv_fds(&mut byte)?;
        if n == 0 {
            return Ok(()); // the parent closed the line
        }
        for fd in fds {
            let conn = Stream::Tcp(TcpStream::from(fd));
            let peer = conn.as_ref().peer_addr()?;
            sink(&Event::TookOver(peer, conn.as_raw_fd(), std::process::id() as i32));
            session::serve(&conn, peer, buf, Limits::default(), None, sink);
            conn.close()?;
        }
    }
}
