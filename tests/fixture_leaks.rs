//! `socklab::fixture` leaves nothing behind: 1,000 spawn/drop cycles, and the process has the same
//! descriptors and threads as before. In a test binary of its own, with one test, so nothing else
//! in the process opens descriptors or starts threads while it counts.
#![cfg(target_os = "linux")]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use socklab::fixture::{EchoServer, Proxy};

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Threads:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_thousand_spawn_drop_cycles_leak_no_descriptors_or_threads() {
    let (fd0, th0) = (fds(), threads());
    for i in 0..1000 {
        let server = EchoServer::builder().fault("latency=1ms".parse().unwrap()).spawn().unwrap();
        if i % 10 == 0 {
            // Every tenth with a client still connected at the drop, through a second proxy.
            let proxy = Proxy::builder(server.local_addr()).spawn().unwrap();
            let mut client = TcpStream::connect(proxy.local_addr()).unwrap();
            client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            client.write_all(b"ping").unwrap();
            let mut back = [0u8; 4];
            client.read_exact(&mut back).unwrap();
            assert_eq!(&back, b"ping");
            drop(proxy);
            drop(server);
            drop(client);
        }
    }
    assert_eq!(fds(), fd0, "descriptors before and after 1,000 fixtures");
    assert_eq!(threads(), th0, "threads before and after 1,000 fixtures");
}
