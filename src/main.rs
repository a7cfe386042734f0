//! The `socklab` command: parses arguments, runs a feature from the library, prints, exits.
//!
//! Entered as C's `main` ([`socklab::c_main!`], defined in `src/sys/entry.rs`), not through std's
//! `fn main` wrapper: that wrapper makes about twenty system calls before socklab's own code runs,
//! and a student scrolling `strace -f socklab server` should find the socket calls at once.
//! SIGPIPE, which std's wrapper would have set to SIG_IGN, is ignored by socklab itself, narrated
//! (`cli::main`).
// The test harness brings its own `main` to `cargo test`'s build of this file.
#![cfg_attr(not(test), no_main)]
#![deny(unsafe_code)]

#[cfg_attr(test, allow(dead_code))]
mod cli;

#[cfg(not(test))]
socklab::c_main!(cli::main);
