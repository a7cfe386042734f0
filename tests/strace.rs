//! Under real `strace -f`, `socklab server` makes exactly the tutorial's calls, in the tutorial's
//! order, and uses recv/send (recvfrom/sendto) — never read/write — on its sockets.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use common::{ServerProcess, have, signal};

/// One traced call: (name, first argument, the rest of the line).
#[derive(Debug)]
struct Call {
    name: String,
    fd: String,
    line: String,
}

/// Parses `strace -f -o` output into calls in order, joining "unfinished ... resumed" pairs: while
/// another thread of the server makes a call, strace splits a call into `name(args <unfinished
/// ...>` and, later, `<... name resumed>rest) = ret`; the call keeps its place (where it started)
/// and gets its whole line, result included.
fn parse(trace: &str) -> Vec<Call> {
    let mut calls: Vec<Call> = Vec::new();
    let mut unfinished: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for raw in trace.lines() {
        // "PID name(args) = ret", or "PID name(args <unfinished ...>", or "PID <... name resumed>...".
        let (pid, line) = raw.split_once(' ').map_or(("", raw), |(pid, rest)| (pid, rest.trim_start()));
        if let Some(resumed) = line.strip_prefix("<...") {
            if let (Some(i), Some((_, rest))) = (unfinished.remove(pid), resumed.split_once("resumed>")) {
                let call = &mut calls[i];
                // strace ends the first half with " <unfinished ...>" after the arguments printed so far.
                let head = call.line.strip_suffix(" <unfinished ...>").unwrap_or(&call.line);
                call.line = format!("{head}{rest}");
            }
            continue;
        }
        if line.starts_with("+++") || line.starts_with("---") {
            continue;
        }
        let Some((name, rest)) = line.split_once('(') else { continue };
        let fd = rest.split([',', ')', ' ']).next().unwrap_or("").to_string();
        if line.ends_with("<unfinished ...>") {
            unfinished.insert(pid, calls.len());
        }
        calls.push(Call { name: name.to_string(), fd, line: raw.to_string() });
    }
    calls
}

#[test]
fn server_makes_the_tutorials_calls_in_order() {
    if !have("strace") {
        common::skip("strace is not installed (.ci/run installs it)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("socklab-strace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("trace.txt");
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-qq", "-e", "trace=%network,close,read,write", "-o"]).arg(&out).arg(env!("CARGO_BIN_EXE_socklab"));
    let server = ServerProcess::start_with(cmd, "127.0.0.1", &["--quiet"]);

    let mut client = TcpStream::connect(server.addr).unwrap();
    client.write_all(b"Hello").unwrap();
    let mut echo = [0u8; 5];
    client.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"Hello");
    drop(client);

    // Stop the traced socklab (strace's child), not strace itself; strace exits when it does.
    let strace_pid = server.child.id();
    let children = std::fs::read_to_string(format!("/proc/{strace_pid}/task/{strace_pid}/children")).unwrap();
    let socklab_pid: u32 = children.split_whitespace().next().expect("socklab under strace").parse().unwrap();
    // Wait until the server has finished the connection (its recv returned 0), so the order is fixed.
    let mut server = server;
    signal(socklab_pid, "TERM");
    let (status, _, err) = server_wait(&mut server);
    assert!(status.success(), "strace/socklab exit: {status} {err}");

    let trace = std::fs::read_to_string(&out).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let calls = parse(&trace);
    let start = calls.iter().position(|c| c.name == "socket").expect("a socket call");
    let calls = &calls[start..];
    let names: Vec<&str> = calls.iter().map(|c| c.name.as_str()).collect();

    let listener = calls[0].line.rsplit("= ").next().unwrap().trim().to_string();
    let accept = calls.iter().position(|c| c.name == "accept4" || c.name == "accept").expect("accept");
    let conn = calls.iter().filter(|c| c.name.starts_with("accept")).find_map(|c| {
        let ret = c.line.rsplit("= ").next()?.trim();
        ret.parse::<i32>().ok().filter(|fd| *fd >= 0).map(|fd| fd.to_string())
    });
    let conn = conn.unwrap_or_else(|| panic!("no successful accept in:\n{trace}"));

    // The tutorial's order: socket, setsockopt, bind, listen, accept, recv, send, ..., recv (0), close.
    let expected = ["socket", "setsockopt", "bind", "listen"];
    assert_eq!(&names[..4], &expected, "setup calls, in:\n{trace}");
    let after_accept: Vec<&Call> = calls[accept..].iter().filter(|c| c.fd == conn).collect();
    let conn_names: Vec<&str> = after_accept.iter().map(|c| c.name.as_str()).collect();
    let first_recv = conn_names.iter().position(|n| *n == "recvfrom").expect("recvfrom on the connection");
    assert_eq!(conn_names[first_recv + 1], "sendto", "recv then send back, in:\n{trace}");
    assert!(after_accept[first_recv].line.contains("\"Hello\", 2048"), "{}", after_accept[first_recv].line);
    assert!(after_accept[first_recv + 1].line.contains("\"Hello\", 5"), "{}", after_accept[first_recv + 1].line);
    let last_recv = conn_names.iter().rposition(|n| *n == "recvfrom").unwrap();
    assert!(
        after_accept[last_recv].line.trim_end().ends_with("= 0"),
        "the last recv returns 0 (peer closed), in:\n{trace}"
    );
    assert_eq!(conn_names.last(), Some(&"close"), "the connection is closed last, in:\n{trace}");

    // Sockets are only ever used through recv/send, never read/write. (Before accept, the
    // connection's descriptor number may belong to a file: the --ready-file is written with write.)
    for (i, c) in calls.iter().enumerate().filter(|(_, c)| c.name == "read" || c.name == "write") {
        assert!((i < accept || c.fd != conn) && c.fd != listener, "read/write on a socket: {}", c.line);
    }
    // The listener is closed at the end.
    let closes_listener = calls.iter().any(|c| c.name == "close" && c.fd == listener);
    assert!(closes_listener, "the listener must be closed on SIGTERM, in:\n{trace}");
    assert!(names.iter().any(|n| n.starts_with("accept")));
}

fn server_wait(server: &mut ServerProcess) -> (std::process::ExitStatus, String, String) {
    let mut out = String::new();
    let _ = server.stdout.read_to_string(&mut out);
    let mut err = String::new();
    if let Some(mut e) = server.child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    (server.child.wait().unwrap(), out, err)
}

/// The parser joins a call strace split in two: it keeps the call's place and gets its result.
#[test]
fn parse_joins_unfinished_and_resumed_halves() {
    let trace = "7 recvfrom(4,  <unfinished ...>\n8 write(1, \"x\", 1) = 1\n7 <... recvfrom resumed>\"\", 2048, 0, NULL, NULL) = 0\n7 close(4) = 0\n";
    let calls = parse(trace);
    let names: Vec<&str> = calls.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["recvfrom", "write", "close"]);
    assert_eq!(calls[0].fd, "4");
    assert!(calls[0].line.ends_with("= 0"), "{}", calls[0].line);
    assert_eq!(calls[0].line, "7 recvfrom(4, \"\", 2048, 0, NULL, NULL) = 0");
}
