//! The packet-queue fault flags of `socklab netns` and `socklab nfqueue`, and `socklab nfqueue`.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use clap::Args;
use socklab::netns::{Action, Event, Fault, Plan};

/// `--help`'s heading for the queue's faults.
const FAULTS: &str = "Packet faults (socklab's netfilter queue)";

/// Exact faults served through a netfilter queue.
#[derive(Debug, Args)]
pub struct QueueFaults {
    /// Drop the Nth segment of a kind (repeatable): syn#1, synack#1, data#3, ack#2, fin#1, rst#1,
    /// optionally with a direction, data/out#3 (sent by side A) or data/in#1 (received by it); or a
    /// share of all TCP segments at random, rolled from --seed: 30%.
    #[arg(long, value_name = "KIND[/DIR]#N | P%", value_parser = parse_drop, help_heading = FAULTS)]
    drop: Vec<Drop>,
    /// Hold the Nth segment of a kind back and let it through right after the next one in its
    /// direction (repeatable; bare --reorder: data#2).
    #[arg(long, value_name = "KIND[/DIR]#N", num_args = 0..=1, default_missing_value = "data#2",
          value_parser = |t: &str| Fault::parse(Action::Reorder, t), help_heading = FAULTS)]
    reorder: Vec<Fault>,
    /// Let the Nth segment of a kind through twice (repeatable).
    #[arg(long, value_name = "KIND[/DIR]#N", value_parser = |t: &str| Fault::parse(Action::Duplicate, t), help_heading = FAULTS)]
    duplicate: Vec<Fault>,
    /// The seed of the random loss (--drop P%) and of the delay's jitter: the same seed, the same
    /// losses for the same segments.
    #[arg(long, value_name = "N", default_value_t = 1, help_heading = FAULTS)]
    seed: u64,
}

/// One `--drop`.
#[derive(Debug, Clone, Copy)]
pub enum Drop {
    /// The Nth segment of a kind.
    Exact(Fault),
    /// A share of segments at random (percent).
    Random(f64),
}

fn parse_drop(text: &str) -> Result<Drop, String> {
    if let Some(p) = text.trim().strip_suffix('%') {
        return match p.parse::<f64>() {
            Ok(p) if (0.0..=100.0).contains(&p) => Ok(Drop::Random(p)),
            _ => Err(format!("--drop '{text}': use a share from 0% to 100%, e.g. 30%")),
        };
    }
    Fault::parse(Action::Drop, text).map(Drop::Exact)
}

impl QueueFaults {
    /// The exact faults, the random loss and the seed.
    pub fn split(self) -> (Vec<Fault>, f64, u64) {
        let mut faults = Vec::new();
        let mut loss = 0.0;
        for d in self.drop {
            match d {
                Drop::Exact(f) => faults.push(f),
                Drop::Random(p) => loss = p,
            }
        }
        faults.extend(self.reorder);
        faults.extend(self.duplicate);
        (faults, loss, self.seed)
    }
}

/// `+0.012s dropped out 10.77.0.1:40000 > 10.77.0.2:5000 [S] seq ... (drop syn#1)`.
pub fn print_event(out: &mut dyn Write, started: Instant, event: &Event) {
    let now = socklab::clock::monotonic_ns();
    let ago = Duration::from_nanos(now.saturating_sub(event.at_ns));
    let at = started.elapsed().saturating_sub(ago).as_secs_f64();
    let _ = writeln!(out, "socklab queue: +{at:.3}s {event}");
}

/// `socklab nfqueue`.
#[derive(Debug, Args)]
pub struct NfqueueArgs {
    /// The queue number the firewall rule names (`NFQUEUE --queue-num N`).
    #[arg(long, value_name = "N", default_value_t = 0, help_heading = super::HOW)]
    queue: u16,
    /// Hold every packet this long (and up to the jitter more, 50ms~10ms), order kept.
    #[arg(long, value_name = "DURATION[~JITTER]", help_heading = super::HOW)]
    delay: Option<String>,
    /// Stop after this long (e.g. 5s); otherwise on Ctrl-C.
    #[arg(long = "for", value_name = "DURATION", value_parser = super::duration::limit, help_heading = super::LIMITS)]
    duration: Option<Duration>,
    #[command(flatten)]
    faults: QueueFaults,
}

/// Serves the queue in this namespace until stopped.
pub fn nfqueue(args: NfqueueArgs) -> io::Result<()> {
    let (delay, jitter) = match &args.delay {
        None => (Duration::ZERO, Duration::ZERO),
        Some(text) => match format!("delay={text}").parse::<socklab::netns::Condition>() {
            Ok(socklab::netns::Condition::Delay(d, j)) => (d, j),
            Ok(_) | Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("--delay '{text}': write a duration, e.g. 50ms or 50ms~10ms"),
                ));
            }
        },
    };
    let (faults, loss, seed) = args.faults.split();
    let plan = Plan { faults, delay, jitter, loss, seed };
    let stop = socklab::echo::Stop::new();
    let signals = super::signals::stop_on_signals(stop.clone())?;
    let served = (|| {
        let mut queue = socklab::nfqueue::NfQueue::bind(args.queue)?;
        let started = Instant::now();
        let until = args.duration.map(|d| started + d);
        let done = || stop.requested() || until.is_some_and(|u| Instant::now() >= u);
        socklab::netns::serve(&mut queue, &plan, &done, |e| print_event(&mut io::stdout(), started, e))
    })();
    signals.finish();
    served
}
