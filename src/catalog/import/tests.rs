use super::*;
use crate::catalog::Price;

/// The real litellm map (v1.106.2) that the shipped catalog is generated from.
const LITELLM: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/reference/litellm-model-prices.json"
);

fn litellm(options: &Options) -> Imported {
    let json = std::fs::read_to_string(LITELLM).expect("the reference litellm map");
    import(Source::Litellm, &json, options).unwrap()
}

fn endpoint<'a>(imported: &'a Imported, model: &str, provider: &str) -> &'a ImportedEndpoint {
    imported.models[model]
        .endpoints
        .iter()
        .find(|e| e.provider == provider)
        .unwrap_or_else(|| panic!("{model} has no {provider} endpoint"))
}

/// USD per 1M tokens as pico-USD per token.
fn usd(per_million: f64) -> u64 {
    Price::per_token_from_usd_per_million(per_million).unwrap()
}

#[test]
fn imports_well_known_prices_and_limits_exactly() {
    let imported = litellm(&Options::default());
    let mini = endpoint(&imported, "openai/gpt-4o-mini", "openai");
    assert_eq!(mini.model, "gpt-4o-mini");
    assert_eq!(
        mini.price,
        Price {
            prompt: usd(0.15),
            completion: usd(0.60),
            cached_prompt: Some(usd(0.075)),
            reasoning: None,
            cache_write: None,
        }
    );
    assert_eq!(mini.context_length, Some(128_000));
    assert_eq!(mini.max_output, Some(16_384));
    assert!(mini.supports.contains(&"tools".to_string()));
    assert!(imported.models["openai/gpt-4o-mini"]
        .input_modalities
        .contains(&"image".to_string()));

    let sonnet = endpoint(&imported, "anthropic/claude-3.5-sonnet-20241022", "bedrock");
    assert_eq!(sonnet.model, "anthropic.claude-3-5-sonnet-20241022-v2:0");
    assert_eq!(
        (sonnet.price.prompt, sonnet.price.completion),
        (usd(3.0), usd(15.0))
    );
    assert_eq!(sonnet.price.cached_prompt, Some(usd(0.30)));
    // litellm's `cache_creation_input_token_cost`: 1.25x the prompt price.
    assert_eq!(sonnet.price.cache_write, Some(usd(3.75)));
    // A 0 there (DeepSeek's) is no price of its own: writes cost the prompt price.
    let deepseek = endpoint(&imported, "deepseek/deepseek-v3", "deepseek");
    assert_eq!(deepseek.price.cache_write, None);
    assert_eq!(sonnet.context_length, Some(200_000));

    let flash = endpoint(&imported, "google/gemini-2.5-flash", "gemini");
    assert_eq!(flash.model, "gemini-2.5-flash");
    assert_eq!(
        (flash.price.prompt, flash.price.completion),
        (usd(0.30), usd(2.50))
    );
    assert_eq!(flash.context_length, Some(1_048_576));
}

#[test]
fn one_open_model_from_many_providers_is_one_model_with_many_endpoints() {
    let imported = litellm(&Options::default());
    let llama = &imported.models["meta-llama/llama-3.3-70b-instruct"];
    let providers: Vec<&str> = llama
        .endpoints
        .iter()
        .map(|e| e.provider.as_str())
        .collect();
    for p in [
        "together",
        "deepinfra",
        "fireworks",
        "cerebras",
        "bedrock",
        "vertex",
    ] {
        assert!(providers.contains(&p), "{p} missing from {providers:?}");
    }
    // Endpoints keep each provider's own id and price.
    let together = endpoint(&imported, "meta-llama/llama-3.3-70b-instruct", "together");
    assert_eq!(together.model, "meta-llama/Llama-3.3-70B-Instruct-Turbo");
    let deepinfra = endpoint(&imported, "meta-llama/llama-3.3-70b-instruct", "deepinfra");
    assert_eq!(
        (deepinfra.price.prompt, deepinfra.price.completion),
        (usd(0.23), usd(0.40))
    );
    // Bedrock lists the model twice (plain and a US profile): the plain id wins.
    let bedrock = endpoint(&imported, "meta-llama/llama-3.3-70b-instruct", "bedrock");
    assert_eq!(bedrock.model, "meta.llama3-3-70b-instruct-v1:0");
    assert!(imported.models.len() > 500, "{}", imported.models.len());
}

#[test]
fn keeps_only_chat_models_and_mapped_providers() {
    let imported = litellm(&Options::default());
    assert!(!imported
        .models
        .contains_key("openai/text-embedding-3-small"));
    assert!(imported.report.skipped.contains_key("mode is not chat"));
    let embeddings = litellm(&Options {
        mode: Mode::Embedding,
        providers: None,
    });
    let small = endpoint(&embeddings, "openai/text-embedding-3-small", "openai");
    assert_eq!((small.price.prompt, small.price.completion), (usd(0.02), 0));
    assert_eq!(
        embeddings.models["openai/text-embedding-3-small"].output_modalities,
        ["embeddings"]
    );
}

#[test]
fn the_providers_filter_keeps_only_named_providers() {
    let only = ["groq", "together"].map(String::from).into_iter().collect();
    let imported = litellm(&Options {
        mode: Mode::Chat,
        providers: Some(only),
    });
    assert!(imported
        .models
        .values()
        .flat_map(|m| &m.endpoints)
        .all(|e| e.provider == "groq" || e.provider == "together"));
    assert!(!imported.models.contains_key("openai/gpt-4o-mini"));
    let llama = &imported.models["meta-llama/llama-3.3-70b-instruct"];
    assert_eq!(llama.endpoints.len(), 1);
}

#[test]
fn overrides_patch_add_and_drop() {
    let mut imported = litellm(&Options::default());
    let overrides = r#"
models:
  meta-llama/llama-3.3-70b-instruct:
    name: "Llama 3.3 70B"
    categories: [programming]
    endpoints:
      - { provider: together, price: { prompt: 0.5, cache_write: 0.625 } }
      - { provider: cerebras, drop: true }
      - { provider: groq, model: llama-3.3-70b-versatile, price: { prompt: 0.59, completion: 0.79 } }
  openai/gpt-4o-2024-05-13: null
  acme/house:
    endpoints: [{ provider: vllm, model: house-7b, price: { prompt: 0, completion: 0 } }]
"#;
    apply_overrides(&mut imported, overrides, "overrides.yaml").unwrap();
    let llama = &imported.models["meta-llama/llama-3.3-70b-instruct"];
    assert_eq!(llama.name.as_deref(), Some("Llama 3.3 70B"));
    assert_eq!(llama.categories, ["programming"]);
    let together = endpoint(&imported, "meta-llama/llama-3.3-70b-instruct", "together");
    assert_eq!(
        (together.price.prompt, together.price.completion),
        (usd(0.5), usd(1.04))
    );
    assert_eq!(together.price.cache_write, Some(usd(0.625)));
    assert!(llama.endpoints.iter().all(|e| e.provider != "cerebras"));
    let groq = endpoint(&imported, "meta-llama/llama-3.3-70b-instruct", "groq");
    assert_eq!(groq.model, "llama-3.3-70b-versatile");
    assert!(!imported.models.contains_key("openai/gpt-4o-2024-05-13"));
    assert_eq!(imported.models["acme/house"].endpoints[0].model, "house-7b");

    let err = apply_overrides(&mut imported, "models:\n  a/b:\n    bogus: 1\n", "o.yaml");
    assert!(err.unwrap_err().starts_with("o.yaml:3:5:"));
    let err = apply_overrides(
        &mut imported,
        "models:\n  a/b:\n    endpoints: [{ provider: x }]\n",
        "o.yaml",
    );
    assert!(err.unwrap_err().contains("needs `model`"));
}

#[test]
fn rendered_yaml_loads_as_a_config_catalog_with_the_same_prices() {
    let only = ["groq", "together", "deepinfra", "openai", "anthropic"]
        .map(String::from)
        .into_iter()
        .collect();
    let imported = litellm(&Options {
        mode: Mode::Chat,
        providers: Some(only),
    });
    let yaml = render(&imported, "test");
    let providers = "providers:\n  groq: { preset: groq }\n  together: { preset: together }\n  deepinfra: { preset: deepinfra }\n  openai: { preset: openai }\n  anthropic: { preset: anthropic }\n";
    let config = format!("{providers}{}", yaml.replace("# test\n", ""));
    let loaded = crate::config::load_str(&config, "rendered.yaml", &|_| None).unwrap();
    let catalog = &loaded.snapshot.catalog;
    assert_eq!(catalog.models.len(), imported.models.len());
    let mini = catalog.model("openai/gpt-4o-mini").unwrap();
    assert_eq!(mini.endpoints[0].price.prompt, usd(0.15));
    assert_eq!(mini.endpoints[0].price.cached_prompt, Some(usd(0.075)));
    assert_eq!(mini.endpoints[0].price.cache_write, None);
    assert_eq!(mini.context_length, Some(128_000));
    let haiku = &catalog
        .model("anthropic/claude-haiku-4.5")
        .unwrap()
        .endpoints[0];
    assert_eq!(
        (haiku.price.prompt, haiku.price.cache_write),
        (usd(1.0), Some(usd(1.25)))
    );
    assert!(mini.input_modalities.contains(&"image".to_string()));
    let llama = catalog.model("meta-llama/llama-3.3-70b-instruct").unwrap();
    assert!(llama.endpoints.len() >= 2);
}

#[test]
fn split_files_carry_one_provider_each() {
    let imported = litellm(&Options::default());
    let files = render_split(&imported, "test");
    assert!(files.len() > 15, "{}", files.len());
    let (_, groq) = files.iter().find(|(p, _)| p == "groq").unwrap();
    assert!(groq.contains("provider: \"groq\""));
    assert!(!groq.contains("provider: \"together\""));
}

#[test]
fn prices_render_exactly_per_million() {
    assert_eq!(render::per_million(150_000), "0.15");
    assert_eq!(render::per_million(0), "0");
    assert_eq!(render::per_million(15_000_000), "15");
    assert_eq!(render::per_million(1), "0.000001");
    assert_eq!(pico_per_token(1.5e-7), Some(150_000));
    assert_eq!(pico_per_token(-1.0), None);
    assert_eq!(pico_per_token(f64::NAN), None);
}

#[test]
fn imports_an_openrouter_listing() {
    let json = r#"{"data": [
      {"id": "meta-llama/llama-3.3-70b-instruct", "name": "Meta: Llama 3.3 70B Instruct",
       "context_length": 131072,
       "pricing": {"prompt": "0.00000013", "completion": "0.0000004", "input_cache_read": "0.00000001",
                   "input_cache_write": "0"},
       "architecture": {"input_modalities": ["text"], "output_modalities": ["text"]},
       "top_provider": {"max_completion_tokens": 16384},
       "supported_parameters": ["tools", "tool_choice", "temperature", "mystery"]},
      {"id": "anthropic/claude-sonnet-4.5", "context_length": 1000000,
       "pricing": {"prompt": "0.000003", "completion": "0.000015", "input_cache_read": "0.0000003",
                   "input_cache_write": "0.00000375"},
       "architecture": {"input_modalities": ["text"], "output_modalities": ["text"]},
       "top_provider": {"max_completion_tokens": 16384},
       "supported_parameters": ["tools", "tool_choice", "temperature", "mystery"]},
      {"id": "openrouter/auto", "pricing": {"prompt": "-1", "completion": "-1"}},
      {"id": "openai/text-embedding-3-small", "pricing": {"prompt": "0.00000002", "completion": "0"},
       "architecture": {"input_modalities": ["text"], "output_modalities": ["embeddings"]}}
    ]}"#;
    let imported = import(Source::Openrouter, json, &Options::default()).unwrap();
    assert_eq!(imported.models.len(), 2);
    let sonnet = &imported.models["anthropic/claude-sonnet-4.5"].endpoints[0].price;
    assert_eq!(
        (sonnet.prompt, sonnet.cached_prompt, sonnet.cache_write),
        (usd(3.0), Some(usd(0.30)), Some(usd(3.75)))
    );
    let llama = &imported.models["meta-llama/llama-3.3-70b-instruct"];
    assert_eq!(llama.name.as_deref(), Some("Meta: Llama 3.3 70B Instruct"));
    let e = &llama.endpoints[0];
    assert_eq!(
        (e.provider.as_str(), e.model.as_str()),
        ("openrouter", "meta-llama/llama-3.3-70b-instruct")
    );
    assert_eq!((e.price.prompt, e.price.completion), (usd(0.13), usd(0.40)));
    assert_eq!(e.price.cached_prompt, Some(usd(0.01)));
    assert_eq!(
        e.price.cache_write, None,
        "`input_cache_write` 0: the prompt price"
    );
    assert_eq!(
        (e.context_length, e.max_output),
        (Some(131_072), Some(16_384))
    );
    assert_eq!(
        e.supports,
        ["tools", "tool_choice", "temperature", "stream"]
    );
    assert!(import(Source::Openrouter, "[1,2]", &Options::default()).is_err());
    assert!(import(Source::Litellm, "not json", &Options::default()).is_err());
}
