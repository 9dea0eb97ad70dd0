//! Stamping an OpenAI-shaped chat completion with the gateway's id, catalog model, provider
//! and usage, without building a tree of it: the provider's other fields are copied as the
//! raw slices they arrived as, in their order (issue 12: re-serialising the whole answer
//! cost more than the rest of the response path).

use bytes::Bytes;
use memchr::memmem::Finder;
use once_cell::sync::Lazy;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

use super::quote::push_json_str;
use super::scan::read_fields;
use crate::metering::{OpenAiUsage, OpenAiUsageReader, Usage};

/// A provider's chat completion, read to its top-level fields.
pub struct Completion<'a> {
    fields: Vec<(Cow<'a, str>, &'a str)>,
    /// The first `usage` field, read as the fields were found.
    usage: Option<Usage>,
}

/// What the gateway reads of a completion: usage, first finish reason, and, when the provider
/// reported no usage, the first message's text length (the estimate's basis).
#[derive(Debug, Default, PartialEq)]
pub struct Peek {
    pub usage: Option<Usage>,
    pub finish_reason: Option<String>,
    pub content_bytes: usize,
}

/// What the gateway writes over the provider's fields.
pub struct Stamp<'s> {
    pub id: &'s str,
    pub model: &'s str,
    pub provider: &'s str,
    pub usage: OpenAiUsage,
}

#[derive(Deserialize)]
struct ChoicePeek<'a> {
    #[serde(default, borrow)]
    message: Option<MessagePeek<'a>>,
}

/// The message's generated text, each as its raw JSON: the answer, a reasoning model's
/// thinking (`reasoning_content` as DeepSeek and vLLM name it, `reasoning` as OpenRouter and
/// Ollama do) and tool calls (read apart, so an odd shape there costs only their part).
#[derive(Deserialize)]
struct MessagePeek<'a> {
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
    #[serde(default, borrow)]
    reasoning_content: Option<&'a RawValue>,
    #[serde(default, borrow)]
    reasoning: Option<&'a RawValue>,
    #[serde(default, borrow)]
    tool_calls: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ToolCallPeek<'a> {
    #[serde(default, borrow)]
    function: Option<FunctionPeek<'a>>,
}

#[derive(Deserialize)]
struct FunctionPeek<'a> {
    #[serde(default, borrow)]
    name: Option<&'a RawValue>,
    #[serde(default, borrow)]
    arguments: Option<&'a RawValue>,
}

impl<'a> Completion<'a> {
    /// `None` when the body is not one JSON object (as far as `scan.rs` checks).
    pub fn parse(body: &'a [u8]) -> Option<Completion<'a>> {
        let text = std::str::from_utf8(body).ok()?;
        let mut fields = Vec::with_capacity(12);
        let (mut usage, mut usage_seen) = (None, false);
        read_fields(text, |key, field| {
            let raw = if key == "usage" && !usage_seen {
                usage_seen = true;
                let mut read = OpenAiUsageReader::default();
                let object = field.object(|k, value| read.read_member(&k, value))?;
                usage = object.complete.then(|| read.usage());
                object.raw
            } else {
                field.raw()?
            };
            fields.push((key, raw));
            Some(())
        })?;
        Some(Completion { fields, usage })
    }

    fn raw(&self, key: &str) -> Option<&'a str> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    pub fn peek(&self) -> Peek {
        let usage = self.usage;
        let choices = self.raw("choices");
        // The text's length is only the estimate's basis, when the provider reported no usage:
        // otherwise `choices` is not parsed a second time.
        let content_bytes = match (usage, choices) {
            (None, Some(choices)) => first_content_bytes(choices),
            _ => 0,
        };
        Peek {
            usage,
            finish_reason: choices.and_then(first_finish_reason),
            content_bytes,
        }
    }

    /// The completion with `id`, `model`, `provider` and `usage` replaced where the provider
    /// had them and appended (in that order) where it did not.
    pub fn stamp(&self, stamp: &Stamp<'_>) -> Bytes {
        let body_len: usize = self.fields.iter().map(|(k, v)| k.len() + v.len() + 4).sum();
        // A Vec, not a BytesMut writer: serde_json writes in many small pieces, and a Vec
        // takes each with a plain copy (issue 12).
        let mut out = Vec::with_capacity(body_len + 320);
        let mut seen = [false; 4];
        out.push(b'{');
        for (key, value) in &self.fields {
            if out.len() > 1 {
                out.push(b',');
            }
            match key {
                // Without escapes (the scan found none): as it came, quotes around.
                Cow::Borrowed(key) => {
                    out.push(b'"');
                    out.extend_from_slice(key.as_bytes());
                    out.push(b'"');
                }
                Cow::Owned(key) => push_json_str(&mut out, key),
            }
            out.push(b':');
            match stamped_index(key) {
                Some(i) if !seen[i] => {
                    seen[i] = true;
                    write_stamped(&mut out, i, stamp);
                }
                // A duplicate of a stamped key keeps the stamped value (last wins in most
                // parsers, so both copies carry it).
                Some(i) => write_stamped(&mut out, i, stamp),
                None => out.extend_from_slice(value.as_bytes()),
            }
        }
        for (i, key) in STAMPED.iter().enumerate() {
            if !seen[i] {
                if out.len() > 1 {
                    out.push(b',');
                }
                push_json_str(&mut out, key);
                out.push(b':');
                write_stamped(&mut out, i, stamp);
            }
        }
        out.push(b'}');
        Bytes::from(out)
    }
}

/// Choice 0's `finish_reason`: the first `"finish_reason"` key in `choices`. Inside JSON
/// strings every quote is escaped, so the quoted key cannot match text; a scan spares
/// parsing the choices again after validating them once.
fn first_finish_reason(choices: &str) -> Option<String> {
    static KEY: Lazy<Finder<'static>> = Lazy::new(|| Finder::new(b"\"finish_reason\""));
    let at = KEY.find(choices.as_bytes())?;
    let value = choices[at + KEY.needle().len()..]
        .trim_start()
        .strip_prefix(':')?;
    let mut de = serde_json::Deserializer::from_str(value);
    Option::<Cow<str>>::deserialize(&mut de)
        .ok()
        .flatten()
        .map(Cow::into_owned)
}

/// The length of what choice 0's message generated: its text, thinking and tool calls (as the
/// stream's estimate counts them all); 0 when `choices` has another shape. A tool call's
/// answer, counted as its `content` alone (null), was estimated at no output at all.
fn first_content_bytes(choices: &str) -> usize {
    let Some(message) = serde_json::from_str::<Vec<ChoicePeek>>(choices)
        .ok()
        .and_then(|c| c.into_iter().next())
        .and_then(|c| c.message)
    else {
        return 0;
    };
    let calls: usize = message
        .tool_calls
        .and_then(|raw| serde_json::from_str::<Vec<&RawValue>>(raw.get()).ok())
        .unwrap_or_default()
        .iter()
        .filter_map(|call| {
            serde_json::from_str::<ToolCallPeek>(call.get())
                .ok()?
                .function
        })
        .map(|f| text_len(f.name) + text_len(f.arguments))
        .sum();
    text_len(message.content)
        + text_len(message.reasoning_content)
        + text_len(message.reasoning)
        + calls
}

/// The length of a JSON string's text; 0 for anything else.
fn text_len(raw: Option<&RawValue>) -> usize {
    raw.and_then(|raw| serde_json::from_str::<Cow<str>>(raw.get()).ok())
        .map_or(0, |text| text.len())
}

const STAMPED: [&str; 4] = ["id", "model", "provider", "usage"];

fn stamped_index(key: &str) -> Option<usize> {
    STAMPED.iter().position(|k| *k == key)
}

fn write_stamped(out: &mut Vec<u8>, i: usize, stamp: &Stamp<'_>) {
    match i {
        0 => push_json_str(out, stamp.id),
        1 => push_json_str(out, stamp.model),
        2 => push_json_str(out, stamp.provider),
        _ => stamp.usage.write_json(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metering::Cost;
    use serde_json::{json, Value};

    fn stamp() -> Stamp<'static> {
        Stamp {
            id: "gen-1",
            model: "openai/gpt-x",
            provider: "openai",
            usage: Usage {
                prompt: 3,
                completion: 2,
                ..Usage::default()
            }
            .to_openai(Cost(0)),
        }
    }

    #[test]
    fn replaces_stamped_fields_in_place_and_copies_the_rest() {
        let body = br#"{"id":"chatcmpl-9","object":"chat.completion","created":1,"model":"gpt-x-2024",
            "choices":[{"index":0,"message":{"role":"assistant","content":"h\u00e9llo \"x\""},"finish_reason":"stop"}],
            "usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5},"system_fingerprint":"fp_1"}"#;
        let c = Completion::parse(body).unwrap();
        let peek = c.peek();
        assert_eq!(peek.finish_reason.as_deref(), Some("stop"));
        assert_eq!(peek.usage.map(|u| (u.prompt, u.completion)), Some((3, 2)));
        let out = c.stamp(&stamp());
        let v: Value = serde_json::from_slice(&out).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "id",
                "object",
                "created",
                "model",
                "choices",
                "usage",
                "system_fingerprint",
                "provider"
            ]
        );
        assert_eq!(v["id"], "gen-1");
        assert_eq!(v["model"], "openai/gpt-x");
        assert_eq!(v["provider"], "openai");
        assert_eq!(v["usage"]["total_tokens"], 5);
        assert_eq!(v["usage"]["cost"], 0.0);
        assert_eq!(v["choices"][0]["message"]["content"], "héllo \"x\"");
        // Untouched values are the provider's bytes.
        assert!(out.windows(16).any(|w| w == br#"h\u00e9llo \"x\""#));
    }

    #[test]
    fn appends_what_the_provider_left_out_and_reads_odd_shapes_leniently() {
        let c = Completion::parse(br#"{"choices":"nope","\u0069d2":null}"#).unwrap();
        assert_eq!(c.peek(), Peek::default());
        let v: Value = serde_json::from_slice(&c.stamp(&stamp())).unwrap();
        assert_eq!(
            v,
            json!({"choices": "nope", "id2": null, "id": "gen-1", "model": "openai/gpt-x",
                   "provider": "openai", "usage": stamp().usage})
        );
        let empty: Value =
            serde_json::from_slice(&Completion::parse(b" {} ").unwrap().stamp(&stamp())).unwrap();
        assert_eq!(empty["id"], "gen-1");
    }

    #[test]
    fn reads_the_first_finish_reason_and_the_text_length_without_usage() {
        let body = br#"{"choices":[{"message":{"content":"say \"finish_reason\": \"no\" h\u00e9"},
            "logprobs":null, "finish_reason" : "length"},{"finish_reason":"stop"}]}"#;
        let peek = Completion::parse(body).unwrap().peek();
        assert_eq!(peek.finish_reason.as_deref(), Some("length"));
        assert_eq!(peek.content_bytes, r#"say "finish_reason": "no" hé"#.len());
        assert_eq!(peek.usage, None);
        // A tool call and a model's thinking are generated text too.
        let call = br#"{"choices":[{"message":{"content":null,"reasoning_content":"why",
            "tool_calls":[{"id":"c1","type":"function","function":{"name":"get","arguments":"{\"a\":1}"}},
            {"type":"function","function":{"name":null}}, 7]}}]}"#;
        let peek = Completion::parse(call).unwrap().peek();
        assert_eq!(
            peek.content_bytes,
            "why".len() + "get".len() + r#"{"a":1}"#.len()
        );
        let tools_odd =
            br#"{"choices":[{"message":{"content":"ok","reasoning":"hm","tool_calls":{}}}]}"#;
        assert_eq!(
            Completion::parse(tools_odd).unwrap().peek().content_bytes,
            4
        );
        let unfinished = br#"{"choices":[{"message":{"content":null},"finish_reason":null}]}"#;
        assert_eq!(
            Completion::parse(unfinished).unwrap().peek(),
            Peek::default()
        );
    }

    #[test]
    fn usage_read_in_the_scan_is_the_usage_read_from_its_text_on_mutations() {
        // Every single-byte change to a JSON-significant byte: the scan's verdict is the plain
        // scan's, and the usage it read is what reading the first `usage` value's text
        // gives (and, where serde reads the answer, what the tree reader gives).
        // OpenAI's shape, and xAI's (reasoning apart from completion; total with it).
        let openai: &[u8] =
            br#"{"id":"c-1","choices":[{"message":{"content":"hi"},"finish_reason":"stop"}],
            "usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19,
            "prompt_tokens_details":{"cached_tokens":4,"audio_tokens":0},
            "completion_tokens_details":{"reasoning_tokens":3,"accepted_prediction_tokens":0}}}"#;
        let xai: &[u8] =
            br#"{"id":"c-1","choices":[{"message":{"content":"hi"},"finish_reason":"stop"}],
            "usage":{"prompt_tokens":12,"completion_tokens":4,"total_tokens":19,
            "prompt_tokens_details":{"cached_tokens":4,"audio_tokens":0},
            "completion_tokens_details":{"reasoning_tokens":3,"accepted_prediction_tokens":0}}}"#;
        let want = Usage {
            prompt: 12,
            completion: 7,
            cached_prompt: 4,
            reasoning: 3,
            cache_write: 0,
            estimated: false,
        };
        let mut read = 0;
        for answer in [openai, xai] {
            assert_eq!(Completion::parse(answer).unwrap().peek().usage, Some(want));
            for at in 0..answer.len() {
                for b in [b'"', b'{', b'}', b'[', b']', b',', b':', b' ', b'0', b'x'] {
                    let mut body = answer.to_vec();
                    body[at] = b;
                    let fields = crate::api::scan::top_level_fields(&body);
                    let completion = Completion::parse(&body);
                    assert_eq!(
                        completion.is_some(),
                        fields.is_some(),
                        "byte {at} -> {}",
                        b as char
                    );
                    let (Some(fields), Some(completion)) = (fields, completion) else {
                        continue;
                    };
                    let from_text = fields
                        .iter()
                        .find(|(k, _)| k == "usage")
                        .and_then(|(_, raw)| Usage::from_openai_raw(raw));
                    let usage = completion.peek().usage;
                    assert_eq!(usage, from_text, "byte {at} -> {}", b as char);
                    if let Ok(tree) = serde_json::from_slice::<Value>(&body) {
                        let from_tree = tree.get("usage").and_then(Usage::from_openai);
                        assert_eq!(usage, from_tree, "byte {at} -> {}", b as char);
                    }
                    read += usize::from(usage.is_some());
                }
            }
        }
        assert!(read > 2000, "{read}");
    }

    #[test]
    fn keys_are_written_as_they_came_or_escaped_as_serde_would() {
        let body = br#"{"a\"b":1,"plain":2,"\u0069d":"x"}"#;
        let out = Completion::parse(body).unwrap().stamp(&stamp());
        let text = std::str::from_utf8(&out).unwrap();
        assert!(
            text.starts_with(r#"{"a\"b":1,"plain":2,"id":"gen-1","#),
            "{text}"
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["a\"b"], 1);
    }

    #[test]
    fn refuses_what_is_not_one_object() {
        for body in [&b""[..], b"[]", b"{", b"{} {}", b"\"x\"", b"{\"a\":}"] {
            assert!(Completion::parse(body).is_none(), "{body:?}");
        }
    }
}
