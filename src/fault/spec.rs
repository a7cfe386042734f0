//! What a fault is, and its one text syntax (`--fault`, the README, the library's `FromStr`).
//!
//! ```text
//! [DIRECTION:]NAME[=ARGS][@PERCENT%]
//!
//! DIRECTION   downstream (server → client, the default, as in Toxiproxy), upstream (client → server),
//!             both
//! latency=50ms[~10ms]          each chunk waits 50 ms (± up to 10 ms of jitter)
//! bandwidth=10kb               at most 10,000 bytes a second
//! slicer=10b[~5b][:2ms]        chunks cut into slices of 10 bytes (± 5), 2 ms apart
//! limit_data=1kb               close the connection once 1,000 bytes went this way
//! reset_peer[=DURATION]        RST (SO_LINGER 0, then close) that long after the connection
//! reset_peer=after=1kb         … or once 1,000 bytes went this way
//! timeout[=DURATION]           stop forwarding (bytes are read and dropped); close after DURATION,
//!                              or when the side it drains closes
//!                              (none or 0: no clock)
//! slow_close=DURATION          pass the end of stream (FIN) on that much later
//! half_open                    stop reading and writing, keep the connection (a cut cable) until
//!                              both peers have gone (a closed peer is found by keepalive probes)
//! refuse                       stop accepting: connections wait in the backlog until it fills
//!                              (the whole listener; no direction, no percentage)
//! @PERCENT%                    the share of connections that get the fault (Toxiproxy's toxicity);
//!                              100% when left out
//! ```
//!
//! Sizes: `B`, `b` (bytes), `kb` (1,000), `kib` (1,024), `mb`, `mib`; a bare number is bytes.
//! Durations: `us`, `ms`, `s`, `m`; no bare numbers (is `50` seconds or milliseconds?).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Which way a fault acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client → server (what the server reads).
    Upstream,
    /// Server → client (what the client reads). The default.
    Downstream,
    /// Both ways.
    Both,
}

impl Direction {
    /// The word `--fault` and Toxiproxy's `stream` use: `upstream`, `downstream` (or `both`).
    pub fn name(self) -> &'static str {
        match self {
            Direction::Upstream => "upstream",
            Direction::Downstream => "downstream",
            Direction::Both => "both",
        }
    }

    /// Whether the fault acts on bytes going `upstream` (true) or downstream (false).
    pub fn covers(self, upstream: bool) -> bool {
        match self {
            Direction::Both => true,
            Direction::Upstream => upstream,
            Direction::Downstream => !upstream,
        }
    }
}

/// When `reset_peer` fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetAfter {
    /// This long after the connection was accepted (or the fault was set).
    Delay(Duration),
    /// Once this many bytes were forwarded in the fault's direction.
    Bytes(u64),
}

/// One kind of fault, with its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Every chunk waits `delay` plus a random amount within ± `jitter`.
    Latency {
        /// The delay.
        delay: Duration,
        /// The most the delay varies either way.
        jitter: Duration,
    },
    /// At most this many bytes a second.
    Bandwidth(u64),
    /// Chunks cut into slices of `size` ± `variation` bytes, `delay` apart: what exercises a
    /// reader's short-read loop (the tutorial's client reads 10 bytes at a time).
    Slicer {
        /// Average slice size in bytes (at least 1).
        size: usize,
        /// The most a slice's size varies either way.
        variation: usize,
        /// Time between slices.
        delay: Duration,
    },
    /// Close the connection once this many bytes went this way.
    LimitData(u64),
    /// RST the receiving peer (SO_LINGER 0, then close) and close the other side.
    ResetPeer(ResetAfter),
    /// Stop forwarding (bytes are read and dropped); close after the duration (`None`: never).
    Timeout(Option<Duration>),
    /// Pass the end of stream on this much later.
    SlowClose(Duration),
    /// Stop reading and writing; keep the connection.
    HalfOpen,
    /// Stop accepting new connections.
    Refuse,
}

impl Kind {
    /// The fault's name in `--fault` (and Toxiproxy's toxic type where it has one): `latency`...
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Latency { .. } => "latency",
            Kind::Bandwidth(_) => "bandwidth",
            Kind::Slicer { .. } => "slicer",
            Kind::LimitData(_) => "limit_data",
            Kind::ResetPeer(_) => "reset_peer",
            Kind::Timeout(_) => "timeout",
            Kind::SlowClose(_) => "slow_close",
            Kind::HalfOpen => "half_open",
            Kind::Refuse => "refuse",
        }
    }
}

/// A fault: what, which way, and for what share of connections.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fault {
    /// The fault.
    pub kind: Kind,
    /// Which way it acts (ignored by `refuse`).
    pub direction: Direction,
    /// The share of connections that get it, 0.0 to 1.0 (Toxiproxy's toxicity).
    pub probability: f64,
}

impl Fault {
    /// `kind` downstream, for every connection.
    pub fn new(kind: Kind) -> Fault {
        Fault { kind, direction: Direction::Downstream, probability: 1.0 }
    }

    /// The same fault acting `direction`.
    pub fn direction(self, direction: Direction) -> Fault {
        Fault { direction, ..self }
    }

    /// The same fault for a share `probability` (0.0 to 1.0) of connections.
    pub fn probability(self, probability: f64) -> Fault {
        Fault { probability: probability.clamp(0.0, 1.0), ..self }
    }

    /// The name a fault gets when none is given (`set_faults`, a builder's `fault`): Toxiproxy's
    /// default toxic name, `TYPE_STREAM` (`latency_downstream`).
    pub fn default_name(&self) -> String {
        format!("{}_{}", self.kind.name(), self.direction.name())
    }

    /// `latency=DELAY`.
    pub fn latency(delay: Duration) -> Fault {
        Fault::new(Kind::Latency { delay, jitter: Duration::ZERO })
    }

    /// `slicer=SIZEb:DELAY`.
    pub fn slicer(size: usize, delay: Duration) -> Fault {
        Fault::new(Kind::Slicer { size: size.max(1), variation: 0, delay })
    }
}

/// Why a fault spec was rejected. The message names the part that is wrong and the right form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError(pub String);

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SpecError {}

/// The fault names, for error messages.
pub const NAMES: &str = "latency, bandwidth, slicer, limit_data, reset_peer, timeout, slow_close, half_open, refuse";

impl FromStr for Fault {
    type Err = SpecError;

    fn from_str(spec: &str) -> Result<Fault, SpecError> {
        let bad = |why: String| SpecError(format!("fault '{spec}': {why}"));
        let text = spec.trim();
        let (text, probability) = match text.rsplit_once('@') {
            Some((rest, pct)) => (rest, Some(percent(pct).map_err(bad)?)),
            None => (text, None),
        };
        let (direction, text) = match text.split_once(':') {
            Some((dir @ ("upstream" | "downstream" | "both"), rest)) => (Some(dir), rest),
            _ => (None, text),
        };
        let (name, args) = match text.split_once('=') {
            Some((name, args)) => (name, Some(args)),
            None => (text, None),
        };
        let need = |form: &str| bad(format!("{name} needs a value: {form}"));
        let kind = match (name, args) {
            ("latency", Some(a)) => {
                let (delay, jitter) = with_variation(a, duration).map_err(bad)?;
                Kind::Latency { delay, jitter: jitter.unwrap_or(Duration::ZERO) }
            }
            ("latency", None) => return Err(need("latency=50ms or latency=50ms~10ms")),
            ("bandwidth", Some(a)) => match size(a).map_err(bad)? {
                0 => return Err(bad("a bandwidth of 0 bytes/s would never deliver; use timeout instead".into())),
                n => Kind::Bandwidth(n),
            },
            ("bandwidth", None) => return Err(need("bandwidth=10kb (bytes a second)")),
            ("slicer", Some(a)) => {
                let (sizes, delay) = match a.split_once(':') {
                    Some((sizes, delay)) => (sizes, duration(delay).map_err(bad)?),
                    None => (a, Duration::ZERO),
                };
                let (avg, var) = with_variation(sizes, size).map_err(bad)?;
                if avg == 0 {
                    return Err(bad("a slice must hold at least 1 byte".into()));
                }
                let var = var.unwrap_or(0).min(avg - 1);
                Kind::Slicer { size: avg as usize, variation: var as usize, delay }
            }
            ("slicer", None) => return Err(need("slicer=10b, slicer=10b~5b or slicer=10b:2ms")),
            ("limit_data", Some(a)) => Kind::LimitData(size(a).map_err(bad)?),
            ("limit_data", None) => return Err(need("limit_data=1kb")),
            ("reset_peer", None) => Kind::ResetPeer(ResetAfter::Delay(Duration::ZERO)),
            ("reset_peer", Some(a)) => match a.strip_prefix("after=") {
                Some(bytes) => Kind::ResetPeer(ResetAfter::Bytes(size(bytes).map_err(bad)?)),
                None => Kind::ResetPeer(ResetAfter::Delay(duration(a).map_err(bad)?)),
            },
            ("timeout", None) => Kind::Timeout(None),
            ("timeout", Some(a)) => Kind::Timeout(Some(duration(a).map_err(bad)?).filter(|d| !d.is_zero())),
            ("slow_close", Some(a)) => Kind::SlowClose(duration(a).map_err(bad)?),
            ("slow_close", None) => return Err(need("slow_close=500ms")),
            ("half_open", None) => Kind::HalfOpen,
            ("refuse", None) => Kind::Refuse,
            ("half_open" | "refuse", Some(_)) => return Err(bad(format!("{name} takes no value"))),
            _ => return Err(bad(format!("unknown fault '{name}': use one of {NAMES}"))),
        };
        if kind == Kind::Refuse && (direction.is_some() || probability.is_some()) {
            return Err(bad("refuse stops the whole listener: it takes no direction and no percentage".into()));
        }
        let direction = match direction {
            Some("upstream") => Direction::Upstream,
            Some("both") => Direction::Both,
            _ => Direction::Downstream,
        };
        Ok(Fault { kind, direction, probability: probability.unwrap_or(1.0) })
    }
}

/// `VALUE` or `VALUE~VARIATION`, each parsed by `one`.
fn with_variation<T>(text: &str, one: fn(&str) -> Result<T, String>) -> Result<(T, Option<T>), String> {
    match text.split_once('~') {
        Some((value, var)) => Ok((one(value)?, Some(one(var)?))),
        None => Ok((one(text)?, None)),
    }
}

/// `50%` (or `0.5`) → 0.5.
fn percent(text: &str) -> Result<f64, String> {
    let value = match text.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
        None => text.trim().parse::<f64>(),
    }
    .map_err(|_| format!("'@{text}' is not a percentage: write e.g. @50%"))?;
    if (0.0..=1.0).contains(&value) { Ok(value) } else { Err(format!("'@{text}' is out of range: use 0% to 100%")) }
}

/// A size in bytes: `10`, `10b`, `1kb` (1,000), `1kib` (1,024), `2mb`, `1mib`.
pub fn size(text: &str) -> Result<u64, String> {
    let t = text.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    if digits.is_empty() {
        return Err(format!("'{text}' is not a size: write e.g. 10b or 1kb"));
    }
    let scale = match unit {
        "" | "b" => 1,
        "kb" => 1_000,
        "kib" => 1_024,
        "mb" => 1_000_000,
        "mib" => 1 << 20,
        _ => return Err(format!("'{text}' has an unknown size unit '{unit}': use b, kb, kib, mb or mib")),
    };
    let n: u64 = digits.parse().map_err(|_| format!("'{text}' is not a size: write e.g. 10b or 1kb"))?;
    n.checked_mul(scale).ok_or_else(|| format!("'{text}' is too large"))
}

/// A duration: `250us`, `50ms`, `1.5s`, `1m`, `1h`; at most one day. The command line's durations
/// (`--grace`, `--timeout`, `bench --duration`...) are parsed by this function too, so every
/// duration socklab takes is written the same way.
pub fn duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    if number.is_empty() {
        return Err(format!("'{text}' is not a duration: write e.g. 50ms or 2s"));
    }
    let scale = match unit {
        "us" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "" => return Err(format!("'{text}' needs a unit: write e.g. 50ms or 2s")),
        _ => return Err(format!("'{text}' has an unknown time unit '{unit}': use us, ms, s, m or h")),
    };
    let value: f64 = number.parse().map_err(|_| format!("'{text}' is not a duration: write e.g. 50ms or 2s"))?;
    let secs = value * scale;
    if !(0.0..=86_400.0).contains(&secs) {
        return Err(format!("'{text}' is out of range: use 0s to 24h"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Fault {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn every_form_in_the_syntax_parses() {
        let ms = Duration::from_millis;
        assert_eq!(parse("latency=50ms").kind, Kind::Latency { delay: ms(50), jitter: ms(0) });
        assert_eq!(parse("latency=50ms~10ms").kind, Kind::Latency { delay: ms(50), jitter: ms(10) });
        assert_eq!(parse("bandwidth=10kb").kind, Kind::Bandwidth(10_000));
        assert_eq!(parse("slicer=10b:2ms").kind, Kind::Slicer { size: 10, variation: 0, delay: ms(2) });
        assert_eq!(parse("slicer=10b~5b").kind, Kind::Slicer { size: 10, variation: 5, delay: ms(0) });
        assert_eq!(parse("limit_data=1kib").kind, Kind::LimitData(1024));
        assert_eq!(parse("reset_peer").kind, Kind::ResetPeer(ResetAfter::Delay(ms(0))));
        assert_eq!(parse("reset_peer=100ms").kind, Kind::ResetPeer(ResetAfter::Delay(ms(100))));
        let f = parse("downstream:reset_peer=after=1kb");
        assert_eq!((f.kind, f.direction), (Kind::ResetPeer(ResetAfter::Bytes(1000)), Direction::Downstream));
        assert_eq!(parse("timeout").kind, Kind::Timeout(None));
        assert_eq!(parse("timeout=0s").kind, Kind::Timeout(None));
        assert_eq!(parse("timeout=1s").kind, Kind::Timeout(Some(ms(1000))));
        assert_eq!(parse("slow_close=500ms").kind, Kind::SlowClose(ms(500)));
        assert_eq!(parse("both:half_open").direction, Direction::Both);
        assert_eq!(parse("upstream:half_open").direction, Direction::Upstream);
        assert_eq!(parse("refuse").kind, Kind::Refuse);
        assert_eq!(parse("latency=1s@25%").probability, 0.25);
        assert_eq!(parse("latency=1s").direction, Direction::Downstream);
    }

    #[test]
    fn every_malformed_spec_is_rejected_with_what_is_wrong() {
        for (spec, says) in [
            ("", "unknown fault ''"),
            ("latency", "latency needs a value"),
            ("latency=50", "needs a unit"),
            ("latency=fast", "not a duration"),
            ("latency=5d", "unknown time unit 'd'"),
            ("latency=25h", "out of range"),
            ("bandwidth=0", "never deliver"),
            ("bandwidth=10kbit", "unknown size unit 'kbit'"),
            ("slicer=0b", "at least 1 byte"),
            ("slicer=10b:2", "needs a unit"),
            ("limit_data=-1", "not a size"),
            ("reset_peer=after=lots", "not a size"),
            ("half_open=1s", "takes no value"),
            ("refuse@50%", "no direction and no percentage"),
            ("upstream:refuse", "no direction"),
            ("latency=1s@150%", "out of range"),
            ("latency=1s@half", "not a percentage"),
            ("sideways:latency=1s", "unknown fault 'sideways:latency'"),
            ("jitter=1s", "unknown fault 'jitter'"),
            ("slow_close=99999999s", "out of range"),
        ] {
            let err = spec.parse::<Fault>().expect_err(spec).to_string();
            assert!(err.contains(says), "{spec:?}: {err:?} should say {says:?}");
            assert!(err.starts_with(&format!("fault '{spec}'")), "{err}");
        }
    }
}
