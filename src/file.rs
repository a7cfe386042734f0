//! Floor 2: the few files socklab reads and writes itself, through `sys` so that `--trace` narrates
//! every call (std's `fs` would make the same calls unseen). Small on purpose: whole-file reads of
//! /proc and /sys entries, standard input, the `--ready-file`, and directory listings of /proc.
//!
//! Each open file is closed by its `Drop` through `sys::close`, so even the close is narrated.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use crate::socket::retry;
use crate::sys;

/// How much each `read` asks for.
const CHUNK: usize = 4096;
/// How much each `getdents64` asks for (what std and glibc use).
const DIR_CHUNK: usize = 32768;

/// An open file, closed (and narrated) on drop.
///
/// # Example
///
/// ```
/// use socklab::file::File;
///
/// // Files socklab reads and writes itself, through `sys` like its sockets (so --trace shows them).
/// let path = std::env::temp_dir().join(format!("socklab-doc-file-{}", std::process::id()));
/// let mut file = File::create(&path)?;
/// file.write_all(b"127.0.0.1:5000\n")?;
/// file.close()?;
/// let mut text = Vec::new();
/// File::open(&path)?.read_to_end(&mut text)?;
/// assert_eq!(text, b"127.0.0.1:5000\n");
/// socklab::sys::unlink(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct File {
    fd: Option<OwnedFd>,
}

impl File {
    fn with_flags(path: &Path, flags: i32, mode: u32) -> io::Result<File> {
        let fd = retry(|| sys::open(path, flags | libc::O_CLOEXEC, mode as libc::mode_t))?;
        Ok(File { fd: Some(fd) })
    }

    /// Opens a file for reading.
    pub fn open(path: &Path) -> io::Result<File> {
        File::with_flags(path, libc::O_RDONLY, 0)
    }

    /// Creates a file (or empties one) for writing, with permissions 0666 less the umask.
    pub fn create(path: &Path) -> io::Result<File> {
        File::with_flags(path, libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC, 0o666)
    }

    /// Wraps a descriptor already open (a duplicate of stdout, say); its close is narrated too.
    pub fn from_fd(fd: OwnedFd) -> File {
        File { fd: Some(fd) }
    }

    /// Appends everything up to the end of the file to `out`.
    pub fn read_to_end(&mut self, out: &mut Vec<u8>) -> io::Result<usize> {
        read_all(self.as_fd(), out)
    }

    /// Writes all of `bytes` (looping over short writes).
    pub fn write_all(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let n = retry(|| sys::write(self.as_fd(), bytes))?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            bytes = &bytes[n..];
        }
        Ok(())
    }

    /// The descriptor, no longer closed by this `File` (to hand to a child process as its stderr).
    pub fn into_fd(mut self) -> OwnedFd {
        match self.fd.take() {
            Some(fd) => fd,
            None => unreachable!("a File is used after close"),
        }
    }

    /// Closes the file, reporting what close(2) said (a drop cannot).
    pub fn close(mut self) -> io::Result<()> {
        self.fd.take().map_or(Ok(()), sys::close)
    }
}

impl AsFd for File {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.fd {
            Some(fd) => fd.as_fd(),
            // `fd` is only taken by `close(self)` and `drop`, after which nobody can call this.
            None => unreachable!("a File is used after close"),
        }
    }
}

impl Drop for File {
    fn drop(&mut self) {
        if let Some(fd) = self.fd.take() {
            let _ = sys::close(fd);
        }
    }
}

fn read_all(fd: BorrowedFd<'_>, out: &mut Vec<u8>) -> io::Result<usize> {
    let start = out.len();
    let mut buf = [0u8; CHUNK];
    loop {
        match retry(|| sys::read(fd, &mut buf))? {
            0 => return Ok(out.len() - start),
            n => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// A whole file as text (a /proc or /sys entry). Bytes that are not UTF-8 are an `InvalidData` error.
pub fn read_to_string(path: &Path) -> io::Result<String> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    String::from_utf8(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// Writes `bytes` to `path` (created, or emptied first), then closes it, reporting close's error.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(bytes)?;
    file.close()
}

/// Writes all of `bytes` to standard output with write(2), as the tutorial's `print` does: no
/// buffer and no lock of std's, so each line is one narrated `write(1, ...)`. A write a stop
/// signal interrupts (a stdout nobody reads, a full pipe) gives the line up with that `EINTR`
/// rather than blocking the stop.
pub fn write_stdout(bytes: &[u8]) -> io::Result<()> {
    write_fd(io::stdout().as_fd(), bytes)
}

/// The same to stderr: one `write(2, ...)` for a short line, no buffer, no lock held across
/// calls (the server's "stopping: ..." line, printed from whichever thread saw the stop).
pub fn write_stderr(bytes: &[u8]) -> io::Result<()> {
    write_fd(io::stderr().as_fd(), bytes)
}

fn write_fd(fd: std::os::fd::BorrowedFd<'_>, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match retry(|| sys::write(fd, bytes))? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => bytes = &bytes[n..],
        }
    }
    Ok(())
}

/// One `read(0, ...)` of up to 4096 bytes: on a terminal, the line the user typed (the terminal
/// hands over a line per read). `Ok(0)` at end of input.
pub fn read_stdin_once() -> io::Result<usize> {
    let mut buf = [0u8; CHUNK];
    retry(|| sys::read(io::stdin().as_fd(), &mut buf))
}

/// [`read_stdin_once`] without retrying `EINTR`: a signal handler's interruption comes back as
/// an `Interrupted` error, for a wait that a signal must be able to end.
pub fn read_stdin_interruptible() -> io::Result<usize> {
    let mut buf = [0u8; CHUNK];
    sys::read(io::stdin().as_fd(), &mut buf)
}

/// Which file `path` itself names: its device and inode (`lstat`, a link not followed). Two names
/// with the same pair are the same file; a file removed and made again gets a new inode.
pub fn identity_of(path: &Path) -> io::Result<(u64, u64)> {
    let st = sys::lstat(path)?;
    Ok((st.st_dev, st.st_ino))
}

/// What `path` itself is (`lstat`, made as `newfstatat(..., AT_SYMLINK_NOFOLLOW)`): its `st_mode`,
/// the type bits (`libc::S_IFSOCK`...) and the permissions.
pub fn mode_of(path: &Path) -> io::Result<u32> {
    Ok(sys::lstat(path)?.st_mode)
}

/// Removes a directory of plain files (no subdirectories): unlinks each name it lists, then
/// rmdir. Enough for socklab's own temporary directories; a subdirectory makes it fail (EISDIR).
pub fn remove_flat_dir(path: &Path) -> io::Result<()> {
    for name in read_dir(path)? {
        match sys::unlink(&path.join(name)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    sys::rmdir(path)
}

/// Everything on standard input, up to its end (`read(0, ...)` until it returns 0).
pub fn read_stdin() -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    read_all(Stdin::new().as_fd(), &mut bytes)?;
    Ok(bytes)
}

/// Standard input as a stream, for reading it a chunk at a time (`client --message -` streams it
/// rather than holding it whole). Each read is a narrated `read(0, ...)`; fd 0 is borrowed, never
/// closed.
///
/// # Example
///
/// ```
/// use std::os::fd::{AsFd, AsRawFd};
/// use socklab::file::Stdin;
///
/// // Borrowed, never closed: reading it is a narrated read(0, ...).
/// let stdin = Stdin::new();
/// assert_eq!(stdin.as_fd().as_raw_fd(), 0);
/// ```
#[derive(Debug)]
pub struct Stdin(io::Stdin);

impl Stdin {
    /// Standard input (fd 0).
    pub fn new() -> Stdin {
        Stdin(io::stdin())
    }
}

impl Default for Stdin {
    fn default() -> Stdin {
        Stdin::new()
    }
}

impl io::Read for Stdin {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        retry(|| sys::read(self.as_fd(), buf))
    }
}

impl AsFd for Stdin {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// Writes `bytes` to a new file beside `path`, closes it, and renames it to `path`: a reader sees
/// no file or the whole of it, never a part. The temporary file is made as mkstemp(3) makes one:
/// a random name in `path`'s directory, opened `O_CREAT|O_EXCL|O_NOFOLLOW`, so a file or symbolic
/// link someone planted under a name socklab might pick is never opened, let alone written
/// through (a planted `PATH.tmp -> /etc/passwd` in a shared `/tmp` would otherwise have socklab,
/// run as root, overwrite its target). The temporary file is removed if the rename fails.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let (tmp, mut file) = create_beside(path)?;
    let written = file.write_all(bytes).and_then(|()| file.close());
    written.and_then(|()| sys::rename(&tmp, path)).inspect_err(|_| {
        let _ = sys::unlink(&tmp);
    })
}

/// How many random names [`create_beside`] and [`create_private_dir`] try before giving up: each
/// is taken only by a name collision, so running out means someone is filling the directory.
const NAME_TRIES: usize = 100;

/// A random suffix of 12 letters and digits, from std's per-process random hash keys (which std
/// seeds from getrandom(2)), mixed with a counter so each call differs.
fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(CALLS.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    let mut x = hasher.finish();
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..12)
        .map(|_| {
            let c = ALPHABET[(x % ALPHABET.len() as u64) as usize] as char;
            x /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// Creates a new file `.NAME.XXXXXXXXXXXX` in `path`'s directory (NAME being `path`'s own name),
/// `O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW`: it fails rather than open anything already there.
fn create_beside(path: &Path) -> io::Result<(PathBuf, File)> {
    let name = path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
    let dir = path.parent().unwrap_or(Path::new(""));
    for _ in 0..NAME_TRIES {
        let mut tmp_name = OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}", random_suffix()));
        let tmp = dir.join(tmp_name);
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
        match File::with_flags(&tmp, flags, 0o666) {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{NAME_TRIES} random names beside it were all taken")))
}

/// Makes a new directory `PREFIX-XXXXXXXXXXXX` (mode 0700) in `parent`, as mkdtemp(3) does:
/// mkdir(2) fails on any name already there (a planted directory or symbolic link), so the
/// directory returned is socklab's own and nobody else can add files to it.
pub fn create_private_dir(parent: &Path, prefix: &str) -> io::Result<PathBuf> {
    for _ in 0..NAME_TRIES {
        let dir = parent.join(format!("{prefix}-{}", random_suffix()));
        match sys::mkdir(&dir, 0o700) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("{NAME_TRIES} random names in {} were all taken", parent.display()),
    ))
}

/// mkdir(2) with mode 0777 less the umask (`socklab man --dir DIR`); `AlreadyExists` if it is there.
pub fn create_dir(path: &Path) -> io::Result<()> {
    sys::mkdir(path, 0o777)
}

/// The names in a directory, `.` and `..` left out, in the order the kernel lists them.
pub fn read_dir(path: &Path) -> io::Result<Vec<OsString>> {
    let dir = File::with_flags(path, libc::O_RDONLY | libc::O_NONBLOCK | libc::O_DIRECTORY, 0)?;
    let mut names = Vec::new();
    let mut buf = vec![0u8; DIR_CHUNK];
    loop {
        let n = retry(|| sys::getdents64(dir.as_fd(), &mut buf))?;
        if n == 0 {
            return Ok(names);
        }
        for name in sys::dirents(&buf[..n]) {
            if name != b"." && name != b".." {
                names.push(OsString::from_vec(name.to_vec()));
            }
        }
    }
}

/// Where a symbolic link points (`/proc/PID/fd/N` → `socket:[12345]`).
pub fn read_link(path: &Path) -> io::Result<OsString> {
    let mut buf = vec![0u8; 256];
    loop {
        let n = sys::readlink(path, &mut buf)?;
        if n < buf.len() {
            buf.truncate(n);
            return Ok(OsString::from_vec(buf));
        }
        // It may have been cut off: ask again with more room (bounded by PATH_MAX).
        if buf.len() >= libc::PATH_MAX as usize {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "link target longer than PATH_MAX"));
        }
        buf.resize(buf.len() * 2, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_writes_renames_and_lists() {
        let dir = std::env::temp_dir().join(format!("socklab-file-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let target = dir.join("ready");
        write_atomically(&target, b"127.0.0.1:5000\n").unwrap();
        assert_eq!(read_to_string(&target).unwrap(), "127.0.0.1:5000\n");
        let names = read_dir(&dir).unwrap();
        assert_eq!(names, vec![OsString::from("ready")]);
        std::os::unix::fs::symlink("ready", dir.join("link")).unwrap();
        assert_eq!(read_link(&dir.join("link")).unwrap(), OsString::from("ready"));
        let err = read_to_string(&dir.join("missing")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn lists_a_directory_bigger_than_one_getdents_buffer() {
        // /proc has a directory per process: usually more than fits in one small read, and always
        // the entry of this process.
        let names = read_dir(Path::new("/proc")).unwrap();
        assert!(names.iter().any(
            |n| std::os::unix::ffi::OsStrExt::as_bytes(n.as_os_str()) == std::process::id().to_string().as_bytes()
        ));
        assert!(names.iter().all(|n| n != "." && n != ".."));
    }
}
