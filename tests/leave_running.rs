//! Issue 25, "safe to leave running", met the way an attacker or a long unattended run meets it:
//! a symbolic link planted where socklab writes, a second server taking a live Unix path, a forged
//! datagram that would make a UDP echo server answer itself, clients that never read or leave
//! through a fault, and a log nobody reads.

mod common;

use std::io::Read;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::socklab;

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
        let ready = common::ReadyFile::new();
        let mut child = socklab()
            .args(["server", "--udp", "--host", "127.0.0.1", "--port", "0", "--json", "--model", model])
            .args(ready.args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let addr = ready.wait(&mut child);
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
        let before = cpu_ticks(child.id());
        std::thread::sleep(Duration::from_secs(1));
        let spent = cpu_ticks(child.id()) - before;
        if spent >= 20 {
            let _ = child.kill();
            let _ = child.wait();
        }
        assert!(spent < 20, "{model}: the server spent {spent} ticks in 1 s after a forged datagram: an echo loop");
        common::signal(child.id(), "TERM");
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).replace("\": ", "\":");
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
        let ready = common::ReadyFile::new();
        let mut child = socklab()
            .args(["server", "--udp", "--host", "127.0.0.1", "--port", "0", "--model", model])
            .args(ready.args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let addr = ready.wait(&mut child);
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        client.send_to(&common::pattern(5000, 25), addr).unwrap();
        let mut buf = vec![0u8; 65536];
        let (n, _) = client.recv_from(&mut buf).unwrap();
        common::signal(child.id(), "TERM");
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(n, 2048, "{model}: the echo of a 5,000-byte datagram");
        assert_eq!(&buf[..n], &common::pattern(5000, 25)[..2048], "{model}");
        assert!(stdout.contains("Server Recv cut:") && stdout.contains("(MSG_TRUNC)"), "{model}: {stdout}");
    }
    let help = socklab().args(["server", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(help.contains("for datagrams (--udp, --dgram) 2048 in every model"), "{help}");
}
