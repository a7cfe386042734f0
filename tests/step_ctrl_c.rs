//! `--step` on a real terminal (a pty made by python3's `pty` module): Ctrl-C always ends the
//! program within 2 s — at a prompt (exit status 130, as a shell reports a Ctrl-C), and while a
//! stepped call blocks (the server's own stop, then exit 0) — and the prompt says so.

mod common;

use std::process::Command;

/// Runs ARGS on a pty: presses Enter at each `[step] next:` prompt until the output holds `until`
/// and `extra` more prompts were answered, then waits 0.3 s and sends Ctrl-C. Prints
/// `STATUS <exit code or -signal> <seconds from Ctrl-C to exit>` (or `STATUS none`), then the output.
const DRIVER: &str = r#"
import os, pty, select, sys, time
until, extra, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(args[0], args)
out = b''
def read(t):
    global out
    end = time.time() + t
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.02)
        if r:
            try:
                d = os.read(fd, 65536)
            except OSError:
                return
            if not d:
                return
            out += d
answered = 0
found_at = None
deadline = time.time() + 30
while time.time() < deadline:
    read(0.05)
    prompts = out.count(b'[step] next:')
    if found_at is None and until.encode() in out:
        found_at = answered
    if found_at is not None and answered >= found_at + extra:
        break
    if prompts > answered:
        os.write(fd, b'\r')
        answered += 1
read(0.3)
start = time.time()
os.write(fd, b'\x03')
status = None
while time.time() - start < 10:
    read(0.02)
    done, st = os.waitpid(pid, os.WNOHANG)
    if done == pid:
        status = os.WEXITSTATUS(st) if os.WIFEXITED(st) else -os.WTERMSIG(st)
        break
if status is None:
    os.kill(pid, 9)
    print('STATUS none')
else:
    print('STATUS %d %.3f' % (status, time.time() - start))
sys.stdout.write(out.decode(errors='replace'))
"#;

/// (exit status, seconds to exit after Ctrl-C, output), or `None` (skipped: no python3).
fn run(until: &str, extra: usize, args: &[&str]) -> Option<(i32, f64, String)> {
    if !common::have("python3") {
        common::skip("python3 is not installed (.ci/run installs it)");
        return None;
    }
    let out = Command::new("python3")
        .args(["-c", DRIVER, until, &extra.to_string(), env!("CARGO_BIN_EXE_socklab")])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let first = text.lines().next().unwrap_or("").to_string();
    let fields: Vec<&str> = first.split_whitespace().collect();
    match fields.as_slice() {
        ["STATUS", code, secs] => Some((code.parse().unwrap(), secs.parse().unwrap(), text)),
        _ => panic!(
            "{args:?}: the program did not end within 10 s of Ctrl-C:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

fn port() -> String {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string()
}

#[test]
fn ctrl_c_at_a_step_prompt_ends_the_server() {
    let port = port();
    let Some((status, secs, out)) = run("socket(", 1, &["server", "--step", "--port", &port]) else { return };
    assert!(out.contains("(press Enter to make it; Ctrl-C ends the program)"), "{out}");
    assert_eq!(status, 130, "{out}");
    assert!(secs < 2.0, "ended {secs} s after Ctrl-C:\n{out}");
    assert!(out.contains("[step] Ctrl-C: ending the program"), "{out}");
}

#[test]
fn ctrl_c_while_a_stepped_accept_blocks_stops_the_server() {
    let port = port();
    // The prompt before accept4, answered: the server then blocks in accept.
    let Some((status, secs, out)) = run("accept4(", 1, &["server", "--step", "--port", &port]) else { return };
    assert_eq!(status, 0, "{out}");
    assert!(secs < 2.0, "ended {secs} s after Ctrl-C:\n{out}");
    assert!(out.contains("Server stopped"), "{out}");
}

#[test]
fn ctrl_c_at_a_prompt_ends_a_server_with_a_signal_thread() {
    let port = port();
    let args = ["server", "--step", "--port", &port, "--model", "thread"];
    let Some((status, secs, out)) = run("listen(", 3, &args) else { return };
    assert_eq!(status, 130, "{out}");
    assert!(secs < 2.0, "ended {secs} s after Ctrl-C:\n{out}");
}
