//! Packet faults through a netfilter queue (`NFQUEUE`), served by socklab: `socklab netns --drop
//! syn#1 / --link delay=50ms`, `Pair::faults` and `Pair::run_in`, and `socklab nfqueue`'s netlink
//! calls narrated as `strace -f` prints them.
//!
//! Needs root, `ip` and `iptables-legacy` (Debian's iptables package; `.ci/run` installs it).
//! Otherwise each test passes after printing why it did not run. Namespaces are named after the
//! test and the pid, and deleted by `Pair`'s drop, also when an assertion fails.
#![cfg(target_os = "linux")]

mod common;

use std::io::Read;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Killed, ReadyFile, have};
use socklab::netns::{ADDR_B, Action, Condition, Did, Dir, Fault, Kind, Pair, Side};
use socklab::timeline::json;

fn missing(tools: &[&str]) -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if uid.as_deref() != Some("0") {
        return Some("not root: network namespaces and packet queues need CAP_SYS_ADMIN and CAP_NET_ADMIN".into());
    }
    ["ip", "iptables-legacy"]
        .iter()
        .chain(tools)
        .find(|tool| !have(tool))
        .map(|tool| format!("{tool} is not installed (apt-get install iproute2 iptables {tool})"))
}

macro_rules! require {
    ($($tool:expr),*) => {
        if let Some(why) = missing(&[$($tool),*]) {
            common::skip(&why);
            return;
        }
    };
}

/// `socklab server` (thread model) in side B; returns it and its address.
fn server_in_b(pair: &Pair) -> (Killed, SocketAddr) {
    let ready = ReadyFile::new();
    let mut cmd = pair.command(Side::B, env!("CARGO_BIN_EXE_socklab"));
    cmd.args(["server", "--host", &ADDR_B.to_string(), "--port", "0", "--model", "thread", "--quiet"]);
    let mut child = cmd.args(ready.args()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let addr = ready.wait(&mut child);
    (Killed(child), addr)
}

fn prefix(test: &str) -> String {
    format!("sl-{test}")
}

/// The done-when: `socklab netns --link delay=50ms` adds 50 ms each way without netem,
/// seen in the client's own round trips (a pingpong bench: one message at a time).
#[test]
fn link_delay_adds_the_delay_each_way_without_netem() {
    require!();
    let bin = env!("CARGO_BIN_EXE_socklab");
    let out = Command::new(bin)
        .args(["netns", "--link", "delay=50ms", "--peer-port", "5000", "--peer"])
        .arg(format!("{bin} server --host 10.77.0.2 --port 5000 --model thread --quiet"))
        .args(["--", bin, "bench", "--addr", "10.77.0.2:5000", "--duration", "1", "--allow-remote", "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let report = json::parse(stdout.lines().last().unwrap()).unwrap();
    let latency = report.get("latency_ns").unwrap();
    let p50_ns = latency.get("p50").and_then(json::Value::as_i64).unwrap();
    let count = latency.get("count").and_then(json::Value::as_i64).unwrap();
    println!("pingpong over delay=50ms: {count} round trips, p50 {:.1} ms", p50_ns as f64 / 1e6);
    // 50 ms out and 50 ms back; generous above (a loaded machine adds scheduling delays).
    assert!(p50_ns >= 100_000_000, "round trip {p50_ns} ns is less than the 100 ms the delay adds");
    assert!(p50_ns < 400_000_000, "round trip {p50_ns} ns: far more than the delay");
    assert!((2..=12).contains(&count), "{count} round trips of ~100 ms in 1 s");
}

/// The done-when: `--drop syn#1` makes a connect take about 1 s more (the SYN's first
/// retransmission timeout), and the queue says which segment it dropped.
#[test]
fn drop_syn_1_delays_the_connect_by_the_first_syn_timeout() {
    require!();
    let bin = env!("CARGO_BIN_EXE_socklab");
    let start = Instant::now();
    let out = Command::new(bin)
        .args(["netns", "--drop", "syn#1", "--peer-port", "5000", "--peer"])
        .arg(format!("{bin} server --host 10.77.0.2 --port 5000 --quiet"))
        .args(["--", bin, "client", "--host", "10.77.0.2", "--port", "5000", "--message", "hi", "--json"])
        .output()
        .unwrap();
    let took = start.elapsed();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("\"event\": \"connected\""), "{stdout}");
    let dropped: Vec<&str> = stderr.lines().filter(|l| l.starts_with("socklab queue:")).collect();
    assert_eq!(dropped.len(), 1, "{stderr}");
    assert!(dropped[0].contains("dropped out 10.77.0.1:") && dropped[0].contains("[S] seq"), "{stderr}");
    assert!(dropped[0].ends_with("(drop syn#1)"), "{stderr}");
    assert!(took >= Duration::from_millis(900), "the connect did not wait for the SYN's retransmission: {took:?}");
}

/// `Pair::run_in`: the test's own code connects from inside side A; with the queue dropping the
/// first SYN its connect takes the SYN's timeout longer, and the queue's record matches.
#[test]
fn run_in_side_a_feels_the_dropped_syn() {
    require!();
    let mut pair = Pair::create(&prefix("runin")).expect("create the namespaces");
    let (_server, addr) = server_in_b(&pair);
    pair.faults(&[Fault::parse(Action::Drop, "syn#1").unwrap()], 0.0, 1).unwrap();
    let (took, echo) = pair
        .run_in(Side::A, || {
            let start = Instant::now();
            let stream = socklab::tcp::TcpStream::connect(&addr).expect("connect from side A");
            let took = start.elapsed();
            stream.send_all(b"ping").unwrap();
            let mut buf = [0u8; 4];
            let mut got = 0;
            while got < 4 {
                got += stream.recv(&mut buf[got..]).unwrap();
            }
            (took, buf)
        })
        .unwrap();
    assert_eq!(&echo, b"ping");
    assert!(took >= Duration::from_millis(900), "connect took {took:?}");
    let events = pair.fault_events();
    assert_eq!(events.len(), 1, "{events:?}");
    let e = events[0];
    assert_eq!((e.did, e.segment.dir), (Did::Dropped, Dir::Out));
    assert!(Kind::Syn.to_string() == "syn" && e.segment.flags & 0x12 == 0x02, "{e}");
    assert_eq!(
        e.segment.dst,
        match addr {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(_) => unreachable!(),
        }
    );
}

/// Issue 23's point for Rust tests: the test's own client inside side A, under the queue's seeded
/// random loss, sees its retransmissions in its own TCP_INFO, and the bytes still arrive whole.
#[test]
fn run_in_side_a_sees_retransmissions_under_seeded_loss() {
    require!();
    let mut pair = Pair::create(&prefix("loss")).expect("create the namespaces");
    let (_server, addr) = server_in_b(&pair);
    pair.faults(&[], 10.0, 7).unwrap();
    let message = common::pattern(32 * 1024, 3);
    let (echo, info) = pair
        .run_in(Side::A, || {
            let stream = socklab::tcp::TcpStream::connect(&addr).expect("connect from side A");
            stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let mut echo = Vec::new();
            let mut buf = vec![0u8; 65536];
            // One chunk at a time, its echo read back whole before the next: bounded buffering.
            for chunk in message.chunks(8192) {
                stream.send_all(chunk).unwrap();
                let want = echo.len() + chunk.len();
                while echo.len() < want {
                    let n = stream.recv(&mut buf).unwrap();
                    assert!(n > 0, "the server closed early");
                    echo.extend_from_slice(&buf[..n]);
                }
            }
            (echo, socklab::diag::tcp_info(stream.socket()).unwrap())
        })
        .unwrap();
    assert!(echo == message, "the echo differs from what was sent");
    let lost = pair.fault_events().iter().filter(|e| e.did == Did::Lost).count();
    println!("10% loss, seed 7: the queue dropped {lost} segments; TCP_INFO total_retrans {}", info.total_retrans);
    assert!(lost > 0, "the seeded loss dropped nothing");
    assert!(info.total_retrans > 0, "TCP_INFO shows no retransmission: {info:?}");
}

/// Bad fault specs are refused with what was wrong, before anything is built.
#[test]
fn bad_fault_specs_say_what_is_wrong() {
    for (arg, says) in [
        ("syn", "write KIND#N"),
        ("data/up#1", "unknown direction 'up'"),
        ("psh#1", "unknown kind 'psh'"),
        ("150%", "from 0% to 100%"),
    ] {
        let out =
            Command::new(env!("CARGO_BIN_EXE_socklab")).args(["netns", "--drop", arg, "--", "true"]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{arg}: {err}");
        assert!(err.contains(says), "{arg}: {err}");
    }
}

/// The queue's netlink conversation under `--trace` is what `strace -f` prints, call for call:
/// socket(AF_NETLINK, ..., NETLINK_NETFILTER), bind, the two NFQNL_MSG_CONFIG requests and their
/// acknowledgements, each NFQNL_MSG_PACKET received and each NFQNL_MSG_VERDICT sent. strace runs
/// inside the namespace, as strace can only name a netlink socket's protocol in its own namespace.
#[test]
fn nfqueue_narration_equals_strace() {
    require!("strace");
    let pair = Pair::create(&prefix("strace")).expect("create the namespaces");
    let (_server, addr) = server_in_b(&pair);
    let rule = ["-w", "5", "-A", "OUTPUT", "-o", "sl-a", "-p", "tcp", "-j", "NFQUEUE", "--queue-num", "3"];
    assert!(pair.command(Side::A, "iptables-legacy").args(rule).status().unwrap().success());
    let dir = std::env::temp_dir().join(format!("socklab-nfqueue-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("strace.txt");
    let mut queue = Killed(
        pair.command(Side::A, "strace")
            .args(["-f", "-o"])
            .arg(&log)
            .args([
                env!("CARGO_BIN_EXE_socklab"),
                "--trace",
                "nfqueue",
                "--queue",
                "3",
                "--drop",
                "syn#1",
                "--for",
                "6s",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // The rule has no --queue-bypass: a packet sent before the queue is bound would be dropped.
    // So the connect waits for the two acknowledgements (bind, copy mode) in strace's log.
    let until = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("NFQNL_MSG_CONFIG")
        || std::fs::read_to_string(&log).unwrap_or_default().matches("NLMSG_ERROR").count() < 2
    {
        assert!(Instant::now() < until, "the queue did not bind");
        std::thread::sleep(Duration::from_millis(20));
    }
    let echoed = pair
        .run_in(Side::A, || {
            let stream = socklab::tcp::TcpStream::connect(&addr).unwrap();
            stream.send_all(b"q").unwrap();
            let mut b = [0u8; 1];
            stream.recv(&mut b).unwrap()
        })
        .unwrap();
    assert_eq!(echoed, 1);
    let status = queue.0.wait().unwrap();
    let mut narration = String::new();
    queue.0.stderr.take().unwrap().read_to_string(&mut narration).unwrap();
    let mut printed = String::new();
    queue.0.stdout.take().unwrap().read_to_string(&mut printed).unwrap();
    let strace = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(status.success(), "{narration}");
    assert!(printed.contains("dropped out") && printed.contains("(drop syn#1)"), "{printed}");
    let ours = netlink_calls(narration.lines().map(|l| socklab::trace::split_pid_mark(l).1.to_string()));
    let theirs = netlink_calls(strace_lines(&strace).into_iter());
    assert!(ours.iter().any(|l| l.contains("NFNL_SUBSYS_QUEUE<<8|NFQNL_MSG_PACKET")), "{narration}");
    assert!(ours.iter().any(|l| l.contains("NFNL_SUBSYS_QUEUE<<8|NFQNL_MSG_VERDICT")), "{narration}");
    assert!(ours.len() >= 8, "{ours:#?}");
    assert_eq!(
        ours, theirs,
        "--trace (left) and strace -f (right) differ\n--- narration:\n{narration}\n--- strace:\n{strace}"
    );
}

/// strace's lines without pids, `<unfinished ...>` joined with its `<... resumed>` half.
fn strace_lines(text: &str) -> Vec<String> {
    let mut pending: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((pid, rest)) = line.split_once(' ') else { continue };
        let rest = rest.trim_start();
        if let Some(head) = rest.strip_suffix(" <unfinished ...>") {
            pending.insert(pid.to_string(), head.to_string());
        } else if rest.starts_with("<... ") {
            let tail = rest.split_once(" resumed>").map_or("", |(_, t)| t);
            out.push(format!("{}{}", pending.remove(pid).unwrap_or_default(), tail));
        } else {
            out.push(rest.to_string());
        }
    }
    out
}

/// The calls on the netfilter socket (found by its socket() line), alignment spaces removed.
fn netlink_calls(lines: impl Iterator<Item = String>) -> Vec<String> {
    let mut fd = None;
    let mut out = Vec::new();
    for line in lines {
        let line = line.trim().to_string();
        if line.starts_with("socket(AF_NETLINK, SOCK_RAW|SOCK_CLOEXEC, NETLINK_NETFILTER)") {
            fd = line.rsplit(" = ").next().map(|f| f.trim().to_string());
        }
        let Some(fd) = &fd else { continue };
        let on_fd = ["bind(", "sendto(", "recvfrom(", "close("].iter().any(|c| line.starts_with(&format!("{c}{fd},")))
            || line.starts_with(&format!("close({fd})"));
        if line.starts_with("socket(AF_NETLINK") || on_fd {
            let (call, ret) = line.rsplit_once(" = ").unwrap_or((&line, ""));
            out.push(format!("{} = {}", call.trim_end(), ret.trim()));
        }
    }
    out
}

/// Conditions still parse as before, and delay's jitter is part of it.
#[test]
fn delay_with_jitter_parses() {
    assert_eq!(
        "delay=50ms~10ms".parse::<Condition>(),
        Ok(Condition::Delay(Duration::from_millis(50), Duration::from_millis(10)))
    );
    let f = Fault::parse(Action::Drop, "data/in#2").unwrap();
    assert_eq!((f.kind, f.dir, f.nth), (Kind::Data, Some(Dir::In), 2));
}
