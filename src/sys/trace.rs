//! The narration hook: every wrapper in `sys` reports the call it makes, in the kernel's terms.
//!
//! `sys` only *describes* each call — its kernel name (`accept4`, `recvfrom`), its arguments as
//! typed [`Arg`]s and its result — and hands that to one installed hook. Formatting (strace's
//! syntax, `--explain` sentences, `--step` pauses) lives above, in `crate::trace`, so this floor
//! stays free of policy.
//!
//! Cost when no hook is installed: one relaxed atomic load and a predictable branch per call. The
//! argument list is built only inside that branch, so nothing is formatted or allocated.

use std::io;
use std::os::fd::RawFd;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use super::addr::SockAddr;

/// One argument of a system call, typed so a formatter can print constants by name.
///
/// # Example
///
/// ```standalone_crate
/// use std::sync::Mutex;
/// use socklab::sys::trace::{self, Arg, Call, Phase};
///
/// // Every wrapper in `sys` describes its call to one hook: the kernel's name, typed arguments, result.
/// static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// fn hook(call: &Call<'_>) {
///     if let Phase::Exit(result) = call.phase {
///         let fd = call.args.iter().find_map(|a| if let Arg::Fd(fd) = a { Some(*fd) } else { None });
///         SEEN.lock().unwrap().push(format!("{} {:?} {:?}", call.name, fd, result.as_ref().ok()));
///     }
/// }
/// assert!(trace::install(hook));
/// let (a, _b) = socklab::Socket::pair(socklab::Type::STREAM)?;
/// a.send(b"x")?;
/// trace::set_enabled(false);
/// let seen = SEEN.lock().unwrap();
/// assert!(seen.iter().any(|l| l.starts_with("socketpair ")), "{seen:?}");
/// assert!(seen.iter().any(|l| l.starts_with("sendto Some(") && l.ends_with("Some(1)")), "{seen:?}");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Arg<'a> {
    /// A file descriptor.
    Fd(RawFd),
    /// A plain integer (a length, a backlog).
    Int(i64),
    /// An address family: `AF_INET`.
    Domain(i32),
    /// A socket type with flags: `SOCK_STREAM|SOCK_CLOEXEC`.
    SockType(i32),
    /// A protocol number: `IPPROTO_IP`.
    Protocol(i32),
    /// An address we pass in, of any family.
    Addr(&'a SockAddr),
    /// An address the kernel writes back: `(address if known, capacity offered, length returned)`.
    AddrOut(Option<&'a SockAddr>, u32, Option<u32>),
    /// Bytes passed to or returned by the kernel (shown as a string; empty before a recv returns).
    Data(&'a [u8]),
    /// `MSG_*` flags for send/recv.
    MsgFlags(i32),
    /// `SOCK_*` flags for accept4.
    AcceptFlags(i32),
    /// `SHUT_RD` / `SHUT_WR` / `SHUT_RDWR`.
    How(i32),
    /// A socket option: `(level, name)` printed as `SOL_SOCKET, SO_REUSEADDR`.
    SockOpt(i32, i32),
    /// An option value that is a C int: `[1]`.
    OptInt(i32),
    /// An option value that is a `struct linger`.
    OptLinger {
        /// `l_onoff`: linger on close or not.
        onoff: i32,
        /// `l_linger`: seconds to linger.
        linger: i32,
    },
    /// An option value that is a `struct timeval`.
    OptTimeval {
        /// `tv_sec`.
        sec: i64,
        /// `tv_usec`.
        usec: i64,
    },
    /// An option value the kernel writes back, not yet known (shown before the call returns).
    OptOut,
    /// The C null pointer.
    Null,
    /// A buffer the kernel did not fill (a failed call): strace shows its address, `0x7ffd...`.
    Ptr(usize),
    /// An address buffer the kernel did not fill (a failed accept) and its length as passed:
    /// `0x7ffd..., [128]`.
    PtrLen(usize, u32),
    /// socketpair's array: `[4, 5]` once the kernel filled it, `...` before.
    FdPair(Option<(RawFd, RawFd)>),
    /// A constant shown by its name: an ioctl request such as `SIOCGSTAMPNS`.
    Name(&'static str),
    /// A signal by number: `SIGCHLD`.
    Signal(i32),
    /// sigprocmask's `how`: `SIG_BLOCK`.
    SigHow(i32),
    /// A signal set as mask bits (bit `sig - 1`): `[INT TERM]`.
    SigSet(u64),
    /// A `struct sigaction`: its handler (`SIG_DFL`, `SIG_IGN` or an address) and `sa_flags`.
    Handler(usize, i32),
    /// wait4's options: `WNOHANG`, or `0`.
    WaitOptions(i32),
    /// wait4's status out-parameter once written (`None`: not written, shown as `NULL`... or the
    /// pointer before the call).
    WaitStatus(Option<i32>),
    /// A resource limit name: `RLIMIT_NOFILE`.
    Resource(i32),
    /// A `struct rlimit`: `{rlim_cur=1024, rlim_max=4096}`.
    Rlimit(u64, u64),
    /// A `struct rusage`'s two CPU times in microseconds, as strace abbreviates it:
    /// `{ru_utime={tv_sec=0, tv_usec=1999}, ru_stime={tv_sec=1, tv_usec=2}, ...}`.
    Rusage(u64, u64),
    /// A value-result option length: `[4]`.
    OptLen(u32),
    /// poll(2)'s array: `[{fd=3, events=POLLIN}]` going in; the kernel's `revents` coming out.
    PollFds(&'a [libc::pollfd]),
    /// epoll_create1's flags: `EPOLL_CLOEXEC`.
    #[cfg(socklab_epoll)]
    EpollFlags(i32),
    /// epoll_ctl's operation: `EPOLL_CTL_ADD`.
    #[cfg(socklab_epoll)]
    EpollOp(i32),
    /// One `struct epoll_event`: `{events=EPOLLIN, data={u32=3, u64=3}}`.
    #[cfg(socklab_epoll)]
    EpollEvent {
        /// The event mask.
        events: u32,
        /// The caller's token.
        data: u64,
    },
    /// epoll_wait's output array (empty before the call returns).
    #[cfg(socklab_epoll)]
    EpollEvents(&'a [libc::epoll_event]),
    /// A `struct ucred` (SO_PEERCRED): `{pid=1234, uid=1000, gid=1000}`.
    PeerCred {
        /// The peer's process id (when it connected).
        pid: i32,
        /// Its user id.
        uid: u32,
        /// Its group id.
        gid: u32,
    },
    /// A file system path: `"/tmp/echo.sock"`.
    Path(&'a [u8]),
    /// open's flags: `O_RDONLY|O_CLOEXEC`.
    OpenFlags(i32),
    /// A file's permission bits (open with `O_CREAT`): `0666`.
    Mode(u32),
    /// getdents64's buffer: its address and, once filled, how many entries it holds
    /// (`0x55... /* 12 entries */`).
    Dirents(usize, Option<usize>),
    /// A `struct msghdr` of sendmsg/recvmsg with no name, one iovec and at most one `SCM_RIGHTS`
    /// control message. `data: None` before a recvmsg returns (shown as `...`).
    Msg {
        /// The bytes in the one iovec (sent, or received).
        data: Option<&'a [u8]>,
        /// `iov_len`: the buffer's size.
        iov_len: usize,
        /// The descriptors in the `SCM_RIGHTS` message (none: no control message).
        fds: &'a [RawFd],
        /// `msg_controllen`: the control buffer's size (sendmsg) or what the kernel filled (recvmsg).
        controllen: usize,
        /// `msg_flags` as the kernel wrote them (recvmsg: `MSG_TRUNC`, `MSG_CTRUNC`).
        flags: i32,
    },
    /// A `siginfo_t` the kernel wrote back: `{si_signo=SIGINT, si_code=SI_USER, si_pid=N, si_uid=N}`.
    SigInfo {
        /// The signal.
        signo: i32,
        /// How it was sent (`SI_USER`: kill(2)).
        code: i32,
        /// The sender's process id.
        pid: i32,
        /// The sender's user id.
        uid: u32,
    },
    /// A `struct stat` the kernel wrote back: strace shows its type and permissions, and its size
    /// (or, for a device, its device number).
    Stat {
        /// `st_mode`.
        mode: u32,
        /// `st_size`.
        size: i64,
        /// `st_rdev`.
        rdev: u64,
    },
    /// A `struct timespec` the kernel wrote back.
    Timespec {
        /// `tv_sec`.
        sec: i64,
        /// `tv_nsec`.
        nsec: i64,
    },
    /// mmap's protection: `PROT_READ|PROT_WRITE`.
    Prot(i32),
    /// mmap's flags: `MAP_SHARED|MAP_POPULATE`.
    MapFlags(i32),
    /// A number strace prints in hex (mmap's offset): `0x10000000`, or `0`.
    Hex(u64),
    /// A CPU affinity mask the kernel wrote back, as its bytes: strace lists the CPUs, `[0 1]`.
    CpuSet(&'a [u8]),
    // --- io_uring (src/sys/uring.rs) ---
    /// io_uring_setup's `struct io_uring_params`, as filled by the kernel.
    #[cfg(socklab_uring)]
    UringParams(&'a crate::sys::uring::Params),
    /// io_uring_enter's flags: `IORING_ENTER_GETEVENTS`.
    #[cfg(socklab_uring)]
    UringEnterFlags(u32),
    /// io_uring_register's opcode: `IORING_REGISTER_PBUF_RING`.
    #[cfg(socklab_uring)]
    UringRegisterOp(u32),
    /// A `struct io_uring_buf_reg`: `{ring_addr=0x7f..., ring_entries=8, bgid=0}`.
    #[cfg(socklab_uring)]
    UringBufReg {
        /// The ring's address.
        ring_addr: u64,
        /// How many buffers it holds.
        entries: u32,
        /// The buffer group id.
        bgid: u16,
        /// `IOU_PBUF_RING_*` flags.
        flags: u16,
    },
    /// The SQEs an io_uring_enter handed to the kernel: printed beneath the call, not inside it.
    #[cfg(socklab_uring)]
    UringSubmitted(&'a [crate::sys::uring::Submitted]),
    /// The CQEs waiting in the completion ring when io_uring_enter returned: printed beneath it.
    #[cfg(socklab_uring)]
    UringCompleted(&'a [crate::sys::uring::Cqe]),
}

/// Whether the hook sees the call before it is made or after it returned.
///
/// # Example
///
/// ```standalone_crate
/// use std::sync::Mutex;
/// use socklab::sys::trace::{self, Arg, Call, Phase};
///
/// // Every wrapper in `sys` describes its call to one hook: the kernel's name, typed arguments, result.
/// static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// fn hook(call: &Call<'_>) {
///     if let Phase::Exit(result) = call.phase {
///         let fd = call.args.iter().find_map(|a| if let Arg::Fd(fd) = a { Some(*fd) } else { None });
///         SEEN.lock().unwrap().push(format!("{} {:?} {:?}", call.name, fd, result.as_ref().ok()));
///     }
/// }
/// assert!(trace::install(hook));
/// let (a, _b) = socklab::Socket::pair(socklab::Type::STREAM)?;
/// a.send(b"x")?;
/// trace::set_enabled(false);
/// let seen = SEEN.lock().unwrap();
/// assert!(seen.iter().any(|l| l.starts_with("socketpair ")), "{seen:?}");
/// assert!(seen.iter().any(|l| l.starts_with("sendto Some(") && l.ends_with("Some(1)")), "{seen:?}");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub enum Phase<'a> {
    /// About to make the call (for `--step`); out-arguments are not filled in yet.
    Enter,
    /// The call returned this.
    Exit(&'a io::Result<i64>),
}

/// One report: the kernel's name for the call, its arguments and the phase.
///
/// # Example
///
/// ```standalone_crate
/// use std::sync::Mutex;
/// use socklab::sys::trace::{self, Arg, Call, Phase};
///
/// // Every wrapper in `sys` describes its call to one hook: the kernel's name, typed arguments, result.
/// static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// fn hook(call: &Call<'_>) {
///     if let Phase::Exit(result) = call.phase {
///         let fd = call.args.iter().find_map(|a| if let Arg::Fd(fd) = a { Some(*fd) } else { None });
///         SEEN.lock().unwrap().push(format!("{} {:?} {:?}", call.name, fd, result.as_ref().ok()));
///     }
/// }
/// assert!(trace::install(hook));
/// let (a, _b) = socklab::Socket::pair(socklab::Type::STREAM)?;
/// a.send(b"x")?;
/// trace::set_enabled(false);
/// let seen = SEEN.lock().unwrap();
/// assert!(seen.iter().any(|l| l.starts_with("socketpair ")), "{seen:?}");
/// assert!(seen.iter().any(|l| l.starts_with("sendto Some(") && l.ends_with("Some(1)")), "{seen:?}");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Call<'a> {
    /// The name strace prints: the syscall the kernel actually receives.
    pub name: &'static str,
    /// The arguments, in the C prototype's order.
    pub args: &'a [Arg<'a>],
    /// Before or after.
    pub phase: Phase<'a>,
}

/// The installed hook's type.
pub type Hook = fn(&Call<'_>);

static ENABLED: AtomicBool = AtomicBool::new(false);
static HOOK: OnceLock<Hook> = OnceLock::new();

/// The calling thread's id (`gettid(2)`), for the narration's `[pid N]` marks. Like the
/// narration's own writes to stderr, this call belongs to the narrator, not to the program it
/// narrates, so it is not reported (the narration asks once per thread and remembers).
///
/// Man page: [`gettid(2)`](https://man7.org/linux/man-pages/man2/gettid.2.html).
pub fn own_tid() -> i32 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::gettid() }
}

/// The tasks of this process that socklab's own code knows to be alive: its first thread, the
/// threads it started (counted by `crate::process::spawn`) and the children it forked and has not
/// reaped yet. `strace -f` marks its lines `[pid N]` while it follows more than one task; the
/// narration asks this count. (A child exits a little before it is reaped and a thread a little
/// after its work returns: the count moves when socklab's code sees it, not when the kernel did.)
static TASKS: AtomicI32 = AtomicI32::new(1);

/// One more task (a thread about to be started, a child just forked).
pub fn task_started() {
    TASKS.fetch_add(1, Ordering::Relaxed);
}

/// One task fewer (a thread's work returned, a child reaped).
pub fn task_ended() {
    TASKS.fetch_sub(1, Ordering::Relaxed);
}

/// How many tasks socklab's code knows to be alive in this process (see [`task_started`]).
pub fn tasks() -> i32 {
    TASKS.load(Ordering::Relaxed)
}

/// Installs the process-wide hook and turns narration on. The first hook wins; returns whether
/// this one was installed.
pub fn install(hook: Hook) -> bool {
    let installed = HOOK.set(hook).is_ok();
    ENABLED.store(true, Ordering::Release);
    installed
}

/// Turns narration on or off (the hook stays installed).
pub fn set_enabled(on: bool) {
    ENABLED.store(on && HOOK.get().is_some(), Ordering::Release);
}

/// Is a hook listening? The only cost of narration when it is off.
#[inline(always)]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Reports a call about to be made.
#[inline]
pub(crate) fn enter(name: &'static str, args: &[Arg<'_>]) {
    if let Some(hook) = HOOK.get() {
        hook(&Call { name, args, phase: Phase::Enter });
    }
}

/// Reports a call's result.
#[inline]
pub(crate) fn exit(name: &'static str, args: &[Arg<'_>], result: &io::Result<i64>) {
    if let Some(hook) = HOOK.get() {
        hook(&Call { name, args, phase: Phase::Exit(result) });
    }
}
