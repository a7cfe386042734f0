//! `--trace` tells the truth: run `socklab server --trace` and `socklab client --trace` under real
//! `strace -f` and check that, for every network and close call, socklab's line and strace's line
//! are the same call with the same fd, address, flags, data and result (or errno).

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{ServerProcess, hosts, signal, socklab};

/// The calls socklab makes through `src/sys/`, by the names strace uses.
const CALLS: &[&str] = &[
    "socket",
    "bind",
    "listen",
    "accept4",
    "connect",
    "recvfrom",
    "sendto",
    "shutdown",
    "close",
    "setsockopt",
    "getsockopt",
    "getsockname",
    "getpeername",
];

/// Why strace cannot run here, if it cannot (not installed and apt-get failed, or ptrace denied).
fn strace_unavailable() -> Option<String> {
    if !common::have("strace") {
        let _ = Command::new("sh")
            .arg("-c")
            .arg("DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace >/dev/null 2>&1")
            .status();
    }
    match Command::new("strace").args(["-f", "-o", "/dev/null", "true"]).stderr(Stdio::piped()).output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!("strace cannot trace here: {}", String::from_utf8_lossy(&out.stderr).trim())),
        Err(e) => Some(format!("strace is not installed and could not be installed: {e}")),
    }
}

fn strace_cmd(out: &Path) -> Command {
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-qq", "-e", "trace=%network,close", "-o"]).arg(out).arg(env!("CARGO_BIN_EXE_socklab"));
    cmd
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("socklab-trace-{}-{name}", std::process::id()))
}

/// The call name of a line like `accept4(3, ...) = 4`.
fn call_name(line: &str) -> Option<&str> {
    let name = &line[..line.find('(')?];
    CALLS.contains(&name).then_some(name)
}

/// Lines compared with runs of spaces collapsed (strace pads to a column that moves with its
/// `PID ` prefix).
fn normal(line: &str) -> String {
    // strace 6.1 spells a socket timeout as raw bytes; compare the decoded values.
    common::decode_timeo(line).split_whitespace().collect::<Vec<_>>().join(" ")
}

/// strace -f's file: joins `<unfinished ...>` / `<... resumed>` halves and returns, per pid,
/// the finished calls socklab would narrate. `close` counts only for descriptors that were
/// sockets (the dynamic loader closes files of its own before main).
fn strace_calls(text: &str) -> Vec<String> {
    let mut pending: HashMap<&str, String> = HashMap::new();
    let mut sockets: HashSet<String> = HashSet::new();
    let mut calls = Vec::new();
    for raw in text.lines() {
        let Some((pid, rest)) = raw.split_once(' ') else { continue };
        let rest = rest.trim_start();
        let line = if let Some(head) = rest.strip_suffix(" <unfinished ...>") {
            pending.insert(pid, head.to_string());
            continue;
        } else if rest.starts_with("<... ") {
            let Some((_, tail)) = rest.split_once(" resumed>") else { continue };
            match pending.remove(pid) {
                Some(head) => format!("{head}{tail}"),
                None => continue,
            }
        } else {
            rest.to_string()
        };
        let Some(name) = call_name(&line) else { continue };
        let fd = line[name.len() + 1..].split([',', ')']).next().unwrap_or("").to_string();
        let ret = line.rsplit(" = ").next().unwrap_or("").split(' ').next().unwrap_or("").to_string();
        match name {
            "socket" | "accept4" if !ret.starts_with('-') => {
                sockets.insert(ret);
            }
            "close" if !sockets.remove(&fd) => continue,
            _ => {}
        }
        calls.push(normal(&line));
    }
    calls
}

/// socklab's own narration: the lines of its stderr that are calls. Like the strace side, a
/// `close` counts only for descriptors made by socket/accept4: files (the `--ready-file`), the
/// log writer's copy of stdout, socketpairs and signalfds are compared in tests/narration.rs.
fn narrated(stderr: &str) -> Vec<String> {
    let mut sockets: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    // Once the server runs a second thread each line carries strace's `[pid N] ` mark.
    for line in stderr.lines().map(|l| socklab::trace::split_pid_mark(l).1) {
        let Some(name) = call_name(line) else { continue };
        let ret = line.rsplit(" = ").next().unwrap_or("").split(' ').next().unwrap_or("").to_string();
        match name {
            "socket" | "accept4" if !ret.starts_with('-') => {
                sockets.insert(ret);
            }
            "close" => {
                let fd = line["close(".len()..].split(')').next().unwrap_or("");
                if !sockets.remove(fd) {
                    continue;
                }
            }
            _ => {}
        }
        out.push(normal(line));
    }
    out
}

/// The same calls on both sides, each exactly once: compared as multisets, because the server's
/// two threads (the loop and the signal waiter) may be listed in a different order.
fn assert_agree(what: &str, ours: &[String], theirs: &[String]) {
    let count = |lines: &[String]| {
        let mut m: BTreeMap<String, usize> = BTreeMap::new();
        for l in lines {
            *m.entry(l.clone()).or_default() += 1;
        }
        m
    };
    assert!(!theirs.is_empty(), "{what}: strace saw no calls");
    assert_eq!(
        count(ours),
        count(theirs),
        "{what}: --trace and strace disagree\nours:\n{ours:#?}\nstrace:\n{theirs:#?}"
    );
}

fn run_client(strace_out: &Path, args: &[&str]) -> (bool, String) {
    let out = strace_cmd(strace_out).args(["client", "--trace"]).args(args).output().expect("run strace client");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The pid of strace's traced child (the socklab server), from /proc.
fn traced_child(strace_pid: u32) -> u32 {
    let path = format!("/proc/{strace_pid}/task/{strace_pid}/children");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    text.split_whitespace().next().and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("no child in {path}"))
}

#[test]
fn trace_agrees_with_strace() {
    if let Some(reason) = strace_unavailable() {
        common::skip(&reason);
        return;
    }
    for host in hosts() {
        let (server_file, client_file, refused_file) = (temp("server"), temp("client"), temp("refused"));
        let mut server = ServerProcess::start_with(strace_cmd(&server_file), host, &["--trace"]);
        let port = server.addr.port().to_string();

        // Data longer than strace's 32 bytes, with quotes, a tab, a newline and UTF-8.
        let message = "Hello \"quoted\"\tand a tail long enough to be cut, 约么?\n";
        let (ok, client_err) = run_client(&client_file, &["--host", host, "--port", &port, "--message", message]);
        assert!(ok, "client failed: {client_err}");

        // A refused connect: the server's port, once the server is gone, has no listener.
        let server_pid = traced_child(server.child.id());
        signal(server_pid, "TERM");
        let mut server_err = String::new();
        server.child.stderr.take().unwrap().read_to_string(&mut server_err).unwrap();
        assert!(server.child.wait().unwrap().success(), "server exit: {server_err}");
        let (ok, refused_err) = run_client(&refused_file, &["--host", host, "--port", &port]);
        assert!(!ok, "connect to a closed port succeeded?");

        let read = |p: &PathBuf| std::fs::read_to_string(p).expect("strace output");
        let (server_st, client_st, refused_st) = (read(&server_file), read(&client_file), read(&refused_file));
        for p in [&server_file, &client_file, &refused_file] {
            let _ = std::fs::remove_file(p);
        }

        let server_ours = narrated(&server_err);
        assert_agree(&format!("server on {host}"), &server_ours, &strace_calls(&server_st));
        assert_agree(&format!("client on {host}"), &narrated(&client_err), &strace_calls(&client_st));
        assert_agree(&format!("refused client on {host}"), &narrated(&refused_err), &strace_calls(&refused_st));
        // The client has one thread: there the order must agree too.
        assert_eq!(narrated(&client_err), strace_calls(&client_st), "client order on {host}");
        assert_eq!(narrated(&refused_err), strace_calls(&refused_st), "refused client order on {host}");

        // The lines the issue quotes, in strace's exact words.
        assert!(server_ours.iter().any(|l| l.starts_with("accept4(") && l.contains("SOCK_CLOEXEC) = ")));
        assert!(narrated(&refused_err).iter().any(|l| l.ends_with("= -1 ECONNREFUSED (Connection refused)")));
        let cut = narrated(&client_err).into_iter().find(|l| l.starts_with("sendto(")).expect("client sendto");
        assert!(cut.contains(r#""Hello \"quoted\"\tand a tail long e"..., 57, "#), "{cut}");
    }
}

#[test]
fn explain_adds_a_sentence_under_each_call() {
    let server = socklab::echo::ServerHandle::start_local().expect("server");
    let port = server.addr().port().to_string();
    let out = socklab().args(["client", "--explain", "--host", "127.0.0.1", "--port", &port]).output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    let connect = lines.iter().position(|l| l.starts_with("connect(")).expect("connect line");
    assert!(lines[connect + 1].trim_start().starts_with("# ") && lines[connect + 1].contains("handshake"), "{err}");
    // Every call line is followed by its sentence.
    for (i, l) in lines.iter().enumerate().filter(|(_, l)| call_name(l).is_some()) {
        assert!(lines.get(i + 1).is_some_and(|n| n.starts_with("    # ")), "no sentence under {l}");
    }
}

#[test]
fn step_waits_for_sigusr1_before_each_call() {
    let server = socklab::echo::ServerHandle::start_local().expect("server");
    let port = server.addr().port().to_string();
    let mut child = socklab()
        .args(["client", "--step", "--host", "127.0.0.1", "--port", &port])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut prompts = Vec::new();
    // Bounded: the client makes a handful of calls; each one waits for exactly one SIGUSR1.
    for _ in 0..50 {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut err, &mut line).unwrap() == 0 {
            break;
        }
        if line.starts_with("[step] next: ") {
            prompts.push(line.clone());
            signal(child.id(), "USR1");
        }
    }
    assert!(child.wait().unwrap().success());
    let names: Vec<&str> = prompts.iter().filter_map(|p| p["[step] next: ".len()..].split('(').next()).collect();
    // socklab's first call after main sets SIGPIPE to SIG_IGN (see main.rs); then the socket.
    assert_eq!(names.first(), Some(&"rt_sigaction"), "{prompts:?}");
    assert_eq!(names.get(1), Some(&"socket"), "{prompts:?}");
    assert!(names.contains(&"connect") && names.contains(&"sendto") && names.contains(&"close"), "{names:?}");
    assert!(prompts.iter().all(|p| p.contains("kill -USR1")), "{prompts:?}");
}

#[test]
fn step_waits_for_enter_on_a_terminal() {
    if !common::have("script") {
        common::skip("script(1) (util-linux) is needed for a terminal");
        return;
    }
    // script(1) runs the client on a pseudo-terminal; the newlines we pipe in are its Enter presses
    // (a terminal hands read() one line at a time, so each pause takes exactly one).
    let bin = env!("CARGO_BIN_EXE_socklab");
    let mut child = Command::new("script")
        .args(["-qec", &format!("{bin} client --host 127.0.0.1 --port 1 --step"), "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &[b'\n'; 10]).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // The terminal echoes the newlines whenever they arrive, even in the middle of a prompt, so
    // count the prompts in the whole text rather than line by line.
    // rt_sigaction, socket, the two --timeout socket options, connect, close.
    assert_eq!(text.matches("[step] next: ").count(), 6, "rt_sigaction, socket, 2 setsockopt, connect, close: {text}");
    assert_eq!(text.matches("(press Enter to make it; Ctrl-C ends the program)").count(), 6, "{text}");
    for call in ["socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_IP)  (press", "close(3)  (press"] {
        assert!(text.contains(call), "no prompt for {call}: {text}");
    }
    assert!(text.contains("= -1 ECONNREFUSED (Connection refused)"), "{text}");
}

/// A `server --model MODEL --step` on an ephemeral port whose every prompt is answered with one
/// SIGUSR1 to the pid it names (stdin is not a terminal). Returns the server, its address and the
/// thread collecting every stderr line (bounded by the stream's end, when the server exits).
fn stepped_server(model: &str) -> (std::process::Child, std::net::SocketAddr, std::thread::JoinHandle<Vec<String>>) {
    use std::io::BufRead;
    let ready = common::ReadyFile::new();
    let mut server = socklab()
        .args(["server", "--model", model, "--step", "--host", "127.0.0.1", "--port", "0"])
        .args(ready.args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = std::io::BufReader::new(server.stderr.take().unwrap());
    let answerer = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in err.lines().map_while(Result::ok).take(5000) {
            if let Some(pid) = line.strip_prefix("[step] next: ").and_then(|l| l.rsplit_once("kill -USR1 ")) {
                let pid: u32 = pid.1.trim_end_matches(')').trim().parse().expect("a pid in the prompt");
                signal(pid, "USR1");
            }
            lines.push(line);
        }
        lines
    });
    let addr = ready.wait(&mut server);
    (server, addr, answerer)
}

/// `server --model fork --step` with stdin not a terminal: every prompt (the parent's and the
/// child's, each naming its own pid) is answered with one SIGUSR1 to that pid. The child is
/// stepped through the whole session: it must survive being stepped, and the client gets its echo.
#[test]
fn a_stepped_fork_child_serves_its_client_to_the_end() {
    use std::io::{Read, Write};
    let (mut server, addr, answerer) = stepped_server("fork");
    // Several clients: each fork races the log thread's own stepped write ("Server Accept"), and
    // a child forked while that thread held the narration's lock used to hang at its first call.
    for round in 0..3 {
        let mut client = std::net::TcpStream::connect(addr).unwrap();
        client.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap();
        client.write_all(b"Hello").unwrap();
        let mut echo = [0u8; 5];
        client.read_exact(&mut echo).unwrap_or_else(|e| panic!("client {round}: the stepped child echoed: {e}"));
        assert_eq!(&echo, b"Hello");
        client.shutdown(std::net::Shutdown::Write).unwrap();
        // The child sees our FIN, closes and exits: end-of-file, not a reset.
        let mut rest = Vec::new();
        assert_eq!(client.read_to_end(&mut rest).expect("no reset from the child"), 0);
    }
    signal(server.id(), "INT");
    let status = server.wait().unwrap();
    let lines = answerer.join().unwrap();
    assert!(status.success(), "server: {status}; lines: {lines:?}");
    // The child's prompts name its own pid, not the parent's.
    let parent = format!("kill -USR1 {})", server.id());
    let child: Vec<&String> =
        lines.iter().filter(|l| l.starts_with("[step] next: ") && !l.ends_with(&parent)).collect();
    for call in ["recvfrom(", "sendto(", "close("] {
        assert!(child.iter().any(|l| l.contains(call)), "the child was not stepped through {call}: {child:?}");
    }
}

/// `--step` pauses before every narrated call, in every model: one client session against each,
/// every prompt answered with SIGUSR1 as it comes, and then each narrated call (all but the
/// pauses' own `rt_sigtimedwait` for SIGUSR1) must have been announced by a prompt of the same
/// task, in order, before its line.
#[test]
fn step_pauses_before_every_call_in_every_model() {
    use std::io::{Read, Write};
    for model in ["iterative", "thread", "fork", "poll", "epoll", "uring"] {
        let (mut server, addr, answerer) = stepped_server(model);
        let mut client = std::net::TcpStream::connect(addr).unwrap();
        client.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap();
        client.write_all(b"Hello").unwrap();
        let mut echo = [0u8; 5];
        client.read_exact(&mut echo).unwrap_or_else(|e| panic!("[{model}] no echo while stepped: {e}"));
        assert_eq!(&echo, b"Hello", "[{model}]");
        drop(client);
        // The session's last calls are stepped too: give the server its end of the session
        // before the stop (bounded; the stop is answered by the same prompts either way).
        std::thread::sleep(std::time::Duration::from_millis(300));
        signal(server.id(), "INT");
        let status = server.wait().unwrap();
        let lines = answerer.join().unwrap();
        if model == "uring" && lines.iter().any(|l| l.contains("io_uring_setup(") && l.contains("= -1 ")) {
            common::skip("io_uring is not available on this kernel");
            continue;
        }
        assert!(status.success(), "[{model}] server: {status}\n{}", lines.join("\n"));
        // A task's line without a mark is the main thread's (strace's rule: marks only while
        // several tasks live), so key by the mark, or by the server's pid without one.
        let main = server.id().to_string();
        let task_and_name = |line: &str| -> Option<(String, String)> {
            let (pid, rest) = match line.strip_prefix("[pid ") {
                Some(rest) => {
                    let (pid, rest) = rest.split_once("] ")?;
                    (pid.trim().to_string(), rest)
                }
                None => (main.clone(), line),
            };
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            (!name.is_empty() && rest[name.len()..].starts_with('(')).then_some((pid, name))
        };
        let mut pending: HashMap<String, Vec<String>> = HashMap::new();
        let mut calls = 0;
        for line in &lines {
            if let Some(prompt) = line.strip_prefix("[step] next: ") {
                let (task, name) = task_and_name(prompt).expect("a call in the prompt");
                pending.entry(task).or_default().push(name);
                continue;
            }
            let Some((task, name)) = task_and_name(line) else { continue };
            if name == "rt_sigtimedwait" && line.contains("[USR1]") {
                continue; // the pause's own wait, narrated but not paused for
            }
            calls += 1;
            // The last line may lose its mark when the other tasks ended during the pause.
            let queue = match pending.get(&task) {
                Some(q) if q.first() == Some(&name) => pending.get_mut(&task).unwrap(),
                _ => pending
                    .get_mut(&main)
                    .filter(|q| q.first() == Some(&name))
                    .unwrap_or_else(|| panic!("[{model}] no prompt before: {line}\n{}", lines.join("\n"))),
            };
            queue.remove(0);
        }
        assert!(calls > 10, "[{model}] only {calls} calls narrated:\n{}", lines.join("\n"));
        // The ring model makes its accept, recv and send as ring entries, submitted by io_uring_enter.
        let served_by: &[&str] =
            if model == "uring" { &["io_uring_enter("] } else { &["accept4(", "recvfrom(", "sendto("] };
        for call in served_by {
            assert!(lines.iter().any(|l| l.contains(call)), "[{model}] no {call} narrated");
        }
    }
}
