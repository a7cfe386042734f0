//! The `socklab` command: parses arguments, runs a feature from the library, prints, exits.
//!
//! Entered as C's `main`, not through std's `fn main` wrapper (`#![no_main]`): std's wrapper makes
//! about twenty system calls before any of socklab's code runs (a `poll` of fds 0-2, SIGPIPE set to
//! SIG_IGN, a read of `/proc/self/maps` to find the main thread's stack, an alternate signal stack
//! and SIGSEGV/SIGBUS handlers for its stack-overflow message), and a student scrolling
//! `strace -f socklab server` should find the socket calls at once. What that costs: a stack
//! overflow in the main thread ends in a plain SIGSEGV instead of std's message. SIGPIPE is set to
//! SIG_IGN by socklab itself, narrated (`cli::main`). The rest of std (threads, I/O, `env::args`,
//! which glibc hands to std before `main`) works as usual.
// The test harness brings its own `main` to `cargo test`'s build of this file.
#![cfg_attr(not(test), no_main)]
#![deny(unsafe_code)]

#[cfg_attr(test, allow(dead_code))]
mod cli;

/// The process's entry point, called by the C library's start-up code.
// `no_mangle` is an unsafe attribute (two symbols named `main` would clash at link time); this is
// the one `main` of the binary. No unsafe operation happens here.
#[cfg(not(test))]
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
extern "C" fn main() -> std::ffi::c_int {
    cli::main().into()
}
