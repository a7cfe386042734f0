//! `io_uring(7)`: two rings shared with the kernel. The program writes requests (SQEs) into the
//! submission ring and tells the kernel how many with `io_uring_enter(2)`; the kernel writes results
//! (CQEs) into the completion ring, which the program reads without any system call at all.
//!
//! Made here on raw system calls (`io_uring_setup`, `io_uring_enter`, `io_uring_register` through
//! `syscall(2)`; the rings and the buffers mapped with `sys::mem::mmap`, narrated like every other
//! call), with the kernel's structs from `linux/io_uring.h` written out below because libc does
//! not define them.
//!
//! What makes this module's API safe to call from safe code:
//! - the only memory the kernel may *write* is owned here: the rings, and the provided buffers,
//!   which [`Uring::register_buffers`] allocates and the kernel fills on a recv with buffer select;
//! - requests are built only by the [`Sqe`] constructors below, none of which takes a pointer; a
//!   send names a provided buffer by id and a range that is checked against it; a gathered send
//!   ([`Uring::push_sendmsg`]) points the kernel at a `msghdr` and iovecs owned here, boxed (so they
//!   do not move) and kept until the request's last completion, whose iovecs are checked pieces;
//! - a buffer can be read ([`Uring::piece_data`]) only between the completion that handed it to
//!   us and [`Uring::release`], which hands it back (so we never read while the kernel may write);
//! - `Drop` cancels every request still in flight and waits for their completions before the
//!   memory goes; if they do not all come back, the buffers are leaked rather than freed under the
//!   kernel's feet;
//! - an accepted descriptor becomes an `OwnedFd` as it is reaped.
//!
//! Linux only (cfg `socklab_uring`).

use std::collections::{HashMap, VecDeque};
use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;
use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};
use std::time::Duration;

use super::trace::{self, Arg};

// Opcodes (enum io_uring_op).
/// `IORING_OP_NOP`.
pub const IORING_OP_NOP: u8 = 0;
/// `IORING_OP_SENDMSG`.
pub const IORING_OP_SENDMSG: u8 = 9;
/// `IORING_OP_POLL_ADD`.
pub const IORING_OP_POLL_ADD: u8 = 6;
/// `IORING_OP_ACCEPT`.
pub const IORING_OP_ACCEPT: u8 = 13;
/// `IORING_OP_ASYNC_CANCEL`.
pub const IORING_OP_ASYNC_CANCEL: u8 = 14;
/// `IORING_OP_SEND`.
pub const IORING_OP_SEND: u8 = 26;
/// `IORING_OP_RECV`.
pub const IORING_OP_RECV: u8 = 27;

/// `IOSQE_BUFFER_SELECT`: the kernel picks a buffer from the group at completion time.
pub const IOSQE_BUFFER_SELECT: u8 = 1 << 5;
/// `IORING_ACCEPT_MULTISHOT` (in `ioprio`): one SQE, a CQE per accepted connection.
pub const IORING_ACCEPT_MULTISHOT: u16 = 1 << 0;
/// `IORING_RECV_MULTISHOT` (in `ioprio`): one SQE, a CQE per arrival of data.
pub const IORING_RECV_MULTISHOT: u16 = 1 << 1;
/// `IORING_RECVSEND_BUNDLE` (in `ioprio`, Linux 6.10): one recv may fill several provided
/// buffers, taken in ring order; the CQE names the first.
pub const IORING_RECVSEND_BUNDLE: u16 = 1 << 4;
/// `IORING_ASYNC_CANCEL_ALL`.
pub const IORING_ASYNC_CANCEL_ALL: u32 = 1 << 0;
/// `IORING_ASYNC_CANCEL_ANY`.
pub const IORING_ASYNC_CANCEL_ANY: u32 = 1 << 2;

/// `IORING_CQE_F_BUFFER`: the upper 16 bits of `flags` are the id of the provided buffer used.
pub const IORING_CQE_F_BUFFER: u32 = 1 << 0;
/// `IORING_CQE_F_MORE`: the request stays armed; more CQEs will come from it.
pub const IORING_CQE_F_MORE: u32 = 1 << 1;
/// `IORING_CQE_F_SOCK_NONEMPTY`.
pub const IORING_CQE_F_SOCK_NONEMPTY: u32 = 1 << 2;
/// `IORING_CQE_F_BUF_MORE`: with incremental consumption, the buffer is not used up; the kernel
/// will put later data in the rest of it.
pub const IORING_CQE_F_BUF_MORE: u32 = 1 << 4;

/// `IOU_PBUF_RING_INC` (Linux 6.12): the kernel consumes a provided buffer a piece at a time, one
/// recv after another, instead of a whole buffer per recv.
pub const IOU_PBUF_RING_INC: u16 = 2;
const IORING_CQE_BUFFER_SHIFT: u32 = 16;

/// `IORING_SETUP_CQSIZE`.
pub const IORING_SETUP_CQSIZE: u32 = 1 << 3;
/// `IORING_SETUP_SUBMIT_ALL`.
pub const IORING_SETUP_SUBMIT_ALL: u32 = 1 << 7;
/// `IORING_SETUP_COOP_TASKRUN`.
pub const IORING_SETUP_COOP_TASKRUN: u32 = 1 << 8;
/// `IORING_SETUP_SINGLE_ISSUER`.
pub const IORING_SETUP_SINGLE_ISSUER: u32 = 1 << 12;
/// `IORING_SETUP_DEFER_TASKRUN`: completion work runs only when we ask for events.
pub const IORING_SETUP_DEFER_TASKRUN: u32 = 1 << 13;

/// `IORING_FEAT_SINGLE_MMAP`: both rings in one mapping (5.4).
pub const IORING_FEAT_SINGLE_MMAP: u32 = 1 << 0;
/// `IORING_FEAT_NODROP`: completions are never dropped when the CQ ring is full (5.5).
pub const IORING_FEAT_NODROP: u32 = 1 << 1;
/// `IORING_FEAT_MIN_TIMEOUT`: io_uring_enter's wait takes a minimum wait (6.12).
pub const IORING_FEAT_MIN_TIMEOUT: u32 = 1 << 15;
/// `IORING_FEAT_RECVSEND_BUNDLE`: recv and send take `IORING_RECVSEND_BUNDLE` (6.10).
pub const IORING_FEAT_RECVSEND_BUNDLE: u32 = 1 << 14;
/// `IORING_FEAT_EXT_ARG`: io_uring_enter takes a timeout (5.11).
pub const IORING_FEAT_EXT_ARG: u32 = 1 << 8;
/// `IORING_FEAT_NO_IOWAIT`: io_uring_enter takes `IORING_ENTER_NO_IOWAIT` (6.15).
pub const IORING_FEAT_NO_IOWAIT: u32 = 1 << 17;

/// `IORING_ENTER_GETEVENTS`.
pub const IORING_ENTER_GETEVENTS: u32 = 1 << 0;
/// `IORING_ENTER_EXT_ARG`.
pub const IORING_ENTER_EXT_ARG: u32 = 1 << 3;
/// `IORING_ENTER_NO_IOWAIT`: the wait is not counted as waiting for I/O.
pub const IORING_ENTER_NO_IOWAIT: u32 = 1 << 7;

/// `IORING_REGISTER_PBUF_RING`.
pub const IORING_REGISTER_PBUF_RING: u32 = 22;
/// `IORING_UNREGISTER_PBUF_RING`.
pub const IORING_UNREGISTER_PBUF_RING: u32 = 23;

const IORING_OFF_SQ_RING: libc::off_t = 0;
const IORING_OFF_SQES: libc::off_t = 0x1000_0000;

/// The kernel's `_NSIG / 8`: the sigset size liburing passes (strace prints it as the last argument).
const NSIG_BYTES: usize = 8;

/// `struct io_sqring_offsets`.
///
/// # Example
///
/// ```
/// use socklab::sys::uring::{Sqe, Uring};
///
/// // The raw ring: a NOP submitted and its completion reaped, one io_uring_enter.
/// let mut ring = match Uring::setup(4, 8, 0) {
///     Ok(ring) => ring,
///     Err(e) => { eprintln!("skipped: io_uring_setup: {e}"); return Ok(()); }
/// };
/// let params = *ring.params();
/// assert!(params.sq_entries >= 4 && params.cq_entries >= 8);
/// assert!(params.sq_off.array > 0 && params.cq_off.cqes > 0); // where the rings lie in the mapping
/// ring.push(Sqe::nop(9)).unwrap();
/// ring.enter(true, None)?;
/// let mut done = Vec::new();
/// ring.reap(&mut done);
/// assert_eq!((done[0].token, done[0].res), (9, Ok(0)));
/// # Ok::<(), std::io::Error>(())
/// ```
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
#[allow(missing_docs)]
pub struct SqOffsets {
    pub head: u32,
    pub tail: u32,
    pub ring_mask: u32,
    pub ring_entries: u32,
    pub flags: u32,
    pub dropped: u32,
    pub array: u32,
    pub resv1: u32,
    pub user_addr: u64,
}

/// `struct io_cqring_offsets`.
///
/// # Example
///
/// ```
/// use socklab::sys::uring::{Sqe, Uring};
///
/// // The raw ring: a NOP submitted and its completion reaped, one io_uring_enter.
/// let mut ring = match Uring::setup(4, 8, 0) {
///     Ok(ring) => ring,
///     Err(e) => { eprintln!("skipped: io_uring_setup: {e}"); return Ok(()); }
/// };
/// let params = *ring.params();
/// assert!(params.sq_entries >= 4 && params.cq_entries >= 8);
/// assert!(params.sq_off.array > 0 && params.cq_off.cqes > 0); // where the rings lie in the mapping
/// ring.push(Sqe::nop(9)).unwrap();
/// ring.enter(true, None)?;
/// let mut done = Vec::new();
/// ring.reap(&mut done);
/// assert_eq!((done[0].token, done[0].res), (9, Ok(0)));
/// # Ok::<(), std::io::Error>(())
/// ```
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
#[allow(missing_docs)]
pub struct CqOffsets {
    pub head: u32,
    pub tail: u32,
    pub ring_mask: u32,
    pub ring_entries: u32,
    pub overflow: u32,
    pub cqes: u32,
    pub flags: u32,
    pub resv1: u32,
    pub user_addr: u64,
}

/// `struct io_uring_params`: what we ask of io_uring_setup, and what the kernel answers.
///
/// # Example
///
/// ```
/// use socklab::sys::uring::{Sqe, Uring};
///
/// // The raw ring: a NOP submitted and its completion reaped, one io_uring_enter.
/// let mut ring = match Uring::setup(4, 8, 0) {
///     Ok(ring) => ring,
///     Err(e) => { eprintln!("skipped: io_uring_setup: {e}"); return Ok(()); }
/// };
/// let params = *ring.params();
/// assert!(params.sq_entries >= 4 && params.cq_entries >= 8);
/// assert!(params.sq_off.array > 0 && params.cq_off.cqes > 0); // where the rings lie in the mapping
/// ring.push(Sqe::nop(9)).unwrap();
/// ring.enter(true, None)?;
/// let mut done = Vec::new();
/// ring.reap(&mut done);
/// assert_eq!((done[0].token, done[0].res), (9, Ok(0)));
/// # Ok::<(), std::io::Error>(())
/// ```
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
#[allow(missing_docs)]
pub struct Params {
    pub sq_entries: u32,
    pub cq_entries: u32,
    pub flags: u32,
    pub sq_thread_cpu: u32,
    pub sq_thread_idle: u32,
    pub features: u32,
    pub wq_fd: u32,
    pub resv: [u32; 3],
    pub sq_off: SqOffsets,
    pub cq_off: CqOffsets,
}

/// `struct io_uring_sqe`: one request. Built only by the constructors below (none takes a pointer).
///
/// # Example
///
/// ```
/// use socklab::sys::uring::{Sqe, Uring};
///
/// // The raw ring: a NOP submitted and its completion reaped, one io_uring_enter.
/// let mut ring = match Uring::setup(4, 8, 0) {
///     Ok(ring) => ring,
///     Err(e) => { eprintln!("skipped: io_uring_setup: {e}"); return Ok(()); }
/// };
/// let params = *ring.params();
/// assert!(params.sq_entries >= 4 && params.cq_entries >= 8);
/// assert!(params.sq_off.array > 0 && params.cq_off.cqes > 0); // where the rings lie in the mapping
/// ring.push(Sqe::nop(9)).unwrap();
/// ring.enter(true, None)?;
/// let mut done = Vec::new();
/// ring.reap(&mut done);
/// assert_eq!((done[0].token, done[0].res), (9, Ok(0)));
/// # Ok::<(), std::io::Error>(())
/// ```
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct Sqe {
    opcode: u8,
    flags: u8,
    ioprio: u16,
    fd: i32,
    off: u64,
    addr: u64,
    len: u32,
    op_flags: u32,
    user_data: u64,
    buf_group: u16,
    personality: u16,
    splice_fd_in: i32,
    addr3: u64,
    pad2: u64,
}

const _: () = assert!(size_of::<Sqe>() == 64 && size_of::<Params>() == 120 && size_of::<Cqe>() == 16);

impl Sqe {
    /// accept4 on a listener; `multishot`: stays armed and completes once per connection. The new
    /// descriptors get `SOCK_CLOEXEC`. No address is asked for (a multishot accept would write
    /// every peer into the same place); read it with getpeername.
    pub fn accept(listener: BorrowedFd<'_>, multishot: bool, token: u64) -> Sqe {
        let ioprio = if multishot { IORING_ACCEPT_MULTISHOT } else { 0 };
        Sqe::new(IORING_OP_ACCEPT, listener.as_raw_fd(), token)
            .with(|s| (s.ioprio, s.op_flags) = (ioprio, libc::SOCK_CLOEXEC as u32))
    }

    /// A multishot recv into buffers picked by the kernel from group `group`; `limit` > 0: it
    /// ends (a last completion without `IORING_CQE_F_MORE`) once it has received that many bytes
    /// (the SQE's `optlen`, Linux 6.16; older kernels refuse a nonzero one with EINVAL).
    pub fn recv_multishot(fd: BorrowedFd<'_>, group: u16, token: u64, limit: u32) -> Sqe {
        Sqe::new(IORING_OP_RECV, fd.as_raw_fd(), token).with(|s| {
            (s.flags, s.ioprio, s.buf_group) = (IOSQE_BUFFER_SELECT, IORING_RECV_MULTISHOT, group);
            s.splice_fd_in = limit as i32;
        })
    }

    /// The same as a bundle (`IORING_RECVSEND_BUNDLE`, Linux 6.10): each completion may span
    /// several provided buffers, consecutive in ring order, so one `tcp_recvmsg` takes what the
    /// socket holds (up to `limit`) instead of what is left of one buffer.
    pub fn recv_bundle(fd: BorrowedFd<'_>, group: u16, token: u64, limit: u32) -> Sqe {
        Sqe::recv_multishot(fd, group, token, limit).with(|s| s.ioprio |= IORING_RECVSEND_BUNDLE)
    }

    /// The same with `MSG_TRUNC` for a message socket (seqpacket): a message longer than the
    /// buffer is cut, and the completion's result is its real length, not the bytes kept. Only
    /// for a group registered without incremental consumption, where a recv uses up its buffer
    /// whatever the result says.
    pub fn recv_multishot_trunc(fd: BorrowedFd<'_>, group: u16, token: u64, limit: u32) -> Sqe {
        Sqe::recv_multishot(fd, group, token, limit).with(|s| s.op_flags = libc::MSG_TRUNC as u32)
    }

    /// A one-shot poll for `events` (`POLLIN`...).
    pub fn poll_add(fd: BorrowedFd<'_>, events: libc::c_short, token: u64) -> Sqe {
        Sqe::new(IORING_OP_POLL_ADD, fd.as_raw_fd(), token).with(|s| s.op_flags = events as u16 as u32)
    }

    /// Cancels the request whose user data is `target` (a `Completion::token` of ours).
    pub fn cancel(target_token: u64, target_op: u8, token: u64) -> Sqe {
        Sqe::new(IORING_OP_ASYNC_CANCEL, -1, token).with(|s| s.addr = user_data(target_token, target_op))
    }

    /// A request that does nothing but complete.
    pub fn nop(token: u64) -> Sqe {
        Sqe::new(IORING_OP_NOP, -1, token)
    }

    fn new(opcode: u8, fd: RawFd, token: u64) -> Sqe {
        Sqe { opcode, fd, user_data: user_data(token, opcode), ..Sqe::default() }
    }

    fn with(mut self, set: impl FnOnce(&mut Sqe)) -> Sqe {
        set(&mut self);
        self
    }

    /// The operation, `IORING_OP_*`.
    pub fn opcode(&self) -> u8 {
        self.opcode
    }
    /// `IOSQE_*` flags.
    pub fn flags(&self) -> u8 {
        self.flags
    }
    /// `ioprio` (where the multishot flags of accept and recv go).
    pub fn ioprio(&self) -> u16 {
        self.ioprio
    }
    /// The descriptor operated on.
    pub fn fd(&self) -> RawFd {
        self.fd
    }
    /// The length (send).
    pub fn len(&self) -> u32 {
        self.len
    }
    /// Whether the length is zero.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The per-op flags word (accept flags, poll events, msg flags).
    pub fn op_flags(&self) -> u32 {
        self.op_flags
    }
    /// The address field (a cancel's target user data; a send's buffer address).
    pub fn addr(&self) -> u64 {
        self.addr
    }
    /// The buffer group (recv with buffer select).
    pub fn buf_group(&self) -> u16 {
        self.buf_group
    }
    /// The user data the completion will carry.
    pub fn user_data(&self) -> u64 {
        self.user_data
    }
}

/// `struct io_uring_cqe`: one result.
///
/// # Example
///
/// ```
/// use socklab::sys::uring::{Sqe, Uring};
///
/// // The raw ring: a NOP submitted and its completion reaped, one io_uring_enter.
/// let mut ring = match Uring::setup(4, 8, 0) {
///     Ok(ring) => ring,
///     Err(e) => { eprintln!("skipped: io_uring_setup: {e}"); return Ok(()); }
/// };
/// let params = *ring.params();
/// assert!(params.sq_entries >= 4 && params.cq_entries >= 8);
/// assert!(params.sq_off.array > 0 && params.cq_off.cqes > 0); // where the rings lie in the mapping
/// ring.push(Sqe::nop(9)).unwrap();
/// ring.enter(true, None)?;
/// let mut done = Vec::new();
/// ring.reap(&mut done);
/// assert_eq!((done[0].token, done[0].res), (9, Ok(0)));
/// # Ok::<(), std::io::Error>(())
/// ```
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct Cqe {
    /// The request's user data, unchanged.
    pub user_data: u64,
    /// What the syscall would have returned; `-errno` on failure.
    pub res: i32,
    /// `IORING_CQE_F_*`, and the buffer id in the upper 16 bits.
    pub flags: u32,
}

/// The user data socklab puts in each SQE: the caller's token above the opcode, so a completion
/// says which operation it ends without the caller keeping a table.
fn user_data(token: u64, opcode: u8) -> u64 {
    (token << 8) | u64::from(opcode)
}

/// One reaped completion, in safe terms.
///
/// # Example
///
/// ```
/// use socklab::sys::uring::{Sqe, Uring};
///
/// // The raw ring: a NOP submitted and its completion reaped, one io_uring_enter.
/// let mut ring = match Uring::setup(4, 8, 0) {
///     Ok(ring) => ring,
///     Err(e) => { eprintln!("skipped: io_uring_setup: {e}"); return Ok(()); }
/// };
/// let params = *ring.params();
/// assert!(params.sq_entries >= 4 && params.cq_entries >= 8);
/// assert!(params.sq_off.array > 0 && params.cq_off.cqes > 0); // where the rings lie in the mapping
/// ring.push(Sqe::nop(9)).unwrap();
/// ring.enter(true, None)?;
/// let mut done = Vec::new();
/// ring.reap(&mut done);
/// assert_eq!((done[0].token, done[0].res), (9, Ok(0)));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Completion {
    /// The operation that completed, `IORING_OP_*`.
    pub op: u8,
    /// The caller's token given to the SQE's constructor.
    pub token: u64,
    /// `res` as a Result: `Ok(n)` (bytes, or 0), or the errno.
    pub res: Result<u32, i32>,
    /// More completions will come from this request (multishot).
    pub more: bool,
    /// The part of a provided buffer the data went into (recv with buffer select, `res` > 0).
    pub piece: Option<Piece>,
    /// A bundle's further pieces, each in the next buffer of the ring, in order (empty otherwise).
    pub more_pieces: Vec<Piece>,
    /// An accepted connection.
    pub accepted: Option<OwnedFd>,
}

/// `struct io_uring_buf`: one entry of a provided-buffer ring. Entry 0's last field is the ring's tail.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct BufEntry {
    addr: u64,
    len: u32,
    bid: u16,
    resv: u16,
}

/// `struct io_uring_buf_reg`.
#[repr(C)]
#[derive(Debug, Default)]
struct BufReg {
    ring_addr: u64,
    ring_entries: u32,
    bgid: u16,
    flags: u16,
    resv: [u64; 3],
}

/// An anonymous or ring mapping, unmapped on drop.
#[derive(Debug)]
struct Map {
    ptr: *mut u8,
    len: usize,
}

impl Map {
    /// A new mapping through the narrated `mmap` (see `sys::mem`).
    fn new(len: usize, fd: Option<(BorrowedFd<'_>, libc::off_t)>) -> io::Result<Map> {
        let ptr = super::mem::mmap(len, fd.map(|(fd, offset)| (fd, offset as i64)))?;
        Ok(Map { ptr, len })
    }

    /// A pointer `offset` bytes in, checked to leave room for a `T`.
    fn at<T>(&self, offset: u32) -> *mut T {
        assert!(offset as usize + size_of::<T>() <= self.len, "ring offset out of the mapping");
        // SAFETY: in bounds of the mapping, checked just above.
        unsafe { self.ptr.add(offset as usize).cast() }
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        // SAFETY: this mapping was made by Map::new with this length and is not used after drop.
        let _ = unsafe { super::mem::munmap(self.ptr, self.len) };
    }
}

/// The bytes one recv put into a provided buffer: buffer `bid`, from `offset`, `len` bytes. The
/// program holds it from the completion until [`Uring::release`]; while any piece of a buffer is
/// held, the buffer is not given back to the kernel, so the piece's bytes stay as received. Not
/// `Clone`: each piece is released once.
///
/// # Example
///
/// ```
/// use std::io::Write;
/// use std::os::fd::AsFd;
/// use socklab::sys::uring::{Sqe, Uring};
///
/// let mut ring = match Uring::setup(4, 8, 0) {
///     Ok(ring) => ring,
///     Err(e) => { eprintln!("skipped: io_uring_setup: {e}"); return Ok(()); }
/// };
/// if let Err(e) = ring.register_buffers(0, 4, 64, false) {
///     eprintln!("skipped: provided buffers: {e}");
///     return Ok(());
/// }
/// let (a, mut b) = std::os::unix::net::UnixStream::pair()?;
/// ring.push(Sqe::recv_multishot(a.as_fd(), 0, 1, 0)).unwrap();
/// b.write_all(b"Hi")?;
/// ring.enter(true, None)?;
/// let mut done = Vec::new();
/// ring.reap(&mut done);
/// let piece = done[0].piece.take().expect("the recv's bytes");
/// assert_eq!((piece.len(), ring.piece_data(&piece)), (2, &b"Hi"[..]));
/// assert!(ring.release(piece)); // its buffer goes back to the kernel
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, PartialEq, Eq)]
pub struct Piece {
    bid: u16,
    offset: u32,
    len: u32,
}

impl Piece {
    /// The provided buffer's id.
    pub fn bid(&self) -> u16 {
        self.bid
    }
    /// Where in the buffer the bytes start.
    pub fn offset(&self) -> u32 {
        self.offset
    }
    /// How many bytes.
    pub fn len(&self) -> u32 {
        self.len
    }
    /// Whether it holds no bytes (never, for a piece a completion handed over).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// What happens to one provided buffer.
#[derive(Debug, Clone, Copy, Default)]
struct BufState {
    /// Bytes the kernel has put into it since it was last given (incremental consumption).
    filled: u32,
    /// Pieces of it the program holds.
    pieces: u32,
    /// It is in the kernel's ring (given, not used up): the kernel may write past `filled`.
    in_kernel: bool,
}

/// The provided buffers of one group: the ring of entries the kernel takes them from, the memory
/// itself, and which buffers are whose at the moment.
#[derive(Debug)]
struct Buffers {
    group: u16,
    ring: Map,
    data: Option<Map>,
    count: u16,
    size: u32,
    /// Registered with `IOU_PBUF_RING_INC`.
    incremental: bool,
    /// Our copy of the ring's tail (the kernel reads the shared one).
    tail: u16,
    state: Vec<BufState>,
    /// The buffers in the kernel's ring, in the order it takes them (head first): a bundle's
    /// data runs on from one to the next.
    order: VecDeque<u16>,
}

impl Buffers {
    fn tail(&self) -> &AtomicU16 {
        // SAFETY: entry 0's `resv` (offset 14) is the tail, a u16 aligned to 2 in a page-aligned
        // mapping; the kernel reads it concurrently, so it is only accessed atomically.
        unsafe { AtomicU16::from_ptr(self.ring.at::<u16>(14)) }
    }

    /// Puts buffer `bid` at the tail of the ring and publishes it (release: the entry is written first).
    fn give(&mut self, bid: u16) {
        let slot = u32::from(self.tail & (self.count - 1)) * size_of::<BufEntry>() as u32;
        let data = self.data.as_ref().expect("buffers are mapped while the ring lives");
        let addr = data.at::<u8>(u32::from(bid) * self.size) as u64;
        let entry = self.ring.at::<BufEntry>(slot);
        // SAFETY: `entry` is in bounds (checked by `at`); the kernel does not read an entry beyond
        // the published tail, so writing it before the release store below races with nothing. The
        // `resv` field (the tail, in entry 0) is left alone: it is written only atomically.
        unsafe {
            ptr::addr_of_mut!((*entry).addr).write(addr);
            ptr::addr_of_mut!((*entry).len).write(self.size);
            ptr::addr_of_mut!((*entry).bid).write(bid);
        }
        self.tail = self.tail.wrapping_add(1);
        self.tail().store(self.tail, Ordering::Release);
        self.state[usize::from(bid)] = BufState { filled: 0, pieces: 0, in_kernel: true };
        self.order.push_back(bid);
    }

    /// A completion used buffer `bid` for `n` bytes; `more`: the kernel keeps using the rest of the
    /// last buffer it wrote (incremental consumption). Returns the piece the program now holds, if
    /// any bytes came; a bundle's bytes that run on into the next buffers of the ring go into
    /// `rest`, a piece per buffer.
    fn used(&mut self, bid: u16, n: u32, more: bool, rest: &mut Vec<Piece>) -> Option<Piece> {
        // Where `bid` is in the ring (the head, unless completions came out of order).
        let at = self.order.iter().position(|&b| b == bid)?;
        if !self.incremental {
            // A whole buffer per recv (no bundles here). With MSG_TRUNC the result is a cut
            // message's real length: the kernel filled the buffer, and the piece is the buffer.
            self.order.remove(at);
            let st = &mut self.state[usize::from(bid)];
            (st.filled, st.in_kernel) = (n.min(self.size), false);
            st.pieces += u32::from(n > 0);
            let piece = (n > 0).then_some(Piece { bid, offset: 0, len: n.min(self.size) });
            self.give_back_if_unused(bid);
            return piece;
        }
        let (mut first, mut left) = (None, n);
        // Each buffer once at most: a result longer than the ring holds is not what the kernel
        // promised, and the excess is not read.
        for _ in 0..self.order.len() {
            let Some(&bid) = self.order.get(at) else { break };
            let st = &mut self.state[usize::from(bid)];
            let offset = st.filled;
            let take = left.min(self.size - offset);
            left -= take;
            st.filled = offset + take;
            // Every buffer of a bundle but the last is used up; the last stays the ring's head
            // while the kernel says it will fill the rest (IORING_CQE_F_BUF_MORE).
            let used_up = left > 0 || !more || st.filled == self.size;
            st.in_kernel = !used_up;
            if take > 0 {
                st.pieces += 1;
                let piece = Piece { bid, offset, len: take };
                if first.is_none() { first = Some(piece) } else { rest.push(piece) }
            }
            if used_up {
                self.order.remove(at); // `at` is now the next buffer's place
                self.give_back_if_unused(bid);
            }
            if left == 0 {
                break;
            }
        }
        first
    }

    /// Gives buffer `bid` back once the kernel is done with it and the program holds none of it.
    fn give_back_if_unused(&mut self, bid: u16) {
        let st = self.state[usize::from(bid)];
        if !st.in_kernel && st.pieces == 0 {
            self.give(bid);
        }
    }

    /// Whether `piece` is one the program holds (its buffer has pieces held, and it lies within
    /// what the kernel filled).
    fn holds(&self, piece: &Piece) -> bool {
        self.state
            .get(usize::from(piece.bid))
            .is_some_and(|st| st.pieces > 0 && piece.offset.checked_add(piece.len).is_some_and(|end| end <= st.filled))
    }

    fn address(&self, bid: u16, offset: u32) -> *mut u8 {
        let data = self.data.as_ref().expect("buffers are mapped while the ring lives");
        data.at::<u8>(u32::from(bid) * self.size + offset)
    }
}

/// One io_uring instance: its descriptor, its two rings, and its provided buffers.
///
/// # Example
///
/// ```
/// use socklab::sys::uring::{Sqe, Uring};
///
/// // The raw ring: a NOP submitted and its completion reaped, one io_uring_enter.
/// let mut ring = match Uring::setup(4, 8, 0) {
///     Ok(ring) => ring,
///     Err(e) => { eprintln!("skipped: io_uring_setup: {e}"); return Ok(()); }
/// };
/// let params = *ring.params();
/// assert!(params.sq_entries >= 4 && params.cq_entries >= 8);
/// assert!(params.sq_off.array > 0 && params.cq_off.cqes > 0); // where the rings lie in the mapping
/// ring.push(Sqe::nop(9)).unwrap();
/// ring.enter(true, None)?;
/// let mut done = Vec::new();
/// ring.reap(&mut done);
/// assert_eq!((done[0].token, done[0].res), (9, Ok(0)));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Uring {
    /// Closed at the end of `drop` through `close`, so the narration shows it (ManuallyDrop keeps
    /// OwnedFd's own, silent, close from running).
    fd: ManuallyDrop<OwnedFd>,
    ring: Map,
    sqes: Map,
    params: Params,
    /// Our SQ tail: SQEs written but not yet handed to the kernel are between the kernel's head and it.
    sq_tail: u32,
    /// Requests submitted whose last completion has not been reaped.
    in_flight: usize,
    /// Waits ask for this many completions, and return early once `min_wait_usec` passed with at
    /// least one (`IORING_FEAT_MIN_TIMEOUT`, 6.12): `(1, 0)` is a plain wait for one.
    batch: (u32, u32),
    buffers: Option<Buffers>,
    /// The header and iovecs of each gathered send in flight, by user data (the kernel reads them).
    gathers: HashMap<u64, Box<Gather>>,
    /// Headers of finished gathered sends, for reuse (boxed: moved into `gathers` without
    /// another allocation).
    #[allow(clippy::vec_box)]
    spare: Vec<Box<Gather>>,
}

/// The most pieces one gathered send ([`Uring::push_sendmsg`]) takes.
pub const MAX_GATHER: usize = 8;

/// A sendmsg's `msghdr` and the iovecs it points to: boxed, so that the addresses the kernel was
/// given stay valid while the box is kept (in `Uring::gathers`, until the last completion).
struct Gather {
    hdr: libc::msghdr,
    iov: [libc::iovec; MAX_GATHER],
}

impl std::fmt::Debug for Gather {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iovecs()).finish()
    }
}

impl Gather {
    fn new() -> Box<Gather> {
        // SAFETY: msghdr and iovec are plain C structs for which all-zero bytes are valid (null
        // pointers, zero lengths).
        Box::new(unsafe { std::mem::zeroed() })
    }

    /// The iovecs in use, as (address, length).
    fn iovecs(&self) -> Vec<(u64, usize)> {
        self.iov[..self.hdr.msg_iovlen as usize].iter().map(|v| (v.iov_base as u64, v.iov_len)).collect()
    }
}

/// An SQE as handed to the kernel, for the narration: the entry, and for a sendmsg the iovecs
/// (address, length) its `msghdr` points to.
///
/// # Example
///
/// ```
/// use socklab::sys::uring::{Sqe, Submitted};
///
/// // What `--trace` prints beneath an io_uring_enter for each request it submitted.
/// let nop = Submitted { sqe: Sqe::nop(7), iov: Vec::new() };
/// assert_eq!(socklab::trace::uring::submitted(&nop), "IORING_OP_NOP user_data=0x700");
/// ```
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The entry itself.
    pub sqe: Sqe,
    /// A sendmsg's iovecs; empty for every other request.
    pub iov: Vec<(u64, usize)>,
}

impl Uring {
    /// `io_uring_setup(2)`, then the rings are mapped. `flags` are `IORING_SETUP_*`; `cq_entries`
    /// is used with `IORING_SETUP_CQSIZE`. Needs `IORING_FEAT_SINGLE_MMAP` (Linux 5.4).
    ///
    /// Man page: [`io_uring_setup(2)`](https://man7.org/linux/man-pages/man2/io_uring_setup.2.html).
    pub fn setup(entries: u32, cq_entries: u32, flags: u32) -> io::Result<Uring> {
        let mut params = Params { flags, cq_entries, ..Params::default() };
        let fd = io_uring_setup(entries, &mut params)?;
        if params.features & IORING_FEAT_SINGLE_MMAP == 0 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let sq_len = params.sq_off.array as usize + params.sq_entries as usize * 4;
        let cq_len = params.cq_off.cqes as usize + params.cq_entries as usize * size_of::<Cqe>();
        let ring = Map::new(sq_len.max(cq_len), Some((fd.as_fd(), IORING_OFF_SQ_RING)))?;
        let sqes = Map::new(params.sq_entries as usize * size_of::<Sqe>(), Some((fd.as_fd(), IORING_OFF_SQES)))?;
        let uring = Uring {
            fd: ManuallyDrop::new(fd),
            ring,
            sqes,
            params,
            sq_tail: 0,
            in_flight: 0,
            batch: (1, 0),
            buffers: None,
            gathers: HashMap::new(),
            spare: Vec::new(),
        };
        // The SQ array maps ring slots to SQE indexes; socklab uses slot i for SQE i, always.
        for i in 0..params.sq_entries {
            let slot = uring.ring.at::<u32>(params.sq_off.array + i * 4);
            // SAFETY: in bounds (checked by `at`); the kernel reads the array only for submitted slots.
            unsafe { slot.write(i) };
        }
        uring.sq_tail_shared().store(uring.sq_head(), Ordering::Relaxed);
        let mut uring = uring;
        uring.sq_tail = uring.sq_head();
        Ok(uring)
    }

    /// The kernel's answer to io_uring_setup: ring sizes and `IORING_FEAT_*`.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The ring's descriptor.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn atomic_u32(&self, offset: u32) -> &AtomicU32 {
        // SAFETY: the offsets come from the kernel and point at aligned u32 ring indexes inside
        // the mapping (bounds checked by `at`), shared with the kernel and so accessed atomically.
        unsafe { AtomicU32::from_ptr(self.ring.at::<u32>(offset)) }
    }
    fn sq_head(&self) -> u32 {
        self.atomic_u32(self.params.sq_off.head).load(Ordering::Acquire)
    }
    fn sq_tail_shared(&self) -> &AtomicU32 {
        self.atomic_u32(self.params.sq_off.tail)
    }
    fn cq_head(&self) -> &AtomicU32 {
        self.atomic_u32(self.params.cq_off.head)
    }
    fn cq_tail(&self) -> u32 {
        self.atomic_u32(self.params.cq_off.tail).load(Ordering::Acquire)
    }

    /// Queues a request; `Err` gives it back when the submission ring is full (submit first).
    pub fn push(&mut self, sqe: Sqe) -> Result<(), Sqe> {
        if self.sq_tail.wrapping_sub(self.sq_head()) >= self.params.sq_entries {
            return Err(sqe);
        }
        let index = self.sq_tail & (self.params.sq_entries - 1);
        let slot = self.sqes.at::<Sqe>(index * size_of::<Sqe>() as u32);
        // SAFETY: in bounds; the slot is between the kernel's head and our tail-to-be, so the
        // kernel is not reading it (it reads only up to the published tail).
        unsafe { slot.write(sqe) };
        self.sq_tail = self.sq_tail.wrapping_add(1);
        self.in_flight += 1;
        Ok(())
    }

    /// Queues a send of `piece`'s bytes from `skip` on (what a short send left). The piece must be
    /// held by us (reaped, not released), and stay held until the send completes.
    pub fn push_send(&mut self, fd: BorrowedFd<'_>, piece: &Piece, skip: u32, token: u64) -> io::Result<()> {
        let bufs = self.buffers.as_ref().ok_or_else(|| io::Error::other("no provided buffers"))?;
        if !bufs.holds(piece) || skip >= piece.len {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "send of a buffer we do not hold"));
        }
        let addr = bufs.address(piece.bid, piece.offset + skip) as u64;
        let mut sqe = Sqe::new(IORING_OP_SEND, fd.as_raw_fd(), token);
        (sqe.addr, sqe.len, sqe.op_flags) = (addr, piece.len - skip, libc::MSG_NOSIGNAL as u32);
        self.push(sqe).map_err(|_| io::Error::from_raw_os_error(libc::EBUSY))
    }

    /// Queues one `sendmsg` of held pieces, in order (the first [`MAX_GATHER`] of `pieces`), the
    /// first from `skip` on: one request, and for the kernel one `tcp_sendmsg`, for bytes that lie
    /// in different buffers. Each piece must stay held until the send completes; one gathered send
    /// per token at a time.
    pub fn push_sendmsg<'p>(
        &mut self,
        fd: BorrowedFd<'_>,
        pieces: impl IntoIterator<Item = &'p Piece>,
        skip: u32,
        token: u64,
    ) -> io::Result<()> {
        let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_string());
        let bufs = self.buffers.as_ref().ok_or_else(|| io::Error::other("no provided buffers"))?;
        let key = user_data(token, IORING_OP_SENDMSG);
        if self.gathers.contains_key(&key) {
            return Err(invalid("a gathered send with this token is already in flight"));
        }
        let mut gather = self.spare.pop().unwrap_or_else(Gather::new);
        let mut n = 0;
        for (i, p) in pieces.into_iter().take(MAX_GATHER).enumerate() {
            let from = if i == 0 { skip } else { 0 };
            if !bufs.holds(p) || from >= p.len {
                self.spare.push(gather);
                return Err(invalid("send of a buffer we do not hold"));
            }
            let base = bufs.address(p.bid, p.offset + from);
            gather.iov[i] = libc::iovec { iov_base: base.cast(), iov_len: (p.len - from) as usize };
            n = i + 1;
        }
        if n == 0 {
            self.spare.push(gather);
            return Err(invalid("a gathered send of no pieces"));
        }
        gather.hdr.msg_iov = gather.iov.as_mut_ptr();
        gather.hdr.msg_iovlen = n as _;
        let mut sqe = Sqe::new(IORING_OP_SENDMSG, fd.as_raw_fd(), token);
        // liburing's io_uring_prep_sendmsg: addr is the msghdr, len 1, the flags in op_flags.
        (sqe.addr, sqe.len, sqe.op_flags) = (ptr::from_ref(&gather.hdr) as u64, 1, libc::MSG_NOSIGNAL as u32);
        match self.push(sqe) {
            Ok(()) => {
                self.gathers.insert(key, gather);
                Ok(())
            }
            Err(_) => {
                self.spare.push(gather);
                Err(io::Error::from_raw_os_error(libc::EBUSY))
            }
        }
    }

    /// Waits from now on ask for `min_complete` completions, returning early once `min_wait_usec`
    /// passed with at least one ready (`IORING_FEAT_MIN_TIMEOUT`, Linux 6.12).
    pub fn set_batch(&mut self, min_complete: u32, min_wait_usec: u32) {
        // Waiting for one needs no minimum wait (and then no extended argument at all).
        self.batch = if min_complete <= 1 { (1, 0) } else { (min_complete, min_wait_usec) };
    }

    /// SQEs queued and not yet handed to the kernel.
    pub fn pending(&self) -> u32 {
        self.sq_tail.wrapping_sub(self.sq_head())
    }

    /// Publishes the queued SQEs and calls `io_uring_enter(2)`: submits them, then (when `wait`)
    /// blocks until a completion is ready or `timeout` passes. Returns how many were submitted.
    ///
    /// Man page: [`io_uring_enter(2)`](https://man7.org/linux/man-pages/man2/io_uring_enter.2.html).
    pub fn enter(&mut self, wait: bool, timeout: Option<Duration>) -> io::Result<u32> {
        let head = self.sq_head();
        let to_submit = self.sq_tail.wrapping_sub(head);
        // Release: the SQEs written above are visible to the kernel before it sees the new tail.
        self.sq_tail_shared().store(self.sq_tail, Ordering::Release);
        let mut flags = if wait { IORING_ENTER_GETEVENTS } else { 0 };
        // A task that sleeps in io_uring_enter with requests in flight (a multishot recv armed on
        // an idle client) is counted as waiting for I/O, like a task blocked on a disk: top and
        // vmstat then show an idle echo server's CPU as iowait (measured: a whole CPU for one idle
        // client). Waiting for clients is not that; say so where the kernel lets us (6.15).
        if wait && self.params.features & IORING_FEAT_NO_IOWAIT != 0 {
            flags |= IORING_ENTER_NO_IOWAIT;
        }
        let ts =
            timeout.map(|t| libc::timespec { tv_sec: t.as_secs() as libc::time_t, tv_nsec: t.subsec_nanos() as _ });
        let (min_complete, min_wait) = self.batch;
        let ext = (ts.is_some() || min_wait > 0).then(|| GeteventsArg {
            sigmask: 0,
            sigmask_sz: 0,
            min_wait_usec: min_wait,
            ts: ts.as_ref().map_or(0, |ts| ptr::from_ref(ts) as u64),
        });
        let (arg, size) = match &ext {
            Some(ext) if wait => {
                flags |= IORING_ENTER_EXT_ARG;
                (ptr::from_ref(ext).cast::<libc::c_void>(), size_of::<GeteventsArg>())
            }
            _ => (ptr::null(), NSIG_BYTES),
        };
        let min_complete = if wait { min_complete } else { 0 };
        // The SQEs handed over, for the narration only (an empty Vec does not allocate).
        let sqes = if trace::enabled() { self.submitted_sqes(head, to_submit) } else { Vec::new() };
        let arg_shown = if arg.is_null() { Arg::Null } else { Arg::Ptr(arg as usize) };
        let fd = self.fd.as_raw_fd();
        let (fd_arg, n_arg, min_arg, flags_arg, size_arg) = (
            Arg::Fd(fd),
            Arg::Int(to_submit.into()),
            Arg::Int(min_complete.into()),
            Arg::UringEnterFlags(flags),
            Arg::Int(size as i64),
        );
        let res = syscall!(
            "io_uring_enter",
            // SAFETY: io_uring_enter reads the SQEs we published (ours, mapped) and, with EXT_ARG,
            // `ext` and the timespec it points to, both alive on this stack for the whole call.
            unsafe { libc::syscall(libc::SYS_io_uring_enter, fd, to_submit, min_complete, flags, arg, size) },
            [fd_arg, n_arg, min_arg, flags_arg, arg_shown, size_arg, Arg::UringSubmitted(&sqes), Arg::UringCompleted(&[])]
                => |_res| [fd_arg, n_arg, min_arg, flags_arg, arg_shown, size_arg, Arg::UringSubmitted(&sqes),
                    Arg::UringCompleted(&self.ready_cqes())]
        )
        .map(|n| n as u32);
        match res {
            // The wait timed out or was interrupted after submitting: report what was submitted.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR)) && self.pending() < to_submit => {
                Ok(to_submit - self.pending())
            }
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => Ok(0),
            other => other,
        }
    }

    /// Copies of the SQEs about to be submitted (with a sendmsg's iovecs), for the narration.
    fn submitted_sqes(&self, head: u32, n: u32) -> Vec<Submitted> {
        (0..n)
            .map(|i| {
                let index = head.wrapping_add(i) & (self.params.sq_entries - 1);
                // SAFETY: in bounds; these SQEs were written by `push` and the kernel only reads them.
                let sqe = unsafe { self.sqes.at::<Sqe>(index * size_of::<Sqe>() as u32).read() };
                let iov = match sqe.opcode {
                    IORING_OP_SENDMSG => self.gathers.get(&sqe.user_data).map(|g| g.iovecs()).unwrap_or_default(),
                    _ => Vec::new(),
                };
                Submitted { sqe, iov }
            })
            .collect()
    }

    /// Copies of the CQEs ready now, not consumed (for the narration).
    fn ready_cqes(&self) -> Vec<Cqe> {
        let (head, tail) = (self.cq_head().load(Ordering::Relaxed), self.cq_tail());
        (0..tail.wrapping_sub(head)).map(|i| self.cqe(head.wrapping_add(i))).collect()
    }

    fn cqe(&self, index: u32) -> Cqe {
        let slot = index & (self.params.cq_entries - 1);
        let at = self.params.cq_off.cqes + slot * size_of::<Cqe>() as u32;
        // SAFETY: in bounds; a CQE between head and the tail loaded with acquire is fully written
        // by the kernel, which does not touch it again until we move the head past it.
        unsafe { self.ring.at::<Cqe>(at).read() }
    }

    /// Takes every ready completion off the ring into `out`, in the order the kernel posted them.
    pub fn reap(&mut self, out: &mut Vec<Completion>) {
        let head = self.cq_head().load(Ordering::Relaxed);
        let tail = self.cq_tail();
        for i in 0..tail.wrapping_sub(head) {
            let cqe = self.cqe(head.wrapping_add(i));
            out.push(self.completion(cqe));
        }
        // Release: we are done reading those CQEs before the kernel may reuse their slots.
        self.cq_head().store(tail, Ordering::Release);
    }

    fn completion(&mut self, cqe: Cqe) -> Completion {
        let (op, token) = ((cqe.user_data & 0xff) as u8, cqe.user_data >> 8);
        let more = cqe.flags & IORING_CQE_F_MORE != 0;
        if !more {
            self.in_flight = self.in_flight.saturating_sub(1);
            // The kernel is done with a gathered send's header and iovecs.
            if let Some(gather) = self.gathers.remove(&cqe.user_data) {
                self.spare.push(gather);
            }
        }
        let (mut piece, mut more_pieces) = (None, Vec::new());
        if cqe.flags & IORING_CQE_F_BUFFER != 0
            && let Some(bufs) = self.buffers.as_mut()
        {
            let bid = (cqe.flags >> IORING_CQE_BUFFER_SHIFT) as u16;
            let more = cqe.flags & IORING_CQE_F_BUF_MORE != 0;
            piece = bufs.used(bid, cqe.res.max(0) as u32, more, &mut more_pieces);
        }
        let accepted = (op == IORING_OP_ACCEPT && cqe.res >= 0)
            // SAFETY: a successful accept's result is a new descriptor that nothing else owns.
            .then(|| unsafe { OwnedFd::from_raw_fd(cqe.res) });
        let res = if cqe.res < 0 { Err(-cqe.res) } else { Ok(cqe.res as u32) };
        Completion { op, token, res, more, piece, more_pieces, accepted }
    }

    /// `io_uring_register(IORING_REGISTER_PBUF_RING)`: `count` buffers (a power of two) of `size`
    /// bytes each, as group `group`, all given to the kernel. Linux 5.19; `incremental`
    /// (`IOU_PBUF_RING_INC`, Linux 6.12): each recv takes only the bytes it fills from the buffer
    /// at the ring's head, so small messages do not each use up a whole buffer.
    ///
    /// Man page: [`io_uring_register(2)`](https://man7.org/linux/man-pages/man2/io_uring_register.2.html).
    pub fn register_buffers(&mut self, group: u16, count: u16, size: u32, incremental: bool) -> io::Result<()> {
        if !count.is_power_of_two() || size == 0 || self.buffers.is_some() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let ring = Map::new(usize::from(count) * size_of::<BufEntry>(), None)?;
        let data = Map::new(usize::from(count) * size as usize, None)?;
        let flags = if incremental { IOU_PBUF_RING_INC } else { 0 };
        let reg =
            BufReg { ring_addr: ring.ptr as u64, ring_entries: count.into(), bgid: group, flags, ..BufReg::default() };
        io_uring_register_pbuf(self.fd.as_fd(), IORING_REGISTER_PBUF_RING, &reg)?;
        let state = vec![BufState::default(); count.into()];
        let order = VecDeque::with_capacity(count.into());
        let mut bufs = Buffers { group, ring, data: Some(data), count, size, incremental, tail: 0, state, order };
        for bid in 0..count {
            bufs.give(bid);
        }
        self.buffers = Some(bufs);
        Ok(())
    }

    /// Whether the provided buffers are consumed incrementally (`IOU_PBUF_RING_INC`).
    pub fn incremental(&self) -> bool {
        self.buffers.as_ref().is_some_and(|b| b.incremental)
    }

    /// The bytes of `piece`, while we hold it (empty for a piece not ours).
    pub fn piece_data(&self, piece: &Piece) -> &[u8] {
        let Some(bufs) = self.buffers.as_ref().filter(|b| b.holds(piece)) else { return &[] };
        let start = bufs.address(piece.bid, piece.offset);
        // SAFETY: in bounds (the piece lies within the filled part of its buffer, inside the
        // mapping); the kernel wrote these bytes before the completion we reaped, and does not
        // write them again until the buffer is given back, which happens only once no piece of it
        // is held (`release` needs `&mut self`, so not while this borrow lives).
        unsafe { std::slice::from_raw_parts(start, piece.len as usize) }
    }

    /// Appends `next` to `piece` when it directly follows it in the same buffer (two recvs in a
    /// row into one buffer, with incremental consumption): then one send covers both. Otherwise
    /// gives `next` back unchanged.
    pub fn join(&mut self, piece: &mut Piece, next: Piece) -> Result<(), Piece> {
        let Some(bufs) = self.buffers.as_mut() else { return Err(next) };
        if next.bid != piece.bid || piece.offset + piece.len != next.offset || !bufs.holds(piece) {
            return Err(next);
        }
        piece.len += next.len;
        bufs.state[usize::from(next.bid)].pieces -= 1; // `next` is now part of `piece`
        Ok(())
    }

    /// Lets go of `piece`; its buffer goes back to the kernel once the kernel has used it up and
    /// no other piece of it is held. Returns false if we did not hold it.
    pub fn release(&mut self, piece: Piece) -> bool {
        let Some(bufs) = self.buffers.as_mut().filter(|b| b.holds(&piece)) else { return false };
        bufs.state[usize::from(piece.bid)].pieces -= 1;
        bufs.give_back_if_unused(piece.bid);
        true
    }

    /// The size and number of the provided buffers.
    pub fn buffer_shape(&self) -> Option<(u32, u16)> {
        self.buffers.as_ref().map(|b| (b.size, b.count))
    }
}

impl Drop for Uring {
    fn drop(&mut self) {
        // Cancel everything still armed and reap until each request has completed, so the kernel is
        // done with our buffers before they are unmapped (bounded: about a second).
        let mut out = Vec::new();
        if self.in_flight > 0 {
            let mut cancel = Sqe::new(IORING_OP_ASYNC_CANCEL, -1, 0);
            cancel.op_flags = IORING_ASYNC_CANCEL_ALL | IORING_ASYNC_CANCEL_ANY;
            if self.push(cancel).is_err() {
                let _ = self.enter(false, None);
                let _ = self.push(cancel);
            }
        }
        for _ in 0..20 {
            if self.in_flight == 0 {
                break;
            }
            if self.enter(true, Some(Duration::from_millis(50))).is_err() && self.pending() > 0 {
                break;
            }
            self.reap(&mut out);
            out.clear(); // accepted descriptors are closed here
        }
        if let Some(mut bufs) = self.buffers.take() {
            let reg = BufReg {
                ring_addr: bufs.ring.ptr as u64,
                ring_entries: bufs.count.into(),
                bgid: bufs.group,
                ..BufReg::default()
            };
            let _ = io_uring_register_pbuf(self.fd.as_fd(), IORING_UNREGISTER_PBUF_RING, &reg);
            if self.in_flight > 0 {
                // The kernel may still write into these buffers: never unmap them.
                std::mem::forget(bufs.data.take());
                // Nor free what a gathered send still in flight may read.
                std::mem::forget(std::mem::take(&mut self.gathers));
            }
        }
        // SAFETY: this is the end of `drop`; nothing reads `self.fd` after it is taken here.
        let fd = unsafe { ManuallyDrop::take(&mut self.fd) };
        let _ = super::close(fd);
    }
}

/// `struct io_uring_getevents_arg`.
#[repr(C)]
struct GeteventsArg {
    sigmask: u64,
    sigmask_sz: u32,
    min_wait_usec: u32,
    ts: u64,
}

/// `io_uring_setup(2)`: a new io_uring instance with rings of `entries` SQEs; the kernel fills in
/// the rest of `params` (sizes, offsets into the mapping, features).
///
/// Man page: [`io_uring_setup(2)`](https://man7.org/linux/man-pages/man2/io_uring_setup.2.html).
pub fn io_uring_setup(entries: u32, params: &mut Params) -> io::Result<OwnedFd> {
    let raw: *mut Params = params;
    let fd = syscall!(
        "io_uring_setup",
        // SAFETY: `raw` is a valid, writable io_uring_params for the whole call.
        unsafe { libc::syscall(libc::SYS_io_uring_setup, entries, raw) },
        [Arg::Int(entries.into()), Arg::Ptr(raw as usize)] => |res| [
            Arg::Int(entries.into()),
            if res.is_ok() {
                // SAFETY: `raw` points to `*params`, which the kernel no longer touches once the
                // call returned; nothing writes it while this shared borrow lives.
                Arg::UringParams(unsafe { &*raw })
            } else {
                Arg::Ptr(raw as usize)
            },
        ]
    )?;
    // SAFETY: the kernel returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `io_uring_register(2)` for (un)registering a provided-buffer ring.
fn io_uring_register_pbuf(fd: BorrowedFd<'_>, op: u32, reg: &BufReg) -> io::Result<()> {
    let shown =
        Arg::UringBufReg { ring_addr: reg.ring_addr, entries: reg.ring_entries, bgid: reg.bgid, flags: reg.flags };
    syscall!(
        "io_uring_register",
        // SAFETY: `reg` is a valid io_uring_buf_reg, read by the kernel during the call only; the
        // ring it names is a mapping owned by the caller's Buffers, which outlives the registration.
        unsafe { libc::syscall(libc::SYS_io_uring_register, fd.as_raw_fd(), op, ptr::from_ref(reg), 1) },
        [Arg::Fd(fd.as_raw_fd()), Arg::UringRegisterOp(op), shown, Arg::Int(1)]
    )
    .map(drop)
}
