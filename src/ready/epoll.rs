//! [`Epoll`]: an owned epoll(7) instance with typed interest and tokens.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use super::{Interest, Readiness, Token, timeout_ms};
use crate::sys::epoll::{self as sys, EpollEvent};

/// An epoll instance. Closed on drop (narrated, like every close).
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use socklab::ready::{Epoll, Events, Interest, Token};
/// use socklab::{TcpListener, TcpStream};
///
/// let listener = TcpListener::bind(&"127.0.0.1:0".parse()?)?;
/// listener.set_nonblocking(true)?;
/// let epoll = Epoll::new()?;
/// epoll.add(&listener, Token(0), Interest::READABLE)?;
/// let _client = TcpStream::connect(&listener.local_addr()?)?;
/// let mut events = Events::with_capacity(16);
/// // Wait (bounded) until the kernel says the listener has a finished handshake queued.
/// while events.is_empty() {
///     epoll.wait(&mut events, Some(Duration::from_secs(5)))?;
/// }
/// let ready = events.iter().next().unwrap();
/// assert_eq!((ready.token, ready.readable), (Token(0), true));
/// let (conn, _) = listener.accept()?;
/// epoll.add(&conn, Token(1), Interest::READABLE.and_writable())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Epoll {
    // `Some` until dropped; taken by Drop to close it through `sys`.
    fd: Option<OwnedFd>,
}

/// The buffer a wait fills: at most its capacity of events per wait.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use socklab::ready::{Epoll, Events, Interest, Token};
/// use socklab::{UnixKind, UnixStream};
///
/// let (a, b) = UnixStream::pair(UnixKind::Stream)?;
/// let epoll = Epoll::new()?;
/// epoll.add(&b, Token(7), Interest::READABLE)?;
/// let mut events = Events::with_capacity(4);
/// epoll.wait(&mut events, Some(Duration::ZERO))?; // nothing to read yet
/// assert!(events.is_empty());
/// a.send(b"x")?;
/// epoll.wait(&mut events, Some(Duration::from_secs(5)))?;
/// assert_eq!(events.len(), 1);
/// assert_eq!(events.iter().next().map(|r| r.token), Some(Token(7)));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Events {
    buf: Vec<EpollEvent>,
    len: usize,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Events {
    /// Room for `capacity` events per wait.
    pub fn with_capacity(capacity: usize) -> Events {
        Events { buf: vec![EpollEvent { events: 0, u64: 0 }; capacity.max(1)], len: 0 }
    }

    /// The events of the last wait.
    pub fn iter(&self) -> impl Iterator<Item = Readiness> + '_ {
        self.buf[..self.len].iter().map(|e| {
            let (bits, data) = (e.events, e.u64); // copies: the struct is packed on x86-64
            Readiness {
                token: Token(data as usize),
                readable: bits & sys::EPOLLIN as u32 != 0,
                writable: bits & sys::EPOLLOUT as u32 != 0,
                hangup: bits & (sys::EPOLLHUP | sys::EPOLLRDHUP) as u32 != 0,
                error: bits & sys::EPOLLERR as u32 != 0,
            }
        })
    }

    /// How many events the last wait returned.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the last wait returned none (a timeout, or an interruption).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

fn mask(interest: Interest) -> u32 {
    let mut bits = 0;
    if interest.readable {
        bits |= sys::EPOLLIN;
    }
    if interest.writable {
        bits |= sys::EPOLLOUT;
    }
    if interest.exclusive {
        bits |= sys::EPOLLEXCLUSIVE;
    }
    if interest.peer_close {
        bits |= sys::EPOLLRDHUP;
    }
    if interest.edge {
        // With edge triggering, also ask for the peer's half-close, so a FIN is its own edge.
        bits |= libc::EPOLLET | sys::EPOLLRDHUP;
    }
    bits as u32
}

impl Epoll {
    /// epoll_create1(EPOLL_CLOEXEC).
    pub fn new() -> io::Result<Epoll> {
        Ok(Epoll { fd: Some(sys::epoll_create1(sys::EPOLL_CLOEXEC)?) })
    }

    /// epoll_ctl(ADD): watch `fd` for `interest`; its events carry `token`.
    pub fn add(&self, fd: &impl AsFd, token: Token, interest: Interest) -> io::Result<()> {
        sys::epoll_ctl(self.as_fd(), sys::EPOLL_CTL_ADD, fd.as_fd(), mask(interest), token.0 as u64)
    }

    /// epoll_ctl(MOD): change what `fd` is watched for.
    pub fn modify(&self, fd: &impl AsFd, token: Token, interest: Interest) -> io::Result<()> {
        sys::epoll_ctl(self.as_fd(), sys::EPOLL_CTL_MOD, fd.as_fd(), mask(interest), token.0 as u64)
    }

    /// epoll_ctl(DEL): stop watching `fd` (closing the last descriptor of a socket does it too).
    pub fn delete(&self, fd: &impl AsFd) -> io::Result<()> {
        sys::epoll_ctl(self.as_fd(), sys::EPOLL_CTL_DEL, fd.as_fd(), 0, 0)
    }

    /// epoll_wait: fills `events` with what is ready, waiting at most `timeout` (`None`: until
    /// something is). An interrupted wait returns with no events.
    pub fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        events.len = match sys::epoll_wait(self.as_fd(), &mut events.buf, timeout_ms(timeout)) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            result => result?,
        };
        Ok(())
    }
}

impl AsFd for Epoll {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.fd {
            Some(fd) => fd.as_fd(),
            None => unreachable!("epoll used after drop"),
        }
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        if let Some(fd) = self.fd.take() {
            // Through sys, so the close is narrated like every other.
            let _ = crate::sys::close(fd);
        }
    }
}
