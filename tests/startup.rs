//! How many system calls `strace -f` shows before socklab's first `socket()`: at most 30 for
//! `server` and `client`, so a student finds the socket calls at once. Counted on the binary cargo
//! built for the tests: the debug profile, linked the same way as the release build (on glibc both
//! are static-pie, `.cargo/config.toml`: no dynamic loader runs before `main`). A dynamic build
//! costs about 50 (the loader maps libc, libm and libgcc_s first).

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

#[test]
fn at_most_30_calls_before_the_first_socket() {
    if !have("strace") {
        common::skip("needs strace");
        return;
    }
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_socklab"));
    let server = ["server", "--host", "127.0.0.1", "--port", "0", "--quiet"];
    // A client with nobody listening still makes its socket() call first.
    let client = ["client", "--host", "127.0.0.1", "--port", "1"];
    // The hosts .cargo/config.toml links statically; elsewhere the loader's calls come first. A
    // RUSTFLAGS in cargo's environment (even empty) replaces the config's rustflags, crt-static too.
    let config_host =
        cfg!(all(target_os = "linux", target_env = "gnu", any(target_arch = "x86_64", target_arch = "aarch64")));
    let overridden = option_env!("RUSTFLAGS").is_some();
    if !config_host || overridden {
        let why =
            if overridden { "RUSTFLAGS replaced .cargo/config.toml's flags" } else { "no crt-static for this host" };
        let note = format!("note: this build is dynamic ({why}): held to 60 calls before socket(), not 30\n");
        let _ = std::io::Write::write_all(&mut std::io::stderr(), note.as_bytes());
        assert!(before_socket(&bin, &server) <= 60);
        assert!(before_socket(&bin, &client) <= 60);
        return;
    }
    assert!(
        cfg!(target_feature = "crt-static") && !common::is_dynamic(&bin),
        "{} is linked dynamically: the default build should be static here (.cargo/config.toml)",
        bin.display()
    );
    assert!(before_socket(&bin, &server) <= 30, "server: more than 30 calls before socket()");
    assert!(before_socket(&bin, &client) <= 30, "client: more than 30 calls before socket()");
}

/// The build names its target (see `.cargo/config.toml`), so cargo puts the binary under
/// `target/<host tuple>/<profile>/`; `build.rs` leaves a symlink at the usual
/// `target/<profile>/socklab`, which the README and students use. It must lead to this build.
#[test]
fn the_usual_path_leads_to_the_binary() {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_socklab"));
    let profile_dir = bin.parent().expect("the profile directory");
    let tuple_dir = profile_dir.parent().expect("the tuple directory");
    let named_target = tuple_dir.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.matches('-').count() >= 2);
    if !named_target {
        common::skip("this build has no named target directory (no symlink is needed)");
        return;
    }
    let usual = tuple_dir.parent().unwrap().join(profile_dir.file_name().unwrap()).join("socklab");
    let resolved = std::fs::canonicalize(&usual).unwrap_or_else(|e| panic!("{}: {e}", usual.display()));
    assert_eq!(resolved, std::fs::canonicalize(&bin).unwrap(), "{} leads elsewhere", usual.display());
}

/// The concurrent models' default backlog is the kernel's somaxconn: `strace -f` shows the file
/// opened once (the CLI used to read it, then bind read it again).
#[test]
fn somaxconn_is_read_once() {
    if !have("strace") {
        common::skip("needs strace");
        return;
    }
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_socklab"));
    for model in ["fork", "thread", "epoll"] {
        let dir = std::env::temp_dir().join(format!("socklab-somaxconn-{}-{model}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("strace.log");
        let ready = ReadyFile::new();
        let mut cmd = Command::new("strace");
        cmd.args(["-f", "-qq", "-e", "trace=openat", "-o"]).arg(&log).arg(&bin);
        cmd.args(["server", "--model", model, "--host", "127.0.0.1", "--port", "0", "--quiet"]).args(ready.args());
        let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let _ = ready.wait(&mut child);
        let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", child.id())).unwrap();
        signal(children.split_whitespace().next().unwrap().parse().unwrap(), "INT");
        let _ = child.wait();
        let text = std::fs::read_to_string(&log).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let opens = text.lines().filter(|l| l.contains("/proc/sys/net/core/somaxconn")).count();
        assert_eq!(opens, 1, "--model {model}: somaxconn opened {opens} times:\n{text}");
    }
}

/// The epoll model sizes its thread pool from the CPUs the kernel lets it run on: one narrated
/// `sched_getaffinity`, the same line in `--trace` as in `strace -f`, and no cgroup file read
/// behind the narration's back (std's `available_parallelism` opens `/proc/self/cgroup`).
#[test]
fn the_cpu_count_is_one_narrated_call() {
    if !have("strace") {
        common::skip("needs strace");
        return;
    }
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_socklab"));
    let dir = std::env::temp_dir().join(format!("socklab-affinity-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (log, narration) = (dir.join("strace.log"), dir.join("narration.log"));
    let ready = ReadyFile::new();
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-qq", "-o"]).arg(&log).arg(&bin);
    cmd.args(["server", "--model", "epoll", "--host", "127.0.0.1", "--port", "0", "--trace"]).args(ready.args());
    let stderr = std::fs::File::create(&narration).unwrap();
    let mut child = cmd.stdout(Stdio::null()).stderr(stderr).spawn().unwrap();
    let _ = ready.wait(&mut child);
    let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", child.id())).unwrap();
    signal(children.split_whitespace().next().unwrap().parse().unwrap(), "INT");
    let _ = child.wait();
    let traced = std::fs::read_to_string(&log).unwrap();
    let told = std::fs::read_to_string(&narration).unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    // strace's own line, `PID sched_getaffinity(0, 128, [0 1]) = 32`, split or not by -f.
    // Only the call itself (the narration's own write(2) quotes its name too).
    let calls: Vec<&str> = traced
        .lines()
        .filter(|l| l.split_whitespace().nth(1).is_some_and(|c| c.starts_with("sched_getaffinity(") || c == "<..."))
        .filter(|l| l.contains("sched_getaffinity"))
        .collect();
    let joined = calls.join(" ");
    let args = joined.split("sched_getaffinity(").nth(1).expect("strace shows no sched_getaffinity");
    let mask = args.split('[').nth(1).and_then(|s| s.split(']').next()).expect("no CPU list in strace's line");
    let result = joined.rsplit("= ").next().unwrap().trim();
    let line = told.lines().find(|l| l.contains("sched_getaffinity(")).expect("--trace narrates no sched_getaffinity");
    assert!(
        line.contains(&format!("sched_getaffinity(0, 128, [{mask}])"))
            && line.trim_end().ends_with(&format!("= {result}")),
        "narrated {line:?}, strace saw {joined:?}"
    );
    assert_eq!(told.matches("sched_getaffinity(").count(), 1, "asked more than once:\n{told}");
    assert!(
        !traced.contains("/proc/self/cgroup") && !traced.contains("/sys/fs/cgroup"),
        "a cgroup file was read:\n{traced}"
    );
}
