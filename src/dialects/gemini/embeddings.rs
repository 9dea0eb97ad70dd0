//! OpenAI embeddings requests on Gemini: one text goes to `/models/{m}:embedContent`, a list
//! to `/models/{m}:batchEmbedContents` (one request per text, answered in order), and the
//! answer becomes OpenAI's `{"object": "list", "data": [...]}`.
//!
//! - `dimensions` -> `outputDimensionality`.
//! - Token-id inputs cannot be sent: Gemini takes text only (a 400; the proxy should not route
//!   token inputs to Gemini at all).
//! - `encoding_format: base64` is honoured by encoding Gemini's floats the way OpenAI does.
//! - Gemini reports no token counts for embeddings (Vertex's `usageMetadata.promptTokenCount`
//!   is read when present): the usage is the request's estimate, marked `estimated`.

use bytes::Bytes;
use serde_json::{json, Value};

use crate::api::embeddings::{base64_floats, EmbeddingsRequest, EncodingFormat};
use crate::api::ApiError;
use crate::metering::Usage;

/// `/models/{model}:embedContent`, or `:batchEmbedContents` for a list, appended to the
/// provider's base URL; the model is escaped as for chat.
pub fn path(upstream_model: &str, batch: bool) -> String {
    let chat = super::chat_path(upstream_model, false);
    let model_path = chat.strip_suffix(":generateContent").unwrap_or(&chat);
    let method = if batch {
        ":batchEmbedContents"
    } else {
        ":embedContent"
    };
    format!("{model_path}{method}")
}

/// Whether the request goes to `batchEmbedContents` (any list of texts, even of one, so the
/// answer holds what a list asked for).
pub fn is_batch(req: &EmbeddingsRequest) -> bool {
    !matches!(req.input, crate::api::embeddings::EmbeddingInput::Text(_))
}

/// The Gemini body for `req`, and whether it is a batch (which decides [`path`]).
pub fn request_body(
    req: &EmbeddingsRequest,
    upstream_model: &str,
) -> Result<(bool, Bytes), ApiError> {
    let texts = req.input.texts().ok_or_else(|| {
        ApiError::bad_param(
            "input",
            "Gemini embeds text only; token-id inputs cannot be sent to it",
        )
    })?;
    let one = |text: &str, with_model: bool| {
        let mut r = json!({ "content": { "parts": [{ "text": text }] } });
        if with_model {
            let model = upstream_model
                .strip_prefix("models/")
                .unwrap_or(upstream_model);
            r["model"] = json!(format!("models/{model}"));
        }
        if let Some(d) = req.dimensions {
            r["outputDimensionality"] = json!(d);
        }
        r
    };
    let batch = is_batch(req);
    let body = if batch {
        let requests: Vec<Value> = texts.iter().map(|t| one(t, true)).collect();
        json!({ "requests": requests })
    } else {
        one(texts.first().copied().unwrap_or_default(), false)
    };
    Ok((batch, Bytes::from(body.to_string())))
}

/// Gemini's answer as OpenAI's embeddings list (model and id are the proxy's to stamp), and
/// the usage: reported, or the request's estimate marked `estimated`. An answer that is not
/// Gemini's embeddings, or holds the wrong number of them, is a 502.
pub fn response_to_openai(
    body: &[u8],
    req: &EmbeddingsRequest,
) -> Result<(Value, Usage), ApiError> {
    let bad =
        |what: &str| ApiError::bad_gateway(format!("the provider's embeddings answer {what}"));
    let v: Value = serde_json::from_slice(body).map_err(|_| bad("is not JSON"))?;
    let vectors: Vec<&Value> = if is_batch(req) {
        v.get("embeddings")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("has no `embeddings`"))?
            .iter()
            .collect()
    } else {
        vec![v
            .get("embedding")
            .ok_or_else(|| bad("has no `embedding`"))?]
    };
    if vectors.len() != req.input.len() {
        return Err(bad(&format!(
            "holds {} embeddings for {} inputs",
            vectors.len(),
            req.input.len()
        )));
    }
    let mut data = Vec::with_capacity(vectors.len());
    for (index, vector) in vectors.into_iter().enumerate() {
        let values = vector
            .get("values")
            .and_then(Value::as_array)
            .and_then(|vs| vs.iter().map(Value::as_f64).collect::<Option<Vec<f64>>>())
            .ok_or_else(|| bad("has an embedding without numeric `values`"))?;
        let embedding = match req.encoding_format {
            EncodingFormat::Float => json!(values),
            EncodingFormat::Base64 => json!(base64_floats(&values)),
        };
        data.push(json!({ "object": "embedding", "index": index, "embedding": embedding }));
    }
    let reported = v
        .pointer("/usageMetadata/promptTokenCount")
        .and_then(Value::as_u64);
    let usage = match reported {
        Some(prompt) => Usage {
            prompt,
            ..Usage::default()
        },
        None => req.estimated_usage(),
    };
    let out = json!({
        "object": "list",
        "data": data,
        "model": req.model,
        "usage": { "prompt_tokens": usage.prompt, "total_tokens": usage.total() },
    });
    Ok((out, usage))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::embeddings::parse;
    use crate::dialects::common::golden::{self, Kind};

    const DIR: &str = "front/embeddings";
    const MODEL: &str = "gemini-embedding-001";

    fn request(body: &[u8]) -> EmbeddingsRequest {
        parse(&Bytes::copy_from_slice(body)).expect("a valid golden request")
    }

    /// `<case>.input.json` -> `<case>.gemini.json` (path and body, or the refusal), and
    /// `<case>.upstream.json` (Gemini's answer to that request) -> `<case>.expected.json`.
    #[test]
    fn golden_cases_convert_as_checked_in() {
        let cases = golden::cases(DIR);
        let mut failures = Vec::new();
        for case in &cases {
            let result = match case.kind {
                Kind::Request => {
                    let req = request(&case.input);
                    let actual = match request_body(&req, MODEL) {
                        Ok((batch, body)) => {
                            let body: Value = serde_json::from_slice(&body).unwrap_or_default();
                            json!({ "path": path(MODEL, batch), "body": body })
                        }
                        Err(e) => json!({ "error": e.to_json(crate::api::FrontDoor::OpenAi) }),
                    };
                    case.check("gemini.json", &golden::pretty(&actual))
                }
                Kind::Response => {
                    let input = std::fs::read(
                        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                            .join(format!("tests/golden/{DIR}/{}.input.json", case.name)),
                    )
                    .unwrap_or_default();
                    let req = request(&input);
                    let actual = match response_to_openai(&case.input, &req) {
                        Ok((v, u)) => {
                            json!({ "response": v, "usage": { "prompt": u.prompt, "estimated": u.estimated } })
                        }
                        Err(e) => json!({ "error": e.to_json(crate::api::FrontDoor::OpenAi) }),
                    };
                    case.check("expected.json", &golden::pretty(&actual))
                }
                Kind::Stream => Ok(()),
            };
            if let Err(e) = result {
                failures.push(format!("{}: {e}", case.name));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
        assert!(cases.iter().filter(|c| c.kind == Kind::Response).count() >= 3);
    }

    #[test]
    fn paths_name_the_method_and_escape_the_model() {
        assert_eq!(
            path(MODEL, false),
            "/models/gemini-embedding-001:embedContent"
        );
        assert_eq!(
            path("models/text-embedding-004", true),
            "/models/text-embedding-004:batchEmbedContents"
        );
        assert_eq!(path("a b/c", false), "/models/a%20b%2Fc:embedContent");
    }

    #[test]
    fn answers_that_are_not_embeddings_are_bad_gateway() {
        let single = request(br#"{"model":"g/e","input":"hi"}"#);
        let batch = request(br#"{"model":"g/e","input":["a","b"]}"#);
        let cases: [(&[u8], &EmbeddingsRequest); 6] = [
            (b"not json", &single),
            (b"{}", &single),
            (br#"{"embedding":{"values":["x"]}}"#, &single),
            (br#"{"embedding":{}}"#, &single),
            (br#"{"embeddings":[{"values":[1]}]}"#, &batch),
            (br#"{"embedding":{"values":[1]}}"#, &batch),
        ];
        for (body, req) in cases {
            let e = response_to_openai(body, req).unwrap_err();
            assert_eq!(e.status, 502, "{}", String::from_utf8_lossy(body));
        }
    }
}
