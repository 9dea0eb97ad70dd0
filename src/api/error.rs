//! The one error type for everything the gateway tells a client, rendered in the shape of the
//! front door the client came through (DESIGN §3): OpenAI's `{"error": {...}}` on chat and
//! responses, Anthropic's `{"type": "error", "error": {...}}` on `/v1/messages`.

use bytes::Bytes;
use serde_json::{json, Value};

/// Which API a client speaks; decides the shape of errors and responses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrontDoor {
    OpenAi,
    Anthropic,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub status: u16,
    /// OpenAI `type` (`invalid_request_error`, `authentication_error`, ...).
    pub kind: &'static str,
    pub code: Option<&'static str>,
    pub message: String,
    pub param: Option<Box<str>>,
    /// Which provider failed and what it said, when the error came from upstream (boxed: an
    /// error travels in every `Result` of the request path and should stay small).
    pub metadata: Option<Box<Value>>,
    /// Seconds, for 429 and 503 (`Retry-After`).
    pub retry_after: Option<u64>,
}

impl ApiError {
    fn new(
        status: u16,
        kind: &'static str,
        code: Option<&'static str>,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            kind,
            code,
            message: message.into(),
            param: None,
            metadata: None,
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "invalid_request_error", None, message)
    }

    pub fn bad_param(param: &str, message: impl Into<String>) -> ApiError {
        let mut e = ApiError::new(
            400,
            "invalid_request_error",
            Some("invalid_parameter"),
            message,
        );
        e.param = Some(param.into());
        e
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(
            401,
            "authentication_error",
            Some("invalid_api_key"),
            message,
        )
    }

    pub fn payment_required(message: impl Into<String>) -> ApiError {
        ApiError::new(402, "insufficient_quota", Some("budget_exhausted"), message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(403, "permission_error", Some("forbidden"), message)
    }

    pub fn model_not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(404, "not_found_error", Some("model_not_found"), message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(404, "not_found_error", Some("not_found"), message)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> ApiError {
        ApiError::new(
            405,
            "invalid_request_error",
            Some("method_not_allowed"),
            message,
        )
    }

    pub fn payload_too_large(limit: usize) -> ApiError {
        ApiError::new(
            413,
            "invalid_request_error",
            Some("request_too_large"),
            format!("the request body is larger than the gateway's limit of {limit} bytes"),
        )
    }

    pub fn rate_limited(message: impl Into<String>, retry_after: u64) -> ApiError {
        let mut e = ApiError::new(
            429,
            "rate_limit_error",
            Some("rate_limit_exceeded"),
            message,
        );
        e.retry_after = Some(retry_after);
        e
    }

    pub fn bad_gateway(message: impl Into<String>) -> ApiError {
        ApiError::new(502, "upstream_error", Some("upstream_failed"), message)
    }

    pub fn gateway_timeout(message: impl Into<String>) -> ApiError {
        ApiError::new(504, "timeout_error", Some("upstream_timeout"), message)
    }

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(
            503,
            "service_unavailable",
            Some("no_healthy_endpoint"),
            message,
        )
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, "internal_error", Some("internal_error"), message)
    }

    pub fn with_metadata(mut self, metadata: Value) -> ApiError {
        self.metadata = Some(Box::new(metadata));
        self
    }

    /// Anthropic's error `type` for the same status.
    fn anthropic_type(&self) -> &'static str {
        match self.status {
            401 => "authentication_error",
            402 => "billing_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            503 | 529 => "overloaded_error",
            400..=499 => "invalid_request_error",
            _ => "api_error",
        }
    }

    pub fn to_json(&self, door: FrontDoor) -> Value {
        match door {
            FrontDoor::OpenAi => {
                let mut error = json!({
                    "message": self.message,
                    "type": self.kind,
                    "code": self.code,
                    "param": self.param,
                });
                if let Some(m) = &self.metadata {
                    error["metadata"] = (**m).clone();
                }
                json!({ "error": error })
            }
            FrontDoor::Anthropic => json!({
                "type": "error",
                "error": { "type": self.anthropic_type(), "message": self.message },
            }),
        }
    }

    pub fn body(&self, door: FrontDoor) -> Bytes {
        Bytes::from(self.to_json(door).to_string())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.kind, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_openai_shape() {
        let e = ApiError::bad_param("model", "model is required");
        let v = e.to_json(FrontDoor::OpenAi);
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["param"], "model");
        assert_eq!(v["error"]["message"], "model is required");
        assert!(v["error"].get("metadata").is_none());
    }

    #[test]
    fn renders_anthropic_shape() {
        let v = ApiError::unauthorized("bad key").to_json(FrontDoor::Anthropic);
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "authentication_error");
    }
}
