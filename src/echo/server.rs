//! The echo server's setup and lifetime. The serving loops are one file per concurrency model:
//! `iterative.rs` (the tutorial's), `fork.rs`, `thread.rs`, `poll.rs`, `epoll.rs`, `uring.rs`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

#[cfg(socklab_epoll)]
use super::epoll;
use super::event::{Event, Sink};
use super::limits::Limits;
use super::stop::Stop;
#[cfg(socklab_uring)]
use super::uring;
use super::{fork, iterative, poll, thread as threaded};
use crate::tcp::TcpListener;

/// How the server serves several clients: the rungs of the ladder every networking course climbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Model {
    /// One client at a time, the tutorial's loop (`iterative.rs`).
    #[default]
    Iterative,
    /// A child process per client (`fork.rs`).
    Fork,
    /// A thread per client, at most `max_conns` at once (`thread.rs`).
    Thread,
    /// One thread, nonblocking sockets, `poll(2)` (`poll.rs`).
    Poll,
    /// `threads` threads, each with its own `epoll(7)` instance (`epoll.rs`; Linux only).
    Epoll,
    /// `threads` threads, each with its own `io_uring(7)` instance (`uring.rs`; Linux only).
    Uring,
}

impl Model {
    /// Every model, in the order of the ladder.
    pub const ALL: [Model; 6] = [Model::Iterative, Model::Fork, Model::Thread, Model::Poll, Model::Epoll, Model::Uring];

    /// The name the CLI uses: `iterative`, `fork`, `thread`, `poll`, `epoll`.
    pub fn name(self) -> &'static str {
        match self {
            Model::Iterative => "iterative",
            Model::Fork => "fork",
            Model::Thread => "thread",
            Model::Poll => "poll",
            Model::Epoll => "epoll",
            Model::Uring => "uring",
        }
    }
}

impl std::str::FromStr for Model {
    type Err = String;

    fn from_str(text: &str) -> Result<Model, String> {
        Model::ALL
            .into_iter()
            .find(|m| m.name() == text)
            .ok_or_else(|| format!("unknown model '{text}': use one of iterative, fork, thread, poll, epoll, uring"))
    }
}

/// The thread model's bound on simultaneous clients when `max_conns` is `None`.
pub const DEFAULT_MAX_THREADS: usize = 1024;

/// The kernel's cap on listen backlogs (`net.core.somaxconn`), read from /proc; 4096 (the Linux
/// default since 5.4) where it cannot be read. listen(2) silently lowers larger backlogs to it.
pub fn somaxconn() -> i32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .filter(|&n: &i32| n > 0)
        .unwrap_or(4096)
}

/// How to run an echo server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen. Port 0: the kernel picks one (read it back with `Server::local_addr`).
    pub addr: SocketAddr,
    /// listen(2)'s backlog: completed connections that may wait for accept. The tutorial's is 5.
    pub backlog: i32,
    /// recv(2)'s buffer size: the most one recv returns. The tutorial's is 2048.
    pub buffer: usize,
    /// How clients are served together.
    pub model: Model,
    /// Threads of the epoll model, each with its own epoll instance. 0: one per CPU.
    pub threads: usize,
    /// Close a connection after this long without progress (`--idle-timeout`). `None`: never.
    pub idle_timeout: Option<Duration>,
    /// Close a connection this long after accept, busy or not (`--max-conn-time`). `None`: never.
    pub max_conn_time: Option<Duration>,
    /// The most clients served at once; more wait in the listen backlog. `None`: the thread model
    /// uses [`DEFAULT_MAX_THREADS`], the others are bounded by the descriptor limit only.
    pub max_conns: Option<usize>,
    /// How long to wait before each accept (zero: don't). Lets a walkthrough show a finished
    /// handshake sitting in the accept queue before the program takes it.
    pub accept_delay: Duration,
}

impl ServerConfig {
    /// The per-connection time limits.
    pub fn limits(&self) -> Limits {
        Limits { idle: self.idle_timeout, total: self.max_conn_time }
    }

    /// The tutorial's settings (iterative, backlog 5, buffer 2048, no limits) on `addr`.
    pub fn new(addr: SocketAddr) -> ServerConfig {
        ServerConfig {
            addr,
            backlog: 5,
            buffer: 2048,
            model: Model::Iterative,
            threads: 0,
            max_conns: None,
            idle_timeout: None,
            max_conn_time: None,
            accept_delay: Duration::ZERO,
        }
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
        let (listener, config, stop) = (&*self.listener, &self.config, &self.stop);
        let result = match config.model {
            Model::Iterative => iterative::serve(listener, config, stop, &sink),
            Model::Fork => fork::serve(listener, config, stop, &sink),
            Model::Thread => threaded::serve(listener, config, stop, &sink),
            Model::Poll => poll::serve(listener, config, stop, &sink),
            #[cfg(socklab_epoll)]
            Model::Epoll => epoll::serve(listener, config, stop, &sink),
            #[cfg(not(socklab_epoll))]
            Model::Epoll => Err(io::Error::new(io::ErrorKind::Unsupported, "epoll is Linux-only; use --model poll")),
            #[cfg(socklab_uring)]
            Model::Uring => uring::serve(listener, config, stop, &sink),
            #[cfg(not(socklab_uring))]
            Model::Uring => Err(io::Error::new(io::ErrorKind::Unsupported, "io_uring is Linux-only; use --model poll")),
        };
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
