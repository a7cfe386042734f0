//! Faults a server must survive, and keep serving other clients afterwards (issue 5, cases 1-15).
//! Every case runs against every model and ends with `Server::finish`: the fd count is back to
//! its idle value (case 15) and SIGTERM ends the server with exit 0.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{have, pattern};
use crate::harness::{self, Server, connect, echo_on, models, reset};

/// Case 1: a client resets mid-stream: that connection ends, the others are unaffected.
#[test]
fn reset_mid_stream_ends_only_that_connection() {
    for model in models() {
        let server = Server::start(&model, &["--quiet"]);
        let mut other = (!model.one_at_a_time()).then(|| connect(server.addr));
        let mut victim = connect(server.addr);
        let peer = victim.local_addr().unwrap();
        assert_eq!(echo_on(&mut victim, b"first half"), b"first half");
        victim.write_all(&pattern(300_000, 1)).unwrap(); // mid-stream: echo data in flight both ways
        reset(victim);
        // The server notices (recv or send fails with ECONNRESET/EPIPE, or recv sees the end).
        if let Some(other) = other.as_mut() {
            assert_eq!(echo_on(other, b"still here"), b"still here", "[{}]", model.name);
        }
        server.assert_echoes(&pattern(100_000, 2));
        let errors = server.out.matching(&peer.to_string());
        assert!(errors.len() <= 1, "[{}] logged more than once: {errors:?}", model.name);
        drop(other);
        server.finish();
    }
}

/// Case 2: a client half-closes after sending: every byte is still echoed, then the server closes.
#[test]
fn half_close_still_gets_every_byte_then_eof() {
    for model in models() {
        let server = Server::start(&model, &["--quiet"]);
        for len in [1, 2048, 2049, 1 << 20] {
            let data = pattern(len, len as u64);
            let mut s = connect(server.addr);
            // Send it all first (a writer thread: the echo must be read while sending).
            let mut w = s.try_clone().unwrap();
            let sent = data.clone();
            let writer = thread::spawn(move || {
                w.write_all(&sent).unwrap();
                w.shutdown(Shutdown::Write).unwrap(); // our FIN: "no more from me"
            });
            let mut got = Vec::new();
            s.read_to_end(&mut got).expect("read until the server's FIN");
            writer.join().unwrap();
            assert!(got == data, "[{}] {len} bytes sent, {} came back", model.name, got.len());
        }
        server.finish();
    }
}

/// Case 3: a client closes with echo data it never read: the server's send fails (ECONNRESET or
/// EPIPE), it does not die of SIGPIPE, and it goes on serving.
#[test]
fn unread_echo_data_does_not_kill_the_server() {
    for model in models() {
        let mut server = Server::start(&model, &["--quiet"]);
        for round in 0..3 {
            let mut s = connect(server.addr);
            let peer = s.local_addr().unwrap();
            // Up to 4 MiB without reading: the server is still sending when we vanish. Where the
            // kernel's buffers hold less, our send stalls; the timeout ends it (either is fine).
            s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
            let _ = s.write_all(&pattern(4 << 20, round));
            drop(s); // close with unread data: the kernel answers with RST
            let ended = server.out.wait_for(&format!("{peer} ended"), 1, Duration::from_secs(20));
            assert_eq!(ended.len(), 1, "[{}] want one error line for {peer}: {}", model.name, server.out.dump());
            assert!(
                ended[0].contains("ECONNRESET") || ended[0].contains("EPIPE"),
                "[{}] unexpected error: {}",
                model.name,
                ended[0]
            );
            assert!(server.alive(), "[{}] died: {}", model.name, server.err.dump());
        }
        server.assert_echoes(b"after the resets");
        server.finish();
    }
}

/// Case 4: writing to a peer that is gone: EPIPE (MSG_NOSIGNAL, no SIGPIPE), logged once, dropped.
#[test]
fn write_to_a_vanished_peer_is_logged_once() {
    for model in models() {
        let mut server = Server::start(&model, &["--quiet"]);
        let mut peers = Vec::new();
        for i in 0..5 {
            let s = connect(server.addr);
            peers.push(s.local_addr().unwrap());
            (&s).write_all(&pattern(64 << 10, i)).unwrap();
            reset(s); // gone before (or while) the server writes the echo
        }
        server.assert_echoes(b"next client");
        for peer in &peers {
            // The error is logged once when the server saw one; a server that read our data and
            // wrote before the RST arrived may have seen none.
            let lines = server.out.matching(&format!("{peer} ended"));
            assert!(lines.len() <= 1, "[{}] {peer} logged {} times: {lines:?}", model.name, lines.len());
            for line in lines {
                assert!(line.contains("EPIPE") || line.contains("ECONNRESET"), "[{}] {line}", model.name);
            }
        }
        assert!(server.alive(), "[{}] died (SIGPIPE?): {}", model.name, server.err.dump());
        server.finish();
    }
}

/// Case 5: zero-length writes, zero-byte sessions and a 0-byte message.
#[test]
fn zero_length_io_and_empty_sessions() {
    for model in models() {
        let server = Server::start(&model, &["--quiet"]);
        // A session that sends nothing: connect, half-close, expect EOF and nothing else.
        let mut s = connect(server.addr);
        s.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        assert!(got.is_empty(), "[{}] {got:?}", model.name);
        // Connect and close at once, several times.
        for _ in 0..5 {
            drop(connect(server.addr));
        }
        // Zero-length writes in the middle of a session change nothing.
        let mut s = connect(server.addr);
        assert_eq!(s.write(&[]).unwrap(), 0);
        assert_eq!(echo_on(&mut s, b"a"), b"a");
        assert_eq!(s.write(&[]).unwrap(), 0);
        assert_eq!(echo_on(&mut s, b"bc"), b"bc");
        drop(s);
        // socklab's own client with an empty message.
        let out = crate::common::socklab()
            .args(["client", "--host", "127.0.0.1", "--port", &server.addr.port().to_string(), "--message", ""])
            .output()
            .unwrap();
        assert!(out.status.success(), "[{}] {}", model.name, String::from_utf8_lossy(&out.stderr));
        assert!(server.out.matching(" ended").is_empty(), "[{}] {}", model.name, server.out.dump());
        server.finish();
    }
}

/// Case 6: 64 MiB through one connection while the client reads slowly: byte-exact, and the
/// server blocks in send rather than spinning (its CPU time stays well under the wall time).
#[test]
fn sixty_four_mib_to_a_slow_reader() {
    const TOTAL: usize = 64 << 20;
    for model in models() {
        let server = Server::start(&model, &["--quiet", "--buffer", "65536"]);
        let pid = server.pid();
        let cpu_before = harness::cpu_time(pid);
        let started = Instant::now();
        let mut s = connect(server.addr);
        let mut w = s.try_clone().unwrap();
        let writer = thread::spawn(move || {
            let data = pattern(1 << 20, 6);
            for _ in 0..TOTAL / data.len() {
                w.write_all(&data).unwrap();
            }
            w.shutdown(Shutdown::Write).unwrap();
        });
        let want = pattern(1 << 20, 6);
        let (mut got, mut buf) = (0usize, vec![0u8; 16 << 10]);
        loop {
            let n = s.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            for (i, b) in buf[..n].iter().enumerate() {
                let at = got + i;
                assert!(*b == want[at % want.len()], "[{}] byte {at} differs", model.name);
            }
            // The slow reader: pause 1 ms after each 512 KiB, so the server fills the buffers and
            // has to wait for us about 128 times.
            if (got + n) / (512 << 10) != got / (512 << 10) {
                thread::sleep(Duration::from_millis(1));
            }
            got += n;
        }
        writer.join().unwrap();
        let wall = started.elapsed();
        let cpu = harness::cpu_time(pid) - cpu_before;
        assert_eq!(got, TOTAL, "[{}]", model.name);
        eprintln!("[{}] 64 MiB to a slow reader: {wall:?} wall, server CPU {cpu:?}", model.name);
        // A busy loop would burn CPU for the whole transfer; blocking sends use a fraction of it.
        assert!(cpu < wall.mul_f32(0.9), "[{}] server CPU {cpu:?} over {wall:?}: spinning?", model.name);
        server.finish();
    }
}

/// Case 7: a client that never reads: the server's memory stays bounded while 256 MiB are
/// offered (the kernel's buffers fill, then the server waits in send and stops reading).
#[test]
fn backpressure_keeps_server_memory_bounded() {
    const OFFERED: usize = 256 << 20;
    for model in models() {
        let server = Server::start(&model, &["--quiet"]);
        let pid = server.pid();
        server.assert_echoes(b"warm up"); // first-use allocations happen before we measure
        let before = harness::rss_kib_tree(pid);
        let s = socklab::TcpStream::from(connect(server.addr));
        s.set_nonblocking(true).unwrap();
        let chunk = pattern(1 << 20, 7);
        let mut offered = 0usize;
        // Offer until all 256 MiB went out or the connection has been stalled for 500 ms.
        while offered < OFFERED {
            match s.send(&chunk[..(OFFERED - offered).min(chunk.len())]) {
                Ok(n) => offered += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let mut fds =
                        [socklab::sys::PollFd { fd: s.as_raw_fd(), events: socklab::sys::POLLOUT, revents: 0 }];
                    if socklab::sys::poll(&mut fds, 500).unwrap_or(0) == 0 {
                        break; // stalled: backpressure reached us
                    }
                }
                Err(e) => panic!("[{}] send: {e}", model.name),
            }
        }
        let after = harness::rss_kib_tree(pid);
        let growth = after.saturating_sub(before);
        eprintln!(
            "[{}] backpressure: {} MiB accepted of 256 MiB offered; server memory (PSS) {before} KiB -> {after} KiB",
            model.name,
            offered >> 20
        );
        assert!(offered < OFFERED, "[{}] all 256 MiB were taken without the client reading", model.name);
        assert!(growth < 8 << 10, "[{}] server RSS grew {growth} KiB (limit 8 MiB)", model.name);
        drop(s);
        server.assert_echoes(b"after the stalled client");
        server.finish();
    }
}

/// Counts the accept calls a running process makes in `period`, with strace attached.
fn count_accepts(pid: u32, period: Duration) -> usize {
    let log = std::env::temp_dir().join(format!("socklab-accepts-{pid}-{}.log", std::process::id()));
    let status = Command::new("timeout")
        .args(["-s", "INT", &format!("{:.3}s", period.as_secs_f64())])
        .args(["strace", "-f", "-qq", "-e", "trace=accept,accept4", "-e", "signal=none", "-o"])
        .arg(&log)
        .args(["-p", &pid.to_string()])
        .status()
        .expect("run strace");
    // timeout(1) exits 124 when it had to stop strace, which is the plan.
    assert!(matches!(status.code(), Some(0 | 124)), "strace under timeout: {status:?}");
    let text = std::fs::read_to_string(&log).expect("strace wrote no log: did it attach?");
    let _ = std::fs::remove_file(&log);
    // A call strace split in two ("<unfinished ...>", then "<... accept4 resumed>") counts once.
    text.lines().filter(|l| l.contains("accept") && !l.contains(" resumed>")).count()
}

/// Case 8: EMFILE. With RLIMIT_NOFILE lowered (prlimit) so accept fails, the server neither spins
/// nor dies, and serves the waiting client once descriptors are available again.
#[test]
fn emfile_backs_off_and_recovers() {
    if !have("prlimit") || !have("strace") || !have("timeout") {
        crate::common::skip("needs prlimit, strace and timeout");
        return;
    }
    for model in models() {
        if model.name == "uring" {
            // io_uring's accept reads RLIMIT_NOFILE when the request is prepared, and a multishot
            // accept is prepared once, at start: lowering the limit of a running server does not
            // reach it. uring's EMFILE path is tested from the start instead (`ulimit -n 24`, in
            // tests/models.rs, nonblocking_models_survive_running_out_of_descriptors).
            continue;
        }
        let mut server = Server::start(&model, &["--quiet"]);
        let pid = server.pid();
        // RLIMIT_NOFILE caps descriptor *numbers*, and a new descriptor gets the lowest free
        // number: a limit equal to that number leaves none to give (inherited higher ones stay).
        let open: Vec<u32> = harness::fds(pid).into_iter().map(|(n, _)| n).collect();
        let lowest_free = (0..).find(|n| !open.contains(n)).unwrap();
        // Lower the soft limit only (raising a hard limit needs CAP_SYS_RESOURCE).
        let lower = format!("--nofile={lowest_free}:");
        assert!(Command::new("prlimit").args(["--pid", &pid.to_string(), &lower]).status().unwrap().success());
        // A blocking accept reserves its descriptor when it starts, under the old limit: a
        // primer client uses that one up (served or refused, we do not care).
        let primer = connect(server.addr);
        (&primer).write_all(b"primer").unwrap();
        drop(primer);
        let mut s = connect(server.addr); // the kernel completes the handshake; accept cannot take it
        s.write_all(b"waiting").unwrap();
        let failed = server.out.wait_for("EMFILE", 1, Duration::from_secs(10));
        assert!(!failed.is_empty(), "[{}] accept never failed with EMFILE: {}", model.name, server.out.dump());
        let accepts = count_accepts(pid, Duration::from_secs(1));
        eprintln!("[{}] EMFILE: {accepts} accept calls in 1 s while stalled", model.name);
        assert!(accepts <= 50, "[{}] {accepts} accept calls in 1 s: spinning on EMFILE", model.name);
        assert!(server.alive(), "[{}] died on EMFILE", model.name);
        // Descriptors become available again: the waiting client is served.
        assert!(
            Command::new("prlimit")
                .args(["--pid", &pid.to_string(), &format!("--nofile={}:", harness::hard_nofile(pid))])
                .status()
                .unwrap()
                .success()
        );
        let mut got = [0u8; 7];
        s.read_exact(&mut got).expect("echo after the limit was raised");
        assert_eq!(&got, b"waiting");
        drop(s);
        server.finish();
    }
}

/// Case 9: EINTR. A SIGALRM every millisecond for over a second (the hidden --interrupt-every
/// flag installs a counting handler without SA_RESTART): no byte lost, no connection ended.
#[test]
fn eintr_storm_loses_nothing() {
    for model in models() {
        let server = Server::start(&model, &["--quiet", "--interrupt-every", "1ms"]);
        let started = Instant::now();
        let (mut sessions, mut bytes) = (0u64, 0usize);
        while started.elapsed() < Duration::from_millis(1200) && sessions < 1000 {
            let data = pattern(256 << 10, sessions);
            server.assert_echoes(&data);
            sessions += 1;
            bytes += data.len();
        }
        assert!(server.out.matching(" ended").is_empty(), "[{}] {}", model.name, server.out.dump());
        assert!(server.out.matching("accept failed").is_empty(), "[{}] {}", model.name, server.out.dump());
        server.assert_fds_back_to_idle();
        let name = model.name.clone();
        let (status, _, server) = server.stop_with("TERM", Duration::from_secs(10));
        assert!(status.success(), "[{name}] {status:?} {}", server.err.dump());
        let caught: u64 = server
            .err
            .matching("caught")
            .first()
            .and_then(|l| l.split_whitespace().find_map(|w| w.parse().ok()))
            .unwrap_or(0);
        eprintln!("[{name}] EINTR: {sessions} sessions, {} MiB, {caught} signals caught", bytes >> 20);
        assert!(caught >= 100, "[{name}] only {caught} signals were caught: the storm did not happen");
    }
}

/// Case 10: clients that reset before the server accepts them (ECONNABORTED on BSDs; on Linux
/// accept returns them and the first recv fails): the server continues.
#[test]
fn connections_reset_before_accept_are_survived() {
    for model in models() {
        let mut server = Server::start(&model, &["--quiet", "--backlog", "64"]);
        // Keep a one-at-a-time server busy so the next clients wait in the accept queue.
        let mut busy = connect(server.addr);
        assert_eq!(echo_on(&mut busy, b"busy"), b"busy");
        for _ in 0..20 {
            let s = connect(server.addr);
            (&s).write_all(b"never read").unwrap();
            reset(s);
        }
        drop(busy);
        server.assert_echoes(b"served after the aborted ones");
        assert!(server.alive(), "[{}] died", model.name);
        server.finish();
    }
}

/// The accept-error policy itself: what a server survives and what ends it.
#[test]
fn accept_error_policy() {
    use std::sync::Arc;
    let sink: socklab::echo::Sink = Arc::new(|_: &socklab::echo::Event<'_>| {});
    for errno in [libc::ECONNABORTED, libc::EPROTO, libc::EPERM, libc::EMFILE, libc::ENFILE, libc::ENOBUFS] {
        let err = std::io::Error::from_raw_os_error(errno);
        assert!(socklab::echo::accept::survive_accept_error(err, &sink).is_ok(), "errno {errno}");
    }
    for errno in [libc::EBADF, libc::EINVAL, libc::ENOTSOCK] {
        let err = std::io::Error::from_raw_os_error(errno);
        assert!(socklab::echo::accept::survive_accept_error(err, &sink).is_err(), "errno {errno}");
    }
}

/// Case 11: slow clients. An idle client is closed after --idle-timeout; a client dribbling a
/// byte every 100 ms (never idle) is closed by --max-conn-time; neither holds the server.
#[test]
fn slow_clients_are_closed_by_the_limits() {
    for model in models() {
        let server = Server::start(&model, &["--quiet", "--idle-timeout", "300ms", "--max-conn-time", "1s"]);
        // Idle: one echo, then silence.
        let mut idle = connect(server.addr);
        assert_eq!(echo_on(&mut idle, b"x"), b"x");
        let started = Instant::now();
        let mut rest = Vec::new();
        let _ = idle.read_to_end(&mut rest); // EOF (or reset) when the server gives up
        let waited = started.elapsed();
        assert!(rest.is_empty() && waited >= Duration::from_millis(250), "[{}] closed after {waited:?}", model.name);
        // Dribbler: a byte every 100 ms keeps it from ever being idle for 300 ms.
        let mut dribbler = connect(server.addr);
        let started = Instant::now();
        // Another client meanwhile: a concurrent model serves it now; the iterative one queues it
        // until the dribbler is cut off (its idle clock starts at accept, so it is served then).
        let mut other = connect(server.addr);
        if !model.one_at_a_time() {
            assert_eq!(echo_on(&mut other, b"not starved"), b"not starved", "[{}]", model.name);
        }
        let mut closed = false;
        for _ in 0..100 {
            if dribbler.write_all(b".").is_err() {
                closed = true;
                break;
            }
            let mut b = [0u8; 1];
            match dribbler.read(&mut b) {
                Ok(1) => {}
                _ => {
                    closed = true;
                    break;
                }
            }
            thread::sleep(Duration::from_millis(100)); // the dribble itself, not synchronisation
        }
        let lasted = started.elapsed();
        assert!(closed, "[{}] the dribbler was never closed ({lasted:?})", model.name);
        assert!(lasted >= Duration::from_millis(900), "[{}] closed after only {lasted:?}", model.name);
        let lines = server.out.wait_for("--max-conn-time", 1, Duration::from_secs(5));
        assert!(!lines.is_empty(), "[{}] no max-conn-time line: {}", model.name, server.out.dump());
        assert!(!server.out.matching("--idle-timeout").is_empty(), "[{}] {}", model.name, server.out.dump());
        if model.one_at_a_time() {
            assert_eq!(echo_on(&mut other, b"not starved"), b"not starved", "[{}]", model.name);
        }
        drop(other);
        server.assert_echoes(b"after the slow ones");
        server.finish();
    }
}

/// Case 12: --max-conns N: at most N served at once, the rest wait in the listen queue (as
/// documented) and are served when a slot frees; the served ones keep being served.
#[test]
fn connection_cap_queues_the_rest() {
    const CAP: usize = 2;
    for model in models() {
        let server = Server::start(&model, &["--quiet", "--max-conns", &CAP.to_string()]);
        let expect_served = if model.one_at_a_time() { 1 } else { CAP };
        let mut clients: Vec<TcpStream> = (0..CAP + 2).map(|_| connect(server.addr)).collect();
        for c in &mut clients {
            c.write_all(b"?").unwrap();
        }
        // Who gets an answer within 500 ms? (Generous for the served ones; the others must wait.)
        let mut served = Vec::new();
        for (i, c) in clients.iter_mut().enumerate() {
            c.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
            let mut b = [0u8; 1];
            if c.read(&mut b).is_ok_and(|n| n == 1) {
                served.push(i);
            }
            c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        }
        assert_eq!(served.len(), expect_served, "[{}] served {served:?}", model.name);
        // The served ones keep being served.
        for &i in &served {
            assert_eq!(echo_on(&mut clients[i], b"again"), b"again", "[{}]", model.name);
        }
        // Close the served ones: every waiting client gets its echo.
        let waiting: Vec<TcpStream> =
            clients.into_iter().enumerate().filter(|(i, _)| !served.contains(i)).map(|(_, c)| c).collect();
        for mut c in waiting {
            c.shutdown(Shutdown::Write).unwrap();
            let mut got = Vec::new();
            c.read_to_end(&mut got).unwrap();
            assert_eq!(got, b"?", "[{}]", model.name);
            // (Dropping each one frees the slot for the next on a one-at-a-time server.)
        }
        server.finish();
    }
}

/// Case 13: SIGINT / SIGTERM during live connections end the server within 1 s, exit 0, and
/// every connection is closed — with `--grace 0s` (stop at once). The default grace period is
/// covered in `hardening.rs`.
#[test]
fn signals_stop_the_server_promptly_with_live_connections() {
    for model in models() {
        for signal in ["INT", "TERM"] {
            let server = Server::start(&model, &["--quiet", "--grace", "0s"]);
            let mut live = connect(server.addr);
            assert_eq!(echo_on(&mut live, b"live"), b"live");
            live.write_all(&pattern(1 << 20, 13)).unwrap(); // mid-stream
            let mut queued = connect(server.addr);
            queued.write_all(b"queued").unwrap();
            let name = model.name.clone();
            let (status, took, server) = server.stop_with(signal, Duration::from_secs(10));
            eprintln!("[{name}] SIG{signal} with live connections: exit in {took:?}");
            assert!(status.success(), "[{name}] SIG{signal}: {status:?}; {}", server.err.dump());
            assert!(took < Duration::from_secs(1), "[{name}] SIG{signal}: took {took:?}");
            // The connections were closed: reads end (EOF, or a reset for data the server never
            // read) instead of hanging until the 20 s read timeout.
            for s in [&mut live, &mut queued] {
                let mut sink = Vec::new();
                match s.read_to_end(&mut sink) {
                    Ok(_) => {}
                    Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "[{name}] SIG{signal}: {e}"),
                }
            }
            // And the listener is gone: nobody is accepting on that port any more.
            let refused = TcpStream::connect(server.addr).map(|s| {
                let mut b = [0u8; 1];
                (&s).read(&mut b)
            });
            assert!(
                matches!(&refused, Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused),
                "[{name}] SIG{signal}: the port still accepts: {refused:?}"
            );
        }
    }
}

/// Case 14 (fork model only): no zombies after 500 connections, and children do not keep the
/// listening socket.
#[test]
fn fork_model_reaps_children_and_closes_the_listener_in_them() {
    let Some(model) = models().into_iter().find(|m| m.name == "fork") else {
        crate::common::skip("there is no fork model yet");
        return;
    };
    let server = Server::start(&model, &["--quiet", "--backlog", "128"]);
    let pid = server.pid();
    let listener_inode =
        harness::fds(pid).into_iter().map(|(_, t)| t).find(|t| t.starts_with("socket:")).expect("the listener's fd");
    // A child holding a connection: it must not have the listener.
    let mut held = connect(server.addr);
    assert_eq!(echo_on(&mut held, b"hold"), b"hold");
    let kids = harness::children(pid);
    assert!(!kids.is_empty(), "no child serves the held connection");
    for kid in &kids {
        let has = harness::fds(*kid).into_iter().any(|(_, t)| t == listener_inode);
        assert!(!has, "child {kid} still has the listener {listener_inode}");
    }
    drop(held);
    for i in 0..500u64 {
        let mut s = connect(server.addr);
        assert_eq!(echo_on(&mut s, &i.to_be_bytes()), i.to_be_bytes());
    }
    // All children exit; none is left a zombie (state Z) for long.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut left = harness::children(pid);
    while !left.is_empty() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
        left = harness::children(pid);
    }
    let states: Vec<_> = left.iter().map(|&p| (p, harness::stat_field(p, 3))).collect();
    assert!(left.is_empty(), "children left after 500 connections: {states:?}");
    server.finish();
}
