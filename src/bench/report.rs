//! Floor 4: what a benchmark run measured, for people (`Display`) and for scripts (`to_json`).

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::Mode;

/// Latency percentiles, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    /// Samples recorded.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
}

impl Latency {
    /// Percentiles of `hist`, or `None` when it is empty.
    pub fn from_histogram(hist: &Histogram<u64>) -> Option<Latency> {
        (!hist.is_empty()).then(|| Latency {
            count: hist.len(),
            p50: hist.value_at_quantile(0.50),
            p99: hist.value_at_quantile(0.99),
            p999: hist.value_at_quantile(0.999),
            max: hist.max(),
        })
    }
}

/// A snapshot while the run goes on.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Since the start.
    pub elapsed: Duration,
    /// Round trips so far (pingpong).
    pub round_trips: u64,
    /// Connections completed so far (connrate).
    pub connections: u64,
    /// Bytes echoed and checked so far.
    pub bytes: u64,
    /// Failed connections and mismatches so far.
    pub errors: u64,
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        write!(
            f,
            "{:5.1}s  {:>10.0} round trips/s  {:>8.1} MiB/s  {:>8.0} conn/s  {} errors",
            secs,
            self.round_trips as f64 / secs,
            self.bytes as f64 / secs / 1048576.0,
            self.connections as f64 / secs,
            self.errors
        )
    }
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct Report {
    /// What was measured.
    pub mode: Mode,
    /// Against which server.
    pub addr: SocketAddr,
    /// Connections at once.
    pub conns: usize,
    /// Message / write size.
    pub size: usize,
    /// Time under load (the grace period after it is not counted).
    pub elapsed: Duration,
    /// Connections that got at least one echo.
    pub served: usize,
    /// Completed round trips (pingpong).
    pub round_trips: u64,
    /// Completed connect-send-echo-close cycles (connrate).
    pub connections: u64,
    /// Bytes echoed back and checked.
    pub bytes: u64,
    /// Connections that failed (refused, reset, closed early).
    pub errors: u64,
    /// Connections whose echo differed from what they sent.
    pub mismatches: u64,
    /// Bytes sent that never came back.
    pub lost_bytes: u64,
    /// Round-trip (pingpong) or connect-to-echo (connrate) latency.
    pub latency: Option<Latency>,
    /// The first failure, for the message.
    pub first_error: Option<String>,
    /// System calls the server made from the first connect to the end of the run (the grace
    /// period included, the closing of our connections not), counted by the kernel; `Err`: why
    /// they could not be counted.
    pub server_syscalls: Result<u64, String>,
    /// The CPU time this load generator used over the run, in CPUs (1.0: one whole CPU; it runs
    /// on one thread), from `getrusage(2)`. At about 1.0 the generator, not the server, set the
    /// pace.
    pub generator_cpu: Option<f64>,
}

impl Report {
    fn secs(&self) -> f64 {
        self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Round trips per second.
    pub fn round_trips_per_sec(&self) -> f64 {
        self.round_trips as f64 / self.secs()
    }

    /// Echoed MiB per second.
    pub fn mib_per_sec(&self) -> f64 {
        self.bytes as f64 / self.secs() / 1048576.0
    }

    /// Connections per second.
    pub fn conns_per_sec(&self) -> f64 {
        self.connections as f64 / self.secs()
    }

    /// The server's system calls per unit of the mode's work, and that unit: per 1,000 round
    /// trips (pingpong), per MiB echoed (bulk), per connection (connrate).
    pub fn syscalls_per_unit(&self) -> Option<(f64, &'static str)> {
        let calls = *self.server_syscalls.as_ref().ok()? as f64;
        let (work, unit) = match self.mode {
            Mode::Pingpong => (self.round_trips as f64 / 1000.0, "1,000 round trips"),
            Mode::Bulk => (self.bytes as f64 / 1048576.0, "MiB"),
            Mode::Connrate => (self.connections as f64, "connection"),
        };
        (work > 0.0).then(|| (calls / work, unit))
    }

    /// Every byte came back as sent, and something was served.
    pub fn is_correct(&self) -> bool {
        self.mismatches == 0 && self.lost_bytes == 0 && self.served > 0
    }

    /// One JSON object on one line, written by the crate's JSON writer ([`crate::timeline::json`]).
    pub fn to_json(&self) -> String {
        use crate::timeline::json::{self, Value};
        let lat = |f: fn(&Latency) -> u64| self.latency.as_ref().map_or(Value::Null, |l| Value::Int(f(l) as i64));
        let latency = Value::Object(vec![
            ("count".into(), lat(|l| l.count)),
            ("p50".into(), lat(|l| l.p50)),
            ("p99".into(), lat(|l| l.p99)),
            ("p999".into(), lat(|l| l.p999)),
            ("max".into(), lat(|l| l.max)),
        ]);
        json::compact_object(&[
            ("mode", Value::Str(self.mode.name().into())),
            ("addr", Value::Str(self.addr.to_string())),
            ("conns", Value::Int(self.conns as i64)),
            ("size", Value::Int(self.size as i64)),
            ("seconds", Value::Fixed(self.secs(), 3)),
            ("served", Value::Int(self.served as i64)),
            ("round_trips", Value::Int(self.round_trips as i64)),
            ("round_trips_per_sec", Value::Fixed(self.round_trips_per_sec(), 1)),
            ("connections", Value::Int(self.connections as i64)),
            ("conns_per_sec", Value::Fixed(self.conns_per_sec(), 1)),
            ("bytes", Value::Int(self.bytes as i64)),
            ("mib_per_sec", Value::Fixed(self.mib_per_sec(), 2)),
            ("errors", Value::Int(self.errors as i64)),
            ("mismatches", Value::Int(self.mismatches as i64)),
            ("lost_bytes", Value::Int(self.lost_bytes as i64)),
            ("latency_ns", latency),
            ("first_error", self.first_error.clone().map_or(Value::Null, Value::Str)),
            ("server_syscalls", self.server_syscalls.as_ref().map_or(Value::Null, |&n| Value::Int(n as i64))),
            ("server_syscalls_per", self.syscalls_per_unit().map_or(Value::Null, |(v, _)| Value::Fixed(v, 1))),
            ("server_syscalls_unit", self.syscalls_per_unit().map_or(Value::Null, |(_, u)| Value::Str(u.into()))),
            (
                "server_syscalls_not_counted",
                self.server_syscalls.as_ref().err().map_or(Value::Null, |e| Value::Str(e.clone())),
            ),
            ("generator_cpu", self.generator_cpu.map_or(Value::Null, |v| Value::Fixed(v, 2))),
        ])
    }
}

/// The share of one CPU above which the load generator counts as the bottleneck.
const GENERATOR_BUSY: f64 = 0.9;

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} against {}: {} conns x {} B for {:.2} s",
            self.mode.name(),
            self.addr,
            self.conns,
            self.size,
            self.secs()
        )?;
        match self.mode {
            Mode::Pingpong => writeln!(f, "  round trips/s  {:.0}", self.round_trips_per_sec())?,
            Mode::Connrate => writeln!(f, "  connections/s  {:.0}", self.conns_per_sec())?,
            Mode::Bulk => {}
        }
        writeln!(f, "  echoed         {:.1} MiB/s", self.mib_per_sec())?;
        if let Some(l) = &self.latency {
            let us = |ns: u64| ns as f64 / 1000.0;
            writeln!(
                f,
                "  latency        p50 {:.1} us  p99 {:.1} us  p99.9 {:.1} us  max {:.1} us",
                us(l.p50),
                us(l.p99),
                us(l.p999),
                us(l.max)
            )?;
        }
        write!(
            f,
            "  served {}/{} conns, errors {}, mismatches {}, lost bytes {}",
            self.served, self.conns, self.errors, self.mismatches, self.lost_bytes
        )?;
        match (&self.server_syscalls, self.syscalls_per_unit()) {
            (Ok(n), Some((per, unit))) => write!(f, "\n  server syscalls {n} ({per:.1} per {unit})")?,
            (Ok(n), None) => write!(f, "\n  server syscalls {n}")?,
            (Err(why), _) => write!(f, "\n  server syscalls not counted: {why}")?,
        }
        if let Some(cpu) = self.generator_cpu {
            write!(f, "\n  load generator {:.0} % of one CPU", cpu * 100.0)?;
            if cpu >= GENERATOR_BUSY {
                write!(f, " (busy: it set the pace, so the server may be faster than this shows)")?;
            }
        }
        if let Some(e) = &self.first_error {
            write!(f, "\n  first error: {e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::json;

    fn report(first_error: Option<&str>, latency: Option<Latency>) -> Report {
        Report {
            mode: Mode::Pingpong,
            addr: "[::1]:5000".parse().unwrap(),
            conns: 4,
            size: 64,
            elapsed: Duration::from_millis(2000),
            served: 4,
            round_trips: 1000,
            connections: 0,
            bytes: 64000,
            errors: 0,
            mismatches: 0,
            lost_bytes: 0,
            latency,
            first_error: first_error.map(String::from),
            server_syscalls: Ok(2100),
            generator_cpu: Some(0.5),
        }
    }

    #[test]
    fn json_is_compact_and_keeps_its_shape() {
        let latency = Latency { count: 1000, p50: 10, p99: 20, p999: 30, max: 40 };
        assert_eq!(
            report(None, Some(latency)).to_json(),
            concat!(
                r#"{"mode":"pingpong","addr":"[::1]:5000","conns":4,"size":64,"seconds":2.000,"served":4,"#,
                r#""round_trips":1000,"round_trips_per_sec":500.0,"connections":0,"conns_per_sec":0.0,"#,
                r#""bytes":64000,"mib_per_sec":0.03,"errors":0,"mismatches":0,"lost_bytes":0,"#,
                r#""latency_ns":{"count":1000,"p50":10,"p99":20,"p999":30,"max":40},"first_error":null,"#,
                r#""server_syscalls":2100,"server_syscalls_per":2100.0,"server_syscalls_unit":"1,000 round trips","#,
                r#""server_syscalls_not_counted":null,"generator_cpu":0.50}"#
            )
        );
    }

    #[test]
    fn a_busy_load_generator_says_it_set_the_pace() {
        let mut r = report(None, None);
        assert!(r.to_string().ends_with("\n  load generator 50 % of one CPU"), "{r}");
        r.generator_cpu = Some(0.97);
        assert!(r.to_string().contains("load generator 97 % of one CPU (busy: it set the pace,"), "{r}");
        r.generator_cpu = None;
        assert!(!r.to_string().contains("load generator"), "{r}");
    }

    /// `{:?}` escaping (what this used to use) writes `\u{1b}`, which JSON readers reject.
    #[test]
    fn an_error_message_with_any_characters_is_valid_json() {
        let message = "reset by peer \"x\" \\ \u{1b}[31m it's 约";
        let parsed = json::parse(&report(Some(message), None).to_json()).expect("valid JSON");
        assert_eq!(parsed.get("first_error").and_then(json::Value::as_str), Some(message));
        assert!(parsed.get("latency_ns").and_then(|l| l.get("p99")).is_some_and(json::Value::is_null));
    }
}
