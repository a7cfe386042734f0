//! The tutorial's echo pair, end to end over real loopback sockets: the CLI server and client,
//! byte-exact round trips, IPv4 and IPv6, several clients, resets and the demo.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::Stdio;
use std::time::Duration;

use common::{ReadyFile, ServerProcess, echo_with_std, hosts, pattern, signal, socklab};

/// Runs `socklab client` with `payload` on stdin; returns (success, stdout, stderr).
fn cli_client(host: &str, port: u16, payload: &[u8], chunk: usize, quiet: bool) -> (bool, String, String) {
    let mut cmd = socklab();
    cmd.args(["client", "--host", host, "--port", &port.to_string(), "--message", "-", "--chunk", &chunk.to_string()]);
    if quiet {
        cmd.arg("--quiet");
    }
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = payload.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn payloads() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("0 B", vec![]),
        ("1 B", vec![b'x']),
        ("2048 B", pattern(2048, 1)),
        ("2049 B", pattern(2049, 2)),
        ("1 MiB", pattern(1 << 20, 3)),
        ("all 256 byte values", (0..=255u8).collect()),
    ]
}

#[test]
fn cli_client_round_trips_are_byte_exact_on_ipv4_and_ipv6() {
    for host in hosts() {
        let server = ServerProcess::start(host, &["--quiet"]);
        for (name, payload) in payloads() {
            for chunk in [1, 10, 4096] {
                // The client compares every byte it gets back and exits non-zero on any difference.
                let (ok, _, err) = cli_client(host, server.addr.port(), &payload, chunk, true);
                assert!(ok, "{host} {name} chunk {chunk}: client failed: {err}");
            }
        }
        // And an independent peer (std's sockets) sees the same bytes come back.
        for (name, payload) in payloads() {
            assert_eq!(echo_with_std(server.addr, &payload), payload, "{host} {name} via std");
        }
    }
}

#[test]
fn client_prints_the_tutorials_lines_in_chunks() {
    let server = ServerProcess::start("127.0.0.1", &["--quiet"]);
    let (ok, out, err) = cli_client("127.0.0.1", server.addr.port(), b"Hello, socklab!", 10, false);
    assert!(ok, "{err}");
    assert_eq!(out, "Client Received: Hello, soc\nClient Received: klab!\nClosing connection to the server\n");
}

#[test]
fn ready_file_holds_the_bound_address_and_a_newline() {
    for host in hosts() {
        let ready = ReadyFile::new();
        let mut child = socklab()
            .args(["server", "--host", host, "--port", "0", "--quiet"])
            .args(ready.args())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let text = ready.text(&mut child);
        let addr: std::net::SocketAddr = text.strip_suffix('\n').expect("one line").parse().expect("an address");
        assert_eq!(addr.ip().to_string(), host, "{text:?}");
        assert_ne!(addr.port(), 0);
        let dir = ready.path.parent().unwrap();
        let names: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["ready"], "the temporary file was left behind");
        // It is listening once the file exists: a client is served right away.
        assert_eq!(echo_with_std(addr, b"ready"), b"ready");
        signal(child.id(), "TERM");
        assert!(child.wait().unwrap().success());
    }
}

/// The file is written by the last loop to set up (on a thread of the server's, for the models
/// with threads): failing there, it stops the server, which exits with the error.
#[test]
fn an_unwritable_ready_file_is_a_clear_error() {
    for model in [&["--model", "iterative"][..], &["--model", "epoll", "--threads", "2"], &["--model", "uring"]] {
        let out = socklab()
            .args(["server", "--host", "127.0.0.1", "--port", "0", "--ready-file", "/nonexistent-socklab-dir/ready"])
            .args(model)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{model:?}: {stderr}");
        assert!(stderr.contains("--ready-file /nonexistent-socklab-dir/ready"), "{model:?}: {stderr}");
    }
}

#[test]
fn server_prints_the_tutorials_lines_with_the_peer() {
    let mut server = ServerProcess::start("127.0.0.1", &[]);
    let mut s = TcpStream::connect(server.addr).unwrap();
    let peer = s.local_addr().unwrap();
    s.write_all(b"Hello").unwrap();
    let mut buf = [0u8; 5];
    s.read_exact(&mut buf).unwrap();
    drop(s);
    // The human line says what --ready-file said, in the tutorial's words.
    let addr = server.addr;
    assert_eq!(server.line(), format!("Server start, listening {} (on {addr})\n", addr.port()));
    assert_eq!(server.line(), format!("Server Accept: {peer}\n"));
    assert_eq!(server.line(), format!("Server Recv Data: Hello (from {peer})\n"));
    assert_eq!(server.line(), format!("Server Send Data: Hello (to {peer})\n"));
    assert_eq!(server.line(), format!("Server Recv Over (from {peer})\n"));
    let (status, rest, _) = server.terminate();
    assert!(status.success(), "SIGTERM must end the server with exit 0, got {status}");
    assert_eq!(rest, "Server stopped\n");
}

#[test]
fn several_clients_in_sequence_and_a_reset_do_not_stop_the_server() {
    let server = ServerProcess::start("127.0.0.1", &["--quiet"]);
    for i in 0..5u64 {
        let payload = pattern(3000, i + 10);
        assert_eq!(echo_with_std(server.addr, &payload), payload, "client {i}");
        if i == 2 {
            // A client that aborts mid-stream: SO_LINGER 0 makes close send RST instead of FIN.
            let s = socklab::TcpStream::connect(&server.addr).unwrap();
            s.send_all(&pattern(100_000, 99)).unwrap();
            s.set_linger(Some(Duration::ZERO)).unwrap();
            drop(s);
        }
    }
    let (status, _, err) = server.terminate();
    assert!(status.success(), "{err}");
}

#[test]
fn half_close_still_gets_every_byte_back() {
    let server = ServerProcess::start("127.0.0.1", &["--quiet"]);
    let mut s = TcpStream::connect(server.addr).unwrap();
    let payload = pattern(50_000, 5);
    s.write_all(&payload).unwrap_or_else(|e| panic!("write: {e}"));
    s.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert_eq!(got, payload);
}

#[test]
fn demo_prints_both_sides_in_order_and_exits_zero() {
    let out = socklab().arg("demo").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let prefixes = [
        "Server start, listening ",
        "Server Accept: 127.0.0.1:",
        "Server Recv Data: Hello (from 127.0.0.1:",
        "Server Send Data: Hello (to 127.0.0.1:",
        "Client Received: Hello",
        // The client sends its FIN (shutdown) and reads until the server's, to be sure nothing
        // follows the echo; so the server's "Recv Over" comes before the client's close.
        "Server Recv Over (from 127.0.0.1:",
        "Closing connection to the server",
        "Server stopped",
    ];
    assert_eq!(lines.len(), prefixes.len(), "{text}");
    for (line, prefix) in lines.iter().zip(prefixes) {
        assert!(line.starts_with(prefix), "expected {prefix:?}, got {line:?}\n{text}");
    }
}

#[test]
fn library_fixture_starts_echoes_and_stops() {
    let server = socklab::echo::ServerHandle::start_local().unwrap();
    for payload in [b"Hello".to_vec(), pattern(70_000, 7)] {
        let stream = socklab::TcpStream::connect(&server.addr()).unwrap();
        stream.send_all(&payload).unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        (&stream).read_to_end(&mut got).unwrap();
        assert_eq!(got, payload);
    }
    // A client still connected while the server stops: stop must not wait for it to leave.
    let idle = TcpStream::connect(server.addr()).unwrap();
    let addr = server.addr();
    server.stop().unwrap();
    drop(idle);
    let refused = TcpStream::connect(addr).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
}

/// Runs `socklab client` (message "Hello") against a fake server that reads the 5 bytes, answers
/// `reply` and closes; returns the client's exit code and stderr.
fn client_against_bad_server(reply: &'static [u8]) -> (Option<i32>, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let (mut c, _) = listener.accept().unwrap();
        let mut buf = [0u8; 5];
        c.read_exact(&mut buf).unwrap();
        c.write_all(reply).unwrap();
    });
    let out = socklab().args(["client", "--port", &port.to_string(), "--host", "127.0.0.1"]).output().unwrap();
    t.join().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn client_reports_a_server_that_closes_early() {
    let (code, err) = client_against_bad_server(b"He");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("short echo") && err.contains("2 of 5 bytes"), "{err}");
}

#[test]
fn client_reports_an_echo_that_differs() {
    let (code, err) = client_against_bad_server(b"HeLlo");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("echo mismatch at byte 2"), "{err}");
}

#[test]
fn stdin_message_is_binary_safe_through_the_cli() {
    let server = ServerProcess::start("127.0.0.1", &["--quiet"]);
    let payload: Vec<u8> = (0..=255u8).rev().chain([0, 0, b'\n', 0xff]).collect();
    let (ok, out, err) = cli_client("127.0.0.1", server.addr.port(), &payload, 64, false);
    assert!(ok, "{err}");
    assert!(out.starts_with("Client Received: \\xff\\xfe"), "{out}");
}
