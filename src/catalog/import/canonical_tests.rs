use super::*;

fn id(provider: &str, upstream: &str) -> String {
    canonical_id(provider, upstream).id
}

#[test]
fn one_llama_on_every_host_is_one_id() {
    let want = "meta-llama/llama-3.3-70b-instruct";
    for (provider, upstream) in [
        ("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
        ("deepinfra", "meta-llama/Llama-3.3-70B-Instruct"),
        (
            "fireworks",
            "accounts/fireworks/models/llama-v3p3-70b-instruct",
        ),
        ("groq", "llama-3.3-70b-versatile"),
        ("cerebras", "llama-3.3-70b"),
        ("sambanova", "Meta-Llama-3.3-70B-Instruct"),
        ("bedrock", "meta.llama3-3-70b-instruct-v1:0"),
        ("bedrock", "us.meta.llama3-3-70b-instruct-v1:0"),
        ("vertex", "meta/llama-3.3-70b-instruct-maas"),
        ("novita", "meta-llama/llama-3.3-70b-instruct"),
    ] {
        assert_eq!(id(provider, upstream), want, "{provider}: {upstream}");
    }
}

#[test]
fn quantization_suffixes_become_the_endpoints_quantization() {
    let c = canonical_id(
        "novita",
        "meta-llama/llama-4-maverick-17b-128e-instruct-fp8",
    );
    assert_eq!(c.id, "meta-llama/llama-4-maverick-17b-128e-instruct");
    assert_eq!(c.quantization.as_deref(), Some("fp8"));
    assert_eq!(
        canonical_id("groq", "llama-3.1-8b-instant").quantization,
        None
    );
}

#[test]
fn closed_models_keep_their_vendors_names_and_dates() {
    assert_eq!(id("openai", "gpt-4o-mini"), "openai/gpt-4o-mini");
    assert_eq!(id("azure", "gpt-4o-mini"), "openai/gpt-4o-mini");
    // A dated snapshot is its own model (its own price).
    assert_eq!(
        id("openai", "gpt-4o-2024-08-06"),
        "openai/gpt-4o-2024-08-06"
    );
    // `turbo` is OpenAI's model name, not a host's serving variant.
    assert_eq!(id("openai", "gpt-3.5-turbo"), "openai/gpt-3.5-turbo");
    assert_eq!(id("azure", "gpt-35-turbo"), "openai/gpt-3.5-turbo");
    assert_eq!(
        id("anthropic", "claude-sonnet-4-5-20250929"),
        "anthropic/claude-sonnet-4.5-20250929"
    );
    assert_eq!(
        id("bedrock", "anthropic.claude-sonnet-4-5-20250929-v1:0"),
        "anthropic/claude-sonnet-4.5-20250929"
    );
    assert_eq!(
        id("bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0"),
        "anthropic/claude-3.5-sonnet-20240620"
    );
    assert_eq!(id("gemini", "gemini-2.5-flash"), "google/gemini-2.5-flash");
    assert_eq!(
        id("vertex", "google/gemini-2.5-flash"),
        "google/gemini-2.5-flash"
    );
    assert_eq!(id("xai", "grok-4.3"), "x-ai/grok-4.3");
    assert_eq!(id("deepseek", "deepseek-chat"), "deepseek/deepseek-chat");
    assert_eq!(id("perplexity", "sonar-pro"), "perplexity/sonar-pro");
}

#[test]
fn bedrock_revisions_and_versions() {
    assert_eq!(id("bedrock", "amazon.nova-micro-v1:0"), "amazon/nova-micro");
    assert_eq!(
        id("bedrock", "openai.gpt-oss-20b-1:0"),
        "openai/gpt-oss-20b"
    );
    assert_eq!(
        id("bedrock", "mistral.mistral-7b-instruct-v0:2"),
        "mistralai/mistral-7b-instruct-v0.2"
    );
    assert_eq!(id("bedrock", "deepseek.v3-v1:0"), "deepseek/deepseek-v3");
    assert_eq!(id("bedrock", "in.moonshotai.kimi-k3"), "moonshotai/kimi-k3");
    assert_eq!(
        id("bedrock", "ai21.jamba-1-5-large-v1:0"),
        "ai21/jamba-1.5-large"
    );
}

#[test]
fn hosts_spellings_of_one_family_agree() {
    assert_eq!(
        id("together", "Qwen/Qwen2.5-72B-Instruct-Turbo"),
        "qwen/qwen2.5-72b-instruct"
    );
    assert_eq!(
        id("novita", "qwen/qwen-2.5-72b-instruct"),
        "qwen/qwen2.5-72b-instruct"
    );
    assert_eq!(
        id(
            "fireworks",
            "accounts/fireworks/models/qwen2p5-72b-instruct"
        ),
        "qwen/qwen2.5-72b-instruct"
    );
    assert_eq!(
        id("ollama", "llama3:70b"),
        "meta-llama/llama-3-70b-instruct"
    );
    assert_eq!(id("ollama", "gpt-oss:120b-cloud"), "openai/gpt-oss-120b");
    assert_eq!(
        id("deepinfra", "nvidia/NVIDIA-Nemotron-Nano-9B-v2"),
        id("together", "nvidia/Nemotron-Nano-9B-v2")
    );
    assert_eq!(
        id("groq", "llama3-70b-8192"),
        "meta-llama/llama-3-70b-instruct"
    );
}

#[test]
fn unknown_families_belong_to_their_host_and_ids_stay_valid() {
    assert_eq!(
        id("fireworks", "accounts/fireworks/models/yi-large"),
        "01-ai/yi-large"
    );
    assert_eq!(
        id("mistral", "labs-leanstral-1-5"),
        "mistralai/labs-leanstral-1.5"
    );
    assert_eq!(id("groq", "compound beta!"), "groq/compound-beta");
    assert_eq!(id("groq", "///"), "groq/model");
    assert_eq!(id("groq", ""), "groq/model");
}

#[test]
fn every_key_of_the_real_map_gives_a_valid_id_on_every_host() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/reference/litellm-model-prices.json"
    );
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let odd = [
        "",
        ":",
        "@",
        "/",
        "a:b:c",
        "x.y.z-v0:",
        "é-ü/ß",
        "-v0:",
        "accounts/",
    ];
    for key in map.keys().map(String::as_str).chain(odd) {
        for provider in ["groq", "bedrock", "ollama", "vertex"] {
            let c = canonical_id(provider, key);
            let (author, name) = c.id.split_once('/').unwrap();
            assert!(!author.is_empty() && !name.is_empty(), "{key} → {}", c.id);
            assert!(
                c.id.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "-_./:@+".contains(ch)),
                "{key} → {}",
                c.id
            );
        }
    }
}
