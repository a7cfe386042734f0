//! `socklab walkthrough --scenario NAME`: each story of TCP on a bad link, checked against the
//! tools. For every scenario the timeline's segments equal what `tcpdump -i sl-a` printed in the
//! same namespace (same segments, same order, the retransmission among them), and the counters
//! the scenario reports equal what `nstat` read there before and after. Then each scenario's own
//! story: the SYN sent again after ~1 s, the RTO doubling, the fast retransmit with duplicate ACKs
//! and the cwnd cut (also in the SVG), the zero window and its probes.
//!
//! Needs root, `ip`, `iptables-legacy`, `tcpdump` and `nstat` (iproute2); otherwise each test
//! passes after printing why it did not run. Namespaces are named after the scenario and the pid,
//! deleted by `Pair`'s drop.
#![cfg(target_os = "linux")]

mod common;

use std::io::Read;
use std::net::SocketAddrV4;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::have;
use socklab::netns::{Pair, Side};
use socklab::walkthrough::scenario::{self, Outcome, Scenario};

fn missing() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if uid.as_deref() != Some("0") {
        return Some("not root: the scenarios need namespaces, a packet queue and a capture".into());
    }
    ["ip", "iptables-legacy", "tcpdump", "nstat"]
        .into_iter()
        .find(|tool| !have(tool))
        .map(|tool| format!("{tool} is not installed (apt-get install iproute2 iptables tcpdump)"))
}

/// tcpdump in side A on its veth, stopped (and its lines read) by `finish`.
struct Tcpdump(Child, Option<std::thread::JoinHandle<String>>);

impl Tcpdump {
    fn start(pair: &Pair) -> Tcpdump {
        let mut child = pair
            .command(Side::A, "tcpdump")
            .args(["-i", "sl-a", "-nn", "-S", "-l", "--immediate-mode", "-B", "32768", "tcp"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // It prints "listening on sl-a" on stderr once its socket is open; wait for that.
        let mut err = child.stderr.take().unwrap();
        let mut seen = Vec::new();
        let until = Instant::now() + Duration::from_secs(10);
        let mut byte = [0u8; 1];
        while !String::from_utf8_lossy(&seen).contains("listening on") {
            assert!(Instant::now() < until, "tcpdump did not start: {}", String::from_utf8_lossy(&seen));
            match err.read(&mut byte) {
                Ok(1) => seen.push(byte[0]),
                _ => panic!("tcpdump ended: {}", String::from_utf8_lossy(&seen)),
            }
        }
        let rest = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        Tcpdump(child, Some(rest))
    }

    /// Its output, and how many packets it says the kernel dropped before it could read them.
    fn finish(mut self) -> (String, u64) {
        // Let the last frames through tcpdump's buffer, then stop it as Ctrl-C would.
        std::thread::sleep(Duration::from_millis(300));
        let _ = Command::new("kill").args(["-INT", &self.0.id().to_string()]).status();
        let mut out = String::new();
        self.0.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        let _ = self.0.wait();
        let stats = self.1.take().and_then(|t| t.join().ok()).unwrap_or_default();
        let dropped = stats
            .lines()
            .find_map(|l| {
                l.strip_suffix(" packets dropped by kernel").or_else(|| l.strip_suffix(" packet dropped by kernel"))
            })
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0);
        (out, dropped)
    }
}

impl Drop for Tcpdump {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One tcpdump line: `IP 10.77.0.1.40138 > 10.77.0.2.5000: Flags [S], seq 123, win 64240, ...,
/// length 0` as (src, dst, flag bits, seq when printed, length).
fn tcpdump_segment(line: &str) -> Option<(SocketAddrV4, SocketAddrV4, u8, Option<u32>, usize)> {
    let rest = &line[line.find(" IP ")? + 4..];
    let (src, rest) = rest.split_once(" > ")?;
    let (dst, rest) = rest.split_once(": ")?;
    let addr = |a: &str| {
        let (ip, port) = a.rsplit_once('.')?;
        Some(SocketAddrV4::new(ip.parse().ok()?, port.parse().ok()?))
    };
    let letters = rest.strip_prefix("Flags [")?.split(']').next()?;
    let mut flags = 0u8;
    for c in letters.chars() {
        flags |= match c {
            'F' => 0x01,
            'S' => 0x02,
            'R' => 0x04,
            'P' => 0x08,
            '.' => 0x10,
            _ => 0,
        };
    }
    let seq = rest.split(", ").find_map(|f| f.strip_prefix("seq ")).and_then(|s| s.split(':').next()?.parse().ok());
    let len = rest.rsplit("length ").next()?.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()?;
    Some((addr(src)?, addr(dst)?, flags, seq, len))
}

/// nstat's absolute values in side `side`: `TcpRetransSegs 1 0.0` lines.
fn nstat(pair: &Pair, side: Side) -> Vec<(String, u64)> {
    let out = pair.command(side, "nstat").args(["-asz"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?.to_string(), f.next()?.parse().ok()?))
        })
        .collect()
}

fn get(values: &[(String, u64)], name: &str) -> u64 {
    values.iter().find(|(n, _)| n == name).map_or(0, |(_, v)| *v)
}

/// Runs `scenario` with tcpdump and nstat watching, and checks the timeline and the counters
/// against them. Returns the outcome for the scenario's own assertions.
fn run_checked(scenario: Scenario) -> Option<Outcome> {
    if let Some(why) = missing() {
        common::skip(&why);
        return None;
    }
    let mut pair = Pair::create(&format!("sl-{}", scenario.name())).expect("create the namespaces");
    let tcpdump = Tcpdump::start(&pair);
    let before = [nstat(&pair, Side::A), nstat(&pair, Side::B)];
    let outcome = scenario::run_on(&mut pair, scenario).expect("the scenario runs");
    let after = [nstat(&pair, Side::A), nstat(&pair, Side::B)];
    let (dumped, tcpdump_dropped) = tcpdump.finish();
    let text = socklab::timeline::text::events(&outcome.timeline);
    println!("{text}");

    // Same segments, same order as tcpdump on the same veth: every segment tcpdump printed is in
    // the timeline, in its order; and when tcpdump lost none, nothing else is.
    let theirs: Vec<_> = dumped.lines().filter_map(tcpdump_segment).collect();
    let ours = scenario::segments(&outcome.timeline);
    let same = |o: &(SocketAddrV4, SocketAddrV4, u8, u32, usize),
                t: &(SocketAddrV4, SocketAddrV4, u8, Option<u32>, usize)| {
        o.0 == t.0 && o.1 == t.1 && o.2 == t.2 && t.3.is_none_or(|seq| seq == o.3) && o.4 == t.4
    };
    // tcpdump lists what two CPUs captured as it reads it, so two segments a few microseconds
    // apart can come out of order (an ACK stamped .033423 before the data stamped .033420) where
    // the timeline is sorted by time: each of tcpdump's segments is looked for from a few places
    // before the last one matched, each of ours matched once.
    const SLACK: usize = 8;
    let mut used = vec![false; ours.len()];
    let mut at: usize = 0;
    for (i, t) in theirs.iter().enumerate() {
        let from = at.saturating_sub(SLACK);
        match (from..ours.len()).find(|&j| !used[j] && same(&ours[j], t)) {
            Some(j) => {
                used[j] = true;
                at = at.max(j + 1);
            }
            None => panic!(
                "{}: tcpdump's segment {i} {t:?} is not in the timeline (in order)\n--- ours:\n{text}\n--- tcpdump:\n{dumped}",
                scenario.name()
            ),
        }
    }
    if tcpdump_dropped == 0 {
        assert_eq!(
            ours.len(),
            theirs.len(),
            "{}: segment count differs\n--- ours:\n{text}\n--- tcpdump:\n{dumped}",
            scenario.name()
        );
    } else {
        println!(
            "note: tcpdump says the kernel dropped {tcpdump_dropped} packets before it read them: the counts are not compared"
        );
    }
    // The counters the scenario reports are nstat's.
    for c in &outcome.counters {
        let i = if c.side == Side::A { 0 } else { 1 };
        assert_eq!(
            (c.before, c.after),
            (get(&before[i], &c.name), get(&after[i], &c.name)),
            "{}: {} of side {:?}: the scenario's before/after against nstat's",
            scenario.name(),
            c.name,
            c.side
        );
    }
    // Each check is on the timeline, said as agreeing or as "the kernel did something else".
    for c in &outcome.checks {
        let said = if c.agrees {
            format!("as expected: {}", c.expected)
        } else {
            format!("did something else: expected {}", c.expected)
        };
        assert!(text.contains(&said), "{}: the check is not on the timeline: {said}", scenario.name());
    }
    assert!(
        text.starts_with(&format!("+0.000000  note    scenario {}: ", scenario.name())),
        "the plan comes first:\n{text}"
    );
    Some(outcome)
}

fn check<'a>(outcome: &'a Outcome, expected: &str) -> &'a scenario::Check {
    outcome
        .checks
        .iter()
        .find(|c| c.expected.contains(expected))
        .unwrap_or_else(|| panic!("no check {expected:?}: {:?}", outcome.checks))
}

fn delta(outcome: &Outcome, side: Side, name: &str) -> u64 {
    let c = outcome.counters.iter().find(|c| c.side == side && c.name == name).unwrap();
    c.after - c.before
}

#[test]
fn syn_lost_the_syn_is_sent_again_after_a_second() {
    let Some(outcome) = run_checked(Scenario::SynLost) else { return };
    assert!(check(&outcome, "connect() returns about 1 s late").agrees, "{:?}", outcome.checks);
    assert_eq!(delta(&outcome, Side::A, "TcpExtTCPSynRetrans"), 1);
    // The dropped SYN is on the timeline though no capture saw it; the one that got through is
    // named as the retransmission.
    let text = socklab::timeline::text::events(&outcome.timeline);
    assert!(text.contains("LOST: side A's queue dropped the client's [S] seq 0"), "{text}");
    assert!(text.contains("SYN sent again"), "{text}");
    assert_eq!(
        scenario::segments(&outcome.timeline).iter().filter(|s| s.2 == 0x02).count(),
        1,
        "one SYN crossed the link"
    );
}

#[test]
fn data_lost_the_rto_fires_then_doubles() {
    let Some(outcome) = run_checked(Scenario::DataLost) else { return };
    assert_eq!(delta(&outcome, Side::A, "TcpExtTCPTimeouts"), 2, "{:?}", outcome.checks);
    assert!(check(&outcome, "the RTO doubles after a timeout").agrees, "{:?}", outcome.checks);
    let text = socklab::timeline::text::events(&outcome.timeline);
    assert!(text.contains("rto 204ms -> 408ms") || text.contains("backoff 0 -> 1"), "no backoff in tcp_info:\n{text}");
}

#[test]
fn fast_retransmit_before_any_timeout_and_the_svg_shows_it() {
    let Some(outcome) = run_checked(Scenario::FastRetransmit) else { return };
    for expected in ["a fast retransmit, no timeout", "SACK recovery entered", "duplicate ACKs", "cwnd cut"] {
        assert!(check(&outcome, expected).agrees, "{expected}: {:?}", outcome.checks);
    }
    let svg = socklab::timeline::svg::render(&outcome.timeline);
    for shown in ["LOST: side A", "duplicate ACK #3", "retransmission of bytes", "SACK "] {
        assert!(svg.contains(shown), "the SVG does not show {shown:?}");
    }
    // The cwnd cut the check found (`cwnd 15 -> 9`), in the SVG's note (`->` escaped; a long note
    // may wrap between the two numbers).
    let cut = &check(&outcome, "cwnd cut").observed;
    let field = cut.split(", ").find(|f| f.starts_with("cwnd ")).unwrap();
    let (from, to) = field.trim_start_matches("cwnd ").split_once(" -> ").unwrap();
    assert!(
        svg.contains(&format!("cwnd {from} -&gt; {to}"))
            || (svg.contains(&format!("cwnd {from}")) && svg.contains(&format!("-&gt; {to}"))),
        "the SVG does not show the cwnd change {field}"
    );
}

#[test]
fn zero_window_the_sender_probes_and_blocks() {
    let Some(outcome) = run_checked(Scenario::ZeroWindow) else { return };
    for expected in ["window 0", "window probes", "send() blocks"] {
        assert!(check(&outcome, expected).agrees, "{expected}: {:?}", outcome.checks);
    }
    let zero = scenario::segments(&outcome.timeline);
    assert!(!zero.is_empty());
}

#[test]
fn synack_lost_the_handshake_is_repeated() {
    let Some(outcome) = run_checked(Scenario::SynackLost) else { return };
    assert!(check(&outcome, "retransmission of the handshake").agrees, "{:?}", outcome.checks);
}

#[test]
fn fin_lost_the_fin_is_sent_again() {
    let Some(outcome) = run_checked(Scenario::FinLost) else { return };
    assert!(check(&outcome, "TcpRetransSegs +1 (the FIN)").agrees, "{:?}", outcome.checks);
    let text = socklab::timeline::text::events(&outcome.timeline);
    assert!(text.contains("FIN sent again"), "{text}");
}

#[test]
fn reorder_and_duplicate_the_application_sees_nothing() {
    let Some(outcome) = run_checked(Scenario::Reorder) else { return };
    assert!(check(&outcome, "reads the bytes in order").agrees, "{:?}", outcome.checks);
    let Some(outcome) = run_checked(Scenario::Duplicate) else { return };
    assert!(check(&outcome, "D-SACK").agrees, "{:?}", outcome.checks);
    // The copy crossed the link (the capture shows the data twice) and the ACK carries the D-SACK.
    let text = socklab::timeline::text::events(&outcome.timeline);
    assert!(text.contains("D-SACK 1:6: the server got these bytes twice"), "{text}");
    let data: Vec<_> =
        scenario::segments(&outcome.timeline).into_iter().filter(|s| s.4 == 5 && s.0.port() != 5000).collect();
    assert_eq!(data.len(), 2, "the duplicated segment twice on the link: {data:?}");
}

/// Without root the scenario says so, with the exact command to run, and fails.
#[test]
fn without_root_the_scenario_says_what_to_run() {
    if !have("setpriv") {
        common::skip("setpriv (util-linux) is not installed");
        return;
    }
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", env!("CARGO_BIN_EXE_socklab")])
        .args(["walkthrough", "--scenario", "zero-window"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("Permission denied") && !err.contains("socklab") {
        common::skip("the test binary is not executable by nobody here");
        return;
    }
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("needs root") && err.contains("sudo socklab walkthrough --scenario zero-window"), "{err}");
}

#[test]
fn an_unknown_scenario_lists_the_names() {
    let out =
        Command::new(env!("CARGO_BIN_EXE_socklab")).args(["walkthrough", "--scenario", "syn-lose"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("unknown scenario 'syn-lose'") && err.contains("fast-retransmit"), "{err}");
}
