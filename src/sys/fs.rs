//! The file system calls socklab makes on its own: reading a /proc or /sys file (somaxconn, a
//! process's `comm`), reading standard input (`client --message -`), writing and renaming the
//! `--ready-file`, listing a directory (the /proc scan of `states`), and removing a Unix socket's
//! file. They go through `syscall!` like the socket calls, so `--trace` shows them as strace does:
//! `openat(AT_FDCWD, "/proc/sys/net/core/somaxconn", O_RDONLY|O_CLOEXEC) = 3`.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::socket::filled;
use super::trace::Arg;

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path cannot contain a NUL byte"))
}

/// `unlink(2)`: removes a name from the file system. A Unix socket bound to a path leaves that
/// file behind when it is closed; the next bind to the same path fails with `EADDRINUSE` until
/// someone unlinks it. (Connecting to such a stale file fails with `ECONNREFUSED`.)
///
/// Man page: [`unlink(2)`](https://man7.org/linux/man-pages/man2/unlink.2.html).
pub fn unlink(path: &Path) -> io::Result<()> {
    let c = c_path(path)?;
    syscall!(
        "unlink",
        // SAFETY: `c` is a NUL-terminated string alive for the whole call.
        unsafe { libc::unlink(c.as_ptr()) },
        [Arg::Path(path.as_os_str().as_bytes())]
    )
    .map(drop)
}

/// `openat(2)` relative to the current directory (`AT_FDCWD`), which is what glibc's `open` makes
/// too. `mode` is the permission of a file `O_CREAT` creates (less the umask); it is passed, and
/// shown, only with `O_CREAT`.
///
/// Man page: [`open(2)`](https://man7.org/linux/man-pages/man2/open.2.html).
pub fn open(path: &Path, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
    let c = c_path(path)?;
    let bytes = path.as_os_str().as_bytes();
    let fd = if flags & libc::O_CREAT != 0 {
        syscall!(
            "openat",
            // SAFETY: `c` is a NUL-terminated string alive for the whole call.
            unsafe { libc::openat(libc::AT_FDCWD, c.as_ptr(), flags, mode as libc::c_uint) },
            [Arg::Name("AT_FDCWD"), Arg::Path(bytes), Arg::OpenFlags(flags), Arg::Mode(mode as u32)]
        )?
    } else {
        syscall!(
            "openat",
            // SAFETY: `c` is a NUL-terminated string alive for the whole call.
            unsafe { libc::openat(libc::AT_FDCWD, c.as_ptr(), flags) },
            [Arg::Name("AT_FDCWD"), Arg::Path(bytes), Arg::OpenFlags(flags)]
        )?
    };
    // SAFETY: the kernel returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `lstat(3)`, made as `newfstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW)` (glibc's lstat):
/// what `path` itself is (a symbolic link is not followed). strace shows the type and size:
/// `{st_mode=S_IFSOCK|0755, st_size=0, ...}`.
///
/// Man page: [`stat(2)`](https://man7.org/linux/man-pages/man2/stat.2.html).
pub fn lstat(path: &Path) -> io::Result<libc::stat> {
    let c = c_path(path)?;
    let bytes = path.as_os_str().as_bytes();
    let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
    let ptr = st.as_mut_ptr();
    syscall!(
        "newfstatat",
        // SAFETY: `c` is a NUL-terminated string and `ptr` a writable `struct stat`, both alive
        // for the whole call.
        unsafe { libc::fstatat(libc::AT_FDCWD, c.as_ptr(), ptr, libc::AT_SYMLINK_NOFOLLOW) },
        [Arg::Name("AT_FDCWD"), Arg::Path(bytes), Arg::Ptr(ptr as usize), Arg::Name("AT_SYMLINK_NOFOLLOW")]
            => |res| [
                Arg::Name("AT_FDCWD"),
                Arg::Path(bytes),
                match res {
                    // SAFETY: the kernel filled the struct (the call succeeded); it was zeroed before.
                    Ok(_) => stat_arg(unsafe { &*ptr }),
                    Err(_) => Arg::Ptr(ptr as usize),
                },
                Arg::Name("AT_SYMLINK_NOFOLLOW")
            ]
    )?;
    // SAFETY: the call succeeded, so the kernel filled the (zero-initialised) struct.
    Ok(unsafe { st.assume_init() })
}

fn stat_arg(st: &libc::stat) -> Arg<'static> {
    Arg::Stat { mode: st.st_mode, size: st.st_size, rdev: st.st_rdev }
}

/// `mkdir(2)`: makes a directory with permissions `mode` less the umask.
///
/// Man page: [`mkdir(2)`](https://man7.org/linux/man-pages/man2/mkdir.2.html).
pub fn mkdir(path: &Path, mode: libc::mode_t) -> io::Result<()> {
    let c = c_path(path)?;
    syscall!(
        "mkdir",
        // SAFETY: `c` is a NUL-terminated string alive for the whole call.
        unsafe { libc::mkdir(c.as_ptr(), mode) },
        [Arg::Path(path.as_os_str().as_bytes()), Arg::Mode(mode as u32)]
    )
    .map(drop)
}

/// `rmdir(2)`: removes an empty directory.
///
/// Man page: [`rmdir(2)`](https://man7.org/linux/man-pages/man2/rmdir.2.html).
pub fn rmdir(path: &Path) -> io::Result<()> {
    let c = c_path(path)?;
    syscall!(
        "rmdir",
        // SAFETY: `c` is a NUL-terminated string alive for the whole call.
        unsafe { libc::rmdir(c.as_ptr()) },
        [Arg::Path(path.as_os_str().as_bytes())]
    )
    .map(drop)
}

/// `read(2)`: up to `buf.len()` bytes from a file (or a pipe, a terminal); 0 at end of file.
///
/// Man page: [`read(2)`](https://man7.org/linux/man-pages/man2/read.2.html).
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    let (len, ptr) = (buf.len(), buf.as_mut_ptr());
    let n = syscall!(
        "read",
        // SAFETY: `buf` is valid for writes of `len` bytes.
        unsafe { libc::read(fd.as_raw_fd(), ptr.cast(), len) },
        [Arg::Fd(fd.as_raw_fd()), Arg::Data(&[]), Arg::Int(len as i64)]
            => |res| [Arg::Fd(fd.as_raw_fd()), filled(&res, buf), Arg::Int(len as i64)]
    )?;
    Ok(n as usize)
}

/// `write(2)`: copies bytes into a file; may take fewer than offered (callers loop).
///
/// Man page: [`write(2)`](https://man7.org/linux/man-pages/man2/write.2.html).
pub fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    let n = syscall!(
        "write",
        // SAFETY: `buf` is valid for reads of `buf.len()` bytes.
        unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) },
        [Arg::Fd(fd.as_raw_fd()), Arg::Data(buf), Arg::Int(buf.len() as i64)]
    )?;
    Ok(n as usize)
}

/// `rename(2)`: gives a file a new name, replacing any file already there in one step — a reader
/// opening `to` sees the old file or the new one, never a half-written one.
///
/// Man page: [`rename(2)`](https://man7.org/linux/man-pages/man2/rename.2.html).
pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
    let (a, b) = (c_path(from)?, c_path(to)?);
    syscall!(
        "rename",
        // SAFETY: `a` and `b` are NUL-terminated strings alive for the whole call.
        unsafe { libc::rename(a.as_ptr(), b.as_ptr()) },
        [Arg::Path(from.as_os_str().as_bytes()), Arg::Path(to.as_os_str().as_bytes())]
    )
    .map(drop)
}

/// `readlink(2)`: where a symbolic link points (`/proc/PID/fd/N` → `socket:[12345]`), at most
/// `buf.len()` bytes of it, not NUL-terminated.
///
/// Man page: [`readlink(2)`](https://man7.org/linux/man-pages/man2/readlink.2.html).
pub fn readlink(path: &Path, buf: &mut [u8]) -> io::Result<usize> {
    let c = c_path(path)?;
    let (len, ptr) = (buf.len(), buf.as_mut_ptr());
    let bytes = path.as_os_str().as_bytes();
    let n = syscall!(
        "readlink",
        // SAFETY: `c` is a NUL-terminated string and `buf` is valid for writes of `len` bytes.
        unsafe { libc::readlink(c.as_ptr(), ptr.cast(), len) },
        [Arg::Path(bytes), Arg::Data(&[]), Arg::Int(len as i64)]
            => |res| [Arg::Path(bytes), filled(&res, buf), Arg::Int(len as i64)]
    )?;
    Ok(n as usize)
}

/// `getdents64(2)`: the next directory entries of an open directory, packed into `buf` as
/// `struct linux_dirent64` records; 0 when the listing is done. Returns the bytes filled.
///
/// Man page: [`getdents(2)`](https://man7.org/linux/man-pages/man2/getdents.2.html).
pub fn getdents64(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    let (len, ptr) = (buf.len(), buf.as_mut_ptr());
    let n = syscall!(
        "getdents64",
        // SAFETY: `buf` is valid for writes of `len` bytes.
        unsafe { libc::syscall(libc::SYS_getdents64, fd.as_raw_fd(), ptr, len) },
        [Arg::Fd(fd.as_raw_fd()), Arg::Dirents(ptr as usize, None), Arg::Int(len as i64)]
            => |res| [
                Arg::Fd(fd.as_raw_fd()),
                Arg::Dirents(ptr as usize, res.as_ref().ok().map(|&n| dirents(&buf[..n as usize]).count())),
                Arg::Int(len as i64),
            ]
    )?;
    Ok(n as usize)
}

/// The names in a buffer getdents64 filled: each `struct linux_dirent64` is `d_ino` (8 bytes),
/// `d_off` (8), `d_reclen` (2), `d_type` (1), then the NUL-terminated name, padded to `d_reclen`.
///
/// Man page: [`getdents(2)`](https://man7.org/linux/man-pages/man2/getdents.2.html).
pub fn dirents(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let head = buf.get(at..at + 19)?;
        let reclen = usize::from(u16::from_ne_bytes([head[16], head[17]]));
        let record = buf.get(at + 19..at + reclen)?;
        at += reclen.max(19);
        let end = record.iter().position(|&b| b == 0).unwrap_or(record.len());
        Some(&record[..end])
    })
}
