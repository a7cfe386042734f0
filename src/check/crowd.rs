//! Many clients at once, on one thread and one epoll instance (as `bench` drives its connections):
//! each connects, sends its own bytes, checks its echo, and then either stays open until every
//! other client has its echo too (`hold`: are they served at the same time?) or half-closes and
//! waits for the server's FIN (a storm: is every one of them served in the end?).

use std::io;
use std::time::{Duration, Instant};

use crate::ready::{Epoll, Events, Interest, Token};
use crate::socket::{Connect, Socket, Type};

use super::flow::{Peer, describe, left};

/// What to do.
#[derive(Debug, Clone)]
pub struct Crowd {
    /// Clients.
    pub clients: usize,
    /// Bytes each sends.
    pub each: usize,
    /// Keep every connection open until all are echoed (true), or close each when done (false).
    pub hold: bool,
    /// Give up when nothing moved for this long.
    pub stall: Duration,
    /// Seed for the bytes.
    pub seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Connecting,
    Echoing,
    Closing,
    Done,
    Failed,
}

struct Client {
    socket: Option<Socket>,
    state: State,
    sent: usize,
    received: usize,
    base: usize,
}

/// How the crowd went.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Connections established.
    pub connected: usize,
    /// Clients whose whole echo came back (and, without `hold`, the server's FIN after it).
    pub served: usize,
    /// Most clients holding a complete echo while all were still open (with `hold`).
    pub served_at_once: usize,
    /// Connects refused or failed.
    pub refused: usize,
    /// Connections reset or failing after connect.
    pub errors: usize,
    /// Echoes that differed from what was sent.
    pub mismatches: usize,
    /// Clients still waiting when the crowd gave up.
    pub waiting: usize,
    /// The first error, for the report.
    pub first_error: Option<String>,
    /// How long it took.
    pub elapsed: Duration,
    /// It ended because nothing moved for `stall`.
    pub stalled: bool,
}

impl Tally {
    /// One line for `observed`.
    pub fn says(&self, clients: usize) -> String {
        let mut text = format!(
            "{} of {clients} clients connected, {} served in {:.2} s",
            self.connected,
            self.served,
            self.elapsed.as_secs_f64()
        );
        for (n, what) in [
            (self.refused, "connects failed"),
            (self.errors, "connections failed"),
            (self.mismatches, "echoes differed"),
            (self.waiting, "still waiting"),
        ] {
            if n > 0 {
                text.push_str(&format!(", {n} {what}"));
            }
        }
        if let Some(e) = &self.first_error {
            text.push_str(&format!(" (first: {e})"));
        }
        text
    }
}

/// Runs the crowd against `peer` until every client is done or failed, nothing moved for
/// `crowd.stall`, or `deadline`.
pub fn run(peer: &Peer, crowd: &Crowd, deadline: Instant) -> io::Result<Tally> {
    let started = Instant::now();
    let epoll = Epoll::new()?;
    let mut rng = super::cases::Rng::new(crowd.seed);
    let data = rng.bytes(crowd.each + 8192);
    let mut clients: Vec<Client> = Vec::with_capacity(crowd.clients);
    let mut tally = Tally::default();
    let addr = match peer {
        Peer::Tcp(a) => crate::SockAddr::from(*a),
        Peer::Unix(a) => *a,
    };
    let domain = match peer {
        Peer::Tcp(a) => crate::Domain::for_address(a),
        Peer::Unix(_) => crate::Domain::UNIX,
    };
    for i in 0..crowd.clients {
        let mut client = Client { socket: None, state: State::Failed, sent: 0, received: 0, base: (i * 7919) % 8192 };
        let socket = Socket::new(domain, Type::STREAM.nonblocking(), None)?;
        match socket.connect_nonblocking(&addr) {
            Ok(Connect::Done) => {
                tally.connected += 1;
                client.state = State::Echoing;
            }
            Ok(Connect::InProgress) => client.state = State::Connecting,
            // A Unix listener with a full queue says EAGAIN at once; TCP's SYNs wait instead.
            Err(e) => {
                tally.refused += 1;
                tally.first_error.get_or_insert_with(|| format!("connect: {}", describe(&e)));
                clients.push(client);
                continue;
            }
        }
        epoll.add(&socket, Token(i), Interest::READABLE.and_writable())?;
        client.socket = Some(socket);
        clients.push(client);
    }
    let mut events = Events::with_capacity(1024);
    let mut last_progress = Instant::now();
    loop {
        let open =
            clients.iter().filter(|c| matches!(c.state, State::Connecting | State::Echoing | State::Closing)).count();
        let echoed = clients.iter().filter(|c| c.received == crowd.each && c.state != State::Failed).count();
        if crowd.hold {
            tally.served_at_once = tally.served_at_once.max(echoed);
        }
        if open == 0 || (crowd.hold && echoed + tally.refused + tally.errors + tally.mismatches >= crowd.clients) {
            break;
        }
        let now = Instant::now();
        if now >= deadline || now.duration_since(last_progress) >= crowd.stall {
            tally.stalled = now < deadline;
            break;
        }
        let wake = deadline.min(last_progress + crowd.stall);
        epoll.wait(&mut events, Some(left(wake).max(Duration::from_millis(1))))?;
        for event in events.iter() {
            let i = event.token.0;
            let client = &mut clients[i];
            let Some(socket) = &client.socket else { continue };
            if client.state == State::Connecting {
                match socket.take_error() {
                    Ok(None) if event.writable => {
                        tally.connected += 1;
                        client.state = State::Echoing;
                        last_progress = Instant::now();
                    }
                    Ok(None) => continue,
                    Ok(Some(e)) | Err(e) => {
                        tally.refused += 1;
                        tally.first_error.get_or_insert_with(|| format!("connect: {}", describe(&e)));
                        client.state = State::Failed;
                        client.socket = None;
                        continue;
                    }
                }
            }
            match step(client, &data, crowd, &epoll, Token(i)) {
                Ok(moved) => {
                    if moved {
                        last_progress = Instant::now();
                    }
                }
                Err(Failure::Mismatch) => {
                    tally.mismatches += 1;
                    tally.first_error.get_or_insert_with(|| "the echo differs from what was sent".into());
                    client.state = State::Failed;
                    client.socket = None;
                }
                Err(Failure::Io(call, e)) => {
                    tally.errors += 1;
                    tally.first_error.get_or_insert_with(|| format!("{call}: {}", describe(&e)));
                    client.state = State::Failed;
                    client.socket = None;
                }
            }
        }
    }
    tally.served =
        clients.iter().filter(|c| c.state == State::Done || (crowd.hold && c.received == crowd.each)).count();
    tally.waiting = clients
        .iter()
        .filter(|c| matches!(c.state, State::Connecting | State::Echoing | State::Closing) && c.received < crowd.each)
        .count();
    tally.elapsed = started.elapsed();
    Ok(tally)
}

enum Failure {
    Mismatch,
    Io(&'static str, io::Error),
}

/// Moves one client on as far as its socket allows. `Ok(true)` when a byte moved.
fn step(client: &mut Client, data: &[u8], crowd: &Crowd, epoll: &Epoll, token: Token) -> Result<bool, Failure> {
    let Some(socket) = &client.socket else { return Ok(false) };
    let mut moved = false;
    let mine = &data[client.base..client.base + crowd.each];
    if client.state == State::Echoing && client.sent < crowd.each {
        match socket.send(&mine[client.sent..]) {
            Ok(n) => {
                client.sent += n;
                moved |= n > 0;
                if client.sent == crowd.each {
                    // Nothing more to write: stop asking for writability (level-triggered).
                    epoll.modify(socket, token, Interest::READABLE).map_err(|e| Failure::Io("epoll_ctl", e))?;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(Failure::Io("send", e)),
        }
    }
    let mut buf = [0u8; 8192];
    loop {
        match socket.recv_nowait(&mut buf) {
            Ok(0) => {
                if client.state == State::Closing && client.received == crowd.each {
                    client.state = State::Done;
                    client.socket = None;
                    return Ok(true);
                }
                return Err(Failure::Io(
                    "recv",
                    io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed before the whole echo"),
                ));
            }
            Ok(n) => {
                moved = true;
                let from = client.received;
                if from + n > crowd.each || buf[..n] != mine[from..from + n] {
                    return Err(Failure::Mismatch);
                }
                client.received += n;
                if client.received == crowd.each && !crowd.hold && client.state == State::Echoing {
                    socket.shutdown(std::net::Shutdown::Write).map_err(|e| Failure::Io("shutdown", e))?;
                    client.state = State::Closing;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(moved),
            Err(e) => return Err(Failure::Io("recv", e)),
        }
    }
}
