//! Processes and signals, for the fork-per-client server: `fork(2)`, `waitpid(2)`, `kill(2)`,
//! `_exit(2)`, `sigprocmask(2)` and `sigaction(2)`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use super::socket::{cvt, wide};
use super::trace::{self, Arg};

pub use libc::{SIG_BLOCK, SIG_SETMASK, SIG_UNBLOCK, SIGCHLD, SIGKILL, SIGTERM, WNOHANG};

/// What `fork` returned in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    /// We are the parent; this is the child's pid.
    Parent(libc::pid_t),
    /// We are the child: a copy of the parent's memory with only the calling thread in it.
    Child,
}

/// `fork(2)`: copies the calling process. In a multi-threaded program the child has only the
/// thread that called fork, so until it exits or execs it must not take locks another thread may
/// have held (no allocation-heavy work, no printing through locks another thread may hold).
pub fn fork() -> io::Result<Forked> {
    if trace::enabled() {
        trace::enter("fork", &[]);
    }
    // SAFETY: fork takes no arguments. The caller's child keeps to the rules in this fn's doc.
    let res = cvt(unsafe { libc::fork() });
    if trace::enabled() {
        trace::exit("fork", &[], &wide(res.as_ref().copied()));
    }
    res.map(|pid| if pid == 0 { Forked::Child } else { Forked::Parent(pid) })
}

/// `waitpid(2)`: collects the exit status of child `pid` (`-1`: any child), freeing its process
/// table entry (a child that exited and was not waited for is a zombie). With `WNOHANG` it returns
/// `Ok(None)` when that child is still running instead of blocking. Returns `(pid, status)`.
pub fn waitpid(pid: libc::pid_t, options: libc::c_int) -> io::Result<Option<(libc::pid_t, libc::c_int)>> {
    let args = [Arg::Int(pid.into()), Arg::Int(options.into())];
    if trace::enabled() {
        trace::enter("wait4", &args);
    }
    let mut status: libc::c_int = 0;
    // SAFETY: `status` is a writable int for the whole call.
    let res = cvt(unsafe { libc::waitpid(pid, &mut status, options) });
    if trace::enabled() {
        trace::exit("wait4", &args, &wide(res.as_ref().copied()));
    }
    res.map(|got| (got != 0).then_some((got, status)))
}

/// `kill(2)`: sends signal `sig` to process `pid`.
pub fn kill(pid: libc::pid_t, sig: libc::c_int) -> io::Result<()> {
    let args = [Arg::Int(pid.into()), Arg::Int(sig.into())];
    if trace::enabled() {
        trace::enter("kill", &args);
    }
    // SAFETY: plain integers; no memory is passed.
    let res = cvt(unsafe { libc::kill(pid, sig) });
    if trace::enabled() {
        trace::exit("kill", &args, &wide(res.as_ref().copied()));
    }
    res.map(drop)
}

/// `_exit(2)` (the kernel's `exit_group`): ends the process at once, without running atexit
/// handlers, flushing C stdio or running Rust destructors — what a fork child must do, since those
/// belong to the parent's copy of the program.
pub fn exit(code: libc::c_int) -> ! {
    if trace::enabled() {
        trace::enter("exit_group", &[Arg::Int(code.into())]);
    }
    // SAFETY: _exit never returns and touches no memory of ours.
    unsafe { libc::_exit(code) }
}

/// `sigprocmask(2)` (made as `rt_sigprocmask` for the calling thread): `how` is `SIG_BLOCK`,
/// `SIG_UNBLOCK` or `SIG_SETMASK`, applied with the set of `signals`. A fork child inherits the
/// mask of the thread that forked, so it uses `SIG_SETMASK` with `&[]` to unblock everything.
pub fn sigprocmask(how: libc::c_int, signals: &[libc::c_int]) -> io::Result<()> {
    let args = [Arg::Int(how.into()), Arg::Int(signals.len() as i64)];
    if trace::enabled() {
        trace::enter("rt_sigprocmask", &args);
    }
    // SAFETY: sigset_t is plain C data; sigemptyset initialises it before use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable sigset_t. sigemptyset/sigaddset are libc helpers, not
    // syscalls; they fail only for invalid signal numbers, which the syscall then reports.
    unsafe {
        libc::sigemptyset(&mut set);
        for &sig in signals {
            libc::sigaddset(&mut set, sig);
        }
    }
    // SAFETY: `set` is initialised; a null old-set pointer means "don't tell me the old mask".
    let ret = unsafe { libc::pthread_sigmask(how, &set, std::ptr::null_mut()) };
    // pthread_sigmask returns the error number instead of setting errno.
    let res = if ret == 0 { Ok(0) } else { Err(io::Error::from_raw_os_error(ret)) };
    if trace::enabled() {
        trace::exit("rt_sigprocmask", &args, &wide(res.as_ref().copied()));
    }
    res.map(drop)
}

/// A signal's disposition, as `sigaction` sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// `SIG_DFL`: the signal's default action.
    Default,
    /// `SIG_IGN`. For SIGCHLD this also makes the kernel reap children itself.
    Ignore,
    /// A handler that only counts (see [`INTERRUPTS`]). Its effect: a blocking call in the thread that receives
    /// the signal returns `EINTR` (no `SA_RESTART`), so a loop can react, e.g. reap children.
    Interrupt,
    /// Some other handler the program installed.
    Other,
}

/// How many times the [`Disposition::Interrupt`] handler ran, per signal number: proof, for a
/// test, that signals really arrived (the `--interrupt-every` EINTR storm counts its SIGALRMs).
pub static INTERRUPTS: [AtomicU64; 65] = [const { AtomicU64::new(0) }; 65];

/// The Interrupt handler: counts and returns. An atomic add is async-signal-safe (no lock, no
/// allocation); the point of the handler is the EINTR it causes, not what it does.
extern "C" fn interrupted(sig: libc::c_int) {
    if let Some(count) = usize::try_from(sig).ok().and_then(|i| INTERRUPTS.get(i)) {
        count.fetch_add(1, Ordering::Relaxed);
    }
}

/// `sigaction(2)` (made as `rt_sigaction`): sets the disposition of `sig` and returns the old one.
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
        Disposition::Interrupt => interrupted as extern "C" fn(libc::c_int) as libc::sighandler_t,
    };
    let args = [Arg::Int(sig.into()), Arg::Int(handler as i64)];
    if trace::enabled() {
        trace::enter("rt_sigaction", &args);
    }
    // SAFETY: struct sigaction is plain C data; all-zero is a valid value (empty mask, no flags).
    let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
    new.sa_sigaction = handler;
    // SA_NOCLDSTOP: stopped children are no reason to wake. No SA_RESTART: waking is the point.
    new.sa_flags = if sig == libc::SIGCHLD { libc::SA_NOCLDSTOP } else { 0 };
    // SAFETY: as above.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: `new` and `old` are valid sigaction structs for the whole call; `interrupted` is
    // async-signal-safe (one atomic add).
    let res = cvt(unsafe { libc::sigaction(sig, &new, &mut old) });
    if trace::enabled() {
        trace::exit("rt_sigaction", &args, &wide(res.as_ref().copied()));
    }
    res.map(|_| match old.sa_sigaction {
        libc::SIG_DFL => Disposition::Default,
        libc::SIG_IGN => Disposition::Ignore,
        h if h == interrupted as extern "C" fn(libc::c_int) as libc::sighandler_t => Disposition::Interrupt,
        _ => Disposition::Other,
    })
}

/// `close(2)` for a fork child's copy of a descriptor it does not own, such as the listener: the
/// child closes it so the listening socket's only holder is the parent, then ends with
/// [`exit`], so the owner's destructor never runs in the child and nothing closes it twice.
pub fn close_inherited(fd: BorrowedFd<'_>) -> io::Result<()> {
    let args = [Arg::Fd(fd.as_raw_fd())];
    if trace::enabled() {
        trace::enter("close", &args);
    }
    // SAFETY: close takes an integer; the caller (a fork child that will `_exit`) never uses the
    // descriptor again, and the parent's copy is unaffected.
    let res = cvt(unsafe { libc::close(fd.as_raw_fd()) });
    if trace::enabled() {
        trace::exit("close", &args, &wide(res.as_ref().copied()));
    }
    res.map(drop)
}
