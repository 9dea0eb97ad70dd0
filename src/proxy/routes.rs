//! Which endpoint a request is for. Every client path is served under `/v1` and `/api/v1`
//! (OpenRouter clients only change the base URL).

use http::Method;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    ChatCompletions,
    /// Anthropic Messages front door.
    Messages,
    /// OpenAI Responses front door (stateless).
    Responses,
    Embeddings,
    Models,
    /// `/models/{author}/{slug}/endpoints`: the model id is the part between.
    ModelEndpoints,
    /// The caller's own key.
    Key,
    /// One of the caller's generation records.
    Generation,
    Healthz,
    Readyz,
    /// A known path with the wrong method; holds the allowed one.
    MethodNotAllowed(&'static str),
    NotFound,
}

pub fn route(method: &Method, path: &str) -> Route {
    match path {
        "/healthz" => return only(method, Method::GET, Route::Healthz),
        "/readyz" => return only(method, Method::GET, Route::Readyz),
        _ => {}
    }
    let Some(api_path) = path
        .strip_prefix("/api/v1")
        .or_else(|| path.strip_prefix("/v1"))
    else {
        return Route::NotFound;
    };
    match api_path.trim_end_matches('/') {
        "/chat/completions" => only(method, Method::POST, Route::ChatCompletions),
        "/messages" => only(method, Method::POST, Route::Messages),
        "/responses" => only(method, Method::POST, Route::Responses),
        "/embeddings" => only(method, Method::POST, Route::Embeddings),
        "/models" => only(method, Method::GET, Route::Models),
        "/key" | "/auth/key" => only(method, Method::GET, Route::Key),
        "/generation" => only(method, Method::GET, Route::Generation),
        p if model_endpoints_id(p).is_some() => only(method, Method::GET, Route::ModelEndpoints),
        _ => Route::NotFound,
    }
}

/// The model id of a `/models/{author}/{slug}/endpoints` path (after the API prefix).
pub fn model_endpoints_id(api_path: &str) -> Option<&str> {
    let id = api_path
        .strip_prefix("/models/")?
        .strip_suffix("/endpoints")?;
    (!id.is_empty()).then_some(id)
}

/// Whether `path` is the Anthropic Messages door's or below it: its errors are Anthropic's.
pub fn is_under_messages(path: &str) -> bool {
    let Some(api_path) = path
        .strip_prefix("/api/v1")
        .or_else(|| path.strip_prefix("/v1"))
    else {
        return false;
    };
    api_path
        .strip_prefix("/messages")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The API path without its `/v1` or `/api/v1` prefix.
pub fn api_path(path: &str) -> &str {
    path.strip_prefix("/api/v1")
        .or_else(|| path.strip_prefix("/v1"))
        .unwrap_or(path)
}

fn only(method: &Method, allowed: Method, route: Route) -> Route {
    if *method == allowed || (allowed == Method::GET && *method == Method::HEAD) {
        route
    } else if allowed == Method::GET {
        Route::MethodNotAllowed("GET")
    } else {
        Route::MethodNotAllowed("POST")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_both_prefixes() {
        assert_eq!(
            route(&Method::POST, "/v1/chat/completions"),
            Route::ChatCompletions
        );
        assert_eq!(
            route(&Method::POST, "/api/v1/chat/completions"),
            Route::ChatCompletions
        );
        assert_eq!(route(&Method::GET, "/api/v1/models"), Route::Models);
        assert_eq!(
            route(&Method::GET, "/v1/chat/completions"),
            Route::MethodNotAllowed("POST")
        );
        assert_eq!(route(&Method::GET, "/v2/models"), Route::NotFound);
        assert_eq!(route(&Method::GET, "/v1/../etc/passwd"), Route::NotFound);
        assert_eq!(route(&Method::GET, "/healthz"), Route::Healthz);
        assert_eq!(
            route(&Method::GET, "/api/v1/models/openai/gpt-4o/endpoints"),
            Route::ModelEndpoints
        );
        assert_eq!(
            model_endpoints_id("/models/openai/gpt-4o/endpoints"),
            Some("openai/gpt-4o")
        );
    }
}
