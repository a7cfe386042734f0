//! `socklab walkthrough` tells the tutorial's story: at least 90 % of the system calls it shows
//! (in text and in `--json`) are the tutorial's; the server learns nothing through a ready file
//! (its port comes from its narrated bind/getsockname); the client is the tutorial's (no socket
//! timeouts, no shutdown: close right after the echo); `--all` shows socklab's own calls too.

mod common;

use common::socklab;
use socklab::timeline::json::{self, Value};
use socklab::walkthrough::TUTORIAL_CALLS;

/// The syscall events of `walkthrough --json ARGS`: (side, call name, line).
fn calls(extra: &[&str]) -> Vec<(String, String, String)> {
    let out = socklab().args(["walkthrough", "--json", "--accept-delay", "100ms"]).args(extra).output().unwrap();
    assert!(out.status.success(), "walkthrough failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut calls = Vec::new();
    for line in text.lines() {
        let value = json::parse(line).unwrap_or_else(|e| panic!("not JSON: {e}: {line}"));
        let get = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
        if get("source") == "syscall" {
            calls.push((get("side"), get("call"), get("line")));
        }
    }
    calls
}

fn tutorial_share(calls: &[(String, String, String)]) -> f64 {
    let ours = calls.iter().filter(|(_, name, _)| TUTORIAL_CALLS.contains(&name.as_str())).count();
    ours as f64 / calls.len() as f64
}

#[test]
fn the_walkthrough_shows_the_tutorials_calls() {
    let calls = calls(&[]);
    assert!(calls.len() > 20, "{calls:?}");
    let share = tutorial_share(&calls);
    assert!(share >= 0.9, "only {:.0} % of the calls are the tutorial's: {calls:?}", share * 100.0);
    let names = |side: &str| -> Vec<&str> { calls.iter().filter(|c| c.0 == side).map(|c| c.1.as_str()).collect() };
    let (server, client) = (names("server"), names("client"));
    // No machinery in the server's story: no ready file, no signal or log thread.
    for name in ["openat", "rename", "signalfd4", "socketpair", "fcntl", "rt_sigprocmask"] {
        assert!(!server.contains(&name), "the server's story has {name}: {server:?}");
    }
    for name in ["socket", "bind", "listen", "accept4", "recvfrom", "sendto", "close"] {
        assert!(server.contains(&name), "no {name} in the server's story: {server:?}");
    }
    // The tutorial's client: socket, connect, send, recv, close; no timeouts, no shutdown.
    assert!(!client.contains(&"setsockopt") && !client.contains(&"shutdown"), "{client:?}");
    let connect = client.iter().position(|c| *c == "connect").expect("connect");
    let send = client.iter().position(|c| *c == "sendto").expect("sendto");
    let recv = client.iter().rposition(|c| *c == "recvfrom").expect("recvfrom");
    assert_eq!(client.last(), Some(&"close"), "{client:?}");
    assert!(connect < send && send < recv, "{client:?}");
    // The prints are the server's write(1, ...) calls.
    assert!(calls.iter().any(|c| c.0 == "server" && c.2.starts_with("write(1, \"Server Recv Data")), "{calls:?}");
}

#[test]
fn all_shows_socklabs_own_calls_too() {
    let all = calls(&["--all"]);
    let own: Vec<&(String, String, String)> = all.iter().filter(|c| !TUTORIAL_CALLS.contains(&c.1.as_str())).collect();
    assert!(own.iter().any(|c| c.0 == "server" && c.2.starts_with("rt_sigaction(SIGINT")), "{all:?}");
    assert!(own.iter().any(|c| c.0 == "client" && c.2.starts_with("rt_sigaction(SIGPIPE")), "{all:?}");
}
