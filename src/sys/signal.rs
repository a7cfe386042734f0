//! Signal dispositions and the interval timer: only for proving that every blocking call survives
//! `EINTR` (the hidden `socklab server --interrupt-every` flag). The server itself never needs a
//! handler: SIGINT/SIGTERM are taken with sigwait on a thread of their own (see `cli/signals.rs`).

use std::io;
use std::mem;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::socket::{cvt, wide};
use super::trace::{self, Arg};

/// How many signals the [`Disposition::Count`] handler has caught, process-wide.
pub static CAUGHT: AtomicU64 = AtomicU64::new(0);

/// The counting handler. An atomic add is async-signal-safe: no locks, no allocation.
extern "C" fn count(_signum: libc::c_int) {
    CAUGHT.fetch_add(1, Ordering::Relaxed);
}

/// What happens when a signal arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// `SIG_DFL`.
    Default,
    /// `SIG_IGN`: the signal is discarded.
    Ignore,
    /// Run a handler that only counts into [`CAUGHT`]. Installed *without* `SA_RESTART`, so a
    /// blocking call the signal interrupts fails with `EINTR` and the caller must retry it.
    Count,
}

/// `sigaction(2)` (the kernel's `rt_sigaction`): sets the disposition of `signum`.
pub fn sigaction(signum: libc::c_int, disposition: Disposition) -> io::Result<()> {
    // SAFETY: struct sigaction is plain C data; all-zero is a valid value (empty mask, no flags).
    let mut action: libc::sigaction = unsafe { mem::zeroed() };
    action.sa_sigaction = match disposition {
        Disposition::Default => libc::SIG_DFL,
        Disposition::Ignore => libc::SIG_IGN,
        Disposition::Count => count as extern "C" fn(libc::c_int) as libc::sighandler_t,
    };
    let args = [Arg::Int(signum.into()), Arg::Int(action.sa_sigaction as i64)];
    if trace::enabled() {
        trace::enter("rt_sigaction", &args);
    }
    // SAFETY: `action` is a valid, initialised struct sigaction; a null old-action pointer is
    // allowed. The handler we may install is async-signal-safe (one atomic add).
    let res = cvt(unsafe { libc::sigaction(signum, &action, std::ptr::null_mut()) });
    if trace::enabled() {
        trace::exit("rt_sigaction", &args, &wide(res.as_ref().copied()));
    }
    res.map(drop)
}

/// `setitimer(2)` with `ITIMER_REAL`: SIGALRM every `interval` of wall-clock time, the first one
/// after `interval`. `None` stops the timer.
pub fn setitimer(interval: Option<Duration>) -> io::Result<()> {
    let d = interval.unwrap_or(Duration::ZERO);
    let tv = libc::timeval {
        tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
        tv_usec: d.subsec_micros() as libc::suseconds_t,
    };
    let value = libc::itimerval { it_interval: tv, it_value: tv };
    let args = [Arg::Int(libc::ITIMER_REAL.into()), Arg::OptTimeval { sec: tv.tv_sec as i64, usec: tv.tv_usec as i64 }];
    if trace::enabled() {
        trace::enter("setitimer", &args);
    }
    // SAFETY: `value` is a valid itimerval for the whole call; a null old-value pointer is allowed.
    let res = cvt(unsafe { libc::setitimer(libc::ITIMER_REAL, &value, std::ptr::null_mut()) });
    if trace::enabled() {
        trace::exit("setitimer", &args, &wide(res.as_ref().copied()));
    }
    res.map(drop)
}
