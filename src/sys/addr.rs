//! [`SockAddr`]: one socket address type for every family (IPv4, IPv6, Unix, and on Linux
//! `AF_PACKET` and `AF_NETLINK`), in the kernel's own layout.
//!
//! An address is a `sockaddr_storage` (big enough and aligned for any family) plus the length that
//! is really in use. Going in, bind(2)/connect(2) get a pointer and that length. Coming out
//! (accept, getsockname, getpeername) the kernel fills a zeroed storage and writes back how many
//! bytes it used ([`SockAddr::try_init`]); readers check the family *and* that length before
//! reading the storage as a `sockaddr_in`, `_in6`, `_un`, `_ll` or `_nl`.
//!
//! Ports and IPv4 addresses travel in network byte order (big-endian): that is the `htons` /
//! `inet_addr` strace shows.

use std::fmt;
use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A socket address of any family, as the kernel reads and writes it.
///
/// # Example
///
/// ```
/// use socklab::{SockAddr, UnixName};
///
/// // One address type for every family, printed as socklab prints peers.
/// let ip = SockAddr::from(std::net::SocketAddr::from(([127, 0, 0, 1], 5000)));
/// assert_eq!((ip.to_string(), ip.family(), ip.len()), ("127.0.0.1:5000".into(), libc::AF_INET, 16));
/// let path = SockAddr::unix("/tmp/echo.sock")?;
/// assert_eq!(path.as_unix(), Some(UnixName::Path(b"/tmp/echo.sock")));
/// assert_eq!(SockAddr::unix_abstract(b"echo")?.to_string(), "@echo");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct SockAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

/// The name in an `AF_UNIX` address.
///
/// # Example
///
/// ```
/// use socklab::{SockAddr, UnixName};
///
/// assert_eq!(SockAddr::unix_abstract(b"echo")?.as_unix(), Some(UnixName::Abstract(b"echo")));
/// assert_eq!(SockAddr::unix_unnamed().as_unix(), Some(UnixName::Unnamed));
/// assert_eq!(SockAddr::from(std::net::SocketAddr::from(([127, 0, 0, 1], 1))).as_unix(), None);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnixName<'a> {
    /// A file system path (`sun_path` up to its NUL).
    Path(&'a [u8]),
    /// A Linux abstract name: `sun_path[0]` is NUL and the name is the rest (strace shows `@name`).
    Abstract(&'a [u8]),
    /// No name at all (an unbound socket, or one end of a socketpair).
    Unnamed,
}

const STORAGE: usize = mem::size_of::<libc::sockaddr_storage>();

/// `offsetof(struct sockaddr_un, sun_path)`: the family field before the path.
const SUN_PATH_OFFSET: usize = mem::size_of::<libc::sa_family_t>();

/// `ETH_P_ALL`: every EtherType, for a packet socket's protocol and address.
#[cfg(socklab_af_packet)]
pub const ETH_P_ALL: u16 = 0x0003;

/// `sizeof(sun_path)`: 108 bytes on Linux, 104 on the BSDs.
pub const SUN_PATH_LEN: usize = mem::size_of::<libc::sockaddr_un>() - SUN_PATH_OFFSET;

impl SockAddr {
    /// An empty storage of full capacity, for the kernel to fill.
    fn empty() -> SockAddr {
        // SAFETY: sockaddr_storage is a plain C struct; all-zero bytes are a valid value.
        SockAddr { storage: unsafe { mem::zeroed() }, len: STORAGE as libc::socklen_t }
    }

    /// An empty address for the kernel to write into (accept, getsockname, getpeername): a zeroed
    /// `sockaddr_storage` and a length set to its size.
    pub(crate) fn for_kernel() -> SockAddr {
        SockAddr::empty()
    }

    /// The two out-pointers of a value-result address argument: the storage, and the length the
    /// kernel reads as the capacity and overwrites with the length it used. Readers clamp that
    /// length to the storage ([`as_bytes`](Self::as_bytes)), so a kernel reporting a longer
    /// (truncated) address can never make a read go out of bounds.
    pub(crate) fn out_ptrs(&mut self) -> (*mut libc::sockaddr, *mut libc::socklen_t) {
        ((&mut self.storage as *mut libc::sockaddr_storage).cast(), &mut self.len)
    }

    /// Copies the first `len` bytes of `raw` (a C sockaddr of some family) into a new address.
    fn from_raw<T>(raw: &T, len: usize) -> SockAddr {
        let mut addr = SockAddr::empty();
        let len = len.min(mem::size_of::<T>()).min(STORAGE);
        // SAFETY: `raw` is valid for reads of size_of::<T>() >= len bytes, the storage for writes
        // of STORAGE >= len bytes, and they are different objects.
        unsafe { std::ptr::copy_nonoverlapping((raw as *const T).cast::<u8>(), addr.as_bytes_mut().as_mut_ptr(), len) };
        addr.len = len as libc::socklen_t;
        addr
    }

    fn as_bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: the storage is STORAGE bytes of plain data, borrowed mutably for the slice's life.
        unsafe { std::slice::from_raw_parts_mut((&mut self.storage as *mut libc::sockaddr_storage).cast(), STORAGE) }
    }

    /// The bytes in use, as the kernel sees them.
    pub fn as_bytes(&self) -> &[u8] {
        let len = (self.len as usize).min(STORAGE);
        // SAFETY: the storage is STORAGE bytes of plain data and `len` is at most STORAGE.
        unsafe { std::slice::from_raw_parts((&self.storage as *const libc::sockaddr_storage).cast(), len) }
    }

    /// An `AF_UNIX` address naming a file system path. Fails if the path (plus its NUL) does not
    /// fit in `sun_path`, or contains a NUL byte.
    ///
    /// Man page: [`unix(7)`](https://man7.org/linux/man-pages/man7/unix.7.html).
    pub fn unix(path: impl AsRef<Path>) -> io::Result<SockAddr> {
        let bytes = path.as_ref().as_os_str().as_bytes();
        if bytes.contains(&0) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "a Unix socket path cannot contain a NUL byte"));
        }
        if bytes.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "a Unix socket path cannot be empty"));
        }
        if bytes.len() >= SUN_PATH_LEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the Unix socket path is {} bytes; sun_path holds at most {} (plus its NUL): use a shorter path",
                    bytes.len(),
                    SUN_PATH_LEN - 1
                ),
            ));
        }
        // The length includes the terminating NUL, as the kernel returns it for a bound path.
        Ok(SockAddr::unix_raw(bytes, SUN_PATH_OFFSET + bytes.len() + 1))
    }

    /// A Linux abstract-namespace `AF_UNIX` address: no file, the name lives as long as a socket
    /// is bound to it. `name` excludes the leading NUL (strace writes it `@name`).
    ///
    /// Man page: [`unix(7)`](https://man7.org/linux/man-pages/man7/unix.7.html).
    pub fn unix_abstract(name: &[u8]) -> io::Result<SockAddr> {
        if name.len() + 1 > SUN_PATH_LEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the abstract name is {} bytes; at most {} fit in sun_path", name.len(), SUN_PATH_LEN - 1),
            ));
        }
        let mut with_nul = Vec::with_capacity(name.len() + 1);
        with_nul.push(0);
        with_nul.extend_from_slice(name);
        // No terminating NUL: an abstract name's length is exactly what is passed.
        Ok(SockAddr::unix_raw(&with_nul, SUN_PATH_OFFSET + with_nul.len()))
    }

    /// An `AF_UNIX` address with no name at all (length 2: the family only). Binding it asks Linux
    /// to *autobind*: the kernel picks a unique abstract name (five hex digits), which is how an
    /// unnamed datagram client gets an address a server can reply to.
    ///
    /// Man page: [`unix(7)`](https://man7.org/linux/man-pages/man7/unix.7.html).
    pub fn unix_unnamed() -> SockAddr {
        SockAddr::unix_raw(&[], SUN_PATH_OFFSET)
    }

    fn unix_raw(path: &[u8], len: usize) -> SockAddr {
        // SAFETY: sockaddr_un is a plain C struct; all-zero bytes are a valid value.
        let mut sun: libc::sockaddr_un = unsafe { mem::zeroed() };
        sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (dst, &src) in sun.sun_path.iter_mut().zip(path) {
            *dst = src as libc::c_char;
        }
        SockAddr::from_raw(&sun, len)
    }

    /// An `AF_PACKET` address: every frame of protocol `protocol` (an EtherType, host order) on
    /// interface `ifindex`.
    ///
    /// Man page: [`packet(7)`](https://man7.org/linux/man-pages/man7/packet.7.html).
    #[cfg(socklab_af_packet)]
    pub fn packet(ifindex: i32, protocol: u16) -> SockAddr {
        // SAFETY: sockaddr_ll is a plain C struct; all-zero bytes are a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as libc::c_ushort;
        sll.sll_protocol = protocol.to_be();
        sll.sll_ifindex = ifindex;
        SockAddr::from_raw(&sll, mem::size_of::<libc::sockaddr_ll>())
    }

    /// An `AF_PACKET` address receiving every frame (`ETH_P_ALL`) of interface `ifindex`.
    ///
    /// Man page: [`packet(7)`](https://man7.org/linux/man-pages/man7/packet.7.html).
    #[cfg(socklab_af_packet)]
    pub fn packet_all(ifindex: i32) -> SockAddr {
        SockAddr::packet(ifindex, ETH_P_ALL)
    }

    /// An `AF_NETLINK` address: port id `pid` (0: the kernel) and multicast `groups`.
    ///
    /// Man page: [`netlink(7)`](https://man7.org/linux/man-pages/man7/netlink.7.html).
    #[cfg(socklab_sock_diag)]
    pub fn netlink(pid: u32, groups: u32) -> SockAddr {
        // SAFETY: sockaddr_nl is a plain C struct; all-zero bytes are a valid value.
        let mut snl: libc::sockaddr_nl = unsafe { mem::zeroed() };
        snl.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        snl.nl_pid = pid;
        snl.nl_groups = groups;
        SockAddr::from_raw(&snl, mem::size_of::<libc::sockaddr_nl>())
    }

    /// Pointer for the kernel. Only valid while `self` is alive and not moved.
    pub(crate) fn as_ptr(&self) -> *const libc::sockaddr {
        (&self.storage as *const libc::sockaddr_storage).cast()
    }

    /// The length in use: the `addrlen` argument.
    pub fn len(&self) -> libc::socklen_t {
        self.len
    }

    /// True when the kernel wrote no address at all (length 0).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The capacity offered to the kernel for an out-parameter (strace's `[128 => 16]`).
    pub fn capacity() -> libc::socklen_t {
        STORAGE as libc::socklen_t
    }

    /// The address family: `AF_INET`, `AF_UNIX`...; `AF_UNSPEC` (0) when nothing was written.
    pub fn family(&self) -> libc::c_int {
        if (self.len as usize) < mem::size_of::<libc::sa_family_t>() {
            return libc::AF_UNSPEC;
        }
        self.storage.ss_family as libc::c_int
    }

    /// Reads the storage as `T` if the family is `family` and the kernel wrote at least
    /// `size_of::<T>()` bytes.
    fn view<T>(&self, family: libc::c_int) -> Option<&T> {
        if self.family() != family || self.as_bytes().len() < mem::size_of::<T>() {
            return None;
        }
        // SAFETY: the family says the storage holds a T, at least size_of::<T>() bytes of it were
        // written, and sockaddr_storage is large and aligned enough for any sockaddr.
        Some(unsafe { &*(&self.storage as *const libc::sockaddr_storage).cast::<T>() })
    }

    /// The IP address and port, for `AF_INET` and `AF_INET6`.
    pub fn as_socket(&self) -> Option<SocketAddr> {
        if let Some(sin) = self.view::<libc::sockaddr_in>(libc::AF_INET) {
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            return Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(sin.sin_port))));
        }
        let sin6 = self.view::<libc::sockaddr_in6>(libc::AF_INET6)?;
        Some(SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::from(sin6.sin6_addr.s6_addr),
            u16::from_be(sin6.sin6_port),
            u32::from_be(sin6.sin6_flowinfo),
            sin6.sin6_scope_id,
        )))
    }

    /// The IP address and port, or an error naming the family the kernel returned.
    pub fn to_socket(&self) -> io::Result<SocketAddr> {
        self.as_socket().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "kernel returned a sockaddr of family {} and length {}, not an IPv4/IPv6 address",
                    self.family(),
                    self.len
                ),
            )
        })
    }

    /// The name of an `AF_UNIX` address.
    pub fn as_unix(&self) -> Option<UnixName<'_>> {
        if self.family() != libc::AF_UNIX {
            return None;
        }
        let bytes = self.as_bytes();
        let path = &bytes[SUN_PATH_OFFSET.min(bytes.len())..];
        Some(match path.split_first() {
            None => UnixName::Unnamed,
            Some((0, name)) => UnixName::Abstract(name),
            Some(_) => UnixName::Path(path.split(|&b| b == 0).next().unwrap_or(path)),
        })
    }

    /// `(ifindex, protocol)` of an `AF_PACKET` address (protocol in host order).
    #[cfg(socklab_af_packet)]
    pub fn as_packet(&self) -> Option<(i32, u16)> {
        self.view::<libc::sockaddr_ll>(libc::AF_PACKET).map(|sll| (sll.sll_ifindex, u16::from_be(sll.sll_protocol)))
    }

    /// `(pid, groups)` of an `AF_NETLINK` address.
    #[cfg(socklab_sock_diag)]
    pub fn as_netlink(&self) -> Option<(u32, u32)> {
        self.view::<libc::sockaddr_nl>(libc::AF_NETLINK).map(|snl| (snl.nl_pid, snl.nl_groups))
    }
}

impl From<SocketAddr> for SockAddr {
    fn from(addr: SocketAddr) -> SockAddr {
        match addr {
            SocketAddr::V4(a) => {
                // SAFETY: sockaddr_in is a plain C struct; all-zero bytes are a valid value.
                let mut sin: libc::sockaddr_in = unsafe { mem::zeroed() };
                sin.sin_family = libc::AF_INET as libc::sa_family_t;
                sin.sin_port = a.port().to_be(); // htons
                // The octets are already in network order; keep their byte layout as-is.
                sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
                set_len_v4(&mut sin);
                SockAddr::from_raw(&sin, mem::size_of::<libc::sockaddr_in>())
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
                SockAddr::from_raw(&sin6, mem::size_of::<libc::sockaddr_in6>())
            }
        }
    }
}

impl From<&SocketAddr> for SockAddr {
    fn from(addr: &SocketAddr) -> SockAddr {
        SockAddr::from(*addr)
    }
}

impl PartialEq for SockAddr {
    fn eq(&self, other: &SockAddr) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for SockAddr {}

impl fmt::Debug for SockAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Human form: `127.0.0.1:5000`, `[::1]:80`, `/tmp/echo.sock`, `@name`, `(unnamed)`.
impl fmt::Display for SockAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(addr) = self.as_socket() {
            return write!(f, "{addr}");
        }
        match self.as_unix() {
            Some(UnixName::Path(p)) => write!(f, "{}", String::from_utf8_lossy(p)),
            Some(UnixName::Abstract(n)) => write!(f, "@{}", String::from_utf8_lossy(n)),
            Some(UnixName::Unnamed) => f.write_str("(unnamed)"),
            None => write!(f, "(family {}, {} bytes)", self.family(), self.len),
        }
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

/// Decodes an IP sockaddr from raw bytes (as a fuzzer or a packet parser sees them). Never panics.
pub fn decode_bytes(bytes: &[u8]) -> io::Result<SocketAddr> {
    let mut addr = SockAddr::empty();
    let n = bytes.len().min(STORAGE);
    addr.as_bytes_mut()[..n].copy_from_slice(&bytes[..n]);
    addr.len = n as libc::socklen_t;
    addr.to_socket()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_v4_and_v6() {
        for text in ["127.0.0.1:5000", "[::1]:80", "[fe80::1%2]:9", "0.0.0.0:0"] {
            let addr: SocketAddr = text.parse().unwrap();
            let raw = SockAddr::from(addr);
            assert_eq!(decode_bytes(raw.as_bytes()).unwrap(), addr, "{text}");
            assert_eq!(raw.as_socket(), Some(addr));
            assert_eq!(raw.to_string(), addr.to_string());
        }
    }

    #[test]
    fn short_or_unknown_is_an_error() {
        assert!(decode_bytes(&[]).is_err());
        assert!(decode_bytes(&[2, 0, 0x13]).is_err()); // AF_INET but 3 bytes
        assert!(decode_bytes(&[0xff; 200]).is_err());
    }

    #[test]
    fn unix_paths_are_checked_against_sun_path() {
        let addr = SockAddr::unix("/tmp/echo.sock").unwrap();
        assert_eq!(addr.family(), libc::AF_UNIX);
        assert_eq!(addr.as_unix(), Some(UnixName::Path(b"/tmp/echo.sock")));
        assert_eq!(addr.len() as usize, SUN_PATH_OFFSET + 15);
        assert_eq!(addr.to_string(), "/tmp/echo.sock");
        let long = "x".repeat(SUN_PATH_LEN);
        let err = SockAddr::unix(&long).unwrap_err();
        assert!(err.to_string().contains("sun_path holds at most"), "{err}");
        assert!(SockAddr::unix(format!("/tmp/{}", "y".repeat(SUN_PATH_LEN - 6))).is_ok());
        let abs = SockAddr::unix_abstract(b"socklab").unwrap();
        assert_eq!(abs.as_unix(), Some(UnixName::Abstract(b"socklab")));
        assert_eq!(abs.to_string(), "@socklab");
        assert!(abs.as_socket().is_none());
    }
}
