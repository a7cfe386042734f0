//! A safe io_uring for a socket server: requests by name (accept, recv, send, poll, cancel), one
//! `io_uring_enter` per [`Ring::wait`], completions as plain values, and a pool of provided buffers
//! the kernel receives into.
//!
//! Everything kernel-facing (the rings, the syscalls, the buffer memory) is in `sys::uring`; this
//! type adds the policy: which setup flags to ask for and what to do when the kernel says no
//! ([`refusal`] turns that into a sentence that names the cause and the way out).

use std::io;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use crate::sys::names;
pub use crate::sys::uring::Piece;
use crate::sys::uring::{self as sys, Completion, Sqe, Uring};

pub use crate::sys::uring::{
    Completion as Done, IORING_OP_ACCEPT as ACCEPT, IORING_OP_ASYNC_CANCEL as CANCEL, IORING_OP_POLL_ADD as POLL,
    IORING_OP_RECV as RECV, IORING_OP_SEND as SEND, IORING_OP_SENDMSG as SENDMSG, MAX_GATHER,
};

/// The one buffer group socklab registers.
const GROUP: u16 = 0;

/// An io_uring instance with its provided buffers. Not `Send`: a ring set up with
/// `IORING_SETUP_SINGLE_ISSUER` belongs to the thread that made it.
///
/// # Example
///
/// ```
/// use std::os::fd::AsFd;
/// use std::time::Duration;
/// use socklab::ready::uring::{ACCEPT, RECV, Ring, SEND};
/// use socklab::{TcpListener, TcpStream};
///
/// let mut ring = match Ring::new(8, 8, 4096) {
///     Ok(ring) => ring,
///     // io_uring may be disabled (sysctl kernel.io_uring_disabled) or too old: the error says which.
///     Err(e) => { eprintln!("skipped: {e}"); return Ok(()); }
/// };
/// let listener = TcpListener::bind(&"127.0.0.1:0".parse()?)?;
/// let client = TcpStream::connect(&listener.local_addr()?)?;
/// client.send_all(b"Hello")?;
/// // The kernel accepts, receives into a provided buffer and sends it back; we only wait.
/// ring.accept(listener.as_fd(), false, 1);
/// let mut conn = None;
/// let mut echoed = false;
/// let mut pieces = Vec::new();
/// for _ in 0..10 {
///     if echoed { break; }
///     ring.wait(Some(Duration::from_secs(2)))?;
///     for done in ring.take() {
///         match done.op {
///             ACCEPT => {
///                 let fd = done.accepted.expect("accepted");
///                 ring.recv(fd.as_fd(), 2, 0);
///                 conn = Some(fd);
///             }
///             RECV => {
///                 let piece = done.piece.expect("a provided buffer");
///                 assert_eq!(ring.data(&piece), b"Hello");
///                 ring.send(conn.as_ref().unwrap().as_fd(), &piece, 0, 3)?;
///                 pieces.push(piece); // held until its send completes
///             }
///             SEND => echoed = done.res == Ok(5),
///             _ => {}
///         }
///     }
/// }
/// let mut buf = [0u8; 5];
/// assert_eq!(client.recv(&mut buf)?, 5);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Ring {
    uring: Uring,
    done: Vec<Completion>,
    /// Multishot recvs can be given a byte limit (Linux 6.16).
    recv_limit: bool,
    /// Stream recvs are bundles: one recv may fill several buffers (see [`Ring::recv`]).
    bundles: bool,
    /// A ring for message sockets ([`Ring::for_messages`]).
    messages: bool,
}

impl Ring {
    /// Sets up a ring of `entries` submission slots (completion ring 8× that) and registers
    /// `buffers` provided buffers (a power of two) of `buffer_size` bytes. Errors are explained
    /// (see [`refusal`]).
    pub fn new(entries: u32, buffers: u16, buffer_size: u32) -> io::Result<Ring> {
        Ring::setup(entries, buffers, buffer_size, false)
    }

    /// The same for message sockets (seqpacket): each recv takes a whole buffer (no incremental
    /// consumption, which would cut a message at whatever is left of a shared buffer), and asks
    /// with `MSG_TRUNC`, so a completion's result is the message's real length and a message
    /// longer than a buffer is known to be cut.
    pub fn for_messages(entries: u32, buffers: u16, buffer_size: u32) -> io::Result<Ring> {
        Ring::setup(entries, buffers, buffer_size, true)
    }

    fn setup(entries: u32, buffers: u16, buffer_size: u32, messages: bool) -> io::Result<Ring> {
        // DEFER_TASKRUN (6.1) lets completion work run only inside our io_uring_enter, instead of
        // interrupting the thread; it needs SINGLE_ISSUER. Older kernels say EINVAL: ask again
        // without them.
        let base = sys::IORING_SETUP_CQSIZE | sys::IORING_SETUP_SUBMIT_ALL;
        // (COOP_TASKRUN instead of DEFER_TASKRUN was measured and not kept: BENCHMARKS.md.)
        let modern = base | sys::IORING_SETUP_SINGLE_ISSUER | sys::IORING_SETUP_DEFER_TASKRUN;
        let uring = match Uring::setup(entries, entries * 8, modern) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Uring::setup(entries, entries * 8, base),
            other => other,
        }
        .map_err(|e| explained(&e, "io_uring_setup"))?;
        let needed = sys::IORING_FEAT_NODROP | sys::IORING_FEAT_EXT_ARG;
        if uring.params().features & needed != needed {
            return Err(too_old("io_uring_enter with a timeout (IORING_FEAT_EXT_ARG)", "5.11"));
        }
        let mut ring = Ring { uring, done: Vec::new(), recv_limit: kernel_at_least(6, 16), bundles: false, messages };
        // Incremental consumption (6.12) lets many small recvs share one large buffer, so buffers
        // can be sized for streams; before 6.12 the kernel says EINVAL: ask again without it.
        let registered = match ring.uring.register_buffers(GROUP, buffers, buffer_size, !messages) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                ring.uring.register_buffers(GROUP, buffers, buffer_size, false)
            }
            other => other,
        };
        registered.map_err(|e| match e.raw_os_error() {
            Some(libc::EINVAL) => too_old("provided-buffer rings (IORING_REGISTER_PBUF_RING)", "5.19"),
            _ => explained(&e, "io_uring_register"),
        })?;
        // Bundles (6.10) only with incremental buffers, and only where a recv stops at its limit
        // (6.16): without one, a bundle takes as many buffers as the socket holds data for.
        ring.bundles = ring.uring.params().features & sys::IORING_FEAT_RECVSEND_BUNDLE != 0
            && ring.uring.incremental()
            && ring.recv_limit;
        Ok(ring)
    }

    fn push(&mut self, sqe: Sqe) {
        if let Err(sqe) = self.uring.push(sqe) {
            // The submission ring is full: hand what is queued to the kernel now (a second
            // io_uring_enter this turn; rare with a ring sized for the batch).
            let _ = self.uring.enter(false, None);
            let _ = self.uring.push(sqe);
        }
    }

    /// Accepts on `listener`: once (`multishot` false) or for every connection until it fails.
    pub fn accept(&mut self, listener: BorrowedFd<'_>, multishot: bool, token: u64) {
        self.push(Sqe::accept(listener, multishot, token));
    }

    /// A multishot recv on `fd`: a completion each time data arrives, in a provided buffer. Where
    /// the kernel can (6.16), it ends by itself after `limit` bytes (0: no limit), and each recv
    /// is a bundle: it takes what the socket holds (up to the limit) into as many buffers as that
    /// needs, the completion naming the first, instead of stopping at the end of one buffer.
    pub fn recv(&mut self, fd: BorrowedFd<'_>, token: u64, limit: u32) {
        let limit = if self.recv_limit { limit } else { 0 };
        if self.messages {
            self.push(Sqe::recv_multishot_trunc(fd, GROUP, token, limit));
        } else if self.bundles {
            self.push(Sqe::recv_bundle(fd, GROUP, token, limit));
        } else {
            self.push(Sqe::recv_multishot(fd, GROUP, token, limit));
        }
    }

    /// Sends the bytes of `piece` (which a recv completion handed us) from `skip` on. Keep the
    /// piece until the send completes.
    pub fn send(&mut self, fd: BorrowedFd<'_>, piece: &Piece, skip: u32, token: u64) -> io::Result<()> {
        match self.uring.push_send(fd, piece, skip, token) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                self.uring.enter(false, None)?;
                self.uring.push_send(fd, piece, skip, token)
            }
            other => other,
        }
    }

    /// Sends the bytes of several pieces in one `sendmsg` (the first [`MAX_GATHER`] of `pieces`,
    /// in order, the first from `skip` on), for bytes that lie in different buffers. Keep the
    /// pieces until the send completes (its completion's op is [`SENDMSG`]).
    pub fn send_gather<'p, I>(&mut self, fd: BorrowedFd<'_>, pieces: I, skip: u32, token: u64) -> io::Result<()>
    where
        I: IntoIterator<Item = &'p Piece> + Clone,
    {
        match self.uring.push_sendmsg(fd, pieces.clone(), skip, token) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                self.uring.enter(false, None)?;
                self.uring.push_sendmsg(fd, pieces, skip, token)
            }
            other => other,
        }
    }

    /// Completes once `fd` is readable (or hung up).
    pub fn poll_in(&mut self, fd: BorrowedFd<'_>, token: u64) {
        self.push(Sqe::poll_add(fd, libc::POLLIN, token));
    }

    /// Cancels the `op` request made with `token`; its last completion then says `ECANCELED`.
    /// The cancel's own completion carries `cancel_token`.
    pub fn cancel(&mut self, token: u64, op: u8, cancel_token: u64) {
        self.push(Sqe::cancel(token, op, cancel_token));
    }

    /// From now on a [`Ring::wait`] waits for `min_complete` completions, but returns once
    /// `min_wait_usec` passed with at least one ready (6.12; older kernels wait for one).
    pub fn set_batch(&mut self, min_complete: u32, min_wait_usec: u32) {
        let min_wait_ok = self.uring.params().features & sys::IORING_FEAT_MIN_TIMEOUT != 0;
        if min_wait_ok {
            self.uring.set_batch(min_complete, min_wait_usec);
        }
    }

    /// Whether recvs consume the provided buffers incrementally (`IOU_PBUF_RING_INC`, 6.12).
    pub fn incremental(&self) -> bool {
        self.uring.incremental()
    }

    /// The bytes of `piece`, which a completion handed us (empty if not held).
    pub fn data(&self, piece: &Piece) -> &[u8] {
        self.uring.piece_data(piece)
    }

    /// Appends `next` to `piece` if it directly follows it in the same buffer; else gives it back.
    pub fn join(&mut self, piece: &mut Piece, next: Piece) -> Result<(), Piece> {
        self.uring.join(piece, next)
    }

    /// Lets go of `piece`: its buffer goes back to the kernel once nothing else of it is held.
    pub fn release(&mut self, piece: Piece) {
        self.uring.release(piece);
    }

    /// One loop turn's system call: submits everything queued and waits until a completion is
    /// ready or `timeout` passes (`None`: no limit). Then the completions are in [`Ring::take`].
    pub fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let result = self.uring.enter(true, timeout).map(drop);
        self.uring.reap(&mut self.done);
        result
    }

    /// The completions reaped by the last [`Ring::wait`] (give the emptied Vec back with
    /// [`Ring::give_back`] to keep its allocation).
    pub fn take(&mut self) -> Vec<Completion> {
        std::mem::take(&mut self.done)
    }

    /// Returns the Vec taken with [`Ring::take`], emptied. Pieces left in it (a completion for a
    /// connection already gone) are let go, so their buffers go back to the kernel.
    pub fn give_back(&mut self, mut done: Vec<Completion>) {
        for c in &mut done {
            for piece in c.piece.take().into_iter().chain(c.more_pieces.drain(..)) {
                self.uring.release(piece);
            }
        }
        done.clear();
        self.done = done;
    }
}

/// Why the kernel refused, in one sentence naming the cause and the way out; `errno` is what
/// `call` failed with and `disabled` the value of the sysctl `kernel.io_uring_disabled` (`None`
/// where it does not exist).
pub fn refusal(call: &str, errno: i32, disabled: Option<u32>) -> String {
    let why = match (errno, disabled) {
        (libc::ENOSYS, _) => "this kernel has no io_uring (built without CONFIG_IO_URING), or a seccomp filter \
                              hides it"
            .to_string(),
        (libc::EPERM, Some(2)) => {
            "io_uring is switched off on this machine (sysctl kernel.io_uring_disabled = 2)".into()
        }
        (libc::EPERM, Some(1)) => "only root and members of the group in kernel.io_uring_group may use io_uring \
                                   here (sysctl kernel.io_uring_disabled = 1)"
            .into(),
        (libc::EPERM | libc::EACCES, _) => "io_uring is allowed by the kernel (kernel.io_uring_disabled = 0) but was \
                                            refused to this process: most likely a seccomp filter (container \
                                            runtimes often block io_uring)"
            .into(),
        (libc::EINVAL, _) => "the kernel does not support what this model asks of io_uring (too old?)".into(),
        (libc::ENOMEM | libc::EMFILE | libc::ENFILE, _) => {
            "out of memory or descriptors (RLIMIT_MEMLOCK on kernels before 5.12)".into()
        }
        _ => "the kernel refused".into(),
    };
    format!(
        "io_uring unavailable: {call} failed with {}: {why}. Use --model epoll instead.",
        names::errno_display(errno)
    )
}

/// Whether the running kernel is at least `major.minor` (from /proc/sys/kernel/osrelease).
fn kernel_at_least(major: u32, minor: u32) -> bool {
    let release = crate::file::read_to_string(std::path::Path::new("/proc/sys/kernel/osrelease")).unwrap_or_default();
    let mut parts = release.trim().split(['.', '-']).map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (major, minor)
}

/// `kernel.io_uring_disabled` (Linux 6.6+): 0 allowed, 1 group-restricted, 2 off.
pub fn disabled_sysctl() -> Option<u32> {
    crate::file::read_to_string(std::path::Path::new("/proc/sys/kernel/io_uring_disabled")).ok()?.trim().parse().ok()
}

fn explained(err: &io::Error, call: &str) -> io::Error {
    match err.raw_os_error() {
        Some(errno) => io::Error::new(io::ErrorKind::Unsupported, refusal(call, errno, disabled_sysctl())),
        None => io::Error::new(err.kind(), err.to_string()),
    }
}

/// The error for a feature this kernel lacks.
pub fn too_old(feature: &str, version: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!(
            "io_uring on this kernel lacks {feature}, which needs Linux {version} or later. Use --model epoll instead."
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_cause_and_the_way_out() {
        let off = refusal("io_uring_setup", libc::EPERM, Some(2));
        assert!(off.contains("EPERM") && off.contains("kernel.io_uring_disabled = 2"), "{off}");
        assert!(refusal("io_uring_setup", libc::EPERM, Some(0)).contains("seccomp"));
        assert!(refusal("io_uring_setup", libc::EPERM, Some(1)).contains("io_uring_group"));
        assert!(refusal("io_uring_setup", libc::ENOSYS, None).contains("no io_uring"));
        for errno in [libc::ENOSYS, libc::EPERM, libc::EINVAL, libc::ENOMEM] {
            assert!(refusal("io_uring_setup", errno, None).ends_with("Use --model epoll instead."));
        }
    }

    #[test]
    fn a_ring_echoes_through_provided_buffers() {
        use std::io::{Read, Write};
        use std::os::fd::AsFd;
        let Ok(mut ring) = Ring::new(8, 4, 64) else { return }; // no io_uring here: covered by the CLI test
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        ring.recv(a.as_fd(), 7, 0);
        b.write_all(b"hello").unwrap();
        ring.wait(Some(Duration::from_secs(5))).unwrap();
        let done = ring.take();
        let got = done.iter().find(|c| c.op == RECV).expect("a recv completion");
        assert_eq!((got.token, got.res, got.more), (7, Ok(5), true));
        let mut done = done;
        let piece = done.iter_mut().find_map(|c| c.piece.take()).expect("a provided buffer");
        assert_eq!(ring.data(&piece), b"hello");
        ring.send(a.as_fd(), &piece, 1, 8).unwrap();
        ring.give_back(done);
        ring.wait(Some(Duration::from_secs(5))).unwrap();
        assert!(ring.take().iter().any(|c| (c.op, c.token, c.res) == (SEND, 8, Ok(4))));
        let mut back = [0u8; 4];
        b.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"ello");
        // A second message lands right after the first in the same buffer (incremental
        // consumption, 6.12) or in a buffer of its own; either way it can be read and joined or not.
        b.write_all(b"world").unwrap();
        ring.wait(Some(Duration::from_secs(5))).unwrap();
        let mut done = ring.take();
        let second = done.iter_mut().find_map(|c| c.piece.take()).expect("a second recv");
        assert_eq!(ring.data(&second), b"world");
        let mut piece = piece;
        match ring.join(&mut piece, second) {
            Ok(()) => assert_eq!(ring.data(&piece), b"helloworld"),
            Err(second) => ring.release(second),
        }
        ring.release(piece);
        ring.give_back(done);
    }

    /// Reads completions until `want` bytes came, and returns them with the pieces they lie in
    /// (each completion's first piece, then its bundle's further pieces) and how many
    /// completions spanned several buffers.
    fn received(ring: &mut Ring, want: usize, pieces: &mut Vec<Piece>) -> (Vec<u8>, usize) {
        let (mut bytes, mut bundles) = (Vec::new(), 0);
        for _ in 0..20 {
            if bytes.len() >= want {
                break;
            }
            ring.wait(Some(Duration::from_secs(5))).unwrap();
            let mut done = ring.take();
            for c in done.iter_mut().filter(|c| c.op == RECV) {
                let total = c.res.expect("the recv succeeded") as usize;
                bundles += usize::from(!c.more_pieces.is_empty());
                let mine: Vec<Piece> = c.piece.take().into_iter().chain(c.more_pieces.drain(..)).collect();
                assert_eq!(mine.iter().map(|p| p.len() as usize).sum::<usize>(), total, "the pieces hold the result");
                mine.iter().for_each(|p| bytes.extend_from_slice(ring.data(p)));
                pieces.extend(mine);
            }
            ring.give_back(done);
        }
        (bytes, bundles)
    }

    #[test]
    fn a_bundle_runs_on_into_the_next_buffers_in_ring_order() {
        use std::io::Write;
        use std::os::fd::AsFd;
        // Four buffers of 64 bytes, consumed incrementally.
        let Ok(mut ring) = Ring::new(8, 4, 64) else { return }; // no io_uring here
        if !ring.bundles {
            eprintln!("skipped: recv bundles need Linux 6.16 here (a recv limit), this kernel lacks them");
            return;
        }
        let stream: Vec<u8> = (0..=255u8).cycle().take(600).collect();
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        ring.recv(a.as_fd(), 7, 0);
        // 40 bytes: the start of the first buffer, which the kernel keeps filling.
        b.write_all(&stream[..40]).unwrap();
        let mut held = Vec::new();
        let (first, _) = received(&mut ring, 40, &mut held);
        assert_eq!(first, stream[..40]);
        // 150 more: the 24 left in that buffer, then the next buffers, in ring order.
        b.write_all(&stream[40..190]).unwrap();
        let (next, bundles) = received(&mut ring, 150, &mut held);
        assert_eq!(next, stream[40..190], "the bytes in order across buffers");
        assert!(bundles > 0, "one recv filled several buffers");
        assert_eq!(held[1].offset(), 40, "the bundle began where the first recv ended");
        // Every used-up buffer goes back once its pieces are let go: the ring then holds the 2
        // bytes left of the last one and three whole buffers again.
        held.drain(..).for_each(|p| ring.release(p));
        b.write_all(&stream[190..384]).unwrap();
        let (again, _) = received(&mut ring, 194, &mut held);
        assert_eq!(again, stream[190..384]);
        held.drain(..).for_each(|p| ring.release(p));
    }

    #[test]
    fn pieces_in_two_buffers_go_back_in_one_sendmsg_in_order() {
        use std::io::{Read, Write};
        use std::os::fd::AsFd;
        // A ring whose recvs each take a whole buffer: two recvs, two buffers.
        let Ok(mut ring) = Ring::for_messages(8, 4, 64) else { return }; // no io_uring here
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut pieces = Vec::new();
        ring.recv(a.as_fd(), 7, 0);
        for word in [&b"hello"[..], b"world"] {
            b.write_all(word).unwrap();
            ring.wait(Some(Duration::from_secs(5))).unwrap();
            let mut done = ring.take();
            pieces.push(done.iter_mut().find_map(|c| c.piece.take()).expect("a provided buffer"));
            ring.give_back(done);
        }
        assert_ne!(pieces[0].bid(), pieces[1].bid(), "two buffers");
        // From the second byte of the first on: "ello" + "world", one request.
        ring.send_gather(a.as_fd(), &pieces, 1, 8).unwrap();
        let mut sent = None;
        for _ in 0..10 {
            ring.wait(Some(Duration::from_secs(5))).unwrap();
            sent = ring.take().iter().find(|c| c.op == SENDMSG).map(|c| c.res);
            if sent.is_some() {
                break;
            }
        }
        assert_eq!(sent, Some(Ok(9)));
        let mut back = [0u8; 9];
        b.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"elloworld");
        // Nothing to send (the first piece skipped whole) is refused, not handed to the kernel.
        let [first, second] = <[Piece; 2]>::try_from(pieces).unwrap();
        assert!(ring.send_gather(a.as_fd(), [&first, &second], first.len(), 10).is_err());
        ring.release(first);
        ring.release(second);
    }
}
