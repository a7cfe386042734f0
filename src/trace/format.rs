//! strace's syntax for the calls `sys` reports: `accept4(3, {sa_family=AF_INET, ...}, [128 => 16],
//! SOCK_CLOEXEC) = 4`.
//!
//! The rules copied from strace (checked against `strace -f` on Linux, strace 6.x):
//! - constants by name (`AF_INET`, `SOCK_STREAM|SOCK_CLOEXEC`, `MSG_NOSIGNAL`, `SHUT_WR`);
//! - addresses as the C struct with `htons(...)` / `inet_addr(...)`; a value-result length as
//!   `[offered => returned]`, or `[n]` when the kernel left it unchanged;
//! - data as a C string: `\n \t \r \v \f \" \\` escaped, other unprintable bytes in octal, at most 32
//!   bytes followed by `...` when longer;
//! - the result after ` = `, the call padded to column 39; failures as `-1 ENAME (text)`.

use crate::sys::trace::{Arg, Call, Phase};
use crate::sys::{SockAddr, UnixName, names};
use std::fmt::Write as _;
use std::io;

/// `SA_RESTORER` (not in every libc's headers).
const SA_RESTORER: i32 = 0x0400_0000;

/// strace's default `-s`: how many bytes of a buffer it prints.
pub const MAX_STRLEN: usize = 32;

/// The whole line strace prints for a finished call: `close(3)` padded, then ` = 0`.
pub fn line(call: &Call<'_>) -> String {
    let mut out = format!("{}({})", call.name, args(call));
    if let Phase::Exit(result) = call.phase {
        // strace lines the results up at column 40 (its "acolumn"), unless the call is longer.
        while out.chars().count() < 39 {
            out.push(' ');
        }
        out.push_str(" = ");
        out.push_str(&ret_of(call.name, result));
        // strace names what some results mean: the signal taken, a poll that timed out.
        match (call.name, result) {
            ("rt_sigtimedwait", Ok(sig)) => out.push_str(&format!(" ({})", names::signal(*sig as i32))),
            ("poll" | "epoll_wait", Ok(0)) if call.name == "poll" => out.push_str(" (Timeout)"),
            ("fcntl", Ok(flags)) if matches!(call.args.get(1), Some(Arg::Int(cmd)) if *cmd == i64::from(libc::F_GETFL)) =>
            {
                out.truncate(out.len() - ret(result).len());
                out.push_str(&format!("{flags:#x} (flags {})", names::open_flags(*flags as i32)));
            }
            ("fcntl", Ok(flags))
                if matches!(call.args.get(1), Some(Arg::Int(cmd)) if *cmd == i64::from(libc::F_GETFD))
                    && *flags != 0 =>
            {
                out.truncate(out.len() - ret(result).len());
                out.push_str(&format!("{flags:#x} (flags FD_CLOEXEC)"));
            }
            _ => {}
        }
        // strace adds the descriptors that are ready: `= 1 ([{fd=3, revents=POLLIN}])`.
        if let (Some(Arg::PollFds(fds)), Ok(n)) = (call.args.first(), result)
            && *n > 0
        {
            let ready: Vec<String> = fds
                .iter()
                .filter(|p| p.revents != 0)
                .map(|p| format!("{{fd={}, revents={}}}", p.fd, names::poll_events(p.revents)))
                .collect();
            out.push_str(&format!(" ([{}])", ready.join(", ")));
        }
    }
    // io_uring: what the call submitted and what was waiting in the completion ring, beneath it.
    #[cfg(socklab_uring)]
    if call.name == "io_uring_enter" {
        out.push_str(&super::uring::lines_beneath(call));
    }
    out
}

/// The arguments between the parentheses.
pub fn args(call: &Call<'_>) -> String {
    let mut out = String::new();
    let domain = call.args.iter().find_map(|a| if let Arg::Domain(d) = a { Some(*d) } else { None });
    for (i, a) in call.args.iter().enumerate() {
        // io_uring: the SQEs and CQEs of an io_uring_enter go beneath the line (see `lines`).
        #[cfg(socklab_uring)]
        if super::uring::beneath(a) {
            continue;
        }
        if i > 0 {
            out.push_str(", ");
        }
        let entering = matches!(call.phase, Phase::Enter);
        match a {
            Arg::Int(n) if call.name == "fcntl" && i == 1 => out.push_str(&fcntl_cmd(*n)),
            // F_SETFL / F_SETFD's argument is a flag set: `O_RDWR|O_NONBLOCK`, `FD_CLOEXEC`.
            Arg::Int(n) if call.name == "fcntl" && i == 2 => match call.args.get(1) {
                Some(Arg::Int(cmd)) if *cmd == i64::from(libc::F_SETFL) => out.push_str(&names::open_flags(*n as i32)),
                Some(Arg::Int(cmd)) if *cmd == i64::from(libc::F_SETFD) => {
                    out.push_str(&names::flag_names(*n as i32, &[(libc::FD_CLOEXEC, "FD_CLOEXEC")]))
                }
                _ => arg(&mut out, a),
            },
            // Before recvfrom returns there is nothing to show in its buffer yet.
            Arg::Data(_) if entering && matches!(call.name, "recvfrom" | "read" | "readlink") => out.push_str("..."),
            Arg::Protocol(p) => out.push_str(&protocol(domain.unwrap_or(0), *p)),
            // A netlink socket's messages, decoded as strace decodes them (see `netlink.rs`).
            #[cfg(socklab_sock_diag)]
            Arg::Data(bytes) if i == 1 && matches!(call.name, "sendto" | "recvfrom") && netlink_fd(call).is_some() => {
                out.push_str(&super::netlink::decode(bytes, netlink_fd(call).flatten()))
            }
            other => arg(&mut out, other),
        }
    }
    out
}

fn arg(out: &mut String, a: &Arg<'_>) {
    let _ = match a {
        Arg::Fd(fd) => write!(out, "{fd}"),
        Arg::Int(n) => write!(out, "{n}"),
        Arg::Domain(d) => write!(out, "{}", names::domain(*d)),
        Arg::SockType(t) => write!(out, "{}", names::sock_type(*t)),
        Arg::Protocol(p) => write!(out, "{}", names::protocol(*p)),
        Arg::Addr(addr) => write!(out, "{}", sockaddr(addr)),
        Arg::AddrOut(addr, cap, got) => {
            match addr {
                Some(addr) => out.push_str(&sockaddr(addr)),
                None => out.push_str("..."),
            }
            match got {
                Some(got) if got != cap => write!(out, ", [{cap} => {got}]"),
                _ => write!(out, ", [{cap}]"),
            }
        }
        Arg::PtrLen(p, len) => write!(out, "{p:#x}, [{len}]"),
        Arg::FdPair(Some((a, b))) => write!(out, "[{a}, {b}]"),
        Arg::FdPair(None) => write!(out, "..."),
        Arg::Signal(sig) => write!(out, "{}", names::signal(*sig)),
        Arg::SigHow(how) => write!(out, "{}", names::sigprocmask_how(*how)),
        Arg::SigSet(bits) => write!(out, "{}", names::sigset(*bits)),
        Arg::Handler(handler, flags) => {
            let _ = write!(
                out,
                "{{sa_handler={}, sa_mask=[], sa_flags={}",
                names::sighandler(*handler),
                names::sa_flags(*flags)
            );
            // glibc points sa_restorer at its own return-from-handler stub, whose address the
            // program cannot learn; strace prints it, the narration says it is there.
            if flags & SA_RESTORER != 0 {
                out.push_str(", sa_restorer=...");
            }
            out.push('}');
            Ok(())
        }
        Arg::WaitOptions(options) => write!(out, "{}", names::flag_names(*options, &[(libc::WNOHANG, "WNOHANG")])),
        Arg::WaitStatus(Some(status)) => write!(out, "[{}]", names::wait_status(*status)),
        Arg::WaitStatus(None) => write!(out, "..."),
        Arg::Resource(r) => write!(out, "{}", names::rlimit_resource(*r)),
        Arg::Rlimit(cur, max) => {
            write!(out, "{{rlim_cur={}, rlim_max={}}}", names::rlimit_value(*cur), names::rlimit_value(*max))
        }
        Arg::Rusage(user, system) => write!(
            out,
            "{{ru_utime={{tv_sec={}, tv_usec={}}}, ru_stime={{tv_sec={}, tv_usec={}}}, ...}}",
            user / 1_000_000,
            user % 1_000_000,
            system / 1_000_000,
            system % 1_000_000
        ),
        Arg::OptLen(len) => write!(out, "[{len}]"),
        Arg::Data(bytes) => write!(out, "{}", quote(bytes)),
        Arg::MsgFlags(f) => write!(out, "{}", names::msg_flags(*f)),
        Arg::AcceptFlags(f) => write!(out, "{}", names::accept_flags(*f)),
        Arg::How(h) => write!(out, "{}", names::how(*h)),
        Arg::SockOpt(level, name) => write!(out, "{}", names::sockopt(*level, *name)),
        Arg::OptInt(v) => write!(out, "[{v}]"),
        Arg::OptLinger { onoff, linger } => write!(out, "{{l_onoff={onoff}, l_linger={linger}}}"),
        Arg::OptTimeval { sec, usec } => write!(out, "{{tv_sec={sec}, tv_usec={usec}}}"),
        Arg::OptOut => write!(out, "..."),
        Arg::Null => write!(out, "NULL"),
        Arg::Prot(p) => write!(out, "{}", names::prot(*p)),
        Arg::MapFlags(f) => write!(out, "{}", names::map_flags(*f)),
        Arg::CpuSet(mask) => {
            let cpus: Vec<String> = crate::sys::resource::cpus_in(mask).iter().map(|n| n.to_string()).collect();
            write!(out, "[{}]", cpus.join(" "))
        }
        Arg::Hex(0) => write!(out, "0"),
        Arg::Hex(v) => write!(out, "{v:#x}"),
        Arg::Ptr(p) => write!(out, "{p:#x}"),
        Arg::Name(name) => write!(out, "{name}"),
        #[cfg(socklab_epoll)]
        Arg::EpollFlags(f) => write!(out, "{}", names::epoll_flags(*f)),
        #[cfg(socklab_epoll)]
        Arg::EpollOp(op) => write!(out, "{}", names::epoll_op(*op)),
        #[cfg(socklab_epoll)]
        Arg::EpollEvent { events, data } => write!(out, "{}", epoll_event(*events, *data)),
        #[cfg(socklab_epoll)]
        Arg::EpollEvents(list) => {
            let each: Vec<String> = list
                .iter()
                .map(|e| {
                    let (events, data) = (e.events, e.u64); // copies: the struct is packed on x86-64
                    epoll_event(events, data)
                })
                .collect();
            write!(out, "[{}]", each.join(", "))
        }
        Arg::PollFds(fds) => {
            let each: Vec<String> =
                fds.iter().map(|p| format!("{{fd={}, events={}}}", p.fd, names::poll_events(p.events))).collect();
            write!(out, "[{}]", each.join(", "))
        }
        Arg::PeerCred { pid, uid, gid } => write!(out, "{{pid={pid}, uid={uid}, gid={gid}}}"),
        Arg::Path(p) => write!(out, "{}", quote_all(p)),
        Arg::OpenFlags(f) => write!(out, "{}", names::openat_flags(*f)),
        Arg::Mode(m) => write!(out, "0{m:o}"),
        Arg::Dirents(p, None) => write!(out, "{p:#x}"),
        Arg::Dirents(p, Some(n)) => write!(out, "{p:#x} /* {n} entries */"),
        Arg::Msg { data, iov_len, fds, controllen, flags } => {
            write!(out, "{}", msghdr(*data, *iov_len, fds, *controllen, *flags))
        }
        Arg::Stat { mode, size, rdev } => write!(out, "{}", stat(*mode, *size, *rdev)),
        Arg::Timespec { sec, nsec } => write!(out, "{{tv_sec={sec}, tv_nsec={nsec}}}"),
        Arg::SigInfo { signo, code, pid, uid } => {
            let code = match *code {
                0 => "SI_USER".to_string(),
                0x80 => "SI_KERNEL".to_string(),
                -1 => "SI_QUEUE".to_string(),
                -6 => "SI_TKILL".to_string(),
                other => other.to_string(),
            };
            write!(out, "{{si_signo={}, si_code={code}, si_pid={pid}, si_uid={uid}}}", names::signal(*signo))
        }
        // io_uring arguments (src/trace/uring.rs).
        #[cfg(socklab_uring)]
        Arg::UringParams(_) | Arg::UringEnterFlags(_) | Arg::UringRegisterOp(_) | Arg::UringBufReg { .. } => {
            out.push_str(&super::uring::arg(a).unwrap_or_default());
            Ok(())
        }
        // `Arg` is non-exhaustive: a variant added later prints as its Debug form until named here.
        #[allow(unreachable_patterns)]
        other => write!(out, "{other:?}"),
    };
}

/// `Some(protocol)` when the call's descriptor is a netlink socket strace can name the protocol
/// of (it has an address), `Some(None)` for one it cannot yet; `None` for any other descriptor.
#[cfg(socklab_sock_diag)]
fn netlink_fd(call: &Call<'_>) -> Option<Option<i32>> {
    let Some(Arg::Fd(fd)) = call.args.first() else { return None };
    let known = super::fds::known(*fd)?;
    (known.domain == libc::AF_NETLINK).then_some(known.nl_bound.then_some(known.protocol))
}

/// `{st_mode=S_IFSOCK|0755, st_size=0, ...}`, strace's short form of a `struct stat`.
fn stat(mode: u32, size: i64, rdev: u64) -> String {
    let kind = match mode & libc::S_IFMT {
        libc::S_IFSOCK => "S_IFSOCK",
        libc::S_IFLNK => "S_IFLNK",
        libc::S_IFREG => "S_IFREG",
        libc::S_IFBLK => "S_IFBLK",
        libc::S_IFDIR => "S_IFDIR",
        libc::S_IFCHR => "S_IFCHR",
        _ => "S_IFIFO",
    };
    let mut bits = String::new();
    for (bit, name) in [(libc::S_ISUID, "S_ISUID"), (libc::S_ISGID, "S_ISGID"), (libc::S_ISVTX, "S_ISVTX")] {
        if mode & bit != 0 {
            bits.push('|');
            bits.push_str(name);
        }
    }
    let tail = if matches!(mode & libc::S_IFMT, libc::S_IFCHR | libc::S_IFBLK) {
        format!("st_rdev=makedev({:#x}, {:#x})", libc::major(rdev), libc::minor(rdev))
    } else {
        format!("st_size={size}")
    };
    let perm = mode & 0o777;
    let perm = if perm == 0 { "0".to_string() } else { format!("0{perm:o}") };
    format!("{{st_mode={kind}{bits}|{perm}, {tail}, ...}}")
}

/// socket(2)'s protocol, which means something different in each family.
fn protocol(domain: i32, p: i32) -> String {
    match domain {
        // AF_PACKET's protocol is an EtherType in network byte order.
        #[cfg(socklab_af_packet)]
        libc::AF_PACKET => format!("htons({})", names::ether_type(u16::from_be(p as u16))),
        #[cfg(socklab_sock_diag)]
        libc::AF_NETLINK => names::netlink_protocol(p),
        // strace prints AF_UNIX's protocol as a number.
        libc::AF_UNIX => p.to_string(),
        _ => names::protocol(p),
    }
}

fn fcntl_cmd(cmd: i64) -> String {
    match cmd as i32 {
        libc::F_GETFD => "F_GETFD".into(),
        libc::F_SETFD => "F_SETFD".into(),
        libc::F_GETFL => "F_GETFL".into(),
        libc::F_SETFL => "F_SETFL".into(),
        other => other.to_string(),
    }
}

/// A sockaddr as strace prints it, for every family socklab uses:
/// `{sa_family=AF_INET, sin_port=htons(5000), sin_addr=inet_addr("127.0.0.1")}`, its IPv6 form,
/// `{sa_family=AF_UNIX, sun_path="/tmp/s"}` (`@"name"` for an abstract name), `AF_PACKET`'s
/// `sockaddr_ll` and `AF_NETLINK`'s `sockaddr_nl`.
pub fn sockaddr(addr: &SockAddr) -> String {
    if let Some(a) = addr.as_socket() {
        return match a {
            std::net::SocketAddr::V4(a) => {
                format!("{{sa_family=AF_INET, sin_port=htons({}), sin_addr=inet_addr(\"{}\")}}", a.port(), a.ip())
            }
            std::net::SocketAddr::V6(a) => format!(
                "{{sa_family=AF_INET6, sin6_port=htons({}), sin6_flowinfo=htonl({}), inet_pton(AF_INET6, \"{}\", \
                 &sin6_addr), sin6_scope_id={}}}",
                a.port(),
                a.flowinfo(),
                a.ip(),
                a.scope_id()
            ),
        };
    }
    match addr.as_unix() {
        Some(UnixName::Path(p)) => return format!("{{sa_family=AF_UNIX, sun_path={}}}", quote_all(p)),
        Some(UnixName::Abstract(n)) => return format!("{{sa_family=AF_UNIX, sun_path=@{}}}", quote_all(n)),
        Some(UnixName::Unnamed) => return "{sa_family=AF_UNIX}".to_string(),
        None => {}
    }
    #[cfg(socklab_af_packet)]
    if let Some((ifindex, protocol)) = addr.as_packet() {
        return format!(
            "{{sa_family=AF_PACKET, sll_protocol=htons({}), sll_ifindex={ifindex}, sll_hatype=ARPHRD_NETROM, \
             sll_pkttype=PACKET_HOST, sll_halen=0}}",
            names::ether_type(protocol)
        );
    }
    #[cfg(socklab_sock_diag)]
    if let Some((pid, groups)) = addr.as_netlink() {
        return format!("{{sa_family=AF_NETLINK, nl_pid={pid}, nl_groups={groups:08x}}}");
    }
    format!(
        "{{sa_family={}, sa_data={}}}",
        names::domain(addr.family()),
        quote(addr.as_bytes().get(2..).unwrap_or(&[]))
    )
}

/// A whole name quoted as strace quotes paths (no 32-byte cut: strace prints paths in full).
fn quote_all(bytes: &[u8]) -> String {
    let mut out = quote(&bytes[..bytes.len().min(MAX_STRLEN)]);
    if bytes.len() > MAX_STRLEN {
        out.pop();
        out.push_str(&quote(&bytes[MAX_STRLEN..])[1..]);
    }
    out
}

/// A `struct msghdr` as strace prints it, for socklab's one shape (no name, one iovec, at most one
/// SCM_RIGHTS message): `{msg_name=NULL, msg_namelen=0, msg_iov=[{iov_base="x", iov_len=1}],
/// msg_iovlen=1, msg_control=[{cmsg_len=20, cmsg_level=SOL_SOCKET, cmsg_type=SCM_RIGHTS,
/// cmsg_data=[7]}], msg_controllen=24, msg_flags=0}`.
fn msghdr(data: Option<&[u8]>, iov_len: usize, fds: &[i32], controllen: usize, flags: i32) -> String {
    let Some(data) = data else { return "...".to_string() };
    let mut out = format!(
        "{{msg_name=NULL, msg_namelen=0, msg_iov=[{{iov_base={}, iov_len={iov_len}}}], msg_iovlen=1, ",
        quote(data)
    );
    if !fds.is_empty() {
        let list: Vec<String> = fds.iter().map(i32::to_string).collect();
        let _ = write!(
            out,
            "msg_control=[{{cmsg_len={}, cmsg_level=SOL_SOCKET, cmsg_type=SCM_RIGHTS, cmsg_data=[{}]}}], ",
            crate::sys::cmsg_len(fds.len()),
            list.join(", ")
        );
    }
    let _ = write!(out, "msg_controllen={controllen}, msg_flags={}}}", names::msg_flags(flags));
    out
}

/// `{events=EPOLLIN, data={u32=3, u64=3}}`, as strace prints a `struct epoll_event`.
#[cfg(socklab_epoll)]
fn epoll_event(events: u32, data: u64) -> String {
    format!("{{events={}, data={{u32={}, u64={data}}}}}", names::epoll_events(events), data as u32)
}

/// What strace prints after a call a caught signal interrupted: the signal with its siginfo, and
/// the handler's return, which hands the call's `EINTR` to the program:
/// `--- SIGINT {si_signo=SIGINT, si_code=SI_USER, si_pid=42, si_uid=0} ---` and
/// `rt_sigreturn({mask=[]}) = -1 EINTR (Interrupted system call)`. `None` for a signal whose
/// siginfo strace prints with fields the handler does not keep (a timer's, a queued one's).
pub fn caught_signal(caught: &crate::process::Caught) -> Option<(String, String)> {
    let signo = names::signal(caught.signo);
    let info = match caught.code {
        0 => format!("si_code=SI_USER, si_pid={}, si_uid={}", caught.pid, caught.uid),
        -6 => format!("si_code=SI_TKILL, si_pid={}, si_uid={}", caught.pid, caught.uid),
        0x80 => "si_code=SI_KERNEL".to_string(),
        _ => return None,
    };
    let mut ret = format!("rt_sigreturn({{mask={}}})", names::sigset(caught.mask));
    while ret.chars().count() < 39 {
        ret.push(' ');
    }
    ret.push_str(" = -1 EINTR (Interrupted system call)");
    Some((format!("--- {signo} {{si_signo={signo}, {info}}} ---"), ret))
}

/// The result: `3`, or `-1 ECONNREFUSED (Connection refused)`.
pub fn ret(result: &io::Result<i64>) -> String {
    ret_of("", result)
}

/// The result of call `name`. A call interrupted by a handler without SA_RESTART returns EINTR to
/// the program, but strace shows what the kernel decided inside: `? ERESTARTSYS` for the socket
/// calls and wait4 (restart had the handler asked for it).
pub fn ret_of(name: &str, result: &io::Result<i64>) -> String {
    if let Err(e) = result
        && e.raw_os_error() == Some(libc::EINTR)
        && matches!(name, "accept4" | "accept" | "connect" | "recvfrom" | "sendto" | "wait4" | "read" | "write")
    {
        return "? ERESTARTSYS (To be restarted if SA_RESTART is set)".into();
    }
    // poll is never restarted after a handler: strace shows the kernel's ERESTARTNOHAND.
    if let Err(e) = result
        && e.raw_os_error() == Some(libc::EINTR)
        && name == "poll"
    {
        return "? ERESTARTNOHAND (To be restarted if no handler)".into();
    }
    match result {
        // mmap returns an address, which strace prints in hex.
        Ok(n) if name == "mmap" => format!("{n:#x}"),
        Ok(n) => n.to_string(),
        Err(e) => match e.raw_os_error() {
            Some(errno) => format!("-1 {}", names::errno_display(errno)),
            None => format!("-1 ({e})"),
        },
    }
}

/// Bytes as strace quotes them: a C string literal of at most [`MAX_STRLEN`] bytes, then `...`.
pub fn quote(data: &[u8]) -> String {
    let shown = &data[..data.len().min(MAX_STRLEN)];
    let mut out = String::with_capacity(shown.len() + 2);
    out.push('"');
    for (i, &c) in shown.iter().enumerate() {
        match c {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\x0c' => out.push_str("\\f"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b'\x0b' => out.push_str("\\v"),
            b' '..=b'~' => out.push(c as char),
            _ => {
                // Octal, as short as possible, unless an octal digit follows (then always 3 digits,
                // so "\1" + "2" is not read back as "\12").
                let next_is_digit = shown.get(i + 1).is_some_and(|d| (b'0'..=b'7').contains(d));
                if next_is_digit || c >= 0o100 {
                    let _ = write!(out, "\\{c:03o}");
                } else if c >= 0o10 {
                    let _ = write!(out, "\\{c:02o}");
                } else {
                    let _ = write!(out, "\\{c:o}");
                }
            }
        }
    }
    out.push('"');
    if data.len() > MAX_STRLEN {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit<'a>(name: &'static str, args: &'a [Arg<'a>], res: &'a io::Result<i64>) -> String {
        line(&Call { name, args, phase: Phase::Exit(res) })
    }

    #[test]
    fn stat_prints_as_strace_does() {
        assert_eq!(stat(libc::S_IFSOCK | 0o755, 0, 0), "{st_mode=S_IFSOCK|0755, st_size=0, ...}");
        assert_eq!(
            stat(libc::S_IFDIR | libc::S_ISVTX | 0o777, 12288, 0),
            "{st_mode=S_IFDIR|S_ISVTX|0777, st_size=12288, ...}"
        );
        assert_eq!(
            stat(libc::S_IFCHR | 0o666, 0, libc::makedev(1, 3)),
            "{st_mode=S_IFCHR|0666, st_rdev=makedev(0x1, 0x3), ...}"
        );
    }

    #[test]
    fn fcntl_flags_print_by_name() {
        let setfl = [Arg::Fd(3), Arg::Int(libc::F_SETFL.into()), Arg::Int((libc::O_RDWR | libc::O_NONBLOCK).into())];
        assert_eq!(exit("fcntl", &setfl, &Ok(0)), "fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK)    = 0");
    }

    #[test]
    fn poll_and_epoll_print_as_strace_does() {
        let fds = [libc::pollfd { fd: 3, events: libc::POLLIN, revents: libc::POLLIN }];
        let poll = [Arg::PollFds(&fds), Arg::Int(1), Arg::Int(-1)];
        assert_eq!(
            exit("poll", &poll, &Ok(1)),
            "poll([{fd=3, events=POLLIN}], 1, -1)    = 1 ([{fd=3, revents=POLLIN}])"
        );
        #[cfg(socklab_epoll)]
        {
            let ctl =
                [Arg::Fd(6), Arg::EpollOp(libc::EPOLL_CTL_ADD), Arg::Fd(7), Arg::EpollEvent { events: 1, data: 7 }];
            assert_eq!(
                exit("epoll_ctl", &ctl, &Ok(0)),
                "epoll_ctl(6, EPOLL_CTL_ADD, 7, {events=EPOLLIN, data={u32=7, u64=7}}) = 0"
            );
            assert_eq!(
                exit("epoll_create1", &[Arg::EpollFlags(libc::EPOLL_CLOEXEC)], &Ok(5)).trim_end(),
                "epoll_create1(EPOLL_CLOEXEC)            = 5"
            );
        }
    }

    #[test]
    fn lines_look_like_strace() {
        let addr = SockAddr::from("127.0.0.1:5000".parse::<std::net::SocketAddr>().unwrap());
        assert_eq!(exit("close", &[Arg::Fd(3)], &Ok(0)), "close(3)                                = 0");
        assert_eq!(
            exit("bind", &[Arg::Fd(3), Arg::Addr(&addr), Arg::Int(16)], &Ok(0)),
            "bind(3, {sa_family=AF_INET, sin_port=htons(5000), sin_addr=inet_addr(\"127.0.0.1\")}, 16) = 0"
        );
        let refused = Err(io::Error::from_raw_os_error(libc::ECONNREFUSED));
        assert_eq!(
            exit("connect", &[Arg::Fd(3), Arg::Addr(&addr), Arg::Int(16)], &refused),
            "connect(3, {sa_family=AF_INET, sin_port=htons(5000), sin_addr=inet_addr(\"127.0.0.1\")}, 16) = -1 \
             ECONNREFUSED (Connection refused)"
        );
        let accept = [Arg::Fd(3), Arg::AddrOut(Some(&addr), 128, Some(16)), Arg::AcceptFlags(libc::SOCK_CLOEXEC)];
        assert!(exit("accept4", &accept, &Ok(4)).ends_with("}, [128 => 16], SOCK_CLOEXEC) = 4"));
        let recv = [Arg::Fd(4), Arg::Data(b"Hello"), Arg::Int(2048), Arg::MsgFlags(0), Arg::Null, Arg::Null];
        assert_eq!(exit("recvfrom", &recv, &Ok(5)), "recvfrom(4, \"Hello\", 2048, 0, NULL, NULL) = 5");
        let v6 = SockAddr::from("[::1]:80".parse::<std::net::SocketAddr>().unwrap());
        assert_eq!(
            sockaddr(&v6),
            "{sa_family=AF_INET6, sin6_port=htons(80), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, \"::1\", \
             &sin6_addr), sin6_scope_id=0}"
        );
        let unix = SockAddr::unix("/tmp/echo.sock").unwrap();
        assert_eq!(sockaddr(&unix), "{sa_family=AF_UNIX, sun_path=\"/tmp/echo.sock\"}");
        let abs = SockAddr::unix_abstract(b"socklab").unwrap();
        assert_eq!(sockaddr(&abs), "{sa_family=AF_UNIX, sun_path=@\"socklab\"}");
    }

    #[test]
    fn new_family_calls_look_like_strace() {
        // Lines copied from `strace -f socklab pass-fd` and `strace socklab server --unix`.
        let send = [
            Arg::Fd(3),
            Arg::Msg { data: Some(b"F"), iov_len: 1, fds: &[5], controllen: 24, flags: 0 },
            Arg::MsgFlags(libc::MSG_NOSIGNAL),
        ];
        assert_eq!(
            exit("sendmsg", &send, &Ok(1)),
            "sendmsg(3, {msg_name=NULL, msg_namelen=0, msg_iov=[{iov_base=\"F\", iov_len=1}], msg_iovlen=1, \
             msg_control=[{cmsg_len=20, cmsg_level=SOL_SOCKET, cmsg_type=SCM_RIGHTS, cmsg_data=[5]}], \
             msg_controllen=24, msg_flags=0}, MSG_NOSIGNAL) = 1"
        );
        let eof = [
            Arg::Fd(4),
            Arg::Msg { data: Some(b""), iov_len: 1, fds: &[], controllen: 0, flags: libc::MSG_CMSG_CLOEXEC },
            Arg::MsgFlags(libc::MSG_CMSG_CLOEXEC),
        ];
        assert_eq!(
            exit("recvmsg", &eof, &Ok(0)),
            "recvmsg(4, {msg_name=NULL, msg_namelen=0, msg_iov=[{iov_base=\"\", iov_len=1}], msg_iovlen=1, \
             msg_controllen=0, msg_flags=MSG_CMSG_CLOEXEC}, MSG_CMSG_CLOEXEC) = 0"
        );
        let cred = [
            Arg::Fd(4),
            Arg::SockOpt(libc::SOL_SOCKET, libc::SO_PEERCRED),
            Arg::PeerCred { pid: 9473, uid: 0, gid: 0 },
            Arg::OptLen(12),
        ];
        assert_eq!(
            exit("getsockopt", &cred, &Ok(0)),
            "getsockopt(4, SOL_SOCKET, SO_PEERCRED, {pid=9473, uid=0, gid=0}, [12]) = 0"
        );
        assert_eq!(
            exit("unlink", &[Arg::Path(b"/tmp/s2.sock")], &Ok(0)),
            "unlink(\"/tmp/s2.sock\")                  = 0"
        );
        let from = SockAddr::from("127.0.0.1:54191".parse::<std::net::SocketAddr>().unwrap());
        let recv = [
            Arg::Fd(3),
            Arg::Data(b"Hel"),
            Arg::Int(3),
            Arg::MsgFlags(libc::MSG_TRUNC),
            Arg::AddrOut(Some(&from), 128, Some(16)),
        ];
        assert_eq!(
            exit("recvfrom", &recv, &Ok(5)),
            "recvfrom(3, \"Hel\", 3, MSG_TRUNC, {sa_family=AF_INET, sin_port=htons(54191), \
             sin_addr=inet_addr(\"127.0.0.1\")}, [128 => 16]) = 5"
        );
        let pair = [
            Arg::Domain(libc::AF_UNIX),
            Arg::SockType(libc::SOCK_STREAM | libc::SOCK_CLOEXEC),
            Arg::Protocol(0),
            Arg::FdPair(Some((3, 4))),
        ];
        assert_eq!(exit("socketpair", &pair, &Ok(0)), "socketpair(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC, 0, [3, 4]) = 0");
    }

    #[test]
    fn data_is_quoted_and_cut_like_strace() {
        assert_eq!(quote(b"a\"b\\c\n\t"), r#""a\"b\\c\n\t""#);
        assert_eq!(quote(&[0, b'1', 0, b'x', 0xff]), r#""\0001\0x\377""#);
        assert_eq!(quote(&[b'x'; 33]), format!("\"{}\"...", "x".repeat(32)));
        assert_eq!(quote(&[b'x'; 32]), format!("\"{}\"", "x".repeat(32)));
        assert_eq!(quote("约".as_bytes()), r#""\347\272\246""#);
    }
}
