//! `mmap(2)` and `munmap(2)`: memory shared with the kernel (io_uring's rings and the buffers it
//! receives into). Only the fresh-mapping form is offered: the kernel picks the address (`NULL`),
//! so no memory the program already uses can be replaced.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr;

use super::trace::Arg;

/// `mmap(2)` with `addr = NULL`: `len` bytes of new memory, `PROT_READ|PROT_WRITE`. With `fd`,
/// the kernel's object behind that descriptor at `offset` is mapped `MAP_SHARED|MAP_POPULATE`
/// (io_uring's rings: both sides see the same pages, present before the first access); without,
/// anonymous zeroed memory, `MAP_PRIVATE|MAP_ANONYMOUS`. Returns the start of the mapping.
///
/// Man page: [`mmap(2)`](https://man7.org/linux/man-pages/man2/mmap.2.html).
pub fn mmap(len: usize, fd: Option<(BorrowedFd<'_>, i64)>) -> io::Result<*mut u8> {
    let prot = libc::PROT_READ | libc::PROT_WRITE;
    let (flags, raw, offset) = match fd {
        Some((fd, offset)) => (libc::MAP_SHARED | libc::MAP_POPULATE, fd.as_raw_fd(), offset),
        None => (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0),
    };
    let args = [
        Arg::Null,
        Arg::Int(len as i64),
        Arg::Prot(prot),
        Arg::MapFlags(flags),
        Arg::Int(raw.into()),
        Arg::Hex(offset as u64),
    ];
    let addr = syscall!(
        "mmap",
        // SAFETY: addr NULL asks the kernel for a fresh range: no existing memory is affected. The
        // result is MAP_FAILED (-1) or the new mapping's start, which the caller owns.
        unsafe { libc::mmap(ptr::null_mut(), len, prot, flags, raw, offset as libc::off_t) } as isize,
        [args[0], args[1], args[2], args[3], args[4], args[5]]
    )?;
    Ok(addr as *mut u8)
}

/// `munmap(2)`: the mapping at `addr` of `len` bytes goes away.
///
/// Man page: [`mmap(2)`](https://man7.org/linux/man-pages/man2/mmap.2.html) (which documents munmap).
///
/// # Safety
/// `addr` and `len` must be a whole mapping made by [`mmap`], and nothing may use that memory after
/// this call (neither the program nor, for memory given to the kernel, the kernel).
pub unsafe fn munmap(addr: *mut u8, len: usize) -> io::Result<()> {
    syscall!(
        "munmap",
        // SAFETY: the caller promises a whole mapping of ours that nothing uses any more.
        unsafe { libc::munmap(addr.cast(), len) },
        [Arg::Ptr(addr as usize), Arg::Int(len as i64)]
    )
    .map(drop)
}
