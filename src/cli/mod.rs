//! Top floor: argument parsing and printing only. Socket logic lives in the library.

#[cfg(all(socklab_epoll, socklab_sock_diag))]
mod check;
mod duration;
#[cfg(socklab_epoll)]
mod faults;
mod hints;
mod log;
mod signals;
#[cfg(socklab_sock_diag)]
mod states;

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use socklab::echo::client::{self, ClientConfig};
use socklab::echo::{Event, Model, Server, ServerConfig, Sink, Transport};
use socklab::process::SpawnCounted;
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

// The headings `--help` groups each command's flags under, in this order.
/// What the command listens on or connects to, and which socket family.
const SERVE: &str = "What to serve";
/// Where a client or the load generator connects.
const REACH: &str = "What to reach";
/// `states`: which sockets to list.
const WHICH: &str = "Which sockets";
/// How the work is done: the model, the message, the queue.
const HOW: &str = "How";
/// Time and resource bounds.
const LIMITS: &str = "Limits";
/// What is printed or written, and in which form.
const OUTPUT: &str = "Output";
/// The system calls, as they happen.
const OBSERVING: &str = "Observing";
/// `netns`: the link between the namespaces, and the peer in side B.
const LINK: &str = "The link";
const PEER: &str = "The peer (side B)";

/// Flags that work with every command: show the system calls as they happen.
#[derive(Debug, Args)]
struct Narration {
    /// Print each system call to stderr as strace would: name, arguments, result.
    #[arg(long, global = true, help_heading = OBSERVING)]
    trace: bool,
    /// Like --trace, with one sentence under each call saying what the kernel just did.
    #[arg(long, global = true, help_heading = OBSERVING)]
    explain: bool,
    /// Pause before each system call: Enter continues (or SIGUSR1 when stdin is not a terminal).
    #[arg(long, global = true, help_heading = OBSERVING)]
    step: bool,
    /// Timestamped narration for `socklab walkthrough` to merge (internal).
    #[arg(long, global = true, hide = true)]
    trace_machine: bool,
}

impl Narration {
    /// The global flags are refused where they would do nothing, rather than silently ignored.
    fn applies_to(&self, command: &Command) -> Result<(), UsageError> {
        let refuse = |arg: &'static str, why: &str| {
            let source = io::Error::new(io::ErrorKind::InvalidInput, why.to_string());
            Err(UsageError { arg, source, not_applicable: true })
        };
        match command {
            #[cfg(all(socklab_af_packet, socklab_sock_diag))]
            Command::Walkthrough(_) if self.step => refuse(
                "--step",
                "the walkthrough runs its server and client as two processes and does not pause them; to step through the calls, run `socklab server --step` and `socklab client` in two terminals",
            ),
            Command::Completions(_) | Command::Man(_) if self.trace || self.explain || self.step => refuse(
                if self.step {
                    "--step"
                } else if self.explain {
                    "--explain"
                } else {
                    "--trace"
                },
                "this command only prints text it generates, it makes no socket calls to show; drop the flag",
            ),
            _ => Ok(()),
        }
    }

    fn start(&self) -> io::Result<()> {
        if !(self.trace || self.explain || self.step || self.trace_machine) {
            return Ok(());
        }
        let options = socklab::trace::Options { explain: self.explain, step: self.step, machine: self.trace_machine };
        socklab::trace::start(options, Box::new(io::stderr()))
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The tutorial's echo server: socket, bind, listen, then accept and echo clients (one at a time
    /// unless --model says otherwise).
    ///
    /// The first line, `Server start, listening PORT (on ADDR)`, is stable for scripts; so are
    /// --ready-file and --json.
    ///
    /// Without --model and the flags that say "adds to the strace", it is the tutorial's server
    /// under `strace -f`: one thread, the tutorial's calls, SO_REUSEADDR, and Ctrl-C handled as a
    /// C server does (a handler without SA_RESTART; the blocked accept returns EINTR).
    #[command(after_long_help = FAULT_HELP)]
    Server(ServerArgs),
    /// The tutorial's echo client: connect, send a message, read the echo back in chunks.
    Client(ClientArgs),
    /// Runs the server on a free port and the client against it, printing both sides.
    Demo,
    /// Descriptor passing: this process accepts a TCP connection and hands it over a socketpair
    /// (sendmsg with SCM_RIGHTS) to a forked worker process, which serves the echo.
    ///
    /// Under strace each printed line is a poll of stdout with a zero timeout, then one write:
    /// a line that does not fit at once is dropped, so a stdout nobody reads never stops service.
    PassFd(PassFdArgs),
    /// Server and client as two processes, their syscalls, the segments on lo and the socket
    /// states, in one timeline: the handshake, the accept queue, the data, the close, TIME-WAIT.
    ///
    /// Both processes' calls are always shown (--trace is implied; --explain adds the sentences;
    /// --step does not apply). Capturing segments needs CAP_NET_RAW (root, or setcap).
    #[cfg(all(socklab_af_packet, socklab_sock_diag))]
    Walkthrough(WalkthroughArgs),
    /// Draws a session saved with `socklab walkthrough --json` as a sequence diagram: in the
    /// terminal, or as SVG with --svg.
    #[cfg(all(socklab_af_packet, socklab_sock_diag))]
    Draw(DrawArgs),
    /// TCP sockets with their state and queues, like `ss -tan`, read through sock_diag.
    #[cfg(socklab_sock_diag)]
    States(StatesArgs),
    /// Load generator: many connections against an echo server, every echoed byte checked.
    #[cfg(socklab_epoll)]
    Bench(BenchArgs),
    /// A TCP proxy that injects faults: put it between a client and a real service in a test.
    ///
    /// Prints `Proxy listening PORT (on ADDR), forwarding to UPSTREAM` first (a stable line), runs
    /// until SIGINT or SIGTERM, then prints what it counted.
    ///
    /// With --api ADDR it serves Toxiproxy's HTTP API instead (a drop-in for toxiproxy-server:
    /// `socklab proxy --api 127.0.0.1:8474`), and its client libraries create the proxies and
    /// toxics; see docs/toxiproxy.md.
    #[cfg(socklab_epoll)]
    #[command(after_long_help = FAULT_HELP)]
    Proxy(ProxyArgs),
    /// Runs a command in a network namespace joined to a second one by a veth link, made lossy,
    /// slow, blackholed or unplugged: the faults a proxy cannot make. Needs root.
    ///
    /// Side A (the command) is 10.77.0.1, side B (--peer) 10.77.0.2; both get SOCKLAB_NETNS_ADDR
    /// (their own) and SOCKLAB_NETNS_PEER (the other's). Everything is removed afterwards. Exits
    /// with the command's exit code.
    ///
    /// Example: socklab netns --link loss=5% --link rate=1mbit --peer 'socklab server --host
    /// 10.77.0.2 --port 5000 --model thread' --peer-port 5000 -- socklab client --host 10.77.0.2
    #[cfg(socklab_epoll)]
    Netns(NetnsArgs),
    /// A conformance and robustness suite for any echo server: 31 cases (echo, close, load,
    /// family, process) pointed at --addr, --unix or a --spawn'ed command; each passes, fails
    /// (with a lesson and the man page to read) or is informational. Exit 0: no case failed; 1:
    /// some did; 2: bad usage.
    ///
    /// First use: socklab check --spawn './a.out {port}'
    #[cfg(all(socklab_epoll, socklab_sock_diag))]
    Check(check::CheckArgs),
    /// Serves netfilter queue N in this network namespace: packets an `NFQUEUE --queue-num N`
    /// firewall rule hands over are let through, dropped, held back or copied as the flags say,
    /// and each fault applied is printed. Needs root. Stops on Ctrl-C or after --for.
    ///
    /// Example: ip netns exec NS iptables-legacy -A OUTPUT -p tcp -j NFQUEUE --queue-num 0; ip netns
    /// exec NS socklab nfqueue --drop syn#1
    #[cfg(socklab_epoll)]
    Nfqueue(faults::NfqueueArgs),
    /// Prints a completion script for SHELL, made from the same definitions as --help.
    ///
    /// bash: `source <(socklab completions bash)`, or save it as
    /// /usr/share/bash-completion/completions/socklab. zsh: save it as `_socklab` in a directory
    /// of $fpath. fish: save it as ~/.config/fish/completions/socklab.fish.
    Completions(CompletionsArgs),
    /// Prints the manual page, made from the same definitions as --help: `socklab man >
    /// socklab.1; man ./socklab.1`. With --dir, writes socklab.1 and one page per command
    /// (socklab-server.1, ...) into DIR.
    Man(ManArgs),
}

#[derive(Debug, Args)]
struct CompletionsArgs {
    /// bash, zsh or fish.
    shell: Shell,
}

/// The shells `socklab completions` writes for.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
struct ManArgs {
    /// Write socklab.1 and socklab-COMMAND.1 for every command into this directory instead of
    /// printing socklab.1.
    #[arg(long, value_name = "DIR", help_heading = OUTPUT)]
    dir: Option<PathBuf>,
}

#[cfg(socklab_epoll)]
#[derive(Debug, Args)]
struct NetnsArgs {
    /// A link condition (repeatable): loss=5% (each way, nftables), rate=1mbit (tbf), delay=50ms
    /// or delay=50ms~10ms (each way, held by socklab's packet queue: no netem needed), blackhole
    /// (SYNs to side B dropped: connect times out), unplug (every packet dropped).
    #[arg(long, value_name = "CONDITION", help_heading = LINK)]
    link: Vec<socklab::netns::Condition>,
    #[command(flatten)]
    faults: faults::QueueFaults,
    /// Pull the cable this long after the command started (e.g. 2s): open connections see only
    /// their own retransmissions.
    #[arg(long, value_name = "DURATION", value_parser = duration::limit, help_heading = LINK)]
    unplug_after: Option<Duration>,
    /// A shell command to run in side B first (a server); it is stopped when the command ends.
    #[arg(long, value_name = "SHELL COMMAND", help_heading = PEER)]
    peer: Option<String>,
    /// Start the command only once something in side B listens on this TCP port (at most 10 s).
    #[arg(long, value_name = "PORT", help_heading = PEER)]
    peer_port: Option<u16>,
    /// The command to run in side A, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<std::ffi::OsString>,
}

/// The fault syntax, shown under `--help` of `server` and `proxy`.
const FAULT_HELP: &str = "\
Faults (--fault, repeatable): [DIRECTION:]NAME[=ARGS][@PERCENT%]
  DIRECTION  downstream (server -> client; the default), upstream (client -> server), both
  latency=50ms[~10ms]      each chunk waits 50 ms (+- up to 10 ms of jitter)
  bandwidth=10kb           at most 10,000 bytes a second
  slicer=10b[~5b][:2ms]    cut into slices of 10 bytes (+- 5), 2 ms apart (short reads)
  limit_data=1kb           close the connection after 1,000 bytes
  reset_peer[=100ms]       RST (SO_LINGER 0, then close) that long after accept
  reset_peer=after=1kb     ... or after 1,000 bytes
  timeout[=1s]             forward nothing; close after 1s, or when that side closes (none or 0: no clock)
  slow_close=500ms         pass the FIN on 500 ms late
  half_open                stop reading and writing, keep the connection (a cut cable) until both peers have gone
  refuse                   stop accepting: connections wait in the backlog until it fills
  @25%                     only a quarter of the connections get the fault
Sizes: b, kb (1000), kib (1024), mb, mib. Durations: us, ms, s, m, h.
Examples: --fault latency=50ms --fault slicer=10b:2ms --fault downstream:reset_peer=after=1kb";

#[cfg(socklab_epoll)]
#[derive(Debug, Args)]
struct ProxyArgs {
    /// Where to listen: HOST:PORT (port 0: the kernel picks one; an IPv6 address in brackets).
    #[arg(long, default_value = "127.0.0.1:0", help_heading = SERVE)]
    listen: String,
    /// Where to forward: HOST:PORT (not with --api, whose clients name each proxy's upstream).
    #[arg(long, required_unless_present = "api", conflicts_with = "api", help_heading = SERVE)]
    upstream: Option<String>,
    /// Serve Toxiproxy's HTTP API on HOST:PORT (Toxiproxy's port is 8474): proxies and toxics
    /// are made and changed by its clients while it runs. Prints `Toxiproxy API listening PORT
    /// (on ADDR)` first.
    #[arg(long, value_name = "HOST:PORT", help_heading = SERVE)]
    api: Option<String>,
    /// With --api: Toxiproxy's JSON config file (an array of {"name", "listen", "upstream",
    /// "enabled"}), its proxies made before the API answers.
    #[arg(long, value_name = "FILE", requires = "api", conflicts_with = "upstream", help_heading = SERVE)]
    config: Option<PathBuf>,
    /// A fault to inject (repeatable); the syntax is below.
    #[arg(long, value_name = "SPEC", value_parser = parse_fault, help_heading = SERVE)]
    fault: Vec<socklab::fault::Fault>,
    /// listen(2) backlog: with `refuse`, how many connections the kernel completes before it
    /// ignores SYNs.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(i32).range(1..=65535), help_heading = HOW)]
    backlog: i32,
    /// Once listening and its loop set up, write the bound address and a newline to PATH
    /// (atomically, as `server`).
    #[arg(long, value_name = "PATH", help_heading = OUTPUT)]
    ready_file: Option<PathBuf>,
    /// JSON lines instead of text: `listening` (with `upstream`), then `stopped` with the counts.
    #[arg(long, help_heading = OUTPUT)]
    json: bool,
}

#[cfg(socklab_epoll)]
fn parse_fault(text: &str) -> Result<socklab::fault::Fault, String> {
    text.parse().map_err(|e: socklab::fault::SpecError| e.to_string())
}

#[derive(Debug, Args)]
struct WalkthroughArgs {
    /// The address the server listens on: 127.0.0.1, ::1 (the IPv6 handshake), or a wildcard
    /// (0.0.0.0, ::); loopback or wildcard only, the capture watches lo.
    #[arg(long, default_value = "127.0.0.1", value_parser = parse_walkthrough_host, help_heading = SERVE)]
    host: IpAddr,
    /// The address the client connects to, a loopback address [default: --host; for a wildcard
    /// --host, its family's loopback]. With `--host :: --connect 127.0.0.1` the IPv4 client
    /// reaches a dual-stack listener and the server's sockets show it as ::ffff:127.0.0.1.
    #[arg(long, value_parser = parse_walkthrough_connect, help_heading = SERVE)]
    connect: Option<IpAddr>,
    /// The server's IPV6_V6ONLY for an IPv6 --host (on, off) [default: the system's].
    #[arg(long, value_name = "on|off", value_parser = parse_on_off, help_heading = SERVE)]
    v6only: Option<bool>,
    /// The server's port (0: let the kernel choose a free one).
    #[arg(long, default_value_t = 0, help_heading = SERVE)]
    port: u16,
    /// How long the server waits before calling accept, so the connection sits in the accept queue
    /// [default: 1s; 0s with --clients].
    #[arg(long, value_name = "DURATION", value_parser = duration::delay, help_heading = HOW)]
    accept_delay: Option<Duration>,
    /// The second story: N clients at once against the iterative server with listen(5), held
    /// stopped until its accept queue is full (backlog + 1 on Linux): dropped SYNs, SYN cookies,
    /// resets, and the kernel's TcpExt counters before and after.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=500), help_heading = HOW)]
    clients: Option<u32>,
    /// TCP on a bad link, one story (needs root): syn-lost, synack-lost, data-lost,
    /// fast-retransmit, zero-window, fin-lost, reorder, duplicate. Client and server run in two
    /// network namespaces; socklab's packet queue drops, holds back or copies one segment; the
    /// capture on the link, tcp_info samples and the kernel's counters show what TCP did about it.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["clients", "connect", "v6only", "accept_delay"], help_heading = HOW)]
    scenario: Option<socklab::walkthrough::scenario::Scenario>,
    /// With --clients: the longest the whole run may take; clients still running then are killed
    /// [default: 60s].
    #[arg(long, value_name = "DURATION", requires = "clients", value_parser = duration::delay, help_heading = LIMITS)]
    time_limit: Option<Duration>,
    /// One JSON object per event instead of text (save it: `socklab draw FILE` draws it later).
    #[arg(long, help_heading = OUTPUT)]
    json: bool,
    /// Every call both processes make, socklab's own too (the signal handlers' rt_sigaction),
    /// not only the tutorial's.
    #[arg(long, conflicts_with_all = ["clients", "scenario"], help_heading = OUTPUT)]
    all: bool,
    /// After the timeline, a sequence diagram: client and server lifelines, the captured segments
    /// as arrows, the calls and observed socket states beside them (100 columns).
    #[arg(long, help_heading = OUTPUT)]
    diagram: bool,
    /// With --diagram: draw it with ASCII only (default: Unicode box drawing; the SVG is not
    /// affected).
    #[arg(long, requires = "diagram", help_heading = OUTPUT)]
    ascii: bool,
    /// Also write the diagram as a standalone SVG picture to FILE.
    #[arg(long, value_name = "FILE", help_heading = OUTPUT)]
    svg: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct DrawArgs {
    /// A session saved with `socklab walkthrough --json > FILE` (`-`: standard input).
    session: PathBuf,
    /// Write the diagram as SVG to OUT instead of printing it.
    #[arg(long, value_name = "OUT", help_heading = OUTPUT)]
    svg: Option<PathBuf>,
    /// Draw with ASCII only (default: Unicode box drawing); not with --svg.
    #[arg(long, conflicts_with = "svg", help_heading = OUTPUT)]
    ascii: bool,
}

#[derive(Debug, Args)]
struct PassFdArgs {
    /// Address to listen on.
    #[arg(long, default_value = "localhost", help_heading = SERVE)]
    host: String,
    /// Port to listen on (0: a free one).
    #[arg(long, default_value_t = 0, help_heading = SERVE)]
    port: u16,
    /// Wait for outside clients (e.g. `socklab client`) instead of running one built-in client.
    #[arg(long, help_heading = HOW)]
    external: bool,
    /// How many connections to accept and hand over before ending.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000), help_heading = HOW)]
    count: u32,
    /// Write the listening address and a newline to PATH once listening.
    #[arg(long, value_name = "PATH", help_heading = OUTPUT)]
    ready_file: Option<PathBuf>,
}

/// Which socket: TCP by default; UDP; or a Unix socket (stream, seqpacket, datagram).
#[derive(Debug, Args)]
struct FamilyArgs {
    /// A Unix domain socket at PATH instead of TCP (`@NAME`: the Linux abstract namespace, no
    /// file). --host and --port are then unused.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["host", "port"])]
    unix: Option<String>,
    /// With --unix: SOCK_SEQPACKET (messages with boundaries) instead of SOCK_STREAM.
    #[arg(long, requires = "unix", conflicts_with = "dgram")]
    seqpacket: bool,
    /// With --unix: SOCK_DGRAM (datagrams, no connection).
    #[arg(long, requires = "unix")]
    dgram: bool,
    /// UDP instead of TCP: a datagram echo with recvfrom/sendto.
    #[arg(long, conflicts_with = "unix")]
    udp: bool,
}

impl FamilyArgs {
    fn transport(&self) -> io::Result<Transport> {
        let Some(name) = &self.unix else {
            return Ok(if self.udp { Transport::Udp } else { Transport::Tcp });
        };
        let addr = socklab::unix::unix_addr(name).map_err(|e| usage("--unix", e))?;
        Ok(if self.dgram {
            Transport::UnixDgram(addr)
        } else if self.seqpacket {
            Transport::Unix(addr, socklab::UnixKind::Seqpacket)
        } else {
            Transport::Unix(addr, socklab::UnixKind::Stream)
        })
    }
}

/// The walkthrough's `--host`: an IP address, loopback or wildcard (it captures on lo only).
fn parse_walkthrough_host(text: &str) -> Result<IpAddr, String> {
    let ip: IpAddr = text
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| format!("'{text}' is not an IP address: use 127.0.0.1, ::1, 0.0.0.0 or ::"))?;
    if ip.is_loopback() || ip.is_unspecified() {
        Ok(ip)
    } else {
        Err(format!("{ip} is neither a loopback nor a wildcard address: the walkthrough captures on lo only"))
    }
}

/// The walkthrough's `--connect`: a loopback IP address.
fn parse_walkthrough_connect(text: &str) -> Result<IpAddr, String> {
    match parse_walkthrough_host(text)? {
        ip if ip.is_loopback() => Ok(ip),
        ip => Err(format!("{ip} is a wildcard: connect to a loopback address (127.0.0.1 or ::1)")),
    }
}

/// `--v6only on|off`.
fn parse_on_off(text: &str) -> Result<bool, String> {
    match text {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("'{text}' is neither on nor off")),
    }
}

#[derive(Debug, Args)]
struct StatesArgs {
    /// Only sockets with this local or remote port.
    #[arg(long, help_heading = WHICH)]
    port: Option<u16>,
    /// Only IPv4 sockets (like `ss -4`).
    #[arg(long, short = '4', conflicts_with = "ipv6", help_heading = WHICH)]
    ipv4: bool,
    /// Only IPv6 sockets (like `ss -6`), IPv4-mapped peers of a dual-stack listener included.
    #[arg(long, short = '6', help_heading = WHICH)]
    ipv6: bool,
    /// One JSON object per socket instead of a table.
    #[arg(long, help_heading = OUTPUT)]
    json: bool,
}

#[derive(Debug, Args)]
struct ServerArgs {
    /// Address to listen on: localhost, an IPv4 or an IPv6 address (e.g. ::1).
    #[arg(long, default_value = "localhost", help_heading = SERVE)]
    host: String,
    /// Port to listen on (0: let the kernel choose a free one).
    #[arg(long, default_value_t = 5000, allow_negative_numbers = true, help_heading = SERVE)]
    port: u16,
    /// How clients are served together: iterative (the tutorial's, one at a time), fork (a process
    /// per client), thread (a thread per client), poll (one thread, poll(2)), epoll (epoll(7)),
    /// uring (io_uring(7): recvs and sends submitted to the kernel in batches).
    #[arg(long, default_value = "iterative", help_heading = HOW)]
    model: Model,
    /// listen(2) backlog: how many finished handshakes may wait for accept [default: 5, the
    /// tutorial's, for iterative; the kernel's somaxconn for the other models].
    #[arg(long, allow_negative_numbers = true, value_parser = clap::value_parser!(i32).range(1..=65535), help_heading = HOW)]
    backlog: Option<i32>,
    /// recv(2) buffer size in bytes: the most one recv returns [default: 2048, the tutorial's;
    /// 262144 for poll and epoll, whose buffer is per thread, not per client; 65536 for uring: the
    /// size of each provided buffer in its 4 MiB pool per thread (4096 before Linux 6.12, where each
    /// recv uses up a whole buffer; from 6.16 one recv may fill several, up to 256 KiB); for
    /// datagrams (--udp, --dgram) 2048 in every model, and a longer datagram is cut there and the
    /// cut reported].
    #[arg(long, allow_negative_numbers = true, value_parser = parse_buffer, help_heading = HOW)]
    buffer: Option<usize>,
    /// epoll and uring models: threads, each with its own epoll or io_uring instance: N (1 to 1024)
    /// or auto [default: auto: one per CPU; on a loopback address or a Unix socket half the CPUs
    /// (at least 1), leaving the others to the clients, which then run on this machine too].
    #[arg(long, value_name = "auto|N", allow_negative_numbers = true, value_parser = parse_threads, help_heading = HOW)]
    threads: Option<usize>,
    /// The most clients served at once; more wait in the listen queue until one ends [default:
    /// 1024 for thread, otherwise only the descriptor limit].
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = clap::value_parser!(u64).range(1..=1_000_000), help_heading = LIMITS)]
    max_conns: Option<u64>,
    /// Close a connection idle (no byte received, no send progress) for this long: 500ms, 30s, 5m.
    /// Adds to the strace: setsockopt SO_RCVTIMEO/SO_SNDTIMEO per connection, and the threads of
    /// the stop machinery (see --ready-file).
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, value_parser = duration::limit, help_heading = LIMITS)]
    idle_timeout: Option<Duration>,
    /// Close a connection this long after accept, even if it keeps dribbling bytes: 500ms, 30s, 5m.
    /// Adds to the strace: setsockopt SO_RCVTIMEO/SO_SNDTIMEO before each recv and send, and the
    /// threads of the stop machinery (see --ready-file).
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, value_parser = duration::limit, help_heading = LIMITS)]
    max_conn_time: Option<Duration>,
    /// Test hook: a SIGALRM every DURATION, with a do-nothing handler and no SA_RESTART, so every
    /// blocking call is interrupted (EINTR) again and again. Hidden from --help.
    #[arg(long, value_name = "DURATION", value_parser = duration::limit, hide = true)]
    interrupt_every: Option<Duration>,
    #[command(flatten, next_help_heading = SERVE)]
    family: FamilyArgs,
    /// With --unix PATH: remove a stale socket file at PATH before binding (only a socket file;
    /// anything else is refused).
    #[arg(long, requires = "unix", help_heading = SERVE)]
    unlink: bool,
    /// IPV6_V6ONLY, set before bind on an IPv6 address: off makes a listener on :: dual-stack
    /// (IPv4 clients show up as ::ffff:a.b.c.d), on refuses IPv4 [default: the system's,
    /// net.ipv6.bindv6only].
    #[arg(long, value_name = "on|off", value_parser = parse_on_off, help_heading = SERVE)]
    v6only: Option<bool>,
    /// Wait this long before each accept (e.g. 1s, 250ms), so a finished handshake visibly waits
    /// in the accept queue (watch it with `ss -tln` or `socklab states`). Adds to the strace, per
    /// client: a poll of the listener (wait for the handshake) and a poll with no descriptor (the
    /// wait itself).
    #[arg(long, value_name = "DURATION", default_value = "0s", allow_hyphen_values = true, value_parser = duration::delay, help_heading = HOW)]
    accept_delay: Duration,
    /// UDP: answer each source (address and port) at most N times a second (e.g. 1000/s); the
    /// rest go unanswered and are counted (`Server Drop`, the stop's summary). A UDP echo answers
    /// whatever source a datagram claims, so one forged datagram can make two echo servers answer
    /// each other for ever; a limit ends that loop. Default: no limit. Adds nothing to the strace.
    #[arg(long, value_name = "N/s", value_parser = parse_rate, help_heading = LIMITS)]
    udp_rate: Option<u32>,
    /// Print only the listening line (it has the port) and errors.
    #[arg(long, short, help_heading = OUTPUT)]
    quiet: bool,
    /// Once the server is listening and every loop has set up (its epoll instances, rings,
    /// signalfd: the descriptors it then holds are its idle set), write its bound address and a
    /// newline (e.g. `127.0.0.1:43211`) to PATH: the machine-readable way for scripts and CI to
    /// learn the port chosen with --port 0.
    /// Written to a new file of a random name beside PATH (O_EXCL|O_NOFOLLOW), then renamed, so PATH
    /// never holds half a line and a link planted beside it is never written through. Adds to the
    /// strace: openat/write/close/rename of the file, and the machinery a server run by a script
    /// needs: a log thread (so a stdout nobody reads never stalls the service: fcntl F_DUPFD_CLOEXEC
    /// of stdout, its writes, futex), a signal thread (SIGINT/SIGTERM blocked with rt_sigprocmask and
    /// read from a signalfd4, a socketpair to end it; the stop shuts the listener down) and a
    /// grace-period thread (clone3, mmap, futex for each).
    #[arg(long, value_name = "PATH", help_heading = OUTPUT)]
    ready_file: Option<PathBuf>,
    /// On SIGINT/SIGTERM: accept nothing more at once, let open connections finish their echo
    /// (their clients close) for at most this long, then close the rest; a second signal stops at
    /// once. 0s: stop at once. The log says how many connections were finished and how many cut.
    /// The tutorial's server times it with the served connection's SO_RCVTIMEO/SO_SNDTIMEO, set
    /// only after the signal.
    #[arg(long, value_name = "DURATION", default_value = "5s", allow_hyphen_values = true, value_parser = duration::delay, help_heading = LIMITS)]
    grace: Duration,
    /// One JSON object per event instead of text: listening, accepted, data, closed, error,
    /// stopped (see the README's "Use in CI"). Adds to the strace: the log, signal and grace
    /// threads (see --ready-file).
    #[arg(long, help_heading = OUTPUT)]
    json: bool,
    /// A fault to inject (repeatable; syntax under --help): clients then reach the echo server
    /// through a fault proxy listening on --host/--port. Adds to the strace: the proxy's threads,
    /// sockets and epoll calls, and the log, signal and grace threads (see --ready-file).
    #[cfg(socklab_epoll)]
    #[arg(long, value_name = "SPEC", value_parser = parse_fault, help_heading = SERVE)]
    fault: Vec<socklab::fault::Fault>,
}

#[derive(Debug, Args)]
struct ClientArgs {
    /// Server to connect to: localhost, an IPv4 or an IPv6 address, or a host name.
    #[arg(long, default_value = "localhost", help_heading = REACH)]
    host: String,
    /// Server port.
    #[arg(long, default_value_t = 5000, allow_negative_numbers = true, value_parser = clap::value_parser!(u16).range(1..), help_heading = REACH)]
    port: u16,
    /// Message to send; `-` streams standard input (any bytes), as nc does: each chunk is sent
    /// as it is read while the echo comes back, and at its end the client sends its FIN
    /// (SHUT_WR) and reads to the server's (over UDP, --dgram, --seqpacket and with --tutorial,
    /// stdin is read whole first, as one message).
    #[arg(long, default_value = "Hello", help_heading = HOW)]
    message: String,
    /// How many bytes each recv(2) asks for (over UDP, --dgram and --seqpacket: the one buffer
    /// the whole echo must fit in).
    #[arg(long, default_value_t = 10, allow_negative_numbers = true, value_parser = parse_buffer, help_heading = HOW)]
    chunk: usize,
    #[command(flatten, next_help_heading = REACH)]
    family: FamilyArgs,
    /// Give up when the connection, or any send or recv, makes no progress for this long (a
    /// server that accepts and never answers, a full accept queue): 500ms, 30s, 5m.
    #[arg(long, value_name = "DURATION", default_value = "10s", allow_hyphen_values = true, value_parser = duration::limit, help_heading = LIMITS)]
    timeout: Duration,
    /// Make exactly the tutorial's calls: socket, connect, send, recv(10)..., close. No --timeout
    /// socket options (a server that never answers makes it wait for ever, as the tutorial's client
    /// would) and no end-of-stream check after the echo (extra bytes go unnoticed).
    #[arg(long, conflicts_with = "timeout", help_heading = HOW)]
    tutorial: bool,
    /// Write the echo's bytes to stdout as they arrive, unchanged and nothing else (the human
    /// lines go to stderr), as nc does: `socklab client --message - --raw < f | cmp - f`.
    #[arg(long, conflicts_with = "json", help_heading = OUTPUT)]
    raw: bool,
    /// Print nothing but errors.
    #[arg(long, short, help_heading = OUTPUT)]
    quiet: bool,
    /// One JSON object per event instead of text: connected, data (out, then in), closed, error.
    #[arg(long, help_heading = OUTPUT)]
    json: bool,
}

#[cfg(socklab_epoll)]
#[derive(Debug, Args)]
struct BenchArgs {
    /// The echo server: HOST:PORT (an IPv6 address in brackets: [::1]:5000).
    #[arg(long, help_heading = REACH)]
    addr: String,
    /// pingpong (one message at a time, latency), bulk (streaming), connrate (connect, echo, close).
    #[arg(long, default_value = "pingpong", help_heading = HOW)]
    mode: socklab::bench::Mode,
    /// Connections at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1_000_000), help_heading = HOW)]
    conns: u32,
    /// Bytes per message (pingpong, connrate) or per write (bulk).
    #[arg(long, default_value_t = 64, value_parser = parse_buffer, help_heading = HOW)]
    size: usize,
    /// How long to load the server: 500ms, 10s, 1m (a bare number is seconds); a grace period
    /// of up to 5 s for outstanding echoes follows.
    #[arg(long, value_name = "DURATION", default_value = "5s", allow_hyphen_values = true, value_parser = duration::load, help_heading = LIMITS)]
    duration: Duration,
    /// Seed of the pseudo-random payload.
    #[arg(long, default_value_t = 1, help_heading = HOW)]
    seed: u64,
    /// Print one JSON object instead of the report (and no progress line).
    #[arg(long, help_heading = OUTPUT)]
    json: bool,
    /// Allow a target that is not a loopback address (a benchmark is a flood: be sure).
    #[arg(long, help_heading = REACH)]
    allow_remote: bool,
    /// Count the system calls of this process as the server's (repeatable). Default: the
    /// processes listening at --addr, found in /proc. Counting needs root (or CAP_PERFMON).
    #[arg(long = "server-pid", value_name = "PID", help_heading = OUTPUT)]
    server_pids: Vec<i32>,
}

/// Sizes from 1 byte to 64 MiB: larger recv buffers only waste memory.
fn parse_buffer(text: &str) -> Result<usize, String> {
    const MAX: usize = 64 << 20;
    let n: usize = text.parse().map_err(|_| format!("'{text}' is not a whole number of bytes"))?;
    if (1..=MAX).contains(&n) { Ok(n) } else { Err(format!("{n} is out of range: use 1 to {MAX} bytes")) }
}

/// `--threads`: `auto` (0 in [`ServerConfig::threads`]) or 1 to 1024.
fn parse_threads(text: &str) -> Result<usize, String> {
    if text == "auto" {
        return Ok(0);
    }
    match text.parse::<usize>() {
        Ok(n @ 1..=1024) => Ok(n),
        _ => Err(format!("'{text}' is not auto or a number of threads from 1 to 1024")),
    }
}

/// Parses, runs, and turns errors into one line on stderr and an exit status: 2 for bad usage (what
/// clap rejects, and hosts that do not parse or resolve), 1 when the run itself fails.
pub fn main() -> u8 {
    let code = run();
    // std's `fn main` wrapper flushes stdout at exit; entered as C's `main`, socklab does it.
    let _ = io::stdout().flush();
    code
}

fn run() -> u8 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_exit(err),
    };
    if let Err(err) = cli.narration.applies_to(&cli.command) {
        let _ = writeln!(io::stderr(), "socklab: {}", err);
        return 2;
    }
    // Before any thread exists: step mode's signal mask must be inherited by all of them.
    // The walkthrough narrates its two child processes, not its own polling.
    #[cfg(all(socklab_af_packet, socklab_sock_diag))]
    let own = !matches!(cli.command, Command::Walkthrough(_));
    #[cfg(not(all(socklab_af_packet, socklab_sock_diag)))]
    let own = true;
    let started = if own { cli.narration.start() } else { Ok(()) };
    // A write to a closed pipe returns EPIPE instead of killing the process (std's wrapper does
    // this before `main`; socklab's entry skips that wrapper, so it does it here, narrated). Sends
    // on sockets pass MSG_NOSIGNAL anyway; this covers stdout/stderr piped into `head`.
    let started = started.and_then(|()| {
        socklab::process::set_disposition(socklab::process::SIGPIPE, socklab::process::Disposition::Ignore).map(drop)
    });
    let result = started.and_then(|()| match cli.command {
        Command::Server(args) => server(args),
        Command::Client(args) => client(args),
        Command::Demo => demo(),
        Command::PassFd(args) => pass_fd(args),
        #[cfg(all(socklab_af_packet, socklab_sock_diag))]
        Command::Walkthrough(args) => walkthrough(args, cli.narration.explain),
        #[cfg(all(socklab_af_packet, socklab_sock_diag))]
        Command::Draw(args) => draw(args),
        #[cfg(socklab_sock_diag)]
        Command::States(args) => {
            let family = match (args.ipv4, args.ipv6) {
                (true, _) => Some(libc::AF_INET),
                (_, true) => Some(libc::AF_INET6),
                _ => None,
            };
            states::print(args.port, family, args.json)
        }
        #[cfg(socklab_epoll)]
        Command::Bench(args) => bench(args),
        #[cfg(socklab_epoll)]
        Command::Proxy(args) => proxy(args),
        #[cfg(socklab_epoll)]
        Command::Netns(args) => netns(args),
        #[cfg(all(socklab_epoll, socklab_sock_diag))]
        Command::Check(args) => check::check(args),
        #[cfg(socklab_epoll)]
        Command::Nfqueue(args) => faults::nfqueue(args),
        Command::Completions(args) => completions(args.shell),
        Command::Man(args) => man(args.dir.as_deref()),
    });
    match result {
        Ok(()) => 0,
        // stdout was closed by its reader (`socklab states | head -1`): end quietly, as standard
        // tools do. (A socket's EPIPE carries the call that failed, so it is not mistaken for this.)
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe && socklab::error::call_error(&err).is_none() => 0,
        // `socklab netns`: the command's own exit code, which already said what it had to.
        Err(err) if err.get_ref().is_some_and(|inner| inner.is::<ChildExit>()) => {
            err.get_ref().and_then(|inner| inner.downcast_ref::<ChildExit>()).map_or(1, |c| c.0)
        }
        Err(err) => {
            let _ = writeln!(io::stderr(), "socklab: {}", hints::explain(&err));
            if err.get_ref().is_some_and(|inner| inner.is::<UsageError>()) { 2 } else { 1 }
        }
    }
}

/// Bad usage: clap's whole message (the error, which argument, its suggestion for a typo, the
/// usage line), and exit code 2. Help and version output are left to clap.
fn usage_exit(err: clap::Error) -> u8 {
    use clap::error::ErrorKind;
    if !err.use_stderr() || err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        err.exit();
    }
    let text = err.render().to_string();
    let text = text.trim_end().strip_prefix("error: ").unwrap_or(text.trim_end());
    let _ = writeln!(io::stderr(), "socklab: {text}");
    2
}

/// The exit code of the command `socklab netns` ran, when it was not 0.
#[derive(Debug)]
struct ChildExit(u8);

impl std::fmt::Display for ChildExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the command exited with {}", self.0)
    }
}

impl std::error::Error for ChildExit {}

/// `socklab netns`: the pair, the conditions, the peer and the command; SIGINT/SIGTERM stop the
/// children, and the namespaces are removed in every case.
#[cfg(socklab_epoll)]
fn netns(args: NetnsArgs) -> io::Result<()> {
    use socklab::netns::{RunConfig, run_command};
    use std::os::unix::process::ExitStatusExt;
    let stop = socklab::echo::Stop::new();
    let signals = signals::stop_on_signals(stop.clone())?;
    let (faults, queue_loss, seed) = args.faults.split();
    let config = RunConfig {
        faults,
        queue_loss,
        seed,
        conditions: args.link,
        unplug_after: args.unplug_after,
        peer: args.peer,
        peer_port: args.peer_port,
        command: args.command,
    };
    let started = std::time::Instant::now();
    let status = run_command(&config, &stop, &mut |event| faults::print_event(&mut io::stderr(), started, event));
    signals.finish();
    let status = status?;
    // A command killed by a signal exits as a shell reports it: 128 + the signal number.
    let code = status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(1);
    match u8::try_from(code) {
        Ok(0) => Ok(()),
        Ok(code) => Err(io::Error::other(ChildExit(code))),
        Err(_) => Err(io::Error::other(ChildExit(1))),
    }
}

/// An argument that parsed but does not make sense (a host that is malformed or does not resolve).
#[derive(Debug)]
struct UsageError {
    arg: &'static str,
    source: io::Error,
    /// The flag is valid but this command (or this combination) would ignore it.
    not_applicable: bool,
}

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.not_applicable {
            write!(f, "'{}' does not apply here: {}", self.arg, self.source)
        } else {
            write!(f, "invalid value for '{}': {}", self.arg, self.source)
        }
    }
}

impl std::error::Error for UsageError {}

fn usage(arg: &'static str, source: io::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, UsageError { arg, source, not_applicable: false })
}

/// A flag this command would ignore: refused, exit 2, saying why and what to do instead.
fn not_applicable(arg: &'static str, why: impl Into<String>) -> io::Error {
    let source = io::Error::new(io::ErrorKind::InvalidInput, why.into());
    io::Error::new(io::ErrorKind::InvalidInput, UsageError { arg, source, not_applicable: true })
}

/// Writes a line to stdout, ignoring a closed pipe (printing must never kill the program).
fn say(line: &dyn std::fmt::Display) {
    let _ = writeln!(io::stdout().lock(), "{line}");
}

/// `1000/s` or `1000`: answers per second, at least 1.
fn parse_rate(text: &str) -> Result<u32, String> {
    let number = text.trim().strip_suffix("/s").unwrap_or(text.trim());
    match number.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("'{text}' is not a rate: give answers per second as a whole number from 1, e.g. 1000/s")),
    }
}

/// Prints the tutorial's events, or under --quiet only what a script needs: the listening line (a
/// server on port 0 must say which port it got) and the errors. `--json`: every event, one JSON
/// object per line (--quiet then keeps the same events as in text).
fn printer(quiet: bool, json: bool) -> Sink {
    Arc::new(move |event: &Event<'_>| {
        let needed = matches!(
            event,
            Event::Listening(_) | Event::ConnectionError(..) | Event::SpawnDeferred(..) | Event::AcceptError(_)
        );
        if quiet && !needed {
            return;
        }
        if json {
            say(&event.json())
        } else if event.in_tutorial() {
            say(event)
        }
    })
}

/// `client --raw`: the echo's bytes to stdout as they arrive, unchanged; the tutorial's lines to
/// stderr (unless --quiet). Written at once (stdout is line-buffered), so a pipe sees each chunk.
fn raw_printer(quiet: bool) -> Sink {
    Arc::new(move |event: &Event<'_>| {
        if let Event::ClientReceived(data) = event {
            let mut out = io::stdout().lock();
            let _ = out.write_all(data).and_then(|()| out.flush());
        }
        let needed = matches!(event, Event::ConnectionError(..));
        if (!quiet || needed) && event.in_tutorial() {
            let _ = writeln!(io::stderr().lock(), "{event}");
        }
    })
}

/// Standard input for `client --message -`, its read errors named after the option.
struct NamedStdin(socklab::file::Stdin);

impl io::Read for NamedStdin {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|e| io::Error::new(e.kind(), format!("--message -: reading stdin: {e}")))
    }
}

impl std::os::fd::AsFd for NamedStdin {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0.as_fd()
    }
}

fn server(args: ServerArgs) -> io::Result<()> {
    let transport = args.family.transport()?;
    let addrs = resolve(&args.host, args.port).map_err(|e| usage("--host", e))?;
    let addr = *addrs.first().ok_or_else(|| io::Error::other("no address"))?;
    let model_name = format!("{:?}", args.model).to_lowercase();
    if !args.accept_delay.is_zero() && args.model != Model::Iterative {
        // Only the iterative loop holds a connection in the queue before accepting it; the others
        // would ignore the flag silently, and a student would see no queue and not know why.
        let why = format!("works with --model iterative only (not {model_name}); drop it or use the iterative model");
        return Err(not_applicable("--accept-delay", why));
    }
    // Flags this server would ignore are refused, so nobody believes a setting is in force.
    if args.threads.is_some() && !matches!(args.model, Model::Epoll | Model::Uring) {
        let why =
            format!("sets the epoll and uring models' threads (not {model_name}'s); drop it or use --model epoll");
        return Err(not_applicable("--threads", why));
    }
    if transport.is_datagram() {
        let connection_flags = [
            ("--backlog", args.backlog.is_some()),
            ("--max-conns", args.max_conns.is_some()),
            ("--idle-timeout", args.idle_timeout.is_some()),
            ("--max-conn-time", args.max_conn_time.is_some()),
        ];
        if let Some((flag, _)) = connection_flags.iter().find(|(_, given)| *given) {
            let why =
                "applies to connections; a datagram socket (--udp, --dgram) has none: it neither listens nor accepts";
            return Err(not_applicable(flag, why));
        }
    }
    if !args.accept_delay.is_zero() && matches!(transport, Transport::Udp | Transport::UnixDgram(_)) {
        // A datagram socket has no listen queue and no accept: there is nothing to delay, and
        // ignoring the flag silently would leave a student looking for a queue that cannot exist.
        let why = "needs connections to hold in the listen queue; --udp and --unix --dgram have no listen or accept, \
                   so drop --accept-delay or use TCP, --unix or --unix --seqpacket";
        return Err(usage("--accept-delay", io::Error::new(io::ErrorKind::InvalidInput, why)));
    }
    if args.udp_rate.is_some() && transport != Transport::Udp {
        let why = "limits the answers to each UDP source; TCP and Unix peers cannot forge their address, so use it with --udp";
        return Err(usage("--udp-rate", io::Error::new(io::ErrorKind::InvalidInput, why)));
    }
    let ip = addr.ip().to_canonical(); // ::ffff:127.0.0.1 is 127.0.0.1
    if transport.unix_addr().is_none() && (ip.is_multicast() || ip == std::net::Ipv4Addr::BROADCAST) {
        let why = format!("{ip} is a multicast or broadcast address, which a listener cannot bind; use localhost");
        return Err(usage("--host", io::Error::new(io::ErrorKind::InvalidInput, why)));
    }
    let config = ServerConfig {
        addr,
        transport,
        only_v6: args.v6only,
        unlink: args.unlink,
        backlog: args.backlog,
        buffer: args.buffer,
        model: args.model,
        threads: args.threads.unwrap_or(0),
        max_conns: args.max_conns.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        idle_timeout: args.idle_timeout,
        max_conn_time: args.max_conn_time,
        accept_delay: args.accept_delay,
        grace: args.grace,
        udp_rate: args.udp_rate,
    };
    if args.model != Model::Iterative {
        // A soft limit of 1024 descriptors would cap the concurrent models at ~1000 clients.
        #[cfg(target_os = "linux")]
        socklab::process::raise_open_files(None)?;
    }
    #[cfg(socklab_epoll)]
    let faults = args.fault;
    #[cfg(not(socklab_epoll))]
    let faults: Vec<()> = Vec::new();
    // The tutorial's server: the iterative model with none of the flags that need machinery.
    // One thread; stopped by signal handlers (see `signals`); each line printed with
    // one write(2) to stdout.
    let tutorial = args.model == Model::Iterative
        && faults.is_empty()
        && !args.json
        && args.ready_file.is_none()
        && args.idle_timeout.is_none()
        && args.max_conn_time.is_none()
        && args.interrupt_every.is_none();
    if tutorial {
        // Before socket(), as a C server sets its handlers first thing in main.
        socklab::process::catch_stop_signals()?;
        let server = Server::bind(config)?;
        warn_if_reachable(&server);
        server.stop_handle().follow_signals(args.grace);
        return server.run(signals::tutorial_printer(args.quiet));
    }
    // With faults, the echo server listens on a private loopback port and the fault proxy on the
    // address asked for.
    // Read once (the concurrent models' default reads /proc/sys/net/core/somaxconn) and handed to
    // the server, so the strace shows that file opened once, not once here and once in bind.
    let backlog = config.backlog();
    let server_is_tcp = config.transport == Transport::Tcp;
    let config = ServerConfig { backlog: Some(backlog), ..config };
    let config = if faults.is_empty() { config } else { ServerConfig { addr: ([127, 0, 0, 1], 0).into(), ..config } };
    let server = Server::bind(config)?;
    warn_if_reachable(&server);
    // SIGINT / SIGTERM end the server cleanly: the listener is closed and the exit code is 0.
    let stop = server.stop_handle();
    let signals = signals::stop_on_signals(stop.clone())?;
    let timer = args.interrupt_every.map(signals::interrupt_every).transpose()?;
    let (sink, log) = log::start(args.quiet, args.json)?;
    let mut sink = signals::with_grace_line(sink, args.quiet);
    let mut shown = server.local_addr();
    #[cfg(socklab_epoll)]
    let proxy = if faults.is_empty() {
        None
    } else {
        // Spawned after the signal thread, so its thread inherits the blocked SIGINT/SIGTERM.
        // The fault proxy forwards TCP; shown.to_socket() fails with a clear error for a Unix server.
        if !server_is_tcp {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "faults apply to TCP servers only (not --unix or --udp)",
            ));
        }
        let proxy = socklab::fixture::Proxy::builder(shown.to_socket()?)
            .listen(addr)
            .backlog(backlog)
            .faults(faults)
            .spawn()?;
        let (public, private) = (proxy.local_addr(), shown);
        if !args.quiet && !args.json {
            let _ = writeln!(
                io::stderr(),
                "socklab: note: faults on; clients connect to a fault proxy on {public}, which forwards to this echo server on {private}: the peers shown below are the proxy's connections"
            );
        }
        shown = socklab::SockAddr::from(public);
        let inner = sink;
        sink = Arc::new(move |event: &Event<'_>| match event {
            Event::Listening(_) => inner(&Event::Listening(socklab::SockAddr::from(public))),
            event => inner(event),
        });
        Some(proxy)
    };
    #[cfg(not(socklab_epoll))]
    let _ = (backlog, server_is_tcp);
    // Written by the server once every loop has set up (its epoll instances, rings, signalfd),
    // so the descriptors it holds then are its idle set; whoever reads the file may signal the
    // server at once. A file that cannot be written stops the server and is its error.
    let unwritten = Arc::new(std::sync::Mutex::new(None));
    if let Some(path) = args.ready_file.clone() {
        // Weak: the hook is kept inside the Stop it would stop.
        let (failed, weak) = (Arc::clone(&unwritten), Arc::downgrade(&stop));
        stop.when_serving(move || {
            if let Err(e) = write_ready_file(&path, shown) {
                *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                if let Some(stop) = weak.upgrade() {
                    stop.abort();
                }
            }
        });
    }
    let result = server.run(sink);
    let unwritten = unwritten.lock().unwrap_or_else(|p| p.into_inner()).take();
    let result = match unwritten {
        Some(e) => Err(e),
        None => result,
    };
    #[cfg(socklab_epoll)]
    drop(proxy);
    drop(timer);
    signals.finish();
    log.finish();
    result
}

/// Once, after bind, with the address really bound; on stderr even under --quiet, since a server
/// reachable from other machines is worth knowing about whatever else is silenced.
fn warn_if_reachable(server: &Server) {
    if let Some(bound) = server.local_addr().as_socket().filter(|a| !a.ip().to_canonical().is_loopback()) {
        let _ = writeln!(io::stderr(), "socklab: note: listening on {bound}, which is reachable from other machines");
    }
}

/// `socklab proxy`: the fixture's proxy until SIGINT/SIGTERM.
#[cfg(socklab_epoll)]
fn proxy(args: ProxyArgs) -> io::Result<()> {
    use socklab::fixture::Proxy;
    use socklab::resolve::split_host_port;
    use socklab::timeline::json::{Value, object};
    use socklab::{Socket, Type};
    let address = |arg: &'static str, text: &str| -> io::Result<SocketAddr> {
        // Port 0 (the kernel picks) makes sense to listen on, not to connect to.
        let (host, port) = match text.trim().strip_suffix(":0") {
            Some(host) if arg == "--listen" || arg == "--api" => {
                (host.trim_start_matches('[').trim_end_matches(']'), 0)
            }
            _ => split_host_port(text).map_err(|e| usage(arg, e))?,
        };
        let addrs = resolve(host, port).map_err(|e| usage(arg, e))?;
        addrs.first().copied().ok_or_else(|| usage(arg, io::Error::other("no address")))
    };
    if let Some(api) = &args.api {
        if !args.fault.is_empty() {
            return Err(not_applicable("--fault", "with --api, faults are toxics: add them through the API"));
        }
        let api = address("--api", api)?;
        return proxy_api(api, &args);
    }
    let upstream = args.upstream.as_deref().unwrap_or_default();
    let (listen, upstream) = (address("--listen", &args.listen)?, address("--upstream", upstream)?);
    let stop = socklab::echo::Stop::new();
    let signals = signals::stop_on_signals(stop.clone())?;
    let proxy = Proxy::builder(upstream).listen(listen).backlog(args.backlog).faults(args.fault).spawn()?;
    let addr = proxy.local_addr();
    if args.json {
        let fields = [
            ("event", Value::Str("listening".into())),
            ("addr", Value::Str(addr.to_string())),
            ("port", Value::Int(addr.port().into())),
            ("upstream", Value::Str(upstream.to_string())),
        ];
        say(&object(&fields));
    } else {
        say(&format_args!("Proxy listening {} (on {addr}), forwarding to {upstream}", addr.port()));
    }
    if let Some(path) = &args.ready_file {
        write_ready_file(path, addr)?;
    }
    // Sleep until the stop: the signal thread shuts this socket down, which ends the recv.
    let (line, _other_end) = Socket::pair(Type::STREAM)?;
    let line = Arc::new(line);
    let watch = stop.watch(line.clone());
    let _ = line.recv(&mut [0u8; 1]);
    drop(watch);
    let stats = proxy.stats();
    let result = proxy.shutdown();
    signals.finish();
    let n = |v: u64| Value::Int(i64::try_from(v).unwrap_or(i64::MAX));
    if args.json {
        say(&object(&[
            ("event", Value::Str("stopped".into())),
            ("accepted", n(stats.accepted)),
            ("bytes_in", n(stats.bytes_in)),
            ("bytes_out", n(stats.bytes_out)),
            ("faults_applied", n(stats.faults_applied)),
        ]));
    } else {
        say(&format_args!(
            "Proxy stopped: {} connections accepted, {} bytes from clients, {} bytes to clients, {} faults applied",
            stats.accepted, stats.bytes_in, stats.bytes_out, stats.faults_applied
        ));
    }
    result
}

/// `socklab proxy --api`: Toxiproxy's HTTP API until SIGINT/SIGTERM.
#[cfg(socklab_epoll)]
fn proxy_api(api: SocketAddr, args: &ProxyArgs) -> io::Result<()> {
    use socklab::timeline::json::{Value, object};
    use socklab::toxiproxy::{ApiServer, Registry, populate_from};
    use socklab::{Socket, Type};
    let registry = Arc::new(Registry::default());
    let mut loaded = 0;
    if let Some(path) = &args.config {
        let text = socklab::file::read_to_string(path)
            .map_err(|e| usage("--config", io::Error::new(e.kind(), format!("{}: {e}", path.display()))))?;
        loaded = populate_from(&registry, &text).map_err(|e| {
            usage("--config", io::Error::new(io::ErrorKind::InvalidData, format!("{}: {}", path.display(), e.message)))
        })?;
    }
    let stop = socklab::echo::Stop::new();
    let signals = signals::stop_on_signals(stop.clone())?;
    let server = ApiServer::with_registry(api, registry)?;
    let addr = server.local_addr();
    if args.json {
        say(&object(&[
            ("event", Value::Str("listening".into())),
            ("api", Value::Str(addr.to_string())),
            ("port", Value::Int(addr.port().into())),
            ("proxies", Value::Int(i64::try_from(loaded).unwrap_or(i64::MAX))),
        ]));
    } else {
        say(&format_args!("Toxiproxy API listening {} (on {addr}), {loaded} proxies from the config", addr.port()));
    }
    if let Some(path) = &args.ready_file {
        write_ready_file(path, addr)?;
    }
    let (line, _other_end) = Socket::pair(Type::STREAM)?;
    let line = Arc::new(line);
    let watch = stop.watch(line.clone());
    let _ = line.recv(&mut [0u8; 1]);
    drop(watch);
    server.shutdown();
    signals.finish();
    if args.json {
        say(&object(&[("event", Value::Str("stopped".into()))]));
    } else {
        say(&"Toxiproxy API stopped; every proxy closed");
    }
    Ok(())
}

/// `--ready-file`: `ADDR\n` into a new file beside PATH (O_EXCL|O_NOFOLLOW, a random name), then
/// rename(2) to PATH, which is atomic: a reader sees no file or the whole line.
fn write_ready_file(path: &Path, addr: impl std::fmt::Display) -> io::Result<()> {
    socklab::file::write_atomically(path, format!("{addr}\n").as_bytes())
        .map_err(|e| io::Error::new(e.kind(), format!("--ready-file {}: {e}", path.display())))
}

fn client(args: ClientArgs) -> io::Result<()> {
    let addrs: Vec<SocketAddr> = resolve(&args.host, args.port).map_err(|e| usage("--host", e))?;
    let transport = args.family.transport()?;
    // Streamed: a stream socket and the end-of-stream check (which --tutorial leaves out).
    let stream_socket = matches!(transport, Transport::Tcp | Transport::Unix(_, socklab::UnixKind::Stream));
    let stream_stdin = args.message == "-" && stream_socket && !args.tutorial;
    let message = if args.message == "-" && !stream_stdin {
        socklab::file::read_stdin().map_err(|e| io::Error::new(e.kind(), format!("--message -: reading stdin: {e}")))?
    } else if stream_stdin {
        Vec::new()
    } else {
        args.message.into_bytes()
    };
    let config = ClientConfig {
        addrs,
        transport,
        message,
        chunk: args.chunk,
        // --tutorial: exactly the tutorial's calls (no timeout options, no end-of-stream check).
        timeout: (!args.tutorial).then_some(args.timeout),
        check_end: !args.tutorial,
    };
    let sink = if args.raw { raw_printer(args.quiet) } else { printer(args.quiet, args.json) };
    let result = if stream_stdin {
        client::run_stream(&config, NamedStdin(socklab::file::Stdin::new()), &sink).map(drop)
    } else {
        client::run(&config, &sink).map(drop)
    };
    if let (true, Err(e)) = (args.json, &result) {
        use socklab::timeline::json::{Value, object};
        let errno = socklab::error::errno(e).map_or(Value::Null, |n| Value::Str(socklab::names::errno_name(n)));
        say(&object(&[("event", Value::Str("error".into())), ("errno", errno), ("error", Value::Str(e.to_string()))]));
    }
    result
}

fn demo() -> io::Result<()> {
    let addr = *resolve("localhost", 0)?.first().ok_or_else(|| io::Error::other("no loopback address"))?;
    // The server's session ends when it reads the client's FIN; stopping before that would cut
    // it short (and its "Recv Over" would not be printed), so the demo waits for it, a bounded time.
    let (ended_tx, ended) = std::sync::mpsc::channel();
    let print = printer(false, false);
    let sink: Sink = Arc::new(move |event: &Event<'_>| {
        print(event);
        if matches!(event, Event::ServerRecvOver(_) | Event::ConnectionError(..)) {
            let _ = ended_tx.send(());
        }
    });
    let server = Server::bind(ServerConfig::new(addr))?.spawn(sink)?;
    let config = ClientConfig {
        addrs: vec![server.addr()],
        transport: Transport::Tcp,
        message: b"Hello".to_vec(),
        chunk: 10,
        timeout: Some(client::DEFAULT_TIMEOUT),
        check_end: true,
    };
    let result = client::run(&config, &printer(false, false));
    if result.is_ok() {
        let _ = ended.recv_timeout(Duration::from_secs(5));
    }
    let stopped = server.stop();
    result?;
    stopped
}

fn pass_fd(args: PassFdArgs) -> io::Result<()> {
    use socklab::echo::pass_fd::PassFd;
    let addr = *resolve(&args.host, args.port)
        .map_err(|e| usage("--host", e))?
        .first()
        .ok_or_else(|| io::Error::other("no address"))?;
    // Both processes print each line at once if stdout has room, and drop it otherwise: neither
    // ever waits on a stdout nobody reads. Forks the worker first, while this is the only thread.
    let dropped = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sink = log::direct_printer(dropped.clone());
    let demo = PassFd::start(addr, &sink)?;
    let addr = demo.local_addr();
    if let Some(path) = &args.ready_file {
        write_ready_file(path, addr)?;
    }
    let client = (!args.external).then(|| {
        let config = ClientConfig {
            addrs: vec![addr],
            transport: Transport::Tcp,
            message: b"Hello".to_vec(),
            chunk: 10,
            timeout: Some(client::DEFAULT_TIMEOUT),
            check_end: true,
        };
        let sink = sink.clone();
        std::thread::Builder::new()
            .spawn_counted(move || (0..args.count).try_for_each(|_| client::run(&config, &sink).map(drop)))
    });
    let client = client.transpose()?;
    let served = demo.run(args.count as usize, &sink);
    let joined = client.map(|c| c.join().unwrap_or_else(|_| Err(io::Error::other("the client thread panicked"))));
    let dropped = dropped.load(std::sync::atomic::Ordering::Relaxed);
    if dropped > 0 {
        let _ = writeln!(
            io::stderr(),
            "socklab: note: {dropped} of the acceptor's log lines were dropped because stdout was not being read"
        );
    }
    joined.transpose()?;
    served
}

#[cfg(all(socklab_af_packet, socklab_sock_diag))]
fn walkthrough(args: WalkthroughArgs, explain: bool) -> io::Result<()> {
    use socklab::walkthrough::{self, Config, crowd};
    let exe = std::env::current_exe()?;
    let timeline = match args.clients {
        _ if args.scenario.is_some() => {
            use socklab::walkthrough::scenario;
            let sc = args.scenario.unwrap_or(scenario::Scenario::SynLost);
            if let Some(why) = scenario::needs_root(sc) {
                return Err(io::Error::new(io::ErrorKind::PermissionDenied, why));
            }
            let _ = writeln!(io::stderr(), "socklab: {}", sc.plan());
            scenario::run(sc)?.timeline
        }
        None => {
            let accept_delay = args.accept_delay.unwrap_or(Duration::from_secs(1));
            let config = Config {
                host: args.host,
                connect: args.connect,
                v6only: args.v6only,
                port: args.port,
                accept_delay,
                explain,
                all: args.all,
            };
            walkthrough::run(&exe, &config)?
        }
        Some(_) if args.host != IpAddr::from([127, 0, 0, 1]) || args.connect.is_some() || args.v6only.is_some() => {
            let why =
                "the crowd of --clients runs on 127.0.0.1 only; drop --host, --connect and --v6only, or --clients";
            return Err(usage("--clients", io::Error::new(io::ErrorKind::InvalidInput, why)));
        }
        Some(n) => {
            let config = crowd::Config {
                clients: n as usize,
                port: args.port,
                accept_delay: args.accept_delay.unwrap_or(Duration::ZERO),
                time_limit: args.time_limit.unwrap_or(Duration::from_secs(60)),
            };
            crowd::run(&exe, &config)?.0
        }
    };
    if let Some(why) = &timeline.capture_error {
        let _ = writeln!(io::stderr(), "socklab: note: {why}; the rest of the walkthrough runs without segments");
    }
    use socklab::timeline::{diagram, jsonl, text};
    let mut text = match (args.json, args.scenario) {
        (true, _) => jsonl::render(&timeline),
        (false, Some(sc)) => format!(
            "socklab walkthrough --scenario {}: a client in namespace A (10.77.0.1), a server in namespace B \
             ({}), a packet queue in A.\nSources: wire = TCP segments on A's veth (sl-a), ss = socket states and \
             queues (sock_diag) with TCP_INFO notes, note = the queue, the programs and the counters.\n\n{}",
            sc.name(),
            timeline.server_addr(),
            text::events(&timeline)
        ),
        (false, None) => text::render(&timeline),
    };
    if args.diagram {
        // After JSON lines the diagram would break them: it goes to stderr then.
        let drawn = if args.ascii { diagram::render_ascii(&timeline) } else { diagram::render(&timeline) };
        if args.json {
            let _ = io::stderr().lock().write_all(drawn.as_bytes());
        } else {
            text.push('\n');
            text.push_str(&drawn);
        }
    }
    let _ = io::stdout().lock().write_all(text.as_bytes());
    if let Some(path) = &args.svg {
        write_svg(path, &timeline)?;
    }
    Ok(())
}

#[cfg(all(socklab_af_packet, socklab_sock_diag))]
fn write_svg(path: &Path, timeline: &socklab::timeline::Timeline) -> io::Result<()> {
    socklab::file::write(path, socklab::timeline::svg::render(timeline).as_bytes())
        .map_err(|e| io::Error::new(e.kind(), format!("--svg {}: {e}", path.display())))
}

#[cfg(all(socklab_af_packet, socklab_sock_diag))]
fn draw(args: DrawArgs) -> io::Result<()> {
    use socklab::timeline::{diagram, jsonl};
    let name = args.session.display().to_string();
    let saved = if name == "-" {
        let bytes = socklab::file::read_stdin()?;
        String::from_utf8(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "stdin: not UTF-8 text"))?
    } else {
        socklab::file::read_to_string(&args.session).map_err(|e| {
            // Name the call that failed, as every other error does: the open of the session file.
            let why = e.raw_os_error().map_or_else(|| e.to_string(), socklab::names::errno_display);
            let what = format!(
                "openat {name}: {why}: pass a session saved with `socklab walkthrough --json > FILE`, or - for stdin"
            );
            io::Error::new(e.kind(), what)
        })?
    };
    let timeline = jsonl::read(&saved).map_err(|e| {
        io::Error::new(io::ErrorKind::InvalidData, format!("{name} is not a saved `walkthrough --json` session: {e}"))
    })?;
    match &args.svg {
        Some(path) => write_svg(path, &timeline),
        None => {
            let drawn = if args.ascii { diagram::render_ascii(&timeline) } else { diagram::render(&timeline) };
            let _ = io::stdout().lock().write_all(drawn.as_bytes());
            Ok(())
        }
    }
}

#[cfg(socklab_epoll)]
fn bench(args: BenchArgs) -> io::Result<()> {
    use socklab::bench::{self, BenchConfig};
    use socklab::resolve::split_host_port;

    let (host, port) = split_host_port(&args.addr).map_err(|e| usage("--addr", e))?;
    let addr =
        *resolve(host, port).map_err(|e| usage("--addr", e))?.first().ok_or_else(|| io::Error::other("no address"))?;
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
        duration: args.duration,
        grace: bench::GRACE,
        seed: args.seed,
        server_pids: args.server_pids,
    };
    let live = !args.json && socklab::process::is_terminal(io::stderr());
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
    if report.served == 0 {
        let why = report.first_error.as_deref().unwrap_or("no error was seen");
        Err(io::Error::other(format!("no connection to {addr} was served: {why}")))
    } else if report.is_correct() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "the echo was not byte-exact or nothing was served: {} mismatches, {} lost bytes, {} of {} connections served",
            report.mismatches, report.lost_bytes, report.served, report.conns
        )))
    }
}

/// `socklab completions SHELL`: clap_complete's script for the same `Cli` that parses the arguments.
fn completions(shell: Shell) -> io::Result<()> {
    use clap::CommandFactory;
    use clap_complete::{Shell as S, generate};
    let shell = match shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
    };
    let mut out = Vec::new();
    generate(shell, &mut without_hidden(&Cli::command()), "socklab", &mut out);
    io::stdout().lock().write_all(&out)
}

/// `command` and its subcommands without their hidden flags (socklab's internal `--trace-machine`
/// and test hooks), which clap_complete would otherwise offer: what --help does not show, a
/// completion should not either.
fn without_hidden(command: &clap::Command) -> clap::Command {
    let mut out = clap::Command::new(command.get_name().to_string());
    if let Some(about) = command.get_about() {
        out = out.about(about.clone());
    }
    for arg in command.get_arguments().filter(|a| !a.is_hide_set()) {
        out = out.arg(arg.clone());
    }
    for sub in command.get_subcommands() {
        out = out.subcommand(without_hidden(sub));
    }
    out
}

/// `socklab man [--dir DIR]`: clap_mangen's pages for the same `Cli` that parses the arguments.
fn man(dir: Option<&Path>) -> io::Result<()> {
    use clap::CommandFactory;
    let page = |command: clap::Command| -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        clap_mangen::Man::new(command).render(&mut out)?;
        Ok(out)
    };
    let mut cli = Cli::command();
    cli.build();
    let Some(dir) = dir else {
        return io::stdout().lock().write_all(&page(cli)?);
    };
    // The directory is made if it is missing, as `mkdir -p` would for the last component.
    match socklab::file::create_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
            return Err(io::Error::new(e.kind(), format!("--dir {}: {e}", dir.display())));
        }
        _ => {}
    }
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        socklab::file::write(&path, bytes)
            .map_err(|e| io::Error::new(e.kind(), format!("--dir: {}: {e}", path.display())))
    };
    write("socklab.1", &page(cli.clone())?)?;
    for sub in cli.get_subcommands().filter(|s| s.get_name() != "help") {
        // Built, a subcommand's display name is socklab-COMMAND, the page's name, as git's are
        // (`man socklab-server`).
        let name = sub.get_display_name().unwrap_or(sub.get_name()).to_string();
        write(&format!("{name}.1"), &page(sub.clone())?)?;
    }
    Ok(())
}
