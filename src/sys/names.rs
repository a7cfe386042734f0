//! Kernel constants as the names a man page (and strace) uses: `AF_INET`, `SOCK_STREAM|SOCK_CLOEXEC`,
//! `ECONNREFUSED (Connection refused)`. One set of tables serves error messages and the tracer.

use std::fmt::Write as _;

/// The symbolic name of an errno value: `ECONNREFUSED`. Unknown values print as `E<number>`.
pub fn errno_name(errno: i32) -> String {
    let name = format!("{:?}", nix::errno::Errno::from_raw(errno));
    if name.starts_with('E') { name } else { format!("E{errno}") }
}

/// The C library's one-line description of an errno value: `Connection refused`.
pub fn errno_text(errno: i32) -> String {
    // The C library's strerror text (std asks strerror_r), as strace prints it: EAGAIN is
    // "Resource temporarily unavailable", not the kernel header's "Try again".
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    match text.rfind(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// `ECONNREFUSED (Connection refused)`, as strace prints a failed call's errno.
pub fn errno_display(errno: i32) -> String {
    format!("{} ({})", errno_name(errno), errno_text(errno))
}

/// Address families.
pub fn domain(v: i32) -> String {
    match v {
        libc::AF_UNSPEC => "AF_UNSPEC".into(),
        libc::AF_UNIX => "AF_UNIX".into(),
        libc::AF_INET => "AF_INET".into(),
        libc::AF_INET6 => "AF_INET6".into(),
        #[cfg(socklab_af_packet)]
        libc::AF_PACKET => "AF_PACKET".into(),
        #[cfg(socklab_sock_diag)]
        libc::AF_NETLINK => "AF_NETLINK".into(),
        other => other.to_string(),
    }
}

/// Socket types, with the creation flags or'ed in: `SOCK_STREAM|SOCK_CLOEXEC`.
pub fn sock_type(v: i32) -> String {
    let base = v & 0xf;
    let mut out = match base {
        libc::SOCK_STREAM => "SOCK_STREAM".to_string(),
        libc::SOCK_DGRAM => "SOCK_DGRAM".to_string(),
        libc::SOCK_RAW => "SOCK_RAW".to_string(),
        libc::SOCK_SEQPACKET => "SOCK_SEQPACKET".to_string(),
        other => other.to_string(),
    };
    let rest = flag_names(v & !0xf, SOCK_FLAGS);
    if !rest.is_empty() && rest != "0" {
        out.push('|');
        out.push_str(&rest);
    }
    out
}

#[cfg(socklab_sock_flags)]
// strace's order: SOCK_CLOEXEC|SOCK_NONBLOCK.
const SOCK_FLAGS: &[(i32, &str)] = &[(libc::SOCK_CLOEXEC, "SOCK_CLOEXEC"), (libc::SOCK_NONBLOCK, "SOCK_NONBLOCK")];
#[cfg(not(socklab_sock_flags))]
const SOCK_FLAGS: &[(i32, &str)] = &[];

/// Flags of accept4: `SOCK_CLOEXEC`, or `0`.
pub fn accept_flags(v: i32) -> String {
    flag_names(v, SOCK_FLAGS)
}

/// Protocols, as strace prints socket(2)'s third argument.
pub fn protocol(v: i32) -> String {
    match v {
        0 => "IPPROTO_IP".into(),
        libc::IPPROTO_TCP => "IPPROTO_TCP".into(),
        libc::IPPROTO_UDP => "IPPROTO_UDP".into(),
        libc::IPPROTO_RAW => "IPPROTO_RAW".into(),
        other => other.to_string(),
    }
}

/// mmap's `PROT_*` bits: `PROT_READ|PROT_WRITE` (`PROT_NONE` for none).
pub fn prot(v: i32) -> String {
    const TABLE: &[(i32, &str)] =
        &[(libc::PROT_READ, "PROT_READ"), (libc::PROT_WRITE, "PROT_WRITE"), (libc::PROT_EXEC, "PROT_EXEC")];
    if v == 0 { "PROT_NONE".into() } else { flag_names(v, TABLE) }
}

/// mmap's flags: `MAP_PRIVATE|MAP_ANONYMOUS`.
pub fn map_flags(v: i32) -> String {
    const TABLE: &[(i32, &str)] = &[
        (libc::MAP_SHARED, "MAP_SHARED"),
        (libc::MAP_PRIVATE, "MAP_PRIVATE"),
        (libc::MAP_FIXED, "MAP_FIXED"),
        (libc::MAP_ANONYMOUS, "MAP_ANONYMOUS"),
        (libc::MAP_POPULATE, "MAP_POPULATE"),
        (libc::MAP_NORESERVE, "MAP_NORESERVE"),
        (libc::MAP_STACK, "MAP_STACK"),
    ];
    flag_names(v, TABLE)
}

/// `MSG_*` flags.
pub fn msg_flags(v: i32) -> String {
    flag_names(v, MSG_FLAGS)
}

const MSG_FLAGS: &[(i32, &str)] = &[
    (libc::MSG_OOB, "MSG_OOB"),
    (libc::MSG_PEEK, "MSG_PEEK"),
    (libc::MSG_DONTWAIT, "MSG_DONTWAIT"),
    (libc::MSG_WAITALL, "MSG_WAITALL"),
    (libc::MSG_TRUNC, "MSG_TRUNC"),
    (libc::MSG_CTRUNC, "MSG_CTRUNC"),
    #[cfg(socklab_msg_nosignal)]
    (libc::MSG_NOSIGNAL, "MSG_NOSIGNAL"),
    #[cfg(target_os = "linux")]
    (libc::MSG_CMSG_CLOEXEC, "MSG_CMSG_CLOEXEC"),
];

/// `SHUT_RD`, `SHUT_WR`, `SHUT_RDWR`.
pub fn how(v: i32) -> String {
    match v {
        libc::SHUT_RD => "SHUT_RD".into(),
        libc::SHUT_WR => "SHUT_WR".into(),
        libc::SHUT_RDWR => "SHUT_RDWR".into(),
        other => other.to_string(),
    }
}

/// Socket option level and name: `SOL_SOCKET, SO_REUSEADDR`.
pub fn sockopt(level: i32, name: i32) -> String {
    let level_name = match level {
        libc::SOL_SOCKET => "SOL_SOCKET".to_string(),
        libc::IPPROTO_TCP => "SOL_TCP".to_string(),
        libc::IPPROTO_IP => "SOL_IP".to_string(),
        libc::IPPROTO_IPV6 => "SOL_IPV6".to_string(),
        #[cfg(socklab_af_packet)]
        libc::SOL_PACKET => "SOL_PACKET".to_string(),
        other => other.to_string(),
    };
    let opt_name = match (level, name) {
        (libc::SOL_SOCKET, libc::SO_REUSEADDR) => "SO_REUSEADDR".to_string(),
        (libc::SOL_SOCKET, libc::SO_REUSEPORT) => "SO_REUSEPORT".to_string(),
        (libc::SOL_SOCKET, libc::SO_ERROR) => "SO_ERROR".to_string(),
        (libc::SOL_SOCKET, libc::SO_LINGER) => "SO_LINGER".to_string(),
        (libc::SOL_SOCKET, libc::SO_RCVTIMEO) => "SO_RCVTIMEO_OLD".to_string(),
        (libc::SOL_SOCKET, libc::SO_SNDTIMEO) => "SO_SNDTIMEO_OLD".to_string(),
        (libc::SOL_SOCKET, libc::SO_KEEPALIVE) => "SO_KEEPALIVE".to_string(),
        (libc::SOL_SOCKET, libc::SO_RCVBUF) => "SO_RCVBUF".to_string(),
        (libc::SOL_SOCKET, libc::SO_SNDBUF) => "SO_SNDBUF".to_string(),
        (libc::SOL_SOCKET, libc::SO_TYPE) => "SO_TYPE".to_string(),
        (libc::IPPROTO_TCP, libc::TCP_NODELAY) => "TCP_NODELAY".to_string(),
        (libc::IPPROTO_TCP, libc::TCP_MAXSEG) => "TCP_MAXSEG".to_string(),
        (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE) => "TCP_KEEPIDLE".to_string(),
        (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL) => "TCP_KEEPINTVL".to_string(),
        (libc::IPPROTO_TCP, libc::TCP_KEEPCNT) => "TCP_KEEPCNT".to_string(),
        #[cfg(socklab_af_packet)]
        (libc::SOL_SOCKET, libc::SO_RCVBUFFORCE) => "SO_RCVBUFFORCE".to_string(),
        #[cfg(socklab_af_packet)]
        (libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING) => "PACKET_IGNORE_OUTGOING".to_string(),
        #[cfg(socklab_af_packet)]
        (libc::SOL_PACKET, libc::PACKET_STATISTICS) => "PACKET_STATISTICS".to_string(),
        #[cfg(socklab_tcp_info)]
        (libc::IPPROTO_TCP, libc::TCP_INFO) => "TCP_INFO".to_string(),
        (libc::IPPROTO_IPV6, libc::IPV6_V6ONLY) => "IPV6_V6ONLY".to_string(),
        #[cfg(any(target_os = "linux", target_os = "android"))]
        (libc::SOL_SOCKET, libc::SO_PEERCRED) => "SO_PEERCRED".to_string(),
        (_, other) => other.to_string(),
    };
    format!("{level_name}, {opt_name}")
}

/// EtherTypes (host order) as strace names them: `ETH_P_ALL`, `ETH_P_IP`, `ETH_P_IPV6`.
pub fn ether_type(v: u16) -> String {
    match v {
        0x0003 => "ETH_P_ALL".into(),
        0x0800 => "ETH_P_IP".into(),
        0x86dd => "ETH_P_IPV6".into(),
        other => format!("{other:#x}"),
    }
}

/// Netlink protocols, socket(2)'s third argument for `AF_NETLINK`.
pub fn netlink_protocol(v: i32) -> String {
    match v {
        0 => "NETLINK_ROUTE".into(),
        4 => "NETLINK_SOCK_DIAG".into(),
        12 => "NETLINK_NETFILTER".into(),
        other => other.to_string(),
    }
}

/// `A|B` for the set bits named in `table`, leftover bits in hex, `0` when none are set.
pub fn flag_names(v: i32, table: &[(i32, &str)]) -> String {
    let mut out = String::new();
    let mut left = v;
    for &(bit, name) in table {
        if bit != 0 && v & bit == bit {
            if !out.is_empty() {
                out.push('|');
            }
            out.push_str(name);
            left &= !bit;
        }
    }
    if left != 0 {
        if !out.is_empty() {
            out.push('|');
        }
        let _ = write!(out, "{left:#x}");
    }
    if out.is_empty() { "0".into() } else { out }
}

/// epoll event bits: `EPOLLIN|EPOLLRDHUP`.
#[cfg(socklab_epoll)]
pub fn epoll_events(v: u32) -> String {
    const TABLE: &[(i32, &str)] = &[
        (libc::EPOLLIN, "EPOLLIN"),
        (libc::EPOLLPRI, "EPOLLPRI"),
        (libc::EPOLLOUT, "EPOLLOUT"),
        (libc::EPOLLERR, "EPOLLERR"),
        (libc::EPOLLHUP, "EPOLLHUP"),
        (libc::EPOLLRDHUP, "EPOLLRDHUP"),
        (libc::EPOLLEXCLUSIVE, "EPOLLEXCLUSIVE"),
        (libc::EPOLLET, "EPOLLET"),
        (libc::EPOLLONESHOT, "EPOLLONESHOT"),
    ];
    flag_names(v as i32, TABLE)
}

/// epoll_ctl operations.
#[cfg(socklab_epoll)]
pub fn epoll_op(v: i32) -> String {
    match v {
        libc::EPOLL_CTL_ADD => "EPOLL_CTL_ADD".into(),
        libc::EPOLL_CTL_MOD => "EPOLL_CTL_MOD".into(),
        libc::EPOLL_CTL_DEL => "EPOLL_CTL_DEL".into(),
        other => other.to_string(),
    }
}

/// epoll_create1 flags.
#[cfg(socklab_epoll)]
pub fn epoll_flags(v: i32) -> String {
    flag_names(v, &[(libc::EPOLL_CLOEXEC, "EPOLL_CLOEXEC")])
}

/// File status flags (F_GETFL / F_SETFL): `O_RDWR|O_NONBLOCK`.
pub fn open_flags(v: i32) -> String {
    let access = match v & libc::O_ACCMODE {
        libc::O_RDONLY => "O_RDONLY",
        libc::O_WRONLY => "O_WRONLY",
        _ => "O_RDWR",
    };
    let rest = flag_names(v & !libc::O_ACCMODE, &[(libc::O_APPEND, "O_APPEND"), (libc::O_NONBLOCK, "O_NONBLOCK")]);
    if rest == "0" { access.to_string() } else { format!("{access}|{rest}") }
}

/// openat(2)'s flags in strace's order: `O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_DIRECTORY`,
/// `O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC` (as strace prints them).
pub fn openat_flags(v: i32) -> String {
    let access = match v & libc::O_ACCMODE {
        libc::O_RDONLY => "O_RDONLY",
        libc::O_WRONLY => "O_WRONLY",
        _ => "O_RDWR",
    };
    let rest = flag_names(
        v & !libc::O_ACCMODE,
        &[
            (libc::O_CREAT, "O_CREAT"),
            (libc::O_EXCL, "O_EXCL"),
            (libc::O_TRUNC, "O_TRUNC"),
            (libc::O_APPEND, "O_APPEND"),
            (libc::O_NONBLOCK, "O_NONBLOCK"),
            (libc::O_NOFOLLOW, "O_NOFOLLOW"),
            (libc::O_CLOEXEC, "O_CLOEXEC"),
            (libc::O_DIRECTORY, "O_DIRECTORY"),
        ],
    );
    if rest == "0" { access.to_string() } else { format!("{access}|{rest}") }
}

/// poll(2) event bits: `POLLIN|POLLOUT`.
pub fn poll_events(v: i16) -> String {
    const TABLE: &[(i32, &str)] = &[
        (libc::POLLIN as i32, "POLLIN"),
        (libc::POLLPRI as i32, "POLLPRI"),
        (libc::POLLOUT as i32, "POLLOUT"),
        (libc::POLLERR as i32, "POLLERR"),
        (libc::POLLHUP as i32, "POLLHUP"),
        (libc::POLLNVAL as i32, "POLLNVAL"),
    ];
    flag_names(i32::from(v), TABLE)
}

/// A signal's name: `SIGCHLD`; unknown numbers as themselves.
pub fn signal(sig: i32) -> String {
    match nix::sys::signal::Signal::try_from(sig) {
        Ok(s) => s.as_str().to_string(),
        Err(_) => sig.to_string(),
    }
}

/// A signal set as strace prints it: `[INT TERM]` (names without `SIG`), `[]` when empty.
pub fn sigset(bits: u64) -> String {
    let names: Vec<String> = (1..=64)
        .filter(|s| bits & (1u64 << (s - 1)) != 0)
        .map(|s| {
            let name = signal(s);
            name.strip_prefix("SIG").map_or(name.clone(), str::to_string)
        })
        .collect();
    format!("[{}]", names.join(" "))
}

/// sigprocmask's `how`.
pub fn sigprocmask_how(how: i32) -> String {
    match how {
        libc::SIG_BLOCK => "SIG_BLOCK".into(),
        libc::SIG_UNBLOCK => "SIG_UNBLOCK".into(),
        libc::SIG_SETMASK => "SIG_SETMASK".into(),
        other => other.to_string(),
    }
}

/// A handler: `SIG_DFL`, `SIG_IGN`, or its address.
pub fn sighandler(handler: usize) -> String {
    match handler {
        libc::SIG_DFL => "SIG_DFL".into(),
        libc::SIG_IGN => "SIG_IGN".into(),
        other => format!("{other:#x}"),
    }
}

/// `sa_flags`: `SA_RESTORER|SA_NOCLDSTOP`, `0`.
pub fn sa_flags(flags: i32) -> String {
    const TABLE: &[(i32, &str)] = &[
        // strace's order.
        (0x0400_0000, "SA_RESTORER"),
        (libc::SA_ONSTACK, "SA_ONSTACK"),
        (libc::SA_RESTART, "SA_RESTART"),
        (libc::SA_NODEFER, "SA_NODEFER"),
        (libc::SA_RESETHAND, "SA_RESETHAND"),
        (libc::SA_SIGINFO, "SA_SIGINFO"),
        (libc::SA_NOCLDSTOP, "SA_NOCLDSTOP"),
    ];
    flag_names(flags, TABLE)
}

/// wait4's status as strace decodes it: `{WIFEXITED(s) && WEXITSTATUS(s) == 0}`.
pub fn wait_status(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!("{{WIFEXITED(s) && WEXITSTATUS(s) == {}}}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        let core = if libc::WCOREDUMP(status) { " && WCOREDUMP(s)" } else { "" };
        format!("{{WIFSIGNALED(s) && WTERMSIG(s) == {}{core}}}", signal(libc::WTERMSIG(status)))
    } else {
        format!("{status:#x}")
    }
}

/// Resource limit names: `RLIMIT_NOFILE`.
pub fn rlimit_resource(resource: i32) -> String {
    match resource {
        r if r == libc::RLIMIT_NOFILE as i32 => "RLIMIT_NOFILE".into(),
        r if r == libc::RLIMIT_NPROC as i32 => "RLIMIT_NPROC".into(),
        other => other.to_string(),
    }
}

/// A limit value: `RLIM64_INFINITY` for the unlimited value.
pub fn rlimit_value(v: u64) -> String {
    if v == libc::RLIM_INFINITY as u64 { "RLIM64_INFINITY".into() } else { v.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_man_pages() {
        assert_eq!(errno_display(libc::ECONNREFUSED), "ECONNREFUSED (Connection refused)");
        assert_eq!(errno_name(libc::EADDRINUSE), "EADDRINUSE");
        assert_eq!(domain(libc::AF_INET6), "AF_INET6");
        assert_eq!(msg_flags(0), "0");
        #[cfg(socklab_sock_flags)]
        assert_eq!(sock_type(libc::SOCK_STREAM | libc::SOCK_CLOEXEC), "SOCK_STREAM|SOCK_CLOEXEC");
        #[cfg(socklab_msg_nosignal)]
        assert_eq!(msg_flags(libc::MSG_NOSIGNAL), "MSG_NOSIGNAL");
        assert_eq!(sockopt(libc::SOL_SOCKET, libc::SO_REUSEADDR), "SOL_SOCKET, SO_REUSEADDR");
    }
}
