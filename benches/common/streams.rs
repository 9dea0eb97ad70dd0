//! Realistic provider streams for the benches, in each provider's published wire format with
//! the fields real responses carry (ids, fingerprints, `usage: null` on every OpenAI chunk
//! when usage is requested), so per-event sizes and scanner work match production.
// Each bench uses only the streams of its dialects.
#![allow(dead_code)]

/// Content deltas per stream: reported back as the completion token count.
pub const COMPLETION_TOKENS: u64 = 2_000;
pub const PROMPT_TOKENS: u64 = 1_210;

/// Words cycled through the deltas; a few need JSON escapes, as real text does.
const WORDS: &[&str] = &[
    " The",
    " gateway",
    " forwards",
    " each",
    " chunk",
    " unchanged",
    ",",
    " and",
    " meters",
    " usage",
    " from",
    " the",
    " tail",
    ".\\n\\n",
    " \\\"Quoted\\\"",
    " text",
    " with",
    " caf\\u00e9",
    " 42",
    " tokens",
];

/// A stream and the length of each of its events, in order.
pub struct Stream {
    pub bytes: Vec<u8>,
    pub events: Vec<usize>,
}

impl Stream {
    fn push(&mut self, event: String) {
        self.events.push(event.len());
        self.bytes.extend_from_slice(event.as_bytes());
    }
}

/// An OpenAI Chat Completions stream with `stream_options.include_usage`: a role chunk,
/// `deltas` content chunks, a finish chunk, the usage-only chunk (`choices: []`), `[DONE]`.
pub fn openai(deltas: u64) -> Stream {
    const HEAD: &str = r#"{"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","object":"chat.completion.chunk","created":1741570283,"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_eb9dce56a8","choices":"#;
    let mut s = Stream {
        bytes: Vec::new(),
        events: Vec::new(),
    };
    s.push(format!(
        "data: {HEAD}[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}},\"logprobs\":null,\"finish_reason\":null}}],\"usage\":null}}\n\n"
    ));
    for i in 0..deltas {
        let word = WORDS[i as usize % WORDS.len()];
        s.push(format!(
            "data: {HEAD}[{{\"index\":0,\"delta\":{{\"content\":\"{word}\"}},\"logprobs\":null,\"finish_reason\":null}}],\"usage\":null}}\n\n"
        ));
    }
    s.push(format!(
        "data: {HEAD}[{{\"index\":0,\"delta\":{{}},\"logprobs\":null,\"finish_reason\":\"stop\"}}],\"usage\":null}}\n\n"
    ));
    s.push(format!(
        "data: {HEAD}[],\"usage\":{{\"prompt_tokens\":{PROMPT_TOKENS},\"completion_tokens\":{deltas},\"total_tokens\":{},\"prompt_tokens_details\":{{\"cached_tokens\":1024,\"audio_tokens\":0}},\"completion_tokens_details\":{{\"reasoning_tokens\":0,\"audio_tokens\":0,\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}}}}}\n\n",
        PROMPT_TOKENS + deltas
    ));
    s.push("data: [DONE]\n\n".to_string());
    s
}

/// An Anthropic Messages stream: message_start, a text block of `deltas` text deltas with a
/// ping, message_delta (stop reason, output usage), message_stop.
pub fn anthropic(deltas: u64) -> Stream {
    let mut s = Stream {
        bytes: Vec::new(),
        events: Vec::new(),
    };
    s.push(format!(
        "event: message_start\ndata: {{\"type\":\"message_start\",\"message\":{{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEL\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-20250514\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{{\"input_tokens\":{PROMPT_TOKENS},\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":1,\"service_tier\":\"standard\"}}}}}}\n\n"
    ));
    s.push("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n".to_string());
    s.push("event: ping\ndata: {\"type\": \"ping\"}\n\n".to_string());
    for i in 0..deltas {
        let word = WORDS[i as usize % WORDS.len()];
        s.push(format!(
            "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{word}\"}}}}\n\n"
        ));
    }
    s.push(
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
            .to_string(),
    );
    s.push(format!(
        "event: message_delta\ndata: {{\"type\":\"message_delta\",\"delta\":{{\"stop_reason\":\"end_turn\",\"stop_sequence\":null}},\"usage\":{{\"output_tokens\":{deltas}}}}}\n\n"
    ));
    s.push("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".to_string());
    s
}

/// A Gemini `streamGenerateContent?alt=sse` stream: `deltas` candidate chunks, the last with
/// `finishReason` and the final usage metadata.
pub fn gemini(deltas: u64) -> Stream {
    let mut s = Stream {
        bytes: Vec::new(),
        events: Vec::new(),
    };
    for i in 0..deltas {
        let word = WORDS[i as usize % WORDS.len()];
        let last = i + 1 == deltas;
        let finish = if last {
            ",\"finishReason\":\"STOP\""
        } else {
            ""
        };
        let usage = if last {
            format!(
                "{{\"promptTokenCount\":{PROMPT_TOKENS},\"candidatesTokenCount\":{deltas},\"totalTokenCount\":{}}}",
                PROMPT_TOKENS + deltas
            )
        } else {
            format!("{{\"promptTokenCount\":{PROMPT_TOKENS},\"totalTokenCount\":{PROMPT_TOKENS}}}")
        };
        s.push(format!(
            "data: {{\"candidates\":[{{\"content\":{{\"parts\":[{{\"text\":\"{word}\"}}],\"role\":\"model\"}}{finish},\"index\":0}}],\"usageMetadata\":{usage},\"modelVersion\":\"gemini-2.0-flash\",\"responseId\":\"3BHBaKWuOJe8nvgPgL2M-QI\"}}\r\n\r\n"
        ));
    }
    s
}

/// The stream cut into `size`-byte reads, wherever the cut falls.
pub fn fixed_reads(bytes: &[u8], size: usize) -> Vec<Vec<u8>> {
    bytes.chunks(size).map(<[u8]>::to_vec).collect()
}

/// One read per event, as providers flush them.
pub fn event_reads(stream: &Stream) -> Vec<Vec<u8>> {
    let mut at = 0;
    stream
        .events
        .iter()
        .map(|len| {
            let read = stream.bytes[at..at + len].to_vec();
            at += len;
            read
        })
        .collect()
}

/// Each read holds the second half of one event and the first half of the next: every event
/// crosses a read boundary (the carry buffer's worst case).
pub fn split_mid_event(stream: &Stream) -> Vec<Vec<u8>> {
    let mut cuts = vec![0];
    let mut at = 0;
    for len in &stream.events {
        cuts.push(at + len / 2);
        at += len;
    }
    cuts.push(stream.bytes.len());
    cuts.windows(2)
        .filter(|w| w[1] > w[0])
        .map(|w| stream.bytes[w[0]..w[1]].to_vec())
        .collect()
}
