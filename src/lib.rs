//! socklab: sockets at the syscall level.
//!
//! The crate is a house of floors; arrows point down only.
//!
//! ```text
//! cli (src/main.rs, src/cli/)   argument parsing and printing
//! echo (src/echo/)              the tutorial's echo server and client, and their stop switch
//! trace (src/trace/)            --trace / --explain / --step: each syscall in strace's words
//! tcp.rs, socket.rs             TcpListener / TcpStream (Read, Write, AsFd), Socket (closes on drop)
//! sys (src/sys/)                one fn per syscall; the only `unsafe` in the crate
//! ```
//!
//! `#![deny(unsafe_code)]` below makes any `unsafe` outside `sys` a compile error; `sys` alone is
//! `#[allow(unsafe_code)]`.

#![deny(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]
#![warn(rust_2018_idioms)]

pub mod echo;
pub mod error;
pub mod resolve;
pub mod socket;
#[allow(unsafe_code)]
pub mod sys;
pub mod tcp;
pub mod trace;

pub use socket::{Socket, Type};
pub use tcp::{TcpListener, TcpStream};
