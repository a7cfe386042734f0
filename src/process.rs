//! Floor 2: processes, signals and resource limits, safe, over `sys::process`.
//!
//! Every call here goes through `sys`, so `--trace` narrates it like the socket calls. What this
//! layer adds:
//! - **EINTR**: blocking waits (`wait`, `wait_for_signal`) retry when a handler interrupts them;
//!   `reap` never blocks.
//! - **Signals without handlers**: a program that blocks a signal in every thread (block it before
//!   spawning any) and waits for it with [`wait_for_signal`] on one thread never runs code in
//!   signal-handler context. Only [`Disposition::Interrupt`] installs a handler, and it only counts.
//! - **Fork, with its rules in one place**: see [`fork`].

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::socket::retry;
use crate::sys::process as sys;
pub use crate::sys::process::{
    Caught, Disposition, Forked, SIGALRM, SIGCHLD, SIGINT, SIGKILL, SIGPIPE, SIGTERM, SIGUSR1,
};

/// A process id.
pub type Pid = libc::pid_t;

/// A signal number (`SIGTERM`...).
pub type Signal = libc::c_int;

/// `std::thread::Builder::spawn`, counted while the thread's work runs, so that `--trace` marks
/// lines `[pid N]` exactly while strace -f does: while more than one task is alive. Every thread
/// socklab starts is started through this (`use socklab::process::SpawnCounted`).
///
/// # Example
///
/// ```
/// use socklab::process::SpawnCounted;
///
/// // A thread socklab knows about: `--trace` marks lines `[pid N]` while it runs, as strace -f does.
/// let handle = std::thread::Builder::new().name("worker".into()).spawn_counted(|| 6 * 7)?;
/// assert_eq!(handle.join().unwrap(), 42);
/// # Ok::<(), std::io::Error>(())
/// ```
pub trait SpawnCounted {
    /// `self.spawn(work)`, counted.
    fn spawn_counted<F, T>(self, work: F) -> io::Result<std::thread::JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static;

    /// `self.spawn_scoped(scope, work)`, counted.
    fn spawn_scoped_counted<'scope, 'env, F, T>(
        self,
        scope: &'scope std::thread::Scope<'scope, 'env>,
        work: F,
    ) -> io::Result<std::thread::ScopedJoinHandle<'scope, T>>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope;
}

impl SpawnCounted for std::thread::Builder {
    fn spawn_counted<F, T>(self, work: F) -> io::Result<std::thread::JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let task = Task::new();
        self.spawn(move || {
            let _task = task;
            work()
        })
    }

    fn spawn_scoped_counted<'scope, 'env, F, T>(
        self,
        scope: &'scope std::thread::Scope<'scope, 'env>,
        work: F,
    ) -> io::Result<std::thread::ScopedJoinHandle<'scope, T>>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let task = Task::new();
        self.spawn_scoped(scope, move || {
            let _task = task;
            work()
        })
    }
}

/// One counted thread: counted from before the thread starts (strace follows it from its clone)
/// until its work returns or the spawn failed (the closure holding it is dropped either way).
struct Task;

impl Task {
    fn new() -> Task {
        crate::sys::trace::task_started();
        Task
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        crate::sys::trace::task_ended();
    }
}

/// fork(2): copies this process. The child has only the calling thread; until it `exit_now`s it
/// must not take a lock another thread may hold (allocate before forking, print nothing through
/// shared locks) and must not return into code that would run the parent's destructors.
pub fn fork() -> io::Result<Forked> {
    sys::fork()
}

/// waitpid(pid, WNOHANG): `Some(status)` if child `pid` has ended (and is now reaped), `None` while
/// it runs.
pub fn reap(pid: Pid) -> io::Result<Option<libc::c_int>> {
    Ok(sys::waitpid(pid, sys::WNOHANG)?.map(|(_, status)| status))
}

/// waitpid(pid, 0): blocks until child `pid` ends and reaps it. Retries on EINTR.
pub fn wait(pid: Pid) -> io::Result<libc::c_int> {
    let got = retry(|| sys::waitpid(pid, 0))?;
    Ok(got.map_or(0, |(_, status)| status))
}

/// kill(2): sends `sig` to process `pid`.
pub fn kill(pid: Pid, sig: Signal) -> io::Result<()> {
    sys::kill(pid, sig)
}

/// _exit(2): ends this process at once (no destructors, no atexit): how a fork child ends.
pub fn exit_now(code: i32) -> ! {
    sys::exit(code)
}

/// close(2) of a descriptor a fork child inherited but does not own (the listener): only the
/// child's copy is closed, and the owner's destructor never runs in the child (it `exit_now`s).
pub fn close_inherited(fd: impl AsFd) -> io::Result<()> {
    sys::close_inherited(fd.as_fd())
}

/// Moves the calling thread (only it) into the network namespace at `path` (`/run/netns/NAME`, as
/// `ip netns add` makes it; or `/proc/PID/ns/net`): `openat` then `setns(fd, CLONE_NEWNET)`. Sockets
/// the thread creates afterwards live in that namespace. Needs CAP_SYS_ADMIN.
#[cfg(target_os = "linux")]
pub fn enter_network_namespace(path: &std::path::Path) -> io::Result<()> {
    let file = crate::file::File::open(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("{}: {e} (is it a network namespace? `ip netns list` shows them)", path.display()),
        )
    })?;
    sys::setns_net(file.as_fd()).map_err(|e| {
        io::Error::new(e.kind(), format!("setns({}): {e} (entering a namespace needs root)", path.display()))
    })
}

/// sigaction(2): sets what `sig` does and returns what it did before.
pub fn set_disposition(sig: Signal, disposition: Disposition) -> io::Result<Disposition> {
    sys::sigaction(sig, disposition)
}

/// Blocks `signals` in the calling thread and every thread it spawns from now on.
pub fn block_signals(signals: &[Signal]) -> io::Result<()> {
    sys::sigprocmask(sys::SIG_BLOCK, signals)
}

/// Unblocks `signals` in the calling thread.
pub fn unblock_signals(signals: &[Signal]) -> io::Result<()> {
    sys::sigprocmask(sys::SIG_UNBLOCK, signals)
}

/// Signals that stay blocked whatever mask is set: bit `sig - 1` (see [`keep_blocked`]).
static KEPT_BLOCKED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Keeps `sig` in every mask [`set_signal_mask`] sets from now on: `--step` waits for SIGUSR1
/// with sigwait, and a fork child that restores an empty mask must not be killed by it.
pub fn keep_blocked(sig: Signal) {
    if (1..=64).contains(&sig) {
        KEPT_BLOCKED.fetch_or(1 << (sig - 1), Ordering::Relaxed);
    }
}

/// Sets the calling thread's mask to exactly `signals` (`&[]`: nothing blocked), plus any signal
/// kept blocked with [`keep_blocked`].
pub fn set_signal_mask(signals: &[Signal]) -> io::Result<()> {
    // No allocation: a fork child calls this.
    let kept = KEPT_BLOCKED.load(Ordering::Relaxed);
    let mut all = [0; 64];
    let mut n = 0;
    for sig in (1..=64).filter(|s| kept & (1 << (s - 1)) != 0).chain(signals.iter().copied()) {
        if n < all.len() && !all[..n].contains(&sig) {
            all[n] = sig;
            n += 1;
        }
    }
    sys::sigprocmask(sys::SIG_SETMASK, &all[..n])
}

/// sigwait(3): waits until one of `signals` (which must be blocked) is pending, takes it and
/// returns it. Retries on EINTR.
pub fn wait_for_signal(signals: &[Signal]) -> io::Result<Signal> {
    retry(|| sys::sigwait(signals))
}

/// How many times the [`Disposition::Interrupt`] handler ran for `sig`.
pub fn interrupts(sig: Signal) -> u64 {
    usize::try_from(sig).ok().and_then(|i| sys::INTERRUPTS.get(i)).map_or(0, |c| c.load(Ordering::Relaxed))
}

/// The signals that ask a server to stop: Ctrl-C (SIGINT) and `kill`'s default (SIGTERM).
pub const STOP_SIGNALS: [Signal; 2] = [SIGINT, SIGTERM];

/// Stops on SIGINT and SIGTERM the way a C server does: sigaction(2) installs, for each, a
/// handler that only counts ([`Disposition::Interrupt`]), without `SA_RESTART`. A blocking call
/// (accept, recv, send, the write of a print) the signal lands in then returns `EINTR` instead of
/// being restarted by the kernel, and the safe layer, seeing [`stop_signals`] above zero, hands
/// that `EINTR` to the caller instead of retrying it: the loop wakes and reads the count. No
/// thread and no descriptor: two `rt_sigaction` calls now, and per signal the kernel's
/// `rt_sigreturn` after the handler.
///
/// The window every such loop has (the signal lands after the loop checked the count and before
/// it blocks again) is closed by a second signal; `ppoll`/`pselect` close it for good, at the
/// price of a call per wait.
pub fn catch_stop_signals() -> io::Result<()> {
    for sig in STOP_SIGNALS {
        set_disposition(sig, Disposition::Interrupt)?;
    }
    Ok(())
}

/// How many signals the [`Disposition::Interrupt`] handler has caught in all, and what it saw of
/// the last one (what strace prints of it: its siginfo, and the mask `rt_sigreturn` restores).
pub fn last_caught() -> (u64, Caught) {
    sys::last_caught()
}

/// How many SIGINT/SIGTERM the [`catch_stop_signals`] handler has caught (0 when it is not
/// installed: a blocked signal or one taken by a signalfd is not counted).
pub fn stop_signals() -> u64 {
    STOP_SIGNALS.iter().map(|&sig| interrupts(sig)).sum()
}

/// setitimer(ITIMER_REAL): SIGALRM every `interval`; `None` stops it.
pub fn set_interval_timer(interval: Option<Duration>) -> io::Result<()> {
    crate::sys::setitimer(interval)
}

/// How many CPUs this process may run on: the kernel's answer to `sched_getaffinity(2)` (one
/// narrated call), at least 1. Unlike std's `available_parallelism`, it does not read the cgroup
/// files for a CPU quota (`/proc/self/cgroup`, `cpu.max`): a container limited by quota rather
/// than by a cpuset counts every CPU it may be scheduled on.
#[cfg(target_os = "linux")]
pub fn cpus() -> usize {
    thread_cpus().map_or(1, |cpus| cpus.len().max(1))
}

/// Whether standard error (`fd` 2) or output (1) is a terminal: one narrated `ioctl(TCGETS)`,
/// where std's `is_terminal` would make the same call unseen.
pub fn is_terminal(fd: impl std::os::fd::AsFd) -> bool {
    crate::sys::isatty(fd.as_fd())
}

/// The CPU time this process has used so far, in user mode and in the kernel together
/// (`getrusage(2)`, one narrated call).
#[cfg(target_os = "linux")]
pub fn cpu_time() -> io::Result<std::time::Duration> {
    let (user, system) = crate::sys::resource::getrusage_self()?;
    Ok(std::time::Duration::from_micros(user + system))
}

/// The CPUs the calling thread may run on, by number (`sched_getaffinity(2)`, one narrated call).
#[cfg(target_os = "linux")]
pub fn thread_cpus() -> io::Result<Vec<usize>> {
    crate::sys::resource::sched_getaffinity()
}

/// Lets the calling thread run only on `cpus` (`sched_setaffinity(2)`, one narrated call). The
/// mask is inherited: every process this thread spawns afterwards starts on the same CPUs.
#[cfg(target_os = "linux")]
pub fn set_thread_cpus(cpus: &[usize]) -> io::Result<()> {
    crate::sys::resource::sched_setaffinity(cpus)
}

/// Raises the soft descriptor limit (`RLIMIT_NOFILE`) to the hard limit if it is below `need`
/// (`None`: always). Returns the soft limit now in force. Fails if even the hard limit is below
/// `need`. Many systems start programs with a soft limit of 1024 open files, which caps a server at
/// about a thousand clients however it is written; a process may raise it up to the hard limit
/// without privileges.
#[cfg(target_os = "linux")]
pub fn raise_open_files(need: Option<u64>) -> io::Result<u64> {
    use crate::sys::resource::{RLIMIT_NOFILE, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(RLIMIT_NOFILE)?;
    let need_more = need.is_none_or(|n| soft < n);
    if let Some(n) = need.filter(|&n| hard < n) {
        return Err(io::Error::other(format!(
            "{n} descriptors are needed but the hard limit is {hard}: raise it (ulimit -Hn, as root) or use fewer connections"
        )));
    }
    if need_more && soft < hard {
        setrlimit(RLIMIT_NOFILE, hard, hard)?;
        return Ok(hard);
    }
    Ok(soft)
}

/// Signals as a readable descriptor (`signalfd(2)`), to wait for them in a poll set next to
/// sockets: the reliable way for an accept loop to hear SIGCHLD in a program with several threads,
/// where a process-directed signal lands on whichever thread does not block it.
///
/// The signals must be blocked in every thread ([`block_signals`] before spawning any); a fork
/// child that wants them back must unblock them itself.
///
/// # Example
///
/// ```standalone_crate
/// use socklab::process::{self, SIGUSR1, SignalFd};
///
/// // Blocked first (in a program with threads: before spawning any), then read as a descriptor.
/// process::block_signals(&[SIGUSR1])?;
/// let signals = SignalFd::new(&[SIGUSR1])?;
/// assert_eq!(signals.drain()?, 0);
/// process::kill(std::process::id() as i32, SIGUSR1)?;
/// assert_eq!(signals.drain()?, 1);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct SignalFd(Option<OwnedFd>);

impl SignalFd {
    /// A nonblocking, close-on-exec signalfd for `signals`.
    pub fn new(signals: &[Signal]) -> io::Result<SignalFd> {
        sys::signalfd(signals).map(|fd| SignalFd(Some(fd)))
    }

    /// Takes every pending signal of the set off the pending set; returns how many were taken
    /// (0: none was pending). Standard signals do not queue, so one taken SIGCHLD may stand for
    /// many children.
    pub fn drain(&self) -> io::Result<usize> {
        let mut taken = 0;
        loop {
            match sys::read_signalfd(self.as_fd()) {
                Ok(_) => taken += 1,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(taken),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl AsFd for SignalFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_ref().expect("present until dropped").as_fd()
    }
}

impl Drop for SignalFd {
    /// close(2) through `sys`, so `--trace` narrates it like every other close.
    fn drop(&mut self) {
        if let Some(fd) = self.0.take() {
            let _ = crate::sys::close(fd);
        }
    }
}

static IN_FORK_CHILD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Marks this process as a fork child of a multi-threaded parent (memory is per process after
/// fork, so only the child sees the mark). Code that may run in such a child — a log sink — asks
/// [`in_fork_child`] and keeps away from locks and threads that exist only in the parent.
pub fn mark_fork_child() {
    IN_FORK_CHILD.store(true, Ordering::Relaxed);
}

/// Whether [`mark_fork_child`] was called in this process.
pub fn in_fork_child() -> bool {
    IN_FORK_CHILD.load(Ordering::Relaxed)
}

/// A second descriptor for the same open file (`fcntl(F_DUPFD_CLOEXEC)`), e.g. for stdout: a
/// thread writing through its own descriptor holds no lock of std's `Stdout`.
pub fn duplicate(fd: impl AsFd) -> io::Result<OwnedFd> {
    crate::sys::dup_cloexec(fd.as_fd())
}

/// The system calls a running process makes, counted by the kernel (`perf_event_open(2)` on the
/// `raw_syscalls:sys_enter` tracepoint, one counter per thread, threads and children started
/// later included) — what `perf stat -e raw_syscalls:sys_enter -p PID` counts. Exact whatever the
/// machine's load, unlike a time; counting another user's process needs root (or `CAP_PERFMON`).
///
/// # Example
///
/// ```
/// use socklab::process::SyscallCount;
///
/// match SyscallCount::attach(std::process::id() as i32) {
///     Ok(count) => {
///         let before = count.read()?;
///         std::fs::metadata("/")?; // at least one system call (statx)
///         assert!(count.read()? > before);
///     }
///     // Not root, no tracefs, or a kernel without perf events: the reason says which.
///     Err(reason) => println!("not counted: {reason}"),
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
#[cfg(target_os = "linux")]
#[derive(Debug)]
pub struct SyscallCount {
    counters: Vec<OwnedFd>,
}

#[cfg(target_os = "linux")]
impl SyscallCount {
    /// Starts counting the system calls of process `pid` (every thread it has now, and those it
    /// starts later). `Err` is a sentence saying why they cannot be counted here.
    pub fn attach(pid: Pid) -> Result<SyscallCount, String> {
        use std::path::Path;
        let id = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
            .iter()
            .find_map(|root| {
                let path = Path::new(root).join("events/raw_syscalls/sys_enter/id");
                crate::file::read_to_string(&path).ok()?.trim().parse::<u64>().ok()
            })
            .ok_or(
                "the raw_syscalls:sys_enter tracepoint is not visible: tracefs is not mounted at \
                    /sys/kernel/tracing (mount -t tracefs nodev /sys/kernel/tracing, as root)",
            )?;
        let tasks = crate::file::read_dir(&Path::new("/proc").join(pid.to_string()).join("task"))
            .map_err(|e| format!("process {pid}: {e}"))?;
        let mut counters = Vec::new();
        for tid in tasks.iter().filter_map(|t| t.to_str()?.parse::<Pid>().ok()) {
            match crate::sys::perf::perf_event_open_tracepoint(id, tid) {
                Ok(fd) => counters.push(fd),
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {} // the thread ended meanwhile
                Err(e) => {
                    let errno = e.raw_os_error().unwrap_or(0);
                    let why = match errno {
                        libc::EACCES | libc::EPERM => {
                            let paranoid =
                                crate::file::read_to_string(Path::new("/proc/sys/kernel/perf_event_paranoid"))
                                    .map_or("unknown".into(), |s| s.trim().to_string());
                            format!(
                                "counting another process's system calls needs root or CAP_PERFMON \
                                 (kernel.perf_event_paranoid is {paranoid})"
                            )
                        }
                        libc::ENOSYS | libc::ENODEV | libc::ENOENT => "this kernel has no perf events for it".into(),
                        _ => "the kernel refused".into(),
                    };
                    return Err(format!(
                        "perf_event_open failed with {}: {why}",
                        crate::sys::names::errno_display(errno)
                    ));
                }
            }
        }
        if counters.is_empty() {
            return Err(format!("process {pid} has no threads left to count"));
        }
        Ok(SyscallCount { counters })
    }

    /// The system calls made since [`SyscallCount::attach`] (by threads that have ended, too).
    pub fn read(&self) -> io::Result<u64> {
        let mut total = 0;
        for fd in &self.counters {
            let mut value = [0u8; 8];
            let n = retry(|| crate::sys::read(fd.as_fd(), &mut value))?;
            if n != 8 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "a short read of a perf counter"));
            }
            total += u64::from_ne_bytes(value);
        }
        Ok(total)
    }
}

#[cfg(target_os = "linux")]
impl Drop for SyscallCount {
    /// close(2) through `sys`, so `--trace` narrates it.
    fn drop(&mut self) {
        for fd in self.counters.drain(..) {
            let _ = crate::sys::close(fd);
        }
    }
}
