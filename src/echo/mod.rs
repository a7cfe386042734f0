//! Floor 4: the tutorial's echo server and client, as a library.
//!
//! ```text
//! server.rs   Server: bind (socket, setsockopt, bind, listen), run a model until stopped, close;
//!             Server::spawn runs it on a thread and returns a ServerHandle (a test fixture)
//! config.rs   Model and ServerConfig, with each model's defaults
//! model/      one file per concurrency model, holding only its loop: iterative (the tutorial's),
//!             fork, thread, poll, epoll (Linux), uring (Linux, io_uring)
//! endpoint.rs Transport (TCP, UDP, Unix stream/seqpacket/datagram) and the Listener, Stream and
//!             Datagram enums every model is written against
//! datagram.rs the datagram echo (recvfrom/sendto, no accept) for UDP and Unix datagram sockets
//! session.rs  one client's echo: the tutorial's blocking loop, and its nonblocking state machine
//! uring_session.rs  one client of the io_uring model: its recv and send in the kernel, its queue
//! accept.rs   taking connections, and the one table of accept errors
//! limits.rs   --idle-timeout / --max-conn-time clocks
//! stop.rs     the stop switch: a flag plus shutdown(2) of whatever the server is blocked on
//! event.rs    what happens, reported as Events to a sink; the CLI prints the tutorial's lines
//! pass_fd.rs  one process accepts, another serves: a connection passed with SCM_RIGHTS
//! client.rs   the tutorial's client: connect, send, read the echo back in chunks, close
//! ```
//!
//! Arrows inside the folder point one way: server → model → session/accept → config/limits/
//! stop/event.

pub mod accept;
pub mod client;
pub mod config;
pub mod datagram;
pub mod endpoint;
mod event;
pub mod limits;
pub mod model;
pub mod pass_fd;
mod server;
pub mod session;
mod stop;
#[cfg(socklab_uring)]
mod uring_session;

pub use config::{DEFAULT_MAX_THREADS, Model, ServerConfig, auto_threads, somaxconn};
pub use endpoint::{Bound, Datagram, Listener, Stream, Transport};
pub use event::{Event, Sink, show_data};
pub use server::{Server, ServerHandle};
pub use stop::Stop;
