//! Library users match on socklab's errors as on std's: `raw_os_error()` is the errno and `kind()`
//! the `ErrorKind`, while the message still names the call and the address.

use std::io::ErrorKind;
use std::net::SocketAddr;

use socklab::fixture::{EchoServer, Proxy};
use socklab::{TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixKind, UnixListener, UnixStream};

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A port that was free a moment ago: bound by the kernel's choice, then released.
fn closed_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

#[test]
fn bind_on_a_port_in_use_is_eaddrinuse() {
    let taken = TcpListener::bind(&loopback()).unwrap();
    let addr = taken.local_addr().unwrap();
    let err = TcpListener::bind(&addr).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE), "{err}");
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
    assert_eq!(err.os_error().raw_os_error(), Some(libc::EADDRINUSE));
    assert_eq!(err.to_string(), format!("bind {addr}: EADDRINUSE (Address already in use)"));
    // Through `?` into io::Result the kind and the message stay, and errno() finds the errno.
    let io: std::io::Error = err.into();
    assert_eq!(io.kind(), ErrorKind::AddrInUse);
    assert_eq!(socklab::error::errno(&io), Some(libc::EADDRINUSE));
    assert_eq!(io.to_string(), format!("bind {addr}: EADDRINUSE (Address already in use)"));
}

#[test]
fn connect_to_a_closed_port_is_econnrefused() {
    let addr = closed_port();
    let err = TcpStream::connect(&addr).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ECONNREFUSED), "{err}");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    assert_eq!(err.to_string(), format!("connect {addr}: ECONNREFUSED (Connection refused)"));
    let err = TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(5)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ECONNREFUSED), "{err}");
    let err = TcpStream::connect_any(&[addr]).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ECONNREFUSED), "{err}");
}

#[test]
fn udp_bind_on_a_port_in_use_is_eaddrinuse() {
    let taken = UdpSocket::bind(&loopback(), None).unwrap();
    let err = UdpSocket::bind(&taken.local_addr().unwrap(), None).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE), "{err}");
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
}

#[test]
fn unix_errors_keep_their_errno() {
    let dir = std::env::temp_dir().join(format!("socklab-liberr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("echo.sock");
    let name = socklab::unix::unix_addr(path.to_str().unwrap()).unwrap();
    let err = UnixStream::connect(&name, UnixKind::Stream).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{err}");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let taken = UnixListener::bind(&name, UnixKind::Stream, 5).unwrap();
    let err = UnixListener::bind(&name, UnixKind::Stream, 5).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE), "{err}");
    assert!(err.to_string().starts_with(&format!("bind {}: EADDRINUSE", path.display())), "{err}");
    let err = UnixDatagram::bind(&name).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE), "{err}");
    drop(taken);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn fixtures_on_an_address_in_use_are_eaddrinuse() {
    let taken = TcpListener::bind(&loopback()).unwrap();
    let addr = taken.local_addr().unwrap();
    let err = EchoServer::builder().addr(addr).spawn().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE), "{err}");
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
    assert!(err.to_string().starts_with(&format!("bind {addr}: EADDRINUSE")), "{err}");
    let err = Proxy::builder(closed_port()).listen(addr).spawn().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE), "{err}");
}
