//! Host names to addresses, without surprises in strace.
//!
//! IP literals (`127.0.0.1`, `::1`, `[::1]`) are parsed, not looked up. `localhost` is the loopback
//! address by definition (RFC 6761), so it maps straight to `127.0.0.1` then `::1` — the order
//! glibc's resolver gives with a stock `/etc/hosts`. Keeping both of these in-process means
//! `strace -f socklab server` shows only the socket calls the code names, not the resolver's own
//! (glibc opens `/etc/hosts` and tries to connect to nscd). Any other name goes to the system
//! resolver (getaddrinfo, through std).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

/// Resolves `host` (a name or an IP literal) and `port` to addresses to try in order.
pub fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    let host = host.trim();
    if host.is_empty() {
        return Err(invalid("the host is empty; give a name such as localhost or an address such as 127.0.0.1 or ::1"));
    }
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    if bare.eq_ignore_ascii_case("localhost") {
        return Ok(vec![
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port),
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port),
        ]);
    }
    if bare.contains(['[', ']', '/', ' ']) || bare.parse::<std::net::SocketAddr>().is_ok() {
        return Err(invalid(&format!(
            "'{host}' is not a host name or IP address (give the port separately, e.g. --host ::1 --port 5000)"
        )));
    }
    match (bare, port).to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                Err(invalid(&format!("cannot resolve host '{host}': it has no addresses")))
            } else {
                Ok(addrs)
            }
        }
        Err(e) => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("cannot resolve host '{host}' ({e}); check the spelling, or use an IP address such as 127.0.0.1"),
        )),
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_localhost_need_no_lookup() {
        assert_eq!(resolve("127.0.0.1", 5).unwrap(), vec!["127.0.0.1:5".parse().unwrap()]);
        assert_eq!(resolve("[::1]", 5).unwrap(), vec!["[::1]:5".parse().unwrap()]);
        assert_eq!(resolve("::1", 5).unwrap(), vec!["[::1]:5".parse().unwrap()]);
        assert_eq!(resolve("localhost", 7).unwrap()[0], "127.0.0.1:7".parse().unwrap());
    }

    #[test]
    fn bad_hosts_are_errors_that_say_why() {
        assert!(resolve("", 1).unwrap_err().to_string().contains("empty"));
        assert!(resolve("::1:5000x", 1).is_err());
        assert!(resolve("127.0.0.1:80", 1).unwrap_err().to_string().contains("port separately"));
        let e = resolve("no-such-host.invalid", 1).unwrap_err();
        assert!(e.to_string().contains("cannot resolve host 'no-such-host.invalid'"), "{e}");
    }
}
