//! The bytes every connection sends: one seeded pseudo-random pattern, read cyclically from a
//! per-connection starting offset, so every connection's stream differs and every echoed byte can
//! be checked with a memcmp against where it must have come from.

/// The pattern's period: a prime, so writes of any power-of-two size never line up with it.
pub const PERIOD: usize = 1_048_573;

/// `PERIOD` pseudo-random bytes, followed by the first `extra` of them again, so any slice of up
/// to `extra` bytes starting anywhere in the period is contiguous.
#[derive(Debug)]
pub struct Pattern {
    bytes: Vec<u8>,
    extra: usize,
}

impl Pattern {
    /// xorshift64* from `seed`; slices of up to `extra` bytes.
    pub fn new(seed: u64, extra: usize) -> Pattern {
        let mut x = seed ^ 0x9e37_79b9_7f4a_7c15;
        if x == 0 {
            x = 1;
        }
        let mut bytes = Vec::with_capacity(PERIOD + extra);
        while bytes.len() < PERIOD {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let word = x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            let take = (PERIOD - bytes.len()).min(8);
            bytes.extend_from_slice(&word[..take]);
        }
        bytes.extend_from_within(..extra);
        Pattern { bytes, extra }
    }

    /// The stream's bytes `[pos, pos + len)`; `len` at most `extra`.
    pub fn at(&self, pos: u64, len: usize) -> &[u8] {
        debug_assert!(len <= self.extra);
        let start = (pos % PERIOD as u64) as usize;
        &self.bytes[start..start + len]
    }

    /// A connection's starting offset, derived from its index so streams differ.
    pub fn start_of(conn: usize) -> u64 {
        (conn as u64).wrapping_mul(7_919) % PERIOD as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_wrap_around_the_period() {
        let p = Pattern::new(42, 100);
        assert_eq!(p.at(PERIOD as u64 - 3, 6), [p.at(PERIOD as u64 - 3, 3), p.at(0, 3)].concat());
        assert_eq!(p.at(5, 10), p.at(PERIOD as u64 + 5, 10));
        assert_ne!(Pattern::new(1, 8).at(0, 8), Pattern::new(2, 8).at(0, 8));
    }
}
