//! The one clock socklab reads: `CLOCK_MONOTONIC`, the same in every process, so the server's, the
//! client's and the capture's timestamps can be merged into one timeline.

/// `clock_gettime(CLOCK_MONOTONIC)` in nanoseconds. A vDSO call on Linux (no system call is made,
/// so strace shows nothing and it is not narrated).
///
/// Man page: [`clock_getres(2)`](https://man7.org/linux/man-pages/man2/clock_getres.2.html) (clock_gettime).
pub fn monotonic_ns() -> u64 {
    read(libc::CLOCK_MONOTONIC)
}

/// `clock_gettime(CLOCK_REALTIME)` in nanoseconds since the epoch: the clock of the kernel's
/// packet time stamps, converted to the monotonic clock by `capture`.
///
/// Man page: [`clock_getres(2)`](https://man7.org/linux/man-pages/man2/clock_getres.2.html) (clock_gettime).
pub fn realtime_ns() -> u64 {
    read(libc::CLOCK_REALTIME)
}

fn read(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a writable timespec for the whole call; both clocks always exist.
    let ret = unsafe { libc::clock_gettime(clock, &mut ts) };
    if ret != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
