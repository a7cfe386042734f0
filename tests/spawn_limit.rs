//! fork / thread spawn failing at the process limit (RLIMIT_NPROC): the server names the failed
//! call as strace does, keeps the accepted client instead of closing it, serves it once a process
//! or thread is free, and retries with a back-off instead of spinning.
//!
//! Root ignores RLIMIT_NPROC, so the server runs as `nobody` (setpriv); its limit is then set from
//! outside (prlimit --pid) to the tasks `nobody` already has plus two: two clients at a time.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{ReadyFile, have, pattern, signal};

const NOBODY: &str = "65534";

/// RLIMIT_NPROC counts every task of the user: the tests here run their servers as nobody one
/// at a time, or they would share the limit.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
const CLIENTS: usize = 6;
/// How long each client keeps its connection (and so its server process or thread) after its echo.
const HOLD: Duration = Duration::from_millis(700);
const PAYLOAD: usize = 64 * 1024;

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .is_ok_and(|s| s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0")))
}

/// The tasks (processes and threads) of real uid `nobody` now: what RLIMIT_NPROC counts.
fn nobody_tasks() -> usize {
    let mut tasks = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else { continue };
        let field = |name: &str| status.lines().find(|l| l.starts_with(name)).map(|l| l.split_whitespace().nth(1));
        if field("Uid:").flatten() == Some(NOBODY) {
            tasks += field("Threads:").flatten().and_then(|n| n.parse::<usize>().ok()).unwrap_or(1);
        }
    }
    tasks
}

/// One client: sends its own pattern, reads the echo back (bounded by a read timeout), holds the
/// connection for `HOLD`, closes. Returns whether the echo was byte-exact, or the error.
fn client(addr: SocketAddr, seed: u64) -> Result<(), String> {
    let payload = pattern(PAYLOAD, seed);
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(&payload).map_err(|e| format!("send: {e}"))?;
    let mut echo = vec![0u8; PAYLOAD];
    s.read_exact(&mut echo).map_err(|e| format!("recv: {e}"))?;
    if echo != payload {
        return Err("the echo was not byte-exact".into());
    }
    std::thread::sleep(HOLD);
    s.shutdown(Shutdown::Write).map_err(|e| format!("shutdown: {e}"))?;
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).map_err(|e| format!("recv after close: {e}"))?;
    if rest.is_empty() { Ok(()) } else { Err(format!("{} extra bytes", rest.len())) }
}

/// `socklab server --model MODEL EXTRA...` as nobody, with RLIMIT_NPROC `nproc` if given; its
/// address.
fn start(model: &str, nproc: Option<usize>, extra: &[&str]) -> (std::process::Child, SocketAddr) {
    let ready = ReadyFile::new();
    // The server, running as nobody, writes its ready file into this directory.
    let dir = ready.path.parent().unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut cmd = Command::new("prlimit");
    if let Some(n) = nproc {
        cmd.arg(format!("--nproc={n}:{n}"));
    }
    let mut child = cmd
        .args(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_socklab"))
        .args(["server", "--model", model, "--host", "127.0.0.1", "--port", "0"])
        .args(ready.args())
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn prlimit");
    let addr = ready.wait(&mut child);
    (child, addr)
}

/// The tasks nobody has while a server of `model` runs: started as nobody without a limit, counted,
/// and ended. The limit is set before exec (root may not lower another process's limit here), so
/// it is computed from this first server; the next starts at the same count.
fn tasks_with(model: &str) -> usize {
    let (mut probe, _) = start(model, None, &[]);
    let tasks = nobody_tasks();
    probe.kill().unwrap();
    probe.wait().unwrap();
    tasks
}

fn run_model(model: &str, call: &str) {
    // Two clients at a time.
    let limit = tasks_with(model) + 2;
    let (mut child, addr) = start(model, Some(limit), &[]);
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS).map(|i| std::thread::spawn(move || client(addr, 7 + i as u64))).collect();
    let results: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let elapsed = started.elapsed();

    signal(child.id(), "TERM");
    let mut out = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_to_string(&mut out).unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let status = child.wait().unwrap();

    // (b) every client was served, byte-exact, none reset or closed early.
    for (i, result) in results.iter().enumerate() {
        assert!(result.is_ok(), "{model}: client {i}: {result:?}\nserver log:\n{out}\nstderr: {err}");
    }
    assert!(status.success(), "{model}: server exit {status}; stderr: {err}");
    assert!(out.lines().any(|l| l.starts_with("Server stopped")), "{model}: {out}");

    // (a) the limit was reached, and the log names the failed call in strace's spelling.
    let deferred: Vec<&str> = out.lines().filter(|l| l.contains("cannot serve")).collect();
    assert!(!deferred.is_empty(), "{model}: the process limit {limit} was never reached:\n{out}");
    for line in &deferred {
        assert!(
            line.contains(&format!(": {call}: EAGAIN (Resource temporarily unavailable)"))
                && line.contains("RLIMIT_NPROC"),
            "{model}: {line}"
        );
    }
    assert!(!out.contains("ended:"), "{model}: a connection ended with an error:\n{out}");

    // (c) no spin: one line per retry, and retries back off (20 ms doubling to 1 s) or follow a
    // client's end. Per waiting client that is at most 6 lines to reach 1 s, one a second after
    // that, and one per client that ended; a spinning loop would log thousands.
    let bound = CLIENTS * (6 + elapsed.as_secs() as usize + 1) + CLIENTS;
    assert!(deferred.len() <= bound, "{model}: {} retry lines in {elapsed:?} (bound {bound}):\n{out}", deferred.len());
    eprintln!("{model}: {} clients served in {elapsed:?}; {} retry lines", CLIENTS, deferred.len());
}

#[test]
fn fork_and_thread_keep_clients_queued_at_the_process_limit() {
    if !is_root() || !have("setpriv") || !have("prlimit") {
        eprintln!("skipped: needs root, setpriv and prlimit to run the server as nobody under RLIMIT_NPROC");
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    run_model("fork", "clone");
    run_model("thread", "clone3");
}

/// A stop while a client waits for its process: the grace period is for it too, and at the cut it
/// is closed and counted as cut (with the one being served): the server ends, the client is not
/// left hanging.
fn stop_while_waiting(model: &str) {
    let limit = tasks_with(model) + 1; // one client at a time
    let (mut child, addr) = start(model, Some(limit), &["--grace", "1s"]);
    let mut served = TcpStream::connect(addr).unwrap();
    served.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    served.write_all(b"Hello").unwrap();
    let mut echo = [0u8; 5];
    served.read_exact(&mut echo).unwrap(); // it has its process now
    let mut waiting = TcpStream::connect(addr).unwrap();
    waiting.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    waiting.write_all(b"Hello").unwrap();
    // The log is read on a thread of its own, so every wait below is bounded.
    let (tx, lines) = std::sync::mpsc::channel();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let reader = std::thread::spawn(move || stdout.lines().map_while(Result::ok).for_each(|l| drop(tx.send(l))));
    let until = Instant::now() + Duration::from_secs(30);
    let mut out = String::new();
    while !out.contains("cannot serve") {
        let left = until.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => out += &(line + "\n"),
            Err(_) => {
                let _ = child.kill();
                panic!("{model}: no retry line within 30 s; the log:\n{out}");
            }
        }
    }
    signal(child.id(), "TERM");
    let until = Instant::now() + Duration::from_secs(30);
    while let Ok(line) = lines.recv_timeout(until.saturating_duration_since(Instant::now())) {
        out += &(line + "\n");
    }
    if child.try_wait().unwrap().is_none() && Instant::now() >= until {
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    reader.join().unwrap();
    assert!(status.success(), "{model}: {status}\n{out}");
    assert!(out.contains("Server stopping: finished 0, cut 2"), "{model}:\n{out}");
    // Both clients see their connection end (EOF or reset), not a hang.
    for (name, mut s) in [("served", served), ("waiting", waiting)] {
        let mut rest = Vec::new();
        let ended = s.read_to_end(&mut rest);
        assert!(
            ended.is_ok() || ended.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
            "{model}: {name}: {ended:?}"
        );
    }
}

#[test]
fn a_client_waiting_for_its_process_is_cut_at_the_end_of_the_grace_period() {
    if !is_root() || !have("setpriv") || !have("prlimit") {
        eprintln!("skipped: needs root, setpriv and prlimit to run the server as nobody under RLIMIT_NPROC");
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    stop_while_waiting("fork");
    stop_while_waiting("thread");
}
