//! `--explain` sentences whose truth depends on the socket's state, each checked against the wire
//! (`tcpdump -i lo`) and against the peer's own kernel (what its next call returns):
//! - close with unread data sends a RST, and the sentence says so (FIONREAD saw the bytes);
//! - close with nothing unread sends a FIN, and the sentence says so (FIONREAD saw 0);
//! - shutdown(SHUT_RDWR) on a listener resets the connection still waiting in its accept queue.

mod common;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{ReadyFile, have, signal, socklab};

/// A narrated line `call` with result `ret` (strace pads the space between them).
fn has_call(text: &str, call: &str, ret: &str) -> bool {
    text.lines().any(|l| l.strip_prefix(call).is_some_and(|rest| rest.trim_start() == ret))
}

/// One segment tcpdump printed: (source port, destination port, flags such as `F.` or `R.`).
fn segments(text: &str) -> Vec<(u16, u16, String)> {
    text.lines()
        .filter_map(|line| {
            let (_, rest) = line.split_once(" IP ")?;
            let (src, rest) = rest.split_once(" > ")?;
            let (dst, rest) = rest.split_once(": Flags [")?;
            let (flags, _) = rest.split_once(']')?;
            let port = |a: &str| a.rsplit_once('.').and_then(|(_, p)| p.parse().ok());
            Some((port(src)?, port(dst)?, flags.to_string()))
        })
        .collect()
}

/// `tcpdump -i lo` for one port, started and listening.
struct Dump(Child);

impl Dump {
    fn start(port: u16) -> Dump {
        if !have("tcpdump") {
            let _ = Command::new("sh")
                .arg("-c")
                .arg("DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tcpdump >/dev/null 2>&1")
                .status();
        }
        Dump(common::tcpdump(port, &[]))
    }

    /// Waits until the segments seen satisfy `done` (at most 20 s: tcpdump prints each one as
    /// it sees it, with --immediate-mode), then stops tcpdump and returns them all.
    fn until(mut self, done: impl Fn(&[(u16, u16, String)]) -> bool) -> Vec<(u16, u16, String)> {
        let out = self.0.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut text = String::new();
        let started = Instant::now();
        while !done(&segments(&text)) && started.elapsed() < Duration::from_secs(20) {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
                text.push_str(&line);
                text.push('\n');
            }
        }
        signal(self.0.id(), "INT");
        let _ = self.0.wait();
        let _ = reader.join();
        text.extend(rx.try_iter().map(|l| l + "\n"));
        segments(&text)
    }
}

/// A peer that answers the client's message with more bytes than it sent, in one send: the
/// client reads 10 of its 26 bytes, sees too many, and closes with 16 unread.
#[test]
fn close_with_unread_data_sends_rst_and_says_so() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dump = Dump::start(port);
    let peer = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
        s.write_all(b"Hello, and 25 more bytes!!").unwrap();
        // The client's RST arrives: the next read fails with ECONNRESET (not end-of-file).
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).map(|_| rest)
    });
    let out = socklab().args(["client", "--port", &port.to_string(), "--explain"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the client accepted an echo longer than its message: {stderr}");
    assert!(has_call(&stderr, "ioctl(3, FIONREAD, [16])", "= 0"), "FIONREAD not asked before close: {stderr}");
    let close = stderr.lines().skip_while(|l| !l.starts_with("close(3)")).nth(1).unwrap_or_default();
    assert!(close.contains("16 bytes still unread") && close.contains("RST"), "close sentence: {close}");
    // The client counts only what it read past the message (5 of the 10 in its recv), not more.
    assert!(stderr.contains("5 extra bytes in the recv that went past its end"), "{stderr}");
    let peer = peer.join().unwrap();
    assert_eq!(peer.map_err(|e| e.kind()).err(), Some(ErrorKind::ConnectionReset), "the peer saw no reset");
    let seen = dump.until(|s| s.iter().any(|(src, _, f)| *src != port && f.contains('R')));
    assert!(seen.iter().any(|(src, _, f)| *src != port && f.contains('R')), "no RST from the client: {seen:?}");
    assert!(!seen.iter().any(|(src, _, f)| *src != port && f.contains('F')), "the client sent a FIN: {seen:?}");
}

/// A well-behaved echo: nothing is left unread, the client's close sends a FIN.
#[test]
fn close_with_nothing_unread_sends_fin_and_says_so() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dump = Dump::start(port);
    let peer = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
        s.write_all(&buf).unwrap();
        let mut rest = Vec::new();
        s.read_to_end(&mut rest)
    });
    let out = socklab().args(["client", "--port", &port.to_string(), "--explain"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "client failed: {stderr}");
    assert!(has_call(&stderr, "ioctl(3, FIONREAD, [0])", "= 0"), "FIONREAD not asked before close: {stderr}");
    let close = stderr.lines().skip_while(|l| !l.starts_with("close(3)")).nth(1).unwrap_or_default();
    assert!(close.contains("no unread bytes") && close.contains("FIN") && !close.contains("RST"), "{close}");
    assert_eq!(peer.join().unwrap().ok(), Some(0), "the peer did not read end-of-file");
    let seen = dump.until(|s| s.iter().any(|(src, _, f)| *src != port && f.contains('F')));
    assert!(seen.iter().any(|(src, _, f)| *src != port && f.contains('F')), "no FIN from the client: {seen:?}");
    assert!(!seen.iter().any(|(_, _, f)| f.contains('R')), "a RST was sent: {seen:?}");
}

/// The iterative server is busy with one client; a second one waits in the accept queue. Stopping
/// the server shuts the listener down: the waiting client gets a RST (its read fails with
/// ECONNRESET), and the shutdown's sentence says that is what happens.
#[test]
fn shutdown_of_a_listener_resets_the_queued_connection() {
    let ready = ReadyFile::new();
    let mut server = socklab()
        .args(["server", "--host", "127.0.0.1", "--port", "0", "--explain"])
        .args(ready.args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = ready.wait(&mut server);
    let dump = Dump::start(addr.port());
    // The first client is accepted and served (the server blocks in recv on it)...
    let mut first = TcpStream::connect(addr).unwrap();
    first.write_all(b"Hello").unwrap();
    let mut echo = [0u8; 5];
    first.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    first.read_exact(&mut echo).unwrap();
    // ...so the second one completes its handshake with the kernel and waits in the queue.
    let mut queued = TcpStream::connect(addr).unwrap();
    queued.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let queued_port = queued.local_addr().unwrap().port();
    signal(server.id(), "INT");
    let mut buf = [0u8; 8];
    let got = queued.read(&mut buf);
    assert_eq!(got.map_err(|e| e.kind()).err(), Some(ErrorKind::ConnectionReset), "the queued client saw no reset");
    drop(first);
    let status = server.wait().unwrap();
    let mut stderr = String::new();
    server.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(status.success(), "server: {status}: {stderr}");
    let sentence = stderr.lines().skip_while(|l| !l.contains("shutdown(3, SHUT_RDWR)")).nth(1).unwrap_or_default();
    assert!(sentence.contains("listener") && sentence.contains("RST"), "shutdown sentence: {sentence}");
    let seen =
        dump.until(|s| s.iter().any(|(src, dst, f)| *src == addr.port() && *dst == queued_port && f.contains('R')));
    assert!(
        seen.iter().any(|(src, dst, f)| *src == addr.port() && *dst == queued_port && f.contains('R')),
        "no RST to the queued client: {seen:?}"
    );
    assert!(
        !seen.iter().any(|(src, dst, f)| *src == addr.port() && *dst == queued_port && f.contains('F')),
        "the queued client got a FIN: {seen:?}"
    );
}

/// The fork model's parent closes its copy of each connection right after the fork: the child
/// still holds the socket, so nothing is sent (tcpdump: no RST, no FIN from the server until the
/// child's own close) and the child reads the very bytes the parent left unread. The sentence says
/// so, the child's close of its listener copy says the parent still listens, and the signalfd's
/// EAGAIN is explained as a signalfd's, not as a socket's queue.
#[test]
fn close_of_a_forked_descriptor_sends_nothing_and_says_so() {
    let log = std::env::temp_dir().join(format!("socklab-explain-fork-{}.log", std::process::id()));
    let args = ["server", "--model", "fork", "--host", "127.0.0.1", "--port", "0", "--explain"];
    let (mut server, addr) = common::logged_server(&args, &log);
    let dump = Dump::start(addr.port());
    let mut client = TcpStream::connect(addr).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    client.write_all(b"Hello").unwrap();
    let mut echo = [0u8; 5];
    client.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"Hello");
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    assert_eq!(client.read_to_end(&mut rest).unwrap(), 0, "the child's FIN ends the echo");
    let seen = dump.until(|s| s.iter().any(|(src, _, f)| *src == addr.port() && f.contains('F')));
    signal(server.id(), "INT");
    let _ = server.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    assert!(!seen.iter().any(|(_, _, f)| f.contains('R')), "a RST was sent: {seen:?}");

    // The sentence under each close, with the line before it.
    let lines: Vec<&str> = text.lines().collect();
    let after = |call: &str| -> Vec<String> {
        lines.windows(2).filter(|w| w[0].contains(call)).map(|w| w[1].trim().to_string()).collect()
    };
    let closes = after("close(");
    assert!(
        closes.iter().any(|s| s.contains("Another process holds this socket too") && s.contains("nothing is sent now")),
        "the parent's close of the forked connection:\n{text}"
    );
    assert!(closes.iter().any(|s| s.contains("Another process still holds this listener")), "{text}");
    // No close promised a RST: none was sent.
    assert!(!closes.iter().any(|s| s.contains("sends a RST")), "{text}");
    let again: Vec<String> = lines
        .windows(2)
        .filter(|w| w[0].contains("read(") && w[0].contains("EAGAIN"))
        .map(|w| w[1].trim().to_string())
        .collect();
    assert!(!again.is_empty(), "no signalfd read narrated:\n{text}");
    assert!(again.iter().all(|s| s.contains("no signal was pending") && !s.contains("receive queue")), "{again:?}");
}

/// A refused connect leaves a socket that never had a connection: its close sends nothing, and
/// the sentence promises no FIN and no TIME-WAIT.
#[test]
fn close_after_a_refused_connect_promises_nothing() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out =
        socklab().args(["client", "--host", "127.0.0.1", "--port", &port.to_string(), "--explain"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("ECONNREFUSED"), "{stderr}");
    let close = stderr.lines().skip_while(|l| !l.starts_with("close(3)")).nth(1).unwrap_or_default();
    assert!(close.contains("never had a connection") && close.contains("no TIME-WAIT"), "close sentence: {close}");
    assert!(!close.contains("sends a FIN") && !close.contains("will end in TIME-WAIT"), "{close}");
}
