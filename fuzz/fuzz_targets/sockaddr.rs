//! `cargo +nightly fuzz run sockaddr`: sockaddr decoding from raw bytes
//! (`socklab::sys::decode_sockaddr`).
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::sockaddr(data));
