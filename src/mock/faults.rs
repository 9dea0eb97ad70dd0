//! Fault knobs: one [`Fault`] per request, parsed from the `x-mock-fault` header, the `+knob`
//! suffix of the model string, a body `"mock": {..}` object, or the server's default.

use serde_json::{Map, Value};

/// Upper bounds so a typo in a knob cannot make the mock allocate gigabytes.
const MAX_CHUNKS: u64 = 1_000_000;
const MAX_HUGE: u64 = 64 * 1024 * 1024;

/// Where to cut the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reset {
    /// After reading the request, before any response byte.
    Before,
    /// After the headers and half of the body or stream events.
    Mid,
}

/// Every knob of one request; `Default` is "behave like a healthy provider".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fault {
    /// Error status (only 400..=599 is honoured).
    pub status: Option<u16>,
    /// `Retry-After` value sent with `status`.
    pub retry_after: Option<String>,
    /// Bedrock: the `x-amzn-errortype` sent with `status` instead of the status's usual one
    /// (Bedrock answers some quota errors 400 with `ServiceQuotaExceededException`).
    pub error_type: Option<String>,
    pub delay_ms: u64,
    pub chunk_delay_ms: u64,
    /// The reply is exactly this many word deltas.
    pub chunks: Option<usize>,
    pub reset: Option<Reset>,
    pub silence: bool,
    pub malformed: bool,
    pub no_usage: bool,
    pub truncated: bool,
    /// A stream's body stays open after its last event (until the client leaves, 30 s at
    /// most), as a provider that is slow to close its response.
    pub hang: bool,
    pub reply: Option<String>,
    pub tool_call: bool,
    /// Reply content of this many bytes.
    pub huge: Option<usize>,
    pub usage_prompt: Option<u64>,
    pub usage_completion: Option<u64>,
    pub usage_cached: Option<u64>,
    pub usage_reasoning: Option<u64>,
    /// Prompt tokens reported written to the prompt cache (a part of `usage_prompt`).
    pub usage_cache_write: Option<u64>,
    /// Usage as xAI reports it: `completion_tokens` without the reasoning, `total_tokens`
    /// with it (OpenAI counts reasoning inside `completion_tokens`).
    pub xai_usage: bool,
    /// OpenAI streams: this many `reasoning_content` deltas before the answer's content.
    pub reasoning_deltas: usize,
    /// Usage as DeepSeek reports cache hits: `prompt_cache_hit_tokens` and
    /// `prompt_cache_miss_tokens`, no `prompt_tokens_details`.
    pub deepseek_usage: bool,
    /// OpenAI streams: usage on the finishing choice (`choices[0].usage`) and no usage-only
    /// chunk, as Moonshot sends it.
    pub choice_usage: bool,
}

impl Fault {
    /// Header / model syntax: `key=value` pairs or bare flags separated by `+` or `,`;
    /// values are percent-decoded. Unknown keys and unparsable values are ignored.
    pub fn parse(spec: &str) -> Fault {
        let mut fault = Fault::default();
        for item in spec
            .split(['+', ','])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            match item.split_once('=') {
                Some((key, value)) => fault.set(key.trim(), Some(&percent_decode(value.trim()))),
                None => fault.set(item, None),
            }
        }
        fault
    }

    /// The knobs in a model string such as `mock-small+status=429+retry_after=2`, if any.
    pub fn from_model(model: &str) -> Option<Fault> {
        model.split_once('+').map(|(_, knobs)| Fault::parse(knobs))
    }

    /// Body syntax: `"mock": {"status": 429, "no_usage": true, "reply": "plain text"}`.
    pub fn from_json(obj: &Map<String, Value>) -> Fault {
        let mut fault = Fault::default();
        for (key, value) in obj {
            match value {
                Value::String(s) => fault.set(key, Some(s)),
                Value::Number(n) => fault.set(key, Some(&n.to_string())),
                Value::Bool(true) => fault.set(key, None),
                _ => {}
            }
        }
        fault
    }

    fn set(&mut self, key: &str, value: Option<&str>) {
        let num = value.and_then(|v| v.trim().parse::<u64>().ok());
        // A bare flag, or any value except an explicit "off", switches a flag on.
        let on = !matches!(
            value.map(|v| v.trim().to_ascii_lowercase()).as_deref(),
            Some("0" | "false" | "no" | "off")
        );
        match key.to_ascii_lowercase().as_str() {
            "status" => {
                self.status = num
                    .and_then(|n| u16::try_from(n).ok())
                    .filter(|s| (400..=599).contains(s))
            }
            "retry_after" => self.retry_after = value.filter(|v| !v.is_empty()).map(String::from),
            "error_type" => self.error_type = value.filter(|v| !v.is_empty()).map(String::from),
            "delay_ms" => self.delay_ms = num.unwrap_or(0),
            "chunk_delay_ms" => self.chunk_delay_ms = num.unwrap_or(0),
            "chunks" => self.chunks = num.map(|n| n.min(MAX_CHUNKS) as usize),
            "huge" => self.huge = num.map(|n| n.min(MAX_HUGE) as usize),
            "reset" => {
                self.reset = match value.map(str::trim) {
                    None | Some("before") => Some(Reset::Before),
                    Some("mid") => Some(Reset::Mid),
                    _ => None,
                }
            }
            "silence" => self.silence = on,
            "malformed" => self.malformed = on,
            "no_usage" => self.no_usage = on,
            "truncated" => self.truncated = on,
            "hang" => self.hang = on,
            "tool_call" => self.tool_call = on,
            "reply" => self.reply = value.map(String::from),
            "usage_prompt" => self.usage_prompt = num,
            "usage_completion" => self.usage_completion = num,
            "usage_cached" => self.usage_cached = num,
            "usage_reasoning" => self.usage_reasoning = num,
            "usage_cache_write" => self.usage_cache_write = num,
            "xai_usage" => self.xai_usage = on,
            "deepseek_usage" => self.deepseek_usage = on,
            "choice_usage" => self.choice_usage = on,
            "reasoning_deltas" => {
                self.reasoning_deltas = num.map_or(0, |n| n.min(MAX_CHUNKS) as usize)
            }
            other => log::debug!("mock: ignoring unknown fault knob {other:?}"),
        }
    }
}

/// Picks the request's fault: header, then model suffix, then body `mock`, then the default.
/// The first source found wins whole; sources are not merged.
pub fn choose(header: Option<&str>, body: Option<&Value>, default: Option<&Fault>) -> Fault {
    if let Some(spec) = header {
        return Fault::parse(spec);
    }
    if let Some(fault) = body
        .and_then(|b| b.get("model"))
        .and_then(Value::as_str)
        .and_then(Fault::from_model)
    {
        return fault;
    }
    if let Some(obj) = body.and_then(|b| b.get("mock")).and_then(Value::as_object) {
        return Fault::from_json(obj);
    }
    default.cloned().unwrap_or_default()
}

/// `%XX` decoding; malformed escapes are kept literally.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
