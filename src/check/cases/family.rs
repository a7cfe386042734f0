//! Address families: an IPv6 peer, and an IPv4 peer reaching a dual-stack IPv6 listener (which
//! sees it as `::ffff:127.0.0.1`). What listens is read from the kernel through sock_diag.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use super::{Case, Needs, Verdict, ms, next_client, s};
use crate::check::Ctx;
use crate::check::flow::{Conn, Peer};
use crate::diag::{Diag, TcpState};

/// The listening sockets on `port`, as sock_diag lists them (what `ss -tln` shows).
fn listeners(port: u16) -> Vec<SocketAddr> {
    let Ok(mut diag) = Diag::open() else { return Vec::new() };
    let Ok(all) = diag.dump_all(false) else { return Vec::new() };
    all.into_iter().filter(|s| s.state == TcpState::Listen && s.local.port() == port).map(|s| s.local).collect()
}

/// The backlog of the listening socket on `port` (sock_diag reports it as a listener's Send-Q).
pub(crate) fn backlog(port: u16) -> Option<u32> {
    let mut diag = Diag::open().ok()?;
    let all = diag.dump_all(false).ok()?;
    all.into_iter().find(|s| s.state == TcpState::Listen && s.local.port() == port).map(|s| s.send_q)
}

fn show(addrs: &[SocketAddr]) -> String {
    if addrs.is_empty() {
        return "none".into();
    }
    addrs.iter().map(crate::diag::ss_addr).collect::<Vec<_>>().join(", ")
}

/// Runs the next-client exchange against `addr` instead of the target.
fn served_at(ctx: &mut Ctx, addr: SocketAddr) -> Result<Duration, String> {
    let saved = std::mem::replace(&mut ctx.peer, Peer::Tcp(addr));
    let result = next_client(ctx, Duration::from_secs(4));
    ctx.peer = saved;
    result
}

/// The target's port when it is TCP on a loopback address.
fn loopback_port(ctx: &Ctx) -> Option<(SocketAddr, u16)> {
    let addr = ctx.peer.tcp()?;
    addr.ip().is_loopback().then_some((addr, addr.port()))
}

pub const IPV6: Case = Case {
    id: "family.ipv6",
    group: "family",
    title: "an IPv6 client ([::1]) when the server listens on IPv6",
    expected: "if anything listens on the port over IPv6, the echo works over IPv6 too; a server that listens on IPv4 \
only is reported, not failed",
    lesson: "A client reached the server over IPv6 and was not served. A socket bound to :: or ::1 serves IPv6 \
clients with the same calls as IPv4 (AF_INET6, struct sockaddr_in6): code that assumes sockaddr_in (a 16-byte \
address buffer, inet_ntoa on the peer) breaks there. Use sockaddr_storage for peer addresses and getaddrinfo(3)/\
inet_ntop(3). Read: ipv6(7), getaddrinfo(3).",
    limit: s(8),
    quick_limit: s(8),
    needs: Needs::Any,
    run: |ctx| {
        let Some((addr, port)) = loopback_port(ctx) else {
            return Verdict::skip("only for a TCP server on a loopback address");
        };
        if addr.is_ipv6() {
            return Verdict::pass(format!("the whole suite reached the server over IPv6 ({addr})"));
        }
        let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
        let listening = listeners(port);
        match Conn::connect(&Peer::Tcp(v6), ctx.deadline.min(std::time::Instant::now() + Duration::from_secs(2))) {
            Err(e) => Verdict::info(format!(
                "not listening on IPv6: connect to {v6} failed ({e}); listening sockets on port {port} (sock_diag): {}",
                show(&listening)
            )),
            Ok(conn) => {
                drop(conn);
                match served_at(ctx, v6) {
                    Ok(d) => Verdict::pass(format!(
                        "an IPv6 client at {v6} was served in {} (listening on port {port}, sock_diag: {})",
                        ms(d),
                        show(&listening)
                    )),
                    Err(e) => Verdict::fail(format!("an IPv6 client at {v6} connected, but {e}")),
                }
            }
        }
    },
};

pub const IPV4_MAPPED: Case = Case {
    id: "family.ipv4-mapped",
    group: "family",
    title: "an IPv4 client (127.0.0.1) of a dual-stack IPv6 listener, which sees it as ::ffff:127.0.0.1",
    expected: "when the only listener is IPv6 and dual-stack (IPV6_V6ONLY off), IPv4 clients are served as \
IPv4-mapped peers; otherwise reported, not failed",
    lesson: "An IPv4 client of a dual-stack listener was not served. On a socket bound to :: with IPV6_V6ONLY off, \
IPv4 clients arrive as IPv6 addresses of the form ::ffff:a.b.c.d (AF_INET6 in accept's address); code that \
treats the peer address as IPv4, or rejects what is not \"real\" IPv6, breaks on them. Read: ipv6(7) (IPV6_V6ONLY, \
IPv4-mapped addresses).",
    limit: s(8),
    quick_limit: s(8),
    needs: Needs::Any,
    run: |ctx| {
        let Some((_, port)) = loopback_port(ctx) else {
            return Verdict::skip("only for a TCP server on a loopback address");
        };
        let listening = listeners(port);
        let dual = listening.iter().any(|a| a.ip() == IpAddr::V6(Ipv6Addr::UNSPECIFIED))
            && !listening.iter().any(|a| a.is_ipv4());
        if !dual {
            return Verdict::info(format!(
                "no dual-stack listener to test: the listening sockets on port {port} are {} (sock_diag); IPv4 \
clients reach an IPv4 socket directly",
                show(&listening)
            ));
        }
        let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        match served_at(ctx, v4) {
            Ok(d) => Verdict::pass(format!(
                "an IPv4 client at {v4} was served in {} by the one listener [::]:{port}, as ::ffff:127.0.0.1",
                ms(d)
            )),
            Err(e) if e.contains("could not connect") => {
                Verdict::info(format!("the IPv6 listener [::]:{port} refuses IPv4 clients (IPV6_V6ONLY on): {e}"))
            }
            Err(e) => Verdict::fail(format!("an IPv4 client of the dual-stack listener [::]:{port}: {e}")),
        }
    },
};
