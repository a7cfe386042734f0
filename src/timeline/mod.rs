//! Floor 4: one timeline of what happened, and the views of it.
//!
//! - [`model`]: the event model ([`Timeline`], [`Event`], [`What`], [`Side`]) — what a recorder
//!   (today [`crate::walkthrough`]) fills in and every view reads;
//! - renderers, each a `render(&Timeline) -> String` beside the model and nothing more: [`text`]
//!   for people, [`jsonl`] for scripts (which [`jsonl::read`] reads back into a [`Timeline`]),
//!   [`diagram`] a sequence diagram for a terminal and [`svg`] the same as an SVG picture, both
//!   drawn from [`ladder`]'s rows;
//! - [`json`]: the crate's one JSON writer and reader, also used by `states --json` and
//!   `bench --json`. It needs no capture or sock_diag, so it is built everywhere.

pub mod json;

#[cfg(all(socklab_af_packet, socklab_sock_diag))]
pub mod diagram;
#[cfg(all(socklab_af_packet, socklab_sock_diag))]
pub mod jsonl;
#[cfg(all(socklab_af_packet, socklab_sock_diag))]
pub mod ladder;
#[cfg(all(socklab_af_packet, socklab_sock_diag))]
pub mod model;
#[cfg(all(socklab_af_packet, socklab_sock_diag))]
pub mod svg;
#[cfg(all(socklab_af_packet, socklab_sock_diag))]
pub mod text;

#[cfg(all(socklab_af_packet, socklab_sock_diag))]
pub use model::{Event, Side, Timeline, What};
