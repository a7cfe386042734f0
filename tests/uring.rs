//! The io_uring model's two promises beyond echoing (which tests/models.rs checks for every model):
//! - `--trace` prints io_uring_setup / io_uring_register / io_uring_enter exactly as real
//!   `strace -f` prints them, and beneath each io_uring_enter the SQEs and CQEs strace cannot see;
//! - where the kernel refuses io_uring, the server says why and what to use instead, and exits
//!   non-zero. The refusals are real: strace's fault injection makes the syscall fail with that
//!   errno (`-e inject=io_uring_setup:error=EPERM`), as a seccomp filter or the sysctl would.

#![cfg(target_os = "linux")]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{have, signal};

/// strace output lines as (pid, line), "unfinished ... resumed" pairs joined.
fn strace_calls(text: &str) -> Vec<(String, String)> {
    let mut lines = Vec::new();
    let mut pending: Vec<(String, String)> = Vec::new(); // (pid, start of the call)
    for raw in text.lines() {
        let (pid, line) = raw.split_once(' ').unwrap_or(("", raw));
        let line = line.trim_start();
        if let Some(start) = line.strip_suffix(" <unfinished ...>") {
            pending.push((pid.to_string(), start.to_string()));
        } else if line.starts_with("<...") {
            let rest = line.split_once("resumed>").map_or("", |(_, r)| r);
            if let Some(i) = pending.iter().position(|(p, _)| p == pid) {
                let (_, start) = pending.remove(i);
                lines.push((pid.to_string(), format!("{start}{rest}")));
            }
        } else if !line.starts_with("+++") && !line.starts_with("---") {
            lines.push((pid.to_string(), line.to_string()));
        }
    }
    lines
}

/// A line with strace's column padding collapsed and each `flags=` / `features=` set, and
/// io_uring_enter's flags argument, replaced by its numeric value: the strace on this machine may
/// name fewer of the newest flag bits than socklab does (it prints those in hex), and that must
/// not count as a difference. strace 6.1 calls io_uring_buf_reg's flags `pad` (their old name in
/// the kernel headers).
fn normalized(line: &str) -> String {
    let mut line = line.split_whitespace().collect::<Vec<_>>().join(" ").replace(", pad=", ", flags=");
    if line.starts_with("io_uring_enter(") {
        // io_uring_enter(fd, to_submit, min_complete, FLAGS, arg, size): the fourth argument.
        let mut args: Vec<String> = line.splitn(5, ", ").map(str::to_string).collect();
        if let Some(flags) = args.get_mut(3) {
            *flags = format!("{:#x}", flag_value(flags, &line));
        }
        line = args.join(", ");
    }
    let mut out = String::new();
    let mut rest = line.as_str();
    while let Some(i) = rest.find("flags=").or_else(|| rest.find("features=")) {
        let j = rest.find("features=").filter(|&j| j < i).unwrap_or(i);
        let key_end = j + rest[j..].find('=').unwrap() + 1;
        out.push_str(&rest[..key_end]);
        let value_end = rest[key_end..].find([',', '}', ')', ' ']).map_or(rest.len(), |e| key_end + e);
        out.push_str(&format!("{:#x}", flag_value(&rest[key_end..value_end], &line)));
        rest = &rest[value_end..];
    }
    out.push_str(rest);
    out
}

/// The number a set of flags spells: `A|B|0x80`.
fn flag_value(value: &str, line: &str) -> u64 {
    let mut n = 0u64;
    for part in value.split('|') {
        n |= match part.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).unwrap_or(u64::MAX),
            None => name_value(part).unwrap_or_else(|| panic!("unknown flag name {part} in {line}")),
        };
    }
    n
}

fn name_value(name: &str) -> Option<u64> {
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    (0..32).map(|b| 1u32 << b).find_map(|bit| {
        let named = [
            socklab::trace::uring::setup_flags(bit),
            socklab::trace::uring::features(bit),
            socklab::trace::uring::pbuf_flags(bit as u16),
            socklab::trace::uring::enter_flags(bit),
        ];
        named.contains(&name.to_string()).then_some(u64::from(bit))
    })
}

#[test]
fn io_uring_calls_are_narrated_as_strace_prints_them() {
    if !have("strace") {
        common::skip("strace is not installed");
        return;
    }
    let dir = std::env::temp_dir().join(format!("socklab-uring-strace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("strace.txt");
    let ready = common::ReadyFile::new();
    let mut child = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=io_uring_setup,io_uring_register,io_uring_enter,mmap,munmap", "-o"])
        .arg(&log)
        .arg(env!("CARGO_BIN_EXE_socklab"))
        .args(["server", "--host", "127.0.0.1", "--port", "0", "--model", "uring", "--threads", "1"])
        .args(["--trace", "--quiet"])
        .args(ready.args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn strace");
    let addr = ready.wait(&mut child);

    let mut client = TcpStream::connect(addr).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    client.write_all(b"Hello").unwrap();
    let mut echo = [0u8; 5];
    client.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"Hello");
    drop(client);

    let strace_pid = child.id();
    let children = std::fs::read_to_string(format!("/proc/{strace_pid}/task/{strace_pid}/children")).unwrap();
    let socklab_pid: u32 = children.split_whitespace().next().expect("socklab under strace").parse().unwrap();
    std::thread::sleep(Duration::from_millis(200)); // let the server see the client's FIN first
    signal(socklab_pid, "TERM");
    let mut narration = String::new();
    child.stderr.take().unwrap().read_to_string(&mut narration).unwrap();
    assert!(child.wait().unwrap().success(), "{narration}");
    let traced = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    // Lines carry strace's `[pid N]` mark once the server runs a second thread.
    let ours: Vec<&str> = narration
        .lines()
        .map(|l| socklab::trace::split_pid_mark(l).1)
        .filter(|l| ["io_uring_", "mmap(", "munmap("].iter().any(|p| l.starts_with(p)))
        .collect();
    let calls = strace_calls(&traced);
    let is_map = |l: &str| l.starts_with("mmap(") || l.starts_with("munmap(");

    // The io_uring calls: the same lines, in the same order.
    let ours_uring: Vec<&str> = ours.iter().copied().filter(|l| !is_map(l)).collect();
    let theirs_uring: Vec<&str> =
        calls.iter().map(|(_, l)| l.as_str()).filter(|l| l.starts_with("io_uring_")).collect();
    assert!(ours_uring.len() >= 4, "too few io_uring calls narrated:\n{narration}");
    assert_eq!(ours_uring.len(), theirs_uring.len(), "narration:\n{narration}\nstrace:\n{traced}");
    for (a, b) in ours_uring.iter().zip(&theirs_uring) {
        assert_eq!(normalized(a), normalized(b), "\nsocklab: {a}\nstrace:  {b}");
    }

    // The ring's memory: the rings, the provided-buffer ring and the buffers are mapped, and
    // unmapped at the end, by the ring's thread from its io_uring_setup on. strace also sees the C
    // library's and Rust's own mappings (thread stacks, malloc's arenas and large blocks), made
    // outside socklab's code and so not narrated. So: every narrated mmap/munmap is a line strace
    // printed for that thread, in the same order (each mmap line carries the address the kernel
    // chose, so it matches one call only); and every mapping of the ring's descriptor strace saw,
    // and every unmapping of an address socklab narrated mapping, is narrated.
    let ring_task = calls.iter().find(|(_, l)| l.starts_with("io_uring_setup(")).map(|(pid, _)| pid.clone());
    let ring_fd = theirs_uring[0].rsplit("= ").next().unwrap().trim().to_string();
    let mut after_setup = false;
    let theirs_maps: Vec<&str> = calls
        .iter()
        .filter(|(pid, line)| {
            let ring = Some(pid) == ring_task.as_ref();
            after_setup |= ring && line.starts_with("io_uring_setup(");
            ring && after_setup && is_map(line)
        })
        .map(|(_, l)| l.as_str())
        .collect();
    let ours_maps: Vec<&str> = ours.iter().copied().filter(|l| is_map(l)).collect();
    let mapped: Vec<&str> =
        ours_maps.iter().filter(|l| l.starts_with("mmap(")).map(|l| l.rsplit("= ").next().unwrap()).collect();
    let unmapped = ours_maps.iter().filter(|l| l.starts_with("munmap(")).count();
    assert!(mapped.len() >= 4 && unmapped == mapped.len(), "rings, buffer ring, buffers:\n{narration}");
    let mut rest = theirs_maps.iter();
    for line in &ours_maps {
        assert!(
            rest.any(|t| normalized(t) == normalized(line)),
            "narrated but not seen by strace (in this order): {line}\nstrace:\n{traced}"
        );
    }
    for t in &theirs_maps {
        let of_ring = t.starts_with("mmap(") && t.contains(&format!(", {ring_fd}, "));
        let of_ours = t.starts_with("munmap(") && mapped.iter().any(|a| t.starts_with(&format!("munmap({a},")));
        if of_ring || of_ours {
            assert!(ours_maps.iter().any(|l| normalized(l) == normalized(t)), "not narrated: {t}\n{narration}");
        }
    }
    // Beneath the calls: the recv that got "Hello" and the send of it, which strace never shows.
    assert!(narration.contains("#   complete IORING_OP_RECV"), "{narration}");
    assert!(
        narration.lines().any(|l| l.starts_with("#   submit  IORING_OP_SEND") && l.contains(" len=5 ")),
        "{narration}"
    );
    assert!(!traced.contains("sendto") && !traced.contains("recvfrom"));
}

/// Runs `socklab server --model uring` with `call` failing with `errno` (strace's fault injection).
fn refused(call: &str, errno: &str) -> (Option<i32>, String) {
    let out = Command::new("timeout")
        .args(["20", "strace", "-f", "-qq", "-o", "/dev/null", "-e"])
        .arg(format!("trace={call}"))
        .arg("-e")
        .arg(format!("inject={call}:error={errno}"))
        .arg(env!("CARGO_BIN_EXE_socklab"))
        .args(["server", "--host", "127.0.0.1", "--port", "0", "--model", "uring", "--quiet"])
        .stdin(Stdio::null())
        .output()
        .expect("run strace");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_refused_io_uring_is_named_and_epoll_suggested() {
    if !have("strace") || !have("timeout") {
        common::skip("needs strace and timeout");
        return;
    }
    let sysctl = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled").ok();
    let cases = [
        ("io_uring_setup", "ENOSYS", "no io_uring"),
        // What EPERM means depends on the sysctl: disabled (1, 2), or else a seccomp filter.
        ("io_uring_setup", "EPERM", if sysctl.as_deref().map(str::trim) == Some("2") { "= 2" } else { "" }),
        ("io_uring_setup", "EINVAL", "does not support"),
        ("io_uring_register", "EINVAL", "IORING_REGISTER_PBUF_RING"),
    ];
    for (call, errno, why) in cases {
        let (code, err) = refused(call, errno);
        assert_eq!(code, Some(1), "{call} {errno}: exit code; stderr: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(err.contains(why) && err.contains("Use --model epoll instead."), "{call} {errno}: {err}");
        if call == "io_uring_setup" {
            assert!(err.contains(errno), "the errno is named: {err}");
        }
    }
}

/// The server's resident memory, from /proc (KiB).
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// Offers up to 64 MiB to a client that never reads, until the server stops taking them (no
/// progress for 500 ms): returns what was taken. The connection is returned to keep it stalled.
fn stall(addr: std::net::SocketAddr) -> (TcpStream, usize) {
    let client = TcpStream::connect(addr).unwrap();
    client.set_write_timeout(Some(Duration::from_millis(500))).unwrap();
    let chunk = vec![0x5au8; 1 << 20];
    let mut taken = 0;
    while taken < 64 << 20 {
        match (&client).write(&chunk) {
            Ok(n) => taken += n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => break,
            Err(e) => panic!("send: {e}"),
        }
    }
    (client, taken)
}

/// Backpressure: a client that never reads its echoes gets the server to stop reading (its recv
/// ends once 256 KiB or 4 pieces wait), and the server's memory stays flat: the provided buffers
/// are a fixed pool, so a second and a third such client add no memory beyond what the first made
/// resident. A fourth, reading client is still served to the end (its FIN seen: its recv found a
/// buffer, which a multishot recv that filled the pool in one burst used to prevent).
#[test]
fn never_reading_clients_leave_the_uring_servers_memory_flat() {
    let ready = common::ReadyFile::new();
    let mut server = common::socklab()
        .args(["server", "--host", "127.0.0.1", "--port", "0", "--model", "uring", "--threads", "1", "--quiet"])
        .args(ready.args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = ready.wait(&mut server);
    let pid = server.id();
    assert_eq!(common::echo_with_std(addr, b"warm up"), b"warm up");
    let (first, taken) = stall(addr);
    assert!(taken < 64 << 20, "the server took all 64 MiB from a client that never reads");
    let after_first = rss_kib(pid);
    let (second, _) = stall(addr);
    let (third, _) = stall(addr);
    let after_third = rss_kib(pid);
    eprintln!("never-reading clients: first took {} KiB; RSS {after_first} KiB -> {after_third} KiB", taken >> 10);
    // Flat: each stalled client holds at most about 256 KiB of pieces of the one shared 4 MiB pool.
    assert!(after_third <= after_first + 2048, "RSS grew from {after_first} to {after_third} KiB");
    assert_eq!(common::echo_with_std(addr, b"still serving"), b"still serving");
    drop((first, second, third));
    common::signal(pid, "TERM");
    assert!(server.wait().unwrap().success());
}

/// A one-ring uring server narrating to `trace.txt` in a directory of its own (the test removes
/// it): the directory, the log, the server and its address.
fn traced_uring_server(name: &str) -> (std::path::PathBuf, std::path::PathBuf, common::Killed, std::net::SocketAddr) {
    let dir = std::env::temp_dir().join(format!("socklab-uring-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("trace.txt");
    let args =
        ["server", "--host", "127.0.0.1", "--port", "0", "--model", "uring", "--threads", "1", "--trace", "--quiet"];
    let (server, addr) = common::logged_server(&args, &log);
    (dir, log, server, addr)
}

/// A stream's bytes that land in different provided buffers go back in one gathered `sendmsg`
/// (IORING_OP_SENDMSG with one iovec per piece), in order and byte-exact, also when the client
/// reads slowly and the kernel takes only part of a send. The narration shows each sendmsg's
/// iovecs, each inside the buffer pool it narrated mapping, and no completion reports more bytes
/// than its iovecs held.
#[test]
fn pieces_in_different_buffers_go_back_in_one_gathered_sendmsg() {
    let (dir, log, mut server, addr) = traced_uring_server("gather");

    // 4 MiB in 64 KiB writes from one thread; the echo read here, slowly for the first MiB (so the
    // client's receive buffer fills and sends come back short), then as fast as it comes.
    const TOTAL: usize = 4 << 20;
    let data = common::pattern(TOTAL, 21);
    let client = TcpStream::connect(addr).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut writer = client.try_clone().unwrap();
    let sent = data.clone();
    let feeder = std::thread::spawn(move || {
        for chunk in sent.chunks(64 << 10) {
            writer.write_all(chunk).unwrap();
        }
        writer.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut echo = Vec::with_capacity(TOTAL);
    let mut buf = vec![0u8; 16 << 10];
    loop {
        let n = (&client).read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        echo.extend_from_slice(&buf[..n]);
        if echo.len() < 1 << 20 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    feeder.join().unwrap();
    assert_eq!(echo.len(), TOTAL, "echo length");
    assert!(echo == data, "the echo differs from what was sent");
    signal(server.id(), "TERM");
    assert!(server.wait().unwrap().success());
    let narration = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    // The mappings the narration showed: (address, length).
    let maps: Vec<(u64, u64)> = narration
        .lines()
        .map(|l| socklab::trace::split_pid_mark(l).1)
        .filter_map(|l| {
            let len = l.strip_prefix("mmap(NULL, ")?.split(',').next()?.trim().parse().ok()?;
            let addr = u64::from_str_radix(l.rsplit("= 0x").next()?.trim(), 16).ok()?;
            Some((addr, len))
        })
        .collect();
    let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
    let mut gathered = 0;
    let mut sizes = std::collections::HashMap::new(); // user_data -> bytes in the iovecs
    for line in narration.lines() {
        if let Some(rest) = line.strip_prefix("#   submit  IORING_OP_SENDMSG ") {
            let iovlen: usize = rest.split("msg_iovlen=").nth(1).unwrap().split('}').next().unwrap().parse().unwrap();
            let mut total = 0;
            for iov in rest.split("{iov_base=").skip(1) {
                let (base, len) = iov.split_once(", iov_len=").unwrap();
                let (base, len) = (hex(base), len.split('}').next().unwrap().parse::<u64>().unwrap());
                assert!(maps.iter().any(|&(a, l)| base >= a && base + len <= a + l), "iovec outside the pool: {line}");
                total += len;
            }
            assert_eq!(rest.matches("{iov_base=").count(), iovlen, "{line}");
            gathered += usize::from(iovlen >= 2);
            sizes.insert(rest.rsplit("user_data=").next().unwrap().to_string(), total);
        } else if let Some(rest) = line.strip_prefix("#   complete IORING_OP_SENDMSG ") {
            let user_data = rest.split("user_data=").nth(1).unwrap().split(' ').next().unwrap();
            let res: u64 = rest.split("res=").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
            let held = sizes.get(user_data).copied().expect("a completion of a sendmsg submitted");
            assert!(res > 0 && res <= held, "sendmsg sent {res} of {held} bytes: {line}");
        }
    }
    assert!(gathered > 0, "no sendmsg gathered two pieces or more:\n{}", &narration[..narration.len().min(4000)]);
    // Recv bundles, where the kernel has them with a recv limit (6.16): while the sends wait for
    // the slow reader the client's bytes pile up in the socket, and one recv takes more than one
    // 64 KiB buffer holds.
    if narration.contains(" ioprio=IORING_RECV_MULTISHOT|IORING_RECVSEND_BUNDLE ") {
        let biggest = narration
            .lines()
            .filter_map(|l| l.strip_prefix("#   complete IORING_OP_RECV ")?.split("res=").nth(1)?.split(' ').next())
            .filter_map(|res| res.parse::<u64>().ok())
            .max();
        assert!(biggest > Some(64 << 10), "no recv bundle filled more than one buffer (largest recv: {biggest:?})");
    }
}

/// The machine's iowait so far, in USER_HZ ticks (`/proc/stat`, all CPUs).
fn iowait_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let cpu = stat.lines().next().unwrap();
    cpu.split_whitespace().nth(5).and_then(|t| t.parse().ok()).expect("iowait in /proc/stat")
}

/// A task asleep in io_uring_enter with requests in flight is counted as waiting for I/O unless
/// the wait says IORING_ENTER_NO_IOWAIT (Linux 6.15): without it, an idle uring server with one
/// idle client made the machine's iowait grow by a whole CPU (298 ticks in 3 s), which top and
/// vmstat show as `wa`. The server waits for its clients, not for a disk: with the flag the
/// count stays where it was. (Busy CPUs count no iowait, so a loaded machine can only hide a
/// regression here, never invent one.)
#[test]
fn an_idle_uring_server_is_not_counted_as_waiting_for_io() {
    let (dir, log, mut server, addr) = traced_uring_server("iowait");
    let client = TcpStream::connect(addr).unwrap();
    (&client).write_all(b"Hello").unwrap();
    let mut echo = [0u8; 5];
    (&client).read_exact(&mut echo).unwrap(); // served: its multishot recv is armed, and idle
    let before = iowait_ticks();
    std::thread::sleep(Duration::from_secs(1));
    let grown = iowait_ticks() - before;
    drop(client);
    signal(server.id(), "TERM");
    assert!(server.wait().unwrap().success());
    let narration = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    if !narration.contains("IORING_FEAT_NO_IOWAIT") {
        eprintln!("skipped: this kernel has no IORING_ENTER_NO_IOWAIT (Linux 6.15); its waits count as iowait");
        return;
    }
    let waits: Vec<&str> = narration.lines().filter(|l| l.contains("io_uring_enter(")).collect();
    assert!(
        waits.iter().filter(|l| l.contains("IORING_ENTER_GETEVENTS")).all(|l| l.contains("IORING_ENTER_NO_IOWAIT")),
        "a wait without IORING_ENTER_NO_IOWAIT:\n{}",
        waits.join("\n")
    );
    // USER_HZ is 100: a CPU counted as waiting for the whole second adds 100.
    assert!(grown < 50, "the machine's iowait grew by {grown} ticks in 1 s while the server sat idle");
}
