//! `cargo +nightly fuzz run host`: the `--host` parser (`socklab::resolve::parse_host`, and
//! `resolve` for what needs no lookup) and `HOST:PORT` splitting (`split_host_port`).
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::host(data);
    checks::host_port(data);
});
