//! The program's entry point, as C sees it: `int main(int argc, char **argv)`.
//!
//! A Rust binary normally enters through std's `fn main` wrapper, which makes about twenty system
//! calls before any of the program's own code runs: a `poll` of descriptors 0-2, SIGPIPE set to
//! SIG_IGN, a read of `/proc/self/maps` to find the main thread's stack, an alternate signal stack
//! and SIGSEGV/SIGBUS handlers for its stack-overflow message. A student scrolling
//! `strace -f socklab server` should find the socket calls at once, so the `socklab` binary is
//! `#![no_main]` and defines C's `main` with [`c_main!`] instead. What that costs: a stack
//! overflow in the main thread ends in a plain SIGSEGV instead of std's message. Everything else of
//! std (threads, I/O, `env::args`, which glibc hands to std before `main`) works as usual.

/// Defines C's `main` to run `$body` (a `fn() -> u8`, the exit code). For a `#![no_main]` binary.
///
/// The unsafe part is the attribute: `no_mangle` names the function `main` for the linker, and two
/// symbols of one name would clash at link time. It is written here, in `sys`, so that the only
/// `unsafe` of the project stays in this folder; the binary only invokes the macro.
#[macro_export]
macro_rules! c_main {
    ($body:path) => {
        /// The process's entry point, called by the C library's start-up code.
        // SAFETY: this is the only symbol named `main` in a `#![no_main]` binary, with C's
        // signature; it runs no unsafe operation.
        #[unsafe(no_mangle)]
        extern "C" fn main(_argc: ::std::ffi::c_int, _argv: *const *const ::std::ffi::c_char) -> ::std::ffi::c_int {
            ::std::ffi::c_int::from($body())
        }
    };
}
