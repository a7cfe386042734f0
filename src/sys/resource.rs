//! `getrlimit(2)` / `setrlimit(2)`: per-process resource limits. socklab reads and raises
//! `RLIMIT_NOFILE`, the most descriptors a process may hold (10,000 connections need 10,000).

use std::io;

use super::socket::{cvt, wide};
use super::trace::{self, Arg};

pub use libc::RLIMIT_NOFILE;

/// `getrlimit(2)`: the `(soft, hard)` limit of `resource`. The kernel enforces the soft one; a
/// process may raise its soft limit up to the hard one without privileges.
pub fn getrlimit(resource: libc::__rlimit_resource_t) -> io::Result<(u64, u64)> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a writable struct rlimit for the whole call.
    let res = cvt(unsafe { libc::getrlimit(resource, &mut limit) });
    if trace::enabled() {
        let args = [Arg::Int(resource as i64), Arg::Int(limit.rlim_cur as i64), Arg::Int(limit.rlim_max as i64)];
        trace::exit("prlimit64", &args, &wide(res.as_ref().copied()));
    }
    res.map(|_| (limit.rlim_cur as u64, limit.rlim_max as u64))
}

/// `setrlimit(2)`: sets the `(soft, hard)` limit of `resource`.
pub fn setrlimit(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> io::Result<()> {
    let args = [Arg::Int(resource as i64), Arg::Int(soft as i64), Arg::Int(hard as i64)];
    if trace::enabled() {
        trace::enter("prlimit64", &args);
    }
    let limit = libc::rlimit { rlim_cur: soft as libc::rlim_t, rlim_max: hard as libc::rlim_t };
    // SAFETY: `limit` is a valid struct rlimit for the whole call (the kernel only reads it).
    let res = cvt(unsafe { libc::setrlimit(resource, &limit) });
    if trace::enabled() {
        trace::exit("prlimit64", &args, &wide(res.as_ref().copied()));
    }
    res.map(drop)
}
