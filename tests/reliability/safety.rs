//! Safety defaults, checked on the running program: loopback unless told otherwise (with a notice
//! otherwise), every descriptor close-on-exec, every send with MSG_NOSIGNAL, and a clean valgrind
//! run of the client and of every server model but uring (with fork's children).

use std::process::Command;
use std::time::Duration;

use crate::common::{have, socklab};
use crate::harness::{self, Server, connect, echo_on, models};

/// O_CLOEXEC as /proc/PID/fdinfo prints it (octal `flags:`).
const O_CLOEXEC_OCTAL: u32 = 0o2000000;

fn fd_flags(pid: u32, fd: u32) -> u32 {
    let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        .unwrap_or_else(|| panic!("no flags in /proc/{pid}/fdinfo/{fd}: {info:?}"))
}

/// Every socket the server holds (the listener and accepted connections, in the server and in any
/// child) is close-on-exec.
#[test]
fn every_socket_is_cloexec() {
    for model in models() {
        let server = Server::start(&model, &["--quiet"]);
        let mut live = connect(server.addr);
        assert_eq!(echo_on(&mut live, b"hold"), b"hold");
        let pid = server.pid();
        let mut checked = 0;
        for p in std::iter::once(pid).chain(harness::children(pid)) {
            for (fd, target) in harness::fds(p) {
                if target.starts_with("socket:") {
                    let flags = fd_flags(p, fd);
                    assert!(
                        flags & O_CLOEXEC_OCTAL != 0,
                        "[{}] pid {p} fd {fd} ({target}) flags {flags:o}",
                        model.name
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked >= 2, "[{}] found {checked} sockets; want the listener and the connection", model.name);
        drop(live);
        server.finish();
    }
}

/// Every sendto/sendmsg the server and the client make carries MSG_NOSIGNAL (seen with strace).
#[test]
fn every_send_has_msg_nosignal() {
    if !have("strace") {
        crate::common::skip("needs strace");
        return;
    }
    for model in models() {
        if model.name == "uring" {
            uring_sends_have_msg_nosignal(&model);
            continue;
        }
        let log = std::env::temp_dir().join(format!("socklab-nosignal-{}-{}.log", model.name, std::process::id()));
        let log_s = log.display().to_string();
        // -ff: one file per thread, so no call is split into "<unfinished ...>" and "<... resumed>"
        // halves (the second of which has no flags) when two threads make calls at once.
        let wrapper = ["strace", "-ff", "-qq", "-e", "trace=sendto,sendmsg,sendmmsg", "-o", log_s.as_str()];
        let server = Server::start_wrapped(&model, &wrapper, &["--quiet"]);
        for len in [1, 5000, 100_000] {
            server.assert_echoes(&crate::common::pattern(len, len as u64));
        }
        let client_log = format!("{log_s}.client");
        let out = Command::new("strace")
            .args(["-ff", "-qq", "-e", "trace=sendto,sendmsg,sendmmsg", "-o", &client_log])
            .arg(env!("CARGO_BIN_EXE_socklab"))
            .args(["client", "-q", "--host", "127.0.0.1", "--port", &server.addr.port().to_string()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        server.finish();
        for file in [log_s.clone(), client_log] {
            let text = read_per_thread_logs(&file);
            let sends: Vec<&str> = text.lines().filter(|l| l.contains("send")).collect();
            assert!(!sends.is_empty(), "[{}] no sends in {file}", model.name);
            for line in sends {
                assert!(line.contains("MSG_NOSIGNAL"), "[{}] a send without MSG_NOSIGNAL: {line}", model.name);
            }
        }
    }
}

/// The logs `strace -ff -o PREFIX` wrote (`PREFIX.TID`, one per thread), joined, then removed.
fn read_per_thread_logs(prefix: &str) -> String {
    let path = std::path::Path::new(prefix);
    let (dir, name) = (path.parent().unwrap(), path.file_name().unwrap().to_string_lossy().into_owned());
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(tid) = file.strip_prefix(&format!("{name}.")) else { continue };
        if tid.chars().all(|c| c.is_ascii_digit()) {
            text.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
            let _ = std::fs::remove_file(entry.path());
        }
    }
    text
}

/// The io_uring server makes no sendto at all: its sends are SQEs the kernel runs, which strace
/// cannot see. Its narration shows each one (`#   submit  IORING_OP_SEND ... msg_flags=...`).
fn uring_sends_have_msg_nosignal(model: &harness::Model) {
    let server = Server::start(model, &["--quiet", "--trace", "--threads", "1"]);
    for len in [1, 5000, 100_000] {
        server.assert_echoes(&crate::common::pattern(len, len as u64));
    }
    let sends = server.err.matching("IORING_OP_SEND fd=");
    assert!(!sends.is_empty(), "[uring] no IORING_OP_SEND in the narration: {}", server.err.dump());
    for line in sends {
        assert!(line.contains("msg_flags=MSG_NOSIGNAL"), "[uring] a send without MSG_NOSIGNAL: {line}");
    }
    server.finish();
}

/// The default host is loopback; naming a non-loopback address prints a one-line notice.
#[test]
fn loopback_by_default_and_a_notice_otherwise() {
    // Default: no --host at all.
    let ready = crate::common::ReadyFile::new();
    let mut child = socklab()
        .args(["server", "--port", "0"])
        .args(ready.args())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let addr = ready.wait(&mut child);
    assert_eq!(addr.ip(), std::net::Ipv4Addr::LOCALHOST, "default bind is not loopback: {addr}");
    crate::common::signal(child.id(), "TERM");
    let status = harness::wait_bounded(&mut child, Duration::from_secs(10)).expect("exit");
    assert!(status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.is_empty(), "a loopback bind needs no notice: {err}");

    for model in models() {
        let server = Server::start(&model, &["--quiet"]);
        let quiet_loopback = server.err.dump();
        server.finish();
        assert!(quiet_loopback.is_empty(), "[{}] {quiet_loopback}", model.name);
        // 0.0.0.0: every interface. The notice says so, on one line.
        let exe = env!("CARGO_BIN_EXE_socklab");
        let mut cmd = Command::new(exe);
        let ready = crate::common::ReadyFile::new();
        cmd.args(["server", "--host", "0.0.0.0", "--port", "0"]).args(ready.args());
        cmd.args(model.args());
        let mut child = cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().unwrap();
        ready.wait(&mut child);
        crate::common::signal(child.id(), "TERM");
        assert!(harness::wait_bounded(&mut child, Duration::from_secs(10)).expect("exit").success());
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert_eq!(err.lines().count(), 1, "[{}] {err:?}", model.name);
        assert!(err.contains("0.0.0.0") && err.contains("other machines"), "[{}] {err}", model.name);
    }
}

/// valgrind finds no memory errors (and no leaks) in one client session against the iterative
/// server, both run under it (a dynamic build: valgrind cannot follow malloc in a static one).
#[test]
fn valgrind_client_and_iterative_server_are_clean() {
    if !have("valgrind") {
        crate::common::skip("needs valgrind");
        return;
    }
    let Some(model) = models().into_iter().find(|m| m.name == "iterative") else {
        panic!("no iterative model in {:?}", models());
    };
    let exe = crate::common::dynamic_socklab();
    assert!(crate::common::is_dynamic(&exe), "{} is not dynamically linked", exe.display());
    let vg = ["valgrind", "--error-exitcode=1", "-q", "--leak-check=full"];
    let server = Server::start_exe(&exe, &model, &vg, &["--quiet"]);
    let out = Command::new(vg[0])
        .args(&vg[1..])
        .arg(&exe)
        .args(["client", "-q", "--host", "127.0.0.1", "--port", &server.addr.port().to_string(), "--message", "Hello"])
        .output()
        .unwrap();
    assert!(out.status.success(), "valgrind on the client: {}", String::from_utf8_lossy(&out.stderr));
    server.assert_echoes(&crate::common::pattern(100_000, 9));
    let (status, _, server) = server.stop_with("TERM", Duration::from_secs(20));
    assert!(status.success(), "valgrind on the server: {status:?}\n{}", server.err.dump());
}

/// Every other model under `valgrind --trace-children=yes`: every process (the server, and for fork
/// each child that served a client) ends with no memory error and no leak. A fork
/// child inherits copies of the blocks the parent's other threads own (the signal, log and grace
/// threads); fork copies only the calling thread, so in the child those blocks belong to no thread
/// and valgrind calls them lost. `scripts/valgrind-fork-children.supp` names exactly those (see
/// its comments); this test checks the server process itself never needs it.
#[test]
fn valgrind_every_model_is_clean() {
    if !have("valgrind") {
        crate::common::skip("needs valgrind");
        return;
    }
    let exe = crate::common::dynamic_socklab();
    let supp = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/valgrind-fork-children.supp");
    // iterative: the test above. uring: valgrind (3.19 here) runs one thread at a time and keeps
    // its lock across a blocking io_uring_enter, so the signal thread never runs and SIGTERM never
    // becomes a stop (seen in /proc: the main thread in io_uring_enter, the signal thread waiting
    // on valgrind's lock pipe). Without valgrind it stops (the other reliability tests).
    for model in models().into_iter().filter(|m| m.name != "iterative" && m.name != "uring") {
        let dir = std::env::temp_dir().join(format!("socklab-vg-{}-{}", std::process::id(), model.name));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let log = format!("--log-file={}/%p.log", dir.display());
        let supp_arg = format!("--suppressions={supp}");
        // -v: each log then ends with the suppressions used, so the server's own can be checked.
        let vg =
            ["valgrind", "--trace-children=yes", "--leak-check=full", "--error-exitcode=99", "-v", &log, &supp_arg];
        // Starting runs a warm-up session; one more here. Each is a fork child that exits.
        let server = Server::start_exe(&exe, &model, &vg, &["--quiet"]);
        let server_pid = server.child.id();
        server.assert_echoes(b"Hello");
        let (status, _, server) = server.stop_with("TERM", Duration::from_secs(60));
        let mut logs: Vec<(u32, String)> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| {
                let pid = p.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse().ok()).unwrap();
                (pid, std::fs::read_to_string(&p).unwrap())
            })
            .collect();
        logs.sort();
        let server_log = logs.iter().find(|l| l.0 == server_pid).map_or("(no log)", |l| l.1.as_str());
        assert!(
            status.success(),
            "[{}] valgrind on the server: {status:?}\n{server_log}\n{}",
            model.name,
            server.err.dump()
        );
        let want = if model.name == "fork" { 3 } else { 1 }; // the server (+ two children)
        assert_eq!(
            logs.len(),
            want,
            "[{}] valgrind logs: {:?}",
            model.name,
            logs.iter().map(|l| l.0).collect::<Vec<_>>()
        );
        for (pid, text) in &logs {
            let summary = text.lines().find(|l| l.contains("ERROR SUMMARY:")).unwrap_or("no ERROR SUMMARY");
            assert!(summary.contains("ERROR SUMMARY: 0 errors"), "[{}] process {pid}: {summary}\n{text}", model.name);
            if *pid == server_pid {
                let ours = |l: &&str| l.contains("used_suppression") && l.contains("valgrind-fork-children.supp");
                assert!(!text.lines().any(|l| ours(&l)), "[{}] the server needed a suppression:\n{text}", model.name);
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
