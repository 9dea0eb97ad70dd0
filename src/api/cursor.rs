//! A position in a JSON text and the steps both of the gateway's JSON readers take:
//! `scan.rs` (provider answers, their structure) and `strict.rs` (client requests, the whole
//! grammar). Each wraps a `Cursor` and adds its own way of reading strings and values.

/// How deep arrays and objects may nest: as deep as serde_json allows by default, and as many
/// bits as the readers' bracket stacks (one `u128`) hold.
pub(super) const MAX_DEPTH: u32 = u128::BITS;

pub(super) struct Cursor<'a> {
    pub bytes: &'a [u8],
    pub at: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    pub fn new(bytes: &'a [u8]) -> Cursor<'a> {
        Cursor { bytes, at: 0 }
    }

    #[inline]
    pub fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    #[inline]
    pub fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    #[inline]
    pub fn expect(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    /// `:` between a key and its value, with the whitespace around it.
    #[inline]
    pub fn colon(&mut self) -> Option<()> {
        self.skip_ws();
        self.expect(b':')?;
        self.skip_ws();
        Some(())
    }

    /// JSON's whitespace: space, LF, CR, tab.
    #[inline]
    pub fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.at += 1;
        }
    }
}

// `#[inline]` throughout: these are the readers' innermost steps, and their callers are in
// other modules (codegen units), where they were not inlined without it (+600 instructions
// a response, callgrind).

/// The whole text as one JSON object: [`object`], then only whitespace.
#[inline]
pub(super) fn whole_object<'a, R>(
    reader: &mut R,
    member: impl FnMut(&mut R) -> Option<()>,
) -> Option<()>
where
    R: std::ops::DerefMut<Target = Cursor<'a>>,
{
    reader.skip_ws();
    object(reader, member)?;
    reader.skip_ws();
    (reader.at == reader.bytes.len()).then_some(())
}

/// One JSON object from the cursor on: `{`, members separated by commas, each read by
/// `member` (from its key's opening quote to the end of its value), `}`.
#[inline]
pub(super) fn object<'a, R>(
    reader: &mut R,
    mut member: impl FnMut(&mut R) -> Option<()>,
) -> Option<()>
where
    R: std::ops::DerefMut<Target = Cursor<'a>>,
{
    reader.expect(b'{')?;
    reader.skip_ws();
    if reader.peek() == Some(b'}') {
        reader.at += 1;
        return Some(());
    }
    loop {
        member(reader)?;
        reader.skip_ws();
        match reader.next()? {
            b',' => reader.skip_ws(),
            b'}' => return Some(()),
            _ => return None,
        }
    }
}

/// A reader over a `Cursor`: its steps and position read as the reader's own.
macro_rules! cursor_reader {
    ($reader:ident) => {
        struct $reader<'a>(super::cursor::Cursor<'a>);

        impl<'a> std::ops::Deref for $reader<'a> {
            type Target = super::cursor::Cursor<'a>;
            #[inline]
            fn deref(&self) -> &Self::Target {
                &self.0
            }
        }

        impl std::ops::DerefMut for $reader<'_> {
            #[inline]
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.0
            }
        }
    };
}
pub(super) use cursor_reader;
