//! Many clients: one after another, several at once, idle ones, slow ones, non-reading ones, and a
//! storm of connects beyond the listen backlog.

use std::time::{Duration, Instant};

use super::super::crowd::{self, Crowd};
use super::super::flow::{Conn, End, Eof, Plan, ReadMode};
use super::echo::flow_verdict;
use super::{Case, Needs, Rng, Verdict, connect, eof_says, ms, next_client, s};
use crate::check::Ctx;
use crate::process::SpawnCounted;

const LESSON_ONE_AT_A_TIME: &str = "While one client was connected (idle, trickling or not reading), the next client \
was not served. The tutorial's loop — accept, then recv/send until that client leaves — serves one client at a time: \
correct, but every other client waits in the accept queue, however long the first one takes. To serve clients \
together, give each its own thread or process (pthread_create(3), fork(2)), or watch every socket from one thread \
with poll(2) or epoll(7) and only call recv/send on the ones that are ready. (Informational unless --expect \
concurrent.)";

pub const SEQUENTIAL: Case = Case {
    id: "load.sequential",
    group: "load",
    title: "200 connections one after another: connect, echo, FIN, the server's FIN",
    expected: "every one served and closed: no descriptor, buffer or counter runs out",
    lesson: "A connection late in a series of short ones failed. Something grows with every connection and is \
never given back: a descriptor not closed (the server runs into its limit, EMFILE, and accept fails), a thread or \
child never joined or waited for, a table or counter that fills up. Close each accepted socket when its client \
leaves, on every path (the error paths too). Read: close(2), accept(2) (EMFILE), getrlimit(2) (RLIMIT_NOFILE).",
    limit: s(30),
    quick_limit: s(15),
    needs: Needs::Any,
    run: |ctx| {
        let count = if ctx.quick { 40 } else { 200 };
        let mut rng = Rng::new(ctx.seed);
        let started = Instant::now();
        for i in 0..count {
            let data = rng.bytes(100);
            let deadline = ctx.deadline;
            let conn = match Conn::connect(&ctx.peer, deadline) {
                Ok(c) => c,
                Err(e) => {
                    return Verdict::fail(format!("connection {} of {count}: {e}", i + 1))
                        .lesson(super::LESSON_CONNECT);
                }
            };
            let flow = conn.pump(&Plan::whole(&data), deadline, &mut ctx.transcript);
            if !flow.complete() {
                let v = flow_verdict(&flow, data.len());
                return Verdict::fail(format!("connection {} of {count}: {}", i + 1, flow.says(data.len())))
                    .lesson(v.lesson_text());
            }
            let _ = conn.shutdown_write();
            match conn.expect_eof(Duration::from_secs(2).min(super::super::flow::left(deadline))) {
                Eof::After(_) => {}
                other => return Verdict::fail(format!("connection {} of {count}: {}", i + 1, eof_says(&other))),
            }
        }
        let took = started.elapsed();
        ctx.transcript.step(format!("{count} connections in {}", ms(took)));
        Verdict::pass(format!(
            "{count} connections served one after another in {} ({:.0} a second)",
            ms(took),
            count as f64 / took.as_secs_f64().max(1e-6)
        ))
    },
};

/// Waits up to `within` for a second client to be served while `hold` keeps the first busy; if it
/// is not, ends the first (`release`) and sees whether the second is served then.
fn second_client(ctx: &mut Ctx, within: Duration, release: impl FnOnce(&mut Ctx), what: &str) -> Verdict {
    let data = Rng::new(ctx.seed ^ 2).bytes(64);
    let conn = match connect(ctx) {
        Ok(c) => c,
        Err(v) => return v,
    };
    let started = Instant::now();
    let plan = Plan { stall: within, ..Plan::whole(&data) };
    let deadline = ctx.deadline;
    let flow = conn.pump(&plan, deadline, &mut ctx.transcript);
    match flow.end {
        End::Complete => {
            release(ctx);
            return Verdict::pass(format!("a second client was served in {} {what}", ms(started.elapsed())));
        }
        End::Stalled { .. } => {}
        _ => {
            release(ctx);
            return flow_verdict(&flow, data.len());
        }
    }
    let waited = started.elapsed();
    release(ctx);
    ctx.transcript.step(format!("no echo for {}: the first client leaves", ms(waited)));
    // The rest of the echo, once the first client has gone.
    let rest = Plan { chunks: Vec::new(), stall: Duration::from_secs(5), ..Plan::whole(&data[flow.received..]) };
    let more = conn.pump(&rest, deadline, &mut ctx.transcript);
    if more.complete() {
        Verdict::not_concurrent(
            ctx,
            format!(
                "one client at a time: {what}, a second client got no echo for {}; it was served {} after the first left",
                ms(waited),
                ms(started.elapsed() - waited)
            ),
        )
        .lesson(LESSON_ONE_AT_A_TIME)
    } else {
        Verdict::fail(format!(
            "{what}, a second client got no echo for {}, and none after the first left either: {}",
            ms(waited),
            more.says(data.len() - flow.received)
        ))
        .lesson(super::echo::LESSON_STALL)
    }
}

pub const IDLE_CLIENT: Case = Case {
    id: "load.idle-client",
    group: "load",
    title: "a client connects and sends nothing; another must still be served",
    expected: "the second client's echo within 2 s (a server that serves one client at a time is reported, not failed, \
unless --expect concurrent)",
    lesson: LESSON_ONE_AT_A_TIME,
    limit: s(12),
    quick_limit: s(12),
    needs: Needs::Any,
    run: |ctx| {
        let idle = match connect(ctx) {
            Ok(c) => c,
            Err(v) => return v,
        };
        ctx.transcript.step("the first client sends nothing".into());
        // Let an iterative server accept the idle one first, as it would in real life.
        std::thread::sleep(Duration::from_millis(100));
        second_client(ctx, Duration::from_secs(2), move |_| drop(idle), "while another client idled")
    },
};

pub const SLOWLORIS: Case = Case {
    id: "load.slowloris",
    group: "load",
    title: "a client trickles one byte every 100 ms; another must still be served",
    expected: "the second client's echo within 2 s, and the trickling client's bytes echoed too",
    lesson: LESSON_ONE_AT_A_TIME,
    limit: s(14),
    quick_limit: s(14),
    needs: Needs::Any,
    run: |ctx| {
        let slow = match connect(ctx) {
            Ok(c) => c,
            Err(v) => return v,
        };
        slow.nodelay();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        let deadline = ctx.deadline;
        let trickle = std::thread::Builder::new().name("check slowloris".into()).spawn_counted(move || {
            let mut transcript = crate::check::Transcript::default();
            let data = b"slowloris sends this one byte at a time, never in a hurry".to_vec();
            let n = data.len();
            let plan = Plan {
                chunks: vec![1; n],
                pause: Duration::from_millis(100),
                stall: Duration::from_secs(8),
                ..Plan::whole(&data)
            };
            // Stops writing once told to (the plan then waits for the echo of what was sent).
            let mut sent = 0;
            let flow = loop {
                let part =
                    Plan { data: &data[sent..(sent + 5).min(n)], chunks: vec![1; (n - sent).min(5)], ..plan.clone() };
                let flow = slow.pump(&part, deadline, &mut transcript);
                sent += flow.received;
                if !flow.complete() || sent == n || stopping.load(std::sync::atomic::Ordering::Relaxed) {
                    break flow;
                }
            };
            (flow.complete(), sent, flow.says(n))
        });
        std::thread::sleep(Duration::from_millis(150));
        let mut verdict = second_client(
            ctx,
            Duration::from_secs(2),
            |_| stop.store(true, std::sync::atomic::Ordering::Relaxed),
            "while another client trickled a byte every 100 ms",
        );
        match trickle.map(|t| t.join()) {
            Ok(Ok((true, sent, _))) => ctx.transcript.step(format!("the trickling client's {sent} bytes came back")),
            Ok(Ok((false, _, says))) if verdict.is_pass() => {
                verdict = Verdict::fail(format!("the second client was served, but the trickling client: {says}"))
                    .lesson(super::echo::LESSON_EOF_EARLY);
            }
            _ => {}
        }
        verdict
    },
};

pub const NEVER_READER: Case = Case {
    id: "load.never-reader",
    group: "load",
    title: "a client sends 8 MiB and never reads; another must still be served",
    expected: "a server that serves an idle client and another together must also serve another while one client \
never reads its echo",
    lesson: "A client that does not read its echo stopped the whole server. Once that client's receive window and \
the server's send buffer are full, a blocking send(2) waits — for ever, if the client never reads — and a server \
that serves every client from one thread with blocking sends (a select/poll loop calling sendall) stops serving \
everyone. Make the sockets nonblocking (O_NONBLOCK), keep each client's unsent bytes, stop reading from that \
client while they wait, and send them when poll/epoll says the socket is writable. Read: send(2) (EAGAIN), \
poll(2), epoll(7), fcntl(2) (O_NONBLOCK).",
    limit: s(20),
    quick_limit: s(15),
    needs: Needs::Any,
    run: |ctx| {
        // First: does it serve two clients together at all?
        let idle = match connect(ctx) {
            Ok(c) => c,
            Err(v) => return v,
        };
        std::thread::sleep(Duration::from_millis(100));
        let first = second_client(ctx, Duration::from_secs(2), move |_| drop(idle), "while another client idled");
        if !first.is_pass() {
            return first;
        }
        let mut rng = Rng::new(ctx.seed);
        let total = if ctx.quick { 4 << 20 } else { 8 << 20 };
        let data = rng.bytes(total);
        let hog = match connect(ctx) {
            Ok(c) => c,
            Err(v) => return v,
        };
        let _ = hog.socket().set_recv_buffer_size(16 * 1024);
        let plan = Plan {
            chunks: rng.chunks(total, 64 * 1024, 256 * 1024),
            read: ReadMode::Never,
            stall: Duration::from_secs(1),
            ..Plan::whole(&data)
        };
        let deadline = ctx.deadline;
        let flow = hog.pump(&plan, deadline, &mut ctx.transcript);
        ctx.transcript.step(format!("the non-reading client stalled after sending {} bytes", flow.sent));
        let sent = flow.sent;
        second_client(
            ctx,
            Duration::from_secs(2),
            move |_| hog.reset(),
            &format!("while a client that had sent {:.1} MiB read nothing", sent as f64 / 1048576.0),
        )
        .concurrent_only()
    },
};

/// Clients held open together until every one has its echo.
fn together(ctx: &mut Ctx, clients: usize) -> Verdict {
    let run = Crowd { clients, each: 64, hold: true, stall: Duration::from_secs(3), seed: ctx.seed };
    let tally = match crowd::run(&ctx.peer, &run, ctx.deadline) {
        Ok(t) => t,
        Err(e) => return Verdict::fail(format!("the crowd could not start: {e}")),
    };
    ctx.transcript.step(tally.says(clients));
    let says = tally.says(clients);
    if tally.mismatches > 0 {
        return Verdict::fail(says).lesson(super::echo::LESSON_MISMATCH);
    }
    if tally.errors > 0 || tally.refused > 0 {
        return Verdict::fail(says).lesson(LESSON_CROWD_ERRORS);
    }
    if tally.served_at_once == clients {
        return Verdict::pass(format!(
            "all {clients} clients, connected together, were served together in {}",
            ms(tally.elapsed)
        ));
    }
    Verdict::not_concurrent(
        ctx,
        format!("{} of {clients} clients held open together were served: {says}", tally.served_at_once),
    )
    .lesson(LESSON_ONE_AT_A_TIME)
}

const LESSON_CROWD_ERRORS: &str = "With many clients at once, connections failed (refused, reset or closed early). \
Common causes: a listen(2) backlog too small with accept(2) called too slowly (the kernel drops or resets what does not \
fit, depending on net.ipv4.tcp_abort_on_overflow), the descriptor limit reached (EMFILE: raise RLIMIT_NOFILE or \
cap the clients), a fixed-size table of clients that overflows, or a thread limit. Read: listen(2), accept(2) \
(EMFILE), getrlimit(2).";

pub const CONCURRENT_100: Case = Case {
    id: "load.concurrent-100",
    group: "load",
    title: "100 clients connected together, each echoing 64 bytes while all stay open",
    expected: "all 100 echoes while all 100 are open",
    lesson: LESSON_ONE_AT_A_TIME,
    limit: s(12),
    quick_limit: s(10),
    needs: Needs::Any,
    run: |ctx| together(ctx, 100),
};

pub const CONCURRENT_1000: Case = Case {
    id: "load.concurrent-1000",
    group: "load",
    title: "1,000 clients connected together (300 with --quick), each echoing 64 bytes while all stay open",
    expected: "all 1,000 echoes while all 1,000 are open",
    lesson: LESSON_ONE_AT_A_TIME,
    limit: s(20),
    quick_limit: s(12),
    needs: Needs::Any,
    run: |ctx| together(ctx, if ctx.quick { 300 } else { 1000 }),
};

pub const STORM: Case = Case {
    id: "load.storm",
    group: "load",
    title: "1,000 connects at once (200 with --quick), far beyond a listen backlog, each a short session",
    expected: "every client served in the end; SYNs that do not fit the accept queue are dropped and retried by the \
kernel after 1, 3, 7 s..., so a small backlog is slow, not wrong (reported, not failed); no resets, no wrong bytes",
    lesson: LESSON_CROWD_ERRORS,
    limit: s(30),
    quick_limit: s(15),
    needs: Needs::Any,
    run: |ctx| {
        let clients = if ctx.quick { 200 } else { 1000 };
        let run = Crowd { clients, each: 32, hold: false, stall: Duration::from_secs(4), seed: ctx.seed };
        let tally = match crowd::run(&ctx.peer, &run, ctx.deadline) {
            Ok(t) => t,
            Err(e) => return Verdict::fail(format!("the storm could not start: {e}")),
        };
        let says = tally.says(clients);
        ctx.transcript.step(says.clone());
        if tally.mismatches > 0 {
            return Verdict::fail(says).lesson(super::echo::LESSON_MISMATCH);
        }
        if tally.errors > 0 || tally.refused > 0 {
            return Verdict::fail(says);
        }
        if tally.served == clients {
            return Verdict::pass(format!("all {clients} served in {}", ms(tally.elapsed)));
        }
        // Clients left waiting: the kernel is still retrying their SYNs (or the server is stuck).
        drop(tally);
        let backlog = ctx.peer.tcp().and_then(|a| super::family::backlog(a.port()));
        let backlog =
            backlog.map_or(String::new(), |b| format!(" (its listening socket's backlog, sock_diag's Send-Q: {b})"));
        match next_client(ctx, Duration::from_secs(8)) {
            Ok(_) => Verdict::info(format!(
                "{says}: the rest had no answer within the limit (SYNs beyond the accept queue are dropped and retried: \
a small listen backlog or a slow accept loop){backlog}; the server served a client afterwards"
            ))
            .lesson(
                "Not every connect of a burst was answered in time. When the accept queue (the listen(2) backlog) is \
full, Linux drops new SYNs and the clients' kernels retry after 1, 3, 7, 15 s: a burst bigger than the backlog is \
served in waves. A larger backlog (listen(fd, SOMAXCONN)) and an accept loop that drains the queue make bursts \
fast. Read: listen(2) (backlog), tcp(7) (tcp_syn_retries).",
            ),
            Err(e) => Verdict::fail(format!("{says}; then {e}")),
        }
    },
};

impl Verdict {
    fn is_pass(&self) -> bool {
        self.outcome == crate::check::Outcome::Passed
    }

    /// For a case that already established that the server is concurrent: "one at a time" is a
    /// failure here, not a property.
    fn concurrent_only(self) -> Verdict {
        if self.outcome == crate::check::Outcome::Informational {
            Verdict { outcome: crate::check::Outcome::Failed, ..self }
        } else {
            self
        }
    }

    fn lesson_text(&self) -> String {
        self.lesson.clone().unwrap_or_default()
    }
}
