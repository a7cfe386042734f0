//! The one file system call socklab makes on its own: removing a Unix socket's file.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::trace::Arg;

/// `unlink(2)`: removes a name from the file system. A Unix socket bound to a path leaves that
/// file behind when it is closed; the next bind to the same path fails with `EADDRINUSE` until
/// someone unlinks it. (Connecting to such a stale file fails with `ECONNREFUSED`.)
pub fn unlink(path: &Path) -> io::Result<()> {
    let bytes = path.as_os_str().as_bytes();
    let c = CString::new(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path cannot contain a NUL byte"))?;
    syscall!(
        "unlink",
        // SAFETY: `c` is a NUL-terminated string alive for the whole call.
        unsafe { libc::unlink(c.as_ptr()) },
        [Arg::Path(bytes)]
    )
    .map(drop)
}
