//! `socklab states` reads the same kernel table as `ss -tan`: a connection waiting in the accept
//! queue shows as the listener's Recv-Q 1, and every row agrees with ss. TCP_INFO read with
//! getsockopt on our own socket agrees with what sock_diag reports for it.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{ServerProcess, have, hosts, socklab};
use socklab::timeline::json::{self, Value};

type Row = (String, u32, u32, SocketAddr, SocketAddr);

/// `ss`'s `0.0.0.0:*` / `[::]:*` / `[::ffff:127.0.0.1]:5000` → a SocketAddr (port `*` is 0).
fn ss_addr(text: &str) -> SocketAddr {
    let (ip, port) = text.rsplit_once(':').unwrap();
    let port = if port == "*" { "0" } else { port };
    let ip = if ip == "*" { "0.0.0.0" } else { ip };
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    format!("{}:{port}", if ip.contains(':') { format!("[{ip}]") } else { ip.to_string() }).parse().unwrap()
}

fn ss_rows(port: u16) -> Vec<Row> {
    let out = Command::new("ss").args(["-tanH"]).output().expect("run ss");
    let mut rows: Vec<Row> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 5 {
                return None;
            }
            let (local, remote) = (ss_addr(f[3]), ss_addr(f[4]));
            (local.port() == port || remote.port() == port)
                .then(|| (f[0].to_string(), f[1].parse().unwrap(), f[2].parse().unwrap(), local, remote))
        })
        .collect();
    rows.sort_by_key(|r| (r.3, r.4));
    rows
}

/// A string or integer member of one `states --json` line, as text (read with the crate's JSON reader).
fn field(line: &str, key: &str) -> String {
    let value = json::parse(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    match value.get(key) {
        Some(Value::Str(s)) => s.clone(),
        Some(Value::Int(n)) => n.to_string(),
        other => panic!("no string or integer {key:?} in {line}: {other:?}"),
    }
}

fn socklab_rows(port: u16) -> Vec<Row> {
    let out = socklab().args(["states", "--json", "--port", &port.to_string()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut rows: Vec<Row> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let n = |k| field(l, k).parse().unwrap();
            (
                field(l, "state"),
                n("recv_q"),
                n("send_q"),
                field(l, "local").parse().unwrap(),
                field(l, "remote").parse().unwrap(),
            )
        })
        .collect();
    rows.sort_by_key(|r| (r.3, r.4));
    rows
}

#[test]
fn states_show_the_accept_queue_and_agree_with_ss() {
    for host in hosts() {
        // The server sleeps before accept, so our connection stays in its accept queue.
        let server = ServerProcess::start(host, &["--accept-delay", "60s", "--backlog", "7"]);
        let port = server.addr.port();
        let client = TcpStream::connect(server.addr).unwrap();
        // The server's kernel queues the connection when it handles the handshake's last ACK,
        // which on loopback may be a moment after connect returned: look again until it shows.
        let until = Instant::now() + Duration::from_secs(10);
        let mut rows = socklab_rows(port);
        while !rows.iter().any(|r| r.0 == "LISTEN" && r.1 == 1) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
            rows = socklab_rows(port);
        }
        let listener = rows.iter().find(|r| r.0 == "LISTEN").expect("the listener");
        assert_eq!((listener.1, listener.2), (1, 7), "accept queue 1 of backlog 7: {rows:?}");
        let local = client.local_addr().unwrap();
        assert!(rows.iter().any(|r| r.0 == "ESTAB" && r.3 == local), "client row: {rows:?}");
        assert!(rows.iter().any(|r| r.0 == "ESTAB" && r.4 == local), "queued server-side row: {rows:?}");
        if have("ss") {
            assert_eq!(rows, ss_rows(port), "socklab states and ss -tan disagree");
        } else {
            common::skip("the ss comparison: ss (iproute2) is not installed");
        }
        drop(client);
    }
}

#[test]
fn tcp_info_of_own_socket_agrees_with_sock_diag() {
    let server = socklab::echo::ServerHandle::start_local().unwrap();
    let stream = socklab::TcpStream::connect(&server.addr()).unwrap();
    stream.send_all(b"Hello").unwrap();
    let mut buf = [0u8; 5];
    let mut got = 0;
    while got < 5 {
        got += stream.recv(&mut buf[got..]).unwrap();
    }
    let own = socklab::diag::tcp_info(stream.socket()).unwrap();
    assert!(own.snd_cwnd >= 1 && own.rtt_us > 0, "{own:?}");
    let local = stream.local_addr().unwrap();
    let mut diag = socklab::diag::Diag::open().unwrap();
    // Match both ends: an old TIME-WAIT record may have the same local port (and has no tcp_info).
    let peer = server.addr();
    let row = diag
        .dump(libc::AF_INET, true)
        .unwrap()
        .into_iter()
        .find(|s| s.local == local && s.remote == peer)
        .expect("our socket");
    let info = row.info.expect("tcp_info from sock_diag");
    assert_eq!(info.snd_cwnd, own.snd_cwnd);
    assert_eq!(info.total_retrans, own.total_retrans);
}

/// Every socket has its own cookie, and a connection keeps it into TIME-WAIT: the walkthrough
/// tells a new connection from an old TIME-WAIT record with the same ports by it.
#[test]
fn cookies_are_unique_and_survive_into_time_wait() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let client_addr = client.local_addr().unwrap();
    let (server, _) = listener.accept().unwrap();
    let mut diag = socklab::diag::Diag::open().unwrap();
    // Only this test's three sockets: the port may carry TIME-WAIT records of an earlier test that
    // had the same ephemeral port, which is exactly why the walkthrough needs cookies.
    let server_addr = server.local_addr().unwrap();
    let ours = |diag: &mut socklab::diag::Diag| -> Vec<socklab::diag::SockInfo> {
        let all = diag.dump(libc::AF_INET, false).unwrap();
        all.into_iter()
            .filter(|s| {
                (s.local.port() == port && s.state == socklab::diag::TcpState::Listen)
                    || (s.local == server_addr && s.remote == client_addr)
                    || (s.local == client_addr && s.remote == server_addr)
            })
            .collect()
    };
    let before = ours(&mut diag);
    assert_eq!(before.len(), 3, "listener, server and client: {before:?}");
    let mut cookies: Vec<u64> = before.iter().map(|s| s.cookie).collect();
    cookies.sort_unstable();
    cookies.dedup();
    assert_eq!(cookies.len(), 3, "three distinct cookies: {before:?}");
    assert!(cookies.iter().all(|&c| c != 0));
    let client_cookie = before.iter().find(|s| s.local == client_addr && s.remote == server_addr).unwrap().cookie;
    // The client closes first, so its side ends in TIME-WAIT.
    drop(client);
    let mut buf = [0u8; 1];
    assert_eq!(std::io::Read::read(&mut &server, &mut buf).unwrap(), 0);
    drop(server);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let after = ours(&mut diag);
        if let Some(tw) = after.iter().find(|s| s.local == client_addr && s.state == socklab::diag::TcpState::TimeWait)
        {
            assert_eq!(tw.cookie, client_cookie, "the TIME-WAIT record keeps the socket's cookie");
            break;
        }
        assert!(Instant::now() < deadline, "the client never reached TIME-WAIT: {after:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The first five columns of table lines (state, Recv-Q, Send-Q, local, peer) with `port` at
/// either end, sorted: the text both `ss -tanH` and `socklab states` print. TIME-WAIT rows are left
/// out: an earlier test's connection to a server that had this port may still be there.
fn table_rows(text: &str, port: u16) -> Vec<Vec<String>> {
    let at_port = |a: &str| a.rsplit_once(':').is_some_and(|(_, p)| p == port.to_string());
    let mut rows: Vec<Vec<String>> = text
        .lines()
        .map(|l| l.split_whitespace().take(5).map(str::to_string).collect::<Vec<_>>())
        .filter(|f| f.len() == 5 && f[0] != "TIME-WAIT" && (at_port(&f[3]) || at_port(&f[4])))
        .collect();
    rows.sort();
    rows
}

/// A dual-stack listener on `::` and an IPv4 client: `socklab states -6` shows the listener as
/// `*:PORT` and the accepted connection between IPv4-mapped addresses, `-4` the client's own
/// socket, each exactly as `ss -tan -6` / `ss -tan -4` print them.
#[test]
fn states_of_one_family_agree_with_ss_for_a_dual_stack_listener() {
    if !hosts().contains(&"::1") {
        common::skip("no IPv6 here");
        return;
    }
    if !have("ss") {
        common::skip("ss (iproute2) is not installed");
        return;
    }
    let server = ServerProcess::start("::", &["--v6only", "off", "--accept-delay", "60s", "-q"]);
    let port = server.addr.port();
    let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let local = client.local_addr().unwrap();
    let states = |flag: &str| {
        let out = socklab().args(["states", flag, "--port", &port.to_string()]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        table_rows(&String::from_utf8_lossy(&out.stdout), port)
    };
    let ss = |flag: &str| {
        let out = Command::new("ss").args(["-tanH", flag]).output().expect("run ss");
        table_rows(&String::from_utf8_lossy(&out.stdout), port)
    };
    // The handshake's last ACK may be handled a moment after connect returned: wait for the queue.
    let until = Instant::now() + Duration::from_secs(10);
    let mut v6 = states("-6");
    while !v6.iter().any(|r| r[0] == "LISTEN" && r[1] == "1") && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
        v6 = states("-6");
    }
    let mapped = format!("[::ffff:127.0.0.1]:{}", local.port());
    let expected_v6 = vec![
        vec!["ESTAB".into(), "0".into(), "0".into(), format!("[::ffff:127.0.0.1]:{port}"), mapped],
        vec!["LISTEN".into(), "1".into(), "5".into(), format!("*:{port}"), "*:*".into()],
    ];
    assert_eq!(v6, expected_v6);
    assert_eq!(v6, ss("-6"), "socklab states -6 and ss -tan -6 disagree");
    let v4 = states("-4");
    assert_eq!(v4, vec![vec!["ESTAB".into(), "0".into(), "0".into(), local.to_string(), format!("127.0.0.1:{port}")]]);
    assert_eq!(v4, ss("-4"), "socklab states -4 and ss -tan -4 disagree");
    drop(client);
    let (status, _, err) = server.terminate();
    assert!(status.success(), "{err}");
}
