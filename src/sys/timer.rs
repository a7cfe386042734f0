//! `setitimer(2)`: the interval timer, used only to prove that every blocking call survives
//! `EINTR` (the hidden `socklab server --interrupt-every` flag, which pairs it with
//! `process::sigaction(SIGALRM, Disposition::Interrupt)`).

use std::io;
use std::time::Duration;

use super::trace::Arg;

/// `setitimer(2)` with `ITIMER_REAL`: SIGALRM every `interval` of wall-clock time, the first one
/// after `interval`. `None` stops the timer.
///
/// Man page: [`getitimer(2)`](https://man7.org/linux/man-pages/man2/getitimer.2.html).
pub fn setitimer(interval: Option<Duration>) -> io::Result<()> {
    let d = interval.unwrap_or(Duration::ZERO);
    let tv = libc::timeval {
        tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
        tv_usec: d.subsec_micros() as libc::suseconds_t,
    };
    let value = libc::itimerval { it_interval: tv, it_value: tv };
    syscall!(
        "setitimer",
        // SAFETY: `value` is a valid itimerval for the whole call; a null old-value pointer is allowed.
        unsafe { libc::setitimer(libc::ITIMER_REAL, &value, std::ptr::null_mut()) },
        [Arg::Int(libc::ITIMER_REAL.into()), Arg::OptTimeval { sec: tv.tv_sec as i64, usec: tv.tv_usec as i64 }]
    )
    .map(drop)
}
