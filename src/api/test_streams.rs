//! Upstream streams the front doors' converter tests share.

/// An OpenAI-dialect stream with `"finish_reason": ""` on every chunk (older Ollama, SGLang):
/// text, then a tool call whose arguments come in two deltas, then the real finish.
pub const EMPTY_FINISH_REASONS: &[u8] = br#"data: {"id":"g","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Let me check."},"finish_reason":""}]}

data: {"id":"g","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":""}]}

data: {"id":"g","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"location\""}}]},"finish_reason":""}]}

data: {"id":"g","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":":\"Paris\"}"}}]},"finish_reason":""}]}

data: {"id":"g","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}

data: [DONE]

"#;
