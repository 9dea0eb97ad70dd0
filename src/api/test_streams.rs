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

/// One chunk of a tool call's stream: call `index`'s delta, with its id and name when given.
pub fn tool_call_chunk(index: u64, head: Option<(&str, &str)>, args: &str) -> String {
    let mut call = serde_json::json!({"index": index, "function": {"arguments": args}});
    if let Some((id, name)) = head {
        call["id"] = serde_json::json!(id);
        call["type"] = serde_json::json!("function");
        call["function"]["name"] = serde_json::json!(name);
    }
    let chunk = serde_json::json!({"id": "g", "model": "m", "choices": [{"index": 0,
        "delta": {"tool_calls": [call]}, "finish_reason": null}]});
    format!("data: {chunk}\n\n")
}

/// A host that interleaves parallel tool calls: text, then deltas for call 0, 1, 0, 2, 1, 0
/// and a trailing newline for 1. Whole, the calls are weather {"city":"Paris"} (call_a),
/// time {"zone":"CET"} (call_b) and news {} (call_c).
pub fn interleaved_tool_calls() -> String {
    let call = tool_call_chunk;
    [
        r#"data: {"id":"g","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Checking."},"finish_reason":null}]}"#.to_string() + "\n\n",
        call(0, Some(("call_a", "weather")), ""),
        call(0, None, "{\"city\":"),
        call(1, Some(("call_b", "time")), "{\"zone\""),
        call(0, None, "\"Par"),
        call(2, Some(("call_c", "news")), "{}"),
        call(1, None, ":\"CET\"}"),
        call(0, None, "is\"}"),
        call(1, None, "\n"),
        r#"data: {"id":"g","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#
            .to_string()
            + "\n\ndata: [DONE]\n\n",
    ]
    .concat()
}
