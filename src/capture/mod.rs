//! Floor 4: watch the TCP segments on the loopback interface, the way `tcpdump -i lo` does.
//!
//! An `AF_PACKET` socket bound to `lo` gets a copy of every frame the interface carries. On `lo`
//! each frame passes the tap twice (once going out, once coming in); `PACKET_IGNORE_OUTGOING` keeps
//! only the incoming copy, which is also the one tcpdump shows. Each frame's kernel time stamp
//! (`SIOCGSTAMPNS`, CLOCK_REALTIME) is turned into CLOCK_MONOTONIC so it can be merged with the
//! syscall narration of other processes, with the two clocks' difference read again for each
//! frame: CLOCK_REALTIME is the one time synchronisation moves (measured on a VM being brought to
//! the host's time: 5 ms a second), so a difference read once at the start would place a
//! second's later segments milliseconds after the calls that sent them.
//!
//! Opening the socket needs CAP_NET_RAW: without it [`Capture::start_loopback`] fails with
//! `EPERM`, and [`no_permission_help`] says how to get it.

pub mod parse;

use crate::process::SpawnCounted;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub use parse::{Flags, Segment};

use crate::SockAddr;
use crate::clock::{monotonic_ns, realtime_ns};
use crate::socket::{Domain, Protocol, Socket, Type};

/// A segment and when the kernel saw it (CLOCK_MONOTONIC nanoseconds, as [`crate::clock::monotonic_ns`]).
#[derive(Debug, Clone)]
pub struct Captured {
    /// Kernel time stamp.
    pub t_ns: u64,
    /// The parsed segment.
    pub segment: Segment,
}

/// A running capture on `lo`. [`stop`](Capture::stop) ends it and returns what it saw.
#[derive(Debug)]
pub struct Capture {
    /// When the stop was requested (CLOCK_MONOTONIC ns); 0 while running.
    stop_at: Arc<AtomicU64>,
    thread: JoinHandle<(Vec<Captured>, u32)>,
}

/// The longest a capture runs, whatever its caller does: bounds the reading loop (a walkthrough
/// with the longest accept delay, one hour, fits).
const MAX_RUN: Duration = Duration::from_secs(2 * 3600);

/// What to tell a user whose capture failed for lack of CAP_NET_RAW; `exe` is the binary's path.
pub fn no_permission_help(exe: &str) -> String {
    format!(
        "capturing packets needs CAP_NET_RAW (opening an AF_PACKET socket failed with EPERM); run as root, or \
         give the binary the capability once: sudo setcap cap_net_raw+ep {exe}"
    )
}

/// Is this the error of a capture that lacked the privilege?
pub fn is_permission_error(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EPERM | libc::EACCES))
}

impl Capture {
    /// Opens the packet socket on `lo` and starts reading on a thread. Frames are queued by the
    /// kernel from the moment this returns, so start it before the traffic you want to see.
    pub fn start_loopback() -> io::Result<Capture> {
        Capture::start_socket(open(loopback_index(), true)?)
    }

    /// Like [`start_loopback`](Capture::start_loopback) on the interface with index `ifindex`
    /// (of the calling thread's network namespace), keeping both directions: on a veth, unlike
    /// `lo`, what goes out and what comes in are different segments, as `tcpdump -i DEV` shows.
    pub fn start_interface(ifindex: i32) -> io::Result<Capture> {
        Capture::start_socket(open(ifindex, false)?)
    }

    fn start_socket(socket: Socket) -> io::Result<Capture> {
        let stop_at = Arc::new(AtomicU64::new(0));
        let flag = Arc::clone(&stop_at);
        let thread =
            thread::Builder::new().name("socklab-capture".into()).spawn_counted(move || read_frames(&socket, &flag))?;
        Ok(Capture { stop_at, thread })
    }

    /// Stops reading (within one receive timeout) and returns the TCP segments seen, in order,
    /// and how many frames the kernel dropped because the socket's buffer was full.
    pub fn stop(self) -> (Vec<Captured>, u32) {
        self.stop_at.store(monotonic_ns().max(1), Ordering::Release);
        self.thread.join().unwrap_or_default()
    }
}

fn open(ifindex: i32, ignore_outgoing: bool) -> io::Result<Socket> {
    let socket = Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::ALL_FRAMES))?;
    // On lo the copy going out and the copy coming in are the same segment: keep one (Linux 4.20+).
    if ignore_outgoing {
        let _ = socket.set_packet_ignore_outgoing(true);
    }
    // A big buffer, so a burst of other traffic on lo does not make the kernel drop our frames
    // (SO_RCVBUFFORCE passes net.core.rmem_max when we are privileged, which capturing needs anyway).
    if socket.set_recv_buffer_size_force(8 << 20).is_err() {
        let _ = socket.set_recv_buffer_size(8 << 20);
    }
    // A short receive timeout lets the reading thread notice a stop request.
    socket.set_read_timeout(Some(Duration::from_millis(20)))?;
    socket.bind(&SockAddr::packet_all(ifindex))?;
    // The first SIOCGSTAMPNS turns kernel time stamping on (it fails: nothing was received yet).
    let _ = socket.last_frame_time();
    Ok(socket)
}

/// `lo`'s interface index, from sysfs (it is 1 on Linux unless someone renumbered it).
fn loopback_index() -> i32 {
    crate::file::read_to_string(std::path::Path::new("/sys/class/net/lo/ifindex"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1)
}

/// CLOCK_MONOTONIC minus CLOCK_REALTIME, in nanoseconds, read back to back.
fn realtime_to_monotonic_offset() -> i128 {
    let mono1 = i128::from(monotonic_ns());
    let real = i128::from(realtime_ns());
    let mono2 = i128::from(monotonic_ns());
    (mono1 + mono2) / 2 - real
}

fn read_frames(socket: &Socket, stop_at: &AtomicU64) -> (Vec<Captured>, u32) {
    let started = Instant::now();
    let mut buf = vec![0u8; 65536];
    let mut seen = Vec::new();
    // After the stop request, frames still queued that the kernel saw *before* it are read too;
    // the first later one (or an empty queue) ends the loop, even if lo never goes quiet.
    while started.elapsed() < MAX_RUN {
        let n = match socket.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if stop_at.load(Ordering::Acquire) != 0 {
                    break;
                }
                continue;
            }
            Err(_) => break,
        };
        // The difference as it is now, a moment after the kernel stamped the frame.
        let offset = realtime_to_monotonic_offset();
        let t_ns = match socket.last_frame_time() {
            Ok((sec, nsec)) => (i128::from(sec) * 1_000_000_000 + i128::from(nsec) + offset).max(0) as u64,
            Err(_) => monotonic_ns(),
        };
        let stop = stop_at.load(Ordering::Acquire);
        if stop != 0 && t_ns > stop {
            break;
        }
        // Frames that are not TCP over IP (ARP, UDP...) are simply not ours to show.
        if let Ok(segment) = parse::ethernet(&buf[..n]) {
            seen.push(Captured { t_ns, segment });
        }
    }
    // Frames the kernel could not queue for us.
    let drops = socket.packet_statistics().map_or(0, |(_, drops)| drops);
    (seen, drops)
}
