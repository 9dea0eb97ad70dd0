//! Gemini embeddings as Google answers them: `POST .../models/{model}:embedContent` (one
//! `content`) -> `{"embedding": {"values": [...]}}`, and `:batchEmbedContents` (`requests[]`,
//! each naming the same `models/{model}` as the URL) -> `{"embeddings": [...]}` in order. No
//! token counts, as Gemini reports none. `outputDimensionality` shortens the vectors. Key,
//! faults and errors as for Gemini's `generateContent` (`x-goog-api-key`, knobs on the model
//! in the path).

use std::sync::Arc;

use http::{HeaderMap, Response};
use serde_json::{json, Value};

use super::body::{ConnCtl, MockBody};
use super::dialect::{gemini_error, Dialect};
use super::faults::{self, percent_decode, Fault};
use super::handler::{before_answer, ok_json};
use super::{text, State};

/// A Gemini embeddings path's model and whether it is the batch method.
pub fn target(path: &str) -> Option<(String, bool)> {
    let (_, rest) = path.rsplit_once("/models/")?;
    let (model, method) = rest.rsplit_once(':')?;
    let batch = match method {
        "embedContent" => false,
        "batchEmbedContents" => true,
        _ => return None,
    };
    Some((percent_decode(model), batch))
}

pub async fn serve(
    state: &State,
    ctl: &Arc<ConnCtl>,
    headers: &HeaderMap,
    query: Option<&str>,
    (model, batch): (String, bool),
    body: &[u8],
) -> Response<MockBody> {
    if let Some(denied) = Dialect::Gemini.check_key(state.key.as_deref(), headers, query) {
        return denied;
    }
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let header = headers.get("x-mock-fault").and_then(|v| v.to_str().ok());
    let fault = match Fault::from_model(&model).filter(|_| header.is_none()) {
        Some(fault) => fault,
        None => faults::choose(header, json.as_ref(), state.default_fault().as_ref()),
    };
    if let Some(resp) = before_answer(&fault, ctl).await {
        return resp;
    }
    if let Some(status) = fault.status {
        return Dialect::Gemini.status_fault(status, fault.retry_after.as_deref());
    }
    let Some(req) = json.filter(Value::is_object) else {
        return gemini_error(400, "Invalid JSON payload received. Expected an object.");
    };
    let answer = if batch {
        batch_answer(&req, &model)
    } else {
        embed(&req).map(|values| json!({ "embedding": { "values": values } }))
    };
    match answer {
        Ok(v) => ok_json(v.to_string().into_bytes(), &fault, ctl),
        Err(message) => gemini_error(400, &message),
    }
}

fn batch_answer(req: &Value, model: &str) -> Result<Value, String> {
    let requests = req
        .get("requests")
        .and_then(Value::as_array)
        .filter(|r| !r.is_empty())
        .ok_or("* BatchEmbedContentsRequest.requests: requests is not specified\n")?;
    // The base model name without the fault knobs the gateway's tests put on it.
    let base = model.split('+').next().unwrap_or(model);
    let mut embeddings = Vec::with_capacity(requests.len());
    for (i, r) in requests.iter().enumerate() {
        let named = r.get("model").and_then(Value::as_str).unwrap_or_default();
        if named.split('+').next() != Some(&format!("models/{base}")) {
            return Err(format!(
                "* BatchEmbedContentsRequest.requests[{i}].model: the model must be models/{base}, as in the URL"
            ));
        }
        embeddings.push(json!({ "values": embed(r)? }));
    }
    Ok(json!({ "embeddings": embeddings }))
}

/// One `EmbedContentRequest`'s vector: the mock's deterministic embedding of its text.
fn embed(req: &Value) -> Result<Vec<f32>, String> {
    let parts = req
        .pointer("/content/parts")
        .and_then(Value::as_array)
        .filter(|p| !p.is_empty())
        .ok_or("* EmbedContentRequest.content: contents is not specified\n")?;
    let text: String = parts
        .iter()
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect();
    let mut values = text::embedding(&text).to_vec();
    if let Some(n) = req.get("outputDimensionality").and_then(Value::as_u64) {
        values.truncate(n as usize);
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_the_two_embedding_methods() {
        assert_eq!(
            target("/v1beta/models/gemini-embedding-001:embedContent"),
            Some(("gemini-embedding-001".into(), false))
        );
        assert_eq!(
            target("/v1beta/models/text-embedding-004%2Bstatus%3D429:batchEmbedContents"),
            Some(("text-embedding-004+status=429".into(), true))
        );
        assert_eq!(target("/v1beta/models/g:generateContent"), None);
        assert_eq!(target("/v1/embeddings"), None);
    }

    #[test]
    fn answers_in_gemini_shapes() {
        let one = json!({ "content": { "parts": [{ "text": "hi" }] }, "outputDimensionality": 3 });
        assert_eq!(embed(&one).unwrap().len(), 3);
        assert_eq!(embed(&one).unwrap(), text::embedding("hi")[..3].to_vec());
        let batch = json!({ "requests": [
            { "model": "models/e", "content": { "parts": [{ "text": "a" }] } },
            { "model": "models/e", "content": { "parts": [{ "text": "b" }] } },
        ] });
        let v = batch_answer(&batch, "e").unwrap();
        assert_eq!(v["embeddings"].as_array().unwrap().len(), 2);
        assert!(batch_answer(&batch, "other")
            .unwrap_err()
            .contains("models/other"));
        assert!(batch_answer(&json!({ "requests": [] }), "e").is_err());
        assert!(embed(&json!({ "content": {} })).is_err());
    }

    fn floats(v: &Value) -> Vec<f32> {
        let values = v.as_array().map(Vec::as_slice).unwrap_or_default();
        values
            .iter()
            .filter_map(Value::as_f64)
            .map(|f| f as f32)
            .collect()
    }

    /// Through a live mock: both methods, Gemini's key header, and a fault on the path's model.
    #[tokio::test]
    async fn serves_embeddings_over_http() {
        let mock = super::super::MockServer::start_with_key("127.0.0.1:0", "gk").unwrap();
        let base = format!("http://{}/v1beta/models", mock.addr());
        let client = reqwest::Client::new();
        let post = |path: String, key: Option<&'static str>, body: Value| {
            let mut req = client.post(path).json(&body);
            if let Some(k) = key {
                req = req.header("x-goog-api-key", k);
            }
            async move {
                let resp = req.send().await.unwrap();
                let status = resp.status().as_u16();
                (status, resp.json::<Value>().await.unwrap_or_default())
            }
        };
        let one = json!({ "content": { "parts": [{ "text": "hello" }] } });
        let (status, v) = post(
            format!("{base}/gemini-embedding-001:embedContent"),
            Some("gk"),
            one.clone(),
        )
        .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(floats(&v["embedding"]["values"]), text::embedding("hello"));
        assert!(v.get("usageMetadata").is_none(), "Gemini reports no tokens");
        let batch = json!({ "requests": [
            { "model": "models/gemini-embedding-001", "content": { "parts": [{ "text": "a" }] }, "outputDimensionality": 2 },
            { "model": "models/gemini-embedding-001", "content": { "parts": [{ "text": "b" }] } },
        ] });
        let (status, v) = post(
            format!("{base}/gemini-embedding-001:batchEmbedContents"),
            Some("gk"),
            batch,
        )
        .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["embeddings"][0]["values"].as_array().unwrap().len(), 2);
        assert_eq!(floats(&v["embeddings"][1]["values"]), text::embedding("b"));
        let (status, v) = post(
            format!("{base}/gemini-embedding-001:embedContent"),
            None,
            one.clone(),
        )
        .await;
        assert_eq!(
            (status, v["error"]["status"].as_str()),
            (403, Some("PERMISSION_DENIED"))
        );
        let (status, v) = post(format!("{base}/e+status=429:embedContent"), Some("gk"), one).await;
        assert_eq!(
            (status, v["error"]["status"].as_str()),
            (429, Some("RESOURCE_EXHAUSTED"))
        );
        let (status, _) = post(
            format!("{base}/e:embedContent"),
            Some("gk"),
            json!({ "content": {} }),
        )
        .await;
        assert_eq!(status, 400);
    }
}
