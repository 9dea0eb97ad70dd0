//! Byte searches a word (eight bytes) at a time, for the short runs of JSON text — keys, ids,
//! numbers — where a SIMD search's setup costs more than the search itself (issue 12).
//!
//! Each test sets the high bit of the bytes it matches. A borrow can also mark a byte above a
//! true match, never below one, so the lowest mark is always exact — and so is the lowest
//! mark of several tests OR-ed together.

const ONES: u64 = u64::from_ne_bytes([1; 8]);
const HIGH: u64 = ONES << 7;

/// Marks the bytes of `word` equal to `byte`.
#[inline]
pub fn equal(word: u64, byte: u8) -> u64 {
    below(word ^ (ONES * u64::from(byte)), 1)
}

/// Marks the bytes of `word` less than `n` (at most 128).
#[inline]
pub fn below(word: u64, n: u8) -> u64 {
    word.wrapping_sub(ONES * u64::from(n)) & !word & HIGH
}

/// The index of the first byte of `text` that `marks` marks, searching the whole words of
/// its first `max_bytes` bytes; `Err(n)` when those `n` bytes hold none (the caller searches
/// the rest its own way).
#[inline]
pub fn find_in_words(
    text: &[u8],
    max_bytes: usize,
    marks: impl Fn(u64) -> u64,
) -> Result<usize, usize> {
    let mut at = 0;
    while at < max_bytes {
        let Some(Ok(word)) = text.get(at..at + 8).map(<[u8; 8]>::try_from) else {
            break;
        };
        let found = marks(u64::from_le_bytes(word));
        if found != 0 {
            return Ok(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    Err(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_match_at_every_offset() {
        let stops = |w| equal(w, b'"') | equal(w, b'\\') | below(w, 0x20);
        let is_stop = |b: u8| b == b'"' || b == b'\\' || b < 0x20;
        // Every byte value at every position of two words, over a background of bytes
        // next to the stops (a borrow from a true match must not move the first mark).
        for background in [b'a', 0x21, 0x23, 0x5b, 0x5d, 0x80, 0xff, 0x20] {
            for at in 0..16 {
                for byte in 0..=255u8 {
                    let mut text = [background; 16];
                    text[at] = byte;
                    let want = text.iter().position(|b| is_stop(*b));
                    match find_in_words(&text, 16, stops) {
                        Ok(i) => assert_eq!(Some(i), want, "{text:?}"),
                        Err(n) => assert!(want.is_none() && n == 16, "{text:?}"),
                    }
                }
            }
        }
        assert_eq!(find_in_words(b"abc\"", 16, stops), Err(0), "no whole word");
        assert_eq!(find_in_words(b"abcdefgh\"", 8, stops), Err(8), "limit");
    }
}
