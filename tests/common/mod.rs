//! Shared helpers for the integration tests: run the real `socklab` binary, find the port a server
//! chose (every test binds port 0 and reads it from `--ready-file`, the machine channel; the human
//! "listening" line is only checked by the tests of the human output), and do echo sessions with
//! std's own sockets as an independent peer.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The socklab binary cargo built for these tests.
pub fn socklab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_socklab"))
}

/// Loopback hosts to run each case on (IPv6 only when the machine has ::1).
pub fn hosts() -> Vec<&'static str> {
    let mut hosts = vec!["127.0.0.1"];
    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        hosts.push("::1");
    }
    hosts
}

/// How long a server may take to start listening before a test gives up (generous: CI machines
/// are busy; a healthy server takes milliseconds).
pub const READY_LIMIT: Duration = Duration::from_secs(30);

/// A path for `socklab server --ready-file`, in a directory of its own (removed on drop).
pub struct ReadyFile {
    dir: PathBuf,
    pub path: PathBuf,
}

impl ReadyFile {
    pub fn new() -> ReadyFile {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("socklab-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let path = dir.join("ready");
        ReadyFile { dir, path }
    }

    /// `["--ready-file", PATH]`, to add to the server's arguments.
    pub fn args(&self) -> [&std::ffi::OsStr; 2] {
        ["--ready-file".as_ref(), self.path.as_os_str()]
    }

    /// Waits until the server wrote its address, at most [`READY_LIMIT`]; panics with a clear
    /// message if `child` (the server, or a wrapper such as strace) exits first or time runs out.
    pub fn wait(self, child: &mut Child) -> SocketAddr {
        let text = self.text(child);
        text.trim_end().parse().unwrap_or_else(|e| panic!("--ready-file holds {text:?}: {e}"))
    }

    /// Like [`ReadyFile::wait`], but returns the file's text as written.
    pub fn text(&self, child: &mut Child) -> String {
        let until = Instant::now() + READY_LIMIT;
        loop {
            // socklab renames the file into place whole: whatever is read is the complete line.
            if let Ok(text) = std::fs::read_to_string(&self.path) {
                return text;
            }
            if let Some(status) = child.try_wait().expect("try_wait") {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("the server exited ({status}) before it was listening; stderr: {err}");
            }
            assert!(Instant::now() < until, "the server was not listening after {READY_LIMIT:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for ReadyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A `socklab server` child process. Killed (SIGKILL) on drop if still running.
pub struct ServerProcess {
    pub child: Child,
    pub addr: SocketAddr,
    pub stdout: BufReader<ChildStdout>,
}

impl ServerProcess {
    /// Starts `socklab server --host HOST --port 0 EXTRA...` and waits until it is listening.
    pub fn start(host: &str, extra: &[&str]) -> ServerProcess {
        Self::start_with(socklab(), host, extra)
    }

    /// Same, from a prepared command (e.g. one wrapped in strace).
    pub fn start_with(mut cmd: Command, host: &str, extra: &[&str]) -> ServerProcess {
        let ready = ReadyFile::new();
        cmd.args(["server", "--host", host, "--port", "0"]).args(ready.args()).args(extra);
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let addr = ready.wait(&mut child);
        ServerProcess { child, addr, stdout }
    }

    /// The next line the server printed (the first is its "listening" line).
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read a line");
        line
    }

    /// Sends SIGTERM and waits; returns the exit status and the rest of stdout and stderr.
    pub fn terminate(mut self) -> (std::process::ExitStatus, String, String) {
        signal(self.child.id(), libc_sigterm());
        let mut out = String::new();
        let _ = self.stdout.read_to_string(&mut out);
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let status = self.child.wait().expect("wait");
        (status, out, err)
    }
}

/// A child process killed and reaped when it goes out of scope, so a test that fails half-way
/// leaves no server running behind it. It derefs to the `Child` for `id`, `wait` and the rest.
pub struct Killed(pub Child);

impl std::ops::Deref for Killed {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Killed {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn libc_sigterm() -> &'static str {
    "TERM"
}

/// Sends a signal by name with kill(1): tests stay free of unsafe and of extra crates.
pub fn signal(pid: u32, name: &str) {
    let ok = Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status().expect("kill").success();
    assert!(ok, "kill -{name} {pid} failed");
}

/// One echo session with std's TcpStream as the independent peer: send, read back, compare.
pub fn echo_with_std(addr: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let writer = {
        let mut w = s.try_clone().unwrap();
        let data = payload.to_vec();
        std::thread::spawn(move || {
            w.write_all(&data).unwrap();
            w.shutdown(std::net::Shutdown::Write).unwrap();
        })
    };
    let mut got = Vec::new();
    s.read_to_end(&mut got).expect("read echo");
    writer.join().unwrap();
    got
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Says that the running test skipped (all or some of its checks) and why, where a default
/// `cargo test` shows it: libtest captures `eprintln!` and prints it only for a failed test, so a
/// green run would hide that its strace checks never ran. A write to the stderr handle itself is
/// not captured. The line reads `SKIPPED binary::test: why`; name the missing tool in `why`.
pub fn skip(why: &str) {
    let _ = std::io::stderr().lock().write_all(skip_line(why).as_bytes());
}

/// The line [`skip`] writes. The test's name is its thread's (libtest names each test's thread
/// after it), the binary's from its file name without cargo's hash.
pub fn skip_line(why: &str) -> String {
    let exe = std::env::args().next().unwrap_or_default();
    let stem = std::path::Path::new(&exe).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let binary = stem.rsplit_once('-').map_or(stem.as_str(), |(name, _hash)| name).to_string();
    let thread = std::thread::current();
    let test = thread.name().filter(|n| *n != "main").unwrap_or("(a test on the main thread)");
    format!("SKIPPED {binary}::{test}: {why}\n")
}

/// Whether a program is on PATH.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// strace 6.1 prints an `SO_RCVTIMEO_OLD` / `SO_SNDTIMEO_OLD` value as its 16 raw bytes
/// (`"\n\0\0\0..."`), newer versions (and socklab's narration) as `{tv_sec=10, tv_usec=0}`.
/// Rewrites the first form into the second, decoding the bytes (x86-64 `struct timeval`: two
/// little-endian i64), so the values are still compared.
pub fn decode_timeo(line: &str) -> String {
    let Some(at) = line.find("TIMEO_OLD, \"") else { return line.to_string() };
    let start = at + "TIMEO_OLD, ".len();
    let mut bytes = Vec::new();
    let mut chars = line[start + 1..].char_indices().peekable();
    let mut end = None;
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                end = Some(start + 1 + i + 1);
                break;
            }
            '\\' => match chars.next() {
                Some((_, 'n')) => bytes.push(b'\n'),
                Some((_, 't')) => bytes.push(b'\t'),
                Some((_, 'r')) => bytes.push(b'\r'),
                Some((_, 'v')) => bytes.push(0x0b),
                Some((_, 'f')) => bytes.push(0x0c),
                Some((_, d)) if d.is_digit(8) => {
                    let mut v = d.to_digit(8).unwrap();
                    for _ in 0..2 {
                        match chars.peek() {
                            Some((_, d)) if d.is_digit(8) => {
                                v = v * 8 + d.to_digit(8).unwrap();
                                chars.next();
                            }
                            _ => break,
                        }
                    }
                    bytes.push(v as u8);
                }
                Some((_, other)) => bytes.push(other as u8),
                None => break,
            },
            c => bytes.push(c as u8),
        }
    }
    let (Some(end), true) = (end, bytes.len() == 16) else { return line.to_string() };
    let word = |i: usize| i64::from_le_bytes(bytes[i..i + 8].try_into().unwrap());
    format!("{}{{tv_sec={}, tv_usec={}}}{}", &line[..start], word(0), word(8), &line[end..])
}

/// An untraced `socklab server --quiet` on 127.0.0.1 and a kernel-chosen port, for a client test
/// to talk to: the child (stop it with SIGINT and wait) and the address from its ready file.
pub fn quiet_server() -> (Killed, SocketAddr) {
    let ready = ReadyFile::new();
    let mut server = socklab()
        .args(["server", "--host", "127.0.0.1", "--port", "0", "--quiet"])
        .args(ready.args())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let addr = ready.wait(&mut server);
    (Killed(server), addr)
}

/// `socklab ARGS` with its stderr (the narration of `--trace`, `--explain`) written to `log`,
/// stdin and stdout closed: the child and the address from its ready file.
pub fn logged_server(args: &[&str], log: &std::path::Path) -> (Killed, SocketAddr) {
    let ready = ReadyFile::new();
    let mut server = socklab()
        .args(args)
        .args(ready.args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let addr = ready.wait(&mut server);
    (Killed(server), addr)
}

/// A socklab binary linked dynamically, for running under valgrind. The default build links
/// statically on glibc (`.cargo/config.toml`), and valgrind cannot follow malloc in a static
/// binary (it sees no allocation at all, and reports false errors). The tests are compiled with
/// the same flags as the binary, so `crt-static` here says which kind cargo built. When it is
/// static, this builds a dynamic one once (the debug profile, into a target directory of its own
/// so the tests' binary is not replaced; an empty RUSTFLAGS overrides the config's rustflags) and
/// returns its path; cargo's own lock makes parallel callers wait for one build.
pub fn dynamic_socklab() -> PathBuf {
    if !cfg!(target_feature = "crt-static") {
        return PathBuf::from(env!("CARGO_BIN_EXE_socklab"));
    }
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dynamic");
            let out = Command::new(env!("CARGO"))
                .args(["build", "--bin", "socklab", "--message-format=json-render-diagnostics", "--target-dir"])
                .arg(&dir)
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .env("RUSTFLAGS", "")
                .env_remove("CARGO_ENCODED_RUSTFLAGS")
                .stdin(Stdio::null())
                .output()
                .expect("run cargo build for a dynamic socklab");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "cargo build of a dynamic socklab failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            // The last compiler-artifact line with an executable is the socklab binary.
            let key = "\"executable\":\"";
            let exe = stdout
                .lines()
                .filter_map(|l| l.split_once(key).and_then(|(_, rest)| rest.split_once('"')).map(|(p, _)| p))
                .next_back()
                .unwrap_or_else(|| panic!("no executable in cargo's output: {stdout}"));
            PathBuf::from(exe)
        })
        .clone()
}

/// Whether `bin` has a dynamic loader (an ELF `PT_INTERP` header): false for a static(-pie)
/// binary. Reads the 64-bit little-endian program headers only; anything else counts as dynamic.
pub fn is_dynamic(bin: &std::path::Path) -> bool {
    let Ok(elf) = std::fs::read(bin) else { return true };
    let u = |at: usize, n: usize| elf.get(at..at + n).map(|b| b.iter().rev().fold(0u64, |v, &x| v << 8 | x as u64));
    if elf.get(..6) != Some(&[0x7f, b'E', b'L', b'F', 2, 1][..]) {
        return true;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u(0x20, 8), u(0x36, 2), u(0x38, 2)) else { return true };
    (0..phnum).any(|i| u((phoff + i * phentsize) as usize, 4) == Some(3)) // PT_INTERP
}

/// Starts `tcpdump -i lo -nn` for one TCP port (plus `extra` options) and returns once it says it
/// is listening: from then on it sees every frame. --immediate-mode: without it libpcap hands over
/// its ring's frames in blocks, and a quiet interface can hold a session's last segments back
/// indefinitely. The port filter keeps other traffic on lo (other tests) out of its buffer.
#[allow(dead_code)]
pub fn tcpdump(port: u16, extra: &[&str]) -> std::process::Child {
    let filter = format!("tcp port {port}");
    let mut dump = Command::new("tcpdump")
        .args(["-i", "lo", "-nn", "-l", "-U", "--immediate-mode"])
        .args(extra)
        .arg(&filter)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tcpdump");
    let mut err = BufReader::new(dump.stderr.take().unwrap());
    let mut line = String::new();
    let started = std::time::Instant::now();
    while !line.contains("listening on") && started.elapsed() < std::time::Duration::from_secs(30) {
        line.clear();
        if err.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
    }
    assert!(line.contains("listening on"), "tcpdump did not start: {line}");
    // Keep reading its stderr so it can never block on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    dump
}
