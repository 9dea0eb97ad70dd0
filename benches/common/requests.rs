//! Realistic client request bodies (OpenAI Chat Completions, as SDKs and coding agents send
//! them) for the benches: a 20-message conversation with tools and tool calls, and a ~300 KB
//! conversation (a pasted document), both with OpenRouter routing fields the gateway strips.

use serde_json::{json, Value};

fn tools() -> Value {
    json!([
        {"type": "function", "function": {
            "name": "search_docs",
            "description": "Search the product documentation and return the most relevant passages.",
            "parameters": {"type": "object", "properties": {
                "query": {"type": "string", "description": "What to search for"},
                "limit": {"type": "integer", "minimum": 1, "maximum": 20, "default": 5}
            }, "required": ["query"]}}},
        {"type": "function", "function": {
            "name": "read_file",
            "description": "Read a file from the repository.",
            "parameters": {"type": "object", "properties": {
                "path": {"type": "string"},
                "start_line": {"type": "integer"},
                "end_line": {"type": "integer"}
            }, "required": ["path"]}}},
        {"type": "function", "function": {
            "name": "run_tests",
            "description": "Run the test suite, optionally filtered, and return failures.",
            "parameters": {"type": "object", "properties": {
                "filter": {"type": "string"},
                "timeout_s": {"type": "number"}
            }}}}
    ])
}

/// Twenty messages: system, then user / assistant turns, with two tool-call round trips.
fn conversation() -> Vec<Value> {
    let mut messages = vec![json!({
        "role": "system",
        "content": "You are a careful coding assistant. Answer concisely, cite files with line \
                    numbers, and call tools when you need facts you do not have."
    })];
    let mut turn = 0;
    while messages.len() < 20 {
        turn += 1;
        messages.push(json!({
            "role": "user",
            "content": format!(
                "Step {turn}: why does the \"gateway\" reject requests whose body is larger \
                 than max_body_bytes, and where is that checked?\nPlease quote the code."
            )
        }));
        if turn % 3 == 1 && messages.len() + 3 <= 20 {
            let id = format!("call_{turn}abcDEF0123456789");
            messages.push(json!({
                "role": "assistant", "content": null,
                "tool_calls": [{"id": id, "type": "function", "function": {
                    "name": "read_file",
                    "arguments": "{\"path\":\"src/proxy/body.rs\",\"start_line\":1,\"end_line\":80}"
                }}]
            }));
            messages.push(json!({
                "role": "tool", "tool_call_id": id,
                "content": "//! Reading the client's body up to server.max_body_bytes.\n".repeat(12)
            }));
        }
        messages.push(json!({
            "role": "assistant",
            "content": format!(
                "In step {turn}, `read_body` stops at `max_body_bytes` and answers 413 \
                 (src/proxy/body.rs:42). The limit protects memory: the body is buffered \
                 once so routing fields can be read before choosing a provider."
            )
        }));
    }
    messages.truncate(20);
    messages
}

fn request(messages: Vec<Value>) -> Value {
    json!({
        "model": "bench/model",
        "messages": messages,
        "tools": tools(),
        "tool_choice": "auto",
        "temperature": 0.2,
        "max_tokens": 1024,
        "user": "user-1234",
        "models": ["bench/fallback"],
        "provider": {"sort": "price", "data_collection": "deny"}
    })
}

/// The 20-message conversation with tools (~6 KB).
pub fn chat_with_tools() -> Vec<u8> {
    serde_json::to_vec(&request(conversation())).expect("serialisable")
}

/// The same conversation plus a pasted ~300 KB document in one user message.
pub fn chat_300kb() -> Vec<u8> {
    let mut messages = conversation();
    let paragraph = "The gateway forwards each chunk unchanged and meters usage from the \
                     stream's tail; \"quoted\" text, tabs\tand newlines\nneed escaping. ";
    let document = paragraph.repeat(300 * 1024 / paragraph.len());
    messages.insert(
        1,
        json!({"role": "user", "content": format!("Summarise this document:\n{document}")}),
    );
    serde_json::to_vec(&request(messages)).expect("serialisable")
}
