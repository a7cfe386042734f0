//! `socklab bench` checks correctness, not speed: tiny runs against every server model must
//! report every byte echoed and nothing lost; a server that corrupts or swallows bytes must be
//! caught; non-loopback targets are refused. No timing assertions.
#![cfg(any(target_os = "linux", target_os = "android"))]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::Stdio;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use socklab::bench::{self, BenchConfig, Mode, Report};
use socklab::echo::{Event, Model, Server, ServerConfig};

fn tiny(addr: SocketAddr, mode: Mode, conns: usize, size: usize) -> Report {
    let config = BenchConfig {
        addr,
        mode,
        conns,
        size,
        duration: Duration::from_millis(200),
        grace: Duration::from_secs(5),
        seed: 7,
        server_pids: Vec::new(),
    };
    bench::run(&config, &mut |_| {}).expect("bench run")
}

#[test]
fn every_mode_is_byte_exact_against_every_nonforking_model() {
    // The fork model is left out here: forking this multi-threaded test process is covered, under
    // a lock, in tests/models.rs; here it runs through the CLI below.
    for model in [Model::Iterative, Model::Thread, Model::Poll, Model::Epoll] {
        for host in common::hosts() {
            let mut config = ServerConfig::new(SocketAddr::new(host.parse().unwrap(), 0));
            (config.model, config.backlog, config.threads, config.buffer) = (model, Some(128), 2, Some(65536));
            let server = Server::bind(config).unwrap().spawn(Arc::new(|_: &Event<'_>| {})).unwrap();
            // The iterative server serves one connection at a time: one connection only.
            let conns = if model == Model::Iterative { 1 } else { 20 };
            for (mode, size) in [(Mode::Pingpong, 64), (Mode::Bulk, 65536), (Mode::Connrate, 100)] {
                let report = tiny(server.addr(), mode, conns, size);
                assert!(report.is_correct(), "{model:?} {mode:?} on {host}: {report}");
                assert_eq!(report.errors, 0, "{model:?} {mode:?} on {host}: {report}");
                assert!(report.bytes > 0);
                match mode {
                    Mode::Pingpong => assert!(report.round_trips > 0 && report.latency.is_some()),
                    Mode::Connrate => assert!(report.connections > 0 && report.latency.is_some()),
                    Mode::Bulk => assert!(report.bytes >= size as u64),
                }
            }
            server.stop().unwrap();
        }
    }
}

#[test]
fn cli_reports_json_against_the_fork_model() {
    let ready = common::ReadyFile::new();
    let mut server = common::socklab()
        .args(["server", "--host", "127.0.0.1", "--port", "0", "--model", "fork", "--backlog", "128"])
        .args(ready.args())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = server.stdout.take().unwrap();
    let addr = ready.wait(&mut server).to_string();
    // Drain the server's per-recv lines, or its children block on a full pipe.
    let drain = thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let out = common::socklab()
        .args(["bench", "--addr", &addr, "--mode", "pingpong", "--conns", "4"])
        .args(["--duration", "0.2", "--json"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text} {}", String::from_utf8_lossy(&out.stderr));
    assert!(text.starts_with("{\"mode\":\"pingpong\"") && text.trim_end().ends_with('}'), "{text}");
    assert!(text.contains("\"mismatches\":0,\"lost_bytes\":0"), "{text}");
    assert!(!text.contains("\"round_trips\":0,"), "{text}");
    common::signal(server.id(), "TERM");
    assert!(server.wait().unwrap().success());
    drain.join().unwrap().unwrap();
}

/// `socklab bench --addr [::1]:PORT`: every mode over IPv6 through the CLI, byte-exact (connrate
/// without spreading source addresses: IPv6 has only the one loopback address).
#[test]
fn cli_benches_an_ipv6_server_in_every_mode() {
    if !common::hosts().contains(&"::1") {
        common::skip("no IPv6 loopback here");
        return;
    }
    let ready = common::ReadyFile::new();
    let mut server = common::socklab()
        .args(["server", "--host", "::1", "--port", "0", "--model", "epoll", "--threads", "2", "-q"])
        .args(ready.args())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let addr = ready.wait(&mut server).to_string();
    assert!(addr.starts_with("[::1]:"), "{addr}");
    for mode in ["pingpong", "bulk", "connrate"] {
        let out = common::socklab()
            .args(["bench", "--addr", &addr, "--mode", mode, "--conns", "4", "--duration", "0.2", "--json"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{mode}: {text} {}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains("\"mismatches\":0,\"lost_bytes\":0"), "{mode}: {text}");
        assert!(text.contains(&format!("\"addr\":\"{addr}\"")), "{mode}: {text}");
        assert!(!text.contains("\"served\":0,"), "{mode}: {text}");
    }
    common::signal(server.id(), "TERM");
    assert!(server.wait().unwrap().success());
}

#[test]
fn a_corrupting_server_is_caught() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = s.read(&mut buf) {
                buf[n - 1] ^= 0x01;
                if s.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    });
    let report = tiny(addr, Mode::Pingpong, 1, 64);
    assert_eq!(report.mismatches, 1, "{report}");
    assert!(!report.is_correct());
}

/// A server that reads but never answers: the bytes are reported lost after the grace period.
#[test]
fn a_swallowing_server_loses_bytes_and_says_so() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let swallower = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    });
    let config = BenchConfig {
        addr,
        mode: Mode::Pingpong,
        conns: 1,
        size: 100,
        duration: Duration::from_millis(100),
        grace: Duration::from_millis(100),
        seed: 1,
        server_pids: Vec::new(),
    };
    let report = bench::run(&config, &mut |_| {}).unwrap();
    assert_eq!((report.round_trips, report.lost_bytes), (0, 100), "{report}");
    assert!(!report.is_correct());
    drop(report);
    swallower.join().unwrap();
}

#[test]
fn non_loopback_targets_are_refused() {
    let out = common::socklab().args(["bench", "--addr", "192.0.2.1:7", "--duration", "0.1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a loopback address") && err.contains("--allow-remote"), "{err}");
}

/// The server's system calls are counted by the kernel and reported with the throughput, per
/// 1,000 round trips (pingpong) and per MiB (bulk), for the epoll and io_uring models: the
/// server found by its listening socket, or named with --server-pid. Where the kernel will not
/// count (not root, no tracefs), the report says why instead. The values are not checked here.
#[test]
fn the_servers_system_calls_are_counted_and_reported() {
    let countable = running_as_root() && std::path::Path::new("/sys/kernel/tracing/events/raw_syscalls").exists();
    if !countable {
        println!("{}", common::skip_line("not root or no tracefs: only the reason is checked"));
    }
    for model in ["epoll", "uring"] {
        let ready = common::ReadyFile::new();
        let mut server = common::socklab()
            .args(["server", "--host", "127.0.0.1", "--port", "0", "--model", model, "--threads", "1", "-q"])
            .args(ready.args())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = ready.wait(&mut server).to_string();
        let pid = server.id().to_string();
        for (mode, size, unit, by_pid) in
            [("pingpong", "64", "1,000 round trips", false), ("bulk", "65536", "MiB", true)]
        {
            let mut bench = common::socklab();
            bench.args(["bench", "--addr", &addr, "--mode", mode, "--size", size, "--conns", "2"]);
            bench.args(["--duration", "0.3", "--json"]);
            if by_pid {
                bench.args(["--server-pid", &pid]);
            }
            let out = bench.output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{model} {mode}: {text} {}", String::from_utf8_lossy(&out.stderr));
            let json = socklab::timeline::json::parse(text.trim()).expect("JSON");
            let field = |k: &str| json.get(k).cloned().unwrap_or_else(|| panic!("no {k} in {text}"));
            if countable {
                let calls = field("server_syscalls");
                assert!(calls.as_i64().is_some_and(|n| n > 0), "{model} {mode}: {text}");
                assert!(!field("server_syscalls_per").is_null(), "{model} {mode}: {text}");
                assert_eq!(field("server_syscalls_unit").as_str(), Some(unit), "{model} {mode}: {text}");
            } else {
                assert!(field("server_syscalls").is_null(), "{text}");
                assert!(field("server_syscalls_not_counted").as_str().is_some_and(|w| !w.is_empty()), "{text}");
            }
        }
        // The report for people says it too.
        let out =
            common::socklab().args(["bench", "--addr", &addr, "--conns", "1", "--duration", "0.2"]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let expected = if countable { "per 1,000 round trips)" } else { "server syscalls not counted: " };
        assert!(text.lines().any(|l| l.contains("server syscalls") && l.contains(expected)), "{model}: {text}");
        common::signal(server.id(), "TERM");
        assert!(server.wait().unwrap().success());
    }
}

/// Whether this test runs as root (its effective uid, read from /proc).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}
