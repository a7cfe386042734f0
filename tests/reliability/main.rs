//! The reliability suite (issue 5): faults, load and safety defaults, over real loopback sockets,
//! run against every server model `socklab server --help` lists (see `harness::models`).
//!
//! Long runs (the full 1 MiB x 1000 load, the 60 s soak, valgrind) run with `SOCKLAB_LONG=1`.

#[path = "../common/mod.rs"]
mod common;
mod faults;
mod hardening;
mod harness;
mod load;
mod safety;
