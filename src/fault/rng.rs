//! The dice for fault probabilities and jitter: xorshift64*, seeded from std's per-process random
//! hash keys, so two fixtures in one test binary do not roll the same sequence. Not cryptographic;
//! it only has to be uneven enough that "25% of connections" is about a quarter.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// A small pseudo-random generator.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator with a fresh seed.
    pub fn new() -> Rng {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(std::process::id() as u64);
        Rng(hasher.finish() | 1)
    }

    /// A number in [0, 1).
    pub fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Default for Rng {
    fn default() -> Rng {
        Rng::new()
    }
}
