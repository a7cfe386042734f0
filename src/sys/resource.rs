//! `getrlimit(2)` / `setrlimit(2)`: per-process resource limits. socklab reads and raises
//! `RLIMIT_NOFILE`, the most descriptors a process may hold (10,000 connections need 10,000).

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

fn limit_arg<'a>(res: &io::Result<libc::c_int>, limit: libc::rlimit) -> Arg<'a> {
    match res {
        Ok(_) => Arg::Rlimit(limit.rlim_cur as u64, limit.rlim_max as u64),
        Err(_) => Arg::Null,
    }
}
