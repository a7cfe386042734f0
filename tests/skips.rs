//! A test that skips says so in a plain `cargo test` run, not only under `--nocapture`: libtest
//! captures `eprintln!` and shows it for failed tests alone, so a green run would hide that its
//! strace checks never ran. `common::skip` writes to the stderr handle itself, which is not
//! captured. Shown here by running one test of this binary again with a PATH that has no strace.

mod common;

use std::process::Command;

use common::{have, quiet_server, signal, skip, socklab};

/// A check that needs strace: the client's connect, as strace sees it.
#[test]
fn strace_sees_the_clients_connect() {
    if !have("strace") {
        return skip("needs strace");
    }
    let (mut server, addr) = quiet_server();
    let log = std::env::temp_dir().join(format!("socklab-skips-{}.strace", std::process::id()));
    let out = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=connect", "-o"])
        .arg(&log)
        .arg(socklab().get_program())
        .args(["client", "--host", "127.0.0.1", "--port", &addr.port().to_string(), "--quiet"])
        .output()
        .unwrap();
    signal(server.id(), "INT");
    let _ = server.wait();
    let trace = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    assert!(out.status.success(), "client: {}", String::from_utf8_lossy(&out.stderr));
    let expected = format!("connect(3, {{sa_family=AF_INET, sin_port=htons({}), ", addr.port());
    assert!(trace.contains(&expected) && trace.contains(") = 0"), "strace saw: {trace}");
}

#[test]
fn a_skip_shows_in_the_default_output() {
    // A PATH with `sh` (which `have` runs) and no strace.
    let dir = std::env::temp_dir().join(format!("socklab-skips-path-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::symlink("/bin/sh", dir.join("sh")).unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "strace_sees_the_clients_connect"])
        .env("PATH", &dir)
        // libtest's own defaults: capture on, a thread per test (named after it).
        .env_remove("RUST_TEST_NOCAPTURE")
        .env_remove("RUST_TEST_THREADS")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && stdout.contains("1 passed"), "{stdout}{stderr}");
    assert!(
        stderr.contains("SKIPPED skips::strace_sees_the_clients_connect: needs strace\n"),
        "the skip is not in the default output:\n--- stdout:\n{stdout}--- stderr:\n{stderr}"
    );
}
