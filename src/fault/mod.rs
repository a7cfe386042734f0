//! Floor 4: network faults for tests, applied by a TCP proxy that sits between a client and a
//! server (smoltcp's `phy` middleware shape: the faulty stream serves the same bytes it wraps).
//!
//! ```text
//! spec.rs    what a fault is, and its text syntax (`latency=50ms`, `downstream:slicer=10b:2ms@50%`)
//! pipe.rs    one direction of a connection: read, shape by the faults, queue, write when due
//! proxy.rs   the loop: one thread, one epoll, two nonblocking sockets and two pipes per client
//! rng.rs     the dice for probabilities and jitter
//! ```
//!
//! A proxy only sees bytes, so it makes the faults of the byte stream: delays, slow links, short
//! reads, resets, stalls. Packet loss, a SYN that is never answered and a pulled cable need the
//! kernel's help: see `socklab netns`.
//!
//! The fixtures that run this loop on a thread are in `crate::fixture`.

mod pipe;
pub mod proxy;
mod rng;
pub mod spec;

pub use proxy::{Control, NamedError, Stats};
pub use spec::{Direction, Fault, Kind, ResetAfter, SpecError};
