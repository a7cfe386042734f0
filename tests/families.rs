//! Beyond TCP over IPv4: Unix stream / seqpacket / datagram sockets, UDP, IPv6 dual-stack and
//! descriptor passing, end to end over real sockets, with independent peers (Python's socket
//! module, socat) where they exist.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;

use common::{ReadyFile, have, hosts, pattern, socklab};
use socklab::echo::{Event, Model, Server, ServerConfig, Transport};
use socklab::unix::{UnixKind, unix_addr};
use socklab::{SockAddr, UnixStream};

/// A directory of its own for socket files (removed on drop).
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("socklab-fam-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `socklab server ARGS --ready-file` child; returns it and the ready file's text.
fn server(args: &[&str]) -> (std::process::Child, String) {
    let ready = ReadyFile::new();
    let mut child = socklab()
        .arg("server")
        .args(args)
        .args(ready.args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let text = ready.text(&mut child);
    (child, text.trim_end().to_string())
}

/// SIGTERM, then the server's stdout and exit status.
fn stop(child: std::process::Child) -> (bool, String) {
    common::signal(child.id(), "TERM");
    let out = child.wait_with_output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into())
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn python(script: &str, args: &[&str]) -> (bool, String, String) {
    run(Command::new("python3").arg("-c").arg(script).args(args))
}

#[test]
fn unix_stream_echo_with_socklab_python_and_socat_peers_and_peercred() {
    let dir = TempDir::new("stream");
    let path = dir.path("echo.sock");
    let (srv, ready) = server(&["--unix", &path]);
    assert_eq!(ready, path, "--ready-file holds the socket path");
    let (ok, out, err) = run(socklab().args(["client", "--unix", &path, "--message", "Hello, unix"]));
    assert!(ok, "{err}");
    assert_eq!(out, "Client Received: Hello, uni\nClient Received: x\nClosing connection to the server\n");
    // Python as an independent peer; it prints its pid so the server's SO_PEERCRED can be checked.
    let script = "import os,socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\n\
                  s.sendall(b'py'*5000)\ns.shutdown(socket.SHUT_WR)\nd=b''\nwhile True:\n  c=s.recv(65536)\n  if not c: break\n  d+=c\n\
                  assert d==b'py'*5000, len(d)\nprint(os.getpid())";
    let (ok, pid, err) = python(script, &[&path]);
    assert!(ok, "python: {err}");
    if have("socat") {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("printf socat-hello | socat -t 5 - UNIX-CONNECT:{path}"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "socat-hello");
    } else {
        common::skip("the socat peer: socat is not installed");
    }
    let (ok, log) = stop(srv);
    assert!(ok, "{log}");
    assert!(log.contains(&format!("is pid {}, uid", pid.trim())), "SO_PEERCRED names the python client:\n{log}");
    assert!(log.contains("Server Accept: (unnamed)"), "{log}");
    assert!(!std::path::Path::new(&path).exists(), "the server removes its socket file on a clean stop");
}

#[test]
fn abstract_names_need_no_file() {
    let name = format!("@socklab-test-{}", std::process::id());
    let (srv, ready) = server(&["--unix", &name]);
    assert_eq!(ready, name);
    let (ok, _, err) = run(socklab().args(["client", "--unix", &name, "-q"]));
    assert!(ok, "{err}");
    assert!(stop(srv).0);
}

#[test]
fn stale_socket_files_and_long_paths_are_clear_errors() {
    let dir = TempDir::new("stale");
    let path = dir.path("stale.sock");
    // A socket file with nobody behind it: what a killed server leaves.
    let (ok, _, err) = python("import socket,sys\nsocket.socket(socket.AF_UNIX).bind(sys.argv[1])", &[&path]);
    assert!(ok, "{err}");
    let (ok, _, err) = run(socklab().args(["client", "--unix", &path]));
    assert!(!ok && err.contains("ECONNREFUSED") && err.contains("stale"), "{err}");
    let (ok, _, err) = run(socklab().args(["server", "--unix", &path]));
    assert!(!ok && err.contains("EADDRINUSE") && err.contains("--unlink"), "{err}");
    let (srv, _) = server(&["--unix", &path, "--unlink"]);
    let (ok, _, err) = run(socklab().args(["client", "--unix", &path, "-q"]));
    assert!(ok, "after --unlink: {err}");
    assert!(stop(srv).0);
    // --unlink never removes what is not a socket.
    std::fs::write(&path, "precious").unwrap();
    let (ok, _, err) = run(socklab().args(["server", "--unix", &path, "--unlink"]));
    assert!(!ok && err.contains("not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
    let long = format!("/tmp/{}", "x".repeat(120));
    let (ok, _, err) = run(socklab().args(["server", "--unix", &long]));
    assert!(!ok && err.contains("sun_path holds at most 107"), "{err}");
    let (ok, _, err) = run(socklab().args(["client", "--unix", &dir.path("none.sock")]));
    assert!(!ok && err.contains("ENOENT"), "{err}");
}

#[test]
fn seqpacket_keeps_message_boundaries_and_reports_truncation() {
    let dir = TempDir::new("seq");
    let path = dir.path("seq.sock");
    let (srv, _) = server(&["--unix", &path, "--seqpacket"]);
    let (ok, out, err) = run(socklab().args(["client", "--unix", &path, "--seqpacket", "--chunk", "64"]));
    assert!(ok && out.starts_with("Client Received: Hello\n"), "{out}{err}");
    let (ok, _, err) =
        run(socklab().args(["client", "--unix", &path, "--seqpacket", "--message", "0123456789", "--chunk", "4"]));
    assert!(!ok && err.contains("10 bytes") && err.contains("cut 6 bytes (MSG_TRUNC)"), "{err}");
    // Python: two sends arrive as two messages, each echoed whole.
    let script = "import socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_SEQPACKET)\ns.connect(sys.argv[1])\n\
                  s.send(b'one'); assert s.recv(100)==b'one'\ns.send(b'three'); assert s.recv(100)==b'three'";
    let (ok, _, err) = python(script, &[&path]);
    assert!(ok, "{err}");
    // A stream client on a seqpacket server: the kernel refuses the type.
    let (ok, _, err) = run(socklab().args(["client", "--unix", &path]));
    assert!(!ok && err.contains("EPROTOTYPE"), "{err}");
    assert!(stop(srv).0);
}

/// A seqpacket message longer than the server's --buffer: the kernel keeps what fits and drops the
/// rest; recv with MSG_TRUNC returns the real length, and the server says so — every model, uring
/// too (its multishot recv asks with MSG_TRUNC, each message in a whole provided buffer).
#[test]
fn seqpacket_messages_longer_than_the_server_buffer_are_reported() {
    let dir = TempDir::new("seqcut");
    for model in ["iterative", "fork", "thread", "poll", "epoll", "uring"] {
        let path = dir.path(&format!("{model}.sock"));
        let (srv, _) = server(&["--unix", &path, "--seqpacket", "--buffer", "4", "--model", model, "--json"]);
        // A real peer: Python sends one 10-byte message and gets back the 4 bytes the server kept.
        let script = "import socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_SEQPACKET)\n\
                      s.connect(sys.argv[1])\ns.send(b'0123456789')\nprint(s.recv(100))";
        let (ok, out, err) = python(script, &[&path]);
        assert!(ok && out.trim() == "b'0123'", "{model}: {out}{err}");
        let (ok, events) = stop(srv);
        assert!(ok, "{model}: {events}");
        let cut: Vec<&str> = events.lines().filter(|l| l.contains("\"event\": \"truncated\"")).collect();
        assert_eq!(cut.len(), 1, "{model}: {events}");
        assert!(cut[0].contains("\"kept\": 4") && cut[0].contains("\"bytes\": 10"), "{model}: {}", cut[0]);
    }
    // The text form names the lost bytes; a message that fits is not reported.
    let path = dir.path("text.sock");
    let (srv, _) = server(&["--unix", &path, "--seqpacket", "--buffer", "4"]);
    let (ok, _, err) =
        run(socklab().args(["client", "--unix", &path, "--seqpacket", "--message", "0123456789", "--chunk", "64"]));
    assert!(
        !ok && err.contains("the echoed message held 4 of the 10 bytes sent. A seqpacket message arrives whole")
            && err.contains("the connection was not closed"),
        "{err}"
    );
    let (ok, _, err) = run(socklab().args(["client", "--unix", &path, "--seqpacket", "--message", "abcd"]));
    assert!(ok, "{err}");
    let (ok, out) = stop(srv);
    assert!(ok, "{out}");
    assert!(
        out.contains(
            "Server Recv cut: the message from (unnamed) was 10 bytes, the buffer held 4; 6 bytes were lost (MSG_TRUNC)"
        ),
        "{out}"
    );
    assert_eq!(out.matches("Recv cut").count(), 1, "{out}");
}

/// Five messages sent back to back come back as five messages, in every model: an echo that
/// joined them (uring once sent the bytes of consecutive recvs in one send) breaks the one
/// promise seqpacket makes.
#[test]
fn seqpacket_echo_keeps_message_boundaries_in_every_model() {
    let dir = TempDir::new("seqbound");
    for model in ["iterative", "fork", "thread", "poll", "epoll", "uring"] {
        let path = dir.path(&format!("{model}.sock"));
        let (srv, _) = server(&["--unix", &path, "--seqpacket", "--model", model, "--quiet"]);
        let script = "import socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_SEQPACKET)\n\
                      s.connect(sys.argv[1])\n\
                      [s.send(b'message %d' % i) for i in range(5)]\n\
                      s.settimeout(10)\nprint([s.recv(1000) for _ in range(5)])";
        let (ok, out, err) = python(script, &[&path]);
        let want = "[b'message 0', b'message 1', b'message 2', b'message 3', b'message 4']";
        assert!(ok && out.trim() == want, "{model}: {out}{err}");
        assert!(stop(srv).0, "{model}");
    }
}

#[test]
fn unix_datagram_echo_in_iterative_and_epoll() {
    let dir = TempDir::new("dgram");
    for model in ["iterative", "epoll"] {
        let path = dir.path(&format!("{model}.sock"));
        let (srv, _) = server(&["--unix", &path, "--dgram", "--model", model]);
        let (ok, out, err) = run(socklab().args(["client", "--unix", &path, "--dgram", "--chunk", "64"]));
        assert!(ok && out.starts_with("Client Received: Hello\n"), "{model}: {out}{err}");
        let me = dir.path(&format!("{model}-py.sock"));
        let script = "import socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind(sys.argv[2])\n\
                      s.settimeout(10)\ns.sendto(b'dgram!',sys.argv[1])\nd,a=s.recvfrom(100)\nassert d==b'dgram!' and a==sys.argv[1], (d,a)";
        let (ok, _, err) = python(script, &[&path, &me]);
        assert!(ok, "{model}: {err}");
        let (ok, log) = stop(srv);
        assert!(ok && log.contains(&format!("Server Recv Data: dgram! (from {me})")), "{model}: {log}");
    }
}

#[test]
fn udp_echo_on_ipv4_and_ipv6_with_python_and_socat() {
    for host in hosts() {
        for model in ["iterative", "epoll"] {
            let (srv, ready) = server(&["--udp", "--host", host, "--port", "0", "--model", model, "--buffer", "2048"]);
            let addr: std::net::SocketAddr = ready.parse().unwrap();
            let port = addr.port().to_string();
            let (ok, out, err) =
                run(socklab().args(["client", "--udp", "--host", host, "--port", &port, "--chunk", "64"]));
            assert!(ok && out.starts_with("Client Received: Hello\n"), "{host} {model}: {out}{err}");
            let family = if addr.is_ipv4() { "AF_INET" } else { "AF_INET6" };
            let script = format!(
                "import socket,sys\ns=socket.socket(socket.{family},socket.SOCK_DGRAM)\ns.settimeout(10)\n\
                 for n in (1,1000,2048):\n  m=bytes(range(256))*(n//256)+b'x'*(n%256)\n  s.sendto(m,(sys.argv[1],int(sys.argv[2])))\n\
                 \x20 d,a=s.recvfrom(70000)\n  assert d==m, (n,len(d))"
            );
            let (ok, _, err) = python(&script, &[host, &port]);
            assert!(ok, "{host} {model}: {err}");
            if have("socat") {
                let target =
                    if addr.is_ipv4() { format!("UDP4:{host}:{port}") } else { format!("UDP6:[{host}]:{port}") };
                let out = Command::new("sh")
                    .arg("-c")
                    .arg(format!("printf socat-udp | socat -t 2 - {target}"))
                    .output()
                    .unwrap();
                assert_eq!(String::from_utf8_lossy(&out.stdout), "socat-udp", "{host} {model}");
            } else {
                common::skip("the socat UDP peer: socat is not installed");
            }
            // Too big for the server's buffer: it says how much the kernel cut.
            let (ok, _, err) = python(
                &format!(
                    "import socket,sys\ns=socket.socket(socket.{family},socket.SOCK_DGRAM)\ns.settimeout(10)\ns.sendto(b'y'*3000,(sys.argv[1],int(sys.argv[2])))\nprint(len(s.recv(5000)))"
                ),
                &[host, &port],
            );
            assert!(ok, "{err}");
            let (ok, log) = stop(srv);
            assert!(ok, "{log}");
            assert!(
                log.contains("was 3000 bytes, the buffer held") && log.contains("(MSG_TRUNC)"),
                "{host} {model}: {log}"
            );
        }
    }
}

#[test]
fn udp_client_errors_no_server_and_truncation() {
    // A port with nobody on it: bind one, learn it, close it.
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let (ok, _, err) = run(socklab().args(["client", "--udp", "--host", "127.0.0.1", "--port", &port]));
    assert!(!ok && err.contains("ECONNREFUSED") && err.contains("ICMP port unreachable"), "{err}");
    let (srv, ready) = server(&["--udp", "--host", "127.0.0.1", "--port", "0"]);
    let port = ready.rsplit(':').next().unwrap().to_string();
    let (ok, out, err) = run(socklab().args([
        "client",
        "--udp",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--message",
        "0123456789abcdef",
        "--chunk",
        "4",
    ]));
    assert!(!ok, "{out}");
    assert!(err.contains("16 bytes") && err.contains("held 4") && err.contains("cut 12 bytes (MSG_TRUNC)"), "{err}");
    assert!(stop(srv).0);
}

#[test]
fn datagram_sockets_are_refused_by_connection_models() {
    for model in ["fork", "thread", "poll"] {
        let (ok, _, err) = run(socklab().args(["server", "--udp", "--port", "0", "--model", model]));
        assert!(!ok && err.contains("use --model iterative or --model epoll"), "{model}: {err}");
    }
}

#[test]
fn dual_stack_listener_shows_ipv4_mapped_peers_and_v6only_refuses_them() {
    if !hosts().contains(&"::1") {
        common::skip("no IPv6 loopback");
        return;
    }
    let (srv, ready) = server(&["--host", "::", "--port", "0", "--v6only", "off", "-q"]);
    let port = ready.rsplit(':').next().unwrap().to_string();
    let (ok, _, err) = run(socklab().args(["client", "--host", "127.0.0.1", "--port", &port, "-q"]));
    assert!(ok, "{err}");
    common::signal(srv.id(), "TERM");
    drop(srv);
    // The same through the library, reading the peer the server reports.
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let config = ServerConfig { only_v6: Some(false), ..ServerConfig::new("[::]:0".parse().unwrap()) };
    let handle = Server::bind(config)
        .unwrap()
        .spawn(Arc::new(move |e: &Event<'_>| {
            if let Event::Accepted(peer) = e {
                log.lock().unwrap().push(peer.to_string());
            }
        }))
        .unwrap();
    let v4 = std::net::SocketAddr::from(([127, 0, 0, 1], handle.addr().port()));
    assert_eq!(common::echo_with_std(v4, b"mapped"), b"mapped");
    handle.stop().unwrap();
    let peers = seen.lock().unwrap().clone();
    assert!(peers.len() == 1 && peers[0].starts_with("[::ffff:127.0.0.1]:"), "{peers:?}");
    // IPV6_V6ONLY on: an IPv4 client finds nobody.
    let (srv, ready) = server(&["--host", "::", "--port", "0", "--v6only", "on", "-q"]);
    let port = ready.rsplit(':').next().unwrap().to_string();
    let (ok, _, err) = run(socklab().args(["client", "--host", "127.0.0.1", "--port", &port]));
    assert!(!ok && err.contains("ECONNREFUSED"), "{err}");
    let (ok, _, err) = run(socklab().args(["client", "--host", "::1", "--port", &port, "-q"]));
    assert!(ok, "{err}");
    assert!(stop(srv).0);
    let (ok, _, err) = run(socklab().args(["server", "--host", "127.0.0.1", "--v6only", "on"]));
    assert!(!ok && err.contains("IPv6 sockets only"), "{err}");
}

#[test]
fn every_model_serves_unix_stream_and_seqpacket() {
    let dir = TempDir::new("models");
    for model in Model::ALL {
        if cfg!(not(target_os = "linux")) && model == Model::Epoll {
            continue;
        }
        for kind in [UnixKind::Stream, UnixKind::Seqpacket] {
            let path = dir.path(&format!("{}-{kind:?}.sock", model.name()));
            let addr = unix_addr(&path).unwrap();
            let config = ServerConfig {
                transport: Transport::Unix(addr, kind),
                ..ServerConfig::for_model("127.0.0.1:0".parse().unwrap(), model)
            };
            let handle = Server::bind(config).unwrap().spawn(Arc::new(|_: &Event<'_>| {})).unwrap();
            assert_eq!(handle.local(), addr);
            // Three clients; all connected at once except with the iterative server, which serves
            // one at a time (the others would wait in its queue).
            let mut held = Vec::new();
            for i in 0..3 {
                let c = UnixStream::connect(&addr, kind).unwrap();
                let msg = pattern(100 + i, i as u64);
                c.send_all(&msg).unwrap();
                let mut got = [0u8; 200];
                let mut n = 0;
                while n < msg.len() {
                    let k = c.recv(&mut got[n..]).unwrap();
                    assert!(k > 0, "{} {kind:?}: closed early", model.name());
                    n += k;
                }
                assert_eq!(&got[..n], &msg[..], "{} {kind:?}", model.name());
                if model != Model::Iterative {
                    held.push(c);
                }
            }
            drop(held);
            handle.stop().unwrap();
            assert!(!std::path::Path::new(&path).exists(), "{} {kind:?}: socket file removed", model.name());
        }
    }
}

#[test]
fn pass_fd_hands_a_tcp_connection_to_another_process() {
    let (ok, out, err) = run(socklab().args(["pass-fd"]));
    assert!(ok, "{err}");
    assert!(out.contains("with SCM_RIGHTS") && out.contains("Client Received: Hello"), "{out}");
    let handed: Vec<&str> = out.lines().filter(|l| l.contains("received fd")).collect();
    assert_eq!(handed.len(), 1, "{out}");
    // The worker is another process: its pid differs from the one that accepted.
    let worker_pid = handed[0].split("[pid ").nth(1).unwrap().split(']').next().unwrap();
    assert!(out.contains(&format!("to pid {worker_pid} with SCM_RIGHTS")), "{out}");
    // With an outside peer (Python), two connections in turn.
    let ready = ReadyFile::new();
    let mut child = socklab()
        .args(["pass-fd", "--external", "--count", "2", "--port", "0"])
        .args(ready.args())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = ready.wait(&mut child);
    for payload in [b"first".to_vec(), pattern(100_000, 7)] {
        assert_eq!(common::echo_with_std(addr, &payload), payload);
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).matches("received fd").count(), 2);
}

#[test]
fn trace_narrates_the_new_calls_as_strace_does() {
    let (ok, _, err) = run(socklab().args(["--trace", "pass-fd"]));
    assert!(ok, "{err}");
    assert!(err.contains("socketpair(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC, 0, ["), "{err}");
    assert!(err.contains("cmsg_level=SOL_SOCKET, cmsg_type=SCM_RIGHTS, cmsg_data=["), "{err}");
    assert!(err.contains("msg_controllen=24, msg_flags=0}, MSG_NOSIGNAL) = 1"), "{err}");
    if have("strace") {
        // The same calls as strace itself spells them (pids and fd numbers aside).
        let dir = TempDir::new("strace");
        let log = dir.path("strace.out");
        let st = Command::new("strace")
            .args(["-f", "-qq", "-o", &log, "-e", "trace=sendmsg,recvmsg"])
            .arg(env!("CARGO_BIN_EXE_socklab"))
            .args(["--trace", "pass-fd"])
            .output()
            .unwrap();
        if st.status.success() {
            let ours = String::from_utf8_lossy(&st.stderr);
            let theirs = std::fs::read_to_string(&log).unwrap();
            // Lines strace split around a context switch (`<unfinished ...>`) cannot be compared whole.
            for line in
                theirs.lines().filter(|l| l.contains("msg(") && !l.contains("unfinished") && !l.contains("resumed"))
            {
                let call = line.split_once(' ').map_or(line, |(_, rest)| rest.trim_start());
                assert!(ours.contains(call.split(" = ").next().unwrap()), "strace: {call}\nours:\n{ours}");
            }
        } else {
            common::skip("the strace comparison: strace could not run here");
        }
    }
    let _ = SockAddr::unix_unnamed();
}
