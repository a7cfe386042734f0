//! Bad input and failing calls: each gives a non-zero exit, one message naming the cause and what
//! to do, and never a panic.

mod common;

use std::process::Output;

use common::{ServerProcess, socklab};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_clean_failure(out: &Output, code: i32, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "exit code; stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    for needle in needles {
        assert!(err.contains(needle), "expected {needle:?} in: {err}");
    }
}

#[test]
fn port_in_use_names_the_port_and_suggests_another() {
    let server = ServerProcess::start("127.0.0.1", &["--quiet"]);
    let port = server.addr.port().to_string();
    let out = socklab().args(["server", "--host", "127.0.0.1", "--port", &port]).output().unwrap();
    assert_clean_failure(
        &out,
        1,
        &[&format!("bind 127.0.0.1:{port}: EADDRINUSE (Address already in use)"), "choose another with --port"],
    );
}

#[test]
fn connection_refused_says_no_server_is_listening() {
    // A port that was free a moment ago: bind it, note it, release it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = socklab().args(["client", "--host", "127.0.0.1", "--port", &port.to_string()]).output().unwrap();
    assert_clean_failure(
        &out,
        1,
        &[
            &format!("connect 127.0.0.1:{port}: ECONNREFUSED (Connection refused)"),
            &format!("no server is listening on 127.0.0.1:{port}; start one with: socklab server --port {port}"),
        ],
    );
}

#[test]
fn unresolvable_host_is_named() {
    // Resolve inside a network namespace of our own (loopback only), so the lookup fails locally and
    // no query leaves the machine. Needs root; otherwise use a name that fails syntax checks.
    let namespaced = std::process::Command::new("unshare").args(["-n", "true"]).status().is_ok_and(|s| s.success());
    let out = if namespaced {
        std::process::Command::new("unshare")
            .args(["-n", env!("CARGO_BIN_EXE_socklab"), "client", "--host", "no-such-host.invalid"])
            .output()
            .unwrap()
    } else {
        eprintln!("note: unshare -n unavailable; testing a malformed host instead");
        socklab().args(["client", "--host", "[no such host]"]).output().unwrap()
    };
    let err = stderr(&out);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("no-such-host.invalid") || err.contains("[no such host]"), "{err}");
}

#[test]
fn invalid_ports_are_usage_errors_naming_the_flag() {
    for bad in ["65536", "abc", "-1", ""] {
        for command in ["server", "client"] {
            let out = socklab().args([command, "--port", bad]).output().unwrap();
            assert_clean_failure(&out, 2, &["--port"]);
        }
    }
}

#[test]
fn empty_host_is_refused_with_a_reason() {
    let out = socklab().args(["client", "--host", "", "--port", "9"]).output().unwrap();
    let err = stderr(&out);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("host is empty"), "{err}");
}
