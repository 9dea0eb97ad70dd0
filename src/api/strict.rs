//! A strict check of a request body as JSON that finds its top-level fields in the same pass.
//!
//! Every client request is checked as JSON before anything is sent upstream (a garbled body
//! gets the front door's own 400, not a provider's). serde_json's walk of the body into raw
//! values cost ~22 instructions a byte (issue 12); this one pass costs a fraction of that.
//! It is a fast path only: it answers for a body serde_json would accept with the same fields,
//! and for anything else — a fault, a key with escapes, nesting over 128 deep — it answers
//! nothing and the caller asks serde, whose verdict and error message stand. Accepting what
//! serde refuses would let bad JSON through; `tests` and the `request_fields` fuzz target
//! check that it never does.
//!
//! The rules are serde_json's for a value it skips: UTF-8 throughout; strings without raw
//! control characters, with valid escapes (`\u` with four hex digits, any code point); JSON's
//! number grammar without leading zeros; `true`, `false`, `null`; no trailing commas;
//! nothing but whitespace (space, tab, CR, LF) after the object.

use std::ops::Range;

use super::cursor::{cursor_reader, whole_object, Cursor, MAX_DEPTH};
use super::swar;

/// The byte ranges of each top-level key (inside its quotes) and raw value, in order.
pub type FieldRanges = Vec<(Range<usize>, Range<usize>)>;

/// `body`'s top-level fields if it is one JSON object as serde_json reads it and no key holds
/// an escape; `None` when serde must decide.
pub fn object_fields(body: &[u8]) -> Option<FieldRanges> {
    // Invalid UTF-8 is refused wherever it is: in keys, values or between tokens.
    std::str::from_utf8(body).ok()?;
    // Nesting deeper than `MAX_DEPTH` is serde's to judge (it has no limit for values it
    // skips).
    let mut s = Strict(Cursor::new(body));
    let mut fields = Vec::with_capacity(8);
    whole_object(&mut s, |s| {
        s.expect(b'"')?;
        let key_start = s.at;
        if s.string()? {
            return None;
        }
        let key = key_start..s.at - 1;
        s.colon()?;
        let value_start = s.at;
        s.value()?;
        fields.push((key, value_start..s.at));
        Some(())
    })?;
    Some(fields)
}

cursor_reader!(Strict);

impl Strict<'_> {
    /// Past the closing quote of a string whose opening quote was just read; whether it held
    /// an escape.
    fn string(&mut self) -> Option<bool> {
        let mut escaped = false;
        loop {
            let rest = self.bytes.get(self.at..)?;
            let i = find_string_stop(rest)?;
            self.at += i + 1;
            match rest[i] {
                b'"' => return Some(escaped),
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                }
                // A raw control character.
                _ => return None,
            }
        }
    }

    /// The rest of an escape whose backslash was just read.
    fn escape(&mut self) -> Option<()> {
        match self.next()? {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(()),
            b'u' => {
                let hex = self.bytes.get(self.at..self.at + 4)?;
                self.at += 4;
                hex.iter().all(u8::is_ascii_hexdigit).then_some(())
            }
            _ => None,
        }
    }

    /// One value, however nested, without recursion: open containers are the bits of one
    /// integer (1 for an object), as in `scan.rs`.
    fn value(&mut self) -> Option<()> {
        let mut objects: u128 = 0;
        let mut depth = 0;
        loop {
            // At the start of a value, whitespace skipped.
            match self.next()? {
                b'"' => self.string().map(drop)?,
                b'-' | b'0'..=b'9' => {
                    self.at -= 1;
                    self.number()?
                }
                b't' => self.literal(b"rue")?,
                b'f' => self.literal(b"alse")?,
                b'n' => self.literal(b"ull")?,
                open @ (b'{' | b'[') => {
                    self.skip_ws();
                    let close = if open == b'{' { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.at += 1;
                    } else {
                        if depth == MAX_DEPTH {
                            return None;
                        }
                        objects = objects << 1 | u128::from(open == b'{');
                        depth += 1;
                        if open == b'{' {
                            self.member_key()?;
                        }
                        continue;
                    }
                }
                _ => return None,
            }
            // After a value: close what ends here, then find the next value, if any.
            loop {
                if depth == 0 {
                    return Some(());
                }
                self.skip_ws();
                let in_object = objects & 1 == 1;
                match self.next()? {
                    b',' => {
                        self.skip_ws();
                        if in_object {
                            self.member_key()?;
                        }
                        break;
                    }
                    b'}' if in_object => {}
                    b']' if !in_object => {}
                    _ => return None,
                }
                objects >>= 1;
                depth -= 1;
            }
        }
    }

    /// `"key" :` inside a nested object, and the whitespace before its value. Escapes are
    /// fine here: serde skips these keys as it skips any string.
    fn member_key(&mut self) -> Option<()> {
        self.expect(b'"')?;
        self.string()?;
        self.colon()
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`; what follows is the caller's to check
    /// (a digit after a leading `0` is then refused, as serde refuses it).
    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.next()? {
            b'0' => {}
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    fn digits(&mut self) -> usize {
        let n = self.bytes[self.at..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        self.at += n;
        n
    }

    /// The rest of `true`, `false` or `null` after its first letter.
    fn literal(&mut self, rest: &[u8]) -> Option<()> {
        let end = self.at + rest.len();
        (self.bytes.get(self.at..end)? == rest).then(|| self.at = end)
    }
}

/// The index of the first byte in `text` that ends a run of plain string text, a word at a
/// time (`swar.rs`): most of a request is the text of its messages.
fn find_string_stop(text: &[u8]) -> Option<usize> {
    let stops = |w| swar::equal(w, b'"') | swar::equal(w, b'\\') | swar::below(w, 0x20);
    match swar::find_in_words(text, usize::MAX, stops) {
        Ok(at) => Some(at),
        Err(at) => {
            let tail = text[at..].iter().position(|b| STRING_STOP[*b as usize])?;
            Some(at + tail)
        }
    }
}

/// Bytes that end a run of plain string text: the closing quote, an escape, or a raw control
/// character (which JSON forbids in strings).
static STRING_STOP: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

#[cfg(test)]
mod tests;
