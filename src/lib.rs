//! socklab: sockets at the syscall level.
//!
//! The crate is a house of floors; arrows point down only.
//!
//! ```text
//! cli (src/main.rs, src/cli/)   argument parsing and printing
//! walkthrough (src/walkthrough/) server + client processes, capture and states in one timeline
//! echo (src/echo/)              the tutorial's echo server and client, and their stop switch
//! trace (src/trace/)            --trace / --explain / --step: each syscall in strace's words
//! capture (src/capture/)        TCP segments on lo through AF_PACKET, parsed in safe code
//! diag (src/diag/)              socket states and queues through NETLINK_SOCK_DIAG (what ss reads)
//! bench (src/bench/)            the load generator of `socklab bench`
//! tcp.rs, socket.rs             TcpListener / TcpStream (Read, Write, AsFd), Socket (closes on drop)
//! sys (src/sys/)                one fn per syscall; the only `unsafe` in the crate
//! ```
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
#[cfg(socklab_sock_diag)]
pub mod diag;
pub mod echo;
pub mod error;
#[cfg(target_os = "linux")]
pub mod limits;
#[cfg(target_os = "linux")]
pub mod ready;
pub mod resolve;
pub mod socket;
#[allow(unsafe_code)]
pub mod sys;
pub mod tcp;
#[cfg(test)]
mod testutil;
pub mod trace;
#[cfg(all(socklab_af_packet, socklab_sock_diag))]
pub mod walkthrough;

pub use socket::{Socket, Type};
pub use tcp::{TcpListener, TcpStream};
