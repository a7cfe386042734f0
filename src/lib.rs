//! socklab: sockets at the syscall level.
//!
//! The crate is a house of floors; arrows point down only.
//!
//! ```text
//! top      cli (src/main.rs, src/cli/)  argument parsing and printing only
//! floor 4  walkthrough/  records a session: server + client processes, capture and states
//!          timeline/     the one event model and its renderers; the crate's one JSON writer/reader
//!          echo/         the tutorial's server (model/iterative.rs) and client, the other models
//!          fault/        network faults (latency, slicer, reset...) applied by a TCP proxy loop
//!          fixture/      EchoServer and Proxy: in-process fixtures for other projects' tests
//!          netns/        two network namespaces and a veth: loss, rate, delay, blackhole, unplug
//!          trace/        --trace / --explain / --step: each syscall in strace's words
//!          capture/      TCP segments on lo through AF_PACKET, parsed in safe code
//!          diag/         socket states and queues through NETLINK_SOCK_DIAG (what ss reads)
//!          bench/        the load generator of `socklab bench`
//!          check/        `socklab check`: a conformance and robustness suite for any echo server
//! floor 3  tcp.rs        TcpListener / TcpStream (Read, Write, AsFd, std conversions)
//!          udp.rs        UdpSocket (recvfrom/sendto, MSG_TRUNC)
//!          unix.rs       UnixListener / UnixStream (stream, seqpacket) / UnixDatagram, SCM_RIGHTS
//!          ready/        Epoll, PollSet and the io_uring Ring: typed Interest, Token, Readiness
//!          nfqueue.rs    NfQueue: packets an NFQUEUE firewall rule hands us, and our verdicts
//! floor 2  socket.rs     Socket of any family (typed Domain, Type, Protocol, options; closes on drop)
//!          process.rs    fork, wait, kill, signal masks, sigwait, signalfd, resource limits,
//!                        entering a network namespace (setns)
//!          file.rs       the few files socklab itself reads and writes, closed through sys
//! floor 1  sys/          one fn per syscall through one syscall! helper; SockAddr for every
//!                        family; the only `unsafe` in the crate
//! ```
//!
//! Features (floor 4) use floors 2-3 and the safe re-exports below ([`SockAddr`], [`clock`],
//! [`names`]); they never call `sys` directly, so every kernel call has one place to be narrated.
//!
//! `#![deny(unsafe_code)]` below makes any `unsafe` outside `sys` a compile error; `sys` alone is
//! `#[allow(unsafe_code)]`.

#![deny(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]
#![warn(rust_2018_idioms)]

#[cfg(socklab_epoll)]
pub mod bench;
#[cfg(socklab_af_packet)]
pub mod capture;
#[cfg(all(socklab_epoll, socklab_sock_diag))]
pub mod check;
#[cfg(socklab_sock_diag)]
pub mod diag;
pub mod echo;
pub mod error;
#[cfg(socklab_epoll)]
pub mod fault;
#[cfg(target_os = "linux")]
pub mod file;
#[cfg(socklab_epoll)]
pub mod fixture;
#[cfg(socklab_epoll)]
pub mod netns;
#[cfg(socklab_sock_diag)]
pub mod nfqueue;
pub mod process;
pub mod ready;
pub mod resolve;
pub mod socket;
#[allow(unsafe_code)]
pub mod sys;
pub mod tcp;
#[cfg(test)]
mod testutil;
pub mod timeline;
pub mod trace;
pub mod udp;
pub mod unix;
#[cfg(all(socklab_af_packet, socklab_sock_diag))]
pub mod walkthrough;

pub use socket::{Connect, Domain, PeerCred, Protocol, Socket, Type};
pub use sys::{SockAddr, UnixName, clock, names};
pub use tcp::{TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixDatagram, UnixKind, UnixListener, UnixStream};

// The Rust blocks of the README and of the book's CI guide are compiled and run as doc-tests, so
// the examples a reader copies keep working.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;

#[cfg(doctest)]
#[doc = include_str!("../docs/src/ci.md")]
struct CiGuideExamples;
