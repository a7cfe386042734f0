//! Exact packet faults through a netfilter queue: drop the Nth segment of a kind, hold one back
//! until the next has passed (reorder), copy one (duplicate), lose segments at random from a
//! seed, delay every packet — on any kernel, without `netem`.
//!
//! A firewall rule (`iptables-legacy -A OUTPUT -o sl-a -j NFQUEUE --queue-num 0`, and the same on
//! INPUT) hands every packet crossing side A's veth to [`serve`], which looks at its TCP header and
//! answers with a verdict ([`crate::nfqueue`]): accept at once, accept later (a delay), accept
//! after another packet (a reorder), or drop. Directions are seen from the namespace the queue
//! serves: `out` is a packet that namespace sends (side A to side B), `in` one it receives.
//!
//! What this cannot do, and says: faults apply to TCP over IPv4 (the pair's addresses); a segment
//! is counted when it *reaches the queue*, so a retransmission is counted again (`data#1` and
//! `data#2` drop a segment and its first retransmission when nothing else is in flight); a copy
//! (duplicate) is sent through a raw socket from the queue's namespace: an outgoing one crosses
//! the veth, an incoming one reaches the namespace's TCP over `lo`, unseen by the veth's capture.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::nfqueue::{Hook, NfQueue, Queued, Verdict};
use crate::socket::{Domain, Protocol, Socket, Type};
use crate::sys::SockAddr;

/// A packet's direction, seen from the namespace the queue serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Sent by this namespace (side A to side B in `socklab netns`).
    Out,
    /// Received by this namespace (side B to side A).
    In,
}

impl fmt::Display for Dir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if *self == Dir::Out { "out" } else { "in" })
    }
}

/// A kind of TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SYN without ACK: the first segment of a handshake.
    Syn,
    /// SYN+ACK: the server's answer.
    SynAck,
    /// A segment carrying payload bytes (whatever its flags).
    Data,
    /// A pure acknowledgement: no payload, no SYN, FIN or RST.
    Ack,
    /// A segment with FIN.
    Fin,
    /// A segment with RST.
    Rst,
}

impl Kind {
    const NAMES: [(&'static str, Kind); 6] = [
        ("syn", Kind::Syn),
        ("synack", Kind::SynAck),
        ("data", Kind::Data),
        ("ack", Kind::Ack),
        ("fin", Kind::Fin),
        ("rst", Kind::Rst),
    ];

    fn matches(self, s: &Segment) -> bool {
        let (syn, ack, fin, rst) = (s.flags & SYN != 0, s.flags & ACK != 0, s.flags & FIN != 0, s.flags & RST != 0);
        match self {
            Kind::Syn => syn && !ack,
            Kind::SynAck => syn && ack,
            Kind::Data => s.len > 0,
            Kind::Ack => s.len == 0 && ack && !syn && !fin && !rst,
            Kind::Fin => fin,
            Kind::Rst => rst,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = Kind::NAMES.iter().find(|(_, k)| k == self).map_or("?", |(n, _)| n);
        f.write_str(name)
    }
}

/// What a fault does to the segment it picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Dropped: the sender learns nothing.
    Drop,
    /// Held back and let through right after the next segment in its direction (at most 1 s).
    Reorder,
    /// Let through twice.
    Duplicate,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Drop => "drop",
            Action::Reorder => "reorder",
            Action::Duplicate => "duplicate",
        })
    }
}

/// One exact fault: the `nth` segment of `kind` (in `dir`, or either) gets `action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// What happens to it.
    pub action: Action,
    /// Which kind of segment is counted.
    pub kind: Kind,
    /// Counted in this direction only (`None`: both).
    pub dir: Option<Dir>,
    /// The segment picked, counting from 1.
    pub nth: u32,
}

impl Fault {
    /// Parses `KIND[/DIR]#N`: `syn#1`, `data/out#3`, `ack/in#2` (kinds: syn, synack, data, ack,
    /// fin, rst; directions: out, in).
    pub fn parse(action: Action, text: &str) -> Result<Fault, String> {
        let bad = |why: &str| format!("--{action} '{text}': {why}");
        let (what, nth) = text
            .trim()
            .split_once('#')
            .ok_or_else(|| bad("write KIND#N, e.g. syn#1 or data/out#3 (the Nth segment of that kind)"))?;
        let nth: u32 = match nth.parse() {
            Ok(n) if n >= 1 => n,
            _ => return Err(bad(&format!("'{nth}' is not a segment number: count from 1"))),
        };
        let (kind, dir) = match what.split_once('/') {
            Some((k, "out")) => (k, Some(Dir::Out)),
            Some((k, "in")) => (k, Some(Dir::In)),
            Some((_, d)) => return Err(bad(&format!("unknown direction '{d}': use out (sent by side A) or in"))),
            None => (what, None),
        };
        let kind = Kind::NAMES
            .iter()
            .find(|(n, _)| *n == kind)
            .map(|(_, k)| *k)
            .ok_or_else(|| bad(&format!("unknown kind '{kind}': use syn, synack, data, ack, fin or rst")))?;
        Ok(Fault { action, kind, dir, nth })
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.action, self.kind)?;
        if let Some(dir) = self.dir {
            write!(f, "/{dir}")?;
        }
        write!(f, "#{}", self.nth)
    }
}

/// Everything the queue does.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Exact faults, each counting its own kind.
    pub faults: Vec<Fault>,
    /// Every packet waits this long, in each direction (order kept per direction).
    pub delay: Duration,
    /// Plus a uniformly random 0..jitter.
    pub jitter: Duration,
    /// This share (0 to 100 %) of TCP segments is dropped at random...
    pub loss: f64,
    /// ...rolled from this seed, so a run can be repeated exactly.
    pub seed: u64,
}

impl Plan {
    /// Whether the plan does nothing (no queue needed).
    pub fn is_empty(&self) -> bool {
        self.faults.is_empty() && self.delay.is_zero() && self.jitter.is_zero() && self.loss <= 0.0
    }
}

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

/// The TCP header of a queued packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Its direction.
    pub dir: Dir,
    /// Sender.
    pub src: SocketAddrV4,
    /// Receiver.
    pub dst: SocketAddrV4,
    /// TCP flags (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10).
    pub flags: u8,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// Window field (unscaled).
    pub win: u16,
    /// Payload bytes.
    pub len: u32,
}

impl Segment {
    /// Parses an IPv4 packet carrying TCP (`None` for anything else).
    pub fn parse(ip: &[u8], dir: Dir) -> Option<Segment> {
        if ip.len() < 20 || ip[0] >> 4 != 4 || ip[9] != 6 {
            return None;
        }
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
        let tcp = ip.get(ihl..total)?;
        if tcp.len() < 20 {
            return None;
        }
        let doff = usize::from(tcp[12] >> 4) * 4;
        let addr = |a: &[u8], p: &[u8]| {
            SocketAddrV4::new(Ipv4Addr::new(a[0], a[1], a[2], a[3]), u16::from_be_bytes([p[0], p[1]]))
        };
        let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        Some(Segment {
            dir,
            src: addr(&ip[12..16], &tcp[0..2]),
            dst: addr(&ip[16..20], &tcp[2..4]),
            flags: tcp[13],
            seq: be32(&tcp[4..8]),
            ack: be32(&tcp[8..12]),
            win: u16::from_be_bytes([tcp[14], tcp[15]]),
            len: tcp.len().saturating_sub(doff) as u32,
        })
    }

    /// tcpdump's flag letters: `[S.]`, `[P.]`, `[F.]`.
    pub fn flag_letters(&self) -> String {
        let mut s = String::new();
        for (bit, c) in [(FIN, 'F'), (SYN, 'S'), (RST, 'R'), (0x08, 'P')] {
            if self.flags & bit != 0 {
                s.push(c);
            }
        }
        if self.flags & ACK != 0 {
            s.push('.');
        }
        if s.is_empty() { "none".into() } else { s }
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} > {} [{}] seq {}", self.src, self.dst, self.flag_letters(), self.seq)?;
        if self.len > 0 {
            write!(f, ":{}", u64::from(self.seq) + u64::from(self.len))?;
        }
        if self.flags & ACK != 0 {
            write!(f, " ack {}", self.ack)?;
        }
        write!(f, " win {} length {}", self.win, self.len)
    }
}

/// What the queue did to one segment (segments it simply passed or delayed are not recorded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Did {
    /// Dropped by an exact fault.
    Dropped,
    /// Dropped by the random loss.
    Lost,
    /// Held back by a reorder fault.
    Held,
    /// A held segment let through (after the next one, or after 1 s when none came).
    Released,
    /// Let through twice.
    Duplicated,
}

/// One thing the queue did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// When (CLOCK_MONOTONIC, ns): the same clock as the capture's and the timeline's.
    pub at_ns: u64,
    /// The segment.
    pub segment: Segment,
    /// What happened to it.
    pub did: Did,
    /// The fault that picked it (`None`: the random loss, or a release).
    pub fault: Option<Fault>,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let did = match self.did {
            Did::Dropped | Did::Lost => "dropped",
            Did::Held => "held back",
            Did::Released => "released",
            Did::Duplicated => "duplicated",
        };
        write!(f, "{did} {} {}", self.segment.dir, self.segment)?;
        match (self.fault, self.did) {
            (Some(fault), _) => write!(f, " ({fault})"),
            (None, Did::Lost) => f.write_str(" (random loss)"),
            _ => Ok(()),
        }
    }
}

/// splitmix64: a seeded generator, so `--seed` repeats a run's random losses exactly.
#[derive(Debug, Clone)]
struct Dice(u64);

impl Dice {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// How long a reordered segment waits for a successor before it is let through alone.
const REORDER_WAIT: Duration = Duration::from_secs(1);
/// How often the loop looks at `stop` while nothing is due (a stop waits at most this long; under
/// `--trace` each look is one `poll` line).
const TICK: Duration = Duration::from_millis(200);

/// Serves `queue` with `plan` until `stop` is set, calling `on_event` for each fault applied.
/// Packets still held when it stops are let through.
pub fn serve(
    queue: &mut NfQueue,
    plan: &Plan,
    stop: &dyn Fn() -> bool,
    mut on_event: impl FnMut(&Event),
) -> io::Result<()> {
    let mut counts = vec![0u32; plan.faults.len()];
    let mut dice = Dice(plan.seed);
    // Per direction: (due, id) in the order they must leave.
    let mut waiting: [VecDeque<(Instant, u32)>; 2] = [VecDeque::new(), VecDeque::new()];
    // Per direction: a reordered segment waiting for its successor.
    let mut held: [Option<(Instant, u32, Segment)>; 2] = [None, None];
    // Our own outgoing copies come back through the hook; they are not new segments.
    let mut repeats: Vec<Segment> = Vec::new();
    let mut raw: Option<Socket> = None;
    let idx = |d: Dir| if d == Dir::Out { 0 } else { 1 };
    let mut result = Ok(());
    while !stop() {
        let now = Instant::now();
        let next_due = waiting
            .iter()
            .filter_map(|w| w.front().map(|(due, _)| *due))
            .chain(held.iter().flatten().map(|h| h.0 + REORDER_WAIT))
            .min();
        let wait = next_due.map_or(TICK, |due| due.saturating_duration_since(now).min(TICK));
        let packets = match queue.recv(Some(wait)) {
            Ok(p) => p,
            Err(e) => {
                result = Err(e);
                break;
            }
        };
        for Queued { id, hook, payload } in packets {
            let dir = if matches!(hook, Hook::LocalIn | Hook::PreRouting) { Dir::In } else { Dir::Out };
            let Some(seg) = Segment::parse(&payload, dir) else {
                let due = due_after(&waiting[idx(dir)], plan, &mut dice);
                waiting[idx(dir)].push_back((due, id));
                continue;
            };
            if let Some(i) = repeats.iter().position(|r| *r == seg) {
                // The second pass of a duplicated segment: through, uncounted.
                repeats.swap_remove(i);
                queue.verdict(id, Verdict::Accept)?;
                continue;
            }
            let mut picked = None;
            for (i, fault) in plan.faults.iter().enumerate() {
                if fault.kind.matches(&seg) && fault.dir.is_none_or(|d| d == dir) {
                    counts[i] += 1;
                    if counts[i] == fault.nth && picked.is_none() {
                        picked = Some(*fault);
                    }
                }
            }
            let at_ns = crate::clock::monotonic_ns();
            let event = |did, fault| Event { at_ns, segment: seg, did, fault };
            match picked.map(|f| f.action) {
                Some(Action::Drop) => {
                    queue.verdict(id, Verdict::Drop)?;
                    on_event(&event(Did::Dropped, picked));
                    continue;
                }
                Some(Action::Reorder) => {
                    if let Some((_, old, old_seg)) = held[idx(dir)].replace((Instant::now(), id, seg)) {
                        waiting[idx(dir)].push_back((Instant::now(), old));
                        on_event(&Event { at_ns, segment: old_seg, did: Did::Released, fault: None });
                    }
                    on_event(&event(Did::Held, picked));
                    continue;
                }
                Some(Action::Duplicate) => {
                    // The original goes on; a copy follows it through a raw socket (IP_HDRINCL),
                    // sent from this namespace. An outgoing copy crosses the same hook and comes
                    // back here (let through, uncounted); an incoming one is delivered to this
                    // namespace's own TCP over lo, so the veth's capture does not show it.
                    queue.verdict(id, Verdict::Accept)?;
                    if raw.is_none() {
                        raw = Some(Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::RAW_IP))?);
                    }
                    if let Some(raw) = &raw {
                        if dir == Dir::Out {
                            repeats.push(seg);
                        }
                        raw.send_to(
                            &payload,
                            &SockAddr::from(std::net::SocketAddr::V4(SocketAddrV4::new(*seg.dst.ip(), 0))),
                        )?;
                    }
                    on_event(&event(Did::Duplicated, picked));
                    continue;
                }
                None => {}
            }
            if plan.loss > 0.0 && dice.unit() * 100.0 < plan.loss {
                queue.verdict(id, Verdict::Drop)?;
                on_event(&event(Did::Lost, None));
                continue;
            }
            let due = due_after(&waiting[idx(dir)], plan, &mut dice);
            waiting[idx(dir)].push_back((due, id));
            // A held segment leaves right after the one that overtook it.
            if let Some((_, old, old_seg)) = held[idx(dir)].take() {
                waiting[idx(dir)].push_back((due, old));
                on_event(&Event { at_ns, segment: old_seg, did: Did::Released, fault: None });
            }
        }
        let now = Instant::now();
        for d in 0..2 {
            if let Some((since, id, seg)) = held[d]
                && now >= since + REORDER_WAIT
            {
                held[d] = None;
                waiting[d].push_back((now, id));
                on_event(&Event { at_ns: crate::clock::monotonic_ns(), segment: seg, did: Did::Released, fault: None });
            }
            while let Some(&(due, id)) = waiting[d].front() {
                if due > now {
                    break;
                }
                waiting[d].pop_front();
                queue.verdict(id, Verdict::Accept)?;
            }
        }
    }
    // Whatever is still held goes through: stopping the queue must not lose packets.
    for d in 0..2 {
        if let Some((_, id, _)) = held[d].take() {
            waiting[d].push_back((Instant::now(), id));
        }
        for (_, id) in waiting[d].drain(..) {
            let _ = queue.verdict(id, Verdict::Accept);
        }
    }
    result
}

/// When the next packet of a direction may leave: after the delay (and jitter), never before the
/// one ahead of it (a delayed link does not reorder).
fn due_after(ahead: &VecDeque<(Instant, u32)>, plan: &Plan, dice: &mut Dice) -> Instant {
    let jitter = if plan.jitter.is_zero() { Duration::ZERO } else { plan.jitter.mul_f64(dice.unit()) };
    let due = Instant::now() + plan.delay + jitter;
    ahead.back().map_or(due, |(last, _)| due.max(*last))
}

/// A queue served on a thread of its own inside a network namespace; stopped (held packets let
/// through, the socket closed) when dropped.
#[derive(Debug)]
pub struct Served {
    stop: Arc<AtomicBool>,
    events: Arc<Mutex<Vec<Event>>>,
    thread: Option<std::thread::JoinHandle<io::Result<()>>>,
}

impl Served {
    /// Enters the namespace at `netns` (a path such as `/run/netns/NAME`) on a new thread, binds
    /// queue `num` there and serves it with `plan`. Returns once the queue is bound (or failed to).
    pub fn start(netns: &std::path::Path, num: u16, plan: Plan) -> io::Result<Served> {
        let stop = Arc::new(AtomicBool::new(false));
        let events = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (path, thread_stop, thread_events) = (netns.to_path_buf(), stop.clone(), events.clone());
        let thread = std::thread::Builder::new().name("nfqueue".into()).spawn(move || {
            let bound = crate::process::enter_network_namespace(&path).and_then(|()| NfQueue::bind(num));
            let mut queue = match bound {
                Ok(q) => {
                    let _ = ready_tx.send(Ok(()));
                    q
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return Ok(());
                }
            };
            serve(&mut queue, &plan, &|| thread_stop.load(Ordering::Relaxed), |e| {
                thread_events.lock().unwrap_or_else(|p| p.into_inner()).push(*e)
            })
        })?;
        let mut served = Served { stop, events, thread: Some(thread) };
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(served),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(served.finish().err().unwrap_or_else(|| io::Error::other("the queue thread ended"))),
        }
    }

    /// The faults applied so far.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Stops the queue and says whether it served without error.
    pub fn finish(&mut self) -> io::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the queue thread panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_and_bad_ones_say_why() {
        assert_eq!(
            Fault::parse(Action::Drop, "data/out#3"),
            Ok(Fault { action: Action::Drop, kind: Kind::Data, dir: Some(Dir::Out), nth: 3 })
        );
        assert_eq!(
            Fault::parse(Action::Reorder, "syn#1"),
            Ok(Fault { action: Action::Reorder, kind: Kind::Syn, dir: None, nth: 1 })
        );
        assert_eq!(Fault::parse(Action::Drop, "synack/in#2").unwrap().to_string(), "drop synack/in#2");
        for (text, says) in [
            ("syn", "write KIND#N"),
            ("syn#0", "count from 1"),
            ("syn#x", "not a segment number"),
            ("data/up#1", "unknown direction 'up'"),
            ("psh#1", "unknown kind 'psh'"),
        ] {
            let err = Fault::parse(Action::Drop, text).expect_err(text);
            assert!(err.contains(says) && err.contains(text), "{text}: {err}");
        }
    }

    #[test]
    fn a_tcp_header_is_read_and_classified() {
        // IPv4 10.77.0.1 -> 10.77.0.2, TCP 40000 -> 5000, SYN, seq 7, no payload.
        let mut ip = vec![0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 10, 77, 0, 1, 10, 77, 0, 2];
        ip.extend([0x9c, 0x40, 0x13, 0x88, 0, 0, 0, 7, 0, 0, 0, 0, 0x50, SYN, 0xff, 0xff, 0, 0, 0, 0]);
        let s = Segment::parse(&ip, Dir::Out).unwrap();
        assert_eq!(s.to_string(), "10.77.0.1:40000 > 10.77.0.2:5000 [S] seq 7 win 65535 length 0");
        assert!(Kind::Syn.matches(&s) && !Kind::SynAck.matches(&s) && !Kind::Data.matches(&s));
        ip[33] = ACK | 0x08;
        ip[3] = 45;
        ip.extend(b"hello");
        let s = Segment::parse(&ip, Dir::Out).unwrap();
        assert_eq!(s.len, 5);
        assert!(Kind::Data.matches(&s) && !Kind::Ack.matches(&s));
        assert!(Segment::parse(&ip[..30], Dir::Out).is_none(), "a cut header is not a segment");
    }

    #[test]
    fn the_seeded_dice_repeat() {
        let (mut a, mut b) = (Dice(7), Dice(7));
        let rolls: Vec<f64> = (0..100).map(|_| a.unit()).collect();
        assert!(rolls.iter().all(|&r| (0.0..1.0).contains(&r) && r == b.unit()));
        assert!(rolls.iter().filter(|&&r| r < 0.3).count().abs_diff(30) < 20);
    }
}
