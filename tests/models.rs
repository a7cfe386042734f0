//! Every concurrency model (`--model iterative|fork|thread|poll|epoll`) passes the same echo tests:
//! byte-exact round trips of edge-case sizes, concurrent clients, backpressure, and a clean stop —
//! through the CLI and through the library, on IPv4 and IPv6.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::Stdio;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread;
use std::time::{Duration, Instant};

use common::{ServerProcess, echo_with_std, hosts, pattern};
use socklab::echo::{Event, Model, Server, ServerConfig, ServerHandle};

/// A library fork server forks this test process, and its children hold copies of every
/// descriptor open at that moment — including other tests' sockets, whose close would then not
/// reach their peers. So fork tests run alone (write lock) and the others together (read lock).
static FORK_LOCK: RwLock<()> = RwLock::new(());

enum Guard {
    Shared(#[allow(dead_code)] RwLockReadGuard<'static, ()>),
    Alone(#[allow(dead_code)] RwLockWriteGuard<'static, ()>),
}

fn guard(model: Model) -> Guard {
    if model == Model::Fork {
        Guard::Alone(FORK_LOCK.write().unwrap_or_else(|e| e.into_inner()))
    } else {
        Guard::Shared(FORK_LOCK.read().unwrap_or_else(|e| e.into_inner()))
    }
}

fn concurrent(model: Model) -> bool {
    model != Model::Iterative
}

/// 0 B, 1 B, the tutorial's buffer size and one more, 1 MiB, and all 256 byte values.
fn payloads() -> Vec<Vec<u8>> {
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    vec![Vec::new(), vec![b'x'], pattern(2048, 1), pattern(2049, 2), pattern(1 << 20, 3), all_bytes]
}

/// Runs the round trips, then (for concurrent models) 8 clients at once.
fn exercise(addr: SocketAddr, model: Model) {
    for payload in payloads() {
        let echoed = echo_with_std(addr, &payload);
        assert!(
            echoed == payload,
            "{model:?} on {addr}: {} bytes sent, {} came back differently",
            payload.len(),
            echoed.len()
        );
    }
    if concurrent(model) {
        let clients: Vec<_> = (0..8u64)
            .map(|i| {
                thread::spawn(move || {
                    let payload = pattern(256 << 10, 100 + i);
                    echo_with_std(addr, &payload) == payload
                })
            })
            .collect();
        for client in clients {
            assert!(client.join().unwrap(), "{model:?} on {addr}: a concurrent echo differed");
        }
    }
}

/// A `socklab server --model M` process whose output is drained on a thread: the per-recv lines
/// of a 1 MiB echo would otherwise fill the pipe and block the server.
struct CliServer {
    child: std::process::Child,
    addr: SocketAddr,
    drain: thread::JoinHandle<()>,
}

impl CliServer {
    fn start(host: &str, model: Model) -> CliServer {
        let ready = common::ReadyFile::new();
        let mut child = common::socklab()
            .args(["server", "--host", host, "--port", "0", "--model", model.name()])
            .args(ready.args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn socklab server");
        let mut stdout = child.stdout.take().unwrap();
        let addr = ready.wait(&mut child);
        let drain = thread::spawn(move || {
            let _ = std::io::copy(&mut stdout, &mut std::io::sink());
        });
        CliServer { child, addr, drain }
    }

    /// SIGTERM, then the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        common::signal(self.child.id(), "TERM");
        let status = self.child.wait().expect("wait");
        self.drain.join().unwrap();
        status
    }
}

fn quiet() -> socklab::echo::Sink {
    Arc::new(|_: &Event<'_>| {})
}

fn spawn_lib(host: &str, model: Model, tweak: impl FnOnce(&mut ServerConfig)) -> ServerHandle {
    let mut config = ServerConfig::new(SocketAddr::new(host.parse().unwrap(), 0));
    config.model = model;
    config.backlog = Some(128);
    config.threads = 2;
    tweak(&mut config);
    Server::bind(config).expect("bind").spawn(quiet()).expect("spawn")
}

#[test]
fn every_model_echoes_exactly_through_the_cli() {
    for model in Model::ALL {
        let _guard = guard(model);
        for host in hosts() {
            let server = CliServer::start(host, model);
            exercise(server.addr, model);
            let status = server.terminate();
            assert!(status.success(), "{model:?} on {host}: SIGTERM should end the server with 0, got {status}");
        }
    }
}

#[test]
fn every_model_echoes_exactly_through_the_library() {
    for model in Model::ALL {
        let _guard = guard(model);
        for host in hosts() {
            let server = spawn_lib(host, model, |_| {});
            exercise(server.addr(), model);
            server.stop().unwrap_or_else(|e| panic!("{model:?} on {host}: stop failed: {e}"));
        }
    }
}

/// A client sends until its socket would block — the server's echoes then fill the client's
/// receive buffer, so the server cannot send and must stop reading — then reads everything back
/// while sending the rest. Every byte must come back in order: the server kept exactly the unsent
/// remainder and resumed.
#[test]
fn a_client_that_stops_reading_gets_every_byte_once_it_reads_again() {
    for model in Model::ALL {
        let _guard = guard(model);
        let server = spawn_lib("127.0.0.1", model, |c| c.buffer = Some(65536));
        let payload = pattern(16 << 20, 7);
        let mut client = TcpStream::connect(server.addr()).unwrap();
        client.set_nonblocking(true).unwrap();
        let mut sent = 0;
        let started = Instant::now();
        // Bounded: the socket buffers of both sides are a few MiB at most on loopback.
        while sent < payload.len() && started.elapsed() < Duration::from_secs(20) {
            match client.write(&payload[sent..(sent + 65536).min(payload.len())]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("{model:?}: send failed: {e}"),
            }
        }
        assert!(sent < payload.len(), "{model:?}: 16 MiB fit into the socket buffers; the test needs a larger payload");
        client.set_nonblocking(false).unwrap();
        client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut writer = client.try_clone().unwrap();
        let rest = payload[sent..].to_vec();
        let writing = thread::spawn(move || {
            writer.write_all(&rest).unwrap();
            writer.shutdown(Shutdown::Write).unwrap();
        });
        let mut echoed = Vec::new();
        client.read_to_end(&mut echoed).unwrap_or_else(|e| panic!("{model:?}: reading the echo failed: {e}"));
        writing.join().unwrap();
        assert!(echoed == payload, "{model:?}: {} of {} bytes came back, or differed", echoed.len(), payload.len());
        server.stop().unwrap();
    }
}

/// Stopping a server that has clients connected (idle, mid-session) ends it promptly, and the
/// clients see their connection closed rather than hanging.
#[test]
fn stop_ends_every_model_with_clients_still_connected() {
    for model in Model::ALL {
        let _guard = guard(model);
        for host in hosts() {
            let server = spawn_lib(host, model, |_| {});
            let clients = if concurrent(model) { 3 } else { 1 };
            let mut streams: Vec<TcpStream> =
                (0..clients).map(|_| TcpStream::connect(server.addr()).unwrap()).collect();
            // One full round trip each, so every client is being served (not just queued).
            for s in &mut streams {
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                s.write_all(b"ping").unwrap();
                let mut buf = [0u8; 4];
                s.read_exact(&mut buf).unwrap();
                assert_eq!(&buf, b"ping");
            }
            let started = Instant::now();
            server.stop().unwrap_or_else(|e| panic!("{model:?}: stop failed: {e}"));
            assert!(started.elapsed() < Duration::from_secs(10), "{model:?}: stop took {:?}", started.elapsed());
            for mut s in streams {
                let mut rest = Vec::new();
                // EOF (0) or a reset: either way the server let go of the connection.
                let _ = s.read_to_end(&mut rest);
                assert!(rest.is_empty(), "{model:?}: unexpected bytes after stop");
            }
        }
    }
}

/// `--max-conns 1` on the thread model: a second client waits in the backlog (its handshake is
/// done, but nobody reads) until the first leaves, then is served.
#[test]
fn thread_model_serves_at_most_max_conns_at_once() {
    let _guard = guard(Model::Thread);
    let server = spawn_lib("127.0.0.1", Model::Thread, |c| c.max_conns = Some(1));
    let mut first = TcpStream::connect(server.addr()).unwrap();
    first.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    first.write_all(b"one").unwrap();
    let mut buf = [0u8; 3];
    first.read_exact(&mut buf).unwrap();
    let second = thread::spawn(move || echo_with_std(server.addr(), b"two"));
    drop(first);
    assert_eq!(second.join().unwrap(), b"two");
}

/// The fork model leaves no zombies: once clients are gone, its children are reaped.
#[test]
fn fork_model_reaps_its_children() {
    let _guard = guard(Model::Fork);
    let server = CliServer::start("127.0.0.1", Model::Fork);
    for i in 0..5 {
        assert_eq!(echo_with_std(server.addr, &pattern(1000, i)), pattern(1000, i));
    }
    // Each child exits after its client closes, and the parent reaps it when SIGCHLD interrupts
    // accept. Poll /proc until no child is left (bounded: 10 s).
    let pid = server.child.id();
    let started = Instant::now();
    let mut children = String::from("?");
    while started.elapsed() < Duration::from_secs(10) {
        children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        if children.trim().is_empty() {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    assert!(children.trim().is_empty(), "children not reaped: {children}");
    let status = server.terminate();
    assert!(status.success(), "{status}");
}

/// With descriptors exhausted (`ulimit -n`), the nonblocking models stop accepting instead of
/// spinning on EMFILE, and serve the waiting clients once descriptors are free again.
#[test]
fn nonblocking_models_survive_running_out_of_descriptors() {
    for model in [Model::Poll, Model::Epoll, Model::Uring] {
        let _guard = guard(model);
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c").arg(r#"ulimit -n 24 && exec "$0" "$@""#).arg(env!("CARGO_BIN_EXE_socklab"));
        // One thread, so one ulimit's worth of descriptors is spent by one loop (poll has no --threads).
        let threads: &[&str] = if model == Model::Poll { &[] } else { &["--threads", "1"] };
        let args = [&["--model", model.name()][..], threads].concat();
        let mut server = ServerProcess::start_with(cmd, "127.0.0.1", &args);
        // More clients than the server has descriptors; each sends one byte.
        let mut clients: Vec<TcpStream> = (0..40).map(|_| TcpStream::connect(server.addr).unwrap()).collect();
        for c in &mut clients {
            c.write_all(b"!").unwrap();
            c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        }
        // The server reports EMFILE (it is not silent about refusing service)...
        let started = Instant::now();
        let mut saw_emfile = false;
        while !saw_emfile && started.elapsed() < Duration::from_secs(10) {
            saw_emfile = server.line().contains("Too many open files");
        }
        assert!(saw_emfile, "{model:?}: no EMFILE report");
        // ...and every client gets its echo once earlier ones leave: read, then close, in order.
        for (i, mut c) in clients.into_iter().enumerate() {
            let mut b = [0u8; 1];
            c.read_exact(&mut b).unwrap_or_else(|e| panic!("{model:?}: client {i} got no echo: {e}"));
            assert_eq!(&b, b"!");
        }
        let (status, _, err) = server.terminate();
        assert!(status.success(), "{model:?}: {status} {err}");
    }
}

#[test]
fn unknown_model_is_a_usage_error() {
    let out = common::socklab().args(["server", "--model", "select", "--port", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown model 'select'") && err.contains("epoll"), "{err}");
}

#[test]
fn auto_threads_leave_cpus_to_local_clients() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let at = |ip: &str| socklab::echo::auto_threads(&SocketAddr::new(ip.parse().unwrap(), 0));
    // Clients from other machines: one thread per CPU.
    assert_eq!(at("0.0.0.0"), cpus);
    assert_eq!(at("::"), cpus);
    // Clients on this machine share its CPUs: half of them, at least one.
    assert_eq!(at("127.0.0.1"), (cpus / 2).max(1));
    assert_eq!(at("::1"), (cpus / 2).max(1));
}
