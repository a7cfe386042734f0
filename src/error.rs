//! Errors that say which call failed, on what, and why — in the kernel's words.
//!
//! # Why two error types
//!
//! std's convention is that an OS failure is an `io::Error` whose
//! [`raw_os_error()`](io::Error::raw_os_error) is the errno, so callers write
//! `e.raw_os_error() == Some(libc::EADDRINUSE)`. But an `io::Error` cannot carry both: one made
//! with a message or a payload answers `None` there, one from an errno has no room for "which call,
//! on which address". std chooses the errno (its `TcpListener::bind` error does not name the
//! address); socklab's messages need both (`bind 127.0.0.1:5000: EADDRINUSE (...)`).
//!
//! So:
//! - floors 1-2 (`sys`, [`Socket`](crate::Socket)) return plain OS errors, exactly as std does:
//!   one call, and the caller knows which;
//! - the floor-3 constructors that run several calls on an address ([`TcpListener::bind`],
//!   [`TcpStream::connect`], the UDP and Unix ones, [`unlink_stale`](crate::unix::unlink_stale))
//!   and the fixtures' `spawn` return a [`CallError`]: the call, the address, and the OS error.
//!   It answers [`raw_os_error()`](CallError::raw_os_error) and [`kind()`](CallError::kind) as
//!   `io::Error` does, [`os_error()`](CallError::os_error) hands out the plain `io::Error`, and
//!   `?` turns it into an `io::Error` that keeps the context for printing (its `raw_os_error()` is
//!   then `None`; [`errno()`] and [`call_error()`] find it again).
//!
//! Features and the CLI keep `io::Result`; the CLI prints the context and a hint from it.
//!
//! [`TcpListener::bind`]: crate::TcpListener::bind
//! [`TcpStream::connect`]: crate::TcpStream::connect

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::net::SocketAddr;

use crate::sys::names;

/// A failed call with its context: returned by the floor-3 constructors, and found inside the
/// `io::Error`s that features return.
///
/// ```
/// let taken = socklab::TcpListener::bind(&"127.0.0.1:0".parse().unwrap()).unwrap();
/// let err = socklab::TcpListener::bind(&taken.local_addr().unwrap()).unwrap_err();
/// assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE));
/// assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
/// assert!(err.to_string().starts_with("bind 127.0.0.1:"));
/// ```
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
    /// `err` from `call` on `addr` (an `AF_INET`/`AF_INET6` address, or none).
    pub fn new(call: &'static str, addr: Option<SocketAddr>, err: io::Error) -> CallError {
        CallError { call, addr, unix: None, source: err }
    }

    /// `err` from `call` on `addr`, of any family.
    pub fn at(call: &'static str, addr: &crate::sys::SockAddr, err: io::Error) -> CallError {
        match addr.as_socket() {
            Some(ip) => CallError::new(call, Some(ip), err),
            None => CallError::unix(call, addr, err),
        }
    }

    /// `err` from `call` on the `AF_UNIX` socket `name` (a path or `@abstract`).
    pub fn unix(call: &'static str, name: &crate::sys::SockAddr, err: io::Error) -> CallError {
        CallError { call, addr: None, unix: Some(name.to_string()), source: err }
    }

    /// An `io::Error` that came back from a feature: the `CallError` inside it if there is one,
    /// otherwise `err` named as coming from `call` (with no address).
    pub fn from_io(call: &'static str, err: io::Error) -> CallError {
        if call_error(&err).is_none() {
            return CallError::new(call, None, err);
        }
        let kind = err.kind();
        match err.into_inner().map(|inner| inner.downcast::<CallError>()) {
            Some(Ok(found)) => *found,
            // Not reached (call_error() just found one); kept so that no path can panic.
            Some(Err(other)) => CallError::new(call, None, io::Error::new(kind, other)),
            None => CallError::new(call, None, io::Error::from(kind)),
        }
    }

    /// The errno of the failure, if it came from the kernel (as [`io::Error::raw_os_error`]).
    pub fn raw_os_error(&self) -> Option<i32> {
        self.source.raw_os_error()
    }

    /// The kind of the failure (as [`io::Error::kind`]).
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }

    /// The error as the kernel (or resolver) gave it, without the context: what std would return.
    pub fn os_error(&self) -> &io::Error {
        &self.source
    }

    /// Same as [`raw_os_error`](Self::raw_os_error), under the name older callers used.
    pub fn errno(&self) -> Option<i32> {
        self.raw_os_error()
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

/// `?` from a [`CallError`] into `io::Result`: keeps the `ErrorKind`, and the context for the
/// message (the errno stays reachable through [`errno()`]).
impl From<CallError> for io::Error {
    fn from(err: CallError) -> io::Error {
        io::Error::new(err.kind(), err)
    }
}

/// Wraps `err` with the call and address it came from, keeping its `ErrorKind`.
pub fn context(call: &'static str, addr: Option<SocketAddr>, err: io::Error) -> io::Error {
    CallError::new(call, addr, err).into()
}

/// Wraps `err` with the call and the address, of any family, it was made with.
pub fn context_at(call: &'static str, addr: &crate::sys::SockAddr, err: io::Error) -> io::Error {
    CallError::at(call, addr, err).into()
}

/// Like [`context`], for a call on an `AF_UNIX` socket named `name` (a path or `@abstract`).
pub fn context_unix(call: &'static str, name: &crate::sys::SockAddr, err: io::Error) -> io::Error {
    CallError::unix(call, name, err).into()
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
