//! Bad input to the program: every argument that can be wrong gets a one-line error that names it,
//! exit code 2 (a usage error), and never a panic. Run against the real binary.

mod common;

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::socklab;

/// Runs socklab with `args`, killing it after 20 s: an argument that is wrongly accepted may
/// start a server, and that must fail the test, not hang it.
fn run(args: &[&str]) -> Output {
    let mut child = socklab()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run socklab");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("wait");
            panic!("{args:?} still running after 20 s: {}", String::from_utf8_lossy(&out.stdout));
        }
        std::thread::sleep(Duration::from_millis(5)); // no portable wait-with-timeout for a child
    }
    child.wait_with_output().expect("wait")
}

/// Asserts the usage-error contract for `args`: exit 2, clap's whole message on stderr (the
/// error naming `names`, any suggestion, the usage line), nothing on stdout, no panic.
fn assert_usage_error(args: &[&str], names: &str) {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: exit {:?}, stderr {stderr:?}", out.status);
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    assert!(stderr.lines().count() <= 8, "{args:?}: want one short message, got {stderr:?}");
    assert!(stderr.starts_with("socklab: "), "{args:?}: {stderr:?}");
    assert!(stderr.contains(names), "{args:?}: the error should name {names}: {stderr:?}");
    assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout, got {:?}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn invalid_ports_name_the_port() {
    for cmd in ["server", "client"] {
        for bad in ["-1", "65536", "abc", "", "1.5", "99999999999999999999"] {
            assert_usage_error(&[cmd, "--port", bad], "--port");
            assert_usage_error(&[cmd, &format!("--port={bad}")], "--port");
        }
    }
    // The client cannot connect to port 0; the server may bind it (the kernel picks a port).
    assert_usage_error(&["client", "--port", "0"], "--port");
}

#[test]
fn empty_and_malformed_hosts_name_the_host() {
    let bad = [
        "",
        "   ",
        "300.1.1.1",
        "1.2.3",
        "127.0.0.1:80",
        "[::1]:5000",
        "[localhost]",
        "::1::2",
        "fe80::1%",
        "host name",
        "a/b",
        "-leading-dash",
        "\u{7f}",
        "x\u{1}y", // (a NUL cannot be passed in argv)
    ];
    for cmd in ["server", "client"] {
        for host in bad {
            // `--host=VALUE`, so a value starting with '-' is a value and not a flag.
            assert_usage_error(&[cmd, &format!("--host={host}"), "--port", "1"], "--host");
        }
    }
    let long = "a".repeat(64); // one DNS label may have at most 63 bytes
    assert_usage_error(&["client", "--host", &long, "--port", "1"], "--host");
}

/// Where a socket address is expected (`bench --addr HOST:PORT`): IPv6 without brackets, no
/// port, port 0 or out of range, a malformed host.
#[test]
fn bad_socket_addresses_name_the_address() {
    if !socklab().args(["bench", "--help"]).output().is_ok_and(|o| o.status.success()) {
        common::skip("no bench command on this platform");
        return;
    }
    for bad in [
        "::1:5000",
        "::1",
        "[::1]",
        "[::1",
        "fe80::1%2:80",
        "127.0.0.1",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        ":80",
        "",
        "300.1.1.1:80",
        "a b:80",
    ] {
        assert_usage_error(&["bench", &format!("--addr={bad}"), "--duration", "0.01"], "--addr");
    }
}

#[test]
fn absurd_sizes_name_the_size() {
    let shift40 = (1u64 << 40).to_string();
    for (cmd, arg) in [("server", "--buffer"), ("client", "--chunk")] {
        for bad in ["0", "-5", shift40.as_str(), "18446744073709551616", "lots"] {
            assert_usage_error(&[cmd, arg, bad], arg);
        }
    }
    for bad in ["0", "-1", "65536", "1e3"] {
        assert_usage_error(&["server", "--backlog", bad], "--backlog");
    }
}

#[test]
fn bad_limits_name_the_limit() {
    for arg in ["--idle-timeout", "--max-conn-time"] {
        for bad in ["0", "0ms", "-1s", "5x", "25h", "1441m", "", "ms", "18446744073709551616s"] {
            assert_usage_error(&["server", &format!("{arg}={bad}")], arg);
        }
    }
    for bad in ["0", "-3", "many", "1000001"] {
        assert_usage_error(&["server", "--max-conns", bad], "--max-conns");
    }
    for bad in ["0", "-1", "1025", "Auto", "", "1.5"] {
        assert_usage_error(&["server", "--model", "epoll", "--threads", bad], "--threads");
    }
}

#[test]
fn unknown_flags_and_commands_are_named() {
    assert_usage_error(&["server", "--bogus"], "--bogus");
    assert_usage_error(&["client", "--help-me"], "--help-me");
    assert_usage_error(&["serve"], "serve");
    assert_usage_error(&["demo", "extra"], "extra");
}

#[test]
fn help_and_version_still_exit_0() {
    for args in [&["--help"][..], &["--version"], &["server", "--help"], &["client", "--help"]] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(!out.stdout.is_empty(), "{args:?}");
    }
}

/// A non-root user binding port 80 gets EACCES and a hint; running as `nobody` through setpriv
/// (we need root to switch user; skipped with a reason otherwise).
#[test]
fn privileged_port_as_non_root_says_eacces_with_a_hint() {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1).map(String::from)))
        .flatten();
    if uid.as_deref() != Some("0") || !common::have("setpriv") {
        common::skip("needs root and setpriv to run the server as nobody");
        return;
    }
    let start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start").unwrap_or_default();
    if start.trim().parse::<u32>().map_or(true, |p| p <= 80) {
        common::skip(&format!("net.ipv4.ip_unprivileged_port_start is {start:?}, so port 80 is not privileged here"));
        return;
    }
    for host in common::hosts() {
        let out = std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_socklab"))
            .args(["server", "--host", host, "--port", "80"])
            .output()
            .expect("run setpriv");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{host}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
        assert!(stderr.contains("bind") && stderr.contains("EACCES"), "{stderr}");
        assert!(stderr.contains("below 1024") && stderr.contains("--port"), "the hint is missing: {stderr}");
    }
}

#[test]
fn accept_delay_without_a_listen_queue_is_refused() {
    // UDP and Unix datagram servers never listen or accept: the flag would do nothing.
    assert_usage_error(&["server", "--udp", "--port", "0", "--accept-delay", "1s"], "--accept-delay");
    assert_usage_error(
        &["server", "--unix", "@socklab-18b-dgram", "--dgram", "--accept-delay", "1s"],
        "--accept-delay",
    );
}

#[test]
fn bench_duration_takes_the_same_units_as_every_duration() {
    // Each spelling parses: the run then stops at the remote-address check (exit 1, not a usage error).
    for good in ["1s", "250ms", "1m", "0.2", "2"] {
        let out = run(&["bench", "--addr", "192.0.2.1:7", "--duration", good]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "--duration {good}: {stderr}");
        assert!(stderr.contains("not a loopback address"), "--duration {good}: {stderr}");
    }
    for bad in ["1x", "-1s", "5ms", "61m", "abc"] {
        assert_usage_error(&["bench", "--addr", "127.0.0.1:7", "--duration", bad], "--duration");
    }
}

#[test]
fn draw_of_a_missing_file_names_the_call() {
    let out = run(&["draw", "/nonexistent-socklab-session"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("openat /nonexistent-socklab-session: ENOENT"), "{stderr}");
    assert!(stderr.contains("walkthrough --json"), "says what to pass instead: {stderr}");
}

/// `--config` is read only by the API: beside `--upstream` (a plain proxy) it used to be ignored
/// without a word, and the proxy ran as if it had not been given.
#[test]
fn proxy_config_without_api_is_a_usage_error() {
    let out = run(&["proxy", "--upstream", "127.0.0.1:9", "--config", "/etc/hostname"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--config") && stderr.contains("--upstream"), "{stderr}");
}

/// An empty file (or /dev/null) is no saved session: it used to draw as an empty session on
/// port 0 and exit 0.
#[test]
fn draw_of_an_empty_file_says_it_is_no_session() {
    let out = run(&["draw", "/dev/null"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty(), "drew something: {}", String::from_utf8_lossy(&out.stdout));
    assert!(stderr.contains("/dev/null is not a saved `walkthrough --json` session"), "{stderr}");
    assert!(stderr.contains("the file is empty"), "{stderr}");
}

#[test]
fn refused_abstract_unix_connect_speaks_of_no_file() {
    // A name nobody bound: the kernel refuses at once (no file exists to give ENOENT).
    let name = format!("@socklab-18b-nobody-{}", std::process::id());
    let out = run(&["client", "--unix", &name]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("ECONNREFUSED"), "{stderr}");
    assert!(!stderr.contains("stale socket file"), "an abstract name has no file: {stderr}");
    assert!(stderr.contains("abstract names have no file"), "{stderr}");
}
