//! The `user_data` encoding of every operation: slot, generation and operation kind in one u64.

/// Identifies one operation in flight: which slot (connection, listener, ...) it belongs to,
/// that slot's generation when the operation was issued, and what kind of operation it is.
///
/// Layout (most significant first): `op: u8 | generation: u24 | slot: u32`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Token(u64);

/// Operation kind reserved for the backends' own bookkeeping (cancel requests, linked
/// timeouts). Callers never see a completion with this kind.
pub const OP_INTERNAL: u8 = 0xFF;

const GENERATION_BITS: u32 = 24;
const GENERATION_MASK: u32 = (1 << GENERATION_BITS) - 1;

impl Token {
    /// Packs a token. `generation` is truncated to 24 bits.
    #[inline]
    pub const fn new(slot: u32, generation: u32, op: u8) -> Token {
        Token(((op as u64) << 56) | (((generation & GENERATION_MASK) as u64) << 32) | slot as u64)
    }

    #[inline]
    pub const fn slot(self) -> u32 {
        self.0 as u32
    }

    #[inline]
    pub const fn generation(self) -> u32 {
        ((self.0 >> 32) as u32) & GENERATION_MASK
    }

    #[inline]
    pub const fn op(self) -> u8 {
        (self.0 >> 56) as u8
    }

    /// The raw value handed to the kernel as `user_data`.
    #[inline]
    pub const fn to_u64(self) -> u64 {
        self.0
    }

    #[inline]
    pub const fn from_u64(raw: u64) -> Token {
        Token(raw)
    }

    /// The next generation after `generation`, wrapping within 24 bits.
    #[inline]
    pub const fn next_generation(generation: u32) -> u32 {
        (generation + 1) & GENERATION_MASK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_field() {
        for &(slot, generation, op) in &[
            (0u32, 0u32, 0u8),
            (1, 2, 3),
            (u32::MAX, GENERATION_MASK, OP_INTERNAL),
            (123_456, 0x00AB_CDEF, 7),
        ] {
            let t = Token::new(slot, generation, op);
            assert_eq!(t.slot(), slot);
            assert_eq!(t.generation(), generation);
            assert_eq!(t.op(), op);
            assert_eq!(Token::from_u64(t.to_u64()), t);
        }
    }

    #[test]
    fn generation_is_truncated_and_wraps() {
        let t = Token::new(5, GENERATION_MASK + 3, 1);
        assert_eq!(t.generation(), 2);
        assert_eq!(t.slot(), 5);
        assert_eq!(Token::next_generation(GENERATION_MASK), 0);
    }
}
