//! `--trace` against `strace -f`: for every model of the server and for the client, each line the
//! narration prints is a line strace printed for the same task, in the same order, and every
//! socket, descriptor, process and signal call strace saw socklab's code make is narrated.
//!
//! What is left out of the comparison, and why: the calls before `main` (the loader and libc's
//! start-up); the narrator's own writes to stderr and its one `gettid` per thread; the work of
//! the C library inside `pthread_create`/thread exit (its `rt_sigprocmask`, `clone3`, `mmap`...)
//! and of `malloc`/`futex`; the program's own output to stdout and stderr (`write(1, ...)`,
//! `write(2, ...)`: narrating those would narrate the narration). The files socklab reads and
//! writes itself are compared like sockets: the somaxconn read, the `--ready-file` (`openat`,
//! `write`, `close`, `rename`), standard input for `--message -`, and the /proc scan of `states`.
//! Addresses (`0x7ffd...`, `0x55...`) are compared as "an address".

mod common;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{ReadyFile, have, signal, socklab};

/// The calls the comparison holds socklab to, both ways.
const OURS: &[&str] = &[
    "socket",
    "socketpair",
    "bind",
    "listen",
    "accept4",
    "connect",
    "sendto",
    "recvfrom",
    "shutdown",
    "close",
    "setsockopt",
    "getsockopt",
    "getsockname",
    "getpeername",
    "fcntl",
    "ioctl",
    "poll",
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "clone",
    "wait4",
    "kill",
    "rt_sigaction",
    "rt_sigtimedwait",
    "prlimit64",
    "getrusage",
    "rt_sigprocmask",
    "openat",
    "read",
    "write",
    "rename",
    "unlink",
    "readlink",
    "getdents64",
    "newfstatat",
    "mkdir",
    "rmdir",
];
// io_uring_* calls are left out: socklab names flags newer than this machine's strace 6.1 knows
// (strace prints IORING_SETUP_SINGLE_ISSUER as 0x1000), so the two cannot agree letter for letter.

/// `(pid, text)` of each finished call in an `strace -f -o` file, `<unfinished ...>` joined with
/// its `<... resumed>` half.
fn strace_calls(text: &str) -> Vec<(i32, String)> {
    let mut pending: HashMap<i32, String> = HashMap::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((pid, rest)) = line.split_once(' ') else { continue };
        let Ok(pid) = pid.parse::<i32>() else { continue };
        let rest = rest.trim_start();
        if rest.starts_with("+++") || rest.starts_with("---") {
            continue;
        }
        if let Some(head) = rest.strip_suffix(" <unfinished ...>") {
            pending.insert(pid, head.to_string());
            continue;
        }
        let full = if rest.starts_with("<... ") {
            let tail = rest.split_once(" resumed>").map_or("", |(_, t)| t);
            format!("{}{}", pending.remove(&pid).unwrap_or_default(), tail)
        } else {
            rest.to_string()
        };
        out.push((pid, full));
    }
    out
}

/// One spelling for what may differ without being a difference: alignment, addresses, glibc's
/// restorer (which the program cannot know).
fn normal(line: &str) -> String {
    // strace 6.1 prints an SO_RCVTIMEO_OLD / SO_SNDTIMEO_OLD value as raw bytes, newer ones (and
    // the narration) as `{tv_sec=..., tv_usec=...}`: decode the bytes, compare the values.
    let decoded = common::decode_timeo(line);
    let line = decoded.as_str();
    let (call, ret) = match line.rfind(") = ") {
        Some(i) => (line[..i].trim_end(), line[i + 4..].trim()),
        None => match line.rsplit_once(" = ") {
            Some((c, r)) => (c.trim_end().trim_end_matches(')'), r.trim()),
            None => (line.trim_end(), ""),
        },
    };
    let mut text = format!("{}) = {ret}", call.trim_end_matches(')'));
    // Stack (0x7ff...) and heap (0x55...) buffers: hex numbers of 8 digits or more.
    let mut from = 0;
    while let Some(i) = text[from..].find("0x").map(|i| from + i) {
        let end = text[i + 2..].find(|c: char| !c.is_ascii_hexdigit()).map_or(text.len(), |e| i + 2 + e);
        if end - i - 2 >= 8 {
            text.replace_range(i..end, "ADDR");
            from = i + 4;
        } else {
            from = end;
        }
    }
    // Addresses glibc chooses and the program cannot see: the narration says `...`.
    for field in ["sa_restorer=", "child_tidptr="] {
        if let Some(i) = text.find(field) {
            let end = text[i..].find(['}', ')', ',']).map_or(text.len(), |e| i + e);
            text.replace_range(i..end, &format!("{field}ADDR"));
        }
    }
    text
}

fn name(line: &str) -> &str {
    line.split('(').next().unwrap_or("")
}

/// Runs `args` under `strace -f` with `--trace`, and the client against it when it is a server.
fn run(args: &[&str], dir: &Path, stdin: Option<&[u8]>) -> (String, String) {
    let log = dir.join("strace.log");
    let ready = ReadyFile::new();
    let is_server = args[0] == "server";
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-qq", "-s", "32", "-o"]).arg(&log).arg(env!("CARGO_BIN_EXE_socklab")).arg("--trace").args(args);
    if is_server && !args.contains(&"--unix") {
        cmd.args(["--host", "127.0.0.1", "--port", "0"]);
    }
    if is_server {
        cmd.arg("--quiet").args(ready.args());
    }
    let input = if stdin.is_some() { Stdio::piped() } else { Stdio::null() };
    let mut child = cmd.stdin(input).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    if let Some(bytes) = stdin {
        use std::io::Write;
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(bytes).unwrap();
        drop(pipe); // end of file: the client stops reading
    }
    if is_server {
        // A Unix socket server (`--unix PATH`) is reached by its path, a TCP one by its port.
        let client: Vec<String> = match args.iter().position(|a| *a == "--unix") {
            Some(i) => {
                let _ = ready.text(&mut child);
                vec!["client".into(), "--unix".into(), args[i + 1].into()]
            }
            None => vec!["client".into(), "--port".into(), ready.wait(&mut child).port().to_string()],
        };
        let out = socklab().args(&client).output().unwrap();
        assert!(out.status.success(), "client: {}", String::from_utf8_lossy(&out.stderr));
        // Let the server finish that session, then stop it with SIGINT (sent to socklab, not strace).
        thread::sleep(Duration::from_millis(300));
        let deadline = Instant::now() + Duration::from_secs(10);
        let server_pid = loop {
            let children =
                fs::read_to_string(format!("/proc/{}/task/{}/children", child.id(), child.id())).unwrap_or_default();
            if let Some(pid) = children.split_whitespace().next() {
                break pid.parse::<u32>().unwrap();
            }
            assert!(Instant::now() < deadline, "strace never started socklab");
            thread::sleep(Duration::from_millis(20));
        };
        signal(server_pid, "INT");
    }
    let out = child.wait_with_output().unwrap();
    (String::from_utf8_lossy(&out.stderr).into_owned(), fs::read_to_string(&log).unwrap())
}

fn compare(what: &str, args: &[&str]) -> String {
    compare_with_input(what, args, None, &[])
}

/// Compares, and returns the narration (for the callers' own checks). Calls named in `skip` are
/// left out on both sides.
fn compare_with_input(what: &str, args: &[&str], stdin: Option<&[u8]>, skip: &[&str]) -> String {
    let dir = std::env::temp_dir().join(format!("socklab-narration-{}-{what}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let (narration, strace) = run(args, &dir, stdin);
    let _ = fs::remove_dir_all(&dir);
    let calls = strace_calls(&strace);
    let main_pid = calls.first().map(|c| c.0).expect("strace saw nothing");
    let mut theirs: HashMap<i32, Vec<String>> = HashMap::new();
    let mut after_main = false;
    let mut previous: HashMap<i32, String> = HashMap::new();
    for (pid, line) in &calls {
        let n = name(line);
        let before = previous.insert(*pid, n.to_string()).unwrap_or_default();
        // glibc's own masks around a thread's start and end (pthread_create, start_thread, exit).
        let glibc_mask = n == "rt_sigprocmask"
            && (line.contains("~[")
                || line.contains("[RTMIN RT_1]")
                || (line.contains("SIG_SETMASK") && matches!(before.as_str(), "clone3" | "set_robust_list" | "")));
        // socklab's first call after main: rt_sigaction(SIGPIPE, ...) (see main.rs).
        if n == "rt_sigaction" && line.contains("SIGPIPE") {
            after_main = true;
        }
        // The program's output and the narration itself.
        let output = n == "write" && (line.starts_with("write(1,") || line.starts_with("write(2,"));
        // std's debug builds check a descriptor with fcntl(F_GETFD) before closing it (an
        // assertion of std's, gone in release builds).
        let std_check = n == "fcntl" && line.contains("F_GETFD)");
        if after_main
            && OURS.contains(&n)
            && !skip.contains(&n)
            && !output
            && !glibc_mask
            && !std_check
            && !line.starts_with("rt_sigaction(SIGRT")
        {
            theirs.entry(*pid).or_default().push(normal(line));
        }
    }
    let mut ours: HashMap<i32, Vec<String>> = HashMap::new();
    // `#   submit ...` lines (uring) narrate ring entries, which are not system calls.
    for line in narration.lines().filter(|l| !l.starts_with("socklab") && !l.trim_start().starts_with('#')) {
        let (pid, rest) = socklab::trace::split_pid_mark(line);
        if !OURS.contains(&name(rest)) || skip.contains(&name(rest)) {
            continue;
        }
        ours.entry(pid.unwrap_or(main_pid)).or_default().push(normal(rest));
    }
    assert!(!ours.is_empty(), "{what}: no narration at all:\n{narration}");
    let all_pids: HashSet<i32> = theirs.keys().chain(ours.keys()).copied().collect();
    for pid in all_pids {
        let (a, b) = (ours.get(&pid).cloned().unwrap_or_default(), theirs.get(&pid).cloned().unwrap_or_default());
        assert_eq!(
            a, b,
            "{what}: task {pid}: --trace (left) and strace -f (right) differ\n--- narration:\n{narration}\n--- strace:\n{strace}"
        );
    }
    narration
}

/// The files a server reads and writes itself are in the comparison (so `compare` saw them): the
/// ready file, and the somaxconn read of every model but the tutorial's (whose backlog is 5).
fn assert_files_narrated(what: &str, narration: &str, reads_somaxconn: bool) {
    assert!(
        narration.contains("O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, 0666)") && narration.contains("rename(\""),
        "{what}: the --ready-file's openat/rename are not narrated:\n{narration}"
    );
    assert_eq!(
        narration.contains("openat(AT_FDCWD, \"/proc/sys/net/core/somaxconn\", O_RDONLY|O_CLOEXEC)"),
        reads_somaxconn,
        "{what}: the somaxconn read:\n{narration}"
    );
}

fn tools() -> bool {
    if !have("strace") {
        common::skip("needs strace");
        return false;
    }
    true
}

#[test]
fn client_narration_equals_strace() {
    if !tools() {
        return;
    }
    // A server that is not traced, for the client to talk to.
    let (mut server, addr) = common::quiet_server();
    compare("client", &["client", "--host", "127.0.0.1", "--port", &addr.port().to_string()]);
    signal(server.id(), "INT");
    let _ = server.wait();
}

/// `socklab bench`: its connections, its epoll loop, the /proc scan that finds the server, and
/// the two `getrusage` calls around the run that measure the generator's own CPU time.
#[test]
fn bench_narration_equals_strace() {
    if !tools() {
        return;
    }
    let (mut server, addr) = common::quiet_server();
    let target = addr.to_string();
    let narration = compare("bench", &["bench", "--addr", &target, "--conns", "2", "--duration", "0.3"]);
    assert_eq!(narration.matches("getrusage(RUSAGE_SELF, {ru_utime={tv_sec=").count(), 2, "{narration}");
    signal(server.id(), "INT");
    let _ = server.wait();
}

/// `client --message -` streams standard input: poll(0 and the socket), then `read(0, ...)` a
/// chunk at a time from the sending thread, all narrated, then its FIN at stdin's end.
#[test]
fn client_reading_stdin_narration_equals_strace() {
    if !tools() {
        return;
    }
    let (mut server, addr) = common::quiet_server();
    let port = addr.port().to_string();
    let narration = compare_with_input(
        "client-stdin",
        &["client", "--host", "127.0.0.1", "--port", &port, "--message", "-"],
        Some(b"from stdin\n"),
        &[],
    );
    signal(server.id(), "INT");
    let _ = server.wait();
    assert!(narration.contains("read(0, \"from stdin\\n\", 65536)"), "read(0) is not narrated:\n{narration}");
    assert!(narration.contains("read(0, \"\", 65536)"), "the end of stdin is not narrated:\n{narration}");
    assert!(narration.contains("poll([{fd=0, events=POLLIN}, {fd=3, events=0}], 2, -1)"), "{narration}");
    assert!(narration.contains("shutdown(3, SHUT_WR)"), "no FIN at stdin's end:\n{narration}");
}

/// `states`: the sock_diag dump and the /proc scan that finds socklab's own sockets.
#[test]
fn states_narration_equals_strace() {
    if !tools() {
        return;
    }
    // The sock_diag dump's sendto/recvfrom are compared too: the narration decodes the netlink
    // messages as strace does (src/trace/netlink.rs), including strace's first request, which it
    // prints undecoded because the socket has no address (no port id) before its first send.
    let narration = compare_with_input("states", &["states"], None, &[]);
    assert!(
        narration.contains("nlmsg_type=SOCK_DIAG_BY_FAMILY, nlmsg_flags=NLM_F_REQUEST|NLM_F_DUMP")
            && narration.contains("nlmsg_type=NLMSG_DONE"),
        "the netlink messages are not decoded:\n{narration}"
    );
    assert!(
        narration.contains("openat(AT_FDCWD, \"/proc\", O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_DIRECTORY)")
            && narration.contains("getdents64("),
        "the /proc scan is not narrated:\n{narration}"
    );
}

#[test]
fn iterative_server_narration_equals_strace() {
    if tools() {
        let narration = compare("iterative", &["server", "--model", "iterative"]);
        assert_files_narrated("iterative", &narration, false);
    }
}

#[test]
fn thread_server_narration_equals_strace() {
    if tools() {
        let narration = compare("thread", &["server", "--model", "thread"]);
        assert_files_narrated("thread", &narration, true);
    }
}

#[test]
fn fork_server_narration_equals_strace() {
    if tools() {
        let narration = compare("fork", &["server", "--model", "fork"]);
        assert_files_narrated("fork", &narration, true);
    }
}

#[test]
fn poll_server_narration_equals_strace() {
    if tools() {
        let narration = compare("poll", &["server", "--model", "poll"]);
        assert_files_narrated("poll", &narration, true);
    }
}

#[test]
fn epoll_server_narration_equals_strace() {
    if tools() {
        let narration = compare("epoll", &["server", "--model", "epoll", "--threads", "2"]);
        assert_files_narrated("epoll", &narration, true);
    }
}

/// `--explain`'s listen sentence says Linux queues backlog + 1 finished handshakes; checked here
/// against the kernel: with `--backlog 2` and a server that does not accept yet, exactly 3 of 5
/// clients finish their handshake (the others' SYNs are dropped, so their connects time out).
#[test]
fn listen_explanation_matches_the_real_queue_length() {
    let ready = ReadyFile::new();
    let mut server = socklab()
        .args(["--explain", "server", "--host", "127.0.0.1", "--port", "0", "--quiet", "--backlog", "2"])
        .args(["--accept-delay", "20s"])
        .args(ready.args())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = ready.wait(&mut server);
    let mut connected = Vec::new();
    for _ in 0..5 {
        if let Ok(s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(1500)) {
            connected.push(s);
        }
    }
    signal(server.id(), "INT");
    let out = server.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(connected.len(), 3, "the kernel completed {} handshakes with backlog 2", connected.len());
    assert!(err.contains("backlog + 1 = 3"), "the listen sentence does not say 3:\n{err}");
}

#[test]
fn uring_server_narration_equals_strace() {
    if tools() {
        let narration = compare("uring", &["server", "--model", "uring", "--threads", "1"]);
        assert_files_narrated("uring", &narration, true);
        // The ring's descriptor is closed through sys::close, so the close is narrated too.
        let ring_fd = narration
            .lines()
            .find(|l| l.contains("io_uring_setup("))
            .and_then(|l| l.rsplit(" = ").next())
            .map(|fd| fd.trim().to_string())
            .expect("no io_uring_setup narrated");
        assert!(
            narration.lines().any(|l| l.trim_start_matches(|c| c != 'c').starts_with(&format!("close({ring_fd})"))),
            "the ring's close({ring_fd}) is not narrated:\n{narration}"
        );
    }
}

/// strace -f marks a line `[pid N]` while it follows more than one task, deciding when the call
/// starts. `pass-fd` forks its worker while it is the only task: strace prints that `clone`
/// unmarked and marks the lines of both processes from then on, while the worker lives (its
/// `wait4` started while the worker lived, so it is marked too). The narration must agree.
/// (Right after a fork strace itself leaves a few of the parent's lines unmarked, until it has
/// seen the new child stop for the first time: those lines are not compared.)
#[test]
fn pid_marks_follow_strace_count_of_tasks() {
    if !tools() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("socklab-narration-{}-marks", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let narration_file = dir.join("narration");
    // strace writes to its stderr (with `-o` it would print `PID ` on every line instead of its
    // `[pid N]` marks); the shell sends socklab's own stderr, the narration, to a file.
    let out = Command::new("strace")
        .args(["-f", "-qq", "-s", "32", "sh", "-c", "exec \"$0\" --trace pass-fd --host 127.0.0.1 --port 0 2>\"$1\""])
        .arg(env!("CARGO_BIN_EXE_socklab"))
        .arg(&narration_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(out.status.success(), "pass-fd under strace failed");
    let strace = String::from_utf8_lossy(&out.stderr).into_owned();
    let narration = fs::read_to_string(&narration_file).unwrap();
    let _ = fs::remove_dir_all(&dir);

    // `(mark, call)` of each call socklab narrates, in order; a resumed half is not a new line.
    let lines = |text: &str, skip_to_main: bool| -> Vec<(Option<i32>, String)> {
        let mut after_main = !skip_to_main;
        let mut out = Vec::new();
        for line in text.lines() {
            let (pid, rest) = socklab::trace::split_pid_mark(line);
            if rest.contains("rt_sigaction(SIGPIPE") {
                after_main = true;
            }
            let n = name(rest);
            let output = rest.starts_with("write(1,") || rest.starts_with("write(2,");
            if after_main && OURS.contains(&n) && !output && !rest.starts_with("<...") {
                out.push((pid, n.to_string()));
            }
        }
        out
    };
    let theirs = lines(&strace, true);
    let ours = lines(&narration, false);
    let fork_at = |calls: &[(Option<i32>, String)]| calls.iter().position(|c| c.1 == "clone").expect("no fork seen");
    let (their_fork, our_fork) = (fork_at(&theirs), fork_at(&ours));
    // Up to and including the fork: one task, no mark, the same calls.
    assert_eq!(
        ours[..=our_fork],
        theirs[..=their_fork],
        "before the fork:\n--- narration:\n{narration}\n--- strace:\n{strace}"
    );
    assert!(ours[..=our_fork].iter().all(|c| c.0.is_none()));
    // From the fork to the reap: two processes, every narrated line marked, as strace marks
    // every line once it has seen the child.
    let reap = ours.iter().rposition(|c| c.1 == "wait4").expect("no wait4 narrated");
    assert!(
        ours[our_fork + 1..=reap].iter().all(|c| c.0.is_some()),
        "a line between the fork and the reap is not marked:\n{narration}"
    );
    let child_first = theirs.iter().skip(their_fork + 1).position(|c| c.0.is_some()).unwrap() + their_fork + 1;
    assert!(
        theirs[child_first..].iter().take_while(|c| c.1 != "wait4").all(|c| c.0.is_some())
            && theirs.iter().rfind(|c| c.1 == "wait4").is_some_and(|c| c.0.is_some()),
        "strace left a line unmarked while both processes lived:\n{strace}"
    );
}

/// `draw` reads the saved session and writes the SVG through narrated calls (not std::fs, whose
/// openat/statx/read/write would be made unseen): every one of them equals strace's line.
#[test]
fn draw_narration_equals_strace() {
    if !tools() {
        return;
    }
    let session = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/session.jsonl");
    let svg = std::env::temp_dir().join(format!("socklab-narration-{}-draw.svg", std::process::id()));
    let svg_arg = svg.to_str().unwrap();
    let narration = compare("draw", &["draw", session, "--svg", svg_arg]);
    let written = fs::read_to_string(&svg).unwrap_or_default();
    let _ = fs::remove_file(&svg);
    assert!(written.starts_with("<svg") || written.starts_with("<?xml"), "no SVG written");
    assert!(
        narration.contains(&format!("openat(AT_FDCWD, \"{session}\", O_RDONLY|O_CLOEXEC)"))
            && narration
                .contains(&format!("openat(AT_FDCWD, \"{svg_arg}\", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666)")),
        "the session's read or the SVG's write is not narrated:\n{narration}"
    );
}

/// A Unix socket server first checks what is at its path (`newfstatat`, so that it removes a
/// stale socket file but never a regular file), then binds: that check is narrated as strace
/// shows it, with the rest of the server's calls.
#[test]
fn unix_server_narration_equals_strace() {
    if !tools() {
        return;
    }
    let path = std::env::temp_dir().join(format!("socklab-narration-{}-unix.sock", std::process::id()));
    let path_arg = path.to_str().unwrap();
    let narration = compare("unix", &["server", "--unix", path_arg]);
    let _ = fs::remove_file(&path);
    assert!(
        narration.contains(&format!("newfstatat(AT_FDCWD, \"{path_arg}\", ")),
        "the stale-socket check is not narrated:\n{narration}"
    );
}
