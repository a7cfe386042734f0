//! Helpers shared by the unit tests.

/// Deterministic pseudo-random bytes (xorshift32), continuing from `state`: the garbage parser
/// tests feed, reproducible from run to run.
pub fn garbage(state: &mut u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|_| {
            *state ^= *state << 13;
            *state ^= *state >> 17;
            *state ^= *state << 5;
            *state as u8
        })
        .collect()
}
