//! The descriptor limit (`RLIMIT_NOFILE`): many systems start programs with a soft limit of 1024
//! open files, which caps a server at about a thousand clients however it is written. A process
//! may raise its soft limit up to the hard limit without privileges.

use std::io;

use crate::sys::resource::{RLIMIT_NOFILE, getrlimit, setrlimit};

/// Raises the soft descriptor limit to the hard limit if it is below `need` (`None`: always).
/// Returns the soft limit now in force. Fails if even the hard limit is below `need`.
pub fn raise_open_files(need: Option<u64>) -> io::Result<u64> {
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
