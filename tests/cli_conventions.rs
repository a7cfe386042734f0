//! The command line's conventions, held against the real binary and the real tools: `--help` is
//! grouped under headings, a flag a command would ignore is refused, every duration takes the same
//! units, and the completion scripts and man pages made from the same definitions work in bash
//! and man.

mod common;

use std::process::{Output, Stdio};

use common::{have, signal, socklab};

fn run(args: &[&str]) -> Output {
    socklab().args(args).stdin(Stdio::null()).output().expect("run socklab")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_is_grouped_under_headings_in_one_order() {
    // Each command's headings, in the order `--help` shows them.
    for (command, headings) in [
        ("server", &["What to serve:", "How:", "Limits:", "Output:", "Observing:"][..]),
        ("client", &["What to reach:", "How:", "Limits:", "Output:", "Observing:"][..]),
        ("states", &["Which sockets:", "Output:", "Observing:"][..]),
    ] {
        let out = run(&[command, "--help"]);
        assert!(out.status.success(), "{command} --help: {out:?}");
        let help = text(&out.stdout);
        let at: Vec<usize> = headings
            .iter()
            .map(|h| help.lines().position(|l| l == *h).unwrap_or_else(|| panic!("{command}: no {h}\n{help}")))
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{command}: headings out of order {at:?}\n{help}");
        // The global flags sit under Observing, not among the family flags.
        let observing = &help.lines().skip(at[at.len() - 1]).collect::<Vec<_>>().join("\n");
        for flag in ["--trace", "--explain", "--step"] {
            assert!(observing.contains(flag), "{command}: {flag} not under Observing\n{help}");
        }
    }
    let out = run(&["server", "--help"]);
    let help = text(&out.stdout);
    let section = |from: &str, to: &str| {
        let start = help.find(from).unwrap();
        help[start..start + help[start..].find(to).unwrap()].to_string()
    };
    assert!(section("What to serve:", "How:").contains("--unix"), "{help}");
    assert!(section("Limits:", "Output:").contains("--grace"), "{help}");
    assert!(section("Output:", "Observing:").contains("--ready-file"), "{help}");
}

/// Refused, exit 2, one message naming the flag, and nothing run.
fn assert_refused(args: &[&str], flag: &str) {
    let out = run(args);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.starts_with("socklab: ") && err.contains(flag), "{args:?} should name {flag}: {err}");
    assert!(out.stdout.is_empty(), "{args:?} printed {:?}", text(&out.stdout));
}

#[test]
fn flags_a_command_would_ignore_are_refused() {
    assert_refused(&["walkthrough", "--step"], "--step");
    assert_refused(&["--step", "walkthrough"], "--step");
    assert_refused(&["walkthrough", "--time-limit", "5s"], "--clients");
    assert_refused(&["walkthrough", "--ascii"], "--diagram");
    assert_refused(&["draw", "session.jsonl", "--ascii", "--svg", "x.svg"], "--ascii");
    assert_refused(&["completions", "bash", "--trace"], "--trace");
    assert_refused(&["man", "--explain"], "--explain");
    assert_refused(&["server", "--port", "0", "--threads", "2"], "--threads");
    assert_refused(&["server", "--port", "0", "--model", "poll", "--threads", "2"], "--threads");
    assert_refused(&["server", "--port", "0", "--model", "epoll", "--accept-delay", "1s"], "--accept-delay");
    for flag in ["--backlog", "--max-conns"] {
        assert_refused(&["server", "--port", "0", "--udp", flag, "3"], flag);
    }
    for flag in ["--idle-timeout", "--max-conn-time"] {
        assert_refused(&["server", "--unix", "@socklab-conventions", "--dgram", flag, "1s"], flag);
    }
    // The messages say what to do instead.
    let err = text(&run(&["walkthrough", "--step"]).stderr);
    assert!(err.contains("does not apply") && err.contains("socklab server --step"), "{err}");
}

#[test]
fn every_duration_flag_takes_the_same_units() {
    // Each flag parses `1.5s`, `250ms` and a bare `2`; clap reports the first bad argument in
    // order, so an error naming the later `--no-such-flag` proves the duration before it was
    // accepted.
    let flags: &[(&str, &str)] = &[
        ("server", "--grace"),
        ("server", "--accept-delay"),
        ("server", "--idle-timeout"),
        ("server", "--max-conn-time"),
        ("client", "--timeout"),
        ("walkthrough", "--accept-delay"),
        ("bench", "--duration"),
        ("netns", "--unplug-after"),
    ];
    for (command, flag) in flags {
        if run(&[command, "--help"]).status.code() != Some(0) {
            common::skip(&format!("no {command} command on this platform"));
            continue;
        }
        for value in ["1.5s", "250ms", "2", "1m"] {
            let out = run(&[command, flag, value, "--no-such-flag"]);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{command} {flag} {value}: {err}");
            assert!(
                err.contains("unexpected argument '--no-such-flag'"),
                "{command} {flag} {value} was refused: {err}"
            );
        }
        for bad in ["5x", "-1s", "2 days"] {
            let out = run(&[command, &format!("{flag}={bad}")]);
            let err = text(&out.stderr);
            assert!(out.status.code() == Some(2) && err.contains(flag), "{command} {flag} {bad}: {err}");
        }
    }
}

/// `bench --duration 200ms` runs a real benchmark (it used to take bare seconds only).
#[test]
fn bench_takes_a_duration_with_a_unit() {
    if run(&["bench", "--help"]).status.code() != Some(0) {
        common::skip("no bench command on this platform");
        return;
    }
    let (mut server, addr) = common::quiet_server();
    let out = run(&["bench", "--addr", &addr.to_string(), "--duration", "200ms", "--json"]);
    signal(server.id(), "INT");
    let _ = server.wait();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The load ran about 200 ms (measured, so not exactly), not 200 s or 200 us.
    let json = text(&out.stdout);
    let seconds: f64 = json.split("\"seconds\":").nth(1).and_then(|r| r.split(',').next()).unwrap().parse().unwrap();
    assert!((0.15..10.0).contains(&seconds), "{json}");
}

#[test]
fn bash_completion_sources_cleanly_and_completes_commands() {
    if !have("bash") {
        common::skip("needs bash");
        return;
    }
    let out = run(&["completions", "bash"]);
    assert!(out.status.success());
    let dir = std::env::temp_dir().join(format!("socklab-completions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("socklab.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    // What bash does on `socklab ser<TAB>`: the registered function, called with COMP_WORDS set.
    let complete = |line: &str| -> (String, String) {
        let words: Vec<&str> = line.split(' ').collect();
        let program = format!(
            r#"set -u
source {script} || exit 9
spec=$(complete -p socklab) || exit 8
echo "spec: $spec" >&2
fn=$(printf '%s\n' "$spec" | sed -n 's/.*-F \([^ ]*\).*/\1/p')
COMP_WORDS=({words})
COMP_CWORD={cword}
COMP_LINE='{line}'
COMP_POINT={point}
"$fn" socklab '{current}' '{previous}'
printf '%s\n' "${{COMPREPLY[@]}}""#,
            script = script.display(),
            words = words.join(" "),
            cword = words.len() - 1,
            point = line.len(),
            current = words[words.len() - 1],
            previous = words[words.len() - 2],
        );
        let out = std::process::Command::new("bash").args(["--norc", "-c", &program]).output().unwrap();
        assert!(out.status.success(), "{line}: {}", text(&out.stderr));
        (text(&out.stdout), text(&out.stderr))
    };
    let (got, err) = complete("socklab ser");
    assert_eq!(got.split_whitespace().collect::<Vec<_>>(), ["server"], "{err}");
    assert!(err.contains("-F "), "complete -p: {err}");
    let (got, _) = complete("socklab server --gr");
    assert_eq!(got.split_whitespace().collect::<Vec<_>>(), ["--grace"]);
    let (got, _) = complete("socklab completions ");
    let words: Vec<&str> = got.split_whitespace().filter(|w| !w.starts_with('-')).collect();
    assert_eq!(words, ["bash", "zsh", "fish"]);
    // Hidden flags (internal, test hooks) are not offered, as --help does not show them.
    let (got, _) = complete("socklab server --");
    assert!(got.contains("--grace") && !got.contains("--trace-machine") && !got.contains("--interrupt-every"), "{got}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn zsh_and_fish_completions_parse_in_their_shells() {
    for (shell, check) in [("zsh", &["-n"][..]), ("fish", &["--no-execute"][..])] {
        let out = run(&["completions", shell]);
        assert!(out.status.success() && !out.stdout.is_empty(), "{shell}: {out:?}");
        assert!(text(&out.stdout).contains("server"), "{shell}: the script does not name the commands");
        if !have(shell) {
            common::skip(&format!("{shell} is not installed: its script was generated, not parsed"));
            continue;
        }
        let dir = std::env::temp_dir().join(format!("socklab-{shell}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("socklab");
        std::fs::write(&file, &out.stdout).unwrap();
        let parsed = std::process::Command::new(shell).args(check).arg(&file).output().unwrap();
        assert!(parsed.status.success(), "{shell} {check:?}: {}", text(&parsed.stderr));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn man_pages_render_with_man() {
    if !have("man") {
        common::skip("needs man (apt-get install man-db)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("socklab-man-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = run(&["man", "--dir", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // `socklab man` alone prints the same socklab.1.
    let printed = run(&["man"]);
    assert_eq!(printed.stdout, std::fs::read(dir.join("socklab.1")).unwrap());
    let render = |page: &str| -> String {
        let out = std::process::Command::new("man")
            .arg("--warnings")
            .arg(format!("./{page}"))
            .current_dir(&dir)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .env("LC_ALL", "C.UTF-8")
            .output()
            .unwrap();
        assert!(out.status.success(), "man ./{page}: {}", text(&out.stderr));
        assert!(out.stderr.is_empty(), "man ./{page} warned: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let main = render("socklab.1");
    assert!(main.contains("SUBCOMMANDS") && main.contains("socklab-server(1)"), "{main}");
    assert!(main.contains("--trace"), "{main}");
    let server = render("socklab-server.1");
    for part in ["WHAT TO SERVE", "LIMITS", "--grace", "--ready-file", "Faults (--fault, repeatable)"] {
        assert!(server.contains(part), "socklab-server(1) lacks {part}:\n{server}");
    }
    assert!(render("socklab-client.1").contains("--timeout"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts `socklab server --port 0 ARGS`, reads its listening line, and returns it with the port.
fn server_on_free_port(args: &[&str]) -> (std::process::Child, u16) {
    use std::io::BufRead;
    let mut child = socklab()
        .args(["server", "--host", "127.0.0.1", "--port", "0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    let port = line.split_whitespace().nth(3).and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("{line:?}"));
    (child, port)
}

/// After Ctrl-C the server says, on stderr and at once, how many connections it waits for and
/// for how long — the tutorial's one-thread server and the threaded models alike — and nothing
/// when none is open.
#[test]
fn the_grace_period_is_announced_on_stderr() {
    use std::io::Read;
    for (model, clients) in [("iterative", 1), ("epoll", 3)] {
        let (mut server, port) = server_on_free_port(&["--model", model, "--grace", "20s"]);
        let held: Vec<std::net::TcpStream> =
            (0..clients).map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap()).collect();
        // Each connection echoed once: the server has accepted and is serving all of them.
        for mut c in &held {
            use std::io::Write;
            c.write_all(b"x").unwrap();
            let mut one = [0u8; 1];
            c.read_exact(&mut one).unwrap();
        }
        signal(server.id(), "INT");
        // The line comes while the connections are still open: read it before closing them.
        let mut err = server.stderr.take().unwrap();
        let mut seen = Vec::new();
        let mut byte = [0u8; 1];
        while !seen.ends_with(b"\n") && err.read(&mut byte).unwrap_or(0) == 1 {
            seen.push(byte[0]);
        }
        let plural = if clients == 1 { "" } else { "s" };
        assert_eq!(
            text(&seen),
            format!("stopping: {clients} connection{plural} finishing, up to 20s; Ctrl-C again to stop now\n"),
            "{model}"
        );
        drop(held); // the clients close: finished within the grace period
        let status = server.wait().unwrap();
        let mut out = String::new();
        server.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        assert!(status.success(), "{model}: {status}");
        assert!(out.contains(&format!("Server stopping: finished {clients}, cut 0")), "{model}: {out}");
    }
    // No connection open: the server stops at once and has nothing to announce.
    let (server, _) = server_on_free_port(&[]);
    signal(server.id(), "INT");
    let out = server.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}
