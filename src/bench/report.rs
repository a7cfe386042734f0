//! What a benchmark run measured, for people (`Display`) and for scripts (`to_json`).

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

    /// Every byte came back as sent, and something was served.
    pub fn is_correct(&self) -> bool {
        self.mismatches == 0 && self.lost_bytes == 0 && self.served > 0
    }

    /// One JSON object (no dependency needed for this flat a shape).
    pub fn to_json(&self) -> String {
        let lat = |f: fn(&Latency) -> u64| self.latency.as_ref().map_or("null".to_string(), |l| f(l).to_string());
        let err = self.first_error.as_ref().map_or("null".to_string(), |e| format!("{:?}", e));
        format!(
            concat!(
                "{{\"mode\":\"{}\",\"addr\":\"{}\",\"conns\":{},\"size\":{},\"seconds\":{:.3},\"served\":{},",
                "\"round_trips\":{},\"round_trips_per_sec\":{:.1},\"connections\":{},\"conns_per_sec\":{:.1},",
                "\"bytes\":{},\"mib_per_sec\":{:.2},\"errors\":{},\"mismatches\":{},\"lost_bytes\":{},",
                "\"latency_ns\":{{\"count\":{},\"p50\":{},\"p99\":{},\"p999\":{},\"max\":{}}},\"first_error\":{}}}"
            ),
            self.mode.name(),
            self.addr,
            self.conns,
            self.size,
            self.secs(),
            self.served,
            self.round_trips,
            self.round_trips_per_sec(),
            self.connections,
            self.conns_per_sec(),
            self.bytes,
            self.mib_per_sec(),
            self.errors,
            self.mismatches,
            self.lost_bytes,
            lat(|l| l.count),
            lat(|l| l.p50),
            lat(|l| l.p99),
            lat(|l| l.p999),
            lat(|l| l.max),
            err
        )
    }
}

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
        if let Some(e) = &self.first_error {
            write!(f, "\n  first error: {e}")?;
        }
        Ok(())
    }
}
