//! The echo server's setup and lifetime; the serving loop itself is in `iterative.rs`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::event::{Event, Sink};
use super::iterative;
use super::limits::Limits;
use super::stop::Stop;
use crate::tcp::TcpListener;

/// How to run an echo server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen. Port 0: the kernel picks one (read it back with `Server::local_addr`).
    pub addr: SocketAddr,
    /// listen(2)'s backlog: completed connections that may wait for accept. The tutorial's is 5.
    pub backlog: i32,
    /// recv(2)'s buffer size: the most one recv returns. The tutorial's is 2048.
    pub buffer: usize,
    /// Close a connection after this long without progress (`--idle-timeout`). `None`: never.
    pub idle_timeout: Option<Duration>,
    /// Close a connection this long after accept, busy or not (`--max-conn-time`). `None`: never.
    pub max_conn_time: Option<Duration>,
    /// Most connections served at once (`--max-conns`); over it, new clients wait in the listen
    /// queue (their handshake is done by the kernel) until one ends. `None`: no cap. The
    /// iterative server serves one at a time whatever the cap.
    pub max_conns: Option<usize>,
}

impl ServerConfig {
    /// The per-connection time limits.
    pub fn limits(&self) -> Limits {
        Limits { idle: self.idle_timeout, total: self.max_conn_time }
    }

    /// The tutorial's settings (backlog 5, buffer 2048, no limits) on `addr`.
    pub fn new(addr: SocketAddr) -> ServerConfig {
        ServerConfig { addr, backlog: 5, buffer: 2048, idle_timeout: None, max_conn_time: None, max_conns: None }
    }
}

/// A bound, listening echo server that has not started serving yet.
#[derive(Debug)]
pub struct Server {
    listener: Arc<TcpListener>,
    addr: SocketAddr,
    config: ServerConfig,
    stop: Arc<Stop>,
}

impl Server {
    /// socket, setsockopt(SO_REUSEADDR), bind, listen. Errors name the failing call and address.
    pub fn bind(config: ServerConfig) -> io::Result<Server> {
        if config.buffer == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "the receive buffer must hold at least 1 byte"));
        }
        if config.max_conns == Some(0) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "max_conns must be at least 1"));
        }
        if config.idle_timeout == Some(Duration::ZERO) || config.max_conn_time == Some(Duration::ZERO) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "a time limit of zero is not allowed; use None"));
        }
        let listener = TcpListener::bind_with_backlog(&config.addr, config.backlog)?;
        let addr = listener.local_addr()?;
        Ok(Server { listener: Arc::new(listener), addr, config, stop: Stop::new() })
    }

    /// The address it listens on, with the real port.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The switch that ends [`run`](Self::run) from another thread.
    pub fn stop_handle(&self) -> Arc<Stop> {
        Arc::clone(&self.stop)
    }

    /// Serves clients until the stop is requested, reporting to `sink`. Closes the listener.
    pub fn run(self, sink: Sink) -> io::Result<()> {
        sink(&Event::Listening(self.addr));
        let watch = self.stop.watch(self.listener.clone());
        let result = iterative::serve(&self.listener, &self.config, &self.stop, &sink);
        drop(watch);
        // Close explicitly (not just drop) so a close error is not silently lost.
        match Arc::try_unwrap(self.listener) {
            Ok(listener) => listener.close()?,
            Err(shared) => drop(shared),
        }
        sink(&Event::Stopped);
        result
    }

    /// Runs the server on its own thread. The handle stops and joins it.
    pub fn spawn(self, sink: Sink) -> io::Result<ServerHandle> {
        let addr = self.addr;
        let stop = self.stop_handle();
        let thread =
            thread::Builder::new().name(format!("socklab-echo-{}", addr.port())).spawn(move || self.run(sink))?;
        Ok(ServerHandle { addr, stop, thread: Some(thread) })
    }
}

/// A server running on a thread. Dropping the handle stops the server and waits for it.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    stop: Arc<Stop>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl ServerHandle {
    /// A quiet echo server on `127.0.0.1`, on a port the kernel picks: the test-fixture shortcut.
    pub fn start_local() -> io::Result<ServerHandle> {
        let config =
            ServerConfig { backlog: crate::tcp::DEFAULT_BACKLOG, ..ServerConfig::new(([127, 0, 0, 1], 0).into()) };
        Server::bind(config)?.spawn(Arc::new(|_: &Event<'_>| {}))
    }

    /// Where clients should connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
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
