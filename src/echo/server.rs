//! The echo server's setup and lifetime: bind, run one model's loop until stopped, close. The
//! loops themselves are in `model/`, one file per concurrency model.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::config::ServerConfig;
use super::event::{Event, Sink};
use super::model;
use super::stop::Stop;
use crate::tcp::TcpListener;

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
        if config.buffer() == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "the receive buffer must hold at least 1 byte"));
        }
        if config.max_conns == Some(0) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "max_conns must be at least 1"));
        }
        if config.idle_timeout == Some(Duration::ZERO) || config.max_conn_time == Some(Duration::ZERO) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "a time limit of zero is not allowed; use None"));
        }
        let listener = TcpListener::bind_with_backlog(&config.addr, config.backlog())?;
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
        let (listener, config, stop) = (&*self.listener, &self.config, &self.stop);
        let result = model::serve(listener, config, stop, &sink);
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
