//! The default `socklab server` is the tutorial's server: under real `strace -f` it starts no
//! thread, and from its first `socket()` to its exit it makes the tutorial's calls (socket, bind,
//! listen, accept, recv, send, close, the prints' writes) and at most three others; Ctrl-C (SIGINT)
//! stops it as it stops a C server — a handler, the blocked accept returning EINTR — within a
//! bound, with status 0. A client being served when the signal comes still gets its echo.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{have, signal};

/// The tutorial's calls, as `strace -f` names them (the issue's list).
const TUTORIAL: &[&str] =
    &["socket", "bind", "listen", "write", "accept", "accept4", "recvfrom", "sendto", "close", "exit_group"];

/// How long a stop may take before the test calls it a failure: the server stops within
/// milliseconds; this bound only has to be far from a hang on a slow, loaded machine.
const STOP_BOUND: Duration = Duration::from_secs(10);

/// A port no one listens on now (the kernel's pick, given back at once).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits for `child` at most `limit`.
fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        thread::sleep(Duration::from_millis(10));
    }
    None
}

/// The server's stdout, line by line, on a thread (so a test can wait for a line with a bound).
struct Lines {
    rx: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Lines {
    fn new(out: impl Read + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Lines { rx, seen: Vec::new() }
    }

    /// Waits (at most 20 s) for a line starting with `prefix`; `None` if the server ended first.
    fn wait_for(&mut self, prefix: &str) -> Option<String> {
        let until = Instant::now() + Duration::from_secs(20);
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return Some(line);
                    }
                }
                Err(_) => return None,
            }
        }
        None
    }

    /// Everything printed until the server closed its stdout.
    fn rest(mut self) -> Vec<String> {
        while let Ok(line) = self.rx.recv_timeout(Duration::from_secs(20)) {
            self.seen.push(line);
        }
        self.seen
    }
}

/// A `socklab server --port P ARGS` (under `wrapper`, e.g. strace) that printed its listening line.
struct Started {
    child: Child,
    port: u16,
    lines: Lines,
    stderr: thread::JoinHandle<String>,
}

/// Starts the server on a free port; tries another port if one was taken meanwhile.
fn start(wrapper: &[&str], args: &[&str]) -> Started {
    for _ in 0..5 {
        let port = free_port();
        let exe = env!("CARGO_BIN_EXE_socklab");
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut cmd = Command::new(first);
                cmd.args(rest).arg(exe);
                cmd
            }
            None => Command::new(exe),
        };
        cmd.args(["server", "--host", "127.0.0.1", "--port", &port.to_string()]).args(args);
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut lines = Lines::new(child.stdout.take().unwrap());
        let mut err = child.stderr.take().unwrap();
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        if lines.wait_for("Server start, listening").is_some() {
            return Started { child, port, lines, stderr };
        }
        let _ = child.kill();
        let _ = child.wait();
        let err = stderr.join().unwrap();
        assert!(err.contains("EADDRINUSE"), "the server did not start: {err}");
    }
    panic!("no free port in 5 tries");
}

/// The pid of socklab itself: `pid`, or its only child when `pid` is strace.
fn socklab_pid(pid: u32, traced: bool) -> u32 {
    if !traced {
        return pid;
    }
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
    children.split_whitespace().next().expect("socklab under strace").parse().unwrap()
}

/// Waits (at most 20 s) until `pid` is blocked in accept again (the kernel's wait channel says
/// so), so the signal sent next interrupts that accept, not the calls before it.
fn wait_in_accept(pid: u32) {
    let until = Instant::now() + Duration::from_secs(20);
    while Instant::now() < until {
        let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
        if wchan.contains("accept") {
            return;
        }
        thread::sleep(Duration::from_millis(5));
    }
    panic!("the server never blocked in accept again");
}

/// The tutorial's client, once: `socklab client --port P --tutorial`.
fn tutorial_client(port: u16) {
    let out = Command::new(env!("CARGO_BIN_EXE_socklab"))
        .args(["client", "--host", "127.0.0.1", "--port", &port.to_string(), "--tutorial"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("Client Received: Hello"), "client: {text} {:?}", out);
}

/// What strace saw: every call's name from the first socket() on, and the whole text.
fn calls_from_socket(trace: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut started = false;
    for line in trace.lines() {
        // "PID name(args...": a call (or its first half); "<... name resumed>", "---", "+++" are not.
        let rest = line.split_once(' ').map_or(line, |(_, rest)| rest.trim_start());
        let Some((name, _)) = rest.split_once('(') else { continue };
        if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') || name.is_empty() {
            continue;
        }
        started |= name == "socket";
        if started {
            names.push(name.to_string());
        }
    }
    names
}

/// strace -f of the server, one tutorial client, SIGINT: returns (the calls outside the
/// tutorial's from socket() on, the trace, the server's stdout, its stderr).
fn traced_session(args: &[&str]) -> Option<(Vec<String>, String, Vec<String>, String)> {
    if !have("strace") {
        common::skip("strace is not installed (.ci/run installs it)");
        return None;
    }
    let dir = std::env::temp_dir().join(format!("socklab-tutorial-{}-{}", std::process::id(), args.len()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("trace.txt");
    let out_arg = out.to_string_lossy().into_owned();
    let mut server = start(&["strace", "-f", "-o", &out_arg], args);
    tutorial_client(server.port);
    // The session is over on the server's side too: its calls are all made.
    assert!(server.lines.wait_for("Server Recv Over").is_some(), "no Recv Over: {:?}", server.lines.seen);
    let pid = socklab_pid(server.child.id(), true);
    wait_in_accept(pid);
    let asked = Instant::now();
    signal(pid, "INT");
    let status = wait_bounded(&mut server.child, STOP_BOUND);
    let took = asked.elapsed();
    if status.is_none() {
        let _ = server.child.kill();
        let _ = server.child.wait();
    }
    let stdout = server.lines.rest();
    let stderr = server.stderr.join().unwrap();
    let trace = std::fs::read_to_string(&out).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(status.is_some_and(|s| s.success()), "{args:?}: exit {status:?} {took:?} after SIGINT; {stderr}\n{trace}");
    eprintln!("{args:?}: stopped {took:?} after SIGINT (under strace)");
    assert!(
        !trace.lines().any(|l| l.split_whitespace().nth(1).is_some_and(|c| c.starts_with("clone"))),
        "{args:?}: a thread or process was started:\n{trace}"
    );
    let calls = calls_from_socket(&trace);
    let others: Vec<String> = calls.into_iter().filter(|c| !TUTORIAL.contains(&c.as_str())).collect();
    Some((others, trace, stdout, stderr))
}

#[test]
fn the_default_server_makes_the_tutorials_calls_in_one_thread() {
    let Some((others, trace, stdout, _)) = traced_session(&[]) else { return };
    assert!(others.len() <= 3, "more than 3 calls outside the tutorial's: {others:?}\n{trace}");
    // The three the README names: SO_REUSEADDR, and the signal handler's return.
    assert!(others.iter().all(|c| c == "setsockopt" || c == "rt_sigreturn"), "{others:?}\n{trace}");
    // Ctrl-C as a C server sees it: the blocked accept interrupted, the handler's return EINTR.
    assert!(trace.contains("ERESTARTSYS") && trace.contains("--- SIGINT"), "{trace}");
    assert!(trace.lines().any(|l| l.contains("rt_sigreturn(") && l.contains("EINTR")), "{trace}");
    assert!(trace.lines().any(|l| l.contains("exit_group(0)")), "{trace}");
    assert_eq!(stdout.last().map(String::as_str), Some("Server stopped"), "{stdout:?}");
}

#[test]
fn the_default_server_under_trace_narrates_on_its_one_thread() {
    let Some((others, trace, _, narration)) = traced_session(&["--trace"]) else { return };
    assert!(others.len() <= 3, "more than 3 calls outside the tutorial's: {others:?}\n{trace}");
    // The narration is written to stderr with write(2), by the one thread.
    assert!(trace.lines().any(|l| l.contains("write(2, \"accept4(")), "{trace}");
    for call in ["socket(", "bind(", "listen(", "accept4(", "recvfrom(", "sendto(", "close("] {
        assert!(narration.lines().any(|l| l.starts_with(call)), "no {call} in the narration:\n{narration}");
    }
    // The interrupted accept, the signal and the handler's return, as strace printed them.
    assert!(narration.contains("= ? ERESTARTSYS"), "{narration}");
    let squeeze = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
    let strace_lines: Vec<String> = trace.lines().map(|l| squeeze(l.split_once(' ').map_or(l, |(_, r)| r))).collect();
    for prefix in ["--- SIGINT {", "rt_sigreturn("] {
        let ours =
            narration.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix}:\n{narration}"));
        assert!(strace_lines.contains(&squeeze(ours)), "{ours:?} is not strace's line:\n{trace}");
    }
}

/// SIGINT while a client is in the middle of its session: the server accepts nobody else, but
/// that client's next message is still echoed, and when it closes the server exits (status 0,
/// "finished 1").
#[test]
fn ctrl_c_lets_the_client_being_served_finish() {
    let mut server = start(&[], &["--grace", "30s"]);
    let mut client = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut echo = [0u8; 5];
    client.write_all(b"first").unwrap();
    client.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"first");
    signal(server.child.id(), "INT");
    // Still served after the signal (the grace period is long: no timing race here).
    thread::sleep(Duration::from_millis(200));
    assert!(server.child.try_wait().unwrap().is_none(), "the server left its client mid-session");
    client.write_all(b"again").unwrap();
    client.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"again");
    drop(client);
    let status = wait_bounded(&mut server.child, STOP_BOUND);
    let stdout = server.lines.rest();
    assert!(status.is_some_and(|s| s.success()), "exit {status:?}: {stdout:?}");
    assert!(stdout.iter().any(|l| l == "Server stopping: finished 1, cut 0"), "{stdout:?}");
}

/// A client that says nothing after SIGINT is cut when the grace period ends (1 s here), and a
/// second SIGINT cuts at once (with a grace period of an hour): both exit 0.
#[test]
fn the_grace_period_ends_and_a_second_ctrl_c_cuts_at_once() {
    for (grace, signals) in [("1s", 1), ("3600s", 2)] {
        let mut server = start(&[], &["--grace", grace]);
        let mut client = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        client.write_all(b"hi").unwrap();
        let mut echo = [0u8; 2];
        client.read_exact(&mut echo).unwrap();
        let pid = server.child.id();
        signal(pid, "INT");
        if signals == 2 {
            thread::sleep(Duration::from_millis(100));
            signal(pid, "INT");
        }
        let status = wait_bounded(&mut server.child, STOP_BOUND);
        let stdout = server.lines.rest();
        assert!(
            status.is_some_and(|s| s.success()),
            "--grace {grace}, {signals} signal(s): exit {status:?}: {stdout:?}"
        );
        assert!(stdout.iter().any(|l| l == "Server stopping: finished 0, cut 1"), "{stdout:?}");
        // The client sees the end of the connection.
        let mut rest = Vec::new();
        let _ = client.read_to_end(&mut rest);
        assert!(rest.is_empty());
    }
}

/// The README's "Under strace" block is what its two commands print today: the server under
/// `strace -f -o`, one tutorial client, SIGINT, then the block's `sed` over the trace. Ports,
/// addresses and the signal's sender are normalised; the rest (descriptor numbers included) must
/// match line for line.
#[test]
fn readme_under_strace_block_is_a_real_run() {
    if !have("strace") {
        common::skip("strace is not installed (.ci/run installs it)");
        return;
    }
    // The block moved from the README to the book's "Reading strace" (tests/docs.rs runs it too).
    let readme = include_str!("../docs/src/strace.md");
    let mut lines = readme.lines().skip_while(|l| !l.starts_with("$ strace -f -o server.strace socklab server"));
    assert!(lines.next().is_some(), "docs/src/strace.md has no Under strace block");
    let mut lines = lines.skip_while(|l| !l.starts_with("$ sed "));
    let sed = lines.next().and_then(|l| l.strip_prefix("$ ")).expect("the sed command").to_string();
    let expected: Vec<String> = lines.take_while(|l| !l.starts_with("```")).map(normal).collect();
    let Some((_, trace, _, _)) = traced_session(&[]) else { return };
    let dir = std::env::temp_dir().join(format!("socklab-readme-strace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("server.strace"), &trace).unwrap();
    let out = Command::new("sh").arg("-c").arg(&sed).current_dir(&dir).output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let got: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(normal).collect();
    assert_eq!(
        got,
        expected,
        "the README's Under strace block differs from this run:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Ports, addresses in memory and who sent the signal are whatever this run got.
fn normal(line: &str) -> String {
    let mut text = line.split_whitespace().collect::<Vec<_>>().join(" ");
    // A print's write: its text and length depend on the port's digits; keep its first words.
    if let Some(rest) = text.strip_prefix("write(1, \"") {
        return format!("write(1, \"{}", rest.chars().take(11).collect::<String>());
    }
    if text.starts_with("--- SIG") {
        return text.split(" {").next().unwrap_or("").to_string();
    }
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find(|c: char| c.is_ascii_digit()) {
        let (head, tail) = rest.split_at(i);
        let end = tail.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(tail.len());
        let number = &tail[..end];
        out.push_str(head);
        // Ports (in htons(...) and after an address's colon) and pointers; small numbers stay.
        if head.ends_with("htons(") || head.ends_with(':') || number.starts_with("0x") {
            out.push('N');
        } else {
            out.push_str(number);
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    text = out;
    text
}
