//! `socklab proxy --api` driven by Toxiproxy's own published client libraries, installed from
//! their registries into `target/toxiproxy-clients/` (toxiproxy-python from PyPI,
//! toxiproxy-node-client from npm; `.ci/run` installs them first). The scripts in
//! `tests/toxiproxy/` create a proxy in front of a real echo server, add, update and remove
//! latency, see reset_peer, limit_data and timeout act, disable and enable the proxy, reset, and
//! check the error codes of bad requests. A test skips, saying why, only when its registry or
//! interpreter is unavailable.
#![cfg(target_os = "linux")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use socklab::fixture::EchoServer;

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/toxiproxy-clients")
}

/// Runs an install command unless `marker` exists; `Err` with the reason when it fails.
fn install(marker: &Path, mut cmd: Command) -> Result<(), String> {
    if marker.exists() {
        return Ok(());
    }
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() && marker.exists() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(format!("{cmd:?} failed ({}): {}", out.status, err.lines().last().unwrap_or("")))
    }
}

/// Starts the API and an echo server, runs `program script` with API and ECHO set, and checks
/// that it passed.
fn drive(program: &str, script: &str, env: (&str, &Path)) {
    let service = EchoServer::builder().spawn().unwrap();
    let ready = common::ReadyFile::new();
    let mut api = common::socklab()
        .args(["proxy", "--api", "127.0.0.1:0"])
        .args(ready.args())
        .stdout(Stdio::null())
        .spawn()
        .expect("start socklab proxy --api");
    let addr = ready.wait(&mut api);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/toxiproxy").join(script);
    let out = Command::new("timeout")
        .arg("120")
        .arg(program)
        .arg(&script)
        .env("API", addr.to_string())
        .env("ECHO", service.local_addr().to_string())
        .env(env.0, env.1)
        .stdin(Stdio::null())
        .output()
        .expect("run the client script");
    let _ = api.kill();
    let _ = api.wait();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{program} {}: {}\n{stdout}\n{stderr}", script.display(), out.status);
    assert!(stdout.contains("all checks passed"), "{stdout}\n{stderr}");
}

#[test]
fn toxiproxy_python_drives_the_api() {
    if !common::have("python3") {
        return common::skip("python3 is not installed");
    }
    let dir = clients_dir().join("python");
    let mut pip = Command::new("python3");
    pip.args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target"])
        .arg(&dir)
        .arg("toxiproxy-python==0.1.1");
    if let Err(why) = install(&dir.join("toxiproxy/__init__.py"), pip) {
        return common::skip(&format!("toxiproxy-python could not be installed from PyPI: {why}"));
    }
    drive("python3", "python_client.py", ("PYTHONPATH", &dir));
}

#[test]
fn toxiproxy_node_client_drives_the_api() {
    if !common::have("node") || !common::have("npm") {
        return common::skip("node or npm is not installed");
    }
    let dir = clients_dir().join("node");
    let mut npm = Command::new("npm");
    npm.args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
        .arg(&dir)
        .arg("toxiproxy-node-client@4.1.0");
    if let Err(why) = install(&dir.join("node_modules/toxiproxy-node-client/package.json"), npm) {
        return common::skip(&format!("toxiproxy-node-client could not be installed from npm: {why}"));
    }
    drive("node", "node_client.js", ("NODE_PATH", &dir.join("node_modules")));
}
