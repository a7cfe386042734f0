//! [`PollSet`]: poll(2) over a list the caller rebuilds before each wait.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use super::{Interest, Readiness, Token, timeout_ms};
use crate::sys::{self, POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, PollFd};

/// The descriptors of one poll(2) call and, after it, what the kernel said about each.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use socklab::ready::{Interest, PollSet, Token};
/// use socklab::{TcpListener, TcpStream};
///
/// let listener = TcpListener::bind(&"127.0.0.1:0".parse()?)?;
/// let client = TcpStream::connect(&listener.local_addr()?)?;
/// let (conn, _) = listener.accept()?;
/// client.send_all(b"Hello")?;
/// // poll(2) takes the whole list each time: rebuild it, wait, read what is ready.
/// let mut set = PollSet::new();
/// set.push(&listener, Token(0), Interest::READABLE);
/// set.push(&conn, Token(1), Interest::READABLE);
/// set.wait(Some(Duration::from_secs(5)))?;
/// let ready: Vec<Token> = set.ready().filter(|r| r.readable).map(|r| r.token).collect();
/// assert_eq!(ready, [Token(1)]); // the connection has data; nobody else is connecting
/// let mut buf = [0u8; 16];
/// let n = conn.recv(&mut buf)?;
/// conn.send_all(&buf[..n])?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct PollSet {
    fds: Vec<PollFd>,
    tokens: Vec<Token>,
}

impl PollSet {
    /// An empty set.
    pub fn new() -> PollSet {
        PollSet::default()
    }

    /// Empties the set, keeping its memory, for the next round.
    pub fn clear(&mut self) {
        self.fds.clear();
        self.tokens.clear();
    }

    /// Adds `fd` for `interest` (`Interest::NONE`: only hang-ups and errors), reported as `token`.
    pub fn push(&mut self, fd: &impl AsFd, token: Token, interest: Interest) {
        let mut events = 0;
        if interest.is_readable() {
            events |= POLLIN;
        }
        if interest.is_writable() {
            events |= POLLOUT;
        }
        self.fds.push(PollFd { fd: fd.as_fd().as_raw_fd(), events, revents: 0 });
        self.tokens.push(token);
    }

    /// How many descriptors are in the set.
    pub fn len(&self) -> usize {
        self.fds.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.fds.is_empty()
    }

    /// poll(2): waits at most `timeout` (`None`: until something is ready). An interrupted wait
    /// returns with nothing ready.
    pub fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        for fd in &mut self.fds {
            fd.revents = 0;
        }
        match sys::poll(&mut self.fds, timeout_ms(timeout)) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            result => result.map(drop),
        }
    }

    /// What the last wait reported for entry `i` (in the order pushed).
    pub fn readiness(&self, i: usize) -> Readiness {
        let (revents, token) = (self.fds[i].revents, self.tokens[i]);
        Readiness {
            token,
            readable: revents & POLLIN != 0,
            writable: revents & POLLOUT != 0,
            hangup: revents & POLLHUP != 0,
            error: revents & (POLLERR | POLLNVAL) != 0,
        }
    }

    /// Every entry that has something to report after the last wait.
    pub fn ready(&self) -> impl Iterator<Item = Readiness> + '_ {
        (0..self.fds.len()).map(|i| self.readiness(i)).filter(Readiness::any)
    }
}
