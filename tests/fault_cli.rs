//! The CLI side of the CI fixtures: `server --fault`, `socklab proxy`, `--json` on server and
//! client, and clear errors for malformed fault specs. Real processes over loopback.
#![cfg(target_os = "linux")]

mod common;

use std::process::Stdio;

use common::{ReadyFile, ServerProcess, echo_with_std, socklab};
use socklab::timeline::json;

fn client(port: u16, extra: &[&str]) -> std::process::Output {
    let port = port.to_string();
    socklab().args(["client", "--host", "127.0.0.1", "--port", &port]).args(extra).output().expect("run the client")
}

#[test]
fn server_fault_slicer_gives_the_tutorial_client_short_reads() {
    // The echo of "Hello, world" in slices of 2 bytes, 20 ms apart: the client (recv of 10) gets
    // one slice per recv, never the 10 bytes it asks for.
    let mut server = ServerProcess::start("127.0.0.1", &["--model", "thread", "--fault", "slicer=2b:20ms"]);
    assert!(server.line().starts_with(&format!("Server start, listening {} ", server.addr.port())));
    let out = client(server.addr.port(), &["--message", "Hello, world"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let received: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("Client Received: ")).collect();
    assert_eq!(received.concat(), "Hello, world");
    assert!(received.len() >= 4, "{received:?}");
    assert!(received.iter().all(|r| r.len() <= 4), "{received:?}");
    let (status, _, err) = server.terminate();
    assert!(status.success(), "{err}");
    assert!(err.contains("fault proxy"), "the note says where the proxy is: {err}");
}

#[test]
fn malformed_faults_are_usage_errors_that_name_the_problem() {
    for (spec, says) in [
        ("latency=5", "needs a unit"),
        ("bogus=1", "unknown fault 'bogus'"),
        ("slicer=0b", "at least 1 byte"),
        ("upstream:refuse", "no direction"),
    ] {
        let out = socklab().args(["server", "--port", "0", "--fault", spec]).stdin(Stdio::null()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{spec}: {err}");
        assert!(err.contains(says) && err.lines().count() == 1, "{spec}: {err}");
        let out = socklab().args(["proxy", "--upstream", "127.0.0.1:9", "--fault", spec]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{spec}");
    }
    let out = socklab().args(["proxy", "--upstream", "127.0.0.1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--upstream"));
}

#[test]
fn fault_syntax_is_in_help() {
    for cmd in ["server", "proxy"] {
        let out = socklab().args([cmd, "--help"]).output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        for name in ["latency=", "slicer=", "reset_peer=after=", "half_open", "refuse", "@25%"] {
            assert!(text.contains(name), "{cmd} --help lacks {name}");
        }
    }
}

#[test]
fn proxy_forwards_applies_faults_and_reports_counts_as_json() {
    let server = ServerProcess::start("127.0.0.1", &["--model", "thread", "-q"]);
    let ready = ReadyFile::new();
    let upstream = server.addr.to_string();
    let mut proxy = socklab()
        .args(["proxy", "--upstream", &upstream, "--json", "--fault", "upstream:latency=10ms"])
        .args(ready.args())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = ready.wait(&mut proxy);
    assert_eq!(echo_with_std(addr, b"through the proxy"), b"through the proxy");
    common::signal(proxy.id(), "TERM");
    let out = proxy.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines: Vec<json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| json::parse(l).expect(l)).collect();
    assert_eq!(lines[0].get("event").and_then(json::Value::as_str), Some("listening"));
    assert_eq!(lines[0].get("upstream").and_then(json::Value::as_str), Some(upstream.as_str()));
    assert_eq!(lines[0].get("addr").and_then(json::Value::as_str), Some(addr.to_string().as_str()));
    let stopped = &lines[1];
    assert_eq!(stopped.get("event").and_then(json::Value::as_str), Some("stopped"));
    for (key, value) in [("accepted", 1), ("bytes_in", 17), ("bytes_out", 17), ("faults_applied", 1)] {
        assert_eq!(stopped.get(key).and_then(json::Value::as_i64), Some(value), "{key}");
    }
}

fn events(text: &str) -> Vec<(String, json::Value)> {
    text.lines()
        .map(|l| {
            let v = json::parse(l).unwrap_or_else(|e| panic!("{l:?}: {e}"));
            (v.get("event").and_then(json::Value::as_str).expect("an event name").to_string(), v)
        })
        .collect()
}

#[test]
fn server_and_client_json_have_one_object_per_event() {
    let mut server = ServerProcess::start("127.0.0.1", &["--json"]);
    let first = server.line();
    let (name, listening) = &events(&first)[0];
    assert_eq!(name, "listening");
    assert_eq!(listening.get("port").and_then(json::Value::as_i64), Some(server.addr.port() as i64));
    let out = client(server.addr.port(), &["--json"]);
    assert!(out.status.success());
    let got = events(&String::from_utf8(out.stdout).unwrap());
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["connected", "data", "data", "closed"]);
    assert_eq!(got[0].1.get("peer").and_then(json::Value::as_str), Some(server.addr.to_string().as_str()));
    assert_eq!(got[1].1.get("dir").and_then(json::Value::as_str), Some("out"));
    assert_eq!(got[2].1.get("bytes").and_then(json::Value::as_i64), Some(5));
    let (status, rest, _) = server.terminate();
    assert!(status.success());
    let names: Vec<String> = events(&rest).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["accepted", "data", "data", "closed", "stopped"]);
}

#[test]
fn client_json_reports_a_refused_connect_as_an_error_object() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = client(free, &["--json"]);
    assert_eq!(out.status.code(), Some(1));
    let got = events(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "error");
    assert_eq!(got[0].1.get("errno").and_then(json::Value::as_str), Some("ECONNREFUSED"));
}

#[test]
fn server_ready_file_has_the_proxy_address_when_faults_are_on() {
    let server = ServerProcess::start("127.0.0.1", &["--fault", "latency=100ms", "-q"]);
    // The address in the ready file is the proxy's: the echo arrives with the fault's delay.
    let start = std::time::Instant::now();
    assert_eq!(echo_with_std(server.addr, b"ready"), b"ready");
    assert!(start.elapsed() >= std::time::Duration::from_millis(100), "{:?}", start.elapsed());
}
