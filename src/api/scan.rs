//! A provider answer's top-level fields, found by scanning its structure rather than parsing
//! every token in it.
//!
//! The gateway stamps four top-level fields of a completion and copies the rest as they
//! came. Validating each nested token with serde cost more than all the stamping (issue 12:
//! ~11k instructions for a 600-byte answer). This scanner checks what a gateway must know to
//! copy an answer safely — one object, UTF-8, strings closed, brackets balanced and matched,
//! top-level scalars well-formed, nothing after the object — so a truncated or garbled
//! answer is still refused. Tokens nested inside values (an escape in a message, a number in
//! a tool call) are the provider's bytes, passed through unread; the fields the gateway does
//! read (usage, finish reason) are parsed strictly when read.

use std::borrow::Cow;

use super::cursor::{cursor_reader, object, whole_object, Cursor, MAX_DEPTH};

/// `(key, raw value)` for each top-level field, in order; `None` unless `body` is one JSON
/// object (within the limits above).
pub fn top_level_fields(body: &[u8]) -> Option<Vec<(Cow<'_, str>, &str)>> {
    object_fields(std::str::from_utf8(body).ok()?)
}

/// [`top_level_fields`] of text already known to be UTF-8 (a value from an earlier scan).
pub fn object_fields(text: &str) -> Option<Vec<(Cow<'_, str>, &str)>> {
    let mut fields = Vec::with_capacity(12);
    for_each_field(text, |key, value| fields.push((key, value)))?;
    Some(fields)
}

/// Calls `visit` with each `(key, raw value)` of the object `text`, in order, without
/// collecting them; `None` (after visiting what came before the fault) unless `text` is one
/// JSON object, as [`object_fields`] checks.
pub fn for_each_field<'t>(
    text: &'t str,
    mut visit: impl FnMut(Cow<'t, str>, &'t str),
) -> Option<()> {
    read_fields(text, |key, field| {
        visit(key, field.raw()?);
        Some(())
    })
}

/// Like [`for_each_field`], but `visit` is handed each value to read as it likes: as raw
/// text, or an object member by member ([`Field::object`]) in the same pass. Why (issue 12):
/// reading an answer's usage from its raw text walked those bytes three times (skipped in
/// the answer, walked as usage, its details walked again): ~3,500 instructions a response.
/// A value `visit` leaves unread is skipped; `visit` saying `None` ends the walk with `None`.
pub fn read_fields<'t>(
    text: &'t str,
    mut visit: impl FnMut(Cow<'t, str>, Field<'_, 't>) -> Option<()>,
) -> Option<()> {
    let mut s = Scanner(Cursor::new(text.as_bytes()));
    whole_object(&mut s, |s| member(s, text, 0, &mut visit))
}

/// One value of an object being read, at `depth` brackets inside the text's object.
pub struct Field<'s, 't> {
    scanner: &'s mut Scanner<'t>,
    text: &'t str,
    depth: u32,
}

/// An object value read member by member.
#[derive(Debug, PartialEq)]
pub struct ObjectRead<'t> {
    /// The value's text, whatever it was.
    pub raw: &'t str,
    /// Whether it was an object and every member read; if not, the visits made before the
    /// fault are to be discarded.
    pub complete: bool,
}

impl<'t> Field<'_, 't> {
    /// The value as the text it is, checked as [`object_fields`] checks values.
    pub fn raw(self) -> Option<&'t str> {
        let start = self.scanner.at;
        self.scanner.skip_value(self.depth)?;
        Some(&self.text[start..self.scanner.at])
    }

    /// Hands each member of an object value to `visit`, as [`read_fields`] does. Any other
    /// value, or an object with a member that does not read (a bad token, which skipping
    /// it whole lets pass, or `visit` saying `None`), is skipped whole and read as not
    /// `complete`; `None` only where skipping it fails too.
    pub fn object(
        self,
        mut visit: impl FnMut(Cow<'t, str>, Field<'_, 't>) -> Option<()>,
    ) -> Option<ObjectRead<'t>> {
        let (s, text, depth) = (self.scanner, self.text, self.depth);
        let start = s.at;
        let complete = s.peek() == Some(b'{')
            && depth < MAX_DEPTH
            && object(s, |s| member(s, text, depth + 1, &mut visit)).is_some();
        if !complete {
            s.at = start;
            s.skip_value(depth)?;
        }
        Some(ObjectRead {
            raw: &text[start..s.at],
            complete,
        })
    }
}

/// One `"key": value` of an object, its value handed to `visit`.
fn member<'t>(
    s: &mut Scanner<'t>,
    text: &'t str,
    depth: u32,
    visit: &mut impl FnMut(Cow<'t, str>, Field<'_, 't>) -> Option<()>,
) -> Option<()> {
    let key_start = s.at;
    s.expect(b'"')?;
    let escaped = s.skip_string()?;
    let key = unescape_key(&text[key_start..s.at], escaped)?;
    s.colon()?;
    let value_start = s.at;
    visit(
        key,
        Field {
            scanner: s,
            text,
            depth,
        },
    )?;
    // Every value is at least one byte: a scanner that has not moved left it unread.
    if s.at == value_start {
        s.skip_value(depth)?;
    }
    Some(())
}

/// A quoted key without its quotes; escapes (rare in keys) are decoded by serde.
fn unescape_key(quoted: &str, escaped: bool) -> Option<Cow<'_, str>> {
    let inner = &quoted[1..quoted.len() - 1];
    if escaped {
        serde_json::from_str::<String>(quoted).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

cursor_reader!(Scanner);

impl Scanner<'_> {
    /// Past the closing quote of a string whose opening quote was just read; whether it
    /// held an escape. memchr finds the quote or backslash many bytes at a time: strings are
    /// most of an answer's bytes.
    fn skip_string(&mut self) -> Option<bool> {
        let mut escaped = false;
        loop {
            let i = self.at + memchr::memchr2(b'"', b'\\', self.bytes.get(self.at..)?)?;
            self.at = i + 1;
            if self.bytes[i] == b'"' {
                return Some(escaped);
            }
            // The escaped character, whatever it is, cannot end the string.
            escaped = true;
            self.next()?;
        }
    }

    /// The index of the next byte `table` marks, from `at` on. A table lookup a byte is
    /// a fraction of matching each byte against several values (issue 12).
    fn find(&self, table: &[bool; 256]) -> Option<usize> {
        let rest = self.bytes.get(self.at..)?;
        rest.iter()
            .position(|b| table[*b as usize])
            .map(|i| self.at + i)
    }

    /// A value `depth` brackets inside the text's object: containers may open
    /// `MAX_DEPTH` - `depth` more.
    fn skip_value(&mut self, depth: u32) -> Option<()> {
        match self.peek()? {
            b'"' => {
                self.at += 1;
                self.skip_string().map(drop)
            }
            b'{' | b'[' => self.skip_container(depth),
            _ => self.skip_scalar(),
        }
    }

    /// A number, `true`, `false` or `null`, checked by their grammar.
    fn skip_scalar(&mut self) -> Option<()> {
        let start = self.at;
        while let Some(b) = self.peek() {
            if matches!(b, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t') {
                break;
            }
            self.at += 1;
        }
        let token = &self.bytes[start..self.at];
        let ok = matches!(token, b"true" | b"false" | b"null") || is_json_number(token);
        ok.then_some(())
    }

    /// An object or array, with its strings skipped and its brackets matched. The open
    /// brackets are bits of one integer, not a heap stack: a `Vec` was an allocation for
    /// every container of every answer (issue 12).
    fn skip_container(&mut self, outer: u32) -> Option<()> {
        // Bit 0 is the innermost open bracket: 1 for `{`, 0 for `[`.
        let mut objects: u128 = 0;
        let mut depth = 0;
        let limit = MAX_DEPTH.saturating_sub(outer);
        loop {
            let i = self.find(&IN_CONTAINER)?;
            self.at = i + 1;
            match self.bytes[i] {
                b'"' => {
                    self.skip_string()?;
                }
                b @ (b'{' | b'[') => {
                    if depth >= limit {
                        return None;
                    }
                    objects = objects << 1 | u128::from(b == b'{');
                    depth += 1;
                }
                b => {
                    if depth == 0 || (b == b'}') != (objects & 1 == 1) {
                        return None;
                    }
                    objects >>= 1;
                    depth -= 1;
                    if depth == 0 {
                        return Some(());
                    }
                }
            }
        }
    }
}

/// JSON's number grammar, `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, whatever the value:
/// `1e999` is a number to JSON (serde's raw reader agrees; only a float would overflow).
fn is_json_number(token: &[u8]) -> bool {
    let digits = |t: &[u8]| t.iter().take_while(|b| b.is_ascii_digit()).count();
    let mut rest = token.strip_prefix(b"-").unwrap_or(token);
    let int = digits(rest);
    if int == 0 || (int > 1 && rest[0] == b'0') {
        return false;
    }
    rest = &rest[int..];
    if let Some(after) = rest.strip_prefix(b".") {
        let frac = digits(after);
        if frac == 0 {
            return false;
        }
        rest = &after[frac..];
    }
    if let Some(after) = rest.strip_prefix(b"e").or_else(|| rest.strip_prefix(b"E")) {
        let after = after
            .strip_prefix(b"+")
            .or_else(|| after.strip_prefix(b"-"))
            .unwrap_or(after);
        let exp = digits(after);
        if exp == 0 {
            return false;
        }
        rest = &after[exp..];
    }
    rest.is_empty()
}

/// Bytes that matter inside an array or object: strings and brackets.
static IN_CONTAINER: [bool; 256] = {
    let mut table = [false; 256];
    table[b'"' as usize] = true;
    table[b'{' as usize] = true;
    table[b'[' as usize] = true;
    table[b'}' as usize] = true;
    table[b']' as usize] = true;
    table
};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::value::RawValue;

    /// What serde makes of `body` as an object: its keys and raw values.
    fn by_serde(body: &[u8]) -> Option<Vec<(String, String)>> {
        let raw: indexmap::IndexMap<String, &RawValue> = serde_json::from_slice(body).ok()?;
        Some(
            raw.into_iter()
                .map(|(k, v)| (k, v.get().to_string()))
                .collect(),
        )
    }

    fn by_scan(body: &[u8]) -> Option<Vec<(String, String)>> {
        top_level_fields(body).map(|fields| {
            fields
                .into_iter()
                .map(|(k, v)| (k.into_owned(), v.to_string()))
                .collect()
        })
    }

    const ANSWER: &str = r#" {"id":"chatcmpl-1","object":"chat.completion","created":17,
        "model":"gpt-x","choices":[{"index":0,"message":{"role":"assistant",
        "content":"h\u00e9llo \"quoted\" {not [a bracket","tool_calls":[]},"logprobs":null,
        "finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":-1.5e3},
        "x\u0041":true,"n":false,"e":{} } "#;

    #[test]
    fn finds_the_same_fields_as_serde() {
        let fields = by_scan(ANSWER.as_bytes()).unwrap();
        assert_eq!(Some(fields.clone()), by_serde(ANSWER.as_bytes()));
        let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["id", "object", "created", "model", "choices", "usage", "xA", "n", "e"]
        );
        assert_eq!(by_scan(b"{}"), Some(vec![]));
    }

    #[test]
    fn refuses_every_truncation_and_what_is_not_one_object() {
        let body = ANSWER.trim().as_bytes();
        for end in 0..body.len() {
            assert_eq!(
                by_scan(&body[..end]),
                None,
                "{}",
                ANSWER.trim().get(..end).unwrap_or("?")
            );
        }
        for bad in [
            &b""[..],
            b"[]",
            b"\"x\"",
            b"{} {}",
            b"{\"a\":}",
            b"{\"a\" 1}",
            b"{\"a\":1,}",
            b"{\"a\":[1}",
            b"{\"a\":{]}",
            b"{\"a\":tru}",
            b"{\"a\":01}",
            b"{a:1}",
            b"{\"a\":1}x",
            b"{\"a\":\"\xff\"}",
        ] {
            assert_eq!(by_scan(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
        assert_eq!(by_scan(deep.as_bytes()), None);
    }

    /// A value `depth` brackets deep, objects and arrays alternating, its closers matched
    /// or, with `swap_at`, one of them the wrong kind.
    fn nested(depth: usize, swap_at: Option<usize>) -> String {
        let (mut open, mut close) = (String::new(), Vec::new());
        for level in 0..depth {
            let object = level % 2 == 0;
            open.push_str(if object { "{\"k\":" } else { "[" });
            let wrong = swap_at == Some(level);
            close.push(if object != wrong { "}" } else { "]" });
        }
        let innermost = if depth % 2 == 1 { "1" } else { "" };
        close.reverse();
        format!("{{\"a\":{open}{innermost}{}}}", close.concat())
    }

    #[test]
    fn brackets_match_at_every_depth_up_to_the_limit() {
        for depth in [1, 2, 63, 64, 65, 127, 128] {
            let body = nested(depth, None);
            assert!(by_scan(body.as_bytes()).is_some(), "depth {depth}");
            for swap in [0, depth / 2, depth - 1] {
                let bad = nested(depth, Some(swap));
                assert_eq!(by_scan(bad.as_bytes()), None, "depth {depth}, swap {swap}");
            }
        }
        assert_eq!(by_scan(nested(129, None).as_bytes()), None, "too deep");
    }

    /// A field read by `read_one_level`: `(key, raw, Some(members) when the read was
    /// complete)`.
    type ReadField = (String, String, Option<Vec<String>>);

    /// `body`'s fields, each object value read member by member (one level).
    fn read_one_level(body: &str) -> Option<Vec<ReadField>> {
        let mut out = Vec::new();
        read_fields(body, |key, field| {
            let mut members = Vec::new();
            let read = field.object(|k, value| {
                members.push(format!("{k}={}", value.raw()?));
                Some(())
            })?;
            out.push((
                key.into_owned(),
                read.raw.to_string(),
                read.complete.then_some(members),
            ));
            Some(())
        })?;
        Some(out)
    }

    #[test]
    fn reads_object_values_member_by_member_in_the_same_pass() {
        let body = r#"{"u":{"a":1,"b":{"c":[2]}},"s":"x","n":null,"bad":{"k":01},"e":{}}"#;
        let got = read_one_level(body).unwrap();
        let members = |v: &[&str]| Some(v.iter().map(|m| m.to_string()).collect());
        assert_eq!(
            got,
            [
                (
                    "u".into(),
                    r#"{"a":1,"b":{"c":[2]}}"#.into(),
                    members(&["a=1", r#"b={"c":[2]}"#])
                ),
                ("s".into(), r#""x""#.into(), None),
                ("n".into(), "null".into(), None),
                // A bad token inside a value is the provider's, passed through: skipped
                // whole, the read not complete.
                ("bad".into(), r#"{"k":01}"#.into(), None),
                ("e".into(), "{}".into(), members(&[])),
            ]
        );
        // The same fields as the plain scan, with or without reading inside values.
        let plain: Vec<(String, String)> = by_scan(body.as_bytes()).unwrap();
        let read: Vec<(String, String)> = got.into_iter().map(|(k, v, _)| (k, v)).collect();
        assert_eq!(read, plain);
        // A visitor that leaves values unread, or refuses one inside an object.
        let mut keys = Vec::new();
        read_fields(body, |key, _| {
            keys.push(key.into_owned());
            Some(())
        })
        .unwrap();
        assert_eq!(keys, ["u", "s", "n", "bad", "e"]);
        read_fields(body, |_, field| {
            let read = field.object(|_, _| None)?;
            assert!(!read.complete || read.raw == "{}", "{read:?}");
            Some(())
        })
        .unwrap();
        assert_eq!(read_fields(body, |_, _| None), None);
    }

    #[test]
    fn reading_inside_values_keeps_the_depth_limit_and_the_verdict() {
        // Through `Field::object` the brackets count from the same place: the scan's verdict
        // on every body below is the same either way.
        for depth in [1, 2, 64, 127, 128, 129, 130] {
            let body = nested(depth, None);
            let plain = by_scan(body.as_bytes()).is_some();
            assert_eq!(plain, depth <= 128, "depth {depth}");
            assert_eq!(read_one_level(&body).is_some(), plain, "depth {depth}");
            let swapped = nested(depth, Some(depth - 1));
            assert_eq!(read_one_level(&swapped), None, "depth {depth}");
        }
        // And on every truncation of an answer.
        let body = ANSWER.trim();
        for end in 0..body.len() {
            if let Some(cut) = body.get(..end) {
                assert_eq!(read_one_level(cut), None, "{cut}");
            }
        }
        assert!(read_one_level(body).is_some());
    }

    #[test]
    fn numbers_follow_the_grammar_not_the_value() {
        for good in [
            "0",
            "-0",
            "12",
            "-1.5",
            "2e9",
            "1E+2",
            "3.25e-7",
            "6.5e066661",
            "1e999",
        ] {
            assert!(is_json_number(good.as_bytes()), "{good}");
        }
        for bad in [
            "", "-", "01", "1.", ".5", "1e", "1e+", "+1", "1.2.3", "0x1", "1e5x", "NaN",
        ] {
            assert!(!is_json_number(bad.as_bytes()), "{bad}");
        }
        // Found by the `completion` fuzz target: serde's raw reader takes an exponent too
        // large for a float, so the scan must too.
        let body = br#"{"a":"b","c":6566666666666665.5e066661}"#;
        assert_eq!(by_scan(body), by_serde(body));
        assert!(by_scan(body).is_some());
    }

    #[test]
    fn agrees_with_serde_on_mutations_of_an_answer() {
        // Every single-byte change of the answer to a JSON-significant byte: where serde reads
        // an object, the scan finds the same fields. (The scan may accept a few bodies serde
        // refuses: those with a bad token nested inside a value, passed through unread.)
        let body = ANSWER.as_bytes();
        for at in 0..body.len() {
            for b in [
                b'"', b'\\', b'{', b'}', b'[', b']', b',', b':', b' ', b'1', b'x',
            ] {
                let mut mutated = body.to_vec();
                mutated[at] = b;
                if let Some(fields) = by_serde(&mutated) {
                    assert_eq!(
                        by_scan(&mutated),
                        Some(fields),
                        "byte {at} -> {}",
                        b as char
                    );
                }
            }
        }
    }
}
