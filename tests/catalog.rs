//! Catalog at scale: the shipped catalog and config, `/v1/models` filters through the real
//! binary, `catalog import`, and includes across `check` and reload.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");
const LITELLM: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/reference/litellm-model-prices.json"
);

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "switchyard-catalog-{tag}-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        // Write then rename, as editors do.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn switchyard(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .output()
        .expect("run switchyard")
}

/// A preset provider whose URL and key are the mock's.
fn mocked(preset: &str, mock: &MockServer) -> String {
    format!(
        "  {preset}:\n    preset: {preset}\n    base_url: \"{}\"\n    api_key_env: UPSTREAM_KEY\n    timeouts: {{ connect: 1s, first_byte: 3s, idle: 3s }}\n",
        mock.base_url()
    )
}

/// The shipped catalog served by four mocked providers.
fn shipped_catalog_config(mock: &MockServer) -> String {
    let mut providers = String::new();
    for p in ["openai", "groq", "together", "deepinfra"] {
        providers.push_str(&mocked(p, mock));
    }
    format!(
        "{}include: [\"{MANIFEST}/conf/catalog/*.yaml\"]\nproviders:\n{providers}",
        config_head()
    )
}

async fn get_json(gw: &Gateway, path: &str) -> (u16, Value) {
    let r = client().get(gw.url(path)).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

fn ids(listing: &Value) -> Vec<String> {
    listing["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

#[test]
fn the_shipped_config_serves_hundreds_of_chat_models_from_many_providers() {
    let every_key_set = |_: &str| Some("test-secret".to_string());
    let path = Path::new(MANIFEST).join("conf/switchyard.yaml");
    let loaded = switchyard::config::load_file_with_env(&path, &every_key_set)
        .unwrap_or_else(|e| panic!("{e}"));
    let catalog = &loaded.snapshot.catalog;
    let mut providers = BTreeSet::new();
    let mut served = 0;
    for model in catalog.models.values() {
        let usable: Vec<_> = model
            .endpoints
            .iter()
            .filter(|e| e.provider.unavailable.is_none() && e.provider.dialect.is_served())
            .collect();
        if !usable.is_empty() && model.output_modalities.iter().any(|m| m == "text") {
            served += 1;
            providers.extend(usable.iter().map(|e| e.provider.id.clone()));
        }
    }
    assert!(served > 300, "{served} chat models");
    assert!(
        providers.len() > 15,
        "{} providers: {providers:?}",
        providers.len()
    );
    // The main file's endpoint joins the catalog's for the same model.
    let llama = catalog.model("meta-llama/llama-3.3-70b-instruct").unwrap();
    assert_eq!(llama.endpoints[0].provider.id, "groq");
    assert!(llama.endpoints.len() >= 5);
    assert!(loaded.snapshot.included_files.len() > 15);

    // The demo still loads as it is.
    let demo = std::fs::read_to_string(Path::new(MANIFEST).join("conf/demo.yaml")).unwrap();
    let demo = switchyard::config::load_str(&demo, "demo.yaml", &|_| None).unwrap();
    assert_eq!(demo.snapshot.catalog.models.len(), 2);
}

#[tokio::test]
async fn models_listing_filters_like_openrouter_through_the_gateway() {
    let mock = MockServer::start("127.0.0.1:0").unwrap();
    let gw = Gateway::start(&shipped_catalog_config(&mock));
    let (status, all) = get_json(&gw, "/v1/models").await;
    assert_eq!(status, 200);
    let all_ids = ids(&all);
    assert!(all_ids.len() > 100, "{}", all_ids.len());
    assert_eq!(all["total_count"].as_u64(), Some(all_ids.len() as u64));
    assert!(all_ids.contains(&"openai/gpt-4o-mini".to_string()));
    // Only models of the four configured providers are listed.
    for elsewhere in [
        "anthropic/claude-sonnet-4.5-20250929",
        "perplexity/sonar-pro",
    ] {
        assert!(!all_ids.contains(&elsewhere.to_string()), "{elsewhere}");
    }

    let (_, tools) = get_json(&gw, "/v1/models?supported_parameters=tools,response_format").await;
    let tool_ids = ids(&tools);
    assert!(!tool_ids.is_empty() && tool_ids.len() < all_ids.len());
    for m in tools["data"].as_array().unwrap() {
        let params = strings(&m["supported_parameters"]);
        assert!(
            params.contains(&"tools") && params.contains(&"response_format"),
            "{}",
            m["id"]
        );
    }

    let (_, vision) = get_json(
        &gw,
        "/api/v1/models?input_modalities=image&output_modalities=text",
    )
    .await;
    let vision_ids = ids(&vision);
    assert!(vision_ids.contains(&"openai/gpt-4o-mini".to_string()));
    assert!(vision_ids.len() < all_ids.len());
    for m in vision["data"].as_array().unwrap() {
        assert!(strings(&m["architecture"]["input_modalities"]).contains(&"image"));
    }

    let (_, cheapest) = get_json(&gw, "/v1/models?sort=pricing-low-to-high&limit=5&q=llama").await;
    assert_eq!(ids(&cheapest).len(), 5);
    let prices: Vec<f64> = cheapest["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let p = &m["pricing"];
            p["prompt"].as_str().unwrap().parse::<f64>().unwrap()
                + p["completion"].as_str().unwrap().parse::<f64>().unwrap()
        })
        .collect();
    assert!(prices.windows(2).all(|w| w[0] <= w[1]), "{prices:?}");
    assert!(ids(&cheapest).iter().all(|id| id.contains("llama")));

    let (status, bad) = get_json(&gw, "/v1/models?sort=sideways").await;
    assert_eq!(
        (status, bad["error"]["param"].as_str()),
        (400, Some("sort"))
    );
}

#[tokio::test]
async fn a_catalog_model_routes_to_each_providers_own_model_id() {
    let mock = MockServer::start("127.0.0.1:0").unwrap();
    let gw = Gateway::start(&shipped_catalog_config(&mock));
    let (_, endpoints) = get_json(
        &gw,
        "/v1/models/meta-llama/llama-3.3-70b-instruct/endpoints",
    )
    .await;
    let providers: Vec<&str> = endpoints["data"]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["provider_name"].as_str().unwrap())
        .collect();
    assert!(
        providers.contains(&"together") && providers.contains(&"deepinfra"),
        "{providers:?}"
    );

    let r = chat(
        &gw,
        json!({"model": "meta-llama/llama-3.3-70b-instruct", "provider": {"only": ["together"]},
               "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["model"], "meta-llama/llama-3.3-70b-instruct");
    assert_eq!(body["provider"], "together");
    let sent = mock.requests().last().unwrap().json().unwrap();
    assert_eq!(sent["model"], "meta-llama/Llama-3.3-70B-Instruct-Turbo");
}

#[test]
fn catalog_import_writes_files_that_check_accepts() {
    let dir = Scratch::new("import");
    let out = dir.0.join("catalog.yaml");
    let run = switchyard(&[
        "catalog",
        "import",
        "--from",
        "litellm",
        LITELLM,
        "--providers",
        "groq,together",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let summary = String::from_utf8_lossy(&run.stderr);
    assert!(summary.contains("2 providers"), "{summary}");
    let yaml = std::fs::read_to_string(&out).unwrap();
    assert!(yaml.contains("provider: \"together\"") && !yaml.contains("provider: \"openai\""));

    let split = dir.0.join("split");
    let run = switchyard(&[
        "catalog",
        "import",
        "--from",
        "litellm",
        LITELLM,
        "--providers-from",
        &format!("{MANIFEST}/conf/switchyard.yaml"),
        "--split-dir",
        split.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(split.join("groq.yaml").is_file() && split.join("bedrock.yaml").is_file());

    let config = dir.write(
        "main.yaml",
        "include: [catalog.yaml]\nproviders:\n  groq: { preset: groq }\n  together: { preset: together }\n",
    );
    let check = switchyard(&["check", "-c", config.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(stdout.contains("OK (2 providers,"), "{stdout}");

    let missing = switchyard(&[
        "catalog",
        "import",
        "--from",
        "openrouter",
        "/no/such/file.json",
    ]);
    assert!(!missing.status.success());
}

#[test]
fn check_names_the_included_file_line_and_column_of_an_error() {
    let dir = Scratch::new("check");
    dir.write(
        "catalog/bad.yaml",
        "models:\n  a/b:\n    endpoints:\n      - { provider: groq, model: x, price: { prompt: -2 } }\n",
    );
    let config = dir.write(
        "main.yaml",
        "include: [\"catalog/*.yaml\"]\nproviders:\n  groq: { preset: groq }\n",
    );
    let check = switchyard(&["check", "-c", config.to_str().unwrap()]);
    assert!(!check.status.success());
    let stderr = String::from_utf8_lossy(&check.stderr);
    let bad = dir.0.join("catalog/bad.yaml");
    assert!(
        stderr.contains(&format!("{}:4:", bad.display())),
        "{stderr}"
    );
}

#[tokio::test]
async fn sighup_reloads_a_changed_included_file() {
    let mock = MockServer::start("127.0.0.1:0").unwrap();
    let dir = Scratch::new("reload");
    let model = |id: &str| {
        format!("  {id}:\n    endpoints:\n      - {{ provider: groq, model: up, price: {{ prompt: 1, completion: 1 }} }}\n")
    };
    dir.write(
        "catalog/extra.yaml",
        &format!("models:\n{}", model("test/first")),
    );
    let config = format!(
        "{}include: [\"{}/catalog/*.yaml\"]\nproviders:\n{}",
        config_head(),
        dir.0.display(),
        mocked("groq", &mock)
    );
    let gw = Gateway::start(&config);
    assert_eq!(ids(&get_json(&gw, "/v1/models").await.1), ["test/first"]);
    dir.write(
        "catalog/extra.yaml",
        &format!("models:\n{}{}", model("test/first"), model("test/second")),
    );
    gw.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed = ids(&get_json(&gw, "/v1/models").await.1);
        if listed == ["test/first", "test/second"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reload: {listed:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
