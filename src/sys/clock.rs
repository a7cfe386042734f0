//! Floor 1: `clock_gettime(2)`; CLOCK_MONOTONIC is the one clock of every timeline.
//!
//! The narration (`--trace-machine`), the capture and the socket-state poller all stamp their
//! events with this clock, in several processes; CLOCK_MONOTONIC is the same in all of them, so the
//! walkthrough can merge their events into one order.
//!
//! `clock_gettime` is served by the vDSO without entering the kernel, and is not narrated: a
//! narrated clock would narrate itself (the narration reads it around every call).

/// CLOCK_MONOTONIC in nanoseconds (0 if the clock cannot be read, which Linux never does).
pub fn monotonic_ns() -> u64 {
    u64::try_from(read(libc::CLOCK_MONOTONIC)).unwrap_or(0)
}

/// CLOCK_REALTIME in nanoseconds since the epoch: only to convert the kernel's packet time stamps
/// (which use it) to CLOCK_MONOTONIC. 0 if the clock cannot be read.
pub fn realtime_ns() -> i128 {
    read(libc::CLOCK_REALTIME)
}

fn read(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec for the whole call; `clock` is one of the two
    // clocks every supported kernel has; the call writes only `ts`.
    let res = unsafe { libc::clock_gettime(clock, &mut ts) };
    if res != 0 {
        return 0;
    }
    i128::from(ts.tv_sec as i64) * 1_000_000_000 + i128::from(ts.tv_nsec as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_goes_back() {
        let a = monotonic_ns();
        let b = monotonic_ns();
        assert!(a > 0 && b >= a, "{a} then {b}");
        assert!(realtime_ns() > 0);
    }
}
