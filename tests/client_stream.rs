//! `socklab client --message -` used as nc is: stdin streamed while the echo streams back, in
//! bounded memory, `--raw` writing the echo's bytes to stdout unchanged; and what it says when the
//! peer misbehaves (a wrong byte, an early close, a reset, extra bytes, silence). Over a real
//! `socklab server`, the tutorial's Python server, and misbehaving peers made of std's sockets.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{ServerProcess, have, pattern, skip, socklab};

/// `socklab client --port PORT --message - ARGS...` with stdin, stdout and stderr piped.
fn client(addr: SocketAddr, args: &[&str]) -> Child {
    socklab()
        .args(["client", "--host", &addr.ip().to_string(), "--port", &addr.port().to_string(), "--message", "-"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn socklab client")
}

/// Feeds `input` to the client, closes its stdin, and waits: (exit code, stdout, stderr).
fn run(addr: SocketAddr, args: &[&str], input: &[u8]) -> (Option<i32>, Vec<u8>, String) {
    let mut child = client(addr, args);
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    // A failed write is the client having exited early; its exit code says why.
    let feeder = thread::spawn(move || drop(stdin.write_all(&data)));
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    (out.status.code(), out.stdout, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn raw_prints_exactly_the_echo_on_stdout() {
    let server = ServerProcess::start("127.0.0.1", &["--quiet"]);
    let (code, out, err) = run(server.addr, &["--raw"], b"abc");
    assert_eq!(code, Some(0), "stderr: {err}");
    assert_eq!(out, b"abc", "stdout holds the echo and nothing else");
    // The human lines moved to stderr.
    assert!(err.contains("Client Received: abc"), "stderr: {err}");
    // Binary bytes, every value, unchanged; and an empty input is an empty echo.
    let all: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    let (code, out, err) = run(server.addr, &["--raw", "--quiet"], &all);
    assert_eq!((code, out == all), (Some(0), true), "stderr: {err}");
    let (code, out, err) = run(server.addr, &["--raw", "--quiet"], b"");
    assert_eq!((code, out.len()), (Some(0), 0), "stderr: {err}");
    assert_eq!(err, "", "--quiet --raw: nothing on stderr");
}

#[test]
fn raw_conflicts_with_json() {
    let out = socklab().args(["client", "--raw", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--raw") && err.contains("--json"), "{err}");
}

/// The echo comes back while stdin is still open (nc's behaviour): the first line is echoed
/// before the second is written. Reading all of stdin first would never show it.
#[test]
fn the_echo_streams_back_before_stdin_ends() {
    let server = ServerProcess::start("127.0.0.1", &["--quiet"]);
    let mut child = client(server.addr, &["--raw", "--quiet"]);
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (got, lines) = mpsc::channel();
    let reader = thread::spawn(move || forward(stdout, got));
    stdin.write_all(b"first\n").unwrap();
    let first = lines.recv_timeout(Duration::from_secs(30));
    // Whatever happened, end the client before asserting.
    stdin.write_all(b"second\n").unwrap();
    drop(stdin);
    let status = wait_bounded(&mut child, Duration::from_secs(30));
    let rest: Vec<u8> = lines.iter().flatten().collect();
    reader.join().unwrap();
    assert_eq!(first.ok().as_deref(), Some(&b"first\n"[..]), "no echo while stdin was open");
    assert_eq!(rest, b"second\n");
    assert!(status.success(), "client: {status}");
}

/// Sends each read of `from` to `to` until EOF.
fn forward(mut from: ChildStdout, to: mpsc::Sender<Vec<u8>>) {
    let mut buf = [0u8; 65536];
    while let Ok(n @ 1..) = from.read(&mut buf) {
        if to.send(buf[..n].to_vec()).is_err() {
            return;
        }
    }
}

fn wait_bounded(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let until = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > until {
            let _ = child.kill();
            panic!("the client did not exit within {limit:?}");
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// The peak resident set of a running process, from /proc (kB).
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM in /proc/PID/status");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// 64 MiB through the client in bounded memory, compared byte for byte on our side too. The peak
/// RSS is read after stdin was written whole (so the client has read all but a pipe's worth of
/// it) and before it is closed (so the client is still alive): reading stdin whole first would
/// make that peak at least 64 MiB.
#[test]
fn a_64_mib_stream_is_echoed_exactly_in_bounded_memory() {
    const LEN: usize = 64 << 20;
    const LIMIT_KB: u64 = 32 << 10;
    let server = ServerProcess::start("127.0.0.1", &["--quiet", "--model", "epoll"]);
    let mut child = client(server.addr, &["--raw", "--quiet", "--chunk", "65536"]);
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let block = pattern(1 << 20, 7);
    // Our own check of the echo, as it streams: every byte against the same pattern.
    let checker = thread::spawn(move || {
        let (mut buf, mut at, mut first_bad) = (vec![0u8; 65536], 0usize, None);
        let block = pattern(1 << 20, 7);
        while let Ok(n @ 1..) = stdout.read(&mut buf) {
            for (i, b) in buf[..n].iter().enumerate() {
                if first_bad.is_none() && block[(at + i) % block.len()] != *b {
                    first_bad = Some(at + i);
                }
            }
            at += n;
        }
        (at, first_bad)
    });
    let started = Instant::now();
    for _ in 0..LEN / block.len() {
        if stdin.write_all(&block).is_err() {
            break; // the client died; its status says why
        }
    }
    let peak = peak_rss_kb(pid);
    drop(stdin);
    let status = wait_bounded(&mut child, Duration::from_secs(120));
    let (echoed, first_bad) = checker.join().unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "client: {status}: {err}");
    assert_eq!((echoed, first_bad), (LEN, None), "the echo on stdout is not the input");
    assert!(peak < LIMIT_KB, "peak RSS {peak} kB after 64 MiB of stdin (limit {LIMIT_KB} kB)");
    eprintln!("64 MiB streamed in {:?}, peak RSS {peak} kB", started.elapsed());
}

/// The tutorial's Python server as the peer: the same bytes come back through it.
#[test]
fn streams_through_the_tutorials_python_server() {
    if !have("python3") {
        return skip("needs python3 (the tutorial's server)");
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/tutorial_server.py");
    let mut py = Command::new("python3")
        .args([script, "127.0.0.1", "0", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = py.stdout.take().unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while out.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    let line = String::from_utf8(line).unwrap();
    let port: u16 = line.rsplit(' ').next().unwrap().trim().parse().unwrap_or_else(|_| panic!("{line}"));
    // The server prints every chunk; drain it so it never blocks on its stdout.
    let drain = thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let input = pattern(300_000, 3);
    let (code, echoed, err) = run(([127, 0, 0, 1], port).into(), &["--raw", "--quiet", "--chunk", "4096"], &input);
    let _ = wait_bounded(&mut py, Duration::from_secs(30));
    drain.join().unwrap().unwrap();
    assert_eq!(code, Some(0), "{err}");
    assert!(echoed == input, "the echo through python differs ({} of {} bytes)", echoed.len(), input.len());
}

/// A misbehaving peer on a port of its own: `serve` gets the accepted connection. Bounded: a
/// client that never connects (one that failed at once) leaves it after 30 s, unserved.
fn peer(serve: impl FnOnce(std::net::TcpStream) + Send + 'static) -> (SocketAddr, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let handle = thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(30);
        let conn = loop {
            match listener.accept() {
                Ok((conn, _)) => break conn,
                Err(_) if Instant::now() < until => thread::sleep(Duration::from_millis(10)),
                Err(_) => return,
            }
        };
        conn.set_nonblocking(false).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        serve(conn)
    });
    (addr, handle)
}

/// Reads until the client's FIN (or 30 s), returning what came.
fn read_to_fin(conn: &mut std::net::TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let _ = conn.read_to_end(&mut got);
    got
}

#[test]
fn a_wrong_byte_names_its_offset_and_exits_1() {
    let (addr, peer) = peer(|mut conn| {
        let mut got = read_to_fin(&mut conn);
        got[5] ^= 0xff;
        conn.write_all(&got).unwrap();
    });
    let (code, out, err) = run(addr, &["--raw", "--quiet"], b"0123456789");
    peer.join().unwrap();
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("echo mismatch at byte 5: sent 0x35, got 0xca"), "{err}");
    // --raw wrote what came, up to and including the wrong byte's recv: nothing was held back.
    assert!(out.starts_with(b"01234\xca"), "{out:?}");
}

#[test]
fn a_server_that_closes_early_is_a_short_echo() {
    let (addr, peer) = peer(|mut conn| {
        let got = read_to_fin(&mut conn);
        conn.write_all(&got[..3]).unwrap();
        conn.shutdown(Shutdown::Both).unwrap();
    });
    let (code, out, err) = run(addr, &["--raw"], b"abcdef");
    peer.join().unwrap();
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("short echo: the server closed the connection after echoing 3 of 6 bytes"), "{err}");
    assert_eq!(out, b"abc");
}

#[test]
fn extra_bytes_after_the_echo_are_reported() {
    let (addr, peer) = peer(|mut conn| {
        let mut got = read_to_fin(&mut conn);
        got.extend_from_slice(b"XYZ");
        conn.write_all(&got).unwrap();
    });
    let (code, _, err) = run(addr, &["--quiet"], b"abcdef");
    peer.join().unwrap();
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("echo too long: after the 6 bytes sent, 3 more bytes came back"), "{err}");
}

/// A reset (the peer closes with our bytes unread: the kernel answers with RST) names the call
/// and the errno, whichever thread saw it first.
#[test]
fn a_reset_names_the_call_and_errno() {
    let (ready_tx, ready) = mpsc::channel::<()>();
    let (addr, peer) = peer(move |mut conn| {
        let mut first = [0u8; 1];
        if conn.read_exact(&mut first).is_err() {
            return;
        }
        // Let more arrive unread, then close: RST instead of FIN.
        let _ = ready.recv_timeout(Duration::from_secs(30));
        thread::sleep(Duration::from_millis(100));
        drop(conn);
    });
    let mut child = client(addr, &["--quiet"]);
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(b"abcdef");
    let _ = ready_tx.send(());
    peer.join().unwrap();
    let status = wait_bounded(&mut child, Duration::from_secs(30));
    drop(stdin);
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("ECONNRESET") || err.contains("EPIPE"), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{}", addr.port())), "the address is named: {err}");
}

/// --timeout counts while an echo is due, not while stdin is idle: nc waits for input as long as
/// it takes.
#[test]
fn timeout_applies_to_a_due_echo_not_to_idle_stdin() {
    // A peer that reads and never answers.
    let (addr, peer) = peer(|mut conn| drop(read_to_fin(&mut conn)));
    let started = Instant::now();
    let mut child = client(addr, &["--quiet", "--timeout", "1s"]);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"abc").unwrap();
    let status = wait_bounded(&mut child, Duration::from_secs(30));
    drop(stdin);
    peer.join().unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("no progress within 1s (--timeout)"), "{err}");
    assert!(started.elapsed() >= Duration::from_secs(1));

    // Idle stdin, a real echo server: still running after three timeouts' worth of silence.
    let server = ServerProcess::start("127.0.0.1", &["--quiet"]);
    let mut child = client(server.addr, &["--raw", "--quiet", "--timeout", "1s"]);
    let mut stdin = child.stdin.take().unwrap();
    thread::sleep(Duration::from_secs(3));
    let early = child.try_wait().unwrap();
    stdin.write_all(b"late").unwrap();
    drop(stdin);
    let status = wait_bounded(&mut child, Duration::from_secs(30));
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    assert!(early.is_none(), "the client gave up on idle stdin: {early:?}");
    assert!(status.success());
    assert_eq!(out, b"late");
}

/// Over a Unix stream socket the same streaming.
#[test]
fn streams_over_a_unix_stream_socket() {
    let dir = std::env::temp_dir().join(format!("socklab-stream-unix-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    let path = dir.join("echo.sock");
    let path_s = path.to_str().unwrap();
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    listener.set_nonblocking(true).unwrap();
    let server = thread::spawn(move || {
        // Bounded, as `peer` is: a client that failed at once never connects.
        let until = Instant::now() + Duration::from_secs(30);
        let mut conn = loop {
            match listener.accept() {
                Ok((conn, _)) => break conn,
                Err(_) if Instant::now() < until => thread::sleep(Duration::from_millis(10)),
                Err(_) => return,
            }
        };
        conn.set_nonblocking(false).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = conn.read(&mut buf) {
            conn.write_all(&buf[..n]).unwrap();
        }
    });
    let input = pattern(1 << 20, 9);
    let mut child = socklab()
        .args(["client", "--unix", path_s, "--message", "-", "--raw", "--quiet", "--chunk", "8192"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.clone();
    let feeder = thread::spawn(move || drop(stdin.write_all(&data)));
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    server.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout == input, "the echo over the Unix socket differs");
}

/// A message socket keeps the message whole: stdin is read to its end and sent as one message
/// (streaming is for stream sockets), over a socklab seqpacket server.
#[test]
fn a_seqpacket_client_reads_stdin_whole() {
    let dir = std::env::temp_dir().join(format!("socklab-stream-seqpacket-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    let path = dir.join("echo.sock");
    let path_s = path.to_str().unwrap();
    let ready = common::ReadyFile::new();
    let mut server = socklab()
        .args(["server", "--unix", path_s, "--seqpacket", "--quiet"])
        .args(ready.args())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _ = ready.text(&mut server);
    let mut child = socklab()
        .args(["client", "--unix", path_s, "--seqpacket", "--message", "-", "--raw", "--quiet", "--chunk", "100"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"one message").unwrap();
    let out = child.wait_with_output().unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, b"one message");
}
