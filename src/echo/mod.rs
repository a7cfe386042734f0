//! Floor 4: the tutorial's echo server and client, as a library.
//!
//! - [`Server`] binds (socket, setsockopt, bind, listen) and serves until stopped; [`Server::spawn`]
//!   runs it on a thread and returns a [`ServerHandle`] — the fixture other projects' tests use.
//! - [`client::run`] is the tutorial's client: connect, send the message, read the echo back in
//!   chunks until every byte returned, compare, close.
//! - [`Stop`] is how a server is told to finish: it sets a flag and shuts down the sockets the
//!   server is blocked on, which wakes the blocked accept/recv at once (see `stop.rs`).
//! - What happens is reported as [`Event`]s to a sink; the CLI prints them as the tutorial's lines.

pub mod client;
mod event;
pub mod iterative;
pub mod limits;
mod server;
mod stop;

pub use event::{Event, Sink, show_data};
pub use server::{Server, ServerConfig, ServerHandle};
pub use stop::Stop;
