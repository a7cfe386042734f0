//! `--strace`: what the spawned server's calls showed, read from `strace -f -o FILE`. Each finding
//! quotes the line it comes from; nothing is said that a line does not show.

/// Calls in order, each as one line `PID name(args) = ret`: strace's `<unfinished ...>` and
/// `<... name resumed>` halves (another thread made a call in between) joined again.
pub fn join(text: &str) -> Vec<String> {
    let mut calls: Vec<String> = Vec::new();
    let mut open: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for line in text.lines() {
        let Some((pid, rest)) = line.split_once(' ') else { continue };
        let rest = rest.trim_start();
        if let Some(resumed) = rest.strip_prefix("<... ") {
            if let (Some(i), Some((_, tail))) = (open.remove(pid), resumed.split_once("resumed>")) {
                let head = calls[i].strip_suffix(" <unfinished ...>").unwrap_or(&calls[i]).to_string();
                calls[i] = format!("{head}{tail}");
            }
            continue;
        }
        if rest.ends_with("<unfinished ...>") {
            open.insert(pid.to_string(), calls.len());
        }
        calls.push(format!("{pid} {rest}"));
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
    // Calls on a socket that failed with EPIPE or ECONNRESET, then kept using it.
    if let Some(line) = calls.iter().find(|c| is_send(name(c)) && c.contains("EPIPE")) {
        out.push(format!("a send failed with EPIPE (the peer was gone): {line}"));
    }
    out
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
}
