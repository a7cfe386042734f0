//! The properties the fuzz targets check, shared with `tests/fuzz_parsers.rs` (which runs them
//! over a seeded random loop and over the saved reproducers in every `cargo test`).
//!
//! Neither check touches the network: host names are only *parsed* (`parse_host`), and only IP
//! literals and `localhost` go on to `resolve`, which answers those without a lookup.

#![allow(dead_code)] // each fuzz target uses one of the checks

use std::net::{IpAddr, SocketAddr};

use socklab::resolve::{Host, parse_host, resolve};

/// `--host` parsing: never panics; an accepted name is plausible DNS; an error is one line.
pub fn host(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match parse_host(&text) {
        Ok(Host::Ip(ip)) => {
            let addrs = resolve(&text, 7).expect("an IP literal resolves without a lookup");
            assert_eq!(addrs, vec![SocketAddr::new(ip, 7)]);
        }
        Ok(Host::Localhost) => {
            let addrs = resolve(&text, 7).expect("localhost resolves without a lookup");
            assert!(addrs.len() == 2 && addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 7));
        }
        Ok(Host::Name(name)) => {
            assert!(!name.is_empty() && name.len() <= 254, "{name:?}");
            assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)), "{name:?}");
            assert!(name.parse::<IpAddr>().is_err(), "{name:?} is an IP literal");
        }
        Err(e) => {
            let msg = e.to_string();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{msg}");
            assert!(!msg.is_empty() && !msg.contains('\n') && !msg.contains('\r'), "not one line: {msg:?}");
        }
    }
}

/// `HOST:PORT` splitting (`bench --addr`): never panics; what it accepts has a real port and a
/// host that `parse_host` accepts, and re-joins to the input (brackets around IPv6).
pub fn host_port(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match socklab::resolve::split_host_port(&text) {
        Ok((host, port)) => {
            assert!(port != 0);
            assert!(parse_host(host).is_ok(), "{host:?}");
            let joined = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
            assert_eq!(socklab::resolve::split_host_port(&joined).unwrap(), (host, port));
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.is_empty() && !msg.contains('\n') && !msg.contains('\r'), "not one line: {msg:?}");
        }
    }
}

/// Decoding a sockaddr the kernel (or a packet) handed us: never panics; what it accepts matches
/// the bytes field by field (Linux layout: family in host order, port and IPv4 address in network
/// order).
pub fn sockaddr(data: &[u8]) {
    let Ok(addr) = socklab::sys::decode_sockaddr(data) else { return };
    let family = u16::from_ne_bytes([data[0], data[1]]) as i32;
    let port = u16::from_be_bytes([data[2], data[3]]);
    assert_eq!(addr.port(), port);
    match addr {
        SocketAddr::V4(a) => {
            assert_eq!(family, libc::AF_INET);
            assert!(data.len() >= 16);
            assert_eq!(a.ip().octets(), [data[4], data[5], data[6], data[7]]);
        }
        SocketAddr::V6(a) => {
            assert_eq!(family, libc::AF_INET6);
            assert!(data.len() >= 28);
            assert_eq!(a.flowinfo(), u32::from_be_bytes(data[4..8].try_into().unwrap()));
            assert_eq!(&a.ip().octets()[..], &data[8..24]);
            assert_eq!(a.scope_id(), u32::from_ne_bytes(data[24..28].try_into().unwrap()));
        }
    }
}
