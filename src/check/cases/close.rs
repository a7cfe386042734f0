//! Endings: half-close, the server's prompt FIN, empty sessions, resets mid-stream and mid-echo.

use std::time::Duration;

use super::super::flow::{Eof, Plan, ReadMode};
use super::echo::{LESSON_RESET, flow_verdict};
use super::{Case, Needs, Rng, Verdict, connect, eof_says, ms, next_client, s};
use crate::check::flow::Conn;

/// The lesson when the server ends the connection on the client's FIN with echo still unsent.
const LESSON_HALF_CLOSE: &str = "The client half-closed (shutdown(SHUT_WR): \"I will send nothing more\") and the \
server did not echo everything before closing. A FIN ends only the client's direction: recv(2) returning 0 means \
no more data will come, not that the client stopped listening. The server must first send everything it still \
owes (echo what it read, flush what is queued for that client), and only then close. A server that closes as soon \
as recv returns 0, dropping its unsent buffer, cuts the echo. Read: shutdown(2), recv(2) (a return of 0), tcp(7).";

pub const HALF_CLOSE: Case = Case {
    id: "close.half-close",
    group: "close",
    title: "256 KiB in one write, then shutdown(SHUT_WR) at once (five clients): everything echoed, then EOF",
    expected: "each time all 256 KiB back, byte-exact, then the server's FIN (recv returns 0) within 2 s",
    lesson: LESSON_HALF_CLOSE,
    limit: s(15),
    quick_limit: s(10),
    needs: Needs::Any,
    run: |ctx| {
        let mut rng = Rng::new(ctx.seed);
        let total = 256 << 10;
        let mut last = Duration::ZERO;
        // Five clients: whether the FIN reaches the server before it has sent its echo is a matter
        // of timing; one of five clients catches a server that drops its unsent echo at the FIN.
        for round in 1..=ROUNDS {
            let data = rng.bytes(total);
            // One write: the data and the FIN arrive together, before the server has sent much back.
            let plan = Plan { half_close: true, ..Plan::whole(&data) };
            let conn = match connect(ctx) {
                Ok(c) => c,
                Err(v) => return v,
            };
            // Room for all of it at once: the whole message and the FIN are queued together.
            let _ = conn.socket().set_send_buffer_size(1 << 20);
            let deadline = ctx.deadline;
            let flow = conn.pump(&plan, deadline, &mut ctx.transcript);
            if !flow.complete() {
                let v = flow_verdict(&flow, total).prefix(&format!("client {round} of {ROUNDS}: "));
                return if matches!(flow.end, super::super::flow::End::Eof) { v.lesson(LESSON_HALF_CLOSE) } else { v };
            }
            match conn.expect_eof(Duration::from_secs(2)) {
                Eof::After(d) => last = d,
                other => {
                    return Verdict::fail(format!(
                        "client {round}: all {total} bytes back, but then {}",
                        eof_says(&other)
                    ))
                    .lesson(LESSON_NO_FIN);
                }
            }
        }
        Verdict::pass(format!(
            "{ROUNDS} clients: all {total} bytes back each time, then the server's FIN ({} after the last)",
            ms(last)
        ))
    },
};

const ROUNDS: usize = 5;

/// The lesson when the server does not close after the client's FIN.
const LESSON_NO_FIN: &str = "After the client's FIN the server did not close its side promptly (or sent bytes \
nobody sent). recv(2) returning 0 is the only end-of-file a TCP server gets: the server must check for it, close \
the connection and free what it holds for it. A server that treats 0 as \"no data yet\" spins or keeps the \
connection for ever, and its descriptors run out. Read: recv(2) (RETURN VALUE), close(2).";

pub const EOF_PROMPT: Case = Case {
    id: "close.eof-prompt",
    group: "close",
    title: "after the echo, the client's FIN: the server closes promptly",
    expected: "\"Hello\" back, then after shutdown(SHUT_WR) the server's FIN within 2 s and nothing else",
    lesson: LESSON_NO_FIN,
    limit: s(6),
    quick_limit: s(6),
    needs: Needs::Any,
    run: |ctx| {
        let conn = match connect(ctx) {
            Ok(c) => c,
            Err(v) => return v,
        };
        let deadline = ctx.deadline;
        let flow = conn.pump(&Plan::whole(b"Hello"), deadline, &mut ctx.transcript);
        if !flow.complete() {
            return flow_verdict(&flow, 5);
        }
        if let Err(e) = conn.shutdown_write() {
            return Verdict::fail(format!("shutdown failed: {e}"));
        }
        ctx.transcript.step("shutdown(SHUT_WR)".into());
        match conn.expect_eof(Duration::from_secs(2)) {
            Eof::After(d) => {
                ctx.transcript.step(format!("recv = 0 after {}", ms(d)));
                Verdict::pass(format!("the server's FIN came {} after ours", ms(d)))
            }
            Eof::Error(e) if e.raw_os_error() == Some(libc::ECONNRESET) => {
                Verdict::fail(format!("the server reset the connection instead of closing it: {e}"))
                    .lesson(LESSON_RESET)
            }
            other => Verdict::fail(eof_says(&other)),
        }
    },
};

pub const EMPTY_SESSIONS: Case = Case {
    id: "close.empty-sessions",
    group: "close",
    title: "clients that connect and leave without a byte (FIN, and RST), then a normal client",
    expected: "the server shrugs them off and serves the next client",
    lesson: "Clients that left without sending anything broke the server. A connection may end before its first \
byte: recv(2) returns 0 at once (the client closed) or fails with ECONNRESET (it reset), and accept(2) itself may \
return a connection that is already reset (ECONNABORTED on some systems). Each is the end of that client only. \
Read: accept(2) (ERRORS), recv(2).",
    limit: s(8),
    quick_limit: s(8),
    needs: Needs::Any,
    run: |ctx| {
        for i in 0..6 {
            let conn = match connect(ctx) {
                Ok(c) => c,
                Err(v) => return v,
            };
            if i % 2 == 0 {
                drop(conn);
                ctx.transcript.step("close() without sending: FIN".into());
            } else {
                conn.reset();
                ctx.transcript.step("close() with SO_LINGER 0 without sending: RST".into());
            }
        }
        match next_client(ctx, Duration::from_secs(5)) {
            Ok(d) => {
                Verdict::pass(format!("after 6 empty sessions (3 FIN, 3 RST) the next client was served in {}", ms(d)))
            }
            Err(e) => Verdict::fail(format!("after 6 empty sessions (3 FIN, 3 RST) {e}")),
        }
    },
};

const LESSON_RST: &str = "After a client reset its connection, the server did not serve the next client. A reset \
makes the server's next recv(2) or send(2) on that socket fail with ECONNRESET, and later sends with EPIPE (and \
SIGPIPE, unless ignored or MSG_NOSIGNAL is passed). That must end that client: close its socket and go on \
serving the others. A server that exits, or loops on the error, serves nobody. Read: tcp(7) (ECONNRESET), \
send(2) (EPIPE), signal(7).";

pub const RST_MID_STREAM: Case = Case {
    id: "close.rst-mid-stream",
    group: "close",
    title: "a client resets (RST) halfway through sending, without reading; then the next client",
    expected: "the server ends that connection and serves the next client",
    lesson: LESSON_RST,
    limit: s(10),
    quick_limit: s(10),
    needs: Needs::Any,
    run: |ctx| {
        let mut rng = Rng::new(ctx.seed);
        let data = rng.bytes(256 << 10);
        for _ in 0..3 {
            let conn = match connect(ctx) {
                Ok(c) => c,
                Err(v) => return v,
            };
            let plan = Plan {
                chunks: rng.chunks(data.len(), 1024, 32 * 1024),
                read: ReadMode::Never,
                stall: Duration::from_millis(500),
                ..Plan::whole(&data)
            };
            let deadline = ctx.deadline;
            let flow = conn.pump(&plan, deadline, &mut ctx.transcript);
            conn.reset();
            ctx.transcript.step(format!("RST after sending {} bytes, none read", flow.sent));
        }
        match next_client(ctx, Duration::from_secs(5)) {
            Ok(d) => Verdict::pass(format!("after 3 clients reset mid-stream the next client was served in {}", ms(d))),
            Err(e) => Verdict::fail(format!("after 3 clients reset mid-stream {e}")),
        }
    },
};

pub const RST_MID_ECHO: Case = Case {
    id: "close.rst-mid-echo",
    group: "close",
    title: "a client resets while the server is echoing 2 MiB to it (its sends then fail); then the next client",
    expected: "the server's sends to the reset client fail (ECONNRESET, EPIPE); it ends that client and serves the next",
    lesson: LESSON_RST,
    limit: s(12),
    quick_limit: s(10),
    needs: Needs::Any,
    run: |ctx| {
        let mut rng = Rng::new(ctx.seed);
        let total = if ctx.quick { 1 << 20 } else { 2 << 20 };
        let data = rng.bytes(total);
        for round in 0..3 {
            let conn: Conn = match connect(ctx) {
                Ok(c) => c,
                Err(v) => return v,
            };
            let plan = Plan {
                chunks: rng.chunks(total, 16 * 1024, 128 * 1024),
                stop_at: Some(64 * 1024 * (round + 1)),
                ..Plan::whole(&data)
            };
            let deadline = ctx.deadline;
            let flow = conn.pump(&plan, deadline, &mut ctx.transcript);
            if flow.received < plan.stop_at.unwrap_or(0) {
                return flow_verdict(&flow, total);
            }
            conn.reset();
            ctx.transcript.step(format!("RST with {} bytes sent and {} echoed back", flow.sent, flow.received));
        }
        match next_client(ctx, Duration::from_secs(5)) {
            Ok(d) => Verdict::pass(format!("after 3 clients reset mid-echo the next client was served in {}", ms(d))),
            Err(e) => Verdict::fail(format!("after 3 clients reset mid-echo {e}")),
        }
    },
};
