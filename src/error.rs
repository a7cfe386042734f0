//! Errors that say which call failed, on what, and why — in the kernel's words.
//!
//! The safe layer returns `std::io::Error` (so `?` and `ErrorKind` work as with std), but for the
//! calls where context matters (socket, bind, listen, connect, name resolution) the error carries a
//! [`CallError`] inside. Its `Display` reads like
//! `bind 127.0.0.1:5000: EADDRINUSE (Address already in use)`; [`errno()`] digs the errno back out.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::net::SocketAddr;

use crate::sys::names;

/// A failed call with its context. Found inside the `io::Error`s the safe layer returns.
#[derive(Debug)]
pub struct CallError {
    /// The call that failed, as the user knows it: `bind`, `connect`, `listen`, `resolve`.
    pub call: &'static str,
    /// The address it was made with, when there was one.
    pub addr: Option<SocketAddr>,
    /// The Unix socket name it was made with (`/tmp/echo.sock`, `@name`), for `AF_UNIX` calls.
    pub unix: Option<String>,
    /// What the kernel (or resolver) said.
    pub source: io::Error,
}

impl CallError {
    /// The errno of the failure, if it came from the kernel.
    pub fn errno(&self) -> Option<i32> {
        self.source.raw_os_error()
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.call)?;
        if let Some(addr) = self.addr {
            write!(f, " {addr}")?;
        }
        if let Some(name) = &self.unix {
            write!(f, " {name}")?;
        }
        match self.source.raw_os_error() {
            Some(errno) => write!(f, ": {}", names::errno_display(errno)),
            None => write!(f, ": {}", self.source),
        }
    }
}

impl StdError for CallError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.source)
    }
}

/// Wraps `err` with the call and address it came from, keeping its `ErrorKind`.
pub fn context(call: &'static str, addr: Option<SocketAddr>, err: io::Error) -> io::Error {
    io::Error::new(err.kind(), CallError { call, addr, unix: None, source: err })
}

/// Like [`context`], for a call on an `AF_UNIX` socket named `name` (a path or `@abstract`).
pub fn context_unix(call: &'static str, name: &crate::sys::SockAddr, err: io::Error) -> io::Error {
    io::Error::new(err.kind(), CallError { call, addr: None, unix: Some(name.to_string()), source: err })
}

/// The `CallError` inside an `io::Error` from this crate, if there is one.
pub fn call_error(err: &io::Error) -> Option<&CallError> {
    err.get_ref().and_then(|inner| inner.downcast_ref::<CallError>())
}

/// The errno behind an error, whether it is a plain OS error or wrapped in a [`CallError`].
pub fn errno(err: &io::Error) -> Option<i32> {
    err.raw_os_error().or_else(|| call_error(err).and_then(CallError::errno))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_call_address_and_errno() {
        let addr: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let err = context("bind", Some(addr), io::Error::from_raw_os_error(libc::EADDRINUSE));
        assert_eq!(err.to_string(), "bind 127.0.0.1:5000: EADDRINUSE (Address already in use)");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert_eq!(errno(&err), Some(libc::EADDRINUSE));
        assert_eq!(call_error(&err).map(|c| c.call), Some("bind"));
    }
}
