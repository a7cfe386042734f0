//! The echo itself: byte-exact, whatever the write sizes, the bytes, and the reader's pace.

use std::time::{Duration, Instant};

use super::super::flow::{End, Flow, Plan, ReadMode};
use super::{Case, Needs, Rng, Verdict, connect, ms, next_client, s};
use crate::check::Ctx;

/// The lesson when the echo differs from what was sent.
pub const LESSON_MISMATCH: &str = "Bytes came back that were not the bytes sent at that offset: some were lost, \
repeated or reordered. The classic cause is a short write ignored: send(2) and write(2) may take fewer bytes than \
asked (always possible on a nonblocking socket whose send buffer is full, and on a blocking one when a signal \
interrupts it); the rest must be sent later, from where the count says, before reading more. Another is a buffer \
reused while part of it is still waiting to go out. Loop until every byte is sent (the tutorial's sendall) or keep \
the unsent tail per connection and send it when poll/epoll says writable. Read: send(2) (RETURN VALUE), write(2).";

/// The lesson when the server closes before echoing everything.
pub const LESSON_EOF_EARLY: &str = "The server closed the connection before it had echoed every byte. Usually it \
treats one recv(2) as the whole message: TCP is a byte stream and keeps no message boundaries, so one recv returns \
whatever has arrived so far — part of a write, or several writes glued together — and the rest comes in later recvs. \
An echo server keeps calling recv until it returns 0 (the client's FIN) and echoes each piece; only then does it \
close. Read: recv(2) (RETURN VALUE), tcp(7).";

/// The lesson when the server stops echoing while the connection stays open.
pub const LESSON_STALL: &str = "The server stopped echoing while the connection stayed open: it is waiting for \
something this client never sends (a newline, a full buffer, the end of the message), or it is stuck in a blocking \
call on another socket. An echo server sends back each piece as soon as recv(2) returns it; it never waits for more \
data before echoing what it has. Read: recv(2), and poll(2) or epoll(7) for serving several sockets from one thread.";

/// The lesson when the server resets the connection.
pub const LESSON_RESET: &str = "The server reset the connection (ECONNRESET): it closed its socket while bytes it had \
not read were still queued (the kernel then answers with RST instead of FIN, and discards the echo in flight), or it \
set SO_LINGER to zero. Read everything the client sends before closing, or shut down the writing side first. Read: \
tcp(7) (ECONNRESET), close(2), socket(7) (SO_LINGER).";

/// The verdict of a pump that should have echoed everything.
pub(crate) fn flow_verdict(flow: &Flow, total: usize) -> Verdict {
    let says = flow.says(total);
    match &flow.end {
        End::Complete => Verdict::pass(says),
        End::Mismatch(_) => Verdict::fail(says).lesson(LESSON_MISMATCH),
        End::Eof => Verdict::fail(says).lesson(LESSON_EOF_EARLY),
        End::Stalled { writing: false } => Verdict::fail(says).lesson(LESSON_STALL),
        End::Stalled { writing: true } => Verdict::fail(says).lesson(LESSON_STALL),
        End::Error(_, e) if e.raw_os_error() == Some(libc::ECONNRESET) => Verdict::fail(says).lesson(LESSON_RESET),
        End::Error(..) | End::Deadline => Verdict::fail(says),
    }
}

/// Everything was sent and the echo stopped short. Our FIN tells the two stories apart: a server
/// that then closes had nothing more to send (the bytes are lost); one that stays silent is stuck.
pub(crate) fn stalled(ctx: &mut Ctx, conn: &super::super::flow::Conn, flow: &Flow, total: usize) -> Verdict {
    let says = flow.says(total);
    if conn.shutdown_write().is_err() {
        return Verdict::fail(says).lesson(LESSON_STALL);
    }
    ctx.transcript.step("shutdown(SHUT_WR): is more echo coming?".into());
    match conn.expect_eof(Duration::from_secs(2)) {
        super::super::flow::Eof::After(_) => Verdict::fail(format!(
            "{says}; after our FIN the server closed: the last {} bytes never came back (lost)",
            total - flow.received
        ))
        .lesson(LESSON_MISMATCH),
        _ => Verdict::fail(says).lesson(LESSON_STALL),
    }
}

/// One connection: `plan`, then the verdict (the plan's data must come back whole).
fn echo(ctx: &mut Ctx, plan: &Plan<'_>, nodelay: bool) -> Verdict {
    let conn = match connect(ctx) {
        Ok(c) => c,
        Err(v) => return v,
    };
    if nodelay {
        conn.nodelay();
    }
    let started = Instant::now();
    let writes = plan.chunks.len();
    let deadline = ctx.deadline;
    let flow = conn.pump(plan, deadline, &mut ctx.transcript);
    if matches!(flow.end, End::Stalled { writing: false }) {
        return stalled(ctx, &conn, &flow, plan.data.len());
    }
    ctx.transcript.step(format!(
        "{} write(s) of {} bytes in all; {} ({})",
        writes,
        plan.data.len(),
        flow.says(plan.data.len()),
        ms(started.elapsed())
    ));
    flow_verdict(&flow, plan.data.len())
}

pub const BASIC: Case = Case {
    id: "echo.basic",
    group: "echo",
    title: "one short message comes back",
    expected: "the 5 bytes \"Hello\" back, byte for byte",
    lesson: "The simplest exchange failed. An echo server accepts a connection, calls recv(2) and sends back \
exactly the bytes recv returned, until recv returns 0. Read: accept(2), recv(2), send(2).",
    limit: s(5),
    quick_limit: s(5),
    needs: Needs::Any,
    run: |ctx| echo(ctx, &Plan::whole(b"Hello"), false),
};

pub const TUTORIAL: Case = Case {
    id: "echo.tutorial",
    group: "echo",
    title: "the tutorial's exchange: sendall, recv(10) until all is back, close; the next client is served",
    expected: "\"Hello\" back; after the client's close the server returns to accept and serves the next client",
    lesson: "After the client's close the server must see recv(2) return 0, close its side and go back to \
accept(2) for the next client. A server that never leaves its recv loop, or that exits after one client, serves \
nobody else. Read: recv(2) (a return of 0), accept(2).",
    limit: s(8),
    quick_limit: s(8),
    needs: Needs::Any,
    run: |ctx| {
        let plan = Plan { read: ReadMode::Slow { bytes: 10, pause: Duration::ZERO }, ..Plan::whole(b"Hello") };
        let conn = match connect(ctx) {
            Ok(c) => c,
            Err(v) => return v,
        };
        let deadline = ctx.deadline;
        let flow = conn.pump(&plan, deadline, &mut ctx.transcript);
        if !flow.complete() {
            return flow_verdict(&flow, 5);
        }
        drop(conn);
        ctx.transcript.step("close(): the tutorial's client ends".into());
        match next_client(ctx, Duration::from_secs(5)) {
            Ok(d) => {
                Verdict::pass(format!("\"Hello\" came back; after the close the next client was served in {}", ms(d)))
            }
            Err(e) => Verdict::fail(format!("\"Hello\" came back, but after the close {e}")),
        }
    },
};

pub const SPLIT: Case = Case {
    id: "echo.split-message",
    group: "echo",
    title: "one message in three writes, 100 ms apart (three segments)",
    expected: "all 26 bytes back: the server keeps reading after the first piece",
    lesson: LESSON_EOF_EARLY,
    limit: s(5),
    quick_limit: s(5),
    needs: Needs::Any,
    run: |ctx| {
        let data = b"Hello, this is one message";
        let plan = Plan { chunks: vec![7, 8, 11], pause: Duration::from_millis(100), ..Plan::whole(data) };
        echo(ctx, &plan, true)
    },
};

pub const BINARY: Case = Case {
    id: "echo.binary",
    group: "echo",
    title: "every byte value, NULs and invalid UTF-8 included",
    expected: "all 1,292 bytes (the 256 values four times, 256 NULs, invalid UTF-8; one write) back unchanged",
    lesson: "Bytes did not come back as sent when they were not text. A socket carries bytes: a C server that uses \
strlen/strcpy/printf(\"%s\") on received data stops at the first NUL, and a Python server that decodes to str \
fails on bytes that are not UTF-8. Echo the buffer with the length recv(2) returned, never as a string. Read: \
recv(2) (the return value is the length).",
    limit: s(5),
    quick_limit: s(5),
    needs: Needs::Any,
    run: |ctx| {
        let mut data: Vec<u8> = (0..=255u8).cycle().take(1024).collect();
        data.extend(std::iter::repeat_n(0u8, 256));
        data.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0x00, 0x0a, 0x0d]);
        let total = data.len();
        let mut v = echo(ctx, &Plan::whole(&data), false);
        if v.outcome == crate::check::Outcome::Passed {
            v = Verdict::pass(format!("all {total} bytes came back unchanged (every value, NULs, invalid UTF-8)"));
        }
        v
    },
};

pub const ZERO_LENGTH: Case = Case {
    id: "echo.zero-length",
    group: "echo",
    title: "zero-length writes between the data",
    expected: "\"Hello\" and \" world\" back; a zero-length send(2) puts nothing on the wire (TCP and Unix stream \
sockets send no empty segment), so the server must see only the bytes",
    lesson: "The echo broke around zero-length writes. On a stream socket they carry nothing, so the server sees \
just the data; a failure here is the same bug as in echo.split-message (one recv treated as the message). \
Read: send(2), recv(2).",
    limit: s(5),
    quick_limit: s(5),
    needs: Needs::Any,
    run: |ctx| {
        let plan =
            Plan { chunks: vec![0, 5, 0, 0, 6, 0], pause: Duration::from_millis(20), ..Plan::whole(b"Hello world") };
        echo(ctx, &plan, true)
    },
};

pub const BYTE_AT_A_TIME: Case = Case {
    id: "echo.byte-at-a-time",
    group: "echo",
    title: "a message written one byte per send, TCP_NODELAY, 2 ms apart",
    expected: "every byte back in order",
    lesson: LESSON_EOF_EARLY,
    limit: s(8),
    quick_limit: s(6),
    needs: Needs::Any,
    run: |ctx| {
        let n = if ctx.quick { 40 } else { 120 };
        let data = Rng::new(ctx.seed).bytes(n);
        let plan = Plan { chunks: vec![1; n], pause: Duration::from_millis(2), ..Plan::whole(&data) };
        echo(ctx, &plan, true)
    },
};

pub const PIPELINED: Case = Case {
    id: "echo.pipelined",
    group: "echo",
    title: "hundreds of small writes in flight at once (recvs return them glued together)",
    expected: "every byte back in order",
    lesson: LESSON_MISMATCH,
    limit: s(8),
    quick_limit: s(6),
    needs: Needs::Any,
    run: |ctx| {
        let mut rng = Rng::new(ctx.seed);
        let count = if ctx.quick { 60 } else { 300 };
        let chunks: Vec<usize> = (0..count).map(|_| rng.between(1, 100)).collect();
        let data = rng.bytes(chunks.iter().sum());
        let plan = Plan { chunks, ..Plan::whole(&data) };
        echo(ctx, &plan, true)
    },
};

pub const RANDOM_SIZES: Case = Case {
    id: "echo.random-sizes",
    group: "echo",
    title: "4 MiB in writes of random sizes (1 B to 256 KiB), read while writing",
    expected: "all 4 MiB back, byte-exact",
    lesson: LESSON_MISMATCH,
    limit: s(20),
    quick_limit: s(10),
    needs: Needs::Any,
    run: |ctx| {
        let mut rng = Rng::new(ctx.seed);
        let total = if ctx.quick { 1 << 20 } else { 4 << 20 };
        let chunks = rng.chunks(total, 1, 256 * 1024);
        let data = rng.bytes(total);
        let plan = Plan { chunks, ..Plan::whole(&data) };
        echo(ctx, &plan, false)
    },
};

pub const SLOW_READER: Case = Case {
    id: "echo.slow-reader",
    group: "echo",
    title: "8 MiB to a client that reads 16 KiB a millisecond through a fixed 128 KiB receive buffer",
    expected: "all 8 MiB back, byte-exact: the server's sends block or come back short, and it sends the rest later",
    lesson: LESSON_MISMATCH,
    limit: s(25),
    quick_limit: s(12),
    needs: Needs::Any,
    run: |ctx| {
        let mut rng = Rng::new(ctx.seed);
        // More than the server's send buffer grows to (net.ipv4.tcp_wmem's 4 MiB by default), so
        // its sends meet a full buffer.
        let total = if ctx.quick { 6 << 20 } else { 8 << 20 };
        let data = rng.bytes(total);
        let conn = match connect(ctx) {
            Ok(c) => c,
            Err(v) => return v,
        };
        // A fixed receive window (no autotuning): the server's sends fill it and must wait, or come
        // back short. (Not smaller: below one loopback MSS, 64 KiB, the window opens only on the
        // persist timer and the case would measure that.)
        let _ = conn.socket().set_recv_buffer_size(128 * 1024);
        let plan = Plan {
            chunks: rng.chunks(total, 16 * 1024, 64 * 1024),
            read: ReadMode::Slow { bytes: 16 * 1024, pause: Duration::from_millis(1) },
            stall: Duration::from_secs(5),
            ..Plan::whole(&data)
        };
        let started = Instant::now();
        let deadline = ctx.deadline;
        let flow = conn.pump(&plan, deadline, &mut ctx.transcript);
        ctx.transcript.step(format!("{} ({})", flow.says(total), ms(started.elapsed())));
        if matches!(flow.end, End::Stalled { writing: false }) {
            return stalled(ctx, &conn, &flow, total);
        }
        flow_verdict(&flow, total)
    },
};

pub const WRITE_ALL_THEN_READ: Case = Case {
    id: "echo.write-all-then-read",
    group: "echo",
    title: "16 MiB, more than both sides' socket buffers, from a client that reads only after writing everything",
    expected: "either everything comes back (the server buffered it) or both sides stall once the buffers are full \
— the client's deadlock, by design; after it gives up (RST), the server serves the next client",
    lesson: "After a client that wrote more than the buffers hold without reading gave up, the server did not serve \
the next client. With a bounded-memory server this client must stall: the server's send(2) blocks because the client \
does not read, so the server stops reading, and the client's send blocks too. That is the client's bug, but the \
server must come out of it when the client resets: a blocked send then fails with ECONNRESET or EPIPE, which ends \
that client only. Read: send(2), tcp(7) (ECONNRESET), socket(7) (SO_SNDBUF, SO_RCVBUF).",
    limit: s(25),
    quick_limit: s(15),
    needs: Needs::Any,
    run: |ctx| {
        let mut rng = Rng::new(ctx.seed);
        let total = if ctx.quick { 8 << 20 } else { 16 << 20 };
        let data = rng.bytes(total);
        let conn = match connect(ctx) {
            Ok(c) => c,
            Err(v) => return v,
        };
        let _ = conn.socket().set_recv_buffer_size(64 * 1024);
        let plan = Plan {
            chunks: rng.chunks(total, 64 * 1024, 256 * 1024),
            read: ReadMode::AfterAll,
            stall: Duration::from_millis(1500),
            ..Plan::whole(&data)
        };
        let deadline = ctx.deadline;
        let flow = conn.pump(&plan, deadline, &mut ctx.transcript);
        let what = match &flow.end {
            End::Complete => format!("all {} MiB came back: the server held them in its memory", total >> 20),
            End::Stalled { writing: true } => format!(
                "stalled with {:.1} MiB written, as expected once every buffer was full (the client's deadlock)",
                flow.sent as f64 / 1048576.0
            ),
            End::Stalled { writing: false } => {
                format!("everything was written, then the echo stopped after {} bytes", flow.received)
            }
            _ => return flow_verdict(&flow, total),
        };
        if matches!(flow.end, End::Stalled { writing: false }) {
            return Verdict::fail(what).lesson(LESSON_STALL);
        }
        conn.reset();
        ctx.transcript.step("close with SO_LINGER 0: RST".into());
        match next_client(ctx, Duration::from_secs(8)) {
            Ok(d) => Verdict::pass(format!("{what}; after our RST the next client was served in {}", ms(d))),
            Err(e) => Verdict::fail(format!("{what}; after our RST {e}")),
        }
    },
};
