//! Deterministic text helpers: message text, word deltas, token counts, fake embeddings.
//! Everything here is a pure function so tests can predict exactly what the mock answers.

use std::ops::Range;

use serde_json::Value;

/// Extra prompt tokens counted per message (OpenAI's per-message overhead, roughly).
const TOKENS_PER_MESSAGE: u64 = 3;
/// How much of the user's text the default reply echoes.
const ECHO_CHARS: usize = 60;

/// The text of one message: a string `content`, or the `text` of its text parts joined by spaces.
pub fn message_text(message: &Value) -> String {
    match message.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter(|p| matches!(p.get("type").and_then(Value::as_str), None | Some("text")))
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// The default reply: an echo of the last user message, truncated to 60 characters.
pub fn default_reply(messages: &[Value]) -> String {
    let said = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .map(message_text)
        .unwrap_or_default();
    let said: String = said.chars().take(ECHO_CHARS).collect();
    format!("Hello from the mock! You said: {said}")
}

/// `chunks=N`: "w1 w2 ... wN", which splits into exactly N word deltas.
pub fn numbered_words(n: usize) -> String {
    let mut s = String::with_capacity(n * 8);
    for i in 1..=n {
        if i > 1 {
            s.push(' ');
        }
        s.push('w');
        s.push_str(&i.to_string());
    }
    s
}

/// prompt_tokens: whitespace-separated words across all message text, plus 3 per message.
pub fn prompt_tokens(messages: &[Value]) -> u64 {
    messages
        .iter()
        .map(|m| word_count(&message_text(m)) + TOKENS_PER_MESSAGE)
        .sum()
}

pub fn word_count(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

/// Splits `s` into stream deltas: each a word plus the whitespace after it (leading whitespace
/// joins the first delta), so the deltas concatenate back to `s` exactly.
pub fn word_spans(s: &str) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    let mut start = 0;
    let mut in_space = false;
    let mut seen_word = false;
    for (i, c) in s.char_indices() {
        if c.is_whitespace() {
            in_space = true;
        } else {
            if in_space && seen_word {
                spans.push(start..i);
                start = i;
            }
            in_space = false;
            seen_word = true;
        }
    }
    if start < s.len() {
        spans.push(start..s.len());
    }
    spans
}

/// Eight floats in [-1, 1) derived from the text (FNV-1a seed, xorshift stream).
pub fn embedding(text: &str) -> [f32; 8] {
    let mut x: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        x ^= u64::from(b);
        x = x.wrapping_mul(0x0100_0000_01b3);
    }
    let mut out = [0f32; 8];
    for v in &mut out {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // 24 random bits -> [0, 1) -> [-1, 1), rounded to 4 places to keep JSON short.
        let unit = (x >> 40) as f32 / (1u64 << 24) as f32;
        *v = ((unit * 2.0 - 1.0) * 10_000.0).round() / 10_000.0;
    }
    out
}

/// `encoding_format: "base64"`: little-endian f32 bytes, standard base64 (what OpenAI sends).
pub fn embedding_base64(v: &[f32]) -> String {
    let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
    base64(&bytes)
}

fn base64(data: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(TABLE[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn word_spans_concatenate_back() {
        let s = "Hello from  the mock!\nbye ";
        let spans = word_spans(s);
        let parts: Vec<&str> = spans.iter().map(|r| &s[r.clone()]).collect();
        assert_eq!(parts, ["Hello ", "from  ", "the ", "mock!\n", "bye "]);
        assert_eq!(parts.concat(), s);
        assert_eq!(word_spans("  lead"), vec![0..6]);
        assert!(word_spans("").is_empty());
        assert_eq!(word_spans(&numbered_words(5)).len(), 5);
        assert_eq!(numbered_words(3), "w1 w2 w3");
    }

    #[test]
    fn prompt_tokens_count_words_plus_three_per_message() {
        let msgs = [
            json!({"role": "system", "content": "be brief"}),
            json!({"role": "user", "content": [
                {"type": "text", "text": "hi there"},
                {"type": "image_url", "image_url": {"url": "x"}},
                {"type": "text", "text": "again"}
            ]}),
            json!({"role": "assistant", "content": null}),
        ];
        assert_eq!(prompt_tokens(&msgs), (2 + 3) + (3 + 3) + 3);
        assert_eq!(
            default_reply(&msgs),
            "Hello from the mock! You said: hi there again"
        );
    }

    #[test]
    fn default_reply_truncates_to_60_chars() {
        let long = "é".repeat(100);
        let reply = default_reply(&[json!({"role": "user", "content": long})]);
        assert_eq!(
            reply.chars().count(),
            "Hello from the mock! You said: ".len() + 60
        );
        assert_eq!(default_reply(&[]), "Hello from the mock! You said: ");
    }

    #[test]
    fn embeddings_are_deterministic_and_base64_is_standard() {
        assert_eq!(embedding("a"), embedding("a"));
        assert_ne!(embedding("a"), embedding("b"));
        assert!(embedding("a").iter().all(|v| (-1.0..1.0).contains(v)));
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(b"Ma"), "TWE=");
        assert_eq!(base64(b"M"), "TQ==");
        assert_eq!(embedding_base64(&[1.0]), "AACAPw==");
    }
}
