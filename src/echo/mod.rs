//! Floor 4: the tutorial's echo server and client, as a library.
//!
//! - [`Server`] binds (socket, setsockopt, bind, listen) and serves until stopped; [`Server::spawn`]
//!   runs it on a thread and returns a [`ServerHandle`] — the fixture other projects' tests use.
//! - [`client::run`] is the tutorial's client: connect, send the message, read the echo back in
//!   chunks until every byte returned, compare, close.
//! - [`Stop`] is how a server is told to finish: it sets a flag and shuts down the sockets the
//!   server is blocked on, which wakes the blocked accept/recv at once (see `stop.rs`).
//! - [`Model`] picks how clients are served together, one file each: [`iterative`] (the
//!   tutorial's), [`fork`], [`thread`], [`poll`], `epoll` (Linux),
//!   `uring` (Linux, io_uring).
//! - What happens is reported as [`Event`]s to a sink; the CLI prints them as the tutorial's lines.

pub mod client;
#[cfg(socklab_epoll)]
pub mod epoll;
mod event;
pub mod fork;
pub mod iterative;
pub mod limits;
mod nonblocking;
pub mod poll;
mod server;
mod stop;
pub mod thread;
#[cfg(socklab_uring)]
pub mod uring;
#[cfg(socklab_uring)]
mod uring_conn;

pub use event::{Event, Sink, show_data};
pub use server::{DEFAULT_MAX_THREADS, Model, Server, ServerConfig, ServerHandle, somaxconn};
pub use stop::Stop;
