//! sockaddr conversion: `std::net::SocketAddr` <-> the C structs the kernel reads and writes.
//!
//! Going in, an address becomes a `sockaddr_in` (IPv4) or `sockaddr_in6` (IPv6) and we hand the kernel
//! a pointer and the struct's size. Coming out (accept, getsockname, getpeername), the kernel fills a
//! zeroed `sockaddr_storage` — big enough for any family — and tells us how many bytes it wrote; we
//! check the family *and* that length before reading the struct as an `_in` or `_in6`.
//!
//! Ports and IPv4 addresses travel in network byte order (big-endian): that is the `htons` /
//! `inet_addr` strace shows.

use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// An address in the kernel's layout, ready to pass to bind(2) or connect(2).
#[derive(Clone, Copy)]
pub(crate) enum RawAddr {
    V4(libc::sockaddr_in),
    V6(libc::sockaddr_in6),
}

impl RawAddr {
    pub(crate) fn new(addr: &SocketAddr) -> RawAddr {
        match addr {
            SocketAddr::V4(a) => {
                // SAFETY: sockaddr_in is a plain C struct; all-zero bytes are a valid value.
                let mut sin: libc::sockaddr_in = unsafe { mem::zeroed() };
                sin.sin_family = libc::AF_INET as libc::sa_family_t;
                sin.sin_port = a.port().to_be(); // htons
                // The octets are already in network order; keep their byte layout as-is.
                sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
                set_len_v4(&mut sin);
                RawAddr::V4(sin)
            }
            SocketAddr::V6(a) => {
                // SAFETY: sockaddr_in6 is a plain C struct; all-zero bytes are a valid value.
                let mut sin6: libc::sockaddr_in6 = unsafe { mem::zeroed() };
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_port = a.port().to_be();
                sin6.sin6_flowinfo = a.flowinfo().to_be();
                sin6.sin6_addr.s6_addr = a.ip().octets();
                sin6.sin6_scope_id = a.scope_id();
                set_len_v6(&mut sin6);
                RawAddr::V6(sin6)
            }
        }
    }

    /// Pointer for the kernel. Only valid while `self` is alive and not moved.
    pub(crate) fn as_ptr(&self) -> *const libc::sockaddr {
        match self {
            RawAddr::V4(sin) => (sin as *const libc::sockaddr_in).cast(),
            RawAddr::V6(sin6) => (sin6 as *const libc::sockaddr_in6).cast(),
        }
    }

    /// The struct's size: the `addrlen` argument.
    pub(crate) fn len(&self) -> libc::socklen_t {
        let size = match self {
            RawAddr::V4(_) => mem::size_of::<libc::sockaddr_in>(),
            RawAddr::V6(_) => mem::size_of::<libc::sockaddr_in6>(),
        };
        size as libc::socklen_t
    }
}

#[cfg(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
))]
fn set_len_v4(sin: &mut libc::sockaddr_in) {
    sin.sin_len = mem::size_of::<libc::sockaddr_in>() as u8; // BSD-style sockaddrs carry their length
}
#[cfg(not(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
)))]
fn set_len_v4(_: &mut libc::sockaddr_in) {}

#[cfg(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
))]
fn set_len_v6(sin6: &mut libc::sockaddr_in6) {
    sin6.sin6_len = mem::size_of::<libc::sockaddr_in6>() as u8;
}
#[cfg(not(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
)))]
fn set_len_v6(_: &mut libc::sockaddr_in6) {}

/// An out-parameter for the kernel to write an address into (accept, getsockname, getpeername).
pub(crate) struct AddrBuf {
    pub(crate) storage: libc::sockaddr_storage,
    /// In: the buffer's size. Out: how many bytes the kernel wrote (value-result argument).
    pub(crate) len: libc::socklen_t,
}

impl AddrBuf {
    pub(crate) fn new() -> AddrBuf {
        AddrBuf {
            // SAFETY: sockaddr_storage is a plain C struct; all-zero bytes are a valid value.
            storage: unsafe { mem::zeroed() },
            len: mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t,
        }
    }

    pub(crate) fn as_mut_ptr(&mut self) -> *mut libc::sockaddr {
        (&mut self.storage as *mut libc::sockaddr_storage).cast()
    }

    /// The capacity we offered the kernel (strace's `[128 => 16]` shows it before the arrow).
    pub(crate) fn capacity() -> libc::socklen_t {
        mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t
    }

    /// Reads the address the kernel wrote, after checking its family and length.
    pub(crate) fn to_socket_addr(&self) -> io::Result<SocketAddr> {
        decode(&self.storage, self.len)
    }
}

/// Decodes a kernel-written sockaddr. Errors (never panics) on an unknown family or a short length.
pub(crate) fn decode(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> io::Result<SocketAddr> {
    let len = len as usize;
    match storage.ss_family as libc::c_int {
        libc::AF_INET if len >= mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, the kernel wrote at least
            // that many bytes, and sockaddr_storage is large and aligned enough for any sockaddr.
            let sin: &libc::sockaddr_in = unsafe { &*(storage as *const libc::sockaddr_storage).cast() };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Ok(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(sin.sin_port))))
        }
        libc::AF_INET6 if len >= mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6: &libc::sockaddr_in6 = unsafe { &*(storage as *const libc::sockaddr_storage).cast() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Ok(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                u32::from_be(sin6.sin6_flowinfo),
                sin6.sin6_scope_id,
            )))
        }
        family => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("kernel returned a sockaddr of family {family} and length {len}, not an IPv4/IPv6 address"),
        )),
    }
}

/// Decodes a sockaddr from raw bytes (as a fuzzer or a packet parser sees them). Never panics.
pub fn decode_bytes(bytes: &[u8]) -> io::Result<SocketAddr> {
    // SAFETY: sockaddr_storage is a plain C struct; all-zero bytes are a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let n = bytes.len().min(mem::size_of::<libc::sockaddr_storage>());
    // SAFETY: we copy at most size_of::<sockaddr_storage>() bytes into it; the regions cannot overlap.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), (&mut storage as *mut libc::sockaddr_storage).cast::<u8>(), n)
    };
    decode(&storage, n as libc::socklen_t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_v4_and_v6() {
        for text in ["127.0.0.1:5000", "[::1]:80", "[fe80::1%2]:9", "0.0.0.0:0"] {
            let addr: SocketAddr = text.parse().unwrap();
            let raw = RawAddr::new(&addr);
            let mut buf = AddrBuf::new();
            // SAFETY (test): copy the raw struct's bytes into the storage as the kernel would.
            let bytes = match &raw {
                RawAddr::V4(s) => as_bytes(s),
                RawAddr::V6(s) => as_bytes(s),
            };
            let decoded = decode_bytes(bytes).unwrap();
            assert_eq!(decoded, addr, "{text}");
            buf.len = raw.len();
            assert!(buf.len > 0);
        }
    }

    fn as_bytes<T>(v: &T) -> &[u8] {
        // SAFETY: reading a plain C struct's bytes; it lives as long as the returned slice.
        unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), mem::size_of::<T>()) }
    }

    #[test]
    fn short_or_unknown_is_an_error() {
        assert!(decode_bytes(&[]).is_err());
        assert!(decode_bytes(&[2, 0, 0x13]).is_err()); // AF_INET but 3 bytes
        assert!(decode_bytes(&[0xff; 200]).is_err());
    }
}
