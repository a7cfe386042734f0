//! `perf_event_open(2)`: kernel counters. socklab opens one kind only: a count of a tracepoint's
//! hits in one task (its threads and children created later included), read with `read(2)`.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::ptr;

use super::trace::Arg;

/// `PERF_TYPE_TRACEPOINT`: `config` is a tracepoint's id (from tracefs's `events/*/*/id`).
const PERF_TYPE_TRACEPOINT: u32 = 2;
/// `PERF_FLAG_FD_CLOEXEC`.
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;
/// The `inherit` bit of the attribute's flags word: count the task's later threads and children.
const INHERIT: u64 = 1 << 1;

/// `struct perf_event_attr` in its first published size (`PERF_ATTR_SIZE_VER0`, 64 bytes), which
/// every kernel since 2.6.31 accepts; the fields after it are zero for a plain count.
#[repr(C)]
#[derive(Debug, Default)]
struct Attr {
    kind: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
}

const _: () = assert!(size_of::<Attr>() == 64);

/// `perf_event_open(2)`: a counter of tracepoint `id`'s hits in task `pid` (a thread id; the
/// threads and children it creates from now on are counted too), on every CPU, counting from
/// now. Read the count with `read(2)`: 8 bytes, a native-endian `u64`.
///
/// Man page: [`perf_event_open(2)`](https://man7.org/linux/man-pages/man2/perf_event_open.2.html).
pub fn perf_event_open_tracepoint(id: u64, pid: libc::pid_t) -> io::Result<OwnedFd> {
    let attr = Attr { kind: PERF_TYPE_TRACEPOINT, size: 64, config: id, flags: INHERIT, ..Attr::default() };
    let fd = syscall!(
        "perf_event_open",
        // SAFETY: `attr` is a valid perf_event_attr of the size it states, read during the call only.
        unsafe { libc::syscall(libc::SYS_perf_event_open, ptr::from_ref(&attr), pid, -1, -1, PERF_FLAG_FD_CLOEXEC) },
        [
            Arg::Ptr(ptr::from_ref(&attr) as usize),
            Arg::Int(pid.into()),
            Arg::Int(-1),
            Arg::Int(-1),
            Arg::Name("PERF_FLAG_FD_CLOEXEC")
        ]
    )?;
    // SAFETY: the kernel returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}
