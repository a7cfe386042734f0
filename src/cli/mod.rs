//! Top floor: argument parsing and printing only. Socket logic lives in the library.

mod hints;
mod signals;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use socklab::echo::client::{self, ClientConfig};
use socklab::echo::{Event, Model, Server, ServerConfig, Sink, somaxconn};
use socklab::resolve::resolve;

/// Sockets at the syscall level: the classic TCP echo server and client, with every kernel call visible.
#[derive(Debug, Parser)]
#[command(name = "socklab", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The tutorial's echo server: socket, bind, listen, then accept and echo clients (one at a time
    /// unless --model says otherwise).
    Server(ServerArgs),
    /// The tutorial's echo client: connect, send a message, read the echo back in chunks.
    Client(ClientArgs),
    /// Runs the server on a free port and the client against it, printing both sides.
    Demo,
    /// Load generator: many connections against an echo server, every echoed byte checked.
    #[cfg(socklab_epoll)]
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
struct ServerArgs {
    /// Address to listen on: localhost, an IPv4 or an IPv6 address (e.g. ::1).
    #[arg(long, default_value = "localhost")]
    host: String,
    /// Port to listen on (0: let the kernel choose a free one).
    #[arg(long, default_value_t = 5000)]
    port: u16,
    /// How clients are served together: iterative (the tutorial's, one at a time), fork (a process
    /// per client), thread (a thread per client), poll (one thread, poll(2)), epoll (epoll(7)).
    #[arg(long, default_value = "iterative")]
    model: Model,
    /// listen(2) backlog: how many finished handshakes may wait for accept [default: 5, the
    /// tutorial's, for iterative; the kernel's somaxconn for the other models].
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=65535))]
    backlog: Option<i32>,
    /// recv(2) buffer size in bytes: the most one recv returns [default: 2048, the tutorial's;
    /// 65536 for poll and epoll, whose buffer is per thread, not per client].
    #[arg(long, value_parser = parse_buffer)]
    buffer: Option<usize>,
    /// epoll model: threads, each with its own epoll instance [default: one per CPU].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    threads: Option<u32>,
    /// The most clients served at once; more wait in the backlog [default: 1024 for thread,
    /// otherwise only the descriptor limit].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    max_conns: Option<u64>,
    /// Print nothing but errors.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Debug, Args)]
struct ClientArgs {
    /// Server to connect to: localhost, an IPv4 or an IPv6 address, or a host name.
    #[arg(long, default_value = "localhost")]
    host: String,
    /// Server port.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u16).range(1..))]
    port: u16,
    /// Message to send; `-` reads it from standard input (any bytes).
    #[arg(long, default_value = "Hello")]
    message: String,
    /// How many bytes each recv(2) asks for.
    #[arg(long, default_value_t = 10, value_parser = parse_buffer)]
    chunk: usize,
    /// Print nothing but errors.
    #[arg(long, short)]
    quiet: bool,
}

#[cfg(socklab_epoll)]
#[derive(Debug, Args)]
struct BenchArgs {
    /// The echo server: HOST:PORT (an IPv6 address in brackets: [::1]:5000).
    #[arg(long)]
    addr: String,
    /// pingpong (one message at a time, latency), bulk (streaming), connrate (connect, echo, close).
    #[arg(long, default_value = "pingpong")]
    mode: socklab::bench::Mode,
    /// Connections at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    conns: u32,
    /// Bytes per message (pingpong, connrate) or per write (bulk).
    #[arg(long, default_value_t = 64, value_parser = parse_buffer)]
    size: usize,
    /// Seconds of load (a grace period of up to 5 s for outstanding echoes follows).
    #[arg(long, default_value_t = 5.0, value_parser = parse_seconds)]
    duration: f64,
    /// Seed of the pseudo-random payload.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print one JSON object instead of the report (and no progress line).
    #[arg(long)]
    json: bool,
    /// Allow a target that is not a loopback address (a benchmark is a flood: be sure).
    #[arg(long)]
    allow_remote: bool,
}

#[cfg(socklab_epoll)]
fn parse_seconds(text: &str) -> Result<f64, String> {
    let s: f64 = text.parse().map_err(|_| format!("'{text}' is not a number of seconds"))?;
    if (0.01..=3600.0).contains(&s) { Ok(s) } else { Err(format!("{s} is out of range: use 0.01 to 3600 seconds")) }
}

/// Sizes from 1 byte to 64 MiB: larger recv buffers only waste memory.
fn parse_buffer(text: &str) -> Result<usize, String> {
    const MAX: usize = 64 << 20;
    let n: usize = text.parse().map_err(|_| format!("'{text}' is not a whole number of bytes"))?;
    if (1..=MAX).contains(&n) { Ok(n) } else { Err(format!("{n} is out of range: use 1 to {MAX} bytes")) }
}

/// Parses, runs, and turns errors into a message and exit code 1 (clap exits 2 on bad usage).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Server(args) => server(args),
        Command::Client(args) => client(args),
        Command::Demo => demo(),
        #[cfg(socklab_epoll)]
        Command::Bench(args) => bench(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let _ = writeln!(io::stderr(), "socklab: {}", hints::explain(&err));
            ExitCode::FAILURE
        }
    }
}

/// Writes a line to stdout, ignoring a closed pipe (printing must never kill the program).
fn say(line: &dyn std::fmt::Display) {
    let _ = writeln!(io::stdout().lock(), "{line}");
}

fn printer(quiet: bool) -> Sink {
    if quiet { Arc::new(|_: &Event<'_>| {}) } else { Arc::new(|event: &Event<'_>| say(event)) }
}

fn server(args: ServerArgs) -> io::Result<()> {
    let addr = *resolve(&args.host, args.port)?.first().ok_or_else(|| io::Error::other("no address"))?;
    if !addr.ip().is_loopback() && !args.quiet {
        let _ = writeln!(io::stderr(), "socklab: note: listening on {addr}, which is reachable from other machines");
    }
    let blocking = matches!(args.model, Model::Iterative | Model::Fork | Model::Thread);
    let config = ServerConfig {
        addr,
        backlog: args.backlog.unwrap_or(if args.model == Model::Iterative { 5 } else { somaxconn() }),
        buffer: args.buffer.unwrap_or(if blocking { 2048 } else { 65536 }),
        model: args.model,
        threads: args.threads.map_or(0, |n| n as usize),
        max_conns: args.max_conns.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
    };
    if args.model != Model::Iterative {
        // A soft limit of 1024 descriptors would cap the concurrent models at ~1000 clients.
        #[cfg(target_os = "linux")]
        socklab::limits::raise_open_files(None)?;
    }
    let server = Server::bind(config)?;
    // SIGINT / SIGTERM end the server cleanly: the listener is closed and the exit code is 0.
    signals::stop_on_signals(server.stop_handle())?;
    server.run(printer(args.quiet))
}

fn client(args: ClientArgs) -> io::Result<()> {
    let addrs: Vec<SocketAddr> = resolve(&args.host, args.port)?;
    let message = if args.message == "-" {
        let mut bytes = Vec::new();
        io::stdin().lock().read_to_end(&mut bytes)?;
        bytes
    } else {
        args.message.into_bytes()
    };
    let config = ClientConfig { addrs, message, chunk: args.chunk };
    client::run(&config, &printer(args.quiet)).map(drop)
}

fn demo() -> io::Result<()> {
    let addr = *resolve("localhost", 0)?.first().ok_or_else(|| io::Error::other("no loopback address"))?;
    let server = Server::bind(ServerConfig::new(addr))?.spawn(printer(false))?;
    let config = ClientConfig { addrs: vec![server.addr()], message: b"Hello".to_vec(), chunk: 10 };
    let result = client::run(&config, &printer(false));
    let stopped = server.stop();
    result?;
    stopped
}

#[cfg(socklab_epoll)]
fn bench(args: BenchArgs) -> io::Result<()> {
    use socklab::bench::{self, BenchConfig};
    use std::io::IsTerminal;
    use std::time::Duration;

    let (host, port) = args.addr.rsplit_once(':').ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("--addr {}: expected HOST:PORT", args.addr))
    })?;
    let port: u16 = port.parse().map_err(|_| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("--addr {}: '{port}' is not a port", args.addr))
    })?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addr = *resolve(host, port)?.first().ok_or_else(|| io::Error::other("no address"))?;
    if !addr.ip().is_loopback() && !args.allow_remote {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{addr} is not a loopback address; a benchmark floods its target, so pass --allow-remote if you mean it"
            ),
        ));
    }
    let config = BenchConfig {
        addr,
        mode: args.mode,
        conns: args.conns as usize,
        size: args.size,
        duration: Duration::from_secs_f64(args.duration),
        grace: bench::GRACE,
        seed: args.seed,
    };
    let live = !args.json && io::stderr().is_terminal();
    let mut progress = |p: &bench::Progress| {
        if live {
            let _ = write!(io::stderr(), "\r{p}");
        }
    };
    let report = bench::run(&config, &mut progress)?;
    if live {
        let _ = write!(io::stderr(), "\r\x1b[K");
    }
    if args.json {
        say(&report.to_json())
    } else {
        say(&report)
    }
    if report.is_correct() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "the echo was not byte-exact or nothing was served: {} mismatches, {} lost bytes, {} of {} connections served",
            report.mismatches, report.lost_bytes, report.served, report.conns
        )))
    }
}
