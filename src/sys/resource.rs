//! `getrlimit(2)` / `setrlimit(2)`: per-process resource limits. socklab reads and raises
//! `RLIMIT_NOFILE`, the most descriptors a process may hold (10,000 connections need 10,000).
//! And `sched_getaffinity(2)` / `sched_setaffinity(2)`: the CPUs a thread may run on, which sizes
//! the thread pools (and keeps the walkthrough's crowd of clients on one CPU). And
//! `getrusage(2)`: the CPU time this process has used (a benchmark's load generator checks that it
//! was not the bottleneck itself).

use std::io;

use super::trace::Arg;

pub use libc::RLIMIT_NOFILE;

/// `getrlimit(2)` (made as `prlimit64(0, resource, NULL, &old)`): the `(soft, hard)` limit of
/// `resource`. The kernel enforces the soft one; a process may raise its soft limit up to the hard
/// one without privileges.
///
/// Man page: [`getrlimit(2)`](https://man7.org/linux/man-pages/man2/getrlimit.2.html).
pub fn getrlimit(resource: libc::__rlimit_resource_t) -> io::Result<(u64, u64)> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    let ptr: *mut libc::rlimit = &mut limit;
    syscall!(
        "prlimit64",
        // SAFETY: `ptr` points to a writable struct rlimit for the whole call.
        unsafe { libc::getrlimit(resource, ptr) },
        [Arg::Int(0), Arg::Resource(resource as i32), Arg::Null, Arg::Null]
            => |res| [Arg::Int(0), Arg::Resource(resource as i32), Arg::Null, limit_arg(&res, limit)]
    )?;
    Ok((limit.rlim_cur as u64, limit.rlim_max as u64))
}

/// `setrlimit(2)` (made as `prlimit64(0, resource, &new, NULL)`): sets the `(soft, hard)` limit.
///
/// Man page: [`getrlimit(2)`](https://man7.org/linux/man-pages/man2/getrlimit.2.html).
pub fn setrlimit(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> io::Result<()> {
    let limit = libc::rlimit { rlim_cur: soft as libc::rlim_t, rlim_max: hard as libc::rlim_t };
    syscall!(
        "prlimit64",
        // SAFETY: `limit` is a valid struct rlimit for the whole call (the kernel only reads it).
        unsafe { libc::setrlimit(resource, &limit) },
        [Arg::Int(0), Arg::Resource(resource as i32), Arg::Rlimit(soft, hard), Arg::Null]
    )
    .map(drop)
}

/// `getrusage(RUSAGE_SELF)`: the CPU time all threads of this process have used so far, in user
/// mode and in the kernel (system calls, and the network stack's work done on our behalf), in
/// microseconds.
///
/// Man page: [`getrusage(2)`](https://man7.org/linux/man-pages/man2/getrusage.2.html).
pub fn getrusage_self() -> io::Result<(u64, u64)> {
    // SAFETY: struct rusage is plain C data for which all-zero bytes are valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let ptr: *mut libc::rusage = &mut usage;
    let us = |t: libc::timeval| (t.tv_sec.max(0) as u64) * 1_000_000 + t.tv_usec.max(0) as u64;
    syscall!(
        "getrusage",
        // SAFETY: `ptr` points to a writable struct rusage for the whole call.
        unsafe { libc::getrusage(libc::RUSAGE_SELF, ptr) },
        [Arg::Name("RUSAGE_SELF"), Arg::OptOut]
            => |res| [Arg::Name("RUSAGE_SELF"), match res {
                Ok(_) => Arg::Rusage(us(usage.ru_utime), us(usage.ru_stime)),
                Err(_) => Arg::Ptr(ptr as usize),
            }]
    )?;
    Ok((us(usage.ru_utime), us(usage.ru_stime)))
}

/// Bytes in glibc's `cpu_set_t`: room for 1024 CPUs.
const CPU_SET_BYTES: usize = 128;

/// `sched_getaffinity(2)` for the calling process (pid 0): the CPUs the scheduler may run it on,
/// as their numbers. `taskset`, a cpuset cgroup or a container runtime can leave fewer than the
/// machine has. Made as the raw system call, which returns how many bytes of the mask the kernel
/// wrote (8 for up to 64 CPUs), as strace shows it; glibc's wrapper would return 0.
///
/// Man page: [`sched_getaffinity(2)`](https://man7.org/linux/man-pages/man2/sched_setaffinity.2.html).
pub fn sched_getaffinity() -> io::Result<Vec<usize>> {
    let mut mask = [0u8; CPU_SET_BYTES];
    let ptr = mask.as_mut_ptr();
    let written = syscall!(
        "sched_getaffinity",
        // SAFETY: `ptr` points to CPU_SET_BYTES writable bytes for the whole call, and the kernel
        // writes at most the length it is given.
        unsafe { libc::syscall(libc::SYS_sched_getaffinity, 0, CPU_SET_BYTES, ptr) },
        [Arg::Int(0), Arg::Int(CPU_SET_BYTES as i64), Arg::OptOut]
            => |res| [Arg::Int(0), Arg::Int(CPU_SET_BYTES as i64), match &res {
                Ok(n) => Arg::CpuSet(&mask[..(*n as usize).min(CPU_SET_BYTES)]),
                Err(_) => Arg::Ptr(ptr as usize),
            }]
    )?;
    Ok(cpus_in(&mask[..(written as usize).min(CPU_SET_BYTES)]))
}

/// `sched_setaffinity(2)` for the calling thread (pid 0): from now on the scheduler runs it only
/// on `cpus`. A child made by fork or spawn starts with its parent thread's mask, so a thread that
/// sets its own mask before spawning places the children too.
///
/// Man page: [`sched_setaffinity(2)`](https://man7.org/linux/man-pages/man2/sched_setaffinity.2.html).
pub fn sched_setaffinity(cpus: &[usize]) -> io::Result<()> {
    let mut mask = [0u8; CPU_SET_BYTES];
    for &cpu in cpus.iter().filter(|&&cpu| cpu < CPU_SET_BYTES * 8) {
        mask[cpu / 8] |= 1 << (cpu % 8);
    }
    let ptr = mask.as_ptr();
    syscall!(
        "sched_setaffinity",
        // SAFETY: `ptr` points to CPU_SET_BYTES readable bytes for the whole call; the kernel only
        // reads them.
        unsafe { libc::syscall(libc::SYS_sched_setaffinity, 0, CPU_SET_BYTES, ptr) },
        [Arg::Int(0), Arg::Int(CPU_SET_BYTES as i64), Arg::CpuSet(&mask)]
    )
    .map(drop)
}

/// The CPU numbers whose bits are set in an affinity mask (bit `n % 8` of byte `n / 8`).
pub(crate) fn cpus_in(mask: &[u8]) -> Vec<usize> {
    (0..mask.len() * 8).filter(|n| mask[n / 8] & (1 << (n % 8)) != 0).collect()
}

fn limit_arg<'a>(res: &io::Result<libc::c_int>, limit: libc::rlimit) -> Arg<'a> {
    match res {
        Ok(_) => Arg::Rlimit(limit.rlim_cur as u64, limit.rlim_max as u64),
        Err(_) => Arg::Null,
    }
}
