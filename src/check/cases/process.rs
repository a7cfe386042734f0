//! What only a spawned server shows: its descriptors, threads, children and memory in /proc,
//! SIGPIPE, a low descriptor limit, SIGTERM, and a restart on the same port.

use std::time::{Duration, Instant};

use super::super::flow::{Conn, End, Eof, Plan, ReadMode, left};
use super::{Case, Needs, Rng, Verdict, connect, ms, next_client, s};
use crate::check::{Ctx, Peer, proc};
use crate::process::Pid;

/// The server's pid (the command's own process, below a shell or prlimit).
fn server_pid(ctx: &Ctx) -> Option<Pid> {
    let slot = ctx.server.as_ref()?.lock().ok()?;
    slot.spawned.as_ref().map(|s| s.server_pid())
}

/// Whether the spawned server has ended (and how).
fn ended(ctx: &Ctx) -> Option<String> {
    let slot = ctx.server.as_ref()?;
    let mut slot = slot.lock().ok()?;
    slot.spawned.as_mut().and_then(|s| s.exited())
}

/// A mix of short sessions: a clean echo, a reset after the echo, a half-close, an empty one.
fn sessions(ctx: &mut Ctx, count: usize) -> Result<(), Verdict> {
    let mut rng = Rng::new(ctx.seed ^ count as u64);
    for i in 0..count {
        let conn = connect(ctx)?;
        let data = rng.bytes(200);
        let deadline = ctx.deadline;
        match i % 4 {
            0 | 2 => {
                let plan = Plan { half_close: i % 4 == 2, ..Plan::whole(&data) };
                let flow = conn.pump(&plan, deadline, &mut ctx.transcript);
                if !flow.complete() {
                    return Err(super::echo::flow_verdict(&flow, data.len()));
                }
                let _ = conn.shutdown_write();
                // Briefly: a server that never closes shows up in the descriptor count.
                let _ = conn.expect_eof(Duration::from_millis(300).min(left(deadline)));
            }
            1 => {
                let flow = conn.pump(&Plan::whole(&data), deadline, &mut ctx.transcript);
                if !flow.complete() {
                    return Err(super::echo::flow_verdict(&flow, data.len()));
                }
                conn.reset();
            }
            _ => drop(conn),
        }
    }
    Ok(())
}

/// Polls `read` until it is at most `target` or `within` passes; returns the last reading.
fn settle(within: Duration, target: usize, mut read: impl FnMut() -> usize) -> usize {
    let until = Instant::now() + within;
    loop {
        let now = read();
        if now <= target || Instant::now() >= until {
            return now;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub const FD_LEAK: Case = Case {
    id: "process.fd-leak",
    group: "process",
    title: "descriptors in /proc/PID/fd before and after two batches of sessions (clean, reset, half-closed, empty)",
    expected: "the count comes back down after each batch: nothing grows with the number of connections",
    lesson: "The server's open descriptors grew with the number of connections (/proc/PID/fd): an accepted socket \
is not closed on some path — often the error paths (ECONNRESET, a client that left without a byte) or the \
half-close path. Each leaked descriptor keeps a socket and its buffers alive, and at RLIMIT_NOFILE (often 1024) \
accept fails with EMFILE for everyone. Close the connection's descriptor on every way out of its loop. \
Read: close(2), accept(2) (EMFILE), proc(5) (/proc/PID/fd).",
    limit: s(25),
    quick_limit: s(15),
    needs: Needs::Spawn,
    run: |ctx| {
        let Some(pid) = server_pid(ctx) else { return Verdict::fail("no server process to watch") };
        let count = |pid| proc::fds(pid).map_or(0, |f| f.len());
        let before = proc::fds(pid).unwrap_or_default();
        let batch = if ctx.quick { 20 } else { 60 };
        if let Err(v) = sessions(ctx, batch) {
            return v;
        }
        let first = settle(Duration::from_secs(3), before.len(), || count(pid));
        if let Err(v) = sessions(ctx, batch) {
            return v;
        }
        let second = settle(Duration::from_secs(3), first, || count(pid));
        let after = proc::fds(pid).unwrap_or_default();
        let says = format!(
            "pid {pid}: {} descriptors before, {first} after {batch} sessions, {second} after {batch} more",
            before.len()
        );
        ctx.transcript.step(says.clone());
        if second > first || first >= before.len() + batch / 2 {
            let new: Vec<&String> = after.iter().filter(|f| !before.contains(f)).take(8).collect();
            let shown: Vec<&str> = new.iter().map(|s| s.as_str()).collect();
            return Verdict::fail(format!("{says}; new since the start: {}", shown.join(", ")));
        }
        Verdict::pass(says)
    },
};

pub const THREADS: Case = Case {
    id: "process.threads",
    group: "process",
    title: "threads and child processes before and after two batches of sessions: none left, no zombies",
    expected: "threads and children come back down, and no child is left a zombie",
    lesson: "Threads or child processes outlived their clients. A fork(2) server must wait for its children \
(waitpid(-1, ..., WNOHANG) in a loop on SIGCHLD, or SIGCHLD set to SIG_IGN): each child that is never waited for \
stays a zombie in the process table, and the table fills. A thread per client must end when its client leaves \
(and be joined, or detached). Read: wait(2), fork(2), signal(7) (SIGCHLD), pthread_detach(3).",
    limit: s(25),
    quick_limit: s(15),
    needs: Needs::Spawn,
    run: |ctx| {
        let Some(pid) = server_pid(ctx) else { return Verdict::fail("no server process to watch") };
        let threads = |pid| proc::threads(pid).unwrap_or(0) as usize;
        let kids = |pid| proc::children(pid).len();
        let (t0, c0) = (threads(pid), kids(pid));
        let batch = if ctx.quick { 16 } else { 40 };
        if let Err(v) = sessions(ctx, batch) {
            return v;
        }
        let t1 = settle(Duration::from_secs(3), t0, || threads(pid));
        let c1 = settle(Duration::from_secs(3), c0, || kids(pid));
        if let Err(v) = sessions(ctx, batch) {
            return v;
        }
        let t2 = settle(Duration::from_secs(3), t1, || threads(pid));
        let c2 = settle(Duration::from_secs(3), c1, || kids(pid));
        let zombies = proc::zombies(pid);
        let says = format!(
            "pid {pid}: threads {t0} → {t1} → {t2}, children {c0} → {c1} → {c2} over two batches of {batch} sessions; \
{} zombie children",
            zombies.len()
        );
        ctx.transcript.step(says.clone());
        if !zombies.is_empty() {
            let shown: Vec<String> = zombies.iter().take(8).map(|z| z.to_string()).collect();
            return Verdict::fail(format!("{says} (zombie pids: {})", shown.join(", ")));
        }
        if t2 > t1 || c2 > c1 || t1 >= t0 + batch / 2 || c1 >= c0 + batch / 2 {
            return Verdict::fail(says);
        }
        Verdict::pass(says)
    },
};

pub const MEMORY: Case = Case {
    id: "process.memory",
    group: "process",
    title: "resident memory while a client pushes 64 MiB and never reads",
    expected: "memory stays bounded: the server stops reading from a client whose echo it cannot send",
    lesson: "The server's memory grew with what a non-reading client sent: it keeps reading while its sends cannot \
go out, and queues the echo in its own memory without bound — one client can make it use all the memory there is. \
When a client's unsent echo passes a bound, stop reading from that client (drop EPOLLIN / POLLIN for it) until \
the socket is writable again and the backlog drains: then TCP's own flow control holds the client back. \
Read: epoll(7), send(2) (EAGAIN), tcp(7).",
    limit: s(20),
    quick_limit: s(15),
    needs: Needs::Spawn,
    run: |ctx| {
        let Some(pid) = server_pid(ctx) else { return Verdict::fail("no server process to watch") };
        let before = proc::rss_kib_tree(pid);
        let mut rng = Rng::new(ctx.seed);
        let total = if ctx.quick { 24 << 20 } else { 64 << 20 };
        let block = rng.bytes(256 * 1024);
        let mut data = Vec::with_capacity(total);
        while data.len() < total {
            data.extend_from_slice(&block);
        }
        let hog = match connect(ctx) {
            Ok(c) => c,
            Err(v) => return v,
        };
        let _ = hog.socket().set_recv_buffer_size(16 * 1024);
        let plan = Plan {
            chunks: vec![256 * 1024; total / (256 * 1024)],
            read: ReadMode::Never,
            stall: Duration::from_secs(1),
            ..Plan::whole(&data)
        };
        let deadline = ctx.deadline;
        let flow = hog.pump(&plan, deadline, &mut ctx.transcript);
        let peak = proc::rss_kib_tree(pid);
        hog.reset();
        let grew = peak.saturating_sub(before);
        let says = format!(
            "pid {pid}: resident memory {} MiB before, {} MiB after a client sent {:.1} MiB without reading (VmRSS, \
the process and its children)",
            before / 1024,
            peak / 1024,
            flow.sent as f64 / 1048576.0
        );
        ctx.transcript.step(says.clone());
        if grew > 32 * 1024 && grew as usize * 1024 > flow.sent / 2 {
            return Verdict::fail(format!("{says}: it grew by {} MiB", grew / 1024));
        }
        Verdict::pass(says)
    },
};

pub const SIGPIPE: Case = Case {
    id: "process.sigpipe",
    group: "process",
    title: "clients that send and reset (RST; some after a FIN, two while the server is blocked sending) without reading",
    expected: "the server survives every one (SIGPIPE ignored or MSG_NOSIGNAL, EPIPE handled) and serves the next",
    lesson: super::LESSON_SIGPIPE,
    limit: s(15),
    quick_limit: s(12),
    needs: Needs::Spawn,
    run: |ctx| {
        let mut rng = Rng::new(ctx.seed);
        for round in 0..12 {
            let conn = match connect(ctx) {
                Ok(c) => c,
                Err(v) => return v,
            };
            let size = rng.between(256, 512) * 1024;
            let data = rng.bytes(size);
            let plan = Plan { read: ReadMode::Never, stall: Duration::from_millis(300), ..Plan::whole(&data) };
            let deadline = ctx.deadline;
            let flow = conn.pump(&plan, deadline, &mut ctx.transcript);
            // Even rounds: RST at once, with most of the data still queued at the server: its
            // next send fails with ECONNRESET, and a send after that with EPIPE (SIGPIPE). Odd
            // rounds: our FIN first, then RST: the server's socket is in CLOSE-WAIT, where a reset
            // is recorded as EPIPE, so its very next send raises SIGPIPE.
            if round % 2 == 1 {
                let _ = conn.shutdown_write();
                std::thread::sleep(Duration::from_millis(20));
            }
            conn.reset();
            ctx.transcript.step(format!(
                "round {}: sent {} bytes, {}RST",
                round + 1,
                flow.sent,
                if round % 2 == 1 { "FIN, 20 ms, " } else { "" }
            ));
            std::thread::sleep(Duration::from_millis(30));
            if let Some(status) = ended(ctx) {
                return Verdict::fail(format!("after round {} the server had ended: {status}", round + 1));
            }
        }
        // Two more: our FIN reaches the server while it is blocked in send(2) (the echo filled its
        // buffers, we never read), then our RST: in CLOSE-WAIT the reset is recorded as EPIPE, so
        // the send it is blocked in, or its next one, raises SIGPIPE — whatever else it does.
        for round in 13..=14 {
            // Small segments and a small window: the server's send buffer is sized from the MSS,
            // so it fills after some tens of KiB instead of the MiBs a loopback MSS allows.
            let conn = match Conn::connect_tuned(&ctx.peer, ctx.deadline, |s| {
                let _ = s.set_max_segment(536);
                let _ = s.set_recv_buffer_size(4 * 1024);
            }) {
                Ok(c) => c,
                Err(e) => return Verdict::fail(format!("could not connect: {e}")),
            };
            let (sent, blocked) = fill_until_blocked(&conn, &mut rng, Duration::from_secs(3));
            let _ = conn.shutdown_write();
            std::thread::sleep(Duration::from_millis(20));
            conn.reset();
            ctx.transcript.step(format!(
                "round {round}: sent {sent} bytes until {}, FIN, 20 ms, RST",
                if blocked { "the server stopped reading (blocked sending the echo)" } else { "the time ran out" }
            ));
            std::thread::sleep(Duration::from_millis(30));
            if let Some(status) = ended(ctx) {
                return Verdict::fail(format!("after round {round} the server had ended: {status}"));
            }
        }
        match next_client(ctx, Duration::from_secs(5)) {
            Ok(d) => Verdict::pass(format!(
                "the server survived 14 clients that left mid-echo and served the next in {}",
                ms(d)
            )),
            Err(e) => Verdict::fail(format!("after 14 clients that left mid-echo, {e}")),
        }
    },
};

/// Sends to the server until it stops reading while everything sent has reached its kernel:
/// sock_diag shows its socket's Recv-Q holding bytes that stay unread for 50 ms, and ours with an
/// empty Send-Q (so a FIN leaves at once). An echo server that stops reading while its client
/// does not read is blocked in send(2). Returns the bytes sent and whether that was seen.
fn fill_until_blocked(conn: &Conn, rng: &mut Rng, within: Duration) -> (usize, bool) {
    let until = Instant::now() + within;
    // Pieces well below the server's receive buffer (tcp_rmem's 128 KiB at first): once the
    // server stops reading, what we sent still fits in its kernel, and our FIN can follow.
    let piece = rng.bytes(16 * 1024);
    let mut sent = 0;
    while Instant::now() < until {
        let mut off = 0;
        while off < piece.len() && Instant::now() < until {
            match conn.socket().send(&piece[off..]) {
                Ok(n) => off += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(1)),
                Err(_) => return (sent + off, false),
            }
        }
        sent += off;
        let Some((unread, unsent)) = queues(conn) else { return (sent, false) };
        if unread > 0 && unsent == 0 {
            std::thread::sleep(Duration::from_millis(50));
            if queues(conn).is_some_and(|(later, unsent)| later >= unread && unsent == 0) {
                return (sent, true);
            }
        }
    }
    (sent, false)
}

/// (the server's Recv-Q, our Send-Q) for this TCP connection, from sock_diag.
fn queues(conn: &Conn) -> Option<(u32, u32)> {
    let local = conn.socket().local_addr().ok()?.as_socket()?;
    let remote = conn.socket().peer_addr().ok()?.as_socket()?;
    let family = if local.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    let all = crate::diag::Diag::open().ok()?.dump(family, false).ok()?;
    let theirs = all.iter().find(|s| s.local == remote && s.remote == local)?.recv_q;
    let ours = all.iter().find(|s| s.local == local && s.remote == remote)?.send_q;
    Some((theirs, ours))
}

const NOFILE: u64 = 64;

pub const EMFILE: Case = Case {
    id: "process.emfile",
    group: "process",
    title: "RLIMIT_NOFILE 64 (prlimit) and 100 clients: EMFILE at accept; no spinning, recovery afterwards",
    expected: "at the limit accept fails with EMFILE; the server neither dies nor spins on it, and once clients leave \
it serves again",
    lesson: "At its descriptor limit the server misbehaved. accept(2) fails with EMFILE while the connection stays in \
the queue, so the listener stays readable: a poll/epoll loop that just retries spins at 100% CPU, and a server that \
treats the error as fatal dies. Log it, stop accepting for a moment (or until a connection closes), and go on; \
some servers keep a spare descriptor to close, accept and close the extra client politely. Read: accept(2) \
(EMFILE), getrlimit(2) (RLIMIT_NOFILE).",
    limit: s(30),
    quick_limit: s(25),
    needs: Needs::Spawn,
    run: |ctx| {
        let Some(slot) = ctx.server.clone() else { return Verdict::fail("no server process") };
        // Start it again with the low limit.
        let addr = {
            let Ok(mut slot) = slot.lock() else { return Verdict::fail("server slot poisoned") };
            if let Some(mut old) = slot.spawned.take() {
                old.stop(Duration::from_secs(3));
            }
            slot.launch.nofile = Some(NOFILE);
            let started = slot.start(None);
            slot.launch.nofile = None;
            match started {
                Ok(a) => a,
                Err(e) => return Verdict::fail(format!("could not start the server with RLIMIT_NOFILE {NOFILE}: {e}")),
            }
        };
        ctx.peer = Peer::Tcp(addr);
        ctx.stopped_server = true;
        let verdict = at_the_limit(ctx);
        // Back to the normal limit for the next cases.
        if let Ok(mut slot) = slot.lock() {
            if let Some(mut old) = slot.spawned.take() {
                old.stop(Duration::from_secs(3));
            }
        }
        verdict
    },
};

fn at_the_limit(ctx: &mut Ctx) -> Verdict {
    let Some(pid) = server_pid(ctx) else { return Verdict::fail("no server process to watch") };
    let mut held = Vec::new();
    let mut unanswered = 0;
    for _ in 0..100 {
        match Conn::connect(&ctx.peer, Instant::now() + Duration::from_millis(300)) {
            Ok(c) => {
                let _ = c.socket().send(b"x");
                held.push(c);
                unanswered = 0;
            }
            // Three in a row without an answer: the accept queue is full (a server that accepts no
            // more, such as one serving one client at a time); more connects would only wait.
            Err(_) => {
                unanswered += 1;
                if unanswered == 3 {
                    break;
                }
            }
        }
        if let Some(status) = ended(ctx) {
            return Verdict::fail(format!("the server ended at its descriptor limit: {status}"));
        }
    }
    let ticks0 = proc::cpu_ticks(pid).unwrap_or(0);
    let window = Duration::from_millis(1500);
    std::thread::sleep(window);
    let ticks1 = proc::cpu_ticks(pid).unwrap_or(0);
    let fds = proc::fds(pid).map_or(0, |f| f.len());
    // /proc/PID/stat counts CPU time in clock ticks of 10 ms (USER_HZ = 100 on Linux).
    let cpu = (ticks1.saturating_sub(ticks0)) as f64 * 0.01 / window.as_secs_f64();
    let says = format!(
        "limit {NOFILE}: {} clients connected{}, the server used {:.0}% of a CPU over the next {:.1} s and then held \
{fds} descriptors",
        held.len(),
        if unanswered >= 3 { " (then 3 in a row had no answer: its accept queue was full)" } else { "" },
        cpu * 100.0,
        window.as_secs_f64()
    );
    ctx.transcript.step(says.clone());
    if let Some(status) = ended(ctx) {
        return Verdict::fail(format!("{says}; then it ended: {status}"));
    }
    drop(held);
    if cpu > 0.5 {
        return Verdict::fail(format!("{says}: it spins (EMFILE retried at once, over and over)"));
    }
    // Far from the limit: the server never tried to accept past it (one client at a time).
    let reached = fds + 8 >= NOFILE as usize;
    match next_client(ctx, Duration::from_secs(8)) {
        Ok(d) if !reached => Verdict::info(format!(
            "{says}: it never came near its limit (its own process does not hold the clients' descriptors: one \
client at a time, or a process per client), so EMFILE was not tested; once the clients left, the next was served in {}",
            ms(d)
        )),
        Ok(d) => Verdict::pass(format!("{says}; once the clients left, the next was served in {}", ms(d))),
        Err(e) => Verdict::fail(format!("{says}; once the clients left, {e}")),
    }
}

/// How long after SIGTERM the server may take to end (its clients have finished by then).
const GRACE: u64 = 5;

pub const SIGTERM: Case = Case {
    id: "process.sigterm",
    group: "process",
    title: "SIGTERM with an echo in flight: the server ends within 5 s",
    expected: "the process ends within 5 s of SIGTERM (whether the echo in flight is finished or cut is reported)",
    lesson: "The server did not end within 5 s of SIGTERM, the signal every service manager, container runtime and \
shell job control sends to stop a program. Its default action ends the process; a server that installs a handler \
must make its loop notice (a flag checked after EINTR, a self-pipe or signalfd in the poll set) and exit — \
ideally after finishing the echoes in flight. Read: signal(7), sigaction(2) (SA_RESTART), signalfd(2).",
    limit: s(15),
    quick_limit: s(15),
    needs: Needs::Spawn,
    run: |ctx| {
        let Some(slot) = ctx.server.clone() else { return Verdict::fail("no server process") };
        let data = Rng::new(ctx.seed).bytes(512 * 1024);
        let conn = match connect(ctx) {
            Ok(c) => c,
            Err(v) => return v,
        };
        let plan = Plan { stop_at: Some(64 * 1024), ..Plan::whole(&data) };
        let deadline = ctx.deadline;
        let flow = conn.pump(&plan, deadline, &mut ctx.transcript);
        if flow.received < 64 * 1024 {
            return super::echo::flow_verdict(&flow, data.len());
        }
        ctx.stopped_server = true;
        let since = {
            let Ok(mut slot) = slot.lock() else { return Verdict::fail("server slot poisoned") };
            match slot.spawned.as_mut() {
                Some(s) => match s.exited() {
                    Some(status) => {
                        return Verdict::fail(format!("the server had already ended before SIGTERM: {status}"));
                    }
                    None => s.terminate(),
                },
                None => return Verdict::fail("no server process"),
            }
        };
        ctx.transcript.step(format!("SIGTERM with {} of {} bytes echoed", flow.received, data.len()));
        // The client goes on reading, then says it is done (FIN): a server that finishes the
        // echoes in flight before it exits can do so.
        let rest = Plan { chunks: Vec::new(), stall: Duration::from_secs(1), ..Plan::whole(&data[flow.received..]) };
        let after = conn.pump(&rest, deadline, &mut ctx.transcript);
        let inflight = match after.end {
            End::Complete => "the echo in flight was finished".to_string(),
            _ => format!("the echo in flight was cut after {} of {} bytes", flow.received + after.received, data.len()),
        };
        let _ = conn.shutdown_write();
        let _ = conn.expect_eof(Duration::from_secs(1));
        drop(conn);
        let stopped = {
            let Ok(mut slot) = slot.lock() else { return Verdict::fail("server slot poisoned") };
            match slot.spawned.as_mut() {
                Some(s) => s.finish_stop(since, Duration::from_secs(GRACE)),
                None => return Verdict::fail("no server process"),
            }
        };
        if stopped.killed {
            return Verdict::fail(format!(
                "still running {} after SIGTERM: SIGKILL ended it ({})",
                ms(stopped.after),
                stopped.status
            ));
        }
        Verdict::pass(format!("ended within {} of SIGTERM ({}); {inflight}", ms(stopped.after), stopped.status))
    },
};

pub const RESTART: Case = Case {
    id: "process.restart",
    group: "process",
    title: "stopped with a connection open, then started again at once on the same port",
    expected: "the new process listens on the same port within 5 s, although the old connection is in TIME-WAIT \
(SO_REUSEADDR)",
    lesson: "The server could not listen on its port again right after a stop. The connections it closed first are \
kept by the kernel in TIME-WAIT for 60 s, and without SO_REUSEADDR bind(2) refuses the port (EADDRINUSE) while \
any of them exists. Set SO_REUSEADDR on the listening socket before bind: every server restarted by a script, a \
supervisor or a student pressing up-arrow needs it. Read: socket(7) (SO_REUSEADDR), bind(2) (EADDRINUSE), \
tcp(7) (TIME-WAIT).",
    limit: s(20),
    quick_limit: s(20),
    needs: Needs::Spawn,
    run: |ctx| {
        let Some(slot) = ctx.server.clone() else { return Verdict::fail("no server process") };
        let Some(addr) = ctx.peer.tcp() else { return Verdict::skip("TCP only") };
        let conn = match connect(ctx) {
            Ok(c) => c,
            Err(v) => return v,
        };
        let deadline = ctx.deadline;
        let flow = conn.pump(&Plan::whole(b"Hello"), deadline, &mut ctx.transcript);
        if !flow.complete() {
            return super::echo::flow_verdict(&flow, 5);
        }
        ctx.stopped_server = true;
        let Ok(mut slot) = slot.lock() else { return Verdict::fail("server slot poisoned") };
        // A second is enough: the point is the restart, not how the old process ends (a graceful
        // one would wait for this idle client; SIGKILL then closes its sockets just the same).
        let stopped = match slot.spawned.as_mut() {
            Some(s) => s.stop(Duration::from_secs(1)),
            None => return Verdict::fail("no server process"),
        };
        // The server's side closed first (FIN); ours closes now: its socket goes to TIME-WAIT.
        let eof = conn.expect_eof(Duration::from_secs(1));
        drop(conn);
        std::thread::sleep(Duration::from_millis(50));
        let time_wait = time_wait_on(addr.port());
        ctx.transcript.step(format!(
            "stopped ({}); {}; {time_wait} TIME-WAIT socket(s) on port {} (sock_diag)",
            stopped.status,
            match eof {
                Eof::After(_) => "the old connection got the server's FIN and closed".to_string(),
                other => super::eof_says(&other),
            },
            addr.port()
        ));
        let saved = slot.launch.ready_timeout;
        slot.launch.ready_timeout = Duration::from_secs(5);
        let started = Instant::now();
        let result = slot.start(Some(addr.port()));
        slot.launch.ready_timeout = saved;
        match result {
            Ok(new) => {
                drop(slot);
                ctx.peer = Peer::Tcp(new);
                Verdict::pass(format!(
                    "listening again on port {} {} after the start, with {time_wait} TIME-WAIT socket(s) of the old \
process on it",
                    addr.port(),
                    ms(started.elapsed())
                ))
            }
            Err(e) => {
                let text = e.to_string();
                let hint = if text.contains("in use") || text.contains("EADDRINUSE") {
                    " (its stderr says the address is in use)"
                } else {
                    ""
                };
                Verdict::fail(format!(
                    "with {time_wait} TIME-WAIT socket(s) on port {}, the restart failed{hint}: {text}",
                    addr.port()
                ))
            }
        }
    },
};

/// TIME-WAIT sockets on `port` (sock_diag: what `ss -tan state time-wait` lists).
fn time_wait_on(port: u16) -> usize {
    let Ok(mut diag) = crate::diag::Diag::open() else { return 0 };
    diag.dump_all(false)
        .map(|all| all.iter().filter(|s| s.state == crate::diag::TcpState::TimeWait && s.local.port() == port).count())
        .unwrap_or(0)
}
