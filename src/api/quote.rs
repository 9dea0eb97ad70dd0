//! Writing text as a JSON string literal on the request and response paths.

use bytes::BufMut;

use super::swar;

/// Appends `s` as a JSON string literal, escaped exactly as serde_json escapes it. Text with
/// nothing to escape (the usual field name, model id or generation id) is copied between
/// quotes; anything else goes through serde_json. Why (issue 12): serde's writer cost ~130
/// instructions a string, a dozen strings a request, and the request body's writer also
/// allocated a `String` for each.
pub fn push_json_str<B: BufMut>(out: &mut B, s: &str) {
    if needs_escape(s.as_bytes()) {
        // Writing a `str` into memory cannot fail.
        let _ = serde_json::to_writer(out.writer(), s);
    } else {
        out.put_u8(b'"');
        out.put_slice(s.as_bytes());
        out.put_u8(b'"');
    }
}

/// Whether `text` holds a quote, a backslash or a control character: a word at a time
/// (`swar.rs`), as most strings written are ids, names and keys of a few words.
fn needs_escape(text: &[u8]) -> bool {
    let stops = |w| swar::equal(w, b'"') | swar::equal(w, b'\\') | swar::below(w, 0x20);
    match swar::find_in_words(text, usize::MAX, stops) {
        Ok(_) => true,
        Err(at) => text[at..]
            .iter()
            .any(|&b| b < 0x20 || b == b'"' || b == b'\\'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_what_serde_json_writes() {
        let cases = [
            "",
            "model",
            "gen-1765100000-0AbC",
            "openai/gpt-4o-mini",
            "héllo wörld ✓ 😀",
            "tab\there",
            "new\nline",
            "quote\"inside",
            "back\\slash",
            "\u{1}\u{1f}\u{7f}",
            "ends with \\",
            "sixteen bytes ok and then a \"quote\" in the fourth word",
            "a control char in the second word\u{1b}",
        ];
        for s in cases {
            let mut vec = Vec::new();
            push_json_str(&mut vec, s);
            let mut bytes = bytes::BytesMut::new();
            push_json_str(&mut bytes, s);
            let want = serde_json::to_string(s).unwrap();
            assert_eq!(String::from_utf8(vec).unwrap(), want, "{s:?}");
            assert_eq!(&bytes[..], want.as_bytes(), "{s:?}");
        }
    }
}
