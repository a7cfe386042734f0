//! `--spawn`: the server under test as a child process of `check`, started on a free port, awaited
//! by connecting until it answers, watched through /proc, and stopped (SIGTERM to its process
//! group, SIGKILL after a grace period) and reaped.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use std::{io, thread};

use crate::process::{self, SpawnCounted};
use crate::tcp::TcpListener;

use super::flow::{Conn, Peer};

/// The most stderr (and stdout) kept for the report: the end of it.
const TAIL: usize = 16 * 1024;

/// What a spawned server wrote: the last [`TAIL`] bytes and how many in all.
#[derive(Debug, Default)]
pub struct Tail {
    /// The last bytes.
    pub bytes: Vec<u8>,
    /// Everything ever written.
    pub total: u64,
}

impl Tail {
    fn push(&mut self, data: &[u8]) {
        self.total += data.len() as u64;
        self.bytes.extend_from_slice(data);
        if self.bytes.len() > TAIL {
            let cut = self.bytes.len() - TAIL;
            self.bytes.drain(..cut);
        }
    }
}

/// How the command line is started.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The command with `{port}` in it.
    pub command: String,
    /// How long to wait for it to accept a connection.
    pub ready_timeout: Duration,
    /// `RLIMIT_NOFILE` for the server (through prlimit(1)), for the EMFILE case.
    pub nofile: Option<u64>,
    /// Run it under `strace -f -o FILE` (the file to write).
    pub strace: Option<PathBuf>,
}

/// A running server.
#[derive(Debug)]
pub struct Spawned {
    child: Child,
    /// Where it answered.
    pub addr: SocketAddr,
    /// The command as run (port substituted).
    pub command: String,
    /// Its stderr.
    pub stderr: Arc<Mutex<Tail>>,
    /// Its stdout.
    pub stdout: Arc<Mutex<Tail>>,
    readers: Vec<thread::JoinHandle<()>>,
    reaped: Option<ExitStatus>,
}

/// How a stop went.
#[derive(Debug, Clone)]
pub struct Stopped {
    /// The exit status, as a shell would say it.
    pub status: String,
    /// It ended by itself before we signalled it.
    pub already: bool,
    /// From SIGTERM to its end.
    pub after: Duration,
    /// SIGTERM was not enough: SIGKILL ended it.
    pub killed: bool,
}

/// A free TCP port on 127.0.0.1: bound to port 0, read back, closed (a small race with other
/// programs picking ports, as every "free port" helper has).
pub fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind(&SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let port = listener.local_addr()?.port();
    listener.close()?;
    Ok(port)
}

/// Splits a command line as a shell would for the simple cases (words, '...' and "..." quotes,
/// backslash escapes); `None` when it needs a shell (pipes, redirections, variables, `;`, `&&`...).
pub fn split_words(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => word.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => word.push(chars.next()?),
                        '$' | '`' => return None,
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.push(chars.next()?);
            }
            ';' | '&' | '|' | '<' | '>' | '$' | '`' | '(' | ')' | '*' | '?' | '[' | '~' | '#' | '{' | '}' => {
                return None;
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    (!words.is_empty()).then_some(words)
}

/// The command line with `{port}` replaced.
pub fn substitute(command: &str, port: u16) -> String {
    command.replace("{port}", &port.to_string())
}

impl Spawned {
    /// Starts `launch` on `port` and waits until a connection to 127.0.0.1 or [::1] on it
    /// succeeds. If the process ends first, or nothing answers in time, the error says so and
    /// quotes its stderr.
    pub fn start(launch: &Launch, port: u16) -> io::Result<Spawned> {
        let command = substitute(&launch.command, port);
        let mut argv: Vec<String> = Vec::new();
        if let Some(file) = &launch.strace {
            argv.extend(["strace", "-f", "-ttt", "-qq", "-s", "24", "-o"].map(String::from));
            argv.push(file.display().to_string());
        }
        if let Some(n) = launch.nofile {
            argv.push("prlimit".into());
            argv.push(format!("--nofile={n}:{n}"));
            argv.push("--".into());
        }
        match split_words(&command) {
            Some(words) => argv.extend(words),
            None => argv.extend(["sh".to_string(), "-c".to_string(), command.clone()]),
        }
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        // A process group of its own: the stop reaches whatever a shell line started.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child =
            cmd.spawn().map_err(|e| io::Error::new(e.kind(), format!("cannot start '{}': {e}", argv[0])))?;
        let stderr = Arc::new(Mutex::new(Tail::default()));
        let stdout = Arc::new(Mutex::new(Tail::default()));
        let mut readers = Vec::new();
        if let Some(out) = child.stderr.take() {
            readers.push(drain(out, stderr.clone())?);
        }
        if let Some(out) = child.stdout.take() {
            readers.push(drain(out, stdout.clone())?);
        }
        let mut spawned = Spawned {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            command,
            stderr,
            stdout,
            readers,
            reaped: None,
        };
        let deadline = Instant::now() + launch.ready_timeout;
        let candidates =
            [SocketAddr::from(([127, 0, 0, 1], port)), SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port))];
        loop {
            for addr in candidates {
                let probe = Instant::now() + Duration::from_millis(500);
                if let Ok(conn) = Conn::connect(&Peer::Tcp(addr), probe) {
                    drop(conn);
                    spawned.addr = addr;
                    return Ok(spawned);
                }
            }
            if let Some(status) = spawned.exited() {
                return Err(io::Error::other(format!(
                    "the server ended ({status}) before it accepted a connection on port {port}{}",
                    spawned.stderr_quote()
                )));
            }
            if Instant::now() >= deadline {
                let _ = spawned.stop(Duration::from_secs(1));
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "nothing accepted a connection on 127.0.0.1:{port} or [::1]:{port} within {:.0} s of starting \
                         '{}' (does it listen on the port given as {{port}}?){}",
                        launch.ready_timeout.as_secs_f64(),
                        spawned.command,
                        spawned.stderr_quote()
                    ),
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process id of the command (or of the shell running it).
    pub fn pid(&self) -> process::Pid {
        self.child.id() as process::Pid
    }

    /// The server's own process: the spawned one, or, when that is a shell that started exactly
    /// one child, that child.
    pub fn server_pid(&self) -> process::Pid {
        let pid = self.pid();
        let comm = super::proc::comm(pid).unwrap_or_default();
        if matches!(comm.as_str(), "sh" | "dash" | "bash" | "strace" | "prlimit") {
            let kids = super::proc::children(pid);
            if let [only] = kids[..] {
                let inner = Spawned::deeper(only);
                return inner;
            }
        }
        pid
    }

    fn deeper(pid: process::Pid) -> process::Pid {
        let comm = super::proc::comm(pid).unwrap_or_default();
        if matches!(comm.as_str(), "sh" | "dash" | "bash" | "prlimit") {
            if let [only] = super::proc::children(pid)[..] {
                return only;
            }
        }
        pid
    }

    /// `Some(status)` once the process has ended (reaped here).
    pub fn exited(&mut self) -> Option<String> {
        if self.reaped.is_none() {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.reaped = Some(status);
            }
        }
        self.reaped.map(|s| status_text(&s))
    }

    /// The end of stderr, quoted for an error message (empty when it wrote nothing).
    pub fn stderr_quote(&self) -> String {
        let tail = self.stderr.lock().map(|t| String::from_utf8_lossy(&t.bytes).into_owned()).unwrap_or_default();
        let lines: Vec<&str> = tail.lines().collect();
        if lines.is_empty() {
            return String::new();
        }
        let last = &lines[lines.len().saturating_sub(8)..];
        format!("; its stderr ends:\n  {}", last.join("\n  "))
    }

    /// SIGTERM to the process group, without waiting: [`Spawned::finish_stop`] waits.
    pub fn terminate(&mut self) -> Instant {
        let _ = process::kill(-self.pid(), process::SIGTERM);
        Instant::now()
    }

    /// After [`Spawned::terminate`] at `since`: waits until `grace` after it, then SIGKILL; reaped.
    pub fn finish_stop(&mut self, since: Instant, grace: Duration) -> Stopped {
        let group = -self.pid();
        while self.exited().is_none() && since.elapsed() < grace {
            thread::sleep(Duration::from_millis(5));
        }
        let after = since.elapsed();
        let mut killed = false;
        if self.exited().is_none() {
            killed = true;
            let _ = process::kill(group, process::SIGKILL);
            let _ = self.child.kill();
            if let Ok(status) = self.child.wait() {
                self.reaped = Some(status);
            }
        } else {
            let _ = process::kill(group, process::SIGKILL);
        }
        self.join_readers();
        Stopped { status: self.exited().unwrap_or_else(|| "unknown".into()), already: false, after, killed }
    }

    /// SIGTERM to the process group, up to `grace` for it to end, then SIGKILL; reaped.
    pub fn stop(&mut self, grace: Duration) -> Stopped {
        if let Some(status) = self.exited() {
            self.join_readers();
            return Stopped { status, already: true, after: Duration::ZERO, killed: false };
        }
        let started = Instant::now();
        let group = -self.pid();
        let _ = process::kill(group, process::SIGTERM);
        while self.exited().is_none() && started.elapsed() < grace {
            thread::sleep(Duration::from_millis(5));
        }
        let after = started.elapsed();
        let mut killed = false;
        if self.exited().is_none() {
            killed = true;
            let _ = process::kill(group, process::SIGKILL);
            let _ = self.child.kill();
            if let Ok(status) = self.child.wait() {
                self.reaped = Some(status);
            }
        } else {
            // What the shell line started may outlive it: the rest of the group goes too.
            let _ = process::kill(group, process::SIGKILL);
        }
        self.join_readers();
        Stopped { status: self.exited().unwrap_or_else(|| "unknown".into()), already: false, after, killed }
    }

    fn join_readers(&mut self) {
        // The pipes close when every process holding them has ended; a grandchild that escaped the
        // group could hold them open, so the readers are waited for only briefly.
        let until = Instant::now() + Duration::from_secs(1);
        while self.readers.iter().any(|r| !r.is_finished()) && Instant::now() < until {
            thread::sleep(Duration::from_millis(5));
        }
        for reader in self.readers.drain(..) {
            if reader.is_finished() {
                let _ = reader.join();
            }
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if self.reaped.is_none() {
            self.stop(Duration::from_secs(2));
        }
    }
}

/// An exit status as a shell says it: `exit 0`, `killed by SIGPIPE`.
pub fn status_text(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(sig)) => format!(
            "killed by {}{}",
            crate::names::signal(sig),
            if status.core_dumped() { " (core dumped)" } else { "" }
        ),
        _ => status.to_string(),
    }
}

fn drain(mut from: impl Read + Send + 'static, into: Arc<Mutex<Tail>>) -> io::Result<thread::JoinHandle<()>> {
    thread::Builder::new().name("check-output".into()).spawn_counted(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut tail) = into.lock() {
                tail.push(&buf[..n]);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_lines_split_and_shell_lines_do_not() {
        assert_eq!(split_words("./a.out 5000"), Some(vec!["./a.out".into(), "5000".into()]));
        assert_eq!(
            split_words("python3 'my server.py' \"x y\" a\\ b"),
            Some(vec!["python3".into(), "my server.py".into(), "x y".into(), "a b".into()])
        );
        assert_eq!(split_words("cd x && ./a.out 1"), None);
        assert_eq!(split_words("./s $PORT"), None);
        assert_eq!(split_words("'unclosed"), None);
        assert_eq!(substitute("s --port {port} {port}", 7), "s --port 7 7");
    }
}
