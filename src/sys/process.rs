//! Processes and signals: `fork(2)`, `waitpid(2)`, `kill(2)`, `_exit(2)`, `sigprocmask(2)`,
//! `sigaction(2)` and `sigwait(3)`. The safe layer above this is `crate::process`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use super::trace::Arg;

pub use libc::{
    SIG_BLOCK, SIG_SETMASK, SIG_UNBLOCK, SIGALRM, SIGCHLD, SIGINT, SIGKILL, SIGPIPE, SIGTERM, SIGUSR1, WNOHANG,
};

/// What `fork` returned in this process.
///
/// # Example
///
/// ```standalone_crate
/// use socklab::process::{self, Forked};
///
/// // The child is a copy with only this thread in it; it ends with _exit, never by returning.
/// match process::fork()? {
///     Forked::Child => process::exit_now(7),
///     Forked::Parent(pid) => {
///         let status = process::wait(pid)?;
///         assert_eq!(libc::WEXITSTATUS(status), 7);
///     }
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    /// We are the parent; this is the child's pid.
    Parent(libc::pid_t),
    /// We are the child: a copy of the parent's memory with only the calling thread in it.
    Child,
}

/// `fork(2)` (glibc makes it as `clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|
/// CLONE_CHILD_SETTID|SIGCHLD, ...)`): copies the calling process. In a multi-threaded program the
/// child has only the thread that called fork, so until it exits or execs it must not take locks
/// another thread may have held (no allocation-heavy work, no printing through shared locks).
///
/// Man pages: [`fork(2)`](https://man7.org/linux/man-pages/man2/fork.2.html), [`clone(2)`](https://man7.org/linux/man-pages/man2/clone.2.html).
pub fn fork() -> io::Result<Forked> {
    let pid = syscall!(
        "clone",
        // SAFETY: fork takes no arguments. The caller's child keeps to the rules in this fn's doc.
        unsafe { libc::fork() },
        // child_tidptr is glibc's (the new thread's tid field), an address the program cannot see.
        [
            Arg::Name("child_stack=NULL"),
            Arg::Name("flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD"),
            Arg::Name("child_tidptr=...")
        ]
    )?;
    Ok(if pid == 0 { Forked::Child } else { Forked::Parent(pid) })
}

/// `waitpid(2)` (made as `wait4(pid, &status, options, NULL)`): collects the exit status of child
/// `pid` (`-1`: any child), freeing its process table entry (a child that exited and was not waited
/// for is a zombie). With `WNOHANG` it returns `Ok(None)` while that child is still running instead
/// of blocking. Returns `(pid, status)`.
///
/// Man page: [`wait4(2)`](https://man7.org/linux/man-pages/man2/wait4.2.html).
pub fn waitpid(pid: libc::pid_t, options: libc::c_int) -> io::Result<Option<(libc::pid_t, libc::c_int)>> {
    let mut status: libc::c_int = 0;
    let ptr: *mut libc::c_int = &mut status;
    let got = syscall!(
        "wait4",
        // SAFETY: `ptr` points to a writable int for the whole call.
        unsafe { libc::waitpid(pid, ptr, options) },
        [Arg::Int(pid.into()), Arg::WaitStatus(None), Arg::WaitOptions(options), Arg::Null]
            => |res| [Arg::Int(pid.into()), if res.as_ref().is_ok_and(|p| *p > 0) { Arg::WaitStatus(Some(status)) } else { Arg::Ptr(ptr as usize) }, Arg::WaitOptions(options), Arg::Null]
    )?;
    Ok((got != 0).then_some((got, status)))
}

/// `kill(2)`: sends signal `sig` to process `pid`.
///
/// Man page: [`kill(2)`](https://man7.org/linux/man-pages/man2/kill.2.html).
pub fn kill(pid: libc::pid_t, sig: libc::c_int) -> io::Result<()> {
    syscall!(
        "kill",
        // SAFETY: plain integers; no memory is passed.
        unsafe { libc::kill(pid, sig) },
        [Arg::Int(pid.into()), Arg::Signal(sig)]
    )
    .map(drop)
}

/// `_exit(2)` (the kernel's `exit_group`): ends the process at once, without running atexit
/// handlers, flushing C stdio or running Rust destructors — what a fork child must do, since those
/// belong to the parent's copy of the program.
///
/// Man pages: [`_exit(2)`](https://man7.org/linux/man-pages/man2/_exit.2.html), [`exit_group(2)`](https://man7.org/linux/man-pages/man2/exit_group.2.html).
pub fn exit(code: libc::c_int) -> ! {
    syscall_noreturn!("exit_group", [Arg::Int(code.into())]);
    // SAFETY: _exit never returns and touches no memory of ours.
    unsafe { libc::_exit(code) }
}

/// Builds a `sigset_t` holding `signals`.
fn sigset(signals: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigset_t is plain C data; sigemptyset initialises it before use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable sigset_t. sigemptyset/sigaddset are libc helpers, not
    // system calls; they fail only for invalid signal numbers, which the call using the set reports.
    unsafe {
        libc::sigemptyset(&mut set);
        for &sig in signals {
            libc::sigaddset(&mut set, sig);
        }
    }
    set
}

/// The signals of `signals` as strace's mask bits (bit `sig - 1`).
fn mask_bits(signals: &[libc::c_int]) -> u64 {
    signals.iter().filter(|&&s| (1..=64).contains(&s)).fold(0, |m, &s| m | 1 << (s - 1))
}

/// `sigprocmask(2)` for the calling thread (`pthread_sigmask`, made as `rt_sigprocmask`): `how` is
/// `SIG_BLOCK`, `SIG_UNBLOCK` or `SIG_SETMASK`, applied with the set of `signals`. Threads spawned
/// later inherit the mask, and so does a fork child of this thread.
///
/// Man page: [`sigprocmask(2)`](https://man7.org/linux/man-pages/man2/sigprocmask.2.html).
pub fn sigprocmask(how: libc::c_int, signals: &[libc::c_int]) -> io::Result<()> {
    let set = sigset(signals);
    let bits = mask_bits(signals);
    syscall!(
        "rt_sigprocmask",
        // SAFETY: `set` is initialised; a null old-set pointer means "don't tell me the old mask".
        // pthread_sigmask returns the error number instead of setting errno; `errno_of` maps it.
        errno_of(unsafe { libc::pthread_sigmask(how, &set, std::ptr::null_mut()) }),
        [Arg::SigHow(how), Arg::SigSet(bits), Arg::Null, Arg::Int(8)]
    )
    .map(drop)
}

/// `sigwaitinfo(2)` (made as `rt_sigtimedwait(set, &info, NULL, 8)`, which is also what glibc's
/// sigwait makes): blocks until one of `signals` is pending for this thread or the process, takes
/// it off the pending set and returns its number. The signals must be blocked, so their handlers
/// (or default actions) never run. The kernel also says who sent it (`si_pid`), which the
/// narration shows.
///
/// Man page: [`sigwaitinfo(2)`](https://man7.org/linux/man-pages/man2/sigwaitinfo.2.html).
pub fn sigwait(signals: &[libc::c_int]) -> io::Result<libc::c_int> {
    let set = sigset(signals);
    // SAFETY: siginfo_t is plain C data; all-zero is a valid value for the kernel to overwrite.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let ptr: *mut libc::siginfo_t = &mut info;
    let sig = syscall!(
        "rt_sigtimedwait",
        // SAFETY: `set` is initialised and `ptr` points to a writable siginfo_t for the whole call;
        // a null timeout means "wait as long as it takes".
        unsafe { libc::sigtimedwait(&set, ptr, std::ptr::null()) },
        [Arg::SigSet(mask_bits(signals)), Arg::OptOut, Arg::Null, Arg::Int(8)]
            => |res| [Arg::SigSet(mask_bits(signals)), if res.is_ok() { siginfo(&info) } else { Arg::OptOut }, Arg::Null, Arg::Int(8)]
    )?;
    Ok(sig)
}

/// The parts of a `siginfo_t` strace prints for a signal sent with kill(2) or tgkill(2).
fn siginfo(info: &libc::siginfo_t) -> Arg<'static> {
    // SAFETY: for SI_USER / SI_TKILL / SI_QUEUE (and SI_KERNEL, where they are 0) the kernel fills
    // the `kill` member of the union, which si_pid/si_uid read.
    let (pid, uid) = unsafe { (info.si_pid(), info.si_uid()) };
    Arg::SigInfo { signo: info.si_signo, code: info.si_code, pid, uid }
}

/// Calls that return an error number instead of setting errno: 0, or sets errno and returns -1.
fn errno_of(ret: libc::c_int) -> libc::c_int {
    if ret == 0 {
        return 0;
    }
    // errno is thread-local: setting it is what the C calls we stand in for would have done.
    nix::errno::Errno::set_raw(ret);
    -1
}

/// A signal's disposition, as `sigaction` sets it.
///
/// # Example
///
/// ```standalone_crate
/// use socklab::process::{self, Disposition, SIGUSR1};
///
/// // Ignored, SIGUSR1 no longer ends the process (its default action); socklab's `main` does the
/// // same for SIGPIPE, so a write to a closed pipe is EPIPE, not death.
/// let before = process::set_disposition(SIGUSR1, Disposition::Ignore)?;
/// assert_eq!(before, Disposition::Default);
/// process::kill(std::process::id() as i32, SIGUSR1)?;
/// assert_eq!(process::set_disposition(SIGUSR1, before)?, Disposition::Ignore);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// `SIG_DFL`: the signal's default action.
    Default,
    /// `SIG_IGN`. For SIGCHLD this also makes the kernel reap children itself.
    Ignore,
    /// A handler that only counts (see [`INTERRUPTS`]). Its effect: a blocking call in the thread that receives
    /// the signal returns `EINTR` (no `SA_RESTART`), so a loop can react.
    Interrupt,
    /// Some other handler the program installed.
    Other,
}

/// How many times the [`Disposition::Interrupt`] handler ran, per signal number: proof, for a
/// test, that signals really arrived (the `--interrupt-every` EINTR storm counts its SIGALRMs).
pub static INTERRUPTS: [AtomicU64; 65] = [const { AtomicU64::new(0) }; 65];

/// What strace prints of a caught signal and of the handler's return: the signal's `siginfo_t`
/// and the mask `rt_sigreturn` restores.
///
/// # Example
///
/// ```standalone_crate
/// use socklab::process::{self, Disposition, SIGUSR1};
///
/// // The counting handler keeps the siginfo of the last signal: here, one this process sent itself.
/// process::set_disposition(SIGUSR1, Disposition::Interrupt)?;
/// process::kill(std::process::id() as i32, SIGUSR1)?;
/// let (count, caught) = process::last_caught();
/// assert_eq!(count, 1);
/// assert_eq!((caught.signo, caught.code), (SIGUSR1, libc::SI_USER));
/// assert_eq!(caught.pid as u32, std::process::id());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caught {
    /// The signal.
    pub signo: i32,
    /// `si_code`: how it was sent (`SI_USER`: kill(2); `SI_KERNEL`: the terminal's Ctrl-C).
    pub code: i32,
    /// `si_pid` (for `SI_USER`, `SI_QUEUE`, `SI_TKILL`: the sender).
    pub pid: i32,
    /// `si_uid`.
    pub uid: u32,
    /// The thread's signal mask before the handler ran, which rt_sigreturn restores (bit `sig - 1`).
    pub mask: u64,
}

/// The last signal the Interrupt handler caught, field by field (a handler may only store
/// atomics), and how many it has caught in all (`CAUGHT_SEQ`, written last: a reader that sees a
/// new count sees the fields of that signal or of a later one).
static CAUGHT: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
static CAUGHT_SEQ: AtomicU64 = AtomicU64::new(0);

/// How many signals the Interrupt handler has caught in all, and the last one.
///
/// Man page: [`sigaction(2)`](https://man7.org/linux/man-pages/man2/sigaction.2.html) (`SA_SIGINFO`, `siginfo_t`).
pub fn last_caught() -> (u64, Caught) {
    let seq = CAUGHT_SEQ.load(Ordering::Acquire);
    let word = |i: usize| CAUGHT[i].load(Ordering::Relaxed);
    let (a, b) = (word(0), word(1));
    let caught =
        Caught { signo: (a >> 32) as i32, code: a as u32 as i32, pid: (b >> 32) as i32, uid: b as u32, mask: word(2) };
    (seq, caught)
}

/// The Interrupt handler: counts, keeps what strace would print of the signal, and returns.
/// Atomic stores and sigismember (a bit test in libc, no system call) are async-signal-safe (no
/// lock, no allocation); the point of the handler is the EINTR it causes, not what it does.
extern "C" fn interrupted(sig: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    if let Some(count) = usize::try_from(sig).ok().and_then(|i| INTERRUPTS.get(i)) {
        count.fetch_add(1, Ordering::Relaxed);
    }
    // SAFETY: with SA_SIGINFO the kernel passes a valid siginfo_t and the ucontext_t of the
    // interrupted code, both readable for the handler's whole run. si_pid/si_uid read the union's
    // `kill` member, which the kernel fills for the signals a user or the terminal sends (and
    // leaves 0 otherwise).
    let (code, pid, uid, mask) = unsafe {
        let context = context.cast::<libc::ucontext_t>();
        let mut mask = 0u64;
        for s in 1..=64 {
            if libc::sigismember(&(*context).uc_sigmask, s) == 1 {
                mask |= 1 << (s - 1);
            }
        }
        ((*info).si_code, (*info).si_pid(), (*info).si_uid(), mask)
    };
    CAUGHT[0].store(((sig as u32 as u64) << 32) | code as u32 as u64, Ordering::Relaxed);
    CAUGHT[1].store(((pid as u32 as u64) << 32) | uid as u64, Ordering::Relaxed);
    CAUGHT[2].store(mask, Ordering::Relaxed);
    CAUGHT_SEQ.fetch_add(1, Ordering::Release);
}

/// glibc's sigaction adds `SA_RESTORER` (and its own restorer) to every action it passes on x86.
#[cfg(all(target_env = "gnu", any(target_arch = "x86_64", target_arch = "x86")))]
const GLIBC_RESTORER: libc::c_int = 0x0400_0000;
#[cfg(not(all(target_env = "gnu", any(target_arch = "x86_64", target_arch = "x86"))))]
const GLIBC_RESTORER: libc::c_int = 0;

/// `sigaction(2)` (made as `rt_sigaction`): sets the disposition of `sig` and returns the old one.
///
/// Man page: [`sigaction(2)`](https://man7.org/linux/man-pages/man2/sigaction.2.html).
pub fn sigaction(sig: libc::c_int, disposition: Disposition) -> io::Result<Disposition> {
    let handler = match disposition {
        Disposition::Default => libc::SIG_DFL,
        Disposition::Other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "only the handlers of this module can be installed",
            ));
        }
        Disposition::Ignore => libc::SIG_IGN,
        Disposition::Interrupt => {
            interrupted as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) as libc::sighandler_t
        }
    };
    // SAFETY: struct sigaction is plain C data; all-zero is a valid value (empty mask, no flags).
    let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
    new.sa_sigaction = handler;
    // SA_NOCLDSTOP: stopped children are no reason to wake. No SA_RESTART: waking is the point.
    // SA_SIGINFO: the handler learns who sent the signal, for the narration.
    new.sa_flags = if sig == libc::SIGCHLD { libc::SA_NOCLDSTOP } else { 0 };
    if disposition == Disposition::Interrupt {
        new.sa_flags |= libc::SA_SIGINFO;
    }
    // SAFETY: as above.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    let old_ptr: *mut libc::sigaction = &mut old;
    syscall!(
        "rt_sigaction",
        // SAFETY: `new` and `*old_ptr` are valid sigaction structs for the whole call; `interrupted`
        // is async-signal-safe (one atomic add).
        unsafe { libc::sigaction(sig, &new, old_ptr) },
        [Arg::Signal(sig), Arg::Handler(handler as usize, new.sa_flags | GLIBC_RESTORER), Arg::OptOut, Arg::Int(8)]
            => |res| [Arg::Signal(sig), Arg::Handler(handler as usize, new.sa_flags | GLIBC_RESTORER), if res.is_ok() { Arg::Handler(old.sa_sigaction, old.sa_flags) } else { Arg::OptOut }, Arg::Int(8)]
    )?;
    Ok(match old.sa_sigaction {
        libc::SIG_DFL => Disposition::Default,
        libc::SIG_IGN => Disposition::Ignore,
        h if h
            == interrupted as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void)
                as libc::sighandler_t =>
        {
            Disposition::Interrupt
        }
        _ => Disposition::Other,
    })
}

/// `close(2)` for a fork child's copy of a descriptor it does not own, such as the listener: the
/// child closes it so the listening socket's only holder is the parent, then ends with
/// [`exit`], so the owner's destructor never runs in the child and nothing closes it twice.
///
/// Man page: [`close(2)`](https://man7.org/linux/man-pages/man2/close.2.html).
pub fn close_inherited(fd: BorrowedFd<'_>) -> io::Result<()> {
    syscall!(
        "close",
        // SAFETY: close takes an integer; the caller (a fork child that will `_exit`) never uses the
        // descriptor again, and the parent's copy is unaffected.
        unsafe { libc::close(fd.as_raw_fd()) },
        [Arg::Fd(fd.as_raw_fd())]
    )
    .map(drop)
}

/// `signalfd(2)` (made as `signalfd4(-1, mask, 8, SFD_CLOEXEC|SFD_NONBLOCK)`): a descriptor that
/// becomes readable while one of `signals` is pending, so a signal can sit in a poll set next to
/// sockets. The signals must be blocked in *every* thread: a signal is delivered to any one thread
/// that does not block it, and one whose default action is to ignore it (SIGCHLD) is then simply
/// discarded, never reaching the descriptor.
///
/// Man page: [`signalfd(2)`](https://man7.org/linux/man-pages/man2/signalfd.2.html).
pub fn signalfd(signals: &[libc::c_int]) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let set = sigset(signals);
    let flags = libc::SFD_CLOEXEC | libc::SFD_NONBLOCK;
    let fd = syscall!(
        "signalfd4",
        // SAFETY: `set` is an initialised sigset_t; -1 asks for a new descriptor.
        unsafe { libc::signalfd(-1, &set, flags) },
        [Arg::Int(-1), Arg::SigSet(mask_bits(signals)), Arg::Int(8), Arg::Name("SFD_CLOEXEC|SFD_NONBLOCK")]
    )?;
    // SAFETY: signalfd returned a new descriptor that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// `read(2)` of one `struct signalfd_siginfo` from a signalfd: the number of the signal taken off
/// the pending set, or `EAGAIN` (the descriptor is nonblocking) when none is pending. Standard
/// signals do not queue: many children ending at once may leave one SIGCHLD, so whoever reads
/// this must reap every child that has ended, not one per signal.
///
/// Man pages: [`read(2)`](https://man7.org/linux/man-pages/man2/read.2.html), [`signalfd(2)`](https://man7.org/linux/man-pages/man2/signalfd.2.html).
pub fn read_signalfd(fd: BorrowedFd<'_>) -> io::Result<libc::c_int> {
    // SAFETY: signalfd_siginfo is plain C data; all-zero is a valid value.
    let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    let ptr: *mut libc::signalfd_siginfo = &mut info;
    syscall!(
        "read",
        // SAFETY: `ptr` points to `size` writable bytes for the whole call.
        unsafe { libc::read(fd.as_raw_fd(), ptr.cast(), size) },
        [Arg::Fd(fd.as_raw_fd()), Arg::OptOut, Arg::Int(size as i64)]
            // As strace shows a read: the bytes the kernel wrote, or the buffer's address.
            => |res| [Arg::Fd(fd.as_raw_fd()), if res.is_ok() { Arg::Data(siginfo_bytes(&info)) } else { Arg::Ptr(ptr as usize) }, Arg::Int(size as i64)]
    )?;
    Ok(info.ssi_signo as libc::c_int)
}

/// The bytes of a `signalfd_siginfo`, for the narration.
fn siginfo_bytes(info: &libc::signalfd_siginfo) -> &[u8] {
    // SAFETY: signalfd_siginfo is plain C data without padding holes the kernel did not write
    // (it fills all 128 bytes); the slice borrows `info` for its lifetime.
    unsafe {
        std::slice::from_raw_parts((info as *const libc::signalfd_siginfo).cast::<u8>(), std::mem::size_of_val(info))
    }
}

/// `setns(2)` with `CLONE_NEWNET`: moves the *calling thread* into the network namespace `fd`
/// refers to (an open `/run/netns/NAME`, or `/proc/PID/ns/net`). Only this thread moves: the
/// sockets it creates from now on belong to that namespace (its interfaces, routes, firewall and
/// packet queues); sockets made before stay where they were made. Needs CAP_SYS_ADMIN.
///
/// Man page: [`setns(2)`](https://man7.org/linux/man-pages/man2/setns.2.html).
pub fn setns_net(fd: BorrowedFd<'_>) -> io::Result<()> {
    syscall!(
        "setns",
        // SAFETY: plain integers; the kernel checks that `fd` is a network namespace.
        unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) },
        [Arg::Fd(fd.as_raw_fd()), Arg::Name("CLONE_NEWNET")]
    )
    .map(drop)
}
