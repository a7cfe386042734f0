//! `--strace`: what the spawned server's calls showed, read from `strace -f -o FILE`. Each finding
//! quotes the line it comes from; nothing is said that a line does not show.

/// Calls in order, each as one line `PID name(args) = ret`: strace's `<unfinished ...>` and
/// `<... name resumed>` halves (another thread made a call in between) joined again.
pub fn join(text: &str) -> Vec<String> {
    timed(text).into_iter().map(|(_, call)| call).collect()
}

/// The same, each with the time it was made (strace -ttt: seconds since the epoch; 0 when the
/// lines carry no time).
pub fn timed(text: &str) -> Vec<(f64, String)> {
    let mut calls: Vec<(f64, String)> = Vec::new();
    let mut open: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for line in text.lines() {
        let Some((pid, rest)) = line.split_once(' ') else { continue };
        let rest = rest.trim_start();
        // `-ttt`: `1733300000.123456 ` before the call.
        let (t, rest) = match rest.split_once(' ') {
            Some((t, call)) if t.contains('.') && t.parse::<f64>().is_ok() => {
                (t.parse::<f64>().unwrap_or(0.0), call.trim_start())
            }
            _ => (0.0, rest),
        };
        if let Some(resumed) = rest.strip_prefix("<... ") {
            if let (Some(i), Some((_, tail))) = (open.remove(pid), resumed.split_once("resumed>")) {
                let head = calls[i].1.strip_suffix(" <unfinished ...>").unwrap_or(&calls[i].1).to_string();
                calls[i].1 = format!("{head}{tail}");
            }
            continue;
        }
        if rest.ends_with("<unfinished ...>") {
            open.insert(pid.to_string(), calls.len());
        }
        calls.push((t, format!("{pid} {rest}")));
    }
    calls
}

/// The call's name: `sendto` in `123 sendto(5, ...) = 4`.
fn name(call: &str) -> &str {
    call.split_once(' ').map_or("", |(_, r)| r).split('(').next().unwrap_or("")
}

fn pid(call: &str) -> &str {
    call.split(' ').next().unwrap_or("")
}

/// The first argument (the descriptor of a socket call).
fn first_arg(call: &str) -> &str {
    call.split_once('(').map_or("", |(_, r)| r).split([',', ')']).next().unwrap_or("")
}

/// The result after the last ` = `, as a number (`-1` for errors).
fn result(call: &str) -> Option<i64> {
    call.rsplit_once(" = ")?.1.split_whitespace().next()?.parse().ok()
}

/// The length argument of a send (`sendto(fd, buf, LEN, flags, ...)`, `write(fd, buf, LEN)`).
fn send_len(call: &str) -> Option<i64> {
    let args = call.split_once('(')?.1;
    // The buffer is a quoted string that may hold commas: the length follows its closing quote
    // (and strace's `...` when it cut the string short).
    let after = args.rsplit_once("\", ").or_else(|| args.rsplit_once("\"..., "))?.1;
    after.split([',', ')']).next()?.trim().parse().ok()
}

fn is_send(n: &str) -> bool {
    matches!(n, "sendto" | "send" | "write" | "sendmsg" | "writev")
}

/// Findings, each quoting a line of `text` (strace -f output).
pub fn findings(text: &str) -> Vec<String> {
    let calls = join(text);
    let mut out = Vec::new();
    // SIGPIPE delivered, or the process killed by it.
    if let Some(line) = text.lines().find(|l| l.contains("--- SIGPIPE") || l.contains("killed by SIGPIPE")) {
        out.push(format!("SIGPIPE reached the server (its default action ends the process): {}", line.trim()));
    }
    let ignores_sigpipe = text.lines().any(|l| l.contains("SIGPIPE, {sa_handler=SIG_IGN"));
    if !ignores_sigpipe {
        if let Some(line) = calls.iter().find(|c| name(c) == "sendto" && c.contains(", 0, NULL, 0)")) {
            out.push(format!(
                "SIGPIPE is left at its default (no rt_sigaction(SIGPIPE, SIG_IGN) in the trace) and sends pass no \
MSG_NOSIGNAL: {line}"
            ));
        }
    }
    // A short send followed, on that thread, by a call on the same socket that is not a send.
    for (i, call) in calls.iter().enumerate() {
        let (Some(asked), Some(sent)) = (send_len(call), result(call)) else { continue };
        if !is_send(name(call)) || sent < 0 || sent >= asked {
            continue;
        }
        let next = calls[i + 1..].iter().find(|c| pid(c) == pid(call) && first_arg(c) == first_arg(call));
        if let Some(next) = next {
            if !is_send(name(next)) {
                out.push(format!(
                    "a short send ({sent} of {asked} bytes) whose rest was never sent — the next call on that socket is \
{}: {call}  →  {next}",
                    name(next)
                ));
                break;
            }
        }
    }
    // accept failing with EMFILE/ENFILE over and over: a spin.
    let failed: Vec<&String> = calls
        .iter()
        .filter(|c| name(c).starts_with("accept") && (c.contains("EMFILE") || c.contains("ENFILE")))
        .collect();
    if failed.len() >= 100 {
        out.push(format!(
            "accept failed with EMFILE {} times (a loop retrying at once spins): {}",
            failed.len(),
            failed[0]
        ));
    } else if let Some(first) = failed.first() {
        out.push(format!(
            "accept failed with EMFILE {} time(s) (handled: not retried in a spin): {first}",
            failed.len()
        ));
    }
    if let Some(found) = blocking_in_event_loop(&calls) {
        out.push(found);
    }
    // Calls on a socket that failed with EPIPE or ECONNRESET, then kept using it.
    if let Some(line) = calls.iter().find(|c| is_send(name(c)) && c.contains("EPIPE")) {
        out.push(format!("a send failed with EPIPE (the peer was gone): {line}"));
    }
    out
}

/// A server that waits for readiness (epoll_wait, poll, select) and then reads, writes or accepts
/// on a socket it never made nonblocking, on the thread that waits: if that client stalls, or the
/// connection readiness announced is gone by the time accept runs, the call blocks and the whole
/// loop with it. Sockets are followed by descriptor number: made by socket/accept (nonblocking
/// when SOCK_NONBLOCK), switched by fcntl(F_SETFL) or ioctl(FIONBIO), forgotten at close.
fn blocking_in_event_loop(calls: &[String]) -> Option<String> {
    const WAITS: [&str; 7] = ["epoll_wait", "epoll_pwait", "epoll_pwait2", "poll", "ppoll", "select", "pselect6"];
    const IO: [&str; 10] =
        ["recvfrom", "recv", "read", "recvmsg", "sendto", "send", "write", "sendmsg", "accept", "accept4"];
    let waiters: std::collections::HashSet<&str> =
        calls.iter().filter(|c| WAITS.contains(&name(c))).map(|c| pid(c)).collect();
    if waiters.is_empty() {
        return None;
    }
    // Socket descriptor → nonblocking?
    let mut sockets: std::collections::HashMap<i64, bool> = std::collections::HashMap::new();
    for call in calls {
        let (n, fd) = (name(call), first_arg(call).trim().parse::<i64>().ok());
        if IO.contains(&n)
            && waiters.contains(pid(call))
            && let Some(fd) = fd
            && sockets.get(&fd) == Some(&false)
        {
            return Some(format!(
                "a blocking {n} on socket {fd} in a server that waits for readiness ({}): the socket was never made \
nonblocking (no SOCK_NONBLOCK, no fcntl O_NONBLOCK), so a client that stalls stops the whole loop: {call}",
                calls.iter().find(|c| waiters.contains(pid(c)) && WAITS.contains(&name(c))).map_or("", |c| name(c))
            ));
        }
        match n {
            "socket" | "accept" | "accept4" => {
                if let Some(new) = result(call).filter(|r| *r >= 0) {
                    sockets.insert(new, call.contains("SOCK_NONBLOCK"));
                }
            }
            "fcntl" if call.contains("F_SETFL") => {
                if let Some(fd) = fd.filter(|fd| sockets.contains_key(fd)) {
                    sockets.insert(fd, call.contains("O_NONBLOCK"));
                }
            }
            "ioctl" if call.contains("FIONBIO") => {
                if let Some(fd) = fd.filter(|fd| sockets.contains_key(fd)) {
                    sockets.insert(fd, call.contains("[1]"));
                }
            }
            "close" => {
                if let Some(fd) = fd {
                    sockets.remove(&fd);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_join_and_findings_quote_lines() {
        let text = "10 accept4(3, NULL, NULL, SOCK_CLOEXEC <unfinished ...>\n\
11 sendto(5, \"abc, def\"..., 65536, 0, NULL, 0) = 4096\n\
10 <... accept4 resumed>) = 6\n\
11 recvfrom(5, \"x\", 4096, 0, NULL, NULL) = 1\n\
11 --- SIGPIPE {si_signo=SIGPIPE, si_code=SI_USER} ---\n";
        let calls = join(text);
        assert_eq!(calls[0], "10 accept4(3, NULL, NULL, SOCK_CLOEXEC) = 6");
        let found = findings(text);
        assert!(found.iter().any(|f| f.starts_with("SIGPIPE reached") && f.contains("--- SIGPIPE")), "{found:?}");
        assert!(found.iter().any(|f| f.contains("4096 of 65536") && f.contains("recvfrom")), "{found:?}");
        assert!(found.iter().any(|f| f.contains("no MSG_NOSIGNAL")), "{found:?}");
    }

    #[test]
    fn a_blocking_call_in_an_event_loop_is_found_and_a_nonblocking_one_is_not() {
        let blocking = "7 socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_IP) = 3\n\
7 epoll_wait(4, [{events=EPOLLIN, data={u32=3, u64=3}}], 64, -1) = 1\n\
7 accept4(3, NULL, NULL, SOCK_CLOEXEC) = 5\n\
7 epoll_wait(4, [{events=EPOLLIN, data={u32=5, u64=5}}], 64, -1) = 1\n\
7 recvfrom(5, \"hi\", 4096, 0, NULL, NULL) = 2\n";
        let found = findings(blocking);
        assert!(
            found.iter().any(|f| f.contains("a blocking accept4 on socket 3") && f.contains("epoll_wait")),
            "{found:?}"
        );
        let fine = "7 socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC|SOCK_NONBLOCK, IPPROTO_IP) = 3\n\
7 epoll_wait(4, [{events=EPOLLIN, data={u32=3, u64=3}}], 64, -1) = 1\n\
7 accept4(3, NULL, NULL, SOCK_CLOEXEC) = 5\n\
7 fcntl(5, F_SETFL, O_RDWR|O_NONBLOCK) = 0\n\
7 recvfrom(5, \"hi\", 4096, 0, NULL, NULL) = 2\n\
7 write(1, \"hi\\n\", 3) = 3\n";
        assert!(!findings(fine).iter().any(|f| f.contains("a blocking")), "{:?}", findings(fine));
        // A thread per client that never waits for readiness blocks by design: nothing to say.
        let threads = "7 socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_IP) = 3\n\
7 accept4(3, NULL, NULL, SOCK_CLOEXEC) = 5\n\
8 recvfrom(5, \"hi\", 4096, 0, NULL, NULL) = 2\n";
        assert!(!findings(threads).iter().any(|f| f.contains("a blocking")));
    }
}
