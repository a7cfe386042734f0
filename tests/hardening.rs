//! Issue 10 from the client's and a new user's side: no hang (client `--timeout`), no silent
//! truncation or extra bytes, every error named as "call, address, errno name, hint", whole usage
//! messages, a quiet end on a closed stdout. Real loopback peers, written here with std.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::socklab;

/// Runs socklab with `args`, killing it after `limit` (a hang is then the failure, not the test's).
fn run_bounded(args: &[&str], limit: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let mut child: Child = socklab()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run socklab");
    while child.try_wait().expect("try_wait").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("wait");
            panic!("{args:?} still running after {limit:?}; stderr: {}", String::from_utf8_lossy(&out.stderr));
        }
        thread::sleep(Duration::from_millis(5)); // no portable wait-with-timeout for a child
    }
    (child.wait_with_output().expect("wait"), started.elapsed())
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A peer on 127.0.0.1 that runs `serve` for each of its first `n` connections, on a thread.
fn peer(n: usize, serve: impl Fn(TcpStream) + Send + Sync + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for conn in listener.incoming().take(n) {
            let Ok(conn) = conn else { continue };
            conn.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            serve(conn);
        }
    });
    addr
}

#[test]
fn the_client_gives_up_on_a_server_that_accepts_and_never_answers() {
    let addr = peer(1, |conn| {
        thread::sleep(Duration::from_secs(30)); // holds the connection, reads nothing, sends nothing
        drop(conn);
    });
    let port = addr.port().to_string();
    let (out, took) =
        run_bounded(&["client", "--host", "127.0.0.1", "--port", &port, "--timeout", "1s"], Duration::from_secs(20));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("recv {addr}")) && err.contains("--timeout"), "{err}");
    assert!(took >= Duration::from_millis(900), "gave up after {took:?}, before its 1 s timeout");
}

#[test]
fn the_client_gives_up_on_a_listener_that_never_accepts() {
    // A backlog of 0 holds one finished handshake; with it full, the kernel drops further SYNs
    // and a plain connect(2) would wait for its retries for minutes.
    let listener = socklab::TcpListener::bind_with_backlog(&"127.0.0.1:0".parse().unwrap(), 0).unwrap();
    let addr = listener.local_addr().unwrap();
    let fillers: Vec<_> =
        (0..4).filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()).collect();
    assert!(!fillers.is_empty());
    let port = addr.port().to_string();
    let (out, _) =
        run_bounded(&["client", "--host", "127.0.0.1", "--port", &port, "--timeout", "1s"], Duration::from_secs(20));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("connect {addr}")) && err.contains("no answer within"), "{err}");
    drop(listener);
}

/// An echo server that echoes, then adds bytes of its own before closing.
fn echo_plus_extra(conn: TcpStream) {
    let mut conn = conn;
    let mut buf = [0u8; 4096];
    let mut echoed = Vec::new();
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                echoed.extend_from_slice(&buf[..n]);
                let _ = conn.write_all(&buf[..n]);
            }
        }
    }
    let _ = conn.write_all(b"GARBAGE");
    let _ = conn.shutdown(Shutdown::Write);
}

#[test]
fn the_client_reports_bytes_after_the_echo() {
    let addr = peer(1, echo_plus_extra);
    let port = addr.port().to_string();
    let (out, _) = run_bounded(&["client", "--host", "127.0.0.1", "--port", &port], Duration::from_secs(20));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("echo too long") && err.contains("7 more bytes"), "{err}");
}

#[cfg(target_os = "linux")]
#[test]
fn bench_connrate_counts_bytes_after_the_echo_as_mismatches() {
    let addr = peer(usize::MAX, |conn| {
        thread::spawn(move || echo_plus_extra(conn));
    });
    let (out, _) = run_bounded(
        &["bench", "--addr", &addr.to_string(), "--mode", "connrate", "--duration", "0.3", "--json"],
        Duration::from_secs(30),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text} {}", stderr(&out));
    assert!(!text.contains("\"mismatches\":0,"), "extra bytes passed as a correct echo: {text}");
}

#[test]
fn a_reset_is_named_with_the_call_the_address_and_the_errno() {
    let addr = peer(1, |conn| {
        let mut b = [0u8; 5];
        let _ = (&conn).read_exact(&mut b);
        // SO_LINGER 0, then close: an RST instead of a FIN.
        let s = socklab::TcpStream::from(conn);
        s.set_linger(Some(Duration::ZERO)).unwrap();
        drop(s);
    });
    let port = addr.port().to_string();
    let (out, _) = run_bounded(&["client", "--host", "127.0.0.1", "--port", &port], Duration::from_secs(20));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("recv {addr}: ECONNRESET (Connection reset by peer): ")), "{err}");
    assert!(!err.contains("os error"), "{err}");
}

#[cfg(target_os = "linux")]
#[test]
fn bench_without_a_server_says_nothing_was_served_and_why() {
    // A port nobody listens on: bind one, learn it, close it.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let (out, _) = run_bounded(&["bench", "--addr", &addr, "--duration", "0.2"], Duration::from_secs(20));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("no connection to {addr} was served: connect {addr}: ECONNREFUSED")), "{err}");
    assert!(!err.contains("byte-exact"), "{err}");
}

#[test]
fn a_closed_stdout_ends_the_program_quietly() {
    for args in [&["states"][..], &["--help"][..]] {
        let mut child =
            socklab().args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        drop(child.stdout.take()); // the reader is gone before anything is written
        let out = child.wait_with_output().unwrap();
        let err = stderr(&out);
        assert!(!err.contains("Broken pipe") && !err.contains("EPIPE"), "{args:?}: {err}");
        if args == ["states"] {
            assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
            assert!(err.is_empty(), "{args:?}: {err}");
        }
    }
}

#[test]
fn usage_errors_keep_the_missing_argument_and_the_suggestion() {
    let (out, _) = run_bounded(&["bench"], Duration::from_secs(10));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--addr <ADDR>") && err.contains("Usage: socklab bench"), "{err}");
    let (out, _) = run_bounded(&["servr"], Duration::from_secs(10));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("similar subcommand exists: 'server'"), "{err}");
}

#[test]
fn negative_durations_name_the_option_and_say_durations_are_positive() {
    for (option, value) in [("--idle-timeout", "-5s"), ("--max-conn-time", "-1m"), ("--grace", "-2s")] {
        let (out, _) = run_bounded(&["server", option, value], Duration::from_secs(10));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(option) && err.contains("durations are positive"), "{option} {value}: {err}");
    }
    let (out, _) = run_bounded(&["client", "--timeout", "-1s"], Duration::from_secs(10));
    let err = stderr(&out);
    assert!(err.contains("--timeout") && err.contains("durations are positive"), "{err}");
}

#[test]
fn the_library_keeps_the_errno_reachable() {
    let taken = socklab::TcpListener::bind(&"127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = taken.local_addr().unwrap();
    let err = socklab::echo::Server::bind(socklab::echo::ServerConfig::new(addr)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    assert_eq!(socklab::error::errno(&err), Some(libc::EADDRINUSE));
    // std's convention for wrapped errors: the source chain ends in the OS error.
    let source = std::error::Error::source(err.get_ref().unwrap()).unwrap();
    let os = source.downcast_ref::<std::io::Error>().unwrap();
    assert_eq!(os.raw_os_error(), Some(libc::EADDRINUSE));
    assert_eq!(err.to_string(), format!("bind {addr}: EADDRINUSE (Address already in use)"));
}

#[test]
fn multicast_and_broadcast_hosts_are_refused_for_a_listener() {
    for host in ["224.0.0.1", "255.255.255.255", "ff02::1"] {
        let (out, _) = run_bounded(&["server", "--host", host, "--port", "0"], Duration::from_secs(10));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{host}: {err}");
        assert!(err.contains("--host") && err.contains("multicast or broadcast"), "{host}: {err}");
    }
}

/// The notice for a server reachable from other machines: once, after bind, with the real port,
/// also under --quiet.
#[test]
fn the_non_loopback_notice_names_the_bound_address_even_when_quiet() {
    let ready = common::ReadyFile::new();
    let mut child = socklab()
        .args(["server", "--host", "0.0.0.0", "--port", "0", "--quiet"])
        .args(ready.args())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = ready.wait(&mut child);
    common::signal(child.id(), "TERM");
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(err.contains(&format!("listening on 0.0.0.0:{}", addr.port())) && addr.port() != 0, "{err}");
}

/// `client --tutorial` makes the tutorial's calls: no `--timeout` socket options, no
/// `shutdown(SHUT_WR)` and end-of-stream read after the echo; the default client makes both.
#[test]
fn the_tutorial_flag_makes_the_tutorials_calls() {
    let addr = peer(2, |mut conn| {
        let mut buf = [0u8; 64];
        while let Ok(n) = std::io::Read::read(&mut conn, &mut buf) {
            if n == 0 || std::io::Write::write_all(&mut conn, &buf[..n]).is_err() {
                break;
            }
        }
    });
    let port = addr.port().to_string();
    let calls = |extra: &[&str]| -> String {
        let mut args = vec!["client", "--host", "127.0.0.1", "--port", &port, "--trace"];
        args.extend_from_slice(extra);
        let (out, _) = run_bounded(&args, Duration::from_secs(20));
        assert!(out.status.success(), "{}", stderr(&out));
        stderr(&out)
    };
    let tutorial = calls(&["--tutorial"]);
    assert!(!tutorial.contains("setsockopt(") && !tutorial.contains("shutdown("), "{tutorial}");
    assert!(tutorial.contains("connect(") && tutorial.contains("recvfrom(3, \"Hello\", 10"), "{tutorial}");
    let default = calls(&[]);
    assert!(default.contains("SO_RCVTIMEO") && default.contains("shutdown(3, SHUT_WR)"), "{default}");
}
