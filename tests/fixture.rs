//! The library fixtures (`socklab::fixture`): an echo server and a faulty proxy, each fault observed
//! from a real client over loopback. Timing is asserted loosely: a fault that delays must delay at
//! least its configured time (the kernel cannot deliver early); upper bounds are generous.
#![cfg(target_os = "linux")]

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use socklab::fixture::{EchoServer, Fault, Proxy};

fn fault(spec: &str) -> Fault {
    spec.parse().unwrap_or_else(|e| panic!("{e}"))
}

fn connect(server: &EchoServer) -> TcpStream {
    let stream = TcpStream::connect(server.local_addr()).expect("connect to the fixture");
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream
}

/// Sends `msg` and reads exactly its length back.
fn echo(stream: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    stream.write_all(msg).unwrap();
    let mut back = vec![0u8; msg.len()];
    stream.read_exact(&mut back).expect("the whole echo");
    back
}

/// Waits until `check` holds, at most 20 s (a healthy run takes milliseconds).
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < until, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn two_clients_at_once_both_get_their_echo_and_stats_count_them() {
    let server = EchoServer::builder().spawn().unwrap();
    let (mut a, mut b) = (connect(&server), connect(&server));
    // b is served while a is still connected: the iterative model would leave b waiting.
    assert_eq!(echo(&mut b, b"second"), b"second");
    assert_eq!(echo(&mut a, b"first"), b"first");
    // The proxy counts a send after it returns, which may be after the client read the bytes.
    eventually("all 11 bytes are counted", || server.stats().bytes_out == 11);
    let stats = server.stats();
    assert_eq!((stats.accepted, stats.open, stats.bytes_in, stats.bytes_out), (2, 2, 11, 11));
    assert_eq!(stats.faults_applied, 0);
    drop((a, b));
    eventually("both connections are closed", || server.stats().open == 0);
    server.shutdown().unwrap();
}

#[test]
fn latency_delays_the_echo_by_at_least_its_time() {
    let server = EchoServer::builder().fault(fault("latency=200ms")).spawn().unwrap();
    let mut client = connect(&server);
    let start = Instant::now();
    assert_eq!(echo(&mut client, b"Hello"), b"Hello");
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(200), "echo after {took:?}, before the 200 ms latency");
    assert!(took < Duration::from_secs(15), "echo after {took:?}");
    assert_eq!(server.stats().faults_applied, 1);
}

#[test]
fn bandwidth_spreads_the_echo_over_time() {
    // 10,000 bytes at 20 kB/s: at least 0.4 s for the tail (the first 100 ms slice leaves at once).
    let server = EchoServer::builder().fault(fault("bandwidth=20kb")).spawn().unwrap();
    let mut client = connect(&server);
    let msg = vec![7u8; 10_000];
    let start = Instant::now();
    assert_eq!(echo(&mut client, &msg), msg);
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(400), "10 kB at 20 kB/s took only {took:?}");
}

#[test]
fn slicer_makes_short_reads_that_a_read_loop_reassembles() {
    let server = EchoServer::builder().fault(fault("slicer=3b:20ms")).spawn().unwrap();
    let mut client = connect(&server);
    client.write_all(b"Hello, slicer").unwrap();
    // With 20 ms between slices, each read returns what arrived so far: one slice, never more.
    let mut sizes = Vec::new();
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while got.len() < 13 {
        let n = client.read(&mut buf).unwrap();
        assert!(n > 0, "closed early");
        sizes.push(n);
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"Hello, slicer");
    assert!(sizes.len() >= 3, "13 bytes in slices of 3 came in only {} reads: {sizes:?}", sizes.len());
    assert!(sizes.iter().all(|&n| n <= 6), "a read returned more than two slices: {sizes:?}");
}

#[test]
fn limit_data_closes_after_that_many_bytes() {
    let server = EchoServer::builder().fault(fault("limit_data=4b")).spawn().unwrap();
    let mut client = connect(&server);
    client.write_all(b"Hello").unwrap();
    let mut got = Vec::new();
    client.read_to_end(&mut got).expect("an orderly close after the limit");
    assert_eq!(got, b"Hell");
}

#[test]
fn reset_peer_after_bytes_resets_the_client() {
    let server = EchoServer::builder().fault(fault("downstream:reset_peer=after=5b")).spawn().unwrap();
    let mut client = connect(&server);
    client.write_all(b"Hello, reset").unwrap();
    let mut got = Vec::new();
    let err = client.read_to_end(&mut got).expect_err("a reset, not a clean end of stream");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    assert!(got.len() <= 5, "{got:?}");
}

#[test]
fn reset_peer_after_a_delay_resets_an_idle_client() {
    let server = EchoServer::builder().fault(fault("reset_peer=100ms")).spawn().unwrap();
    let mut client = connect(&server);
    let start = Instant::now();
    let err = client.read(&mut [0u8; 8]).expect_err("a reset");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    assert!(start.elapsed() >= Duration::from_millis(90), "reset after only {:?}", start.elapsed());
}

#[test]
fn timeout_stops_forwarding_then_closes() {
    let server = EchoServer::builder().fault(fault("timeout=300ms")).spawn().unwrap();
    let mut client = connect(&server);
    let start = Instant::now();
    client.write_all(b"Hello").unwrap();
    let mut got = Vec::new();
    client.read_to_end(&mut got).expect("closed after the timeout");
    assert!(got.is_empty(), "bytes got through a timeout: {got:?}");
    assert!(start.elapsed() >= Duration::from_millis(250), "closed after only {:?}", start.elapsed());
}

#[test]
fn timeout_zero_holds_the_connection_open() {
    let server = EchoServer::builder().fault(fault("timeout")).spawn().unwrap();
    let mut client = connect(&server);
    client.write_all(b"Hello").unwrap();
    client.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let err = client.read(&mut [0u8; 8]).expect_err("no echo and no close");
    assert_eq!(err.kind(), ErrorKind::WouldBlock, "{err}");
    assert_eq!(server.stats().open, 1);
}

#[test]
fn slow_close_delays_the_fin() {
    let server = EchoServer::builder().fault(fault("slow_close=300ms")).spawn().unwrap();
    let mut client = connect(&server);
    assert_eq!(echo(&mut client, b"Hello"), b"Hello");
    client.shutdown(Shutdown::Write).unwrap();
    let start = Instant::now();
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    assert!(start.elapsed() >= Duration::from_millis(250), "FIN after only {:?}", start.elapsed());
}

#[test]
fn half_open_neither_echoes_nor_closes() {
    let server = EchoServer::builder().fault(fault("both:half_open")).spawn().unwrap();
    let mut client = connect(&server);
    client.write_all(b"Hello").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    client.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    // Not even the FIN is passed on: the connection stays as a cut cable leaves it.
    let err = client.read(&mut [0u8; 8]).expect_err("no echo, no FIN");
    assert_eq!(err.kind(), ErrorKind::WouldBlock, "{err}");
    assert_eq!(server.stats().bytes_out, 0);
}

#[test]
fn refuse_stops_accepting_until_healed() {
    let server = EchoServer::builder().backlog(1).fault(fault("refuse")).spawn().unwrap();
    // The kernel completes the handshake (the backlog has room) but nobody accepts: no echo.
    let mut waiting = connect(&server);
    waiting.write_all(b"Hello").unwrap();
    waiting.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let err = waiting.read(&mut [0u8; 8]).expect_err("no echo while refusing");
    assert_eq!(err.kind(), ErrorKind::WouldBlock, "{err}");
    assert_eq!(server.stats().accepted, 0);
    // Healed: the queued connection is accepted and its bytes echoed.
    server.set_faults([]);
    waiting.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut back = [0u8; 5];
    waiting.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"Hello");
    assert_eq!(server.stats().accepted, 1);
}

#[test]
fn set_faults_changes_an_open_connection() {
    let server = EchoServer::builder().spawn().unwrap();
    let mut client = connect(&server);
    assert_eq!(echo(&mut client, b"before"), b"before");
    server.set_faults([fault("limit_data=0b")]);
    eventually("the fault was applied", || server.stats().faults_applied == 1);
    client.write_all(b"after").unwrap();
    let mut got = Vec::new();
    client.read_to_end(&mut got).expect("closed by the new limit");
    assert!(got.is_empty(), "{got:?}");
}

#[test]
fn probability_zero_never_applies_and_full_always_does() {
    let never = EchoServer::builder().fault(fault("limit_data=0b@0%")).spawn().unwrap();
    let always = EchoServer::builder().fault(fault("reset_peer=after=1b@100%")).spawn().unwrap();
    for _ in 0..20 {
        let mut client = connect(&never);
        assert_eq!(echo(&mut client, b"ok"), b"ok");
    }
    assert_eq!(never.stats().faults_applied, 0);
    let mut client = connect(&always);
    client.write_all(b"ok").unwrap();
    let err = client.read_to_end(&mut Vec::new()).expect_err("reset");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
}

#[test]
fn probability_half_applies_to_some_connections_but_not_all() {
    let server = EchoServer::builder().fault(fault("limit_data=0b@50%")).spawn().unwrap();
    let mut echoed = 0;
    for _ in 0..60 {
        let mut client = connect(&server);
        // Without the fault the echo comes back; with it the proxy closes at once (a write or the
        // shutdown may then fail: only what comes back counts).
        let _ = client.write_all(b"x");
        let _ = client.shutdown(Shutdown::Write);
        let mut got = Vec::new();
        let _ = client.read_to_end(&mut got);
        echoed += usize::from(got == b"x");
    }
    // P(all 60 the same) = 2^-59: never in practice.
    assert!(echoed > 0 && echoed < 60, "{echoed} of 60 echoed");
    assert_eq!(server.stats().faults_applied as usize, 60 - echoed);
}

#[test]
fn proxy_passes_a_large_stream_both_ways_byte_exact() {
    let service = EchoServer::builder().spawn().unwrap();
    let proxy = Proxy::builder(service.local_addr()).fault(fault("upstream:slicer=1000b~500b")).spawn().unwrap();
    let mut client = TcpStream::connect(proxy.local_addr()).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let msg: Vec<u8> = (0..2_000_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let writer = {
        let mut client = client.try_clone().unwrap();
        let msg = msg.clone();
        thread::spawn(move || {
            client.write_all(&msg).unwrap();
            client.shutdown(Shutdown::Write).unwrap();
        })
    };
    let mut got = Vec::new();
    client.read_to_end(&mut got).unwrap();
    writer.join().unwrap();
    assert!(got == msg, "{} bytes back of {}", got.len(), msg.len());
    assert_eq!(proxy.stats().bytes_in, msg.len() as u64);
}

#[test]
fn proxy_to_a_closed_port_closes_the_client() {
    // A port nothing listens on: bind, read the port, close.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let proxy = Proxy::builder(free).spawn().unwrap();
    let mut client = TcpStream::connect(proxy.local_addr()).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut got = Vec::new();
    let _ = client.read_to_end(&mut got); // EOF or reset: either way, not a hang
    assert!(got.is_empty());
    eventually("the link is gone", || proxy.stats().open == 0);
}

#[test]
fn refuse_fills_the_backlog_then_connects_time_out() {
    let server = EchoServer::builder().backlog(1).fault(fault("refuse")).spawn().unwrap();
    // listen(1): the kernel queues a connection or two, then drops further SYNs; a connect then
    // hears nothing (its SYN is retried after 1 s, after our 300 ms limit).
    let mut held = Vec::new();
    let timed_out =
        (0..10).find_map(|_| match TcpStream::connect_timeout(&server.local_addr(), Duration::from_millis(300)) {
            Ok(stream) => {
                held.push(stream);
                None
            }
            Err(e) => Some(e),
        });
    let err = timed_out.expect("a connect that times out once the backlog is full");
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(!held.is_empty() && held.len() <= 3, "{} connections completed before the first drop", held.len());
    assert_eq!(server.stats().accepted, 0);
}

#[test]
fn named_faults_are_added_updated_and_removed_on_an_open_connection() {
    let server = EchoServer::builder().fault(fault("limit_data=1mb")).spawn().unwrap();
    let names: Vec<String> = server.faults().into_iter().map(|(name, _)| name).collect();
    assert_eq!(names, ["limit_data_downstream"], "the builder's fault gets Toxiproxy's default name");
    let mut client = connect(&server);
    assert_eq!(echo(&mut client, b"plain"), b"plain");

    server.add_fault("slow", fault("latency=1s")).unwrap();
    let err = server.add_fault("slow", fault("latency=1ms")).expect_err("the name is taken");
    assert!(err.to_string().contains("'slow'"), "{err}");
    let start = Instant::now();
    assert_eq!(echo(&mut client, b"late"), b"late");
    assert!(start.elapsed() >= Duration::from_secs(1), "added latency applies to the open connection");

    server.update_fault("slow", fault("latency=0ms")).unwrap();
    let start = Instant::now();
    assert_eq!(echo(&mut client, b"quick"), b"quick");
    assert!(start.elapsed() < Duration::from_secs(1), "the updated latency applies to the next chunk");

    assert_eq!(server.remove_fault("slow").unwrap(), fault("latency=0ms"));
    assert!(server.remove_fault("slow").is_err(), "removed once");
    assert!(server.update_fault("nothing", fault("latency=1ms")).is_err(), "unknown name");
    assert_eq!(server.faults().len(), 1, "the other fault stays");
    assert_eq!(echo(&mut client, b"again"), b"again");

    drop(client);
    let stats = server.wait_for(|s| s.open == 0, Duration::from_secs(20)).expect("the closed client is counted");
    assert_eq!((stats.accepted, stats.open), (1, 0));
    let not_yet = server.wait_for(|s| s.accepted == 2, Duration::from_millis(50));
    assert_eq!(not_yet.expect_err("nobody else connected").accepted, 1);
    server.shutdown().unwrap();
}
