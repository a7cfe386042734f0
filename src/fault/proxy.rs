//! The faulty proxy's loop: one thread, one epoll instance; per client two nonblocking sockets
//! (the accepted one and one connected to the upstream) and two pipes (`pipe.rs`) between them.
//!
//! ```text
//! epoll_ctl(ADD, wake line); epoll_ctl(ADD, listener)        (not while `refuse` is set)
//! loop {
//!     epoll_wait(until the first chunk, FIN or fault clock is due)
//!     wake line:  stop requested → return (dropping the links closes them);
//!                 otherwise the faults changed → roll them again for every link
//!     listener:   accept until EAGAIN; socket + nonblocking connect to the upstream
//!     a socket:   recv into its pipe (client → upstream is "upstream", the reverse "downstream")
//!     then, for every link touched or due:  send what is due, pass FINs on, apply the
//!                 faults' verdicts (RST, close), and watch each socket for what its pipes need
//! }
//! ```
//!
//! A socket whose pipes need nothing (a full queue) is removed from the epoll instance rather than
//! watched for nothing: epoll reports hang-ups and errors even then, and a loop that does not act
//! on them would spin. A `half_open` source is watched for its peer's FIN alone (`EPOLLRDHUP`).
//!
//! A link ends when both directions have passed their FIN on, when one direction's fault holds
//! everything back and its source has ended too (half_open: both peers gone), when a timeout's
//! source closes (Toxiproxy's timeout drains until then), or when a fault's verdict says so: no
//! descriptor outlives the peers it served.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::pipe::{Active, End, Pipe};
use super::rng::Rng;
use super::spec::{Fault, Kind};
use crate::SockAddr;
use crate::echo::accept::{Burst, accept_burst};
use crate::echo::{Event, Sink, Stop};
use crate::ready::{self, Epoll, Events, Interest, Token};
use crate::socket::{Connect, Domain, Socket, Type};
use crate::tcp::{TcpListener, TcpStream};

const LISTENER: Token = Token(usize::MAX);
const WAKE: Token = Token(usize::MAX - 1);
/// How long a half_open link's socket whose peer sent its FIN waits between keepalive probes.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(5);

/// What epoll said about one socket of a link.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    /// Something to read: bytes, a FIN, a hang-up or an error (a recv will tell).
    read: bool,
    /// The peer's FIN or a hang-up (`EPOLLRDHUP`, `EPOLLHUP`), or an error.
    hangup: bool,
    /// Any event at all (a writable socket too).
    any: bool,
}

/// A link's entry in the loop's to-do list when no socket event named it (new, or a clock is due).
const NO_EVENT: [Seen; 2] = [Seen { read: false, hangup: false, any: false }; 2];

/// What a running proxy counted so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections accepted from clients.
    pub accepted: u64,
    /// Client connections open now.
    pub open: u64,
    /// Bytes received from clients.
    pub bytes_in: u64,
    /// Bytes sent to clients.
    pub bytes_out: u64,
    /// Faults that won their roll, counted once per connection and direction they act on.
    pub faults_applied: u64,
}

/// Why a change to one named fault was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedError {
    /// `add_fault`: a fault of this name is already in force (update or remove it instead).
    Exists(String),
    /// `update_fault`, `remove_fault`: no fault of this name is in force.
    Unknown(String),
}

impl fmt::Display for NamedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NamedError::Exists(name) => {
                write!(f, "a fault named '{name}' is already set: update or remove it, or pick another name")
            }
            NamedError::Unknown(name) => write!(f, "no fault named '{name}' is set"),
        }
    }
}

impl std::error::Error for NamedError {}

/// The faults in force, each with its name (the loop reads `faults` alone).
#[derive(Debug, Default)]
struct Table {
    names: Vec<String>,
    faults: Arc<Vec<Fault>>,
}

impl Table {
    fn named(faults: Vec<Fault>) -> Table {
        let mut names: Vec<String> = Vec::with_capacity(faults.len());
        for fault in &faults {
            let base = fault.default_name();
            let mut name = base.clone();
            let mut n = 2;
            while names.contains(&name) {
                name = format!("{base}_{n}");
                n += 1;
            }
            names.push(name);
        }
        Table { names, faults: Arc::new(faults) }
    }
}

/// What the proxy's owner shares with its loop: the faults in force and the counters.
#[derive(Debug, Default)]
pub struct Control {
    table: Mutex<Table>,
    generation: AtomicU64,
    accepted: AtomicU64,
    open: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    faults_applied: AtomicU64,
}

impl Control {
    /// A control with `faults` in force.
    pub fn new(faults: Vec<Fault>) -> Control {
        Control { table: Mutex::new(Table::named(faults)), ..Control::default() }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the faults; the loop picks them up when woken (see `Proxy::set_faults`). Each
    /// gets its default name (`latency_downstream`; a second one of the same type and direction
    /// `latency_downstream_2`).
    pub fn set_faults(&self, faults: Vec<Fault>) {
        *self.table() = Table::named(faults);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The faults in force with their names, in the order they were added.
    pub fn named_faults(&self) -> Vec<(String, Fault)> {
        let table = self.table();
        table.names.iter().cloned().zip(table.faults.iter().copied()).collect()
    }

    /// Adds one fault under `name`; refused if that name is taken.
    pub fn add_fault(&self, name: &str, fault: Fault) -> Result<(), NamedError> {
        self.edit(|names, faults| {
            if names.iter().any(|n| n == name) {
                return Err(NamedError::Exists(name.to_owned()));
            }
            names.push(name.to_owned());
            faults.push(fault);
            Ok(())
        })
    }

    /// Replaces the fault named `name` (keeping its place in the list).
    pub fn update_fault(&self, name: &str, fault: Fault) -> Result<(), NamedError> {
        self.edit(|names, faults| {
            let i = names.iter().position(|n| n == name).ok_or_else(|| NamedError::Unknown(name.to_owned()))?;
            faults[i] = fault;
            Ok(())
        })
    }

    /// Removes the fault named `name` and returns it.
    pub fn remove_fault(&self, name: &str) -> Result<Fault, NamedError> {
        let mut removed = None;
        self.edit(|names, faults| {
            let i = names.iter().position(|n| n == name).ok_or_else(|| NamedError::Unknown(name.to_owned()))?;
            names.remove(i);
            removed = Some(faults.remove(i));
            Ok(())
        })?;
        removed.ok_or_else(|| NamedError::Unknown(name.to_owned()))
    }

    /// Applies `change` to a copy of the list; on success the copy is put in force.
    fn edit(
        &self,
        change: impl FnOnce(&mut Vec<String>, &mut Vec<Fault>) -> Result<(), NamedError>,
    ) -> Result<(), NamedError> {
        let mut table = self.table();
        let (mut names, mut faults) = (table.names.clone(), table.faults.as_ref().clone());
        change(&mut names, &mut faults)?;
        *table = Table { names, faults: Arc::new(faults) };
        self.generation.fetch_add(1, Ordering::Release);
        Ok(())
    }

    fn faults(&self) -> Arc<Vec<Fault>> {
        Arc::clone(&self.table().faults)
    }

    /// The counters now.
    pub fn stats(&self) -> Stats {
        let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
        Stats {
            accepted: get(&self.accepted),
            open: get(&self.open),
            bytes_in: get(&self.bytes_in),
            bytes_out: get(&self.bytes_out),
            faults_applied: get(&self.faults_applied),
        }
    }

    fn add(n: &AtomicU64, by: u64) {
        n.fetch_add(by, Ordering::Relaxed);
    }
}

/// One client's connection through the proxy.
#[derive(Debug)]
struct Link {
    client: TcpStream,
    upstream: TcpStream,
    /// The upstream handshake is still going on.
    connecting: bool,
    /// Client → upstream.
    up: Pipe,
    /// Upstream → client.
    down: Pipe,
    /// What each socket is registered for (client, upstream); `None`: not in the epoll instance.
    watched: [Option<Interest>; 2],
}

/// Serves clients of `listener` by forwarding to `upstream` through the faults in `control`, until
/// `stop` is requested. `wake` is the loop's end of a socket pair: the stop switch shuts it down,
/// and a byte on it means "the faults changed". `started` is called once the loop's own
/// descriptors exist (its epoll instance): from then on only links open and close descriptors.
pub fn run(
    listener: &TcpListener,
    upstream: SocketAddr,
    wake: &Socket,
    control: &Control,
    stop: &Stop,
    started: impl FnOnce(),
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let epoll = Epoll::new()?;
    epoll.add(wake, WAKE, Interest::READABLE)?;
    started();
    let mut faults = control.faults();
    let mut generation = control.generation.load(Ordering::Acquire);
    let mut accepting = false;
    let mut paused_until: Option<Instant> = None;
    let mut links: Vec<Option<Link>> = Vec::new();
    let mut rng = Rng::new();
    let mut events = Events::with_capacity(256);
    let mut buf = vec![0u8; 64 * 1024];
    let quiet: Sink = Arc::new(|_: &Event<'_>| {});
    loop {
        // Refuse: the listener leaves the epoll instance, so nobody accepts; the kernel still
        // completes handshakes until the backlog is full, then ignores SYNs (connect times out).
        let refuse = faults.iter().any(|f| f.kind == Kind::Refuse);
        if refuse {
            paused_until = None; // a back-off clock would only wake the loop for nothing
        }
        let want_accept = !refuse && paused_until.is_none_or(|t| t <= Instant::now());
        if want_accept != accepting {
            if want_accept {
                epoll.add(listener, LISTENER, Interest::READABLE)?;
                paused_until = None;
            } else {
                epoll.delete(listener)?;
            }
            accepting = want_accept;
        }
        let due = links.iter().flatten().filter_map(Link::deadline).chain(paused_until).min();
        epoll.wait(&mut events, ready::until(due))?;
        let now = Instant::now();
        // (link slot, what each socket saw); a link may appear more than once.
        let mut touched: Vec<(usize, [Seen; 2])> = Vec::new();
        for event in events.iter() {
            match event.token {
                WAKE => {
                    if stop.requested() {
                        return Ok(()); // dropping `links` closes every connection
                    }
                    while matches!(wake.recv_nowait(&mut buf), Ok(n) if n > 0) {}
                }
                LISTENER => {
                    let take = |client: TcpStream, _peer| {
                        Control::add(&control.accepted, 1);
                        if let Some(link) = Link::open(client, upstream, &faults, now, &mut rng, control) {
                            Control::add(&control.open, 1);
                            let slot = links.iter().position(Option::is_none).unwrap_or_else(|| {
                                links.push(None);
                                links.len() - 1
                            });
                            links[slot] = Some(link);
                            touched.push((slot, NO_EVENT));
                        }
                    };
                    // Accept until the queue is empty. Pause: out of descriptors (EMFILE...); the
                    // connection stays queued and the listener readable, so look again in 10 ms
                    // instead of spinning.
                    if accept_burst(listener, usize::MAX, &quiet, take)? == Burst::Pause {
                        paused_until = Some(now + Duration::from_millis(10));
                    }
                }
                Token(token) => {
                    let hangup = event.hangup || event.error;
                    let seen = Seen { read: event.readable || hangup, hangup, any: true };
                    let mut sides = NO_EVENT;
                    sides[token % 2] = seen;
                    touched.push((token / 2, sides));
                }
            }
        }
        let changed = control.generation.load(Ordering::Acquire);
        if changed != generation {
            generation = changed;
            faults = control.faults();
            for link in links.iter_mut().flatten() {
                link.reroll(&faults, now, &mut rng, control);
            }
        }
        // Links whose clocks are due get a turn too.
        for (slot, link) in links.iter().enumerate() {
            if link.as_ref().and_then(Link::deadline).is_some_and(|d| d <= now) {
                touched.push((slot, NO_EVENT));
            }
        }
        for (slot, seen) in touched {
            let Some(link) = links.get_mut(slot).and_then(Option::as_mut) else { continue };
            let ended = link.pump(seen, now, &mut buf, &mut rng, control).unwrap_or_else(|e| {
                // A peer reset its side: pass the reset on to the other; any other error: close.
                let reset = e.kind() == io::ErrorKind::ConnectionReset;
                Some(if reset { (End::Reset, [true, true]) } else { (End::Close, [false, false]) })
            });
            let alive = match ended {
                None => link.watch(&epoll, slot).is_ok(),
                Some((end, targets)) => {
                    link.end(end, targets);
                    false
                }
            };
            if !alive {
                links[slot] = None; // closing removes both sockets from the epoll instance
                control.open.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

impl Link {
    /// A link for a client just accepted: a nonblocking connect to the upstream starts. `None` when
    /// that fails at once (the client is closed).
    fn open(
        client: TcpStream,
        upstream: SocketAddr,
        faults: &[Fault],
        now: Instant,
        rng: &mut Rng,
        control: &Control,
    ) -> Option<Link> {
        let socket = Socket::new(Domain::for_address(&upstream), Type::STREAM.nonblocking(), None).ok()?;
        let connecting = match socket.connect_nonblocking(&SockAddr::from(&upstream)).ok()? {
            Connect::Done => false,
            Connect::InProgress => true,
        };
        let upstream = TcpStream::from_socket(socket);
        let _ = upstream.set_nodelay(true);
        let mut link = Link {
            client,
            upstream,
            connecting,
            up: Pipe::new(Active::default(), now),
            down: Pipe::new(Active::default(), now),
            watched: [None, None],
        };
        link.reroll(faults, now, rng, control);
        Some(link)
    }

    fn reroll(&mut self, faults: &[Fault], now: Instant, rng: &mut Rng, control: &Control) {
        let (up, n_up) = Active::roll(faults, true, rng);
        let (down, n_down) = Active::roll(faults, false, rng);
        self.up.set_active(up, now);
        self.down.set_active(down, now);
        Control::add(&control.faults_applied, n_up + n_down);
    }

    fn deadline(&self) -> Option<Instant> {
        self.up.deadline().into_iter().chain(self.down.deadline()).min()
    }

    /// Reads what the events said is there, sends what is due, passes FINs on. Returns how the
    /// link ends, if it does, and which sockets (client, upstream) get the RST of a reset.
    fn pump(
        &mut self,
        seen: [Seen; 2],
        now: Instant,
        buf: &mut [u8],
        rng: &mut Rng,
        control: &Control,
    ) -> io::Result<Option<(End, [bool; 2])>> {
        if self.connecting && seen[1].any {
            // The upstream socket was watched for writable only: the handshake ended, and SO_ERROR
            // says how (ECONNREFUSED...).
            if let Some(e) = self.upstream.take_error()? {
                return Err(e);
            }
            self.connecting = false;
        }
        // half_open reads nothing; the socket is watched for its peer's FIN alone (EPOLLRDHUP), so
        // that a link both of whose peers have gone can be let go.
        for (socket, pipe, seen) in [(&self.client, &mut self.up, seen[0]), (&self.upstream, &mut self.down, seen[1])] {
            if !(seen.hangup && pipe.half_open()) {
                continue;
            }
            let error = socket.take_error()?;
            if pipe.gone {
                // After its FIN, an error or hang-up is the peer's socket gone for good: a
                // keepalive probe met an RST (a peer that closed, not one that half-closed and
                // still reads). Nothing more can reach it: the link ends.
                return Ok(Some((End::Close, [false, false])));
            }
            if let Some(e) = error {
                return Err(e);
            }
            pipe.gone = true;
            // Its FIN came, unread: the peer closed, or only half-closed and still reads. A cut
            // cable tells it nothing either way, so the socket is kept, with keepalive probes: a
            // half-closed peer answers them; a closed one's kernel drops its socket after
            // tcp_fin_timeout (60 s), and then answers a probe with an RST.
            let _ = socket.socket().set_keepalive_probes(KEEPALIVE_IDLE, KEEPALIVE_IDLE, 5);
        }
        if seen[0].read && self.up.wants_read() {
            let room = self.up.room().min(buf.len());
            let n = read(&self.client, &mut buf[..room], &mut self.up)?;
            Control::add(&control.bytes_in, n as u64);
            self.up.take(&buf[..n], now, rng);
        }
        if seen[1].read && !self.connecting && self.down.wants_read() {
            let room = self.down.room().min(buf.len());
            let n = read(&self.upstream, &mut buf[..room], &mut self.down)?;
            self.down.take(&buf[..n], now, rng);
        }
        if !self.connecting {
            self.up.write(&self.upstream, now)?;
            self.up.finish(&self.upstream, now)?;
        }
        let sent = self.down.write(&self.client, now)?;
        Control::add(&control.bytes_out, sent as u64);
        self.down.finish(&self.client, now)?;
        // reset_peer on the downstream resets the client; on the upstream, the upstream server.
        if let Some(end) = self.down.verdict(now) {
            return Ok(Some((end, [true, false])));
        }
        if let Some(end) = self.up.verdict(now) {
            return Ok(Some((end, [false, true])));
        }
        // A timeout drains its source until that closes, then closes the link; and once each
        // direction has passed its FIN on, or its source ended behind a fault that holds
        // everything back, nothing will ever cross the link again.
        let over = self.up.drained() || self.down.drained() || (self.up.done() && self.down.done());
        Ok(over.then_some((End::Close, [false, false])))
    }

    /// Registers each socket for what its pipes need now (or removes it: see the module doc).
    fn watch(&mut self, epoll: &Epoll, slot: usize) -> io::Result<()> {
        // A half_open source: watched for its peer's FIN; after it, for errors alone (the RST a
        // keepalive probe meets once the peer's socket is gone).
        let half = |pipe: &Pipe| match (pipe.half_open(), pipe.gone) {
            (true, false) => Watch::PeerClose,
            (true, true) => Watch::Errors,
            (false, _) => Watch::Nothing,
        };
        let client = interest(self.up.wants_read(), self.down.blocked, half(&self.up));
        let upstream = if self.connecting {
            Some(Interest::WRITABLE)
        } else {
            interest(self.down.wants_read(), self.up.blocked, half(&self.down))
        };
        for (i, (socket, want)) in [(&self.client, client), (&self.upstream, upstream)].into_iter().enumerate() {
            let token = Token(slot * 2 + i);
            match (self.watched[i], want) {
                (None, Some(w)) => epoll.add(socket, token, w)?,
                (Some(_), None) => epoll.delete(socket)?,
                (Some(old), Some(w)) if old != w => epoll.modify(socket, token, w)?,
                _ => {}
            }
            self.watched[i] = want;
        }
        Ok(())
    }

    /// Prepares the close (the caller drops the link): for a reset, the `targets` (client,
    /// upstream) get an RST: SO_LINGER with a zero timeout makes close(2) abort the connection
    /// instead of sending a FIN.
    fn end(&mut self, end: End, targets: [bool; 2]) {
        if end == End::Reset {
            for (socket, reset) in [(&self.client, targets[0]), (&self.upstream, targets[1])] {
                if reset {
                    let _ = socket.set_linger(Some(Duration::ZERO));
                }
            }
        }
    }
}

/// What a socket is watched for besides its pipes' reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Watch {
    Nothing,
    /// Its peer's FIN (`EPOLLRDHUP`).
    PeerClose,
    /// Errors and hang-ups only (always reported; `Interest::NONE` keeps it registered for them).
    Errors,
}

fn interest(read: bool, write: bool, watch: Watch) -> Option<Interest> {
    let interest = match (read, write) {
        (true, true) => Interest::READABLE.and_writable(),
        (true, false) => Interest::READABLE,
        (false, true) => Interest::WRITABLE,
        (false, false) => Interest::NONE,
    };
    match (read || write, watch) {
        (_, Watch::PeerClose) => Some(interest.and_peer_close()),
        (true, _) | (false, Watch::Errors) => Some(interest),
        (false, Watch::Nothing) => None,
    }
}

/// One recv into `buf` for `pipe`; 0 means the source sent its FIN (recorded in the pipe).
fn read(source: &TcpStream, buf: &mut [u8], pipe: &mut Pipe) -> io::Result<usize> {
    match source.recv(buf) {
        Ok(0) => {
            pipe.eof = true;
            Ok(0)
        }
        Ok(n) => Ok(n),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
        Err(e) => Err(e),
    }
}
