//! How many system calls `strace -f` shows before socklab's first `socket()`: at most 30 for
//! `server` and `client` in the statically linked release build (`cargo build-static`, built here
//! if missing), so a student finds the socket calls at once. The default (dynamic) build is
//! measured too and held to its own bound: the dynamic loader alone costs about 30 calls there.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::{ReadyFile, have, signal};

/// Calls before the first `socket(` in `strace -f` output of `bin args`.
fn before_socket(bin: &std::path::Path, args: &[&str]) -> usize {
    let dir = std::env::temp_dir().join(format!("socklab-startup-{}-{}", std::process::id(), args[0]));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("strace.log");
    let ready = ReadyFile::new();
    let mut cmd = Command::new("strace");
    // cargo test points LD_LIBRARY_PATH at target/: the loader would search it, as no user run does.
    cmd.env_remove("LD_LIBRARY_PATH").args(["-f", "-qq", "-o"]).arg(&log).arg(bin).args(args);
    let server = args[0] == "server";
    if server {
        cmd.args(ready.args());
    }
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    if server {
        let _ = ready.wait(&mut child);
        let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", child.id())).unwrap();
        signal(children.split_whitespace().next().unwrap().parse().unwrap(), "INT");
    }
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let lines: Vec<&str> = text.lines().filter(|l| !l.contains("+++") && !l.contains("---")).collect();
    let n = lines.iter().position(|l| l.contains(" socket(")).expect("no socket() call at all");
    if n > 30 {
        eprintln!("{}", lines[..n].join("\n"));
    }
    eprintln!("{}: {n} calls before socket()", args.join(" "));
    n
}

fn static_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SOCKLAB_STATIC_BIN") {
        return Some(p.into());
    }
    if !(cfg!(target_os = "linux") && cfg!(target_env = "gnu") && cfg!(target_arch = "x86_64")) {
        return None;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new(env!("CARGO")).arg("build-static").current_dir(&root).status().unwrap();
    assert!(status.success(), "cargo build-static failed");
    Some(root.join("target/x86_64-unknown-linux-gnu/release/socklab"))
}

#[test]
fn at_most_30_calls_before_the_first_socket() {
    if !have("strace") {
        common::skip("needs strace");
        return;
    }
    let dynamic = PathBuf::from(env!("CARGO_BIN_EXE_socklab"));
    let server = ["server", "--host", "127.0.0.1", "--port", "0", "--quiet"];
    // A client with nobody listening still makes its socket() call first.
    let client = ["client", "--host", "127.0.0.1", "--port", "1"];
    assert!(before_socket(&dynamic, &server) <= 56);
    assert!(before_socket(&dynamic, &client) <= 56);
    let Some(bin) = static_bin() else {
        common::skip("the static build: x86_64 glibc only");
        return;
    };
    assert!(before_socket(&bin, &server) <= 30, "server: more than 30 calls before socket()");
    assert!(before_socket(&bin, &client) <= 30, "client: more than 30 calls before socket()");
}
