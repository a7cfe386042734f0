//! The safe layer over real sockets: options read back what was set, conversions to and from std
//! keep the descriptor, close-on-exec is set, and dropping closes.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use socklab::{Domain, SockAddr, Socket, TcpListener, TcpStream, Type};

fn each_ip(f: impl Fn(SocketAddr)) {
    f("127.0.0.1:0".parse().unwrap());
    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        f("[::1]:0".parse().unwrap());
    }
}

/// What descriptor `fd` refers to (`socket:[INODE]`), if it is open. Tests run in parallel threads
/// and may reuse a freed number at once, so "closed" is checked as "no longer this socket".
fn fd_target(fd: i32) -> Option<String> {
    std::fs::read_link(format!("/proc/self/fd/{fd}")).ok().map(|p| p.display().to_string())
}

#[test]
fn options_read_back_what_was_set() {
    each_ip(|addr| {
        let s = Socket::new(Domain::for_address(&addr), Type::STREAM, None).unwrap();
        s.set_reuse_address(true).unwrap();
        assert!(s.reuse_address().unwrap());
        s.set_nodelay(true).unwrap();
        assert!(s.nodelay().unwrap());
        s.set_nodelay(false).unwrap();
        assert!(!s.nodelay().unwrap());
        s.set_read_timeout(Some(Duration::from_millis(1500))).unwrap();
        assert_eq!(s.read_timeout().unwrap(), Some(Duration::from_millis(1500)));
        s.set_write_timeout(None).unwrap();
        assert_eq!(s.write_timeout().unwrap(), None);
        assert!(s.set_read_timeout(Some(Duration::ZERO)).is_err(), "zero would mean forever");
        s.set_linger(Some(Duration::from_secs(3))).unwrap();
        assert_eq!(s.linger().unwrap(), Some(Duration::from_secs(3)));
        s.set_linger(None).unwrap();
        assert_eq!(s.linger().unwrap(), None);
        assert!(s.take_error().unwrap().is_none());
    });
}

#[test]
fn listener_and_stream_talk_and_report_addresses() {
    each_ip(|addr| {
        let listener = TcpListener::bind(&addr).unwrap();
        let local = listener.local_addr().unwrap();
        assert_ne!(local.port(), 0, "port 0 is replaced by the kernel's choice");
        // connect returns as soon as the handshake completes: before accept is called.
        let client = TcpStream::connect(&local).unwrap();
        let (server, peer) = listener.accept().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        assert_eq!(server.peer_addr().unwrap(), peer);
        (&client).write_all(b"ping").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        (&server).read_to_end(&mut got).unwrap();
        assert_eq!(got, b"ping");
    });
}

#[test]
fn descriptors_are_cloexec_and_closed_on_drop() {
    let listener = TcpListener::bind(&"127.0.0.1:0".parse().unwrap()).unwrap();
    let client = TcpStream::connect(&listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    for fd in [listener.as_raw_fd(), client.as_raw_fd(), server.as_raw_fd()] {
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap();
        let flags = info.lines().find_map(|l| l.strip_prefix("flags:")).unwrap().trim();
        let flags = u32::from_str_radix(flags, 8).unwrap();
        assert_ne!(flags & 0o2000000, 0, "fd {fd} must be O_CLOEXEC (flags {flags:o})");
    }
    let fd = server.as_raw_fd();
    let before = fd_target(fd);
    assert!(before.as_deref().is_some_and(|t| t.starts_with("socket:")));
    drop(server);
    assert_ne!(fd_target(fd), before, "dropping a TcpStream closes its descriptor");
}

#[test]
fn converts_to_and_from_std_keeping_the_descriptor() {
    let listener = TcpListener::bind(&"127.0.0.1:0".parse().unwrap()).unwrap();
    let fd = listener.as_raw_fd();
    let std_listener: std::net::TcpListener = listener.into();
    assert_eq!(std_listener.as_raw_fd(), fd);
    let addr = std_listener.local_addr().unwrap();
    let back = TcpListener::from(std_listener);
    assert_eq!(back.as_raw_fd(), fd);

    let std_stream = std::net::TcpStream::connect(addr).unwrap();
    let ours = TcpStream::from(std_stream);
    ours.send_all(b"x").unwrap();
    let (accepted, _) = back.accept().unwrap();
    let mut byte = [0u8; 1];
    assert_eq!(accepted.recv(&mut byte).unwrap(), 1);
    let owned: OwnedFd = accepted.into();
    let raw = owned.as_raw_fd();
    let target = fd_target(raw);
    assert!(target.is_some(), "into OwnedFd keeps the descriptor open");
    let again = TcpStream::from(owned);
    assert_eq!(again.as_raw_fd(), raw);
    drop(again);
    assert_ne!(fd_target(raw), target, "the last owner closes it");
}

/// One address type for every family: a Unix-domain pair of sockets bound to a path and to an
/// abstract name, through the same `Socket::bind` / `connect` / `accept` as TCP.
#[test]
fn unix_sockets_use_the_same_address_type() {
    let dir = std::env::temp_dir().join(format!("socklab-unix-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("s.sock");
    let _ = std::fs::remove_file(&path);
    let names = [
        SockAddr::unix(&path).unwrap(),
        SockAddr::unix_abstract(format!("socklab-{}", std::process::id()).as_bytes()).unwrap(),
    ];
    for name in names {
        let listener = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
        listener.bind(&name).unwrap();
        listener.listen(1).unwrap();
        assert_eq!(listener.local_addr().unwrap(), name, "getsockname gives back the name bound");
        let client = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
        client.connect(&name).unwrap();
        let (server, _peer) = listener.accept().unwrap();
        client.send_all(b"hi").unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(server.recv(&mut buf).unwrap(), 2);
        assert_eq!(&buf[..2], b"hi");
        assert_eq!(client.peer_addr().unwrap(), name);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
