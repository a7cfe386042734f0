//! `--explain` on what is not TCP: UDP, AF_UNIX (stream and datagram) and the netlink socket of
//! `states` each get their own sentences. No SYN, no segment, no FIN where there is none; a UDP
//! connect is checked on the wire (tcpdump sees only the two datagrams).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::{have, socklab};

/// The sentence printed under the first narrated call named `call`.
fn sentence_after(text: &str, call: &str) -> String {
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.starts_with(&format!("{call}(")) {
            return lines.next().unwrap_or_default().trim().to_string();
        }
    }
    panic!("no {call} narrated in:\n{text}")
}

/// Sentences a TCP explanation uses and another family must not.
const TCP_WORDS: [&str; 5] = ["SYN", "TCP segment", "three-way", "FIN, so", "acknowledged by itself"];

fn assert_not_tcp(sentence: &str) {
    for word in TCP_WORDS {
        assert!(!sentence.contains(word), "{word:?} in a non-TCP explanation: {sentence}");
    }
}

fn serve(args: &[&str]) -> (Child, String) {
    let ready = common::ReadyFile::new();
    let mut child = socklab().args(["server", "--quiet"]).args(args).args(ready.args()).spawn().unwrap();
    let text = ready.text(&mut child);
    (child, text)
}

fn explain(args: &[&str]) -> String {
    let out = socklab().args(["client", "--trace", "--explain"]).args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "client failed: {err}");
    err
}

#[test]
fn udp_connect_sends_nothing_and_says_so() {
    let (mut server, addr) = serve(&["--udp", "--host", "127.0.0.1", "--port", "0"]);
    let port = addr.trim().rsplit(':').next().unwrap().to_string();
    // The wire, when tcpdump is at hand: exactly our datagram and its echo, nothing at connect.
    let mut dump = have("tcpdump").then(|| {
        let mut d = Command::new("tcpdump")
            .args(["-i", "lo", "-nn", "-l", "-U", "--immediate-mode", "-c", "2"])
            .arg(format!("udp port {port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = BufReader::new(d.stderr.take().unwrap());
        let mut line = String::new();
        while !line.contains("listening on") && err.read_line(&mut line).unwrap_or(0) > 0 {}
        d
    });
    let text = explain(&["--udp", "--host", "127.0.0.1", "--port", &port]);
    let _ = server.kill();
    let _ = server.wait();
    let connect = sentence_after(&text, "connect");
    assert!(connect.contains("No packet was sent") && connect.contains("UDP"), "{connect}");
    let send = sentence_after(&text, "sendto");
    assert!(send.contains("one UDP datagram") && send.contains("Nothing acknowledges it"), "{send}");
    let recv = sentence_after(&text, "recvfrom");
    assert!(recv.contains("one datagram of 5 bytes"), "{recv}");
    for s in [connect, send, recv, sentence_after(&text, "close")] {
        assert_not_tcp(&s);
    }
    if let Some(d) = dump.as_mut() {
        let mut out = String::new();
        std::io::Read::read_to_string(d.stdout.as_mut().unwrap(), &mut out).unwrap();
        let _ = d.wait();
        let packets: Vec<&str> = out.lines().collect();
        assert_eq!(packets.len(), 2, "{out}");
        assert!(packets[0].contains(&format!(".{port}: UDP, length 5")), "the first packet is our datagram: {out}");
        assert!(packets[1].contains("UDP, length 5"), "{out}");
    }
}

#[test]
fn unix_stream_and_datagram_have_no_wire() {
    let dir = std::env::temp_dir().join(format!("socklab-explain-family-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let stream = dir.join("s.sock").to_string_lossy().into_owned();
    let dgram = dir.join("d.sock").to_string_lossy().into_owned();
    let (a, _) = serve(&["--unix", &stream]);
    let (b, _) = serve(&["--unix", &dgram, "--dgram"]);

    let text = explain(&["--unix", &stream]);
    let connect = sentence_after(&text, "connect");
    assert!(connect.contains("AF_UNIX has no wire") && connect.contains("listener's queue"), "{connect}");
    let send = sentence_after(&text, "sendto");
    assert!(send.contains("straight into the peer socket's receive queue"), "{send}");
    let text_recv: Vec<&str> = text.lines().collect();
    let eof = text_recv
        .windows(2)
        .find(|w| w[0].starts_with("recvfrom(") && w[0].trim_end().ends_with("= 0"))
        .map(|w| w[1].trim().to_string())
        .expect("the client reads end of file");
    assert!(eof.contains("end of file") && eof.contains("AF_UNIX sends no FIN"), "{eof}");
    for s in [connect, send, sentence_after(&text, "recvfrom"), eof] {
        assert_not_tcp(&s);
    }

    let text = explain(&["--unix", &dgram, "--dgram"]);
    let connect = sentence_after(&text, "connect");
    assert!(connect.contains("Nothing was sent") && connect.contains("datagram"), "{connect}");
    let close = sentence_after(&text, "close");
    assert!(close.contains("no connection") && !close.contains("end-of-file"), "{close}");
    for s in [connect, sentence_after(&text, "sendto"), sentence_after(&text, "recvfrom"), close] {
        assert_not_tcp(&s);
    }
    for mut server in [a, b] {
        let _ = server.kill();
        let _ = server.wait();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_netlink_socket_of_states_asks_the_kernel() {
    let out = socklab().args(["states", "--trace", "--explain"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    let send = sentence_after(&text, "sendto");
    assert!(send.contains("request") && send.contains("to the kernel") && send.contains("no network"), "{send}");
    let recv = sentence_after(&text, "recvfrom");
    assert!(recv.contains("netlink messages"), "{recv}");
    assert_not_tcp(&send);
    assert_not_tcp(&recv);
}
