//! The README's sample output is what the program prints: each checked block is run for real and
//! compared line by line, after one normalisation (ports become `PORT`, pids `PID`, times `+T`,
//! runs of spaces one space). A block that goes stale fails here, not in a student's terminal.

mod common;

use std::process::{Command, Stdio};

use common::{have, signal, socklab};

const README: &str = include_str!("../README.md");

/// The lines of the ```console block whose first line is `first`, without the fences and without
/// that command line.
fn block(first: &str) -> Vec<String> {
    let mut lines = README.lines().skip_while(|l| *l != first);
    assert!(lines.next().is_some(), "README.md has no block starting with {first:?}");
    lines.take_while(|l| !l.starts_with("```")).map(normal).collect()
}

/// The digits right after each `prefix` in `text`, replaced by `word`.
fn digits_after(text: &str, prefix: &str, word: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(prefix) {
        let after = i + prefix.len();
        let digits = rest[after..].find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len() - after);
        out.push_str(&rest[..after]);
        if digits > 0 {
            out.push_str(word);
        }
        rest = &rest[after + digits..];
    }
    out.push_str(rest);
    out
}

/// Ports, pids and times are whatever this run got; everything else must match.
fn normal(line: &str) -> String {
    let mut text = line.to_string();
    for (prefix, word) in [("htons(", "PORT"), ("listening ", "PORT"), ("[pid ", "PID")] {
        text = digits_after(&text, prefix, word);
    }
    // `127.0.0.1:41946` → `127.0.0.1:PORT`.
    let mut from = 0;
    while let Some(i) = text[from..].find(':').map(|i| from + i) {
        let end = text[i + 1..].find(|c: char| !c.is_ascii_digit()).map_or(text.len(), |e| i + 1 + e);
        if end > i + 1 && text[..i].ends_with(|c: char| c.is_ascii_digit() || c == ']') {
            text.replace_range(i + 1..end, "PORT");
        }
        from = i + 1;
    }
    // `+1.031504` at the start of a walkthrough line.
    if text.starts_with('+') && text[1..].starts_with(|c: char| c.is_ascii_digit()) {
        if let Some(sp) = text.find(' ') {
            text.replace_range(..sp, "+T");
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(normal).collect()
}

#[test]
fn normal_replaces_ports_pids_and_times() {
    assert_eq!(
        normal("+1.0  client  connect(3, {sin_port=htons(38223), x}, 16)   = 0  127.0.0.1:43302 [pid 42] [::1]:80"),
        "+T client connect(3, {sin_port=htons(PORT), x}, 16) = 0 127.0.0.1:PORT [pid PID] [::1]:PORT"
    );
    assert_eq!(
        normal("Server start, listening 44157 (on 127.0.0.1:44157)"),
        "Server start, listening PORT (on 127.0.0.1:PORT)"
    );
    assert_eq!(normal("sa_mask=[], x: 5"), "sa_mask=[], x: 5");
}

#[test]
fn demo_block_is_what_demo_prints() {
    let out = socklab().arg("demo").stderr(Stdio::inherit()).output().unwrap();
    assert!(out.status.success());
    assert_eq!(block("$ cargo run --release -- demo"), lines(&String::from_utf8_lossy(&out.stdout)));
}

/// The client under `strace -f -e trace=%network,close` with `--trace`: strace's line, then
/// socklab's. The dynamic loader's `close(3)`s before main are left out, as the README says.
#[test]
fn client_trace_block_is_what_strace_and_trace_print() {
    if !have("strace") {
        common::skip("needs strace");
        return;
    }
    let (mut server, addr) = common::quiet_server();
    let port = addr.port().to_string();
    // One pipe for both streams, so their lines interleave as in a terminal.
    let script = format!(
        "strace -f -e trace=%network,close '{}' client --trace --port {port} 2>&1",
        env!("CARGO_BIN_EXE_socklab")
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    signal(server.id(), "INT");
    let _ = server.wait();
    let text = String::from_utf8_lossy(&out.stdout);
    let got: Vec<String> = lines(&text).into_iter().skip_while(|l| !l.starts_with("rt_sigaction(SIGPIPE")).collect();
    assert_eq!(block("$ strace -f -e trace=%network,close socklab client --trace"), got, "full output:\n{text}");
}

/// The `--explain` sample shows the start of the output and ends with `...`.
#[test]
fn explain_block_is_the_start_of_what_explain_prints() {
    let out = socklab().args(["client", "--port", "1", "--explain"]).output().unwrap();
    let got = lines(&String::from_utf8_lossy(&out.stderr));
    let want = block("$ socklab client --port 1 --explain");
    assert_eq!(want.last().map(String::as_str), Some("..."));
    let shown = &want[..want.len() - 1];
    assert_eq!(shown, &got[..shown.len().min(got.len())]);
}

/// The walkthrough sample was recorded from a real run: each process makes the same calls (by name,
/// as many of each) in a new run. Compared as a multiset: the server's signal thread and main
/// thread interleave differently from run to run; segments and socket samples depend on timing.
#[test]
fn walkthrough_block_has_the_calls_a_real_run_makes() {
    let calls = |text: &str, side: &str| -> Vec<String> {
        text.lines()
            .map(normal)
            .filter_map(|l| {
                let mut words = l.splitn(3, ' ');
                let (_, who, rest) = (words.next()?, words.next()?, words.next()?);
                (who == side).then(|| rest.split('(').next().unwrap_or("").to_string())
            })
            .collect()
    };
    let out = socklab().args(["walkthrough"]).stderr(Stdio::null()).output().unwrap();
    assert!(out.status.success());
    let got = String::from_utf8_lossy(&out.stdout);
    let want = block("$ sudo target/release/socklab walkthrough").join("\n");
    for side in ["server", "client"] {
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        assert!(!calls(&want, side).is_empty(), "the README's sample has no {side} calls");
        assert_eq!(sorted(calls(&want, side)), sorted(calls(&got, side)), "{side}'s calls differ; this run:\n{got}");
    }
}
