//! The vocabulary of endpoint capabilities. Operators (and the catalog importer) write short
//! flags — `tools`, `response_format`, `reasoning` — while clients and the router speak in
//! request parameters (`tool_choice`, `structured_outputs`, `include_reasoning`). Expanding
//! the flags once at load time lets `provider.require_parameters` and `/v1/models` filters
//! compare plain strings.

/// Request parameters OpenRouter lists in `supported_parameters` (its `Parameter` enum);
/// flags outside this list (`stream`, `vision`) describe the endpoint but are not parameters.
const REQUEST_PARAMETERS: &[&str] = &[
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "top_a",
    "frequency_penalty",
    "presence_penalty",
    "repetition_penalty",
    "max_tokens",
    "max_completion_tokens",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "prediction",
    "seed",
    "response_format",
    "structured_outputs",
    "stop",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "include_reasoning",
    "reasoning",
    "reasoning_effort",
    "web_search_options",
    "verbosity",
];

/// Parameters every endpoint takes, whatever its flags: each dialect maps them. `/v1/models`
/// lists them for every model, so its filters and `provider.require_parameters` must count
/// them as supported too.
pub const BASE_PARAMETERS: &[&str] = &["max_tokens", "temperature", "top_p", "stop"];

/// Input modalities OpenRouter names (`InputModality`).
pub const INPUT_MODALITIES: &[&str] = &["text", "image", "file", "audio", "video"];

/// Output modalities OpenRouter names (`OutputModality`).
pub const OUTPUT_MODALITIES: &[&str] = &[
    "text",
    "image",
    "embeddings",
    "audio",
    "video",
    "rerank",
    "speech",
    "transcription",
];

pub fn is_request_parameter(name: &str) -> bool {
    REQUEST_PARAMETERS.contains(&name)
}

/// The parameters a flag stands for, itself included.
fn implied(flag: &str) -> &'static [&'static str] {
    match flag {
        // A provider that takes tools takes a tool choice; OpenAI-compatible APIs pair them.
        "tools" => &["tools", "tool_choice"],
        // Our `response_format` flag means JSON-schema output (litellm's
        // `supports_response_schema`), which is OpenRouter's `structured_outputs`.
        "response_format" => &["response_format", "structured_outputs"],
        "reasoning" => &["reasoning", "include_reasoning"],
        _ => &[],
    }
}

/// `flags` with every implied parameter added, without duplicates, in first-seen order.
pub fn expand_supports(flags: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(flags.len() + 4);
    let push = |s: &str, out: &mut Vec<String>| {
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    };
    for flag in &flags {
        push(flag, &mut out);
        for p in implied(flag) {
            push(p, &mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_imply_their_parameters_once() {
        let expanded = expand_supports(vec![
            "tools".into(),
            "stream".into(),
            "tool_choice".into(),
            "response_format".into(),
        ]);
        assert_eq!(
            expanded,
            [
                "tools",
                "tool_choice",
                "stream",
                "response_format",
                "structured_outputs"
            ]
        );
    }

    #[test]
    fn only_openrouter_parameters_are_parameters() {
        assert!(is_request_parameter("tool_choice"));
        assert!(!is_request_parameter("stream"));
        assert!(!is_request_parameter("vision"));
    }
}
