//! Floor 3: Unix domain sockets — processes on one machine talking through the kernel, named by a
//! file system path or (Linux) an abstract name (`@name`, no file at all).
//!
//! Three types, as in std's `std::os::unix::net` (and convertible to and from them):
//! [`UnixListener`] and [`UnixStream`] for `SOCK_STREAM` (a byte stream, like TCP without a
//! network) and `SOCK_SEQPACKET` (the same connection sequence, but each send arrives as one
//! message with its boundaries kept); [`UnixDatagram`] for `SOCK_DGRAM` (reliable datagrams: on a
//! Unix socket nothing is ever lost, a full receiver makes the sender wait).
//!
//! A path-bound socket leaves its file behind when closed. The next bind to that path fails with
//! `EADDRINUSE` until the file is removed ([`unlink_stale`]), and a connect to it fails with
//! `ECONNREFUSED`: nobody is listening behind the name.

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::CallError;
use crate::socket::{Domain, PeerCred, Socket, Type, socket_type_traits};
use crate::sys::{self, SockAddr, UnixName};

/// Which connection-oriented Unix socket type.
///
/// # Example
///
/// ```
/// use socklab::{UnixKind, UnixStream};
///
/// // SOCK_SEQPACKET keeps message boundaries: two sends, two recvs, never merged.
/// let (a, b) = UnixStream::pair(UnixKind::Seqpacket)?;
/// a.send(b"one")?;
/// a.send(b"two")?;
/// let mut buf = [0u8; 64];
/// assert_eq!(b.recv(&mut buf)?, 3);
/// assert_eq!(b.recv(&mut buf)?, 3);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnixKind {
    /// `SOCK_STREAM`: bytes, no boundaries.
    #[default]
    Stream,
    /// `SOCK_SEQPACKET`: messages, boundaries kept, in order, connection-oriented.
    Seqpacket,
}

impl UnixKind {
    fn ty(self) -> Type {
        match self {
            UnixKind::Stream => Type::STREAM,
            UnixKind::Seqpacket => Type::SEQPACKET,
        }
    }
}

/// `PATH` or `@name` (the Linux abstract namespace) as an `AF_UNIX` address. Fails with a clear
/// error when the name does not fit in `sun_path` (108 bytes with its NUL).
pub fn unix_addr(name: &str) -> io::Result<SockAddr> {
    match name.strip_prefix('@') {
        Some(abstract_name) => SockAddr::unix_abstract(abstract_name.as_bytes()),
        None => SockAddr::unix(name),
    }
}

/// Removes a stale socket file at `addr`'s path (`unlink(2)`), so a server can bind it again.
/// Refuses to remove anything that is not a socket (a typo must not delete a regular file), and
/// a socket something still serves: it first connects to the path (a nonblocking `SOCK_STREAM`
/// socket), and only `ECONNREFUSED`, nobody bound behind the name, makes the file stale. A
/// connection, a full accept queue (`EAGAIN`) or a socket of another type behind it
/// (`EPROTOTYPE`) is a live server; the error names its process when /proc tells. A missing file
/// or an abstract name is fine: there is nothing to remove.
pub fn unlink_stale(addr: &SockAddr) -> Result<(), CallError> {
    let Some(UnixName::Path(bytes)) = addr.as_unix() else { return Ok(()) };
    let path = Path::new(OsStr::from_bytes(bytes));
    match crate::file::mode_of(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CallError::unix("stat", addr, e)),
        // Named for the option that asked for the removal: no unlink(2) was made.
        Ok(mode) if mode & libc::S_IFMT != libc::S_IFSOCK => Err(CallError::unix(
            "--unlink",
            addr,
            io::Error::new(
                io::ErrorKind::AlreadyExists,
                "exists and is not a socket; refusing to remove it (choose another path)",
            ),
        )),
        Ok(_) => {
            if let Some(how) = live_behind(addr)? {
                let owner = owner_of(bytes).map_or_else(
                    || "its owner is not known (/proc did not tell)".to_string(),
                    |(pid, comm)| format!("it belongs to pid {pid} ({comm})"),
                );
                return Err(CallError::unix(
                    "--unlink",
                    addr,
                    io::Error::new(
                        io::ErrorKind::AddrInUse,
                        format!(
                            "a socket is live behind this path ({how}; {owner}); refusing to remove it: stop that \
                             server first, or choose another path"
                        ),
                    ),
                ));
            }
            sys::unlink(path).map_err(|e| CallError::unix("unlink", addr, e))
        }
    }
}

/// Whether a socket is bound behind the path `addr` names: `Some(what the probe saw)` if so,
/// `None` if connect says `ECONNREFUSED` (a stale file) or `ENOENT` (gone meanwhile).
fn live_behind(addr: &SockAddr) -> Result<Option<&'static str>, CallError> {
    let probe =
        Socket::new(Domain::UNIX, Type::STREAM.nonblocking(), None).map_err(|e| CallError::unix("socket", addr, e))?;
    match probe.connect_nonblocking(addr) {
        Ok(_) => Ok(Some("a connect to it was accepted")),
        Err(e) => match e.raw_os_error() {
            Some(libc::ECONNREFUSED | libc::ENOENT) => Ok(None),
            Some(libc::EAGAIN) => Ok(Some("a connect to it found its accept queue full")),
            Some(libc::EPROTOTYPE) => Ok(Some("a socket of another type is bound to it")),
            _ => Err(CallError::unix("connect", addr, e)),
        },
    }
}

/// The process holding the socket bound to `path`, from /proc: the socket's inode from
/// /proc/net/unix (its last column is the bound path), then the process whose /proc/PID/fd has
/// `socket:[INODE]`. `None` when either step finds nothing (another user's processes are not
/// readable without privilege).
fn owner_of(path: &[u8]) -> Option<(u32, String)> {
    let table = crate::file::read_to_string(Path::new("/proc/net/unix")).ok()?;
    let wanted = OsStr::from_bytes(path).to_str()?;
    // Every socket with this name: the listener, and also its accepted connections and those
    // still in its accept queue (the probe's own, for one), which carry the listener's name.
    let links: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.len() >= 8 && fields[7..].join(" ") == wanted).then(|| format!("socket:[{}]", fields[6]))
        })
        .collect();
    if links.is_empty() {
        return None;
    }
    let procs = crate::file::read_dir(Path::new("/proc")).ok()?;
    procs.iter().filter_map(|p| p.to_str()?.parse::<u32>().ok()).find_map(|pid| {
        let dir = Path::new("/proc").join(pid.to_string());
        let fds = crate::file::read_dir(&dir.join("fd")).ok()?;
        fds.iter()
            .any(|fd| {
                crate::file::read_link(&dir.join("fd").join(fd)).is_ok_and(|t| links.iter().any(|l| t == l.as_str()))
            })
            .then(|| {
                let comm = crate::file::read_to_string(&dir.join("comm")).unwrap_or_default();
                (pid, comm.trim().to_string())
            })
    })
}

/// Removes the socket file at `addr`'s path if it is still `bound` (the device and inode that
/// [`crate::file::identity_of`] gave right after bind): a server stopping removes its own file,
/// never one another server made there since (after an `--unlink` of its own, say). Returns
/// whether it removed the file.
pub fn unlink_own(addr: &SockAddr, bound: (u64, u64)) -> Result<bool, CallError> {
    let Some(UnixName::Path(bytes)) = addr.as_unix() else { return Ok(false) };
    let path = Path::new(OsStr::from_bytes(bytes));
    match crate::file::identity_of(path) {
        Ok(now) if now == bound => sys::unlink(path).map(|()| true).map_err(|e| CallError::unix("unlink", addr, e)),
        Ok(_) => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(CallError::unix("stat", addr, e)),
    }
}

/// A listening Unix stream or seqpacket socket.
///
/// # Example
///
/// ```
/// use socklab::unix::unix_addr;
/// use socklab::{UnixKind, UnixListener, UnixStream};
///
/// // An abstract name (`@...`, Linux): no file to clean up afterwards.
/// let addr = unix_addr(&format!("@socklab-doc-listener-{}", std::process::id()))?;
/// let listener = UnixListener::bind(&addr, UnixKind::Stream, 5)?;
/// let client = UnixStream::connect(&addr, UnixKind::Stream)?;
/// let (conn, peer) = listener.accept()?;
/// assert_eq!(peer.to_string(), "(unnamed)"); // clients rarely bind
/// client.send_all(b"Hello")?;
/// let mut buf = [0u8; 2048];
/// let n = conn.recv(&mut buf)?;
/// conn.send_all(&buf[..n])?;
/// assert_eq!(client.recv(&mut buf)?, 5);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct UnixListener {
    socket: Socket,
}

impl UnixListener {
    /// socket(AF_UNIX, kind), bind, listen. No SO_REUSEADDR: a Unix name has no TIME-WAIT; a
    /// leftover *file* is what blocks a new bind (`EADDRINUSE`, see [`unlink_stale`]).
    pub fn bind(addr: &SockAddr, kind: UnixKind, backlog: i32) -> Result<UnixListener, CallError> {
        let socket = Socket::new(Domain::UNIX, kind.ty(), None).map_err(|e| CallError::unix("socket", addr, e))?;
        socket.bind(addr).map_err(|e| CallError::unix("bind", addr, e))?;
        socket.listen(backlog).map_err(|e| CallError::unix("listen", addr, e))?;
        Ok(UnixListener { socket })
    }

    /// The next connection and its peer's address (usually unnamed: clients rarely bind).
    pub fn accept(&self) -> io::Result<(UnixStream, SockAddr)> {
        let (socket, addr) = self.socket.accept()?;
        Ok((UnixStream { socket }, addr))
    }

    /// accept for an event loop: nonblocking connection; `WouldBlock` on an empty queue.
    pub fn accept_nonblocking(&self) -> io::Result<(UnixStream, SockAddr)> {
        let (socket, addr) = self.socket.accept_nonblocking()?;
        Ok((UnixStream { socket }, addr))
    }

    /// accept that returns `Interrupted` on EINTR instead of retrying.
    pub fn accept_interruptible(&self) -> io::Result<(UnixStream, SockAddr)> {
        let (socket, addr) = self.socket.accept_interruptible()?;
        Ok((UnixStream { socket }, addr))
    }

    /// Blocks until a connection waits in the accept queue (poll(2) readable), without taking it.
    pub fn wait_for_connection(&self) -> io::Result<()> {
        self.socket.wait_for(sys::POLLIN, None).map(drop)
    }

    /// The bound name (getsockname).
    pub fn local_addr(&self) -> io::Result<SockAddr> {
        self.socket.local_addr()
    }

    /// The underlying socket.
    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    /// close(2), reporting its error. The socket *file* stays; see [`unlink_stale`].
    pub fn close(self) -> io::Result<()> {
        self.socket.close()
    }
}

/// A connected Unix stream or seqpacket socket (a client, an accepted connection, or one end of
/// a socketpair).
///
/// # Example
///
/// ```
/// use std::io::{Read, Write};
/// use socklab::{UnixKind, UnixStream};
///
/// // Two connected ends, no name at all: what a parent hands a child it forks.
/// let (a, b) = UnixStream::pair(UnixKind::Stream)?;
/// (&a).write_all(b"Hello")?;
/// let mut buf = [0u8; 5];
/// (&b).read_exact(&mut buf)?;
/// (&b).write_all(&buf)?;
/// (&a).read_exact(&mut buf)?;
/// assert_eq!(&buf, b"Hello");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct UnixStream {
    socket: Socket,
}

impl UnixStream {
    /// socket(AF_UNIX, kind) + connect. There is no handshake on the wire: connect succeeds at
    /// once if a listener's queue has room, `ECONNREFUSED` if the file exists but nobody listens,
    /// `ENOENT` if there is no such file.
    pub fn connect(addr: &SockAddr, kind: UnixKind) -> Result<UnixStream, CallError> {
        let socket = Socket::new(Domain::UNIX, kind.ty(), None).map_err(|e| CallError::unix("socket", addr, e))?;
        socket.connect(addr).map_err(|e| CallError::unix("connect", addr, e))?;
        Ok(UnixStream { socket })
    }

    /// socketpair(2): two connected sockets, no name, no listener.
    pub fn pair(kind: UnixKind) -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = Socket::pair(kind.ty())?;
        Ok((UnixStream { socket: a }, UnixStream { socket: b }))
    }

    /// Builds a stream from a connected `AF_UNIX` socket.
    pub fn from_socket(socket: Socket) -> UnixStream {
        UnixStream { socket }
    }

    /// recv(2); `Ok(0)` once the peer closed. On seqpacket, one message (cut to `buf.len()`).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket.recv(buf)
    }

    /// recv(2) with `MSG_TRUNC` (seqpacket): the message's real length, more than `buf.len()`
    /// when it was cut.
    pub fn recv_trunc(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket.recv_trunc(buf)
    }

    /// send(2) once.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.socket.send(buf)
    }

    /// Sends every byte, looping over short writes.
    pub fn send_all(&self, buf: &[u8]) -> io::Result<()> {
        self.socket.send_all(buf)
    }

    /// sendmsg(2) with `SCM_RIGHTS`: passes `fds` to the peer process along with `data`.
    pub fn send_fds(&self, data: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
        self.socket.send_fds(data, fds)
    }

    /// recvmsg(2): data and any descriptors passed with it.
    pub fn recv_fds(&self, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
        self.socket.recv_fds(buf)
    }

    /// SO_PEERCRED: the pid, uid and gid of the peer process (Linux).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub fn peer_cred(&self) -> io::Result<PeerCred> {
        self.socket.peer_cred()
    }

    /// shutdown(2).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.socket.shutdown(how)
    }

    /// Our name (usually unnamed for a client).
    pub fn local_addr(&self) -> io::Result<SockAddr> {
        self.socket.local_addr()
    }

    /// The peer's name (the server's path for a client).
    pub fn peer_addr(&self) -> io::Result<SockAddr> {
        self.socket.peer_addr()
    }

    /// The underlying socket (timeouts, nonblocking mode).
    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    /// close(2), reporting its error.
    pub fn close(self) -> io::Result<()> {
        self.socket.close()
    }
}

impl Read for &UnixStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket.recv(buf)
    }
}

impl Write for &UnixStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.socket.send(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A Unix datagram socket.
///
/// # Example
///
/// ```
/// use socklab::UnixDatagram;
/// use socklab::unix::unix_addr;
///
/// let addr = unix_addr(&format!("@socklab-doc-dgram-{}", std::process::id()))?;
/// let server = UnixDatagram::bind(&addr)?;
/// // The client is autobound to an abstract name, so the server has somewhere to answer.
/// let client = UnixDatagram::connect_autobind(&addr)?;
/// client.send(b"Hello")?;
/// let mut buf = [0u8; 2048];
/// let (n, from) = server.recv_from(&mut buf)?;
/// assert!(from.to_string().starts_with('@'), "{from}");
/// server.send_to(&buf[..n], &from)?;
/// assert_eq!(client.recv(&mut buf)?, 5);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct UnixDatagram {
    socket: Socket,
}

impl UnixDatagram {
    /// socket(AF_UNIX, SOCK_DGRAM) + bind to `addr`: a server others can send to.
    pub fn bind(addr: &SockAddr) -> Result<UnixDatagram, CallError> {
        let socket = Socket::new(Domain::UNIX, Type::DGRAM, None).map_err(|e| CallError::unix("socket", addr, e))?;
        socket.bind(addr).map_err(|e| CallError::unix("bind", addr, e))?;
        Ok(UnixDatagram { socket })
    }

    /// A client: socket, bind to no name (Linux *autobinds* a unique abstract name, so the server
    /// has an address to reply to; an unbound datagram socket could send but never be answered),
    /// then connect to `server`.
    pub fn connect_autobind(server: &SockAddr) -> Result<UnixDatagram, CallError> {
        let socket = Socket::new(Domain::UNIX, Type::DGRAM, None).map_err(|e| CallError::unix("socket", server, e))?;
        socket.bind(&SockAddr::unix_unnamed()).map_err(|e| CallError::unix("bind (autobind)", server, e))?;
        socket.connect(server).map_err(|e| CallError::unix("connect", server, e))?;
        Ok(UnixDatagram { socket })
    }

    /// recvfrom(2) with `MSG_TRUNC`: `(real length, sender)`; a length over `buf.len()` means the
    /// datagram was cut.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SockAddr)> {
        self.socket.recv_from_trunc(buf)
    }

    /// sendto(2): one datagram to `addr`.
    pub fn send_to(&self, buf: &[u8], addr: &SockAddr) -> io::Result<usize> {
        self.socket.send_to(buf, addr)
    }

    /// send(2) on a connected socket.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.socket.send(buf)
    }

    /// recv(2) with `MSG_TRUNC` on a connected socket: the real length.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket.recv_trunc(buf)
    }

    /// Our name.
    pub fn local_addr(&self) -> io::Result<SockAddr> {
        self.socket.local_addr()
    }

    /// The underlying socket.
    pub fn socket(&self) -> &Socket {
        &self.socket
    }
}

socket_type_traits!(UnixListener, std::os::unix::net::UnixListener);
socket_type_traits!(UnixStream, std::os::unix::net::UnixStream);
socket_type_traits!(UnixDatagram, std::os::unix::net::UnixDatagram);

impl AsRef<Socket> for UnixListener {
    fn as_ref(&self) -> &Socket {
        &self.socket
    }
}

impl AsRef<Socket> for UnixStream {
    fn as_ref(&self) -> &Socket {
        &self.socket
    }
}

impl AsRef<Socket> for UnixDatagram {
    fn as_ref(&self) -> &Socket {
        &self.socket
    }
}
