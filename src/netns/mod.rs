//! Floor 4: two network namespaces joined by a veth pair, with a link as bad as a test wants —
//! the faults a TCP proxy cannot make, because it only sees bytes: packet loss, a connect that
//! times out, a cable pulled out mid-connection.
//!
//! ```text
//! namespace "<name>-a"  10.77.0.1/24  veth "sl-a" ══ veth "sl-b"  10.77.0.2/24  namespace "<name>-b"
//!   (the command under test)                                      (its peer: a server)
//! ```
//!
//! Built with the real tools, as a reader would do it by hand: `ip` (iproute2) for namespaces,
//! links and addresses; `nft` (nftables) for loss, SYN drops and unplugging; `tc` for the rate
//! (`tbf`). The delay and the exact faults (drop the Nth SYN or data segment, reorder, duplicate,
//! seeded loss: [`Plan`]) are made by socklab itself, serving a netfilter queue in namespace A
//! (`queue.rs`, over [`crate::nfqueue`]), so they work on kernels without `netem`. Every change is
//! made inside the two namespaces, never on the host. Namespaces have their own addresses, routes,
//! sysctls and firewalls, so every pair can use the same addresses; only the namespace names are
//! unique (pid and a counter).
//!
//! Dropping the [`Pair`] deletes both namespaces (their veth ends go with them), also when a test
//! panics. Needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN): [`Pair::create`] says so clearly.

use std::fmt;
use std::io;
use std::net::Ipv4Addr;
use std::process::{Command, Output, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::fault::spec;

mod queue;

pub use queue::{Action, Did, Dir, Event, Fault, Kind, Plan, Segment, Served, serve};

/// The queue number socklab serves in namespace A (namespaces have their own queues).
pub const QUEUE_NUM: u16 = 0;

/// Address of side A (the command's side).
pub const ADDR_A: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// Address of side B (the peer's side).
pub const ADDR_B: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);

/// One side of the pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Side A, `10.77.0.1`.
    A,
    /// Side B, `10.77.0.2`.
    B,
}

/// What is wrong with the link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Condition {
    /// This share (0 to 100 %) of packets is dropped, each way (nftables `numgen random`).
    Loss(f64),
    /// At most this many bits a second, each way (the `tbf` qdisc: a queue, so also a delay).
    Rate(u64),
    /// Every packet waits this long, each way, plus a random 0..jitter (the second value), order
    /// kept: socklab holds each packet's verdict in a netfilter queue (no `netem` needed).
    Delay(Duration, Duration),
    /// SYNs to side B are dropped: a connect from A times out.
    Blackhole,
    /// Every packet on the link is dropped (from the start; mid-connection: [`Pair::unplug`] or [`RunConfig::unplug_after`]): open
    /// connections see only their own retransmissions and keepalives go unanswered.
    Unplug,
}

impl FromStr for Condition {
    type Err = String;

    /// `loss=5%`, `rate=1mbit` (`kbit`, `mbit`, `gbit` or bare bits/s), `delay=50ms` (or
    /// `delay=50ms~10ms`: plus up to 10 ms of jitter), `blackhole`, `unplug`.
    fn from_str(text: &str) -> Result<Condition, String> {
        let bad = |why: String| format!("link condition '{text}': {why}");
        match text.trim().split_once('=') {
            Some(("loss", v)) => {
                let p: f64 = v
                    .strip_suffix('%')
                    .ok_or_else(|| bad("write the loss as a percentage, e.g. loss=5%".into()))?
                    .parse()
                    .map_err(|_| bad(format!("'{v}' is not a percentage")))?;
                if (0.0..=100.0).contains(&p) { Ok(Condition::Loss(p)) } else { Err(bad("use 0% to 100%".into())) }
            }
            Some(("rate", v)) => {
                let lower = v.to_ascii_lowercase();
                let split = lower.find(|c: char| !c.is_ascii_digit()).unwrap_or(lower.len());
                let (digits, unit) = lower.split_at(split);
                let scale = match unit {
                    "" | "bit" => 1,
                    "kbit" => 1_000,
                    "mbit" => 1_000_000,
                    "gbit" => 1_000_000_000,
                    _ => return Err(bad(format!("unknown rate unit '{unit}': use bit, kbit, mbit or gbit"))),
                };
                match digits.parse::<u64>() {
                    Ok(n) if n > 0 => Ok(Condition::Rate(n.saturating_mul(scale))),
                    _ => Err(bad(format!("'{v}' is not a rate: write e.g. rate=1mbit"))),
                }
            }
            Some(("delay", v)) => {
                let (base, jitter) = match v.split_once('~') {
                    Some((b, j)) => (spec::duration(b).map_err(&bad)?, spec::duration(j).map_err(&bad)?),
                    None => (spec::duration(v).map_err(&bad)?, Duration::ZERO),
                };
                Ok(Condition::Delay(base, jitter))
            }
            None if text.trim() == "blackhole" => Ok(Condition::Blackhole),
            None if text.trim() == "unplug" => Ok(Condition::Unplug),
            _ => Err(bad("use loss=5%, rate=1mbit, delay=50ms, blackhole or unplug".into())),
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Loss(p) => write!(f, "loss={p}%"),
            Condition::Rate(bits) => write!(f, "rate={bits}bit"),
            Condition::Delay(d, j) if j.is_zero() => write!(f, "delay={d:?}"),
            Condition::Delay(d, j) => write!(f, "delay={d:?}~{j:?}"),
            Condition::Blackhole => f.write_str("blackhole"),
            Condition::Unplug => f.write_str("unplug"),
        }
    }
}

/// Two namespaces and the veth between them. Deleted on drop.
#[derive(Debug)]
pub struct Pair {
    name: String,
    netem: Option<bool>,
    /// What the queue does (delay from [`Pair::apply`], faults from [`Pair::faults`]).
    plan: Plan,
    /// The queue, while the plan does anything.
    queue: Option<Served>,
    /// The NFQUEUE rules are installed (they stay; `--queue-bypass` lets packets through while
    /// no queue is served).
    queue_rules: bool,
}

impl Pair {
    /// Creates the namespaces `<prefix>-<pid>-<n>-a` and `-b`, the veth pair, the addresses, and
    /// brings everything up. A clear error when not root or when `ip` is missing.
    pub fn create(prefix: &str) -> io::Result<Pair> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        if let Err(e) = tool(Command::new("ip").args(["netns", "add", &format!("{name}-a")])) {
            return Err(io::Error::new(
                e.kind(),
                format!("{e} (network namespaces need root: CAP_SYS_ADMIN and CAP_NET_ADMIN)"),
            ));
        }
        // From here on, dropping `pair` removes whatever was made.
        let pair = Pair { name, netem: None, plan: Plan::default(), queue: None, queue_rules: false };
        pair.setup()?;
        Ok(pair)
    }

    fn setup(&self) -> io::Result<()> {
        let (a, b) = (self.namespace(Side::A), self.namespace(Side::B));
        tool(Command::new("ip").args(["netns", "add", &b]))?;
        // Created directly inside the namespaces, so parallel pairs never clash over the names.
        tool(
            Command::new("ip")
                .args(["link", "add", "sl-a", "netns", &a, "type", "veth", "peer", "name", "sl-b", "netns", &b]),
        )?;
        for (side, dev, addr) in [(Side::A, "sl-a", ADDR_A), (Side::B, "sl-b", ADDR_B)] {
            self.ip(side, &["addr", "add", &format!("{addr}/24"), "dev", dev])?;
            self.ip(side, &["link", "set", dev, "up"])?;
            self.ip(side, &["link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    /// The namespace's name (for `ip netns exec NAME ...`).
    pub fn namespace(&self, side: Side) -> String {
        format!("{}-{}", self.name, if side == Side::A { "a" } else { "b" })
    }

    /// The side's address.
    pub fn addr(&self, side: Side) -> Ipv4Addr {
        if side == Side::A { ADDR_A } else { ADDR_B }
    }

    /// `program` to run inside the side's namespace (`ip netns exec NAME program`).
    pub fn command(&self, side: Side, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.namespace(side)]).arg(program);
        cmd
    }

    /// Sets a sysctl inside the side's namespace (e.g. `net.ipv4.tcp_syn_retries`, so a test's
    /// connect gives up in seconds, not two minutes). The host's value is untouched.
    pub fn sysctl(&self, side: Side, key: &str, value: &str) -> io::Result<()> {
        tool(self.command(side, "sysctl").args(["-q", "-w", &format!("{key}={value}")]))
    }

    /// Whether `tc` has the netem qdisc here (checked once, in this pair's namespace A, on lo).
    pub fn has_netem(&mut self) -> bool {
        *self.netem.get_or_insert_with(|| {
            let ns = format!("{}-a", self.name);
            let added =
                tool(Command::new("tc").args(["-n", &ns, "qdisc", "add", "dev", "lo", "root", "netem"])).is_ok();
            if added {
                let _ = tool(Command::new("tc").args(["-n", &ns, "qdisc", "del", "dev", "lo", "root"]));
            }
            added
        })
    }

    /// Applies the conditions (replacing earlier ones). Rate is `tbf`'s; delay is the queue's
    /// (see [`Pair::faults`]); loss, blackhole and unplug are nftables rules in namespace A on its
    /// veth (both directions).
    pub fn apply(&mut self, conditions: &[Condition]) -> io::Result<()> {
        let delay = conditions.iter().find_map(|c| if let Condition::Delay(d, j) = c { Some((*d, *j)) } else { None });
        let rate = conditions.iter().find_map(|c| if let Condition::Rate(r) = c { Some(*r) } else { None });
        let (d, j) = delay.unwrap_or_default();
        if (d, j) != (self.plan.delay, self.plan.jitter) {
            let mut plan = self.plan.clone();
            (plan.delay, plan.jitter) = (d, j);
            self.serve(plan)?;
        }
        for (side, dev) in [(Side::A, "sl-a"), (Side::B, "sl-b")] {
            let ns = self.namespace(side);
            let _ = tool(Command::new("tc").args(["-n", &ns, "qdisc", "del", "dev", dev, "root"]));
            let mut args: Vec<String> = ["-n", &ns, "qdisc", "add", "dev", dev, "root"].map(String::from).to_vec();
            match rate {
                // tbf: a bucket of 10 ms worth of bytes (at least 2 full packets), and up to
                // 400 ms of queue before it drops.
                Some(r) => args.extend([
                    "tbf".into(),
                    "rate".into(),
                    format!("{r}bit"),
                    "burst".into(),
                    format!("{}", (r / 8 / 100).max(3100)),
                    "latency".into(),
                    "400ms".into(),
                ]),
                None => continue,
            }
            tool(Command::new("tc").args(&args))?;
        }
        let mut rules = String::new();
        for condition in conditions {
            match condition {
                // numgen: a random number 0..9999 per packet; below the threshold, dropped.
                Condition::Loss(p) => {
                    let below = (p * 100.0).round() as u32;
                    rules += &format!("  iifname \"sl-a\" numgen random mod 10000 < {below} drop\n");
                    rules += &format!("  oifname \"sl-a\" numgen random mod 10000 < {below} drop\n");
                }
                // A SYN without ACK: only the first packet of a handshake. Side B never sees it.
                Condition::Blackhole => rules += "  oifname \"sl-a\" tcp flags & (syn | ack) == syn drop\n",
                Condition::Unplug => rules += "  iifname \"sl-a\" drop\n  oifname \"sl-a\" drop\n",
                Condition::Rate(_) | Condition::Delay(..) => {}
            }
        }
        self.firewall(&rules)
    }

    /// Serves the netfilter queue of namespace A with these exact faults, random loss and seed
    /// (replacing earlier ones; the delay set by [`Pair::apply`] stays). Every packet crossing
    /// side A's veth goes through socklab's queue from now on (see [`Plan`]).
    pub fn faults(&mut self, faults: &[Fault], loss: f64, seed: u64) -> io::Result<()> {
        let plan = Plan { faults: faults.to_vec(), loss, seed, ..self.plan.clone() };
        self.serve(plan)
    }

    /// What the queue did so far: each segment dropped, held, released or duplicated.
    pub fn fault_events(&self) -> Vec<Event> {
        self.queue.as_ref().map(Served::events).unwrap_or_default()
    }

    /// (Re)starts the queue with `plan`; stops it when the plan does nothing.
    fn serve(&mut self, plan: Plan) -> io::Result<()> {
        if let Some(mut old) = self.queue.take() {
            old.finish()?;
        }
        self.plan = plan;
        if self.plan.is_empty() {
            return Ok(());
        }
        let path = std::path::Path::new("/run/netns").join(self.namespace(Side::A));
        // Bound before the rules exist, so no packet meets a rule without its queue.
        self.queue = Some(Served::start(&path, QUEUE_NUM, self.plan.clone())?);
        if !self.queue_rules {
            let num = QUEUE_NUM.to_string();
            for (chain, dir) in [("OUTPUT", "-o"), ("INPUT", "-i")] {
                // -w: iptables-legacy's lock is one file for every namespace of the machine.
                let mut cmd = self.command(Side::A, "iptables-legacy");
                cmd.args(["-w", "5", "-A", chain, dir, "sl-a", "-j", "NFQUEUE", "--queue-num", &num, "--queue-bypass"]);
                tool(&mut cmd).map_err(|e| {
                    io::Error::new(e.kind(), format!("{e} (the NFQUEUE target comes with Debian's iptables package)"))
                })?;
            }
            self.queue_rules = true;
        }
        Ok(())
    }

    /// Runs `f` on a new thread inside the side's namespace and returns its result: sockets `f`
    /// makes live there, so a test's own code can connect from side A and feel the link's faults
    /// without a child process. The thread enters the namespace with `setns(2)`; the calling
    /// thread stays where it is.
    pub fn run_in<T: Send>(&self, side: Side, f: impl FnOnce() -> T + Send) -> io::Result<T> {
        let path = std::path::Path::new("/run/netns").join(self.namespace(side));
        std::thread::scope(|scope| {
            let thread = std::thread::Builder::new()
                .name(format!("netns-{side:?}"))
                .spawn_scoped(scope, || crate::process::enter_network_namespace(&path).map(|()| f()))?;
            thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Like [`Pair::run_in`], on a thread that outlives the call: join it for `f`'s result.
    pub fn spawn_in<T: Send + 'static>(
        &self,
        side: Side,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> io::Result<std::thread::JoinHandle<io::Result<T>>> {
        let path = std::path::Path::new("/run/netns").join(self.namespace(side));
        std::thread::Builder::new()
            .name(format!("netns-{side:?}"))
            .spawn(move || crate::process::enter_network_namespace(&path).map(|()| f()))
    }

    /// The interface index of the side's veth end, in its namespace (what `ip -o link` prints
    /// first), for a capture opened there.
    pub fn veth_index(&self, side: Side) -> io::Result<i32> {
        let dev = if side == Side::A { "sl-a" } else { "sl-b" };
        let out = Command::new("ip").args(["-n", &self.namespace(side), "-o", "link", "show", dev]).output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.split(':')
            .next()
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(|| io::Error::other(format!("ip -o link show {dev}: no index in {text:?}")))
    }

    /// The side's TCP counters as `nstat` names them (`TcpRetransSegs`, `TcpExtTCPTimeouts`...),
    /// from its /proc/net/snmp and /proc/net/netstat (each namespace counts its own).
    pub fn counters(&self, side: Side) -> io::Result<Vec<(String, u64)>> {
        let out = self.command(side, "cat").args(["/proc/net/snmp", "/proc/net/netstat"]).output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().collect();
        let mut counters = Vec::new();
        for pair in lines.chunks(2) {
            let [names, values] = pair else { continue };
            let (Some((prefix, names)), Some((_, values))) = (names.split_once(':'), values.split_once(':')) else {
                continue;
            };
            for (name, value) in names.split_whitespace().zip(values.split_whitespace()) {
                if let Ok(v) = value.parse::<u64>() {
                    counters.push((format!("{prefix}{name}"), v));
                }
            }
        }
        Ok(counters)
    }

    /// Pulls the cable: every packet on the link is dropped from now on (loss and blackhole rules
    /// are replaced).
    pub fn unplug(&self) -> io::Result<()> {
        self.firewall("  iifname \"sl-a\" drop\n  oifname \"sl-a\" drop\n")
    }

    /// Plugs the cable back in: the nftables rules are removed.
    pub fn plug(&self) -> io::Result<()> {
        self.firewall("")
    }

    /// Replaces namespace A's `socklab` table with one filter chain per direction holding `rules`.
    fn firewall(&self, rules: &str) -> io::Result<()> {
        let ns = self.namespace(Side::A);
        let _ = tool(Command::new("ip").args(["netns", "exec", &ns, "nft", "delete", "table", "inet", "socklab"]));
        if rules.is_empty() {
            return Ok(());
        }
        let (input, output): (Vec<&str>, Vec<&str>) = rules.lines().partition(|l| l.contains("iifname"));
        let ruleset = format!(
            "table inet socklab {{\n chain input {{\n  type filter hook input priority 0; policy accept;\n{}\n }}\n chain output {{\n  type filter hook output priority 0; policy accept;\n{}\n }}\n}}\n",
            input.join("\n"),
            output.join("\n")
        );
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns, "nft", "-f", "-"]);
        run_with_input(&mut cmd, ruleset.as_bytes())
    }

    fn ip(&self, side: Side, args: &[&str]) -> io::Result<()> {
        tool(Command::new("ip").args(["-n", &self.namespace(side)]).args(args))
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        // The queue first: its thread lets held packets through and closes its socket.
        drop(self.queue.take());
        // Deleting a namespace destroys its end of the veth, which destroys the other end too.
        for side in [Side::A, Side::B] {
            let _ = tool(Command::new("ip").args(["netns", "del", &self.namespace(side)]));
        }
    }
}

/// What `socklab netns` runs.
#[derive(Debug, Clone, Default)]
pub struct RunConfig {
    /// The link's conditions, applied before anything starts.
    pub conditions: Vec<Condition>,
    /// Exact faults served by the queue (`--drop syn#1`, `--reorder data#2`...).
    pub faults: Vec<Fault>,
    /// Random loss through the queue (0 to 100 %), rolled from [`RunConfig::seed`].
    pub queue_loss: f64,
    /// The seed of the queue's random loss and jitter.
    pub seed: u64,
    /// Pull the cable this long after the command started.
    pub unplug_after: Option<Duration>,
    /// A shell command run in side B first (a server), killed when the command ends.
    pub peer: Option<String>,
    /// Wait (at most 10 s) until something in side B listens on this TCP port before starting.
    pub peer_port: Option<u16>,
    /// The command and its arguments, run in side A.
    pub command: Vec<std::ffi::OsString>,
}

/// Builds a pair, applies the conditions, runs the peer in B and the command in A (both with
/// `SOCKLAB_NETNS_ADDR` = their own address and `SOCKLAB_NETNS_PEER` = the other side's), and
/// returns the command's exit status. The children are killed when `stop` is requested; the
/// namespaces are deleted in every case.
pub fn run_command(
    config: &RunConfig,
    stop: &crate::echo::Stop,
    on_fault: &mut dyn FnMut(&Event),
) -> io::Result<std::process::ExitStatus> {
    let (program, args) = config
        .command
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no command to run: add -- COMMAND [ARGS]"))?;
    let mut pair = Pair::create("socklab")?;
    pair.apply(&config.conditions)?;
    if !config.faults.is_empty() || config.queue_loss > 0.0 {
        pair.faults(&config.faults, config.queue_loss, config.seed)?;
    }
    let mut reported = 0;
    let mut report = |pair: &Pair| {
        let events = pair.fault_events();
        for e in events.iter().skip(reported) {
            on_fault(e);
        }
        reported = events.len();
    };
    let env = |cmd: &mut Command, side: Side| {
        let other = if side == Side::A { Side::B } else { Side::A };
        cmd.env("SOCKLAB_NETNS_ADDR", pair.addr(side).to_string())
            .env("SOCKLAB_NETNS_PEER", pair.addr(other).to_string());
    };
    let mut peer = match &config.peer {
        Some(line) => {
            let mut cmd = pair.command(Side::B, "sh");
            cmd.args(["-c", line]);
            env(&mut cmd, Side::B);
            // A process group of its own: the stop signal reaches what `sh` started too, which
            // would otherwise outlive it and hold our stdout open.
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
            Some(Reaped(cmd.spawn()?))
        }
        None => None,
    };
    if let Some(port) = config.peer_port {
        wait_for_listener(&pair, port, &mut peer, stop)?;
    }
    let mut cmd = pair.command(Side::A, program);
    cmd.args(args);
    env(&mut cmd, Side::A);
    let mut child = Reaped(cmd.spawn()?);
    let started = std::time::Instant::now();
    let mut unplugged = config.unplug_after.is_none();
    loop {
        report(&pair);
        if let Some(status) = child.0.try_wait()? {
            report(&pair);
            return Ok(status);
        }
        if stop.requested() {
            let _ = crate::process::kill(child.0.id() as crate::process::Pid, crate::process::SIGTERM);
            let status = child.0.wait();
            report(&pair);
            return status;
        }
        if !unplugged && config.unplug_after.is_some_and(|after| started.elapsed() >= after) {
            pair.unplug()?;
            unplugged = true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until side B has a TCP socket listening on `port` (its /proc/net/tcp and tcp6, read
/// inside the namespace), at most 10 s.
fn wait_for_listener(pair: &Pair, port: u16, peer: &mut Option<Reaped>, stop: &crate::echo::Stop) -> io::Result<()> {
    let until = std::time::Instant::now() + Duration::from_secs(10);
    let needle = format!(":{port:04X} 00000000:0000 0A");
    let needle6 = format!(":{port:04X} 00000000000000000000000000000000:0000 0A");
    loop {
        let out = pair.command(Side::B, "cat").args(["/proc/net/tcp", "/proc/net/tcp6"]).output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        if text.contains(&needle) || text.contains(&needle6) {
            return Ok(());
        }
        if let Some(status) = peer.as_mut().map(|p| p.0.try_wait()).transpose()?.flatten() {
            return Err(io::Error::other(format!("the peer command ended ({status}) before listening on port {port}")));
        }
        if stop.requested() || std::time::Instant::now() > until {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("nothing listened on port {port} in side B within 10 s"),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child killed and reaped when dropped (before the namespaces go). SIGTERM goes to its process
/// group when it leads one (the peer), else to it alone.
#[derive(Debug)]
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let pid = self.0.id() as crate::process::Pid;
        // The peer leads its own group (process_group(0) above), so kill(-pid) reaches all of it;
        // for the command it fails with ESRCH and the direct kill below still stops it.
        let _ = crate::process::kill(-pid, crate::process::SIGTERM);
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = crate::process::kill(pid, crate::process::SIGTERM);
            let until = std::time::Instant::now() + Duration::from_secs(2);
            while matches!(self.0.try_wait(), Ok(None)) && std::time::Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Runs a setup tool; a failure names the command and what it printed.
fn tool(cmd: &mut Command) -> io::Result<()> {
    run_with_input(cmd, &[])
}

fn run_with_input(cmd: &mut Command, input: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let shown = format!("{cmd:?}").replace('"', "");
    let mut child = cmd
        .stdin(if input.is_empty() { Stdio::null() } else { Stdio::piped() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("{shown}: {e} (is iproute2/nftables installed?)")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input)?;
    }
    let Output { status, stderr, .. } = child.wait_with_output()?;
    if status.success() {
        Ok(())
    } else {
        let why = String::from_utf8_lossy(&stderr);
        Err(io::Error::other(format!("{shown} failed: {}", why.trim())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_parse_and_bad_ones_say_why() {
        assert_eq!("loss=5%".parse(), Ok(Condition::Loss(5.0)));
        assert_eq!("rate=1mbit".parse(), Ok(Condition::Rate(1_000_000)));
        assert_eq!("delay=50ms".parse(), Ok(Condition::Delay(Duration::from_millis(50), Duration::ZERO)));
        assert_eq!(
            "delay=50ms~10ms".parse(),
            Ok(Condition::Delay(Duration::from_millis(50), Duration::from_millis(10)))
        );
        assert_eq!("blackhole".parse(), Ok(Condition::Blackhole));
        assert_eq!("unplug".parse(), Ok(Condition::Unplug));
        for (text, says) in [
            ("loss=5", "percentage"),
            ("loss=500%", "0% to 100%"),
            ("rate=1mb", "unknown rate unit 'mb'"),
            ("rate=0", "not a rate"),
            ("delay=50", "needs a unit"),
            ("jitter=1ms", "use loss=5%"),
        ] {
            let err = text.parse::<Condition>().expect_err(text);
            assert!(err.contains(says) && err.contains(text), "{text}: {err}");
        }
    }
}
