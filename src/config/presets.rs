//! Provider presets: what an operator would otherwise copy from each provider's docs — the API
//! dialect, base URL, the usual key variable, the data policy and a health-check path — so a
//! provider entry can be `groq: { preset: groq }`. Every field the entry sets wins.
//!
//! Data policies are conservative: `data_collection: deny` only where the provider publicly
//! commits not to train on API traffic by default for every plan, and `zdr: true` only where
//! it documents that prompts are not stored at all by default. Where the answer depends on the
//! plan, an account setting or an agreement, the preset says `allow` / `false`; an operator
//! who has checked their own terms overrides it in the entry.

/// One provider's conventions.
#[derive(Debug)]
pub struct Preset {
    pub id: &'static str,
    pub dialect: &'static str,
    /// `None`: the URL is the operator's own (a resource, project or host); `base_url_hint`
    /// shows its shape.
    pub base_url: Option<&'static str>,
    pub base_url_hint: &'static str,
    pub api_key_env: Option<&'static str>,
    pub data_collection: &'static str,
    pub zdr: bool,
    /// Where `health_check` probes when the entry gives no path; `None` where the API has no
    /// cheap authenticated GET (the general default `/models` then applies).
    pub health_path: Option<&'static str>,
    /// Bedrock: the base URL is made from `region`, and AWS credentials replace the key.
    pub aws: bool,
}

impl Preset {
    /// The base URL for this entry: the preset's own, or Bedrock's regional runtime host.
    pub fn base_url(&self, region: Option<&str>) -> Option<String> {
        if self.aws {
            return region.map(|r| format!("https://bedrock-runtime.{r}.amazonaws.com"));
        }
        self.base_url.map(str::to_string)
    }
}

const fn hosted(
    id: &'static str,
    base_url: &'static str,
    api_key_env: &'static str,
    data_collection: &'static str,
) -> Preset {
    Preset {
        id,
        dialect: "openai",
        base_url: Some(base_url),
        base_url_hint: base_url,
        api_key_env: Some(api_key_env),
        data_collection,
        zdr: false,
        health_path: Some("/models"),
        aws: false,
    }
}

pub const PRESETS: &[Preset] = &[
    // platform.openai.com/docs/guides/your-data: API data is not used for training; kept up
    // to 30 days for abuse monitoring (zero retention only on approval).
    hosted("openai", "https://api.openai.com/v1", "OPENAI_API_KEY", "deny"),
    // privacy.anthropic.com (commercial terms): no training on API inputs; retained for a
    // limited period; zero retention by agreement only.
    Preset {
        dialect: "anthropic",
        ..hosted(
            "anthropic",
            "https://api.anthropic.com/v1",
            "ANTHROPIC_API_KEY",
            "deny",
        )
    },
    // ai.google.dev/gemini-api/terms: unpaid-tier prompts may be used to improve Google's
    // products; only the paid tier excludes them. The key does not say which tier it is.
    Preset {
        dialect: "gemini",
        ..hosted(
            "gemini",
            "https://generativelanguage.googleapis.com/v1beta",
            "GEMINI_API_KEY",
            "allow",
        )
    },
    // Vertex AI through its OpenAI-compatible endpoint (Gemini as `google/<model>`, partner
    // MaaS models as `<publisher>/<model>`); the URL names the project and region, and the key
    // is an OAuth access token (`gcloud auth print-access-token`, valid one hour: refreshed
    // into an `api_key_file`, which reloads). cloud.google.com/vertex-ai/generative-ai/docs/data-governance: no
    // training on customer data; prompts are cached for 24h unless caching is disabled.
    Preset {
        base_url: None,
        base_url_hint: "https://REGION-aiplatform.googleapis.com/v1beta1/projects/PROJECT/locations/REGION/endpoints/openapi",
        health_path: None,
        ..hosted("vertex", "", "VERTEX_ACCESS_TOKEN", "deny")
    },
    // docs.aws.amazon.com/bedrock/latest/userguide/data-protection.html: "Amazon Bedrock
    // doesn't store or log your prompts and completions" nor trains on them. Bedrock Runtime
    // has no unsigned GET to probe.
    Preset {
        id: "bedrock",
        dialect: "bedrock",
        base_url: None,
        base_url_hint: "set `region` (the URL is https://bedrock-runtime.REGION.amazonaws.com)",
        api_key_env: None,
        data_collection: "deny",
        zdr: true,
        health_path: None,
        aws: true,
    },
    // learn.microsoft.com/legal/cognitive-services/openai/data-privacy: no training on
    // customer data; stored up to 30 days for abuse monitoring unless exempted. The URL is the
    // operator's resource; `api_version` is required too.
    Preset {
        dialect: "azure",
        base_url: None,
        base_url_hint: "https://RESOURCE.openai.azure.com",
        health_path: None,
        ..hosted("azure", "", "AZURE_OPENAI_API_KEY", "deny")
    },
    // Mistral may train on inputs of its free plan; paid plans opt out. The key does not say.
    hosted("mistral", "https://api.mistral.ai/v1", "MISTRAL_API_KEY", "allow"),
    // console.groq.com/docs/your-data: no training on customer data; zero retention is an
    // organisation setting, so not assumed.
    hosted("groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY", "deny"),
    // DeepSeek's privacy policy allows using inputs to improve its services.
    hosted("deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", "allow"),
    // Together: training use is an account-level privacy setting.
    hosted("together", "https://api.together.xyz/v1", "TOGETHER_API_KEY", "allow"),
    // docs.fireworks.ai (data handling): prompts to serverless open models are not logged or
    // used for training without opt-in; zero retention not assumed for every model type.
    hosted(
        "fireworks",
        "https://api.fireworks.ai/inference/v1",
        "FIREWORKS_API_KEY",
        "deny",
    ),
    // deepinfra.com/docs/data: inputs and outputs are not stored or used for training;
    // zero retention is left to the operator to confirm.
    hosted(
        "deepinfra",
        "https://api.deepinfra.com/v1/openai",
        "DEEPINFRA_API_KEY",
        "deny",
    ),
    // xAI retains API traffic and training use follows the team's data-sharing setting.
    hosted("xai", "https://api.x.ai/v1", "XAI_API_KEY", "allow"),
    // Perplexity's API has no GET /models to probe.
    Preset {
        health_path: None,
        ..hosted(
            "perplexity",
            "https://api.perplexity.ai",
            "PERPLEXITY_API_KEY",
            "allow",
        )
    },
    // openrouter.ai/docs (privacy and logging): the policy is whatever the account allows
    // upstream; per-request `provider.data_collection` is the client's lever.
    hosted(
        "openrouter",
        "https://openrouter.ai/api/v1",
        "OPENROUTER_API_KEY",
        "allow",
    ),
    // Local: prompts never leave the operator's machines. No key.
    Preset {
        api_key_env: None,
        zdr: true,
        ..hosted("ollama", "http://127.0.0.1:11434/v1", "", "deny")
    },
    // Self-hosted vLLM: the operator's own host (`--api-key` is optional, set api_key_env).
    Preset {
        base_url: None,
        base_url_hint: "http://HOST:8000/v1",
        api_key_env: None,
        zdr: true,
        ..hosted("vllm", "", "", "deny")
    },
    // OpenAI-compatible hosts of open models. None of them is assumed to exclude training or
    // retention without the operator checking the account's terms.
    hosted("cerebras", "https://api.cerebras.ai/v1", "CEREBRAS_API_KEY", "allow"),
    hosted("sambanova", "https://api.sambanova.ai/v1", "SAMBANOVA_API_KEY", "allow"),
    hosted("nebius", "https://api.studio.nebius.com/v1", "NEBIUS_API_KEY", "allow"),
    hosted("novita", "https://api.novita.ai/v3/openai", "NOVITA_API_KEY", "allow"),
    hosted("hyperbolic", "https://api.hyperbolic.xyz/v1", "HYPERBOLIC_API_KEY", "allow"),
    hosted("moonshot", "https://api.moonshot.ai/v1", "MOONSHOT_API_KEY", "allow"),
    hosted("zai", "https://api.z.ai/api/paas/v4", "ZAI_API_KEY", "allow"),
];

pub fn find(id: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.id == id)
}

/// Every preset id, for error messages.
pub fn names() -> String {
    PRESETS.iter().map(|p| p.id).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Dialect, UpstreamUrl};

    #[test]
    fn every_preset_is_well_formed() {
        for p in PRESETS {
            assert!(Dialect::parse(p.dialect).is_some(), "{}", p.id);
            assert!(matches!(p.data_collection, "allow" | "deny"), "{}", p.id);
            if let Some(url) = p.base_url {
                assert!(UpstreamUrl::parse(url).is_ok(), "{}: {url}", p.id);
            }
            assert!(p.api_key_env.is_none_or(|v| !v.is_empty()), "{}", p.id);
            assert_eq!(PRESETS.iter().filter(|q| q.id == p.id).count(), 1);
        }
    }

    #[test]
    fn bedrock_builds_its_url_from_the_region() {
        let bedrock = find("bedrock").unwrap();
        assert_eq!(
            bedrock.base_url(Some("eu-west-1")).as_deref(),
            Some("https://bedrock-runtime.eu-west-1.amazonaws.com")
        );
        assert_eq!(bedrock.base_url(None), None);
        assert_eq!(find("vllm").unwrap().base_url(None), None);
        assert!(find("klingon").is_none());
    }
}
