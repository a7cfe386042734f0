//! Issue 25, "safe to leave running", met the way an attacker or a long unattended run meets it:
//! a symbolic link planted where socklab writes, a second server taking a live Unix path, a forged
//! datagram that would make a UDP echo server answer itself, clients that never read or leave
//! through a fault, and a log nobody reads.

mod common;

use std::io::{BufRead, Read};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::{Killed, socklab};

/// A directory of the test's own, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("socklab-leave-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        Dir(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Someone who can write to the ready file's directory plants `PATH.tmp -> victim` (the name
/// socklab used to write through). The server must leave the victim alone and still publish its
/// address at PATH, as a regular file.
#[test]
fn a_planted_link_beside_the_ready_file_is_not_written_through() {
    let dir = Dir::new("ready");
    let victim = dir.0.join("victim");
    std::fs::write(&victim, b"precious\n").unwrap();
    let ready = dir.0.join("ready");
    std::os::unix::fs::symlink(&victim, dir.0.join("ready.tmp")).unwrap();
    for command in [
        &["server", "--host", "127.0.0.1", "--port", "0", "--quiet"][..],
        &["proxy", "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:9"][..],
    ] {
        let _ = std::fs::remove_file(&ready);
        let mut child = socklab()
            .args(command)
            .arg("--ready-file")
            .arg(&ready)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let until = std::time::Instant::now() + common::READY_LIMIT;
        while !ready.exists() {
            if let Some(status) = child.try_wait().unwrap() {
                let mut err = String::new();
                child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
                panic!("{command:?} exited ({status}) before writing its ready file: {err}");
            }
            assert!(std::time::Instant::now() < until, "{command:?} wrote no ready file");
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious\n", "{command:?} wrote through the planted link");
        let meta = std::fs::symlink_metadata(&ready).unwrap();
        assert!(meta.file_type().is_file(), "{command:?}: the ready file is a regular file");
        let text = std::fs::read_to_string(&ready).unwrap();
        assert!(text.trim_end().parse::<std::net::SocketAddr>().is_ok(), "{command:?} wrote {text:?}");
        // Nothing but the test's own three names and no leftover temporary file.
        let mut names: Vec<_> = std::fs::read_dir(&dir.0).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, ["ready", "ready.tmp", "victim"], "{command:?} left a temporary file behind");
    }
}

/// `socklab server --unix PATH EXTRA...`, started and waited for (the ready file holds the path).
fn unix_server(path: &std::path::Path, extra: &[&str]) -> std::process::Child {
    let ready = common::ReadyFile::new();
    let mut child = socklab()
        .args(["server", "--unix"])
        .arg(path)
        .args(ready.args())
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    ready.text(&mut child);
    child
}

fn unix_echo(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut s = std::os::unix::net::UnixStream::connect(path)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.write_all(b"still mine")?;
    s.shutdown(std::net::Shutdown::Write)?;
    let mut got = Vec::new();
    s.read_to_end(&mut got)?;
    Ok(got)
}

/// A second server with `--unlink` on a path a live server accepts on is refused, names the first
/// server's process, and leaves the first reachable. And a server removes its socket file at the
/// stop only while it is still the file it bound: one made there by another server since stays.
#[test]
fn unlink_never_takes_a_live_socket_and_a_stop_removes_only_its_own_file() {
    let dir = Dir::new("unlink");
    let path = dir.0.join("echo.sock");
    let mut first = unix_server(&path, &["--quiet"]);
    let mut intruder = socklab()
        .args(["server", "--quiet", "--unlink", "--unix"])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let until = std::time::Instant::now() + Duration::from_secs(20);
    while intruder.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > until {
            let _ = intruder.kill();
            let _ = intruder.wait();
            let _ = first.kill();
            let _ = first.wait();
            panic!("the second server took the live path and is serving on it");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = intruder.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the second server was not refused: {err}");
    assert!(err.contains("--unlink") && err.contains("live"), "{err}");
    assert!(err.contains(&format!("pid {}", first.id())), "the owner is not named: {err}");
    assert_eq!(unix_echo(&path).unwrap(), b"still mine", "the first server is no longer reachable");

    // The first server's file is replaced behind its back (as an --unlink of old did); its stop
    // must leave the newcomer's file alone.
    std::fs::remove_file(&path).unwrap();
    let mut second = unix_server(&path, &["--quiet"]);
    common::signal(first.id(), "TERM");
    assert!(first.wait().unwrap().success());
    assert!(path.exists(), "the first server removed the second server's socket file at its stop");
    assert_eq!(unix_echo(&path).unwrap(), b"still mine", "the second server is unreachable");
    common::signal(second.id(), "TERM");
    assert!(second.wait().unwrap().success());
    assert!(!path.exists(), "the second server left its own socket file behind");

    // A stale file (nobody bound behind it) is still removed by --unlink.
    let stale = std::os::unix::net::UnixListener::bind(&path).unwrap();
    drop(stale);
    let mut third = unix_server(&path, &["--quiet", "--unlink"]);
    assert_eq!(unix_echo(&path).unwrap(), b"still mine");
    common::signal(third.id(), "TERM");
    assert!(third.wait().unwrap().success());
}

/// Sends ONE forged UDP datagram over loopback from a raw socket (IPPROTO_RAW, so the IP header
/// is ours): source 127.0.0.1:`src_port`, destination 127.0.0.1:`dst_port`. Needs root.
fn forge_udp(src_port: u16, dst_port: u16) {
    let script = r#"
import socket, struct, sys
src, dst = int(sys.argv[1]), int(sys.argv[2])
payload = b"loop?"
udp = struct.pack("!HHHH", src, dst, 8 + len(payload), 0) + payload  # checksum 0: none (IPv4)
lo = socket.inet_aton("127.0.0.1")
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, socket.IPPROTO_UDP, 0, lo, lo)
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.sendto(ip + udp, ("127.0.0.1", 0))
"#;
    let ok = std::process::Command::new("python3")
        .args(["-c", script, &src_port.to_string(), &dst_port.to_string()])
        .status()
        .expect("python3")
        .success();
    assert!(ok, "the raw send failed");
}

/// CPU time (user + system) of a process, in clock ticks, from /proc/PID/stat.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// One datagram forged with the server's own address as its source (and ones from port 0 and
/// from chargen's port 19) is not answered, in both UDP models: the drop is printed once per
/// reason and counted at the stop, and the server does not spin answering itself.
#[test]
fn a_forged_datagram_from_the_servers_own_port_starts_no_echo_loop() {
    if !common::have("python3") || !nix_is_root() {
        common::skip("needs root and python3 for a raw socket");
        return;
    }
    for model in ["iterative", "epoll"] {
        let (mut server, addr) = udp_server(model, &["--json"]);
        forge_udp(addr.port(), addr.port());
        forge_udp(addr.port(), addr.port());
        forge_udp(0, addr.port());
        forge_udp(19, addr.port());
        // An honest client is still answered.
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        client.send_to(b"hello", addr).unwrap();
        let mut buf = [0u8; 64];
        let (n, _) = client.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello", "{model}");
        // A loop would burn a whole core: 100 ticks a second. Allow a fifth of that.
        let before = cpu_ticks(server.0.id());
        std::thread::sleep(Duration::from_secs(1));
        let spent = cpu_ticks(server.0.id()) - before;
        assert!(spent < 20, "{model}: the server spent {spent} ticks in 1 s after a forged datagram: an echo loop");
        let stdout = stop_and_read(&mut server);
        let dropped: Vec<&str> = stdout.lines().filter(|l| l.contains(r#""event":"dropped""#)).collect();
        assert_eq!(dropped.len(), 3, "{model}: one line per reason: {stdout}");
        for reason in ["own_port", "port_0", "small_service"] {
            assert!(dropped.iter().any(|l| l.contains(reason)), "{model}: no {reason} line: {stdout}");
        }
        let summary = stdout.lines().find(|l| l.contains(r#""event":"drops""#)).unwrap_or_else(|| panic!("{stdout}"));
        assert!(
            summary.contains(r#""own_port":2"#)
                && summary.contains(r#""port_0":1"#)
                && summary.contains(r#""small_service":1"#),
            "{model}: {summary}"
        );
        // Nothing was sent from the server's port to itself: the honest echo is its only answer.
        let client_port = client.local_addr().unwrap().port();
        let data: Vec<&str> = stdout.lines().filter(|l| l.contains(r#""event":"data""#)).collect();
        assert_eq!(data.len(), 2, "{model}: {stdout}");
        assert!(data.iter().all(|l| l.contains(&format!(":{client_port}\""))), "{model}: {stdout}");
    }
}

/// SIGTERM, then the server's whole stdout once it exited with status 0 (JSON lines written
/// `"key":value`, without the space).
fn stop_and_read(server: &mut Killed) -> String {
    common::signal(server.0.id(), "TERM");
    let mut out = String::new();
    server.0.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(server.0.wait().unwrap().success(), "{out}");
    out.replace("\": ", "\":")
}

/// A UDP echo server on 127.0.0.1 with `extra` flags, its lines on stdout.
fn udp_server(model: &str, extra: &[&str]) -> (Killed, std::net::SocketAddr) {
    let ready = common::ReadyFile::new();
    let mut child = socklab()
        .args(["server", "--udp", "--host", "127.0.0.1", "--port", "0", "--model", model])
        .args(extra)
        .args(ready.args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = ready.wait(&mut child);
    (Killed(child), addr)
}

/// Two UDP echo servers and one datagram forged from one to the other: each answers the other for
/// ever (a core each) — unless `--udp-rate` limits the answers per source, when the first answer
/// over the limit is dropped and the loop ends. Both models, one on each side.
#[test]
fn udp_rate_ends_a_loop_between_two_echo_servers() {
    if !common::have("python3") || !nix_is_root() {
        common::skip("needs root and python3 for a raw socket");
        return;
    }
    let busy = |a: &Killed, b: &Killed| {
        let before = cpu_ticks(a.0.id()) + cpu_ticks(b.0.id());
        std::thread::sleep(Duration::from_secs(1));
        cpu_ticks(a.0.id()) + cpu_ticks(b.0.id()) - before
    };
    // Without a limit the loop runs: the control that shows what the limit ends.
    let ((a, a_addr), (b, b_addr)) = (udp_server("iterative", &["--json"]), udp_server("epoll", &["--json"]));
    forge_udp(a_addr.port(), b_addr.port());
    std::thread::sleep(Duration::from_millis(200));
    let spent = busy(&a, &b);
    assert!(spent >= 20, "without --udp-rate the two servers spent only {spent} ticks in 1 s: no loop to end");
    drop((a, b));

    let limit = ["--json", "--udp-rate", "1000/s"];
    let ((mut a, a_addr), (mut b, b_addr)) = (udp_server("iterative", &limit), udp_server("epoll", &limit));
    forge_udp(a_addr.port(), b_addr.port());
    std::thread::sleep(Duration::from_millis(1500)); // at most one second of 1,000 answers each
    let spent = busy(&a, &b);
    assert!(spent < 20, "with --udp-rate the two servers spent {spent} ticks in 1 s: the loop goes on");
    // An honest client is still answered, and each server says why it dropped what it dropped.
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    client.send_to(b"hello", a_addr).unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = client.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello");
    let mut drops = 0;
    for server in [&mut a, &mut b] {
        let out = stop_and_read(server);
        if let Some(summary) = out.lines().find(|l| l.contains(r#""event":"drops""#)) {
            assert!(summary.contains(r#""rate":"#), "{summary}");
            drops += 1;
        }
    }
    assert!(drops >= 1, "neither server dropped a datagram for its rate");
    // --udp-rate is for UDP alone, and takes a rate.
    for (args, says) in [
        (&["server", "--udp-rate", "10/s"][..], "use it with --udp"),
        (&["server", "--udp", "--udp-rate", "0/s"][..], "not a rate"),
        (&["server", "--udp", "--udp-rate", "fast"][..], "not a rate"),
    ] {
        let out = socklab().args(args).args(["--port", "0"]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next().map(|u| u == "0"))
        .unwrap_or(false)
}

/// Every model answers a UDP datagram with at most the tutorial's 2,048 bytes unless --buffer
/// says otherwise, and says it cut the rest; --help says so too.
#[test]
fn every_udp_model_echoes_at_most_2048_bytes_and_reports_the_cut() {
    for model in ["iterative", "epoll"] {
        let (mut server, addr) = udp_server(model, &[]);
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        client.send_to(&common::pattern(5000, 25), addr).unwrap();
        let mut buf = vec![0u8; 65536];
        let (n, _) = client.recv_from(&mut buf).unwrap();
        let stdout = stop_and_read(&mut server);
        assert_eq!(n, 2048, "{model}: the echo of a 5,000-byte datagram");
        assert_eq!(&buf[..n], &common::pattern(5000, 25)[..2048], "{model}");
        assert!(stdout.contains("Server Recv cut:") && stdout.contains("(MSG_TRUNC)"), "{model}: {stdout}");
    }
    let help = socklab().args(["server", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(help.contains("for datagrams (--udp, --dgram) 2048 in every model"), "{help}");
}

/// `socklab proxy --upstream ADDR --fault FAULT --quiet`, waiting until it listens.
fn proxy(upstream: std::net::SocketAddr, fault: &str) -> (std::process::Child, std::net::SocketAddr) {
    let ready = common::ReadyFile::new();
    let mut child = socklab()
        .args(["proxy", "--listen", "127.0.0.1:0", "--upstream", &upstream.to_string()])
        .args(["--fault", fault])
        .args(ready.args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let addr = ready.wait(&mut child);
    (child, addr)
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// A `/proc/PID/status` figure in KiB (`VmHWM`: the peak resident size).
fn status_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("no {key}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// 200 clients send 100 bytes and close, through each fault that holds bytes back. Toxiproxy's
/// timeout drains its input until that side closes, then closes the link; a link whose peers
/// have both gone is let go (half_open included: it holds a cut cable, not descriptors of peers
/// that have left). The proxy's descriptors come back to what it held before (it held 400 more,
/// for ever, through timeout and half_open).
#[test]
fn links_end_when_their_peers_leave_through_every_fault() {
    let (_server, upstream) = common::quiet_server();
    for fault in ["timeout", "both:timeout", "half_open", "slow_close=50ms", "latency=20ms", "slicer=10b:5ms"] {
        let (child, addr) = proxy(upstream, fault);
        let mut proxy = Killed(child);
        let pid = proxy.0.id();
        let idle = open_fds(pid);
        for _ in 0..200 {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            std::io::Write::write_all(&mut c, &[b'x'; 100]).unwrap();
        } // each client closes here
        let until = std::time::Instant::now() + Duration::from_secs(20);
        while open_fds(pid) > idle && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
        let held = open_fds(pid);
        common::signal(pid, "TERM");
        assert!(proxy.0.wait().unwrap().success(), "{fault}");
        assert_eq!(held, idle, "{fault}: the proxy still holds {} descriptors of clients that left", held - idle);
    }
}

/// 20 clients send 1 MiB each and never read, through the faults that cut bytes into one-byte
/// chunks. The proxy stops reading a side whose queue is full (256 KiB or 4,096 chunks), so the
/// senders block in their own kernels; its peak memory stays bounded (it was 441 MiB through
/// bandwidth=1b, 430 MiB through slicer=1b:1ms).
#[test]
fn the_proxy_is_bounded_under_faults_with_clients_that_never_read() {
    const BOUND_KIB: u64 = 48 * 1024;
    let (_server, upstream) = common::quiet_server();
    for fault in ["bandwidth=1b", "slicer=1b:1ms", "both:bandwidth=1b", "latency=5s", "upstream:slicer=1b:1ms"] {
        let (child, addr) = proxy(upstream, fault);
        let mut proxy = Killed(child);
        let pid = proxy.0.id();
        let mut clients = Vec::new();
        for _ in 0..20 {
            let c = std::net::TcpStream::connect(addr).unwrap();
            c.set_nonblocking(true).unwrap();
            clients.push((c, 0usize));
        }
        // Each sends until its kernel takes no more for half a second (or all of its 1 MiB).
        let chunk = vec![b'y'; 64 * 1024];
        let mut quiet_since = std::time::Instant::now();
        let until = std::time::Instant::now() + Duration::from_secs(20);
        while quiet_since.elapsed() < Duration::from_millis(500) && std::time::Instant::now() < until {
            for (c, sent) in clients.iter_mut().filter(|(_, sent)| *sent < 1 << 20) {
                if let Ok(n) = std::io::Write::write(c, &chunk[..chunk.len().min((1 << 20) - *sent)]) {
                    *sent += n;
                    quiet_since = std::time::Instant::now();
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let peak = status_kib(pid, "VmHWM:");
        let sent: usize = clients.iter().map(|(_, n)| n).sum();
        drop(clients);
        common::signal(pid, "TERM");
        assert!(proxy.0.wait().unwrap().success(), "{fault}");
        println!("{fault}: peak RSS {peak} KiB, {sent} bytes taken from 20 clients that never read");
        assert!(sent > 0, "{fault}: nothing was sent");
        assert!(peak < BOUND_KIB, "{fault}: peak RSS {peak} KiB for {sent} bytes sent (bound {BOUND_KIB} KiB)");
    }
}

/// `pass-fd --external --count 200` with its stdout a pipe nobody reads until the end: every
/// client is served and the program ends (2 of 200 were served and then it hung). The acceptor
/// queues its lines for the log's writer; the worker, forked before any thread, drops a line that
/// does not fit at once.
#[test]
fn pass_fd_with_an_unread_stdout_serves_every_client_and_ends() {
    const COUNT: usize = 200;
    let ready = common::ReadyFile::new();
    let child = socklab()
        .args(["pass-fd", "--port", "0", "--external", "--count", &COUNT.to_string()])
        .args(ready.args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped()) // read only at the end
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Killed(child);
    let addr = ready.wait(&mut child.0);
    for i in 0..COUNT {
        let payload = format!("client {i} of a pass-fd whose stdout nobody reads");
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        std::io::Write::write_all(&mut s, payload.as_bytes()).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap_or_else(|e| panic!("client {i} was not served ({e})"));
        assert_eq!(got, payload.as_bytes(), "client {i}");
    }
    let until = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < until, "pass-fd did not end after serving {COUNT} clients");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    child.0.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(status.success(), "{status}: {out}");
    assert!(out.starts_with("Server start"), "{out}");
}

/// Under `upstream:half_open` the client's bytes and FIN are never read, so the server never
/// closes and the link used to stay for ever. The proxy keeps the client's socket (a cut cable
/// tells a client nothing) with keepalive probes: a client that only half-closed answers them and
/// still gets no FIN; one that closed is forgotten by its own kernel after tcp_fin_timeout (2 s in
/// this test's namespace), its next probe meets an RST, and the link ends.
#[test]
fn half_open_links_of_clients_that_closed_end_and_half_closed_ones_stay_cut() {
    use socklab::netns::{Pair, Side};
    if !nix_is_root() || !common::have("ip") || !common::have("python3") {
        common::skip("needs root, ip and python3 for a network namespace");
        return;
    }
    let pair = Pair::create("sl-ho").expect("create the namespaces");
    pair.sysctl(Side::A, "net.ipv4.tcp_fin_timeout", "2").unwrap();
    let spawn = |args: &[&str]| started(pair.command(Side::A, env!("CARGO_BIN_EXE_socklab")), args);
    let (_server, upstream) = spawn(&["server", "--host", "127.0.0.1", "--port", "0", "--quiet", "--model", "thread"]);
    let up = upstream.to_string();
    let (proxy, addr) =
        spawn(&["proxy", "--listen", "127.0.0.1:0", "--upstream", &up, "--fault", "upstream:half_open"]);
    let pid = proxy.0.id();
    let idle = open_fds(pid);
    // One client half-closes and keeps reading; 20 send 100 bytes and close.
    let script = r#"
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
held = socket.create_connection((host, int(port)))
held.sendall(b"x" * 100)
held.shutdown(socket.SHUT_WR)
for _ in range(20):
    c = socket.create_connection((host, int(port)))
    c.sendall(b"y" * 100)
    c.close()
print("sent", flush=True)
held.settimeout(12)
try:
    got = held.recv(100)
    print("EOF" if got == b"" else "DATA", flush=True)
except socket.timeout:
    print("cut", flush=True)
"#;
    let mut client = pair
        .command(Side::A, "python3")
        .args(["-c", script, &addr.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Counted only once all 21 links were made (the script says "sent"): before that, a link
    // being set up (client accepted, upstream not yet connected) holds one descriptor.
    let mut stdout = std::io::BufReader::new(client.stdout.take().unwrap());
    let mut out = String::new();
    stdout.read_line(&mut out).unwrap();
    assert_eq!(out, "sent\n", "the clients did not all connect");
    // The 20 closed clients' links are seen (more than the held link's 2 descriptors), then end;
    // the half-closed one's stays.
    let until = std::time::Instant::now() + Duration::from_secs(40);
    let mut held = open_fds(pid);
    let mut seen_more = false;
    while std::time::Instant::now() < until {
        held = open_fds(pid);
        seen_more |= held > idle + 2;
        if seen_more && held <= idle + 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(seen_more, "the closed clients' links were never open at once with the held one");
    stdout.read_to_string(&mut out).unwrap();
    let _ = client.wait();
    assert_eq!(held, idle + 2, "the proxy holds {} descriptors over its idle {idle}", held - idle);
    assert!(out.contains("sent") && out.contains("cut"), "the half-closed client was told something: {out}");
}

/// A server or proxy says it is ready (`--ready-file`) only once it holds every descriptor it
/// holds while idle: a caller counting descriptors for a leak check may take its baseline right
/// then. (The file used to be written before the loops made their epoll instances, rings and
/// signalfd: up to 6 descriptors later with two epoll threads, and the proxy's loop one later.)
#[test]
fn every_idle_descriptor_is_open_when_the_ready_file_is_written() {
    let server = ["server", "--host", "127.0.0.1", "--port", "0", "--quiet"];
    let (upstream_server, upstream) = spawn_ready(&server);
    let up = upstream.to_string();
    let with = |extra: &'static [&'static str]| [&server[..], extra].concat();
    let commands: Vec<Vec<&str>> = vec![
        vec!["proxy", "--listen", "127.0.0.1:0", "--upstream", &up],
        with(&["--model", "iterative"]),
        with(&["--model", "fork"]),
        with(&["--model", "thread"]),
        with(&["--model", "poll"]),
        with(&["--model", "epoll", "--threads", "2"]),
        with(&["--model", "uring", "--threads", "2"]),
        with(&["--udp", "--model", "epoll"]),
        with(&["--fault", "latency=1ms"]),
    ];
    for args in &commands {
        for _ in 0..3 {
            let (child, _) = spawn_ready(args);
            let pid = child.0.id();
            let at_ready = open_fds(pid);
            std::thread::sleep(Duration::from_millis(100));
            assert_eq!(open_fds(pid), at_ready, "{args:?}: descriptors opened after the ready file was written");
        }
    }
    drop(upstream_server);
}

fn spawn_ready(args: &[&str]) -> (Killed, std::net::SocketAddr) {
    started(std::process::Command::new(env!("CARGO_BIN_EXE_socklab")), args)
}

/// `command` with `args` and a `--ready-file`, started; returns once the file names its address.
fn started(mut command: std::process::Command, args: &[&str]) -> (Killed, std::net::SocketAddr) {
    let ready = common::ReadyFile::new();
    let mut child = command.args(args).args(ready.args()).stdin(Stdio::null()).stdout(Stdio::null()).spawn().unwrap();
    let addr = ready.wait(&mut child);
    (Killed(child), addr)
}
