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
        &[
            &format!("bind 127.0.0.1:{port}: EADDRINUSE (Address already in use)"),
            // The listener's process, looked up in the kernel's socket table and /proc.
            &format!("process {} (socklab) is listening on this port", server.child.id()),
            "choose another with --port",
        ],
    );
}

/// Runs a python3 program that prints a port, and returns it (the program has exited by then).
fn python_port(program: &str) -> u16 {
    let out = std::process::Command::new("python3").args(["-c", program]).output().unwrap();
    assert!(out.status.success(), "python3: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn ss(filter: &str) -> String {
    let out = std::process::Command::new("ss").args(["-tanH", filter]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The tutorial's Python server sets no SO_REUSEADDR. When it closes a connection first, the
/// connection's TIME-WAIT record keeps the port after the process is gone, and no one listens:
/// the hint says TIME-WAIT (as ss does), not "another process is listening".
#[test]
fn port_held_by_time_wait_says_time_wait() {
    if !common::have("python3") || !common::have("ss") {
        common::skip("needs python3 and ss");
        return;
    }
    let port = python_port(
        "import socket\n\
         l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(); port = l.getsockname()[1]\n\
         c = socket.create_connection(('127.0.0.1', port)); a, _ = l.accept()\n\
         l.close(); a.close()  # the server's side closes first: its end goes to TIME-WAIT\n\
         c.recv(1); c.close(); print(port)",
    );
    let held = ss(&format!("sport = :{port}"));
    assert!(held.starts_with("TIME-WAIT") && held.lines().count() == 1, "ss shows: {held}");
    let out = socklab().args(["server", "--host", "127.0.0.1", "--port", &port.to_string()]).output().unwrap();
    assert_clean_failure(
        &out,
        1,
        &[
            "EADDRINUSE",
            "no one listens on this port, but 1 connection in TIME-WAIT still holds it",
            "both the new socket and the closed one set SO_REUSEADDR",
        ],
    );
    assert!(!stderr(&out).contains("is listening on this port"), "{}", stderr(&out));
}

/// A socket bound without listen() holds its port too; ss shows it as UNCONN.
#[test]
fn port_held_by_a_bound_socket_says_bound_without_listen() {
    if !common::have("python3") {
        common::skip("needs python3");
        return;
    }
    let mut holder = std::process::Command::new("python3")
        .args([
            "-c",
            "import socket, sys\n\
             s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1], flush=True); sys.stdin.read()",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(holder.stdout.take().unwrap()), &mut line).unwrap();
    let port = line.trim().to_string();
    let out = socklab().args(["server", "--host", "127.0.0.1", "--port", &port]).output().unwrap();
    drop(holder.stdin.take());
    let _ = holder.wait();
    assert_clean_failure(&out, 1, &["EADDRINUSE", "a socket is bound to it without listen()"]);
}

/// UDP ports are not TCP's: a bound UDP port is named as such, with ss's UDP view.
#[test]
fn udp_port_in_use_is_named_udp() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = socklab().args(["server", "--udp", "--host", "127.0.0.1", "--port", &port]).output().unwrap();
    assert_clean_failure(
        &out,
        1,
        &[&format!("bind (UDP) 127.0.0.1:{port}: EADDRINUSE"), "another UDP socket is bound to this port", "ss -uanp"],
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

/// A datagram the server cut (its buffer smaller than the message) comes back short: the client
/// says so as a datagram, with no connection closed (UDP has none).
#[test]
fn a_cut_datagram_echo_is_not_a_closed_connection() {
    let server = ServerProcess::start("127.0.0.1", &["--udp", "--buffer", "4", "--quiet"]);
    let port = server.addr.port().to_string();
    let out = socklab()
        .args(["client", "--udp", "--host", "127.0.0.1", "--port", &port, "--message", "0123456789"])
        .output()
        .unwrap();
    assert_clean_failure(&out, 1, &["the echoed message held 4 of the 10 bytes sent", "no connection to close"]);
    assert!(!stderr(&out).contains("closed the connection"), "{}", stderr(&out));
}
