//! `socklab check` against real servers: socklab's own epoll model and a correct thread-per-client
//! Python server pass (exit 0); deliberately broken Python servers, each with one classic
//! echo-server bug, fail (exit 1) in the case meant for that bug, whose lesson names it. Every run
//! is `--quick` and limited to the cases it needs; each is bounded by the cases' own time limits.
#![cfg(target_os = "linux")]

mod common;

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use common::Killed;
use socklab::check::{self, Options, Outcome, Target};
use socklab::timeline::json::{Value, parse};

/// A correct thread-per-client echo server: recv until 0, sendall, close; EMFILE at accept waits.
const CORRECT: &str = r#"
import socket, sys, threading, time
def serve(c):
    with c:
        while True:
            try:
                d = c.recv(65536)
            except ConnectionError:
                return
            if not d:
                return
            try:
                c.sendall(d)
            except ConnectionError:
                return
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', int(sys.argv[1])))
s.listen(128)
while True:
    try:
        c, _ = s.accept()
    except OSError:
        time.sleep(0.1)
        continue
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// Bug: SIGPIPE at its default (as in C; Python ignores it unless told otherwise), so a send to a
/// client that reset the connection ends the whole process.
fn sigpipe_default() -> String {
    CORRECT.replacen(
        "import socket, sys, threading, time",
        "import signal, socket, sys, threading, time\nsignal.signal(signal.SIGPIPE, signal.SIG_DFL)",
        1,
    )
}

/// Bug: one recv taken for the whole message, echoed, and the connection closed.
const ONE_RECV: &str = r#"
import socket, sys, threading
def serve(c):
    with c:
        c.sendall(c.recv(1024))
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', int(sys.argv[1])))
s.listen(128)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// Bug: nonblocking sockets, and the count send returns ignored (the rest is dropped).
const SHORT_SEND: &str = r#"
import selectors, socket, sys
sel = selectors.DefaultSelector()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', int(sys.argv[1])))
s.listen(128)
s.setblocking(False)
sel.register(s, selectors.EVENT_READ)
while True:
    for key, _ in sel.select():
        if key.fileobj is s:
            c, _ = s.accept()
            c.setblocking(False)
            sel.register(c, selectors.EVENT_READ)
            continue
        c = key.fileobj
        try:
            d = c.recv(65536)
        except ConnectionError:
            d = b''
        if not d:
            sel.unregister(c)
            c.close()
            continue
        try:
            c.send(d)
        except BlockingIOError:
            pass
        except ConnectionError:
            sel.unregister(c)
            c.close()
"#;

/// Bug: when recv returns 0 the connection is closed at once, dropping the echo not yet sent.
const CLOSE_ON_FIN: &str = r#"
import selectors, socket, sys
sel = selectors.DefaultSelector()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', int(sys.argv[1])))
s.listen(128)
s.setblocking(False)
sel.register(s, selectors.EVENT_READ)
pending = {}
def close(c):
    sel.unregister(c)
    pending.pop(c, None)
    c.close()
while True:
    for key, ev in sel.select():
        if key.fileobj is s:
            c, _ = s.accept()
            c.setblocking(False)
            pending[c] = bytearray()
            sel.register(c, selectors.EVENT_READ | selectors.EVENT_WRITE)
            continue
        c = key.fileobj
        if c not in pending:
            continue
        if ev & selectors.EVENT_READ:
            try:
                d = c.recv(65536)
            except ConnectionError:
                close(c)
                continue
            if not d:
                close(c)
                continue
            pending[c] += d
        if ev & selectors.EVENT_WRITE and pending[c]:
            try:
                del pending[c][:c.send(pending[c][:4096])]
            except BlockingIOError:
                pass
            except ConnectionError:
                close(c)
"#;

/// Bug: the accepted socket is never closed when its client leaves.
const FD_LEAK: &str = r#"
import socket, sys, threading
kept = []
def serve(c):
    while True:
        try:
            d = c.recv(65536)
        except ConnectionError:
            return
        if not d:
            return
        c.sendall(d)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', int(sys.argv[1])))
s.listen(128)
while True:
    c, _ = s.accept()
    kept.append(c)
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// A directory of its own with `name` holding `code`.
fn script(name: &str, code: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("socklab-check-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, code).unwrap();
    path
}

fn have_python() -> bool {
    if common::have("python3") {
        return true;
    }
    common::skip("python3 is not installed");
    false
}

/// `socklab check ARGS --json`: exit code and the parsed lines (cases, then the summary).
fn run_check(args: &[&str]) -> (Option<i32>, Vec<Value>, Output) {
    let started = Instant::now();
    let out = common::socklab().arg("check").args(args).arg("--json").output().expect("run socklab check");
    // Bounded by the cases' own limits; far below that on a healthy machine.
    assert!(started.elapsed() < Duration::from_secs(120), "check took {:?}", started.elapsed());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines = text.lines().map(|l| parse(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}"))).collect();
    (out.status.code(), lines, out)
}

fn field<'a>(v: &'a Value, key: &str) -> &'a Value {
    v.get(key).unwrap_or_else(|| panic!("no {key} in {v:?}"))
}

fn text(v: &Value, key: &str) -> String {
    field(v, key).as_str().unwrap_or_default().to_string()
}

/// The case object with id `id`.
fn case<'a>(lines: &'a [Value], id: &str) -> &'a Value {
    lines.iter().find(|l| l.get("case").and_then(Value::as_str) == Some(id)).unwrap_or_else(|| panic!("no case {id}"))
}

fn dump(out: &Output) -> String {
    format!("stdout:\n{}\nstderr:\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn socklab_epoll_model_passes_every_case() {
    let server =
        format!("{} server --model epoll --host 127.0.0.1 --port {{port}} --quiet", env!("CARGO_BIN_EXE_socklab"));
    let (code, lines, out) = run_check(&["--spawn", &server, "--quick", "--seed", "7"]);
    assert_eq!(code, Some(0), "{}", dump(&out));
    let summary = lines.last().unwrap();
    assert_eq!(field(summary, "summary"), &Value::Bool(true));
    assert_eq!(field(summary, "failed"), &Value::Int(0));
    assert_eq!(field(summary, "seed"), &Value::Int(7));
    let cases = &lines[..lines.len() - 1];
    assert!(cases.len() >= 30, "{} cases", cases.len());
    for c in cases {
        for key in ["case", "group", "passed", "informational", "expected", "observed", "lesson", "seconds"] {
            field(c, key);
        }
        assert_ne!(field(c, "passed"), &Value::Bool(false), "{c:?}");
    }
    // What /proc showed is quoted, not inferred.
    assert!(text(case(&lines, "process.fd-leak"), "observed").contains("descriptors before"));
    assert!(text(case(&lines, "process.restart"), "observed").contains("TIME-WAIT"));
}

#[test]
fn a_correct_thread_per_client_python_server_passes_through_the_library() {
    if !have_python() {
        return;
    }
    let path = script("correct.py", CORRECT);
    let options = Options {
        seed: 11,
        quick: true,
        cases: ["echo", "close", "load.idle-client", "load.concurrent-100", "process.sigpipe", "process.emfile"]
            .map(String::from)
            .to_vec(),
        ..Options::default()
    };
    let target = Target::Spawn(format!("python3 {} {{port}}", path.display()));
    let report = check::run(&target, &options, &mut |_| {}).expect("check::run");
    let failed: Vec<_> = report.results.iter().filter(|r| r.outcome == Outcome::Failed).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert_eq!(report.case("load.idle-client").map(|r| r.outcome), Some(Outcome::Passed));
    assert!(report.server.as_ref().is_some_and(|s| s.deaths.is_empty()));
}

/// Each broken server fails the case meant for its bug, exit 1, with the bug named in the lesson.
#[test]
fn broken_servers_fail_the_case_that_names_their_bug() {
    if !have_python() {
        return;
    }
    let sigpipe = sigpipe_default();
    let cases: [(&str, &str, &str, &str); 5] = [
        ("sigpipe_default.py", &sigpipe, "process.sigpipe", "killed by SIGPIPE"),
        ("one_recv.py", ONE_RECV, "echo.split-message", "treats one recv(2) as the whole message"),
        ("short_send.py", SHORT_SEND, "echo.slow-reader", "short write ignored"),
        ("close_on_fin.py", CLOSE_ON_FIN, "close.half-close", "closes as soon as recv returns 0"),
        ("fd_leak.py", FD_LEAK, "process.fd-leak", "is not closed"),
    ];
    let runs: Vec<_> = cases
        .iter()
        .map(|(name, code, id, _)| {
            let path = script(name, code);
            let spawn = format!("python3 {} {{port}}", path.display());
            let id = id.to_string();
            std::thread::spawn(move || run_check(&["--spawn", &spawn, "--quick", "--case", &id]))
        })
        .collect();
    for ((name, _, id, words), run) in cases.iter().zip(runs) {
        let (code, lines, out) = run.join().unwrap();
        assert_eq!(code, Some(1), "{name}: {}", dump(&out));
        let c = case(&lines, id);
        assert_eq!(field(c, "passed"), &Value::Bool(false), "{name}: {c:?}");
        assert!(text(c, "lesson").contains(words), "{name}: the lesson should say '{words}': {c:?}");
        assert_eq!(field(lines.last().unwrap(), "failed"), &Value::Int(1), "{name}");
    }
}

/// The tutorial's server serves one client at a time: reported, and a failure only when asked
/// for a concurrent server.
#[test]
fn the_tutorials_server_is_one_client_at_a_time() {
    if !have_python() {
        return;
    }
    let server = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/tutorial_server.py");
    let spawn = format!("python3 {server} 127.0.0.1 {{port}} 1000000");
    let (code, lines, out) = run_check(&["--spawn", &spawn, "--quick", "--case", "load.idle-client"]);
    assert_eq!(code, Some(0), "{}", dump(&out));
    let c = case(&lines, "load.idle-client");
    assert_eq!(field(c, "passed"), &Value::Null, "{c:?}");
    assert_eq!(field(c, "informational"), &Value::Bool(true));
    assert!(text(c, "observed").starts_with("one client at a time"), "{c:?}");

    let (code, lines, out) =
        run_check(&["--spawn", &spawn, "--quick", "--case", "load.idle-client", "--expect", "concurrent"]);
    assert_eq!(code, Some(1), "{}", dump(&out));
    let c = case(&lines, "load.idle-client");
    assert_eq!(field(c, "passed"), &Value::Bool(false));
    assert!(text(c, "lesson").contains("one client at a time"), "{c:?}");
}

/// A running server by --addr (IPv6 too) and by --unix.
#[test]
fn addr_and_unix_targets() {
    for host in common::hosts() {
        let server = common::ServerProcess::start(host, &["--model", "thread", "--quiet"]);
        let addr = server.addr;
        let (code, lines, out) =
            run_check(&["--addr", &addr.to_string(), "--quick", "--case", "echo.basic", "--case", "family"]);
        assert_eq!(code, Some(0), "{host}: {}", dump(&out));
        assert_eq!(field(case(&lines, "echo.basic"), "passed"), &Value::Bool(true));
        if host == "::1" {
            assert_eq!(field(case(&lines, "family.ipv6"), "passed"), &Value::Bool(true));
        }
    }
    let dir = std::env::temp_dir().join(format!("socklab-check-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("echo.sock");
    let ready = common::ReadyFile::new();
    let child = common::socklab()
        .args(["server", "--model", "epoll", "--unlink", "--quiet", "--unix"])
        .arg(&path)
        .args(ready.args())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Killed(child);
    ready.text(&mut child.0);
    let (code, lines, out) =
        run_check(&["--unix", path.to_str().unwrap(), "--quick", "--case", "echo", "--case", "load.concurrent-100"]);
    drop(child);
    assert_eq!(code, Some(0), "{}", dump(&out));
    assert_eq!(field(case(&lines, "load.concurrent-100"), "passed"), &Value::Bool(true));
}

/// Bad usage exits 2 with a message naming what was wrong; a server that never answers, or one
/// that exits at once, cannot hang the run.
#[test]
fn usage_errors_and_servers_that_hang_or_die() {
    for (args, says) in [
        (vec!["check"], "--addr HOST:PORT, --unix PATH or --spawn"),
        (vec!["check", "--spawn", "./a.out 5000"], "has no {port}"),
        (vec!["check", "--addr", "127.0.0.1:1", "--case", "echo.nope"], "no case or group 'echo.nope'"),
        (vec!["check", "--addr", "127.0.0.1:1", "--case", "process.emfile"], "needs --spawn"),
        (vec!["check", "--addr", "nonsense"], "HOST:PORT"),
    ] {
        let out = common::socklab().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", dump(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains(says), "{args:?}: {}", dump(&out));
    }
    // Accepts, never reads or answers: the case fails within its limit.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let (code, lines, out) = run_check(&["--addr", &addr, "--case", "echo.basic"]);
    assert_eq!(code, Some(1), "{}", dump(&out));
    assert!(text(case(&lines, "echo.basic"), "observed").contains("nothing moved"), "{}", dump(&out));
    drop(silent);
    // A server that exits after its first client: the death is reported and a new one started.
    if have_python() {
        let once = script(
            "once.py",
            "import socket,sys\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('127.0.0.1',int(sys.argv[1])))\ns.listen(5)\nwhile True:\n    c,_=s.accept()\n    d=c.recv(100)\n    if d:\n        c.sendall(d)\n        c.close()\n        sys.exit(3)\n",
        );
        let spawn = format!("python3 {} {{port}}", once.display());
        let (code, lines, out) = run_check(&["--spawn", &spawn, "--case", "echo.basic", "--case", "echo.binary"]);
        assert_eq!(code, Some(1), "{}", dump(&out));
        let summary = lines.last().unwrap();
        let deaths = format!("{:?}", field(summary, "server_deaths"));
        assert!(deaths.contains("exit 3"), "{}", dump(&out));
    }
}

/// The --html page renders in a real headless browser (chromium): every case is a `<details>`, the
/// failed ones open; `#all` opens the rest (the page's own script ran); and the browser, sent to
/// a proxy we listen on, made no network request at all.
#[test]
fn the_html_report_renders_in_a_browser_without_network() {
    if !have_python() {
        return;
    }
    let Some(browser) = ["chromium", "chromium-browser"].into_iter().find(|b| common::have(b)) else {
        common::skip("chromium is not installed (.ci/run installs it)");
        return;
    };
    let path = script("one_recv_html.py", ONE_RECV);
    let page = path.with_file_name("report.html");
    let junit = path.with_file_name("report.xml");
    let spawn = format!("python3 {} {{port}}", path.display());
    let (code, _, out) = run_check(&[
        "--spawn",
        &spawn,
        "--quick",
        "--case",
        "echo.basic",
        "--case",
        "echo.split-message",
        "--html",
        page.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1), "{}", dump(&out));
    // The JUnit file is well-formed XML (python3's parser says so) with the failure in it.
    let parsed = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); \
print(r.get('tests'), r.get('failures'), [c.get('name') for c in r.iter('testcase') if c.find('failure') is not None])",
        ])
        .arg(&junit)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&parsed.stdout).trim(), "2 1 ['echo.split-message']", "{parsed:?}");
    let html = std::fs::read_to_string(&page).unwrap();
    for network in ["http://", "https://", "src=", "url(", "@import", "<link"] {
        assert!(!html.contains(network), "the page refers to something outside it: {network}");
    }
    // Every request the browser makes goes to this proxy, which notes the first line of each.
    // Chromium's own services (its updater, clock and account checks, on Google's hosts) call
    // home whatever the page; a request for anything else would be the page's.
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_addr = proxy.local_addr().unwrap();
    let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let noted = requests.clone();
    std::thread::spawn(move || {
        for conn in proxy.incoming().flatten() {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 512];
            let n = std::io::Read::read(&mut &conn, &mut buf).unwrap_or(0);
            let text = String::from_utf8_lossy(&buf[..n]);
            noted.lock().unwrap().push(text.lines().next().unwrap_or("").to_string());
        }
    });
    let dom = |fragment: &str| {
        let out = std::process::Command::new(browser)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"])
            .arg("--disable-component-update")
            .arg(format!("--proxy-server=http://{proxy_addr}"))
            .arg("--dump-dom")
            .arg(format!("file://{}{fragment}", page.display()))
            .stderr(std::process::Stdio::null())
            .output()
            .expect("run chromium");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let plain = dom("");
    assert!(plain.contains("data-rendered=\"yes\""), "the page's script did not run: {plain}");
    let opened = |dom: &str, id: &str| {
        let tag =
            dom.split("<details").find(|t| t.contains(&format!("id=\"{id}\""))).unwrap_or_else(|| panic!("no {id}"));
        tag.split('>').next().unwrap().contains("open")
    };
    assert!(opened(&plain, "echo.split-message"), "a failed case is open");
    assert!(!opened(&plain, "echo.basic"), "a passed case is closed");
    assert!(plain.contains("lesson") && plain.contains("transcript") && plain.contains("recv returned 0"));
    let all = dom("#all");
    assert!(opened(&all, "echo.basic"), "#all opens every case");
    let browsers_own = |line: &str| {
        let host = line.split_whitespace().nth(1).unwrap_or("");
        let host = host.trim_start_matches("http://").trim_start_matches("https://");
        let host = host.split(['/', ':']).next().unwrap_or("");
        ["google.com", "googleapis.com", "gvt1.com", "gstatic.com"]
            .iter()
            .any(|d| host == *d || host.ends_with(&format!(".{d}")))
    };
    let requests = requests.lock().unwrap().clone();
    let from_page: Vec<&String> = requests.iter().filter(|l| !browsers_own(l)).collect();
    assert!(from_page.is_empty(), "network requests other than the browser's own: {from_page:?}");
}

/// Bug: an event loop (selectors: epoll) whose accepted sockets stay blocking.
const BLOCKING_LOOP: &str = r#"
import selectors, socket, sys
sel = selectors.DefaultSelector()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', int(sys.argv[1])))
s.listen(128)
s.setblocking(False)
sel.register(s, selectors.EVENT_READ)
while True:
    for key, _ in sel.select():
        if key.fileobj is s:
            c, _ = s.accept()  # c is blocking: the bug
            sel.register(c, selectors.EVENT_READ)
            continue
        c = key.fileobj
        try:
            d = c.recv(65536)
        except ConnectionError:
            d = b''
        if not d:
            sel.unregister(c)
            c.close()
            continue
        try:
            c.sendall(d)
        except ConnectionError:
            sel.unregister(c)
            c.close()
"#;

/// `--strace` names a blocking call in an event loop, quoting it; a loop whose sockets are
/// nonblocking is not named.
#[test]
fn strace_finds_a_blocking_call_in_an_event_loop() {
    if !have_python() {
        return;
    }
    if !common::have("strace") {
        common::skip("strace is not installed");
        return;
    }
    let path = script("blocking_loop.py", BLOCKING_LOOP);
    let spawn = format!("python3 {} {{port}}", path.display());
    let (_, lines, out) = run_check(&["--spawn", &spawn, "--quick", "--case", "echo.basic", "--strace"]);
    let findings = format!("{:?}", field(lines.last().unwrap(), "strace"));
    assert!(findings.contains("a blocking recvfrom on socket") && findings.contains("epoll_wait"), "{}", dump(&out));
    let fixed = BLOCKING_LOOP
        .replace("c, _ = s.accept()  # c is blocking: the bug", "c, _ = s.accept()\n            c.setblocking(False)");
    let path = script("nonblocking_loop.py", &fixed);
    let spawn = format!("python3 {} {{port}}", path.display());
    let (_, lines, out) = run_check(&["--spawn", &spawn, "--quick", "--case", "echo.basic", "--strace"]);
    let findings = format!("{:?}", lines.last().unwrap().get("strace"));
    assert!(!findings.contains("a blocking"), "{}", dump(&out));
}

/// `--strace` quotes the line that shows a short send left unfinished.
#[test]
fn strace_quotes_the_short_send() {
    if !have_python() {
        return;
    }
    if !common::have("strace") {
        common::skip("strace is not installed");
        return;
    }
    let path = script("short_send_strace.py", SHORT_SEND);
    let spawn = format!("python3 {} {{port}}", path.display());
    let html = std::env::temp_dir().join(format!("socklab-check-strace-{}.html", std::process::id()));
    let html_arg = html.to_string_lossy().into_owned();
    let (code, lines, out) =
        run_check(&["--spawn", &spawn, "--quick", "--case", "echo.slow-reader", "--strace", "--html", &html_arg]);
    assert_eq!(code, Some(1), "{}", dump(&out));
    let findings = format!("{:?}", field(lines.last().unwrap(), "strace"));
    assert!(findings.contains("a short send") && findings.contains("sendto("), "{}", dump(&out));
    // The failed case's section of the report holds the server's calls made while it ran.
    let page = std::fs::read_to_string(&html).unwrap();
    let _ = std::fs::remove_file(&html);
    let section = page.split("id=\"echo.slow-reader\"").nth(1).expect("the case's section");
    let section = section.split("</details>").next().unwrap();
    assert!(section.contains("the server's calls while this case ran (strace)"), "{section}");
    let calls = section.split("(strace)</b><pre>").nth(1).unwrap().split("</pre>").next().unwrap();
    assert!(calls.lines().any(|l| l.contains("sendto(")), "{calls}");
    assert!(calls.lines().count() <= socklab::check::STRACE_LINES_PER_CASE, "{calls}");
}
