//! Issue 25, "safe to leave running", met the way an attacker or a long unattended run meets it:
//! a symbolic link planted where socklab writes, a second server taking a live Unix path, a forged
//! datagram that would make a UDP echo server answer itself, clients that never read or leave
//! through a fault, and a log nobody reads.

mod common;

use std::io::Read;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::socklab;

/// A directory of the test's own, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("socklab-leave-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        Dir(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Someone who can write to the ready file's directory plants `PATH.tmp -> victim` (the name
/// socklab used to write through). The server must leave the victim alone and still publish its
/// address at PATH, as a regular file.
#[test]
fn a_planted_link_beside_the_ready_file_is_not_written_through() {
    let dir = Dir::new("ready");
    let victim = dir.0.join("victim");
    std::fs::write(&victim, b"precious\n").unwrap();
    let ready = dir.0.join("ready");
    std::os::unix::fs::symlink(&victim, dir.0.join("ready.tmp")).unwrap();
    for command in [
        &["server", "--host", "127.0.0.1", "--port", "0", "--quiet"][..],
        &["proxy", "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:9"][..],
    ] {
        let _ = std::fs::remove_file(&ready);
        let mut child = socklab()
            .args(command)
            .arg("--ready-file")
            .arg(&ready)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let until = std::time::Instant::now() + common::READY_LIMIT;
        while !ready.exists() {
            if let Some(status) = child.try_wait().unwrap() {
                let mut err = String::new();
                child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
                panic!("{command:?} exited ({status}) before writing its ready file: {err}");
            }
            assert!(std::time::Instant::now() < until, "{command:?} wrote no ready file");
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious\n", "{command:?} wrote through the planted link");
        let meta = std::fs::symlink_metadata(&ready).unwrap();
        assert!(meta.file_type().is_file(), "{command:?}: the ready file is a regular file");
        let text = std::fs::read_to_string(&ready).unwrap();
        assert!(text.trim_end().parse::<std::net::SocketAddr>().is_ok(), "{command:?} wrote {text:?}");
        // Nothing but the test's own three names and no leftover temporary file.
        let mut names: Vec<_> = std::fs::read_dir(&dir.0).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, ["ready", "ready.tmp", "victim"], "{command:?} left a temporary file behind");
    }
}
