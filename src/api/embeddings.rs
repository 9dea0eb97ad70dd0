//! `POST /v1/embeddings`: OpenAI's embeddings request, routed like chat (`models`, `provider`).
//!
//! OpenAI-dialect providers get the client's body with the model rewritten ([`openai_body`])
//! and answer in the client's shape already; Gemini is converted in
//! `dialects::gemini::embeddings`. Either answer is then [`stamp`]ed with the generation id,
//! the catalog model, the provider and the cost, as chat answers are.

use bytes::Bytes;
use serde_json::{json, Value};

use super::{ApiError, TopLevelFields};
use crate::metering::{Cost, Usage, ESTIMATED_BYTES_PER_TOKEN};
use crate::routing::ProviderPrefs;

/// What to embed, in the four forms OpenAI takes.
#[derive(Debug, Clone, PartialEq)]
pub enum EmbeddingInput {
    Text(String),
    Texts(Vec<String>),
    /// One input given as token ids.
    Tokens(Vec<u32>),
    TokenBatches(Vec<Vec<u32>>),
}

impl EmbeddingInput {
    /// How many embeddings the answer holds.
    pub fn len(&self) -> usize {
        match self {
            EmbeddingInput::Text(_) | EmbeddingInput::Tokens(_) => 1,
            EmbeddingInput::Texts(t) => t.len(),
            EmbeddingInput::TokenBatches(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The texts, unless the input is token ids (which only OpenAI-dialect hosts read).
    pub fn texts(&self) -> Option<Vec<&str>> {
        match self {
            EmbeddingInput::Text(t) => Some(vec![t.as_str()]),
            EmbeddingInput::Texts(t) => Some(t.iter().map(String::as_str).collect()),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EncodingFormat {
    #[default]
    Float,
    /// Little-endian f32s, base64 (what the `openai` SDKs ask for by default).
    Base64,
}

#[derive(Debug)]
pub struct EmbeddingsRequest {
    pub fields: TopLevelFields,
    pub model: String,
    pub fallbacks: Vec<String>,
    pub prefs: ProviderPrefs,
    pub input: EmbeddingInput,
    pub encoding_format: EncodingFormat,
    pub dimensions: Option<u64>,
}

pub fn parse(body: &Bytes) -> Result<EmbeddingsRequest, ApiError> {
    let fields = TopLevelFields::parse(body.clone())?;
    let model: String = fields
        .get("model", "a string")?
        .ok_or_else(|| ApiError::bad_param("model", "`model` is required"))?;
    if model.trim().is_empty() {
        return Err(ApiError::bad_param("model", "`model` must not be empty"));
    }
    let raw_input: Value = fields
        .get(
            "input",
            "a string, an array of strings or an array of token arrays",
        )?
        .ok_or_else(|| ApiError::bad_param("input", "`input` is required"))?;
    let input = read_input(raw_input)?;
    let encoding_format = match fields
        .get::<String>("encoding_format", "a string")?
        .as_deref()
    {
        None | Some("float") => EncodingFormat::Float,
        Some("base64") => EncodingFormat::Base64,
        Some(other) => {
            return Err(ApiError::bad_param(
                "encoding_format",
                format!("`encoding_format` `{other}` is not one of float, base64"),
            ))
        }
    };
    let dimensions: Option<u64> = fields.get("dimensions", "a positive integer")?;
    if dimensions == Some(0) {
        return Err(ApiError::bad_param(
            "dimensions",
            "`dimensions` must be a positive integer",
        ));
    }
    let fallbacks = fields
        .get("models", "an array of model ids")?
        .unwrap_or_default();
    let prefs: ProviderPrefs = match fields.raw("provider") {
        None | Some(b"null") => ProviderPrefs::default(),
        Some(raw) => serde_json::from_slice(raw).map_err(|e| {
            ApiError::bad_param("provider", format!("`provider` is not valid: {e}"))
        })?,
    };
    Ok(EmbeddingsRequest {
        fields,
        model,
        fallbacks,
        prefs,
        input,
        encoding_format,
        dimensions,
    })
}

fn read_input(v: Value) -> Result<EmbeddingInput, ApiError> {
    let bad = |what: &str| ApiError::bad_param("input", format!("`input` {what}"));
    let token = |v: &Value| v.as_u64().and_then(|n| u32::try_from(n).ok());
    let input = match v {
        Value::String(s) if s.is_empty() => return Err(bad("must not be an empty string")),
        Value::String(s) => EmbeddingInput::Text(s),
        Value::Array(items) if items.is_empty() => return Err(bad("must not be an empty array")),
        Value::Array(items) => match &items[0] {
            Value::String(_) => EmbeddingInput::Texts(
                items
                    .into_iter()
                    .map(|i| match i {
                        Value::String(s) if !s.is_empty() => Ok(s),
                        _ => Err(bad("must hold only non-empty strings")),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Value::Number(_) => EmbeddingInput::Tokens(
                items
                    .iter()
                    .map(|i| token(i).ok_or_else(|| bad("token ids must be non-negative integers")))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Array(_) => EmbeddingInput::TokenBatches(
                items
                    .iter()
                    .map(|batch| match batch.as_array() {
                        Some(ids) if !ids.is_empty() => ids
                            .iter()
                            .map(|i| {
                                token(i)
                                    .ok_or_else(|| bad("token ids must be non-negative integers"))
                            })
                            .collect::<Result<Vec<u32>, _>>(),
                        _ => Err(bad("must hold only non-empty token arrays")),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            _ => {
                return Err(bad(
                    "must be a string, an array of strings or an array of token arrays",
                ))
            }
        },
        _ => {
            return Err(bad(
                "must be a string, an array of strings or an array of token arrays",
            ))
        }
    };
    Ok(input)
}

impl EmbeddingsRequest {
    /// The documented estimate for a provider that reports no tokens: about four bytes of text
    /// per token (token ids count as themselves).
    pub fn estimated_usage(&self) -> Usage {
        let prompt = match &self.input {
            EmbeddingInput::Tokens(t) => t.len() as u64,
            EmbeddingInput::TokenBatches(b) => b.iter().map(|t| t.len() as u64).sum(),
            text => text
                .texts()
                .unwrap_or_default()
                .iter()
                .map(|t| (t.len() as u64).div_ceil(ESTIMATED_BYTES_PER_TOKEN))
                .sum(),
        };
        Usage {
            prompt,
            estimated: true,
            ..Usage::default()
        }
    }
}

/// The upstream body for an OpenAI-dialect provider: the client's, with `model` rewritten and
/// the gateway's own fields removed; every other value is copied as the client sent it.
pub fn openai_body(fields: &TopLevelFields, upstream_model: &str) -> Bytes {
    crate::dialects::openai::chat_request_body(fields, upstream_model, false)
}

/// The provider's reported usage (`usage.prompt_tokens`); `None` when it reported none.
pub fn usage(response: &Value) -> Option<Usage> {
    let u = response
        .get("usage")
        .filter(|u| u.get("prompt_tokens").is_some())?;
    Usage::from_openai(u)
}

/// The answer as the client gets it: the generation id, the catalog model, the provider, and
/// `usage` with `cost` (USD), marked `estimated` when the gateway counted.
pub fn stamp(
    response: &Value,
    id: &str,
    model: &str,
    provider: &str,
    usage: &Usage,
    cost: Cost,
) -> Value {
    let mut out = response.clone();
    if !out.is_object() {
        out = json!({ "object": "list", "data": [] });
    }
    out["id"] = json!(id);
    out["model"] = json!(model);
    out["provider"] = json!(provider);
    let mut u =
        json!({ "prompt_tokens": usage.prompt, "total_tokens": usage.total(), "cost": cost.usd() });
    if usage.estimated {
        u["estimated"] = json!(true);
    }
    out["usage"] = u;
    out
}

/// An embedding as OpenAI's `base64` encoding sends it: little-endian f32s, base64.
pub fn base64_floats(values: &[f64]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = values
        .iter()
        .flat_map(|v| (*v as f32).to_le_bytes())
        .collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            out.push(if i <= chunk.len() {
                TABLE[((n >> shift) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialects::common::golden::{self, Kind};

    fn parse_str(body: &str) -> Result<EmbeddingsRequest, ApiError> {
        parse(&Bytes::copy_from_slice(body.as_bytes()))
    }

    /// `tests/golden/front/embeddings/<case>.input.json` -> `<case>.openai.json`: the body an
    /// OpenAI-dialect provider gets.
    #[test]
    fn golden_requests_become_openai_bodies() {
        let cases = golden::cases("front/embeddings");
        let requests: Vec<_> = cases.iter().filter(|c| c.kind == Kind::Request).collect();
        assert!(requests.len() >= 4, "too few request cases");
        let failures: Vec<String> = requests
            .iter()
            .filter_map(|case| {
                let req = parse(&Bytes::from(case.input.clone())).map_err(|e| e.to_string());
                let body = req.map(|r| openai_body(&r.fields, "text-embedding-3-small"));
                let actual = body
                    .and_then(|b| serde_json::from_slice::<Value>(&b).map_err(|e| e.to_string()));
                let checked = actual.and_then(|v| case.check("openai.json", &golden::pretty(&v)));
                checked.err().map(|e| format!("{}: {e}", case.name))
            })
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    }

    #[test]
    fn reads_every_input_form() {
        let r = parse_str(
            r#"{"model":"m","input":"hi","encoding_format":"base64","dimensions":256,
            "models":["a/b"],"provider":{"order":["x"]}}"#,
        )
        .unwrap();
        assert_eq!(r.input, EmbeddingInput::Text("hi".into()));
        assert_eq!(
            (r.encoding_format, r.dimensions),
            (EncodingFormat::Base64, Some(256))
        );
        assert_eq!(r.fallbacks, ["a/b"]);
        assert_eq!(r.prefs.order.as_deref(), Some(&["x".to_string()][..]));
        let r = parse_str(r#"{"model":"m","input":["a","b"]}"#).unwrap();
        assert_eq!((r.input.len(), r.input.texts()), (2, Some(vec!["a", "b"])));
        let r = parse_str(r#"{"model":"m","input":[1,2,3]}"#).unwrap();
        assert_eq!((r.input.len(), r.input.texts()), (1, None));
        let r = parse_str(r#"{"model":"m","input":[[1,2],[3]]}"#).unwrap();
        assert_eq!(
            r.input,
            EmbeddingInput::TokenBatches(vec![vec![1, 2], vec![3]])
        );
        assert_eq!(r.estimated_usage().prompt, 3);
        let r = parse_str(r#"{"model":"m","input":["abcdefgh","x"]}"#).unwrap();
        let u = r.estimated_usage();
        assert_eq!((u.prompt, u.estimated), (3, true));
    }

    #[test]
    fn invalid_requests_name_the_parameter() {
        let cases = [
            (r#"{"input":"x"}"#, "model"),
            (r#"{"model":"","input":"x"}"#, "model"),
            (r#"{"model":"m"}"#, "input"),
            (r#"{"model":"m","input":""}"#, "input"),
            (r#"{"model":"m","input":[]}"#, "input"),
            (r#"{"model":"m","input":["a",""]}"#, "input"),
            (r#"{"model":"m","input":["a",1]}"#, "input"),
            (r#"{"model":"m","input":[1,-2]}"#, "input"),
            (r#"{"model":"m","input":[1,4294967296]}"#, "input"),
            (r#"{"model":"m","input":[[1],[]]}"#, "input"),
            (r#"{"model":"m","input":[{"a":1}]}"#, "input"),
            (r#"{"model":"m","input":5}"#, "input"),
            (
                r#"{"model":"m","input":"x","encoding_format":"int8"}"#,
                "encoding_format",
            ),
            (r#"{"model":"m","input":"x","dimensions":0}"#, "dimensions"),
            (
                r#"{"model":"m","input":"x","dimensions":"big"}"#,
                "dimensions",
            ),
            (
                r#"{"model":"m","input":"x","provider":{"sort":"fastest"}}"#,
                "provider",
            ),
        ];
        for (body, param) in cases {
            let e = parse_str(body).expect_err(body);
            assert_eq!((e.status, e.param.as_deref()), (400, Some(param)), "{body}");
        }
    }

    #[test]
    fn stamps_the_gateway_identity_and_cost() {
        let upstream = json!({ "object": "list", "model": "text-embedding-3-small",
            "data": [{ "object": "embedding", "index": 0, "embedding": [0.5, -0.25] }],
            "usage": { "prompt_tokens": 7, "total_tokens": 7 } });
        let reported = usage(&upstream).unwrap();
        assert_eq!(
            (reported.prompt, reported.completion, reported.estimated),
            (7, 0, false)
        );
        let out = stamp(
            &upstream,
            "gen-1",
            "openai/text-embedding-3-small",
            "openai",
            &reported,
            Cost(250_000_000_000),
        );
        assert_eq!(out["id"], "gen-1");
        assert_eq!(out["model"], "openai/text-embedding-3-small");
        assert_eq!(out["provider"], "openai");
        assert_eq!(out["data"], upstream["data"]);
        assert_eq!(
            out["usage"],
            json!({ "prompt_tokens": 7, "total_tokens": 7, "cost": 0.25 })
        );
        assert!(usage(&json!({ "data": [] })).is_none());
        let estimated = Usage {
            prompt: 3,
            estimated: true,
            ..Usage::default()
        };
        let out = stamp(
            &json!("not an object"),
            "gen-2",
            "m",
            "p",
            &estimated,
            Cost(0),
        );
        assert_eq!(out["usage"]["estimated"], true);
        assert_eq!(out["data"], json!([]));
    }

    #[test]
    fn base64_is_little_endian_f32() {
        // 1.0f32 = 00 00 80 3f; -2.0f32 = 00 00 00 c0.
        assert_eq!(base64_floats(&[1.0]), "AACAPw==");
        assert_eq!(base64_floats(&[1.0, -2.0]), "AACAPwAAAMA=");
        assert_eq!(base64_floats(&[]), "");
    }
}
