//! Top floor: argument parsing and printing only. Socket logic lives in the library.

mod hints;
mod signals;
#[cfg(socklab_sock_diag)]
mod states;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use socklab::echo::client::{self, ClientConfig};
use socklab::echo::{Event, Server, ServerConfig, Sink};
use socklab::resolve::resolve;

/// Sockets at the syscall level: the classic TCP echo server and client, with every kernel call visible.
#[derive(Debug, Parser)]
#[command(name = "socklab", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    narration: Narration,
}

/// Flags that work with every command: show the system calls as they happen.
#[derive(Debug, Args)]
struct Narration {
    /// Print each system call to stderr as strace would: name, arguments, result.
    #[arg(long, global = true)]
    trace: bool,
    /// Like --trace, with one sentence under each call saying what the kernel just did.
    #[arg(long, global = true)]
    explain: bool,
    /// Pause before each system call: Enter continues (or SIGUSR1 when stdin is not a terminal).
    #[arg(long, global = true)]
    step: bool,
    /// Timestamped narration for `socklab walkthrough` to merge (internal).
    #[arg(long, global = true, hide = true)]
    trace_machine: bool,
}

impl Narration {
    fn start(&self) -> io::Result<()> {
        if !(self.trace || self.explain || self.step || self.trace_machine) {
            return Ok(());
        }
        socklab::trace::start(socklab::trace::Options {
            explain: self.explain,
            step: self.step,
            machine: self.trace_machine,
        })
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The tutorial's echo server: socket, bind, listen, then accept and echo one client at a time.
    Server(ServerArgs),
    /// The tutorial's echo client: connect, send a message, read the echo back in chunks.
    Client(ClientArgs),
    /// Runs the server on a free port and the client against it, printing both sides.
    Demo,
    /// Server and client as two processes, their syscalls, the segments on lo and the socket
    /// states, in one timeline: the handshake, the accept queue, the data, the close, TIME-WAIT.
    ///
    /// Both processes' calls are always shown (--trace is implied; --explain adds the sentences;
    /// --step does not apply). Capturing segments needs CAP_NET_RAW (root, or setcap).
    #[cfg(all(socklab_af_packet, socklab_sock_diag))]
    Walkthrough(WalkthroughArgs),
    /// TCP sockets with their state and queues, like `ss -tan`, read through sock_diag.
    #[cfg(socklab_sock_diag)]
    States(StatesArgs),
}

#[derive(Debug, Args)]
struct WalkthroughArgs {
    /// The server's port (0: let the kernel choose a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// How long the server waits before calling accept, so the connection sits in the accept queue.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    accept_delay: Duration,
    /// One JSON object per event instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct StatesArgs {
    /// Only sockets with this local or remote port.
    #[arg(long)]
    port: Option<u16>,
    /// One JSON object per socket instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ServerArgs {
    /// Address to listen on: localhost, an IPv4 or an IPv6 address (e.g. ::1).
    #[arg(long, default_value = "localhost")]
    host: String,
    /// Port to listen on (0: let the kernel choose a free one).
    #[arg(long, default_value_t = 5000, allow_negative_numbers = true)]
    port: u16,
    /// listen(2) backlog: how many finished handshakes may wait for accept.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(i32).range(1..=65535))]
    backlog: i32,
    /// recv(2) buffer size in bytes: the most one recv returns.
    #[arg(long, default_value_t = 2048, value_parser = parse_buffer)]
    buffer: usize,
    /// Wait this long before each accept (e.g. 1s, 250ms), so a finished handshake visibly waits
    /// in the accept queue (watch it with `ss -tln` or `socklab states`).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    accept_delay: Duration,
    /// Print only the "listening" line (with the real port, for scripts using --port 0) and errors.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Debug, Args)]
struct ClientArgs {
    /// Server to connect to: localhost, an IPv4 or an IPv6 address, or a host name.
    #[arg(long, default_value = "localhost")]
    host: String,
    /// Server port.
    #[arg(long, default_value_t = 5000, allow_negative_numbers = true, value_parser = clap::value_parser!(u16).range(1..))]
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

/// Sizes from 1 byte to 64 MiB: larger recv buffers only waste memory.
fn parse_buffer(text: &str) -> Result<usize, String> {
    const MAX: usize = 64 << 20;
    let n: usize = text.parse().map_err(|_| format!("'{text}' is not a whole number of bytes"))?;
    if (1..=MAX).contains(&n) { Ok(n) } else { Err(format!("{n} is out of range: use 1 to {MAX} bytes")) }
}

/// `1s`, `250ms`, `1.5s`, or a bare number of seconds; at most one hour.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, scale) = if let Some(ms) = t.strip_suffix("ms") {
        (ms, 1e-3)
    } else if let Some(s) = t.strip_suffix('s') {
        (s, 1.0)
    } else {
        (t, 1.0)
    };
    let value: f64 = number.trim().parse().map_err(|_| format!("'{text}' is not a duration: use e.g. 1s or 250ms"))?;
    let secs = value * scale;
    if !(0.0..=3600.0).contains(&secs) {
        return Err(format!("'{text}' is out of range: use 0s to 3600s"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses, runs, and turns errors into a message and exit code 1 (clap exits 2 on bad usage).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Before any thread exists: step mode's signal mask must be inherited by all of them.
    // The walkthrough narrates its two child processes, not its own polling.
    #[cfg(all(socklab_af_packet, socklab_sock_diag))]
    let own = !matches!(cli.command, Command::Walkthrough(_));
    #[cfg(not(all(socklab_af_packet, socklab_sock_diag)))]
    let own = true;
    let started = if own { cli.narration.start() } else { Ok(()) };
    let result = started.and_then(|()| match cli.command {
        Command::Server(args) => server(args),
        Command::Client(args) => client(args),
        Command::Demo => demo(),
        #[cfg(all(socklab_af_packet, socklab_sock_diag))]
        Command::Walkthrough(args) => walkthrough(args, cli.narration.explain),
        #[cfg(socklab_sock_diag)]
        Command::States(args) => states::print(args.port, args.json),
    });
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

/// Prints events as the tutorial's lines. Quiet keeps only the "listening" line, which scripts
/// and test fixtures need to learn the port the kernel chose for `--port 0`.
fn printer(quiet: bool) -> Sink {
    if quiet {
        Arc::new(|event: &Event<'_>| {
            if let Event::Listening(_) = event {
                say(event)
            }
        })
    } else {
        Arc::new(|event: &Event<'_>| say(event))
    }
}

fn server(args: ServerArgs) -> io::Result<()> {
    let addr = *resolve(&args.host, args.port)?.first().ok_or_else(|| io::Error::other("no address"))?;
    if !addr.ip().is_loopback() && !args.quiet {
        let _ = writeln!(io::stderr(), "socklab: note: listening on {addr}, which is reachable from other machines");
    }
    let config = ServerConfig { addr, backlog: args.backlog, buffer: args.buffer, accept_delay: args.accept_delay };
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

#[cfg(all(socklab_af_packet, socklab_sock_diag))]
fn walkthrough(args: WalkthroughArgs, explain: bool) -> io::Result<()> {
    use socklab::walkthrough::{self, Config};
    let exe = std::env::current_exe()?;
    let config = Config { port: args.port, accept_delay: args.accept_delay, explain };
    let timeline = walkthrough::run(&exe, &config)?;
    if let Some(why) = &timeline.capture_error {
        let _ = writeln!(io::stderr(), "socklab: note: {why}; the rest of the walkthrough runs without segments");
    }
    let text = if args.json { timeline.json_lines() } else { timeline.text() };
    let _ = io::stdout().lock().write_all(text.as_bytes());
    Ok(())
}
