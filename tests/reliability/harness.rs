//! The reliability suite's harness: which server models exist, a `socklab server` child whose
//! output is collected in the background, and what /proc says about it (fds, memory, children).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::common;

/// Server models to run every case against: every `socklab::echo::Model` (the list `--model`
/// accepts).
/// This is the one place the suite learns the models; a new one is picked up as soon as it is
/// added to `Model::ALL`.
pub fn models() -> Vec<Model> {
    socklab::echo::Model::ALL
        .iter()
        .map(|m| Model { name: m.name().to_string(), args: vec!["--model".into(), m.name().into()] })
        .collect()
}

/// One server model, and the arguments that select it.
#[derive(Debug, Clone)]
pub struct Model {
    pub name: String,
    args: Vec<String>,
}

impl Model {
    /// Serves one connection at a time (clients queue behind each other).
    pub fn one_at_a_time(&self) -> bool {
        self.name == "iterative"
    }

    /// The arguments that select this model.
    pub fn args(&self) -> Vec<String> {
        self.args.clone()
    }
}

/// Output lines of a child, collected by background threads (so the child never blocks on a full
/// pipe) and waited for with a condition variable.
#[derive(Default)]
pub struct Lines {
    lines: Mutex<Vec<String>>,
    changed: Condvar,
}

impl Lines {
    fn push(&self, line: String) {
        self.lines.lock().unwrap().push(line);
        self.changed.notify_all();
    }

    /// All lines so far that contain `needle`.
    pub fn matching(&self, needle: &str) -> Vec<String> {
        self.lines.lock().unwrap().iter().filter(|l| l.contains(needle)).cloned().collect()
    }

    /// Waits (at most `limit`) until `count` lines contain `needle`; returns them.
    pub fn wait_for(&self, needle: &str, count: usize, limit: Duration) -> Vec<String> {
        let deadline = Instant::now() + limit;
        let mut lines = self.lines.lock().unwrap();
        loop {
            let found: Vec<String> = lines.iter().filter(|l| l.contains(needle)).cloned().collect();
            let now = Instant::now();
            if found.len() >= count || now >= deadline {
                return found;
            }
            lines = self.changed.wait_timeout(lines, deadline - now).unwrap().0;
        }
    }

    /// Everything, for failure messages.
    pub fn dump(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }
}

fn collect(reader: impl Read + Send + 'static, lines: Arc<Lines>, skip_data: bool) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            // Data lines can be millions; keep what the assertions need.
            if skip_data && (line.starts_with("Server Recv Data") || line.starts_with("Server Send Data")) {
                continue;
            }
            lines.push(line);
        }
    })
}

/// A running `socklab server --host 127.0.0.1 --port 0 [--model M] EXTRA...`.
pub struct Server {
    pub model: Model,
    pub child: Child,
    pub addr: SocketAddr,
    pub out: Arc<Lines>,
    pub err: Arc<Lines>,
    /// Open descriptors right after start: what the count must come back to (case 15).
    pub idle_fds: usize,
    readers: Vec<thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(model: &Model, extra: &[&str]) -> Server {
        Server::start_wrapped(model, &[], extra)
    }

    /// Starts the server under `wrapper` (e.g. `["strace", "-f", ...]`), or directly if empty.
    pub fn start_wrapped(model: &Model, wrapper: &[&str], extra: &[&str]) -> Server {
        Server::start_exe(env!("CARGO_BIN_EXE_socklab").as_ref(), model, wrapper, extra)
    }

    /// Like [`Server::start_wrapped`], with another socklab binary (e.g. a dynamic one for valgrind).
    pub fn start_exe(exe: &std::path::Path, model: &Model, wrapper: &[&str], extra: &[&str]) -> Server {
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        let ready = common::ReadyFile::new();
        cmd.args(["server", "--host", "127.0.0.1", "--port", "0"]).args(ready.args()).args(model.args()).args(extra);
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
        let (out, err) = (Arc::new(Lines::default()), Arc::new(Lines::default()));
        let readers = vec![
            collect(child.stdout.take().unwrap(), out.clone(), true),
            collect(child.stderr.take().unwrap(), err.clone(), false),
        ];
        let addr = ready.wait(&mut child);
        let mut server = Server { model: model.clone(), child, addr, out, err, idle_fds: 0, readers };
        server.idle_fds = server.settled_fd_count();
        server
    }

    /// The pid of the server itself (not of a wrapper such as strace).
    pub fn pid(&self) -> u32 {
        // Under a wrapper the server is its child; without one it is the child we spawned.
        let me = self.child.id();
        let comm = std::fs::read_to_string(format!("/proc/{me}/comm")).unwrap_or_default();
        if comm.trim() == "socklab" {
            return me;
        }
        children(me).into_iter().find(|&p| proc_comm(p) == "socklab").unwrap_or(me)
    }

    /// The idle descriptor count, taken once the server is fully up: some models open descriptors
    /// of their own after the listening line (an epoll instance per thread, a wake-up socketpair),
    /// so one echo session runs first — read to EOF, so the server has closed its end — then
    /// /proc is read until the count holds still for three readings (bounded: 5 s).
    fn settled_fd_count(&self) -> usize {
        crate::common::echo_with_std(self.addr, b"warm-up");
        let deadline = Instant::now() + Duration::from_secs(5);
        let (mut last, mut same) = (usize::MAX, 0);
        while Instant::now() < deadline {
            let now = fd_count(self.pid());
            if now == last {
                same += 1;
                if same == 3 {
                    break;
                }
            } else {
                same = 0;
            }
            last = now;
            thread::sleep(Duration::from_millis(10)); // polling /proc: there is nothing to wait on
        }
        last
    }

    /// Open descriptors of the server process (/proc/PID/fd).
    pub fn fd_count(&self) -> usize {
        fd_count(self.pid())
    }

    /// Waits (at most 10 s) until the fd count is back to its idle value, and asserts it (case 15).
    pub fn assert_fds_back_to_idle(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut now = self.fd_count();
        while now != self.idle_fds && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10)); // polling /proc: there is nothing to wait on
            now = self.fd_count();
        }
        assert_eq!(now, self.idle_fds, "[{}] fds not back to idle; open: {:?}", self.model.name, fds(self.pid()));
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// An echo session with an independent peer (std's TcpStream), checked byte for byte.
    pub fn assert_echoes(&self, payload: &[u8]) {
        let got = common::echo_with_std(self.addr, payload);
        assert!(
            got == payload,
            "[{}] echo of {} bytes came back as {} bytes",
            self.model.name,
            payload.len(),
            got.len()
        );
    }

    /// Sends `signal` (by name, e.g. "TERM") and waits at most `limit` for the exit.
    pub fn stop_with(mut self, signal: &str, limit: Duration) -> (ExitStatus, Duration, Server) {
        let started = Instant::now();
        common::signal(self.pid(), signal);
        let status = wait_bounded(&mut self.child, limit)
            .unwrap_or_else(|| panic!("[{}] still running {limit:?} after SIG{signal}", self.model.name));
        let took = started.elapsed();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        (status, took, self)
    }

    /// The end of every case: fds back to idle (case 15), then SIGTERM ends it with exit 0.
    pub fn finish(self) {
        self.assert_fds_back_to_idle();
        let name = self.model.name.clone();
        let (status, _, server) = self.stop_with("TERM", Duration::from_secs(10));
        assert!(status.success(), "[{name}] exit {status:?}; stderr: {}", server.err.dump());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Under a wrapper (strace, valgrind) kill the server itself first: killing strace alone
        // would detach it and leave it running.
        let pid = self.pid();
        if pid != self.child.id() {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for `child` to exit, at most `limit`.
pub fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(2)); // no portable way to wait on a child with a timeout
    }
}

/// Descriptor numbers and targets of a process.
pub fn fds(pid: u32) -> Vec<(u32, String)> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return Vec::new() };
    let mut fds: Vec<(u32, String)> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().parse().ok()?;
            let target = std::fs::read_link(e.path()).map(|p| p.display().to_string()).unwrap_or_default();
            Some((n, target))
        })
        .collect();
    fds.sort();
    fds
}

pub fn fd_count(pid: u32) -> usize {
    fds(pid).len()
}

/// Direct children of `pid` (from /proc/*/stat's ppid field).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|&p| stat_field(p, 4) == Some(pid.to_string()))
        .collect()
}

/// Field `n` (1-based, as in proc(5)) of /proc/PID/stat.
pub fn stat_field(pid: u32, n: usize) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: split after it.
    let after = &stat[stat.rfind(')')? + 2..];
    after.split_whitespace().nth(n - 3).map(String::from)
}

pub fn proc_comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_string()
}

/// Resident memory (KiB) of `pid` and all its descendants: a fork model's memory is in its
/// children. Each process counts its proportional share (`Pss` in /proc/PID/smaps_rollup), so
/// pages a child shares with its parent after fork are not counted twice; VmRSS where there is
/// no smaps_rollup.
pub fn rss_kib_tree(pid: u32) -> u64 {
    let field = |file: &str, name: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok().and_then(|s| {
            s.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
    };
    let own = field("smaps_rollup", "Pss:").or_else(|| field("status", "VmRSS:")).unwrap_or(0);
    own + children(pid).into_iter().map(rss_kib_tree).sum::<u64>()
}

/// CPU time (user + system) used by `pid`, its reaped children (cutime, cstime) and its live
/// descendants, from /proc/PID/stat (clock ticks of 10 ms): a fork model works in its children.
pub fn cpu_time(pid: u32) -> Duration {
    let ticks = |n| stat_field(pid, n).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let own = Duration::from_millis((ticks(14) + ticks(15) + ticks(16) + ticks(17)) * 10);
    own + children(pid).into_iter().map(cpu_time).sum::<Duration>()
}

/// Connects with a generous read timeout, so no test can hang on a server that went quiet.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Sends `payload` and reads exactly its echo back.
pub fn echo_on(s: &mut TcpStream, payload: &[u8]) -> Vec<u8> {
    s.write_all(payload).expect("send");
    let mut got = vec![0u8; payload.len()];
    s.read_exact(&mut got).expect("read echo");
    got
}

/// Closes `s` with a RST (SO_LINGER 0 then close).
pub fn reset(s: TcpStream) {
    let s = socklab::TcpStream::from(s);
    s.set_linger(Some(Duration::ZERO)).expect("SO_LINGER 0");
    drop(s);
}

/// Whether the opt-in long runs are on.
pub fn long() -> bool {
    std::env::var_os("SOCKLAB_LONG").is_some_and(|v| v != "0")
}

/// Raises this process's soft RLIMIT_NOFILE to `want` (or the hard limit) with prlimit(1), so
/// the load test can hold a thousand sockets. Returns the soft limit now in force.
pub fn raise_nofile(want: u64) -> u64 {
    let read = || {
        std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with("Max open files"))?.to_string();
                let v: Vec<&str> = line.split_whitespace().collect();
                Some((v.get(3)?.parse::<u64>().ok()?, v.get(4)?.parse::<u64>().unwrap_or(u64::MAX)))
            })
            .unwrap_or((1024, 1024))
    };
    let (soft, hard) = read();
    if soft >= want || !Path::new("/usr/bin/prlimit").exists() && !common::have("prlimit") {
        return soft;
    }
    let new = want.min(hard);
    let _ = Command::new("prlimit")
        .args(["--pid", &std::process::id().to_string(), &format!("--nofile={new}:{hard}")])
        .status();
    read().0
}

/// The hard RLIMIT_NOFILE of `pid` (from /proc/PID/limits).
pub fn hard_nofile(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/limits"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Max open files"))?.split_whitespace().nth(4)?.parse().ok())
        .unwrap_or(1024)
}
