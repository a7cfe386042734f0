//! `socklab proxy --api`: Toxiproxy's HTTP API, driven over plain HTTP/1.1 from a std TcpStream
//! (the client libraries' own tests are in toxiproxy_clients.rs). The proxies forward to a real
//! echo server (the library fixture); every effect is seen from a real client.
#![cfg(target_os = "linux")]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use socklab::fixture::EchoServer;
use socklab::timeline::json::{self, Value};

struct Api {
    child: Child,
    addr: SocketAddr,
}

impl Api {
    fn start() -> Api {
        Api::start_with(&[])
    }

    fn start_with(extra: &[&str]) -> Api {
        let ready = common::ReadyFile::new();
        let mut child = common::socklab()
            .args(["proxy", "--api", "127.0.0.1:0"])
            .args(extra)
            .args(ready.args())
            .stdout(Stdio::null())
            .spawn()
            .expect("start socklab proxy --api");
        let addr = ready.wait(&mut child);
        Api { child, addr }
    }

    /// One request; returns the status and the body parsed as JSON (`Null` when empty).
    fn call(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        let mut stream = TcpStream::connect(self.addr).expect("connect to the API");
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("the whole answer");
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no header end in {answer:?}"));
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{head}"));
        let value = if body.trim().is_empty() { Value::Null } else { json::parse(body).expect("a JSON body") };
        (status, value)
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_else(|| panic!("no string {key} in {value:?}"))
}

fn echo_through(addr: SocketAddr, msg: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    stream.write_all(msg)?;
    let mut back = vec![0u8; msg.len()];
    stream.read_exact(&mut back)?;
    Ok(back)
}

#[test]
fn proxies_and_toxics_are_made_changed_and_removed_through_the_api() {
    let service = EchoServer::builder().spawn().unwrap();
    let api = Api::start();
    let (status, version) = api.call("GET", "/version", "");
    assert_eq!(status, 200);
    assert!(text(&version, "version").starts_with("socklab-"));

    let create = format!(r#"{{"name": "echo", "listen": "127.0.0.1:0", "upstream": "{}"}}"#, service.local_addr());
    let (status, proxy) = api.call("POST", "/proxies", &create);
    assert_eq!(status, 201, "{proxy:?}");
    assert_eq!(proxy.get("enabled"), Some(&Value::Bool(true)));
    let listen: SocketAddr = text(&proxy, "listen").parse().expect("the bound address");
    assert_eq!(echo_through(listen, b"plain").unwrap(), b"plain");
    let (status, err) = api.call("POST", "/proxies", &create);
    assert_eq!((status, err.get("status")), (409, Some(&Value::Int(409))), "{err:?}");

    let (status, toxic) =
        api.call("POST", "/proxies/echo/toxics", r#"{"type": "latency", "attributes": {"latency": 1000}}"#);
    assert_eq!(status, 200, "{toxic:?}");
    assert_eq!(text(&toxic, "name"), "latency_downstream");
    let start = Instant::now();
    assert_eq!(echo_through(listen, b"late").unwrap(), b"late");
    assert!(start.elapsed() >= Duration::from_secs(1), "the latency delays the echo");
    let (status, toxic) =
        api.call("POST", "/proxies/echo/toxics/latency_downstream", r#"{"attributes": {"latency": 0}}"#);
    assert_eq!((status, toxic.get("attributes").and_then(|a| a.get("latency"))), (200, Some(&Value::Int(0))));
    let start = Instant::now();
    assert_eq!(echo_through(listen, b"quick").unwrap(), b"quick");
    assert!(start.elapsed() < Duration::from_secs(1), "the update took effect");

    // Bad requests: Toxiproxy's codes and a message naming what was wrong.
    let cases = [
        ("POST", "/proxies/echo/toxics", "{not json", 400, "bad request body"),
        ("POST", "/proxies/echo/toxics", r#"{"type": "gremlin"}"#, 400, "invalid toxic type: gremlin"),
        (
            "POST",
            "/proxies/echo/toxics",
            r#"{"type": "latency", "attributes": {"latency": "1s"}}"#,
            400,
            "attributes.latency",
        ),
        ("POST", "/proxies/echo/toxics", r#"{"type": "latency", "stream": "sideways"}"#, 400, "stream was invalid"),
        ("GET", "/proxies/ghost", "", 404, "proxy not found: ghost"),
        ("DELETE", "/proxies/echo/toxics/ghost", "", 404, "toxic not found: ghost"),
        ("POST", "/proxies", r#"{"name": "x"}"#, 400, "missing required field: upstream"),
    ];
    for (method, path, body, want, message) in cases {
        let (status, err) = api.call(method, path, body);
        assert_eq!(status, want, "{method} {path} {body}: {err:?}");
        assert!(text(&err, "error").contains(message), "{method} {path}: {err:?}");
    }
    let taken = format!(r#"{{"name": "twin", "listen": "{listen}", "upstream": "{}"}}"#, service.local_addr());
    let (status, err) = api.call("POST", "/proxies", &taken);
    assert_eq!(status, 500, "port in use: {err:?}");
    assert!(text(&err, "error").contains("EADDRINUSE"), "{err:?}");
    assert_eq!(echo_through(listen, b"still").unwrap(), b"still", "the other proxy keeps serving");

    // Disabled: the listener is closed, so connects are refused; enabled again on the same port.
    let (status, proxy) = api.call("POST", "/proxies/echo", r#"{"enabled": false}"#);
    assert_eq!((status, proxy.get("enabled")), (200, Some(&Value::Bool(false))));
    let err = TcpStream::connect(listen).expect_err("disabled");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    let (status, _) = api.call("POST", "/proxies/echo", r#"{"enabled": true}"#);
    assert_eq!(status, 200);
    assert_eq!(echo_through(listen, b"back").unwrap(), b"back");

    // reset: enabled, and no toxics.
    api.call("POST", "/proxies/echo/toxics", r#"{"type": "timeout", "attributes": {"timeout": 0}}"#);
    api.call("POST", "/proxies/echo", r#"{"enabled": false}"#);
    let (status, _) = api.call("POST", "/reset", "");
    assert_eq!(status, 204);
    let (_, proxy) = api.call("GET", "/proxies/echo", "");
    assert_eq!(proxy.get("enabled"), Some(&Value::Bool(true)));
    assert_eq!(proxy.get("toxics"), Some(&Value::Array(vec![])));
    assert_eq!(echo_through(listen, b"healed").unwrap(), b"healed");

    let (status, _) = api.call("DELETE", "/proxies/echo", "");
    assert_eq!(status, 204);
    let (_, all) = api.call("GET", "/proxies", "");
    assert_eq!(all, Value::Object(vec![]));
    assert!(TcpStream::connect(listen).is_err(), "a deleted proxy's listener is closed");
}

#[test]
fn config_makes_toxiproxys_proxies_before_the_api_answers() {
    let service = EchoServer::builder().spawn().unwrap();
    let dir = common::ReadyFile::new();
    let config = dir.path.with_file_name("toxiproxy.json");
    let up = service.local_addr();
    let json = format!(
        r#"[{{"name": "on", "listen": "127.0.0.1:0", "upstream": "{up}"}},
            {{"name": "off", "listen": "127.0.0.1:0", "upstream": "{up}", "enabled": false}}]"#
    );
    std::fs::write(&config, json).unwrap();
    let api = Api::start_with(&["--config", config.to_str().unwrap()]);
    let (status, all) = api.call("GET", "/proxies", "");
    assert_eq!(status, 200);
    let on = all.get("on").expect("proxy 'on'");
    assert_eq!(all.get("off").and_then(|p| p.get("enabled")), Some(&Value::Bool(false)));
    let listen: SocketAddr = text(on, "listen").parse().unwrap();
    assert_eq!(echo_through(listen, b"configured").unwrap(), b"configured");
}

/// Sends raw bytes on a new connection (then closes its writing side when `close` says so) and
/// returns everything the API answered until it closed.
fn raw(addr: SocketAddr, bytes: &[u8], close: bool) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect to the API");
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream.write_all(bytes).unwrap();
    if close {
        stream.shutdown(std::net::Shutdown::Write).unwrap();
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// What a client states about its request is bounded before anything is read or allocated for
/// it: a body declared at 93 GB (the HTTP server the API used before allocated the declared rest
/// of a body it had not read, and aborted), a head without end, a body cut short. Each gets an
/// answer or a close, and the API goes on answering.
#[test]
fn the_api_bounds_what_a_client_declares_and_keeps_answering() {
    let api = Api::start();
    let huge = raw(api.addr, b"POST /proxies HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\nx", true);
    assert!(huge.starts_with("HTTP/1.1 413 "), "{huge}");
    assert!(huge.contains("larger than 1 MiB"), "{huge}");
    let big_head = format!("GET /version HTTP/1.1\r\nX-Filler: {}\r\n", "y".repeat(64 << 10));
    let answer = raw(api.addr, big_head.as_bytes(), true);
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    let cut = raw(api.addr, b"POST /proxies HTTP/1.1\r\nContent-Length: 50\r\n\r\n{\"name\"", true);
    assert!(cut.starts_with("HTTP/1.1 400 "), "{cut}");
    assert!(cut.contains("ended"), "{cut}");
    let garbage = raw(api.addr, b"\x16\x03\x01\x02\x00 hello\r\n\r\n", true);
    assert!(garbage.starts_with("HTTP/1.1 400 "), "{garbage}");
    let (status, version) = api.call("GET", "/version", "");
    assert_eq!(status, 200, "the API still answers: {version:?}");
}

/// One connection carries several requests in turn (keep-alive, as the client libraries use it),
/// a chunked body is read whole, and a client that stalls half-way through its request holds
/// up only its own connection.
#[test]
fn the_api_serves_keep_alive_chunked_bodies_and_clients_side_by_side() {
    let api = Api::start();
    // Half a request, left hanging on its own connection.
    let mut stalled = TcpStream::connect(api.addr).unwrap();
    stalled.write_all(b"POST /proxies HTTP/1.1\r\nContent-Length: 40\r\n\r\n{\"na").unwrap();

    let (first, second) = (r#"{"name": ""#, r#"c", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"}"#);
    let chunked = format!(
        "POST /proxies HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{first}\r\n{:x};ext=1\r\n{second}\r\n0\r\n\r\n",
        first.len(),
        second.len()
    );
    let two = format!("{chunked}GET /proxies/c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let answer = raw(api.addr, two.as_bytes(), false);
    let statuses: Vec<&str> = answer.lines().filter(|l| l.starts_with("HTTP/1.1 ")).collect();
    assert_eq!(statuses, ["HTTP/1.1 201 Created", "HTTP/1.1 200 OK"], "{answer}");
    assert!(answer.contains("\"name\":\"c\""), "{answer}");
    let (status, _) = api.call("GET", "/version", "");
    assert_eq!(status, 200);
    drop(stalled);
}
