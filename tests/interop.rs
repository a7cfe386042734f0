//! Interop with an independent peer: the tutorial's own server.py and client.py (ported to Python 3)
//! against socklab's client and server.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{ServerProcess, have, hosts, socklab};

fn python_ok() -> bool {
    if have("python3") {
        return true;
    }
    common::skip("python3 is not installed (.ci/run installs it)");
    false
}

fn peer(script: &str) -> String {
    format!("{}/tests/peers/{script}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn tutorial_python_client_against_socklab_server() {
    if !python_ok() {
        return;
    }
    for host in hosts() {
        let server = ServerProcess::start(host, &["--quiet"]);
        for message in ["Hello", "a longer message than ten bytes, echoed in chunks", "你好, socket"] {
            let out = Command::new("python3")
                .args([&peer("tutorial_client.py"), host, &server.addr.port().to_string(), message])
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{host} {message:?}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
            assert!(stdout.ends_with("Closing connection to the server\n"), "{stdout}");
        }
    }
}

#[test]
fn socklab_client_against_tutorial_python_server() {
    if !python_ok() {
        return;
    }
    for host in hosts() {
        let mut py = Command::new("python3")
            .args([&peer("tutorial_server.py"), host, "0", "2"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(py.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let port = first.rsplit(' ').next().unwrap().to_string();
        for message in ["Hello", "0123456789abcdefghijklmnopqrstuvwxyz"] {
            let out =
                socklab().args(["client", "--host", host, "--port", &port, "--message", message]).output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{host}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
            let echoed: String =
                stdout.lines().filter_map(|l| l.strip_prefix("Client Received: ")).collect::<Vec<_>>().concat();
            assert_eq!(echoed, message);
        }
        assert!(py.wait().unwrap().success(), "the Python server should exit after its two clients");
        let server_lines: Vec<String> = lines.map(|l| l.unwrap()).collect();
        assert_eq!(server_lines.iter().filter(|l| l.as_str() == "Server Recv Over").count(), 2, "{server_lines:?}");
    }
}
