//! socklab: sockets at the syscall level.
//!
//! The crate is a house of floors; arrows point down only.
//!
//! ```text
//! cli (src/main.rs, src/cli/)   argument parsing and printing
//! echo (src/echo/)              the tutorial's echo server (five concurrency models) and client
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
pub mod echo;
pub mod error;
#[cfg(target_os = "linux")]
pub mod limits;
pub mod resolve;
pub mod socket;
#[allow(unsafe_code)]
pub mod sys;
pub mod tcp;

pub use socket::{Socket, Type};
pub use tcp::{TcpListener, TcpStream};
