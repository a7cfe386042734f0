//! One file per concurrency model, each holding only its loop: what differs between the rungs of
//! the ladder. What they share is one floor down in `echo/`: the session (`session.rs`), the
//! accept policy (`accept.rs`), the configuration (`config.rs`) and the stop switch (`stop.rs`).

#[cfg(socklab_epoll)]
pub mod epoll;
pub mod fork;
pub mod iterative;
pub mod poll;
pub mod thread;
#[cfg(socklab_uring)]
pub mod uring;

use std::io;
use std::sync::Arc;

use super::config::{Model, ServerConfig};
use super::event::Sink;
use super::stop::Stop;
use crate::echo::endpoint::Listener;

/// Serves clients of `listener` with `config.model` until `stop` is requested.
pub fn serve(listener: &Listener, config: &ServerConfig, stop: &Arc<Stop>, sink: &Sink) -> io::Result<()> {
    match config.model {
        Model::Iterative => iterative::serve(listener, config, stop, sink),
        Model::Fork => fork::serve(listener, config, stop, sink),
        Model::Thread => thread::serve(listener, config, stop, sink),
        Model::Poll => poll::serve(listener, config, stop, sink),
        #[cfg(socklab_epoll)]
        Model::Epoll => epoll::serve(listener, config, stop, sink),
        #[cfg(not(socklab_epoll))]
        Model::Epoll => Err(io::Error::new(io::ErrorKind::Unsupported, "epoll is Linux-only; use --model poll")),
        #[cfg(socklab_uring)]
        Model::Uring => uring::serve(listener, config, stop, sink),
        #[cfg(not(socklab_uring))]
        Model::Uring => Err(io::Error::new(io::ErrorKind::Unsupported, "io_uring is Linux-only; use --model poll")),
    }
}
