//! The faults a proxy cannot make, on a real link: two network namespaces joined by a veth pair
//! (`socklab::netns::Pair`), the server in one, the client in the other, the link made lossy,
//! slow, delayed, blackholed or unplugged by nftables, tc and socklab's packet queue inside
//! those namespaces only.
//!
//! Needs root, `ip`, `tc` and `nft` (CI has them: `.ci/run` installs iproute2 and nftables).
//! Otherwise each test passes after printing why it did not run (`SKIPPED (tests/netns.rs): ...`
//! on stderr, visible in a plain `cargo test`). Namespaces are deleted by `Pair`'s drop, also when
//! an assertion fails.
#![cfg(target_os = "linux")]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Killed, ReadyFile, have, pattern};
use socklab::netns::{ADDR_B, Condition, Pair, Side};
use socklab::timeline::json;

/// Why these tests cannot run here, if they cannot.
fn missing() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if uid.as_deref() != Some("0") {
        return Some("not root: network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN".into());
    }
    ["ip", "tc", "nft", "iptables-legacy", "python3"]
        .into_iter()
        .find(|tool| !have(tool))
        .map(|tool| format!("{tool} is not installed (apt-get install iproute2 nftables iptables python3)"))
}

macro_rules! require_netns {
    () => {
        if let Some(why) = missing() {
            common::skip(&why);
            return;
        }
    };
}

/// `socklab server --json` in side B; returns it and its address.
fn server_in_b(pair: &Pair) -> (Killed, std::net::SocketAddr) {
    let ready = ReadyFile::new();
    let mut cmd = pair.command(Side::B, env!("CARGO_BIN_EXE_socklab"));
    cmd.args(["server", "--host", &ADDR_B.to_string(), "--port", "0", "--model", "thread", "--json"]);
    let mut child = cmd.args(ready.args()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let addr = ready.wait(&mut child);
    (Killed(child), addr)
}

fn retransmitted(pair: &Pair, side: Side) -> u64 {
    let out = pair.command(side, "cat").arg("/proc/net/snmp").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let tcp: Vec<&str> = text.lines().filter(|l| l.starts_with("Tcp:")).collect();
    let names: Vec<&str> = tcp[0].split_whitespace().collect();
    let values: Vec<&str> = tcp[1].split_whitespace().collect();
    let i = names.iter().position(|n| *n == "RetransSegs").unwrap();
    values[i].parse().unwrap()
}

#[test]
fn echo_over_a_lossy_slow_link_is_byte_exact_and_closes_cleanly() {
    require_netns!();
    let mut pair = Pair::create("socklab-test").expect("create the namespaces");
    // 5 % of packets dropped each way (nftables), at most 1 Mbit/s each way (tbf, which queues).
    let mut conditions = vec![Condition::Loss(5.0), Condition::Rate(1_000_000)];
    // 20 ms each way, held by socklab's packet queue (no netem needed).
    conditions.push(Condition::Delay(Duration::from_millis(20), Duration::ZERO));
    pair.apply(&conditions).unwrap();
    let (server, addr) = server_in_b(&pair);
    // 200 kB each way: some 300 packets, so with 5 % loss some are lost (P(none) < 1e-6).
    let message = pattern(200_000, 7);
    let mut client = pair
        .command(Side::A, env!("CARGO_BIN_EXE_socklab"))
        .args(["client", "--host", &addr.ip().to_string(), "--port", &addr.port().to_string()])
        .args(["--message", "-", "--chunk", "4096", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    client.stdin.take().unwrap().write_all(&message).unwrap();
    let out = client.wait_with_output().unwrap();
    // The client compares every byte of the echo as it arrives and fails on a difference.
    assert!(out.status.success(), "client: {}", String::from_utf8_lossy(&out.stderr));
    let events: Vec<json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| json::parse(l).unwrap()).collect();
    let received: i64 = events
        .iter()
        .filter(|e| e.get("dir").and_then(json::Value::as_str) == Some("in"))
        .filter_map(|e| e.get("bytes").and_then(json::Value::as_i64))
        .sum();
    assert_eq!(received, 200_000);
    assert!(retransmitted(&pair, Side::A) + retransmitted(&pair, Side::B) > 0, "no loss happened");
    // The server saw the handshake complete and the client's FIN.
    let mut server = server;
    let mut lines = BufReader::new(server.0.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    while let Some(Ok(line)) = lines.next() {
        let event = json::parse(&line).unwrap();
        let name = event.get("event").and_then(json::Value::as_str).unwrap().to_string();
        let done = name == "closed";
        seen.push(name);
        if done {
            break;
        }
    }
    drop(server);
    assert_eq!(seen.first().map(String::as_str), Some("listening"));
    assert!(seen.contains(&"accepted".to_string()), "{seen:?}");
    assert_eq!(seen.last().map(String::as_str), Some("closed"), "{seen:?}");
}

#[test]
fn blackhole_makes_connect_time_out() {
    require_netns!();
    let mut pair = Pair::create("socklab-test").expect("create the namespaces");
    pair.apply(&[Condition::Blackhole]).unwrap();
    // One SYN retry instead of six: the connect gives up after about 3 s, not 2 minutes.
    pair.sysctl(Side::A, "net.ipv4.tcp_syn_retries", "1").unwrap();
    let (_server, addr) = server_in_b(&pair);
    let start = Instant::now();
    let out = pair
        .command(Side::A, env!("CARGO_BIN_EXE_socklab"))
        .args(["client", "--host", &addr.ip().to_string(), "--port", &addr.port().to_string(), "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    let error = json::parse(text.lines().last().expect("an error object")).unwrap();
    assert_eq!(error.get("errno").and_then(json::Value::as_str), Some("ETIMEDOUT"), "{text}");
    // The server was listening all along: not a refusal, a silence (the first retry is 1 s later).
    assert!(start.elapsed() >= Duration::from_millis(900), "{:?}", start.elapsed());
}

#[test]
fn unplug_mid_connection_times_out_on_retransmissions() {
    require_netns!();
    let pair = Pair::create("socklab-test").expect("create the namespaces");
    // Three retransmissions before giving up (the default 15 takes about 15 minutes).
    pair.sysctl(Side::A, "net.ipv4.tcp_retries2", "3").unwrap();
    let (_server, addr) = server_in_b(&pair);
    // A client that echoes once, waits for the cable to go, then sends again.
    let script = r#"
import socket, sys, errno
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
s.sendall(b"before"); assert s.recv(16) == b"before"
print("connected", flush=True); sys.stdin.readline()
s.sendall(b"after")
try:
    s.recv(16); print("echoed")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e)))
"#;
    let mut client = Killed(
        pair.command(Side::A, "python3")
            .args(["-c", script, &addr.ip().to_string(), &addr.port().to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut out = BufReader::new(client.0.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "connected");
    pair.unplug().unwrap();
    let start = Instant::now();
    writeln!(client.0.stdin.take().unwrap()).unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    // Not a reset, not a close: the sender's own retransmissions ran out.
    assert_eq!(line.trim(), "ETIMEDOUT");
    assert!(start.elapsed() >= Duration::from_secs(1), "{:?}", start.elapsed());
}

#[test]
fn namespaces_are_removed_when_the_pair_is_dropped_even_by_a_panic() {
    require_netns!();
    let names = std::panic::catch_unwind(|| {
        let pair = Pair::create("socklab-test").unwrap();
        let names = [pair.namespace(Side::A), pair.namespace(Side::B)];
        std::panic::resume_unwind(Box::new(names));
    })
    .expect_err("the closure panics");
    let names = names.downcast::<[String; 2]>().unwrap();
    let list = String::from_utf8(Command::new("ip").args(["netns", "list"]).output().unwrap().stdout).unwrap();
    for name in names.iter() {
        assert!(!list.lines().any(|l| l.split_whitespace().next() == Some(name)), "{name} left behind: {list}");
    }
}

#[test]
fn socklab_netns_runs_a_peer_and_a_command_over_the_bad_link() {
    require_netns!();
    let bin = env!("CARGO_BIN_EXE_socklab");
    let peer = format!("{bin} server --host 10.77.0.2 --port 5000 --model thread -q");
    let out = Command::new(bin)
        .args(["netns", "--link", "loss=5%", "--link", "rate=1mbit", "--peer", &peer, "--peer-port", "5000", "--"])
        .args([bin, "client", "--host", "10.77.0.2", "--port", "5000", "--message", "through the namespaces"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let echoed: String = text.lines().filter_map(|l| l.strip_prefix("Client Received: ")).collect();
    assert_eq!(echoed, "through the namespaces");
    // The command's exit code is passed on; it sees both addresses.
    let out = Command::new(bin)
        .args(["netns", "--", "sh", "-c", "test \"$SOCKLAB_NETNS_PEER\" = 10.77.0.2 && exit 7"])
        .status()
        .unwrap();
    assert_eq!(out.code(), Some(7));
}

#[test]
fn socklab_netns_unplug_after_makes_a_connection_time_out() {
    require_netns!();
    let bin = env!("CARGO_BIN_EXE_socklab");
    // The client side gives up after 3 retransmissions; the cable goes 1 s into the command,
    // which connects at once, then sends again after 2 s.
    let script = "sysctl -q -w net.ipv4.tcp_retries2=3 && python3 -c '
import socket, time, errno
s = socket.create_connection((\"10.77.0.2\", 5000), timeout=60)
s.sendall(b\"x\"); assert s.recv(1) == b\"x\"
time.sleep(2)
s.sendall(b\"y\")
try:
    s.recv(1); print(\"echoed\")
except OSError as e:
    print(errno.errorcode[e.errno])
'";
    let peer = format!("{bin} server --host 10.77.0.2 --port 5000 --model thread -q");
    let out = Command::new(bin)
        .args(["netns", "--unplug-after", "1s", "--peer", &peer, "--peer-port", "5000", "--", "sh", "-c", script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The peer's listening line comes first (it shares stdout), then the client's verdict.
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().last(), Some("ETIMEDOUT"));
}

#[test]
fn socklab_netns_rejects_bad_conditions_before_touching_anything() {
    // Runs as any user: parsing fails first.
    let out =
        Command::new(env!("CARGO_BIN_EXE_socklab")).args(["netns", "--link", "loss=5", "--", "true"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("loss=5%"));
}
