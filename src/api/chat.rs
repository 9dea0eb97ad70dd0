//! `POST /v1/chat/completions` requests: the routing fields the gateway reads, on top of the
//! client's body that it forwards (OpenAI Chat Completions plus OpenRouter's extensions).

use bytes::Bytes;

use super::error::ApiError;
use super::fields::TopLevelFields;
use crate::routing::ProviderPrefs;

/// Fields that only mean something to the gateway; they never reach a provider.
pub const GATEWAY_ONLY_FIELDS: &[&str] = &[
    "models",
    "provider",
    "session_id",
    "route",
    "transforms",
    "plugins",
    "usage",
];

/// Request parameters that `provider.require_parameters` checks against endpoint `supports`.
const CHECKED_PARAMETERS: &[&str] = &[
    "tools",
    "tool_choice",
    "response_format",
    "structured_outputs",
    "logprobs",
    "top_logprobs",
    "seed",
    "reasoning",
    "stop",
];

#[derive(Debug)]
pub struct ChatRequest {
    pub fields: TopLevelFields,
    pub model: String,
    pub fallbacks: Vec<String>,
    pub stream: bool,
    pub prefs: ProviderPrefs,
    /// Sticky-routing key: `session_id`, else `prompt_cache_key` (the header is read apart).
    pub session_id: Option<String>,
    /// `max_completion_tokens`, else `max_tokens`.
    pub max_output_tokens: Option<u64>,
    /// `n`: how many answers the client asks for (1 when absent or not a count; an invalid
    /// `n` is the provider's to refuse). Each may be `max_output_tokens` long.
    pub answers: u64,
    /// Which of the checked parameters the request uses.
    pub parameters: Vec<&'static str>,
}

impl ChatRequest {
    pub fn parse(body: Bytes) -> Result<ChatRequest, ApiError> {
        let fields = TopLevelFields::parse(body)?;
        let mut fallbacks: Vec<String> = fields
            .get("models", "an array of model ids")?
            .unwrap_or_default();
        let model: String = match fields.get("model", "a string")? {
            Some(model) => model,
            // OpenRouter's fallback form: `models` alone, the first being the model.
            None if !fallbacks.is_empty() => fallbacks.remove(0),
            None => {
                return Err(ApiError::bad_param(
                    "model",
                    "`model` (or a non-empty `models`) is required",
                ))
            }
        };
        if model.trim().is_empty() {
            return Err(ApiError::bad_param("model", "`model` must not be empty"));
        }
        match fields.raw("messages") {
            Some(raw) if raw.first() == Some(&b'[') => {}
            Some(_) => {
                return Err(ApiError::bad_param(
                    "messages",
                    "`messages` must be an array",
                ))
            }
            None => return Err(ApiError::bad_param("messages", "`messages` is required")),
        }
        let stream = fields.get("stream", "a boolean")?.unwrap_or(false);
        let prefs: ProviderPrefs = match fields.raw("provider") {
            None | Some(b"null") => ProviderPrefs::default(),
            Some(raw) => serde_json::from_slice(raw).map_err(|e| {
                ApiError::bad_param("provider", format!("`provider` is not valid: {e}"))
            })?,
        };
        let session_id = match fields.get::<String>("session_id", "a string")? {
            Some(s) => Some(s),
            None => fields.get("prompt_cache_key", "a string")?,
        };
        let max_output_tokens =
            match fields.get::<u64>("max_completion_tokens", "a non-negative integer")? {
                Some(n) => Some(n),
                None => fields.get("max_tokens", "a non-negative integer")?,
            };
        let answers = fields
            .get::<u64>("n", "a positive integer")
            .ok()
            .flatten()
            .unwrap_or(1)
            .max(1);
        let parameters = CHECKED_PARAMETERS
            .iter()
            .copied()
            .filter(|p| fields.raw(p).is_some_and(|v| v != b"null"))
            .collect();
        Ok(ChatRequest {
            fields,
            model,
            fallbacks,
            stream,
            prefs,
            session_id,
            max_output_tokens,
            answers,
            parameters,
        })
    }
}

#[derive(serde::Deserialize)]
struct MessageHead<'a> {
    #[serde(borrow)]
    role: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    content: Option<&'a serde_json::value::RawValue>,
}

impl ChatRequest {
    /// The raw content of the first system (or developer) message and the first user message:
    /// what identifies a conversation when the client gives no session id. Parses messages
    /// only up to the first user message.
    pub fn conversation_opening(&self) -> (Option<&[u8]>, Option<&[u8]>) {
        let Some(raw) = self.fields.raw("messages") else {
            return (None, None);
        };
        let Ok(messages) = serde_json::from_slice::<Vec<&serde_json::value::RawValue>>(raw) else {
            return (None, None);
        };
        let mut system = None;
        for m in messages {
            let Ok(head) = serde_json::from_str::<MessageHead>(m.get()) else {
                continue;
            };
            let content = head.content.map(|c| c.get().as_bytes());
            match head.role.as_deref() {
                Some("system" | "developer") if system.is_none() => system = content,
                Some("user") => return (system, content),
                _ => {}
            }
        }
        (system, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<ChatRequest, ApiError> {
        ChatRequest::parse(Bytes::copy_from_slice(body.as_bytes()))
    }

    #[test]
    fn reads_routing_fields() {
        let r = parse(
            r#"{"model":"a/b","messages":[],"models":["c/d"],"stream":true,
                "provider":{"only":["x"]},"session_id":"s1","max_tokens":50,"tools":[]}"#,
        )
        .unwrap();
        assert_eq!(r.model, "a/b");
        assert_eq!(r.fallbacks, ["c/d"]);
        assert!(r.stream);
        assert_eq!(r.prefs.only.as_deref(), Some(&["x".to_string()][..]));
        assert_eq!(r.session_id.as_deref(), Some("s1"));
        assert_eq!(r.max_output_tokens, Some(50));
        assert_eq!(r.parameters, ["tools"]);
    }

    #[test]
    fn models_alone_name_the_model_and_its_fallbacks() {
        let r = parse(r#"{"models":["a/b","c/d"],"messages":[]}"#).unwrap();
        assert_eq!(
            (r.model.as_str(), &r.fallbacks[..]),
            ("a/b", &["c/d".to_string()][..])
        );
        for body in [r#"{"messages":[]}"#, r#"{"models":[],"messages":[]}"#] {
            let e = parse(body).unwrap_err();
            assert!(e.message.contains("`model`"), "{}", e.message);
        }
    }

    #[test]
    fn finds_the_conversation_opening() {
        let r = parse(r#"{"model":"m","messages":[{"role":"system","content":"be brief"},
            {"role":"assistant","content":"x"},{"role":"user","content":[{"type":"text","text":"hi"}]}]}"#).unwrap();
        let (system, user) = r.conversation_opening();
        assert_eq!(system, Some(&br#""be brief""#[..]));
        assert_eq!(user, Some(&br#"[{"type":"text","text":"hi"}]"#[..]));
    }

    #[test]
    fn names_the_bad_parameter() {
        let cases = [
            (r#"{"messages":[]}"#, "model"),
            (r#"{"model":5,"messages":[]}"#, "model"),
            (r#"{"model":"a"}"#, "messages"),
            (r#"{"model":"a","messages":"hi"}"#, "messages"),
            (r#"{"model":"a","messages":[],"stream":"yes"}"#, "stream"),
            (
                r#"{"model":"a","messages":[],"max_tokens":-1}"#,
                "max_tokens",
            ),
            (
                r#"{"model":"a","messages":[],"provider":{"sort":"fastest"}}"#,
                "provider",
            ),
        ];
        for (body, param) in cases {
            let e = parse(body).unwrap_err();
            assert_eq!((e.status, e.param.as_deref()), (400, Some(param)), "{body}");
        }
    }
}
