//! The canonical model id: one id for one model, whoever serves it, so the same open model on
//! Groq, Together, Fireworks and DeepInfra becomes one catalog model with four endpoints.
//!
//! The rule, applied to the provider's own model id:
//!
//! 1. Lowercase, `_` → `-`; drop hosting wrappers: Fireworks' `accounts/<account>/models/`,
//!    Bedrock's region prefix (`us.`, `eu.`, `global.`, ...) and `-v1:0` revision, Vertex's
//!    `@version` and `-maas`, Ollama's `:tag` (kept as `-tag`, `latest` dropped).
//! 2. Versions are written with dots: Fireworks' `v3p3` → `3.3`, a single digit after a
//!    version digit `3-5` → `3.5` (`claude-3-5-sonnet` → `claude-3.5-sonnet`,
//!    `llama3-3` → `llama3.3`); dates (`2024-08-06`, `20241022`) are kept, since dated
//!    snapshots are distinct models with their own prices. Hosts' spellings of one family
//!    agree: `gpt-35` → `gpt-3.5`, `qwen-2.5` → `qwen2.5`, `code-llama` → `codellama`,
//!    `nvidia/nvidia-nemotron…` → `nvidia/nemotron…`.
//! 3. The author is the id's organisation (`meta-llama/…`, Bedrock's `meta.`), normalised
//!    (`meta` → `meta-llama`, `mistral` → `mistralai`, `xai` → `x-ai`, ...); without one,
//!    it comes from the model family (`gpt`/`o3` → `openai`, `claude` → `anthropic`,
//!    `llama` → `meta-llama`, ...); failing both, the serving provider (itself normalised:
//!    `mistral` → `mistralai`).
//! 4. Serving variants are not models: a trailing `fp8`/`fp4`/`bf16`/`hf` is dropped (and
//!    becomes the endpoint's quantization), as are Groq's `versatile`/`instant`, Together's
//!    and DeepInfra's `turbo` on open-weight families, and a legacy context suffix (`-8192`).
//! 5. Meta's chat models are the instruct ones: `meta-llama-3.1-…` and `llama3.1-…` become
//!    `llama-3.1-…`, and `-instruct` is added when missing (`llama-3.3-70b` on Cerebras is
//!    `llama-3.3-70b-instruct` everywhere else).
//!
//! Result: `<author>/<name>`, e.g. `meta-llama/llama-3.3-70b-instruct`,
//! `anthropic/claude-3.5-sonnet-20240620`, `openai/gpt-4o-mini`.

/// A canonical id and the quantization its serving suffix revealed.
#[derive(Debug, PartialEq, Eq)]
pub struct Canonical {
    pub id: String,
    pub quantization: Option<String>,
}

/// Organisation spellings → the author used in ids.
const ORG_ALIASES: &[(&str, &str)] = &[
    ("meta", "meta-llama"),
    ("meta_llama", "meta-llama"),
    ("meta-llama", "meta-llama"),
    ("mistral", "mistralai"),
    ("mistralai", "mistralai"),
    ("deepseek-ai", "deepseek"),
    ("xai", "x-ai"),
    ("moonshot", "moonshotai"),
    ("zai-org", "z-ai"),
    ("zai", "z-ai"),
    ("thudm", "z-ai"),
    ("minimaxai", "minimax"),
    ("qwen", "qwen"),
];

/// Model-family prefixes → author, for ids without an organisation.
const FAMILIES: &[(&str, &str)] = &[
    ("gpt-", "openai"),
    ("chatgpt", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("codex", "openai"),
    ("computer-use", "openai"),
    ("claude", "anthropic"),
    ("gemini", "google"),
    ("gemma", "google"),
    ("lyria", "google"),
    ("deep-research", "google"),
    ("learnlm", "google"),
    ("medlm", "google"),
    ("llama", "meta-llama"),
    ("codellama", "meta-llama"),
    ("code-llama", "meta-llama"),
    ("mistral", "mistralai"),
    ("open-mistral", "mistralai"),
    ("mixtral", "mistralai"),
    ("open-mixtral", "mistralai"),
    ("codestral", "mistralai"),
    ("ministral", "mistralai"),
    ("pixtral", "mistralai"),
    ("magistral", "mistralai"),
    ("devstral", "mistralai"),
    ("voxtral", "mistralai"),
    ("deepseek", "deepseek"),
    ("qwen", "qwen"),
    ("qwq", "qwen"),
    ("grok", "x-ai"),
    ("sonar", "perplexity"),
    ("pplx", "perplexity"),
    ("r1-1776", "perplexity"),
    ("command", "cohere"),
    ("c4ai", "cohere"),
    ("phi-", "microsoft"),
    ("jamba", "ai21"),
    ("nova-", "amazon"),
    ("titan", "amazon"),
    ("kimi", "moonshotai"),
    ("moonshot", "moonshotai"),
    ("glm", "z-ai"),
    ("minimax", "minimax"),
    ("nemotron", "nvidia"),
    ("nvidia-", "nvidia"),
    ("hermes", "nousresearch"),
    ("yi-", "01-ai"),
    ("starcoder", "bigcode"),
    ("dbrx", "databricks"),
];

/// Bedrock model ids start with the vendor: `anthropic.claude-…`, `meta.llama3-…`.
pub(super) const BEDROCK_REGIONS: &[&str] = &[
    "us", "eu", "apac", "au", "jp", "in", "ca", "sa", "global", "us-gov",
];

const QUANTIZATIONS: &[&str] = &["fp8", "fp4", "fp16", "bf16", "int8", "int4"];

/// Families whose hosts append `-turbo` for their own faster serving of the same weights.
const TURBO_HOSTED_AUTHORS: &[&str] = &["meta-llama", "qwen", "deepseek", "mistralai", "google"];

pub fn canonical_id(provider: &str, upstream_model: &str) -> Canonical {
    let lower = upstream_model.to_ascii_lowercase();
    let unwrapped = unwrap_hosting(provider, &lower);
    let (org, name) = match unwrapped.split_once('/') {
        // Nested paths (`deepseek/deepseek-r1/community`) keep their tail in the name.
        Some((org, rest)) if !org.is_empty() => (Some(org.to_string()), rest.replace('/', "-")),
        _ => (None, unwrapped.replace('/', "-")),
    };
    let mut name = family_spelling(dotted_versions(&name.replace('_', "-")));
    if let Some(rest) = name.strip_prefix("meta-llama-") {
        name = format!("llama-{rest}");
    }
    let author = author(provider, org.as_deref(), &name);
    // NVIDIA's hosts disagree on whether its names repeat the author.
    if author == "nvidia" {
        if let Some(rest) = name.strip_prefix("nvidia-") {
            name = rest.to_string();
        }
    }
    let mut tokens: Vec<String> = name.split('-').map(str::to_string).collect();
    if author == "meta-llama" || author == "google" {
        split_family_version(&mut tokens);
    }
    let quantization = strip_serving_suffixes(&mut tokens, &author, provider);
    if author == "meta-llama" && is_llama_chat(&tokens) {
        tokens.push("instruct".into());
    }
    let name = sanitize(&tokens.join("-"));
    Canonical {
        id: format!("{}/{name}", sanitize(&author)),
        quantization,
    }
}

/// Removes what a host wraps around a model id.
fn unwrap_hosting(provider: &str, id: &str) -> String {
    // Fireworks: `accounts/<account>/models/<model>` (or `/routers/`).
    let mut id = match id
        .strip_prefix("accounts/")
        .and_then(|r| r.rsplit_once('/'))
    {
        Some((_, model)) => model.to_string(),
        None => id.to_string(),
    };
    if provider == "bedrock" {
        id = bedrock_id(&id);
    }
    if let Some((base, tag)) = id.split_once(':') {
        // Ollama tags (`llama3:70b`, `gpt-oss:120b-cloud`).
        id = match tag {
            "latest" => base.to_string(),
            _ => format!("{base}-{tag}"),
        };
    }
    if let Some((base, _)) = id.split_once('@') {
        id = base.to_string();
    }
    id
}

/// `us.anthropic.claude-3-5-haiku-20241022-v1:0` → `anthropic/claude-3-5-haiku-20241022`.
fn bedrock_id(id: &str) -> String {
    let mut rest = id;
    if let Some((prefix, tail)) = rest.split_once('.') {
        if BEDROCK_REGIONS.contains(&prefix) {
            rest = tail;
        }
    }
    let (vendor, model) = match rest.split_once('.') {
        Some((v, m))
            if v.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) =>
        {
            (Some(v), m)
        }
        _ => (None, rest),
    };
    let mut model = model.to_string();
    // Mistral's `-v0:2` is its own version 0.2; `-v1:0`, `-1:0` and a bare `-v1` are
    // Bedrock's revisions of the listing, not of the model.
    if let Some(i) = model.rfind("-v0:") {
        model.replace_range(i + 3..i + 4, ".");
    } else if let Some(stem) = model.strip_suffix(":0") {
        let revision = stem.rfind('-').filter(|&d| {
            let r = stem[d + 1..].trim_start_matches('v');
            !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit())
        });
        if let Some(d) = revision {
            model.truncate(d);
        }
    } else if let Some(stem) = model.strip_suffix("-v1") {
        if stem.bytes().any(|b| b.is_ascii_digit()) {
            model = stem.to_string();
        }
    }
    // `deepseek.v3`, `deepseek.r1`: the vendor is part of the model's name.
    if let Some(v) = vendor {
        let b = model.as_bytes();
        if b.len() > 1 && (b[0] == b'v' || b[0] == b'r') && b[1].is_ascii_digit() {
            model = format!("{v}-{model}");
        }
    }
    match vendor {
        Some(v) => format!("{v}/{model}"),
        None => model,
    }
}

/// `v3p3` → `v3.3`, and a lone digit after a version digit joins it: `3-5` → `3.5`.
fn dotted_versions(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut out = String::with_capacity(name.len());
    for (i, &b) in bytes.iter().enumerate() {
        let digit_around =
            |j: Option<usize>| j.and_then(|j| bytes.get(j)).is_some_and(u8::is_ascii_digit);
        if b == b'p' && digit_around(i.checked_sub(1)) && digit_around(Some(i + 1)) {
            out.push('.');
        } else {
            out.push(b as char);
        }
    }
    let tokens: Vec<&str> = out.split('-').collect();
    let mut merged: Vec<String> = Vec::with_capacity(tokens.len());
    for token in tokens {
        let joins = merged.last().is_some_and(|prev| ends_with_one_digit(prev))
            && token.len() == 1
            && token.as_bytes()[0].is_ascii_digit();
        match merged.last_mut() {
            Some(prev) if joins => {
                prev.push('.');
                prev.push_str(token);
            }
            _ => merged.push(token.to_string()),
        }
    }
    merged.join("-")
}

/// True when the token ends in exactly one digit (`3`, `llama3`, `v0`, not `2024`).
fn ends_with_one_digit(token: &str) -> bool {
    let b = token.as_bytes();
    let n = b.len();
    n >= 1 && b[n - 1].is_ascii_digit() && (n == 1 || !b[n - 2].is_ascii_digit())
}

fn author(provider: &str, org: Option<&str>, name: &str) -> String {
    let alias = |org: &str| {
        ORG_ALIASES
            .iter()
            .find(|(alias, _)| *alias == org)
            .map_or(org, |(_, author)| author)
            .to_string()
    };
    if let Some(org) = org {
        return alias(org);
    }
    match FAMILIES.iter().find(|(prefix, _)| name.starts_with(prefix)) {
        Some((_, author)) => author.to_string(),
        // A provider's own model (`perplexity/…`, `mistral` → `mistralai/…`).
        None => alias(provider),
    }
}

/// Spellings of one family that hosts disagree on: `gpt-35` (Azure) → `gpt-3.5`,
/// `qwen-2.5`/`qwen-v2.5` → `qwen2.5` (the weights' own name), `code-llama` → `codellama`.
fn family_spelling(name: String) -> String {
    if let Some(rest) = name.strip_prefix("gpt-35") {
        return format!("gpt-3.5{rest}");
    }
    if let Some(rest) = name.strip_prefix("code-llama") {
        return format!("codellama{rest}");
    }
    if let Some(rest) = name.strip_prefix("qwen-") {
        let rest = rest
            .strip_prefix('v')
            .filter(|r| r.starts_with(|c: char| c.is_ascii_digit()))
            .unwrap_or(rest);
        if rest.starts_with(|c: char| c.is_ascii_digit()) {
            return format!("qwen{rest}");
        }
    }
    name
}

/// `llama3.3` → `llama`, `3.3`; `llama`, `v3.3` → `llama`, `3.3`; `gemma2` → `gemma`, `2`.
fn split_family_version(tokens: &mut Vec<String>) {
    let Some(first) = tokens.first().cloned() else {
        return;
    };
    for family in ["llama", "gemma"] {
        if let Some(version) = first.strip_prefix(family) {
            if version.starts_with(|c: char| c.is_ascii_digit()) {
                tokens[0] = family.to_string();
                tokens.insert(1, version.to_string());
            } else if version.is_empty() {
                if let Some(v) = tokens.get(1).and_then(|t| t.strip_prefix('v')) {
                    if v.starts_with(|c: char| c.is_ascii_digit()) {
                        tokens[1] = v.to_string();
                    }
                }
            }
            return;
        }
    }
}

/// Drops trailing serving variants; returns the quantization one of them named.
fn strip_serving_suffixes(
    tokens: &mut Vec<String>,
    author: &str,
    provider: &str,
) -> Option<String> {
    let mut quantization = None;
    while tokens.len() > 1 {
        let last = tokens[tokens.len() - 1].as_str();
        let drop = if QUANTIZATIONS.contains(&last) {
            quantization.get_or_insert_with(|| last.to_string());
            true
        } else {
            match last {
                "hf" | "maas" => true,
                "cloud" => provider == "ollama",
                "versatile" | "instant" => author == "meta-llama",
                "turbo" => TURBO_HOSTED_AUTHORS.contains(&author),
                // Legacy ids that carry their context window (`llama3-70b-8192`).
                "4096" | "8192" | "16384" | "32768" | "65536" | "131072" => true,
                _ => false,
            }
        };
        if !drop {
            break;
        }
        tokens.pop();
    }
    quantization
}

/// A Llama chat model (`llama-3.3-70b`) lacking its `instruct` suffix.
fn is_llama_chat(tokens: &[String]) -> bool {
    tokens.first().is_some_and(|t| t == "llama")
        && tokens
            .get(1)
            .is_some_and(|t| t.starts_with(|c: char| c.is_ascii_digit()))
        && !tokens.iter().any(|t| {
            matches!(
                t.as_str(),
                "instruct" | "chat" | "guard" | "vision" | "base"
            )
        })
}

/// Keeps the characters model ids allow; others become `-`.
fn sanitize(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.+".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = cleaned.trim_matches('-');
    if trimmed.is_empty() {
        "model".to_string()
    } else {
        trimmed.to_string()
    }
}

#[cfg(test)]
#[path = "canonical_tests.rs"]
mod tests;
