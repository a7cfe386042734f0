//! What an echo server is asked to do: its [`Model`] and [`ServerConfig`], with each model's
//! defaults decided here (not in the CLI), so a library user gets the same server as the CLI.

use std::net::SocketAddr;
use std::time::Duration;

use super::endpoint::Transport;
use super::limits::Limits;

/// How the server serves several clients: the rungs of the ladder every networking course climbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Model {
    /// One client at a time, the tutorial's loop (`model/iterative.rs`).
    #[default]
    Iterative,
    /// A child process per client (`model/fork.rs`).
    Fork,
    /// A thread per client, at most `max_conns` at once (`model/thread.rs`).
    Thread,
    /// One thread, nonblocking sockets, `poll(2)` (`model/poll.rs`).
    Poll,
    /// `threads` threads, each with its own `epoll(7)` instance (`model/epoll.rs`; Linux only).
    Epoll,
    /// `threads` threads, each with its own `io_uring(7)` instance (`model/uring.rs`; Linux only).
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

    /// Whether a connection is served by a blocking recv/send loop (iterative, fork, thread) rather
    /// than by an event loop over nonblocking sockets (poll, epoll).
    pub fn is_blocking(self) -> bool {
        matches!(self, Model::Iterative | Model::Fork | Model::Thread)
    }

    /// The listen backlog when none is given: the tutorial's 5 for its own model; the kernel's cap
    /// (`net.core.somaxconn`) for the models meant to serve many clients at once.
    pub fn default_backlog(self) -> i32 {
        if self == Model::Iterative { 5 } else { somaxconn() }
    }

    /// The recv buffer when none is given: the tutorial's 2048 for the blocking models (each
    /// connection has its own); 256 KiB for poll and epoll, whose one buffer per thread serves
    /// every connection and so can be large for free. Against 64 KiB, one bulk stream took 6-7
    /// recv/send/epoll_wait per MiB instead of 16, and 25 % less server CPU per MiB
    /// (BENCHMARKS.md).
    ///
    /// io_uring receives into a pool of provided buffers per thread (4 MiB, see `model/uring.rs`).
    /// With incremental consumption (Linux 6.12) each recv takes only the bytes it fills, so the
    /// buffers are sized for streams: 64 KiB, 64 of them (one bulk stream: about 17 system calls
    /// per MiB, against 258 with the 4 KiB buffers each recv used up before; BENCHMARKS.md).
    /// Without it every recv uses up a whole buffer, and the model falls back to 4 KiB ones.
    pub fn default_buffer(self) -> usize {
        match self {
            _ if self.is_blocking() => 2048,
            Model::Uring => 64 << 10,
            _ => 256 << 10,
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

/// How long a stopping server lets open connections finish their echo before it cuts them
/// ([`ServerConfig::grace`], `--grace`).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// The thread model's bound on simultaneous clients when `max_conns` is `None`.
pub const DEFAULT_MAX_THREADS: usize = 1024;

/// The kernel's cap on listen backlogs (`net.core.somaxconn`), read from /proc; 4096 (the Linux
/// default since 5.4) where it cannot be read. listen(2) silently lowers larger backlogs to it.
pub fn somaxconn() -> i32 {
    crate::file::read_to_string(std::path::Path::new("/proc/sys/net/core/somaxconn"))
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .filter(|&n: &i32| n > 0)
        .unwrap_or(4096)
}

/// How to run an echo server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen for TCP and UDP. Port 0: the kernel picks one (read it back with
    /// `Server::local_addr`). Unused by the Unix transports, which carry their own name.
    pub addr: SocketAddr,
    /// Which socket: TCP (the tutorial's), UDP, or a Unix stream / seqpacket / datagram socket.
    pub transport: Transport,
    /// IPV6_V6ONLY before bind on an IPv6 address: `Some(false)` dual-stack, `Some(true)` IPv6
    /// only, `None` the system default.
    pub only_v6: Option<bool>,
    /// Remove a stale Unix socket file before binding (`--unlink`).
    pub unlink: bool,
    /// listen(2)'s backlog: completed connections that may wait for accept. `None`: the model's
    /// default ([`Model::default_backlog`]).
    pub backlog: Option<i32>,
    /// recv(2)'s buffer size: the most one recv returns. `None`: the model's default
    /// ([`Model::default_buffer`]).
    pub buffer: Option<usize>,
    /// How clients are served together.
    pub model: Model,
    /// Threads of the epoll model, each with its own epoll instance. 0: automatic
    /// ([`auto_threads`]).
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
    /// On a stop request: accept nothing more at once, let open connections finish their echo
    /// (their clients close) for at most this long, then cut the rest. A second request cuts at
    /// once. Zero: cut at once. Default: [`DEFAULT_GRACE`].
    pub grace: Duration,
    /// UDP: answer each source address and port at most this many times a second (`--udp-rate`);
    /// `None`: no limit. A forged source can make an echo server answer another echo server, or a
    /// victim, for ever; the limit ends such a loop.
    pub udp_rate: Option<u32>,
}

impl ServerConfig {
    /// The tutorial's server (iterative, backlog 5, buffer 2048, no limits) on `addr`.
    pub fn new(addr: SocketAddr) -> ServerConfig {
        ServerConfig::for_model(addr, Model::Iterative)
    }

    /// A server of `model` on `addr`, with that model's defaults and no limits.
    pub fn for_model(addr: SocketAddr, model: Model) -> ServerConfig {
        ServerConfig {
            addr,
            transport: Transport::Tcp,
            only_v6: None,
            unlink: false,
            backlog: None,
            buffer: None,
            model,
            threads: 0,
            max_conns: None,
            idle_timeout: None,
            max_conn_time: None,
            accept_delay: Duration::ZERO,
            grace: DEFAULT_GRACE,
            udp_rate: None,
        }
    }

    /// The backlog in force.
    pub fn backlog(&self) -> i32 {
        self.backlog.unwrap_or_else(|| self.model.default_backlog())
    }

    /// The recv buffer size in force. For datagrams (UDP, Unix datagram) the tutorial's 2048 in
    /// every model unless `buffer` says otherwise: the buffer is the most one echo answers, so
    /// the models must not differ in what they send back (epoll's 256 KiB would echo all 65,507
    /// bytes of a UDP datagram that iterative cuts at 2048).
    pub fn buffer(&self) -> usize {
        let default = if self.transport.is_datagram() { 2048 } else { self.model.default_buffer() };
        self.buffer.unwrap_or(default)
    }

    /// The per-connection time limits.
    pub fn limits(&self) -> Limits {
        Limits { idle: self.idle_timeout, total: self.max_conn_time }
    }
}

/// The epoll model's thread count when none is given (`threads: 0`, `--threads auto`): one per
/// CPU, except on a loopback address, where every client runs on this machine too and needs CPU
/// time as well: there, half the CPUs, at least one. On 2 CPUs with `socklab bench` on the same
/// machine, a second server thread took CPU time from the load generator, woke about five times
/// as often per round trip, and throughput swung with how the connections happened to split
/// between the threads (BENCHMARKS.md); for clients on other machines the server may use every
/// CPU.
pub fn auto_threads(addr: &SocketAddr) -> usize {
    auto_threads_for(addr.ip().is_loopback())
}

/// [`auto_threads`] by where the clients are: `local` for loopback and Unix sockets.
pub(crate) fn auto_threads_for(local: bool) -> usize {
    let cpus = crate::process::cpus();
    if local { (cpus / 2).max(1) } else { cpus }
}
