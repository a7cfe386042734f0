//! The echo server's setup and lifetime: bind, run one model's loop until stopped, close. The
//! loops themselves are in `model/`, one file per concurrency model.

use crate::process::SpawnCounted;
use std::io;
use std::net::SocketAddr;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::config::{Model, ServerConfig};
use super::datagram;
use super::endpoint::{Bound, Transport};
use super::event::{Event, Sink};
use super::model;
use super::stop::Stop;
use crate::{SockAddr, UnixName};

/// A bound, listening echo server that has not started serving yet.
#[derive(Debug)]
pub struct Server {
    bound: Arc<Bound>,
    addr: SockAddr,
    config: ServerConfig,
    stop: Arc<Stop>,
    /// The device and inode of the socket file bound (a Unix path only), to remove at the stop
    /// only that file, not one another server made at the same path since.
    file: Option<(u64, u64)>,
}

impl Server {
    /// socket, setsockopt(SO_REUSEADDR), bind, listen. Errors name the failing call and address.
    pub fn bind(config: ServerConfig) -> io::Result<Server> {
        if config.buffer() == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "the receive buffer must hold at least 1 byte"));
        }
        if config.max_conns == Some(0) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "max_conns must be at least 1"));
        }
        if config.idle_timeout == Some(Duration::ZERO) || config.max_conn_time == Some(Duration::ZERO) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "a time limit of zero is not allowed; use None"));
        }
        if config.transport.is_datagram() && !matches!(config.model, Model::Iterative | Model::Epoll) {
            return Err(datagram::refused(config.model));
        }
        let is_ip = matches!(config.transport, Transport::Tcp | Transport::Udp);
        if config.only_v6.is_some() && !(is_ip && config.addr.is_ipv6()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "IPV6_V6ONLY applies to IPv6 sockets only: listen on an IPv6 address (e.g. --host ::) to use it",
            ));
        }
        let bound = Bound::bind(&config.transport, config.addr, config.backlog(), config.only_v6, config.unlink)?;
        // The address asked for is the address bound, unless the kernel picked the port (port 0)
        // or it is a Unix name: only then ask (getsockname), as the tutorial, binding a fixed
        // port, never does.
        let addr = match config.transport {
            Transport::Tcp | Transport::Udp if config.addr.port() != 0 => SockAddr::from(config.addr),
            _ => bound.local_addr()?,
        };
        let file = match addr.as_unix() {
            Some(UnixName::Path(bytes)) => {
                let path = std::path::Path::new(std::ffi::OsStr::from_bytes(bytes));
                Some(crate::file::identity_of(path).map_err(|e| crate::error::CallError::unix("stat", &addr, e))?)
            }
            _ => None,
        };
        Ok(Server { bound: Arc::new(bound), addr, config, stop: Stop::new(), file })
    }

    /// The address it listens on (getsockname): with the real port for TCP/UDP; the path or
    /// `@name` for a Unix socket.
    pub fn local_addr(&self) -> SockAddr {
        self.addr
    }

    /// The switch that ends [`run`](Self::run) from another thread.
    pub fn stop_handle(&self) -> Arc<Stop> {
        Arc::clone(&self.stop)
    }

    /// Serves clients until the stop is requested, reporting to `sink`. Closes the listener.
    pub fn run(self, sink: Sink) -> io::Result<()> {
        sink(&Event::Listening(self.addr));
        let watch = self.stop.watch_listener(self.bound.clone());
        let (config, stop) = (&self.config, &self.stop);
        // The grace period's clock: after a stop request it waits `grace`, then cuts. Without it
        // (no grace, or no thread to be had) a stop request cuts at once. A plain thread joined
        // below, not a scoped one: `thread::scope` allocates a handle for the calling thread that
        // a program entered through C's main never frees (valgrind: "possibly lost").
        // Following signals (the tutorial's stop), the connection being served times the grace
        // itself: no thread.
        let grace = config.grace;
        stop.set_graceful(!grace.is_zero());
        // "stopping: 3 connections finishing, up to 5s": said once, when the request comes.
        let announce = Arc::clone(&sink);
        stop.on_grace(grace, move |open, grace| announce(&Event::Grace { open, grace }));
        let keeper = (!grace.is_zero() && !stop.follows_signals())
            .then(|| {
                let stop = Arc::clone(stop);
                thread::Builder::new().name("socklab-grace".into()).spawn_counted(move || stop.keep_grace(grace)).ok()
            })
            .flatten();
        if keeper.is_none() && !stop.follows_signals() {
            stop.set_graceful(false);
        }
        let result = match &*self.bound {
            Bound::Listener(listener) => model::serve(listener, config, stop, &sink),
            Bound::Datagram(sock) => datagram::serve(sock, config, stop, &sink),
        };
        stop.server_ended();
        if let Some(keeper) = keeper {
            let _ = keeper.join();
        }
        drop(watch);
        // How the connections open at a stop request ended; nothing to say when none was open.
        let drained = self.stop.drained();
        if drained.finished + drained.cut > 0 {
            sink(&Event::Drained(drained));
        }
        // Close explicitly (not just drop) so a close error is not silently lost.
        match Arc::try_unwrap(self.bound) {
            Ok(bound) => bound.close()?,
            Err(shared) => drop(shared),
        }
        // A Unix socket's file outlives the socket; remove the one this server created, so the
        // next server can bind the same path without --unlink, but only if it is still that file.
        if let Some(file) = self.file {
            crate::unix::unlink_own(&self.addr, file)?;
        }
        sink(&Event::Stopped);
        result
    }

    /// Runs the server on its own thread. The handle stops and joins it.
    pub fn spawn(self, sink: Sink) -> io::Result<ServerHandle> {
        let addr = self.addr;
        let ip = addr.as_socket().unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        let stop = self.stop_handle();
        let thread =
            thread::Builder::new().name(format!("socklab-echo-{}", ip.port())).spawn_counted(move || self.run(sink))?;
        Ok(ServerHandle { addr: ip, local: addr, stop, thread: Some(thread) })
    }
}

/// A server running on a thread. Dropping the handle stops the server and waits for it.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    local: SockAddr,
    stop: Arc<Stop>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl ServerHandle {
    /// A quiet echo server on `127.0.0.1`, on a port the kernel picks, running the tutorial's
    /// iterative model: it serves one client at a time, so a second simultaneous client gets no
    /// echo until the first closes. For tests, `crate::fixture::EchoServer` serves clients
    /// concurrently and can inject faults.
    pub fn start_local() -> io::Result<ServerHandle> {
        let config = ServerConfig {
            backlog: Some(crate::tcp::DEFAULT_BACKLOG),
            ..ServerConfig::new(([127, 0, 0, 1], 0).into())
        };
        Server::bind(config)?.spawn(Arc::new(|_: &Event<'_>| {}))
    }

    /// Where clients should connect, for a TCP or UDP server. A Unix server has no IP address
    /// (this is then `0.0.0.0:0`): use [`local`](Self::local).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound address of any family: `127.0.0.1:40000`, `/tmp/echo.sock`, `@name`.
    pub fn local(&self) -> SockAddr {
        self.local
    }

    /// Stops the server, waits for its thread, and returns how it ended.
    pub fn stop(mut self) -> io::Result<()> {
        self.finish()
    }

    fn finish(&mut self) -> io::Result<()> {
        self.stop.request();
        match self.thread.take() {
            Some(thread) => thread.join().unwrap_or_else(|_| Err(io::Error::other("the echo server thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}
