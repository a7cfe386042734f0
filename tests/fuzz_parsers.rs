//! The fuzz targets' properties (`fuzz/checks.rs`) in every `cargo test`: over the saved
//! reproducers in `fuzz/regressions/`, and over a seeded random loop so the parsers get some
//! fuzzing even where no nightly toolchain / cargo-fuzz is available. The long runs are
//! `cargo +nightly fuzz run host` and `cargo +nightly fuzz run sockaddr` (see fuzz/README.md).

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::Path;

/// xorshift: the same seed gives the same inputs, so a failure here reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn regressions(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

#[test]
fn saved_reproducers_still_pass() {
    let (hosts, addrs) = (regressions("host"), regressions("sockaddr"));
    assert!(!hosts.is_empty() && !addrs.is_empty());
    hosts.iter().for_each(|h| checks::host(h));
    hosts.iter().for_each(|h| checks::host_port(h));
    addrs.iter().for_each(|a| checks::sockaddr(a));
}

#[test]
fn host_parser_random_loop() {
    const SEEDS: [&str; 8] =
        ["127.0.0.1", "::1", "[::1]", "localhost", "example.com", "fe80::1%2", "10.0.0.255", "a-b.c"];
    const ALPHABET: &[u8] = b"0123456789abcdefx:.[]%-_ /\n\t\x00\xff";
    let mut rng = Rng(0x5eed_1234_5678_9abc);
    for _ in 0..100_000 {
        let mut input = SEEDS[rng.below(SEEDS.len())].as_bytes().to_vec();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(input.len() + 1);
            match rng.below(3) {
                0 => input.insert(at, ALPHABET[rng.below(ALPHABET.len())]),
                1 if at < input.len() => {
                    input.remove(at);
                }
                _ => input.insert(at, rng.next() as u8),
            }
        }
        checks::host(&input);
        checks::host_port(&input);
    }
}

#[test]
fn sockaddr_decoder_random_loop() {
    let mut rng = Rng(0xadd7_e55e_5eed_0001);
    for _ in 0..100_000 {
        let len = rng.below(160);
        let mut input: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Half the time a family the decoder knows, so the interesting paths run.
        if len >= 2 && rng.below(2) == 0 {
            let family = if rng.below(2) == 0 { libc::AF_INET } else { libc::AF_INET6 } as u16;
            input[..2].copy_from_slice(&family.to_ne_bytes());
        }
        checks::sockaddr(&input);
    }
}
