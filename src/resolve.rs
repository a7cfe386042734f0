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

/// What a `--host` argument names, decided without any lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// An IP literal (`127.0.0.1`, `::1`, `[::1]`).
    Ip(IpAddr),
    /// `localhost` (any case): the loopback addresses, IPv4 first.
    Localhost,
    /// A syntactically valid DNS name, to be looked up.
    Name(String),
}

/// Checks `host` and says what it names, without touching the network. Rejects what no resolver
/// could answer (empty, `host:port`, `[...]` around a non-address, spaces, a dotted quad with an
/// octet over 255, labels longer than 63 bytes), so a typo fails at once instead of after a DNS
/// timeout. Never panics, whatever the input (this is the function the fuzzer drives).
pub fn parse_host(host: &str) -> io::Result<Host> {
    let host = host.trim();
    if host.is_empty() {
        return Err(invalid("the host is empty; give a name such as localhost or an address such as 127.0.0.1 or ::1"));
    }
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(Host::Ip(ip));
    }
    // Messages quote the host escaped, so a control character cannot break the one-line error.
    let host = &host.escape_debug().to_string();
    if bare.parse::<SocketAddr>().is_ok() || host.starts_with('[') {
        return Err(invalid(&format!(
            "'{host}' is not a host name or IP address (give the port separately, e.g. --host ::1 --port 5000)"
        )));
    }
    if bare.contains(':') {
        return Err(invalid(&format!("'{host}' is not a valid IPv6 address (e.g. ::1)")));
    }
    if bare.eq_ignore_ascii_case("localhost") {
        return Ok(Host::Localhost);
    }
    // Only digits and dots: meant as an IPv4 address, but std refused it (e.g. 300.1.1.1, 1.2.3).
    if bare.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(invalid(&format!("'{host}' is not a valid IPv4 address (four numbers 0-255, e.g. 127.0.0.1)")));
    }
    // RFC 1123 host names: labels of letters, digits and '-', at most 63 bytes, 253 in all.
    let name = bare.strip_suffix('.').unwrap_or(bare);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(invalid(&format!(
            "'{host}' is not a valid host name (letters, digits, '-' and '.'; or an IP address)"
        )));
    }
    Ok(Host::Name(bare.to_string()))
}

/// Splits a `HOST:PORT` argument (`127.0.0.1:5000`, `localhost:5000`, `[::1]:5000`) without any
/// lookup. An IPv6 address must be in brackets: in `::1:5000` the last group could be the port
/// or part of the address, so it is refused rather than guessed. The port must be 1-65535 (one
/// cannot connect to port 0). Never panics.
pub fn split_host_port(text: &str) -> io::Result<(&str, u16)> {
    let text = text.trim();
    let shown = text.escape_debug();
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| invalid(&format!("'{shown}' opens '[' without closing it; write e.g. [::1]:5000")))?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| invalid(&format!("'{shown}' has no :PORT after the bracketed address, e.g. [::1]:5000")))?;
        (host, port)
    } else {
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| invalid(&format!("'{shown}' is not HOST:PORT, e.g. 127.0.0.1:5000 or [::1]:5000")))?;
        if host.contains(':') {
            return Err(invalid(&format!("'{shown}': an IPv6 address needs brackets, e.g. [::1]:5000")));
        }
        (host, port)
    };
    let port = match port.parse::<u16>() {
        Ok(0) | Err(_) => {
            return Err(invalid(&format!("'{shown}': '{}' is not a port (1-65535)", port.escape_debug())));
        }
        Ok(port) => port,
    };
    // The host as parse_host and resolve see it: "[ ::1 ]:80" is ::1, not " ::1 " (a fuzzer
    // found "[\nl]:2" coming back with its newline).
    let host = host.trim();
    parse_host(host)?;
    Ok((host, port))
}

/// Resolves `host` (a name or an IP literal) and `port` to addresses to try in order.
pub fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    let name = match parse_host(host)? {
        Host::Ip(ip) => return Ok(vec![SocketAddr::new(ip, port)]),
        Host::Localhost => {
            return Ok(vec![
                SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port),
                SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port),
            ]);
        }
        Host::Name(name) => name,
    };
    let host = host.trim().escape_debug().to_string();
    match (name.as_str(), port).to_socket_addrs() {
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
        assert!(resolve("[::1]:80", 1).unwrap_err().to_string().contains("port separately"));
        assert!(resolve("300.1.1.1", 1).unwrap_err().to_string().contains("not a valid IPv4"));
        assert!(resolve("a b", 1).unwrap_err().to_string().contains("not a valid host name"));
        assert!(resolve("-x.example", 1).is_err());
        assert!(resolve(&"a".repeat(64), 1).is_err());
        assert!(resolve("\0", 1).is_err());
    }

    #[test]
    fn host_port_needs_brackets_for_ipv6_and_a_real_port() {
        assert_eq!(split_host_port("127.0.0.1:5000").unwrap(), ("127.0.0.1", 5000));
        assert_eq!(split_host_port("[::1]:80").unwrap(), ("::1", 80));
        assert_eq!(split_host_port("localhost:7").unwrap(), ("localhost", 7));
        assert_eq!(split_host_port("[\nl]:2").unwrap(), ("l", 2));
        for bad in ["::1:5000", "::1", "[::1]", "[::1", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", ":80", "a b:1"] {
            let err = split_host_port(bad).unwrap_err().to_string();
            assert!(!err.contains('\n'), "{bad}: {err}");
        }
        assert!(split_host_port("::1:5000").unwrap_err().to_string().contains("brackets"));
        let e = resolve("no-such-host.invalid", 1).unwrap_err();
        assert!(e.to_string().contains("cannot resolve host 'no-such-host.invalid'"), "{e}");
    }
}
