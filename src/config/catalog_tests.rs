//! Presets, `include:` and the catalog merge.

use super::*;
use crate::catalog::{DataCollection, Dialect};
use std::path::PathBuf;

fn env(var: &str) -> Option<String> {
    (var.ends_with("_KEY") || var.starts_with("AWS_") || var == "CUSTOM_VAR")
        .then(|| format!("secret-{var}"))
}

/// A scratch directory with the given files; removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str, files: &[(&str, &str)]) -> Dir {
        let dir =
            std::env::temp_dir().join(format!("switchyard-config-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        Dir(dir)
    }

    fn load(&self) -> Result<Loaded, LoadError> {
        load_file_with_env(&self.0.join("main.yaml"), &env)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A Bedrock provider's requests are signed for its region: given, read from its regional
/// host, or an error (a default region would sign every request for the wrong one: 403).
#[test]
fn a_bedrock_provider_has_a_region() {
    let provider = |entry: &str| {
        format!("providers:\n  br: {{ dialect: bedrock, {entry}, aws_access_key_id_env: AWS_AK, aws_secret_access_key_env: AWS_SK }}\n")
    };
    let region = |entry: &str| {
        load_str(&provider(entry), "t.yaml", &env)
            .map(|l| l.snapshot.catalog.providers["br"].region.clone())
            .map_err(|e| e.to_string())
    };
    assert_eq!(
        region("base_url: \"https://bedrock-runtime.eu-west-1.amazonaws.com\"").unwrap(),
        Some("eu-west-1".into())
    );
    assert_eq!(
        region("base_url: \"https://bedrock-runtime-fips.us-gov-west-1.amazonaws.com\", region: us-gov-west-1").unwrap(),
        Some("us-gov-west-1".into())
    );
    assert_eq!(
        region("base_url: \"http://127.0.0.1:9\", region: ap-south-1").unwrap(),
        Some("ap-south-1".into())
    );
    let err = region("base_url: \"http://127.0.0.1:9\"").unwrap_err();
    assert!(err.contains("need `region`"), "{err}");
}

#[test]
fn presets_fill_every_field_the_entry_leaves_out() {
    let text = "providers:\n  openai: { preset: openai }\n  claude: { preset: anthropic }\n  local: { preset: ollama }\n  aws: { preset: bedrock, region: eu-west-1 }\n";
    let loaded = load_str(text, "t.yaml", &env).unwrap();
    let p = &loaded.snapshot.catalog.providers;
    let openai = &p["openai"];
    assert_eq!(openai.dialect, Dialect::OpenAi);
    assert_eq!(openai.backends[0].url.host, "api.openai.com");
    assert_eq!(openai.backends[0].url.path_prefix, "/v1");
    assert_eq!(
        openai.backends[0].api_key.as_ref().unwrap().expose(),
        "secret-OPENAI_API_KEY"
    );
    assert_eq!(openai.data_collection, DataCollection::Deny);
    assert_eq!(p["claude"].dialect, Dialect::Anthropic);
    let local = &p["local"];
    assert_eq!((local.backends[0].url.port, local.zdr), (11434, true));
    assert!(local.backends[0].api_key.is_none() && local.unavailable.is_none());
    let aws = &p["aws"];
    assert_eq!(aws.dialect, Dialect::Bedrock);
    assert_eq!(
        aws.backends[0].url.host,
        "bedrock-runtime.eu-west-1.amazonaws.com"
    );
    assert!(aws.aws_credentials.is_some());
}

#[test]
fn explicit_fields_override_the_preset() {
    let text = "providers:\n  groq:\n    preset: groq\n    base_url: \"http://127.0.0.1:9/v1\"\n    api_key_env: CUSTOM_VAR\n    data_collection: allow\n    zdr: true\n    health_check: { interval: 30s }\n  vllm:\n    preset: vllm\n    base_url: \"http://10.0.0.2:8000/v1\"\n    health_check: { path: /health }\n";
    let loaded = load_str(text, "t.yaml", &env).unwrap();
    let groq = &loaded.snapshot.catalog.providers["groq"];
    assert_eq!(groq.backends[0].url.host, "127.0.0.1");
    assert_eq!(
        groq.backends[0].api_key.as_ref().unwrap().expose(),
        "secret-CUSTOM_VAR"
    );
    assert_eq!(
        (groq.data_collection, groq.zdr),
        (DataCollection::Allow, true)
    );
    // The preset's probe path fills a health check that names none.
    assert_eq!(groq.health_check.as_ref().unwrap().path, "/models");
    assert_eq!(
        loaded.snapshot.catalog.providers["vllm"]
            .health_check
            .as_ref()
            .unwrap()
            .path,
        "/health"
    );
}

#[test]
fn presets_without_a_default_url_say_what_they_need() {
    let text = "providers:\n  a: { preset: azure, api_version: \"2024-10-21\" }\n  b: { preset: bedrock }\n  c: { preset: klingon }\n  d: { api_key_env: X }\n";
    let err = load_str(text, "t.yaml", &env).unwrap_err();
    let find = |needle: &str| {
        err.errors
            .iter()
            .find(|e| e.message.contains(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in {err}"))
    };
    assert!(find("`azure` preset needs base_url")
        .message
        .contains("openai.azure.com"));
    assert!(find("`bedrock` preset needs base_url")
        .message
        .contains("region"));
    let unknown = find("unknown preset `klingon`");
    assert_eq!((unknown.line, unknown.column), (Some(4), Some(8)));
    assert!(unknown.message.contains("openai, anthropic"));
    assert!(find("needs `dialect`").line == Some(5));
}

const MAIN: &str = "include: [\"catalog/*.yaml\"]\nproviders:\n  groq: { preset: groq }\n  together: { preset: together }\nmodels:\n  meta-llama/llama-3.3-70b-instruct:\n    name: Llama (operator's name)\n    endpoints:\n      - { provider: groq, model: llama-3.3-70b-versatile, price: { prompt: 0.5, completion: 0.7 } }\n";

const GROQ: &str = "models:\n  meta-llama/llama-3.3-70b-instruct:\n    name: Llama (catalog name)\n    endpoints:\n      - { provider: groq, model: llama-3.3-70b-versatile, price: { prompt: 0.59, completion: 0.79 }, context_length: 131072 }\n  meta-llama/llama-3.1-8b-instruct:\n    endpoints:\n      - { provider: groq, model: llama-3.1-8b-instant, price: { prompt: 0.05, completion: 0.08 } }\n";

const TOGETHER: &str = "models:\n  meta-llama/llama-3.3-70b-instruct:\n    input_modalities: [text]\n    endpoints:\n      - { provider: together, model: meta-llama/Llama-3.3-70B-Instruct-Turbo, price: { prompt: 0.88, completion: 0.88 }, context_length: 131072, quantization: fp8 }\n  mistralai/mistral-small:\n    endpoints:\n      - { provider: mistral, model: mistral-small-latest, price: { prompt: 0.1, completion: 0.3 } }\n";

#[test]
fn included_catalogs_merge_endpoints_into_one_model() {
    let dir = Dir::new(
        "merge",
        &[
            ("main.yaml", MAIN),
            ("catalog/groq.yaml", GROQ),
            ("catalog/together.yaml", TOGETHER),
            ("catalog/notes.txt", "not yaml: ["),
        ],
    );
    let loaded = dir.load().unwrap();
    let catalog = &loaded.snapshot.catalog;
    let llama = catalog.model("meta-llama/llama-3.3-70b-instruct").unwrap();
    let endpoints: Vec<(&str, &str)> = llama
        .endpoints
        .iter()
        .map(|e| (e.provider.id.as_str(), e.upstream_model.as_str()))
        .collect();
    assert_eq!(
        endpoints,
        [
            ("groq", "llama-3.3-70b-versatile"),
            ("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo")
        ]
    );
    // The operator's file comes first: its name and its price for groq win.
    assert_eq!(llama.name, "Llama (operator's name)");
    assert_eq!(llama.endpoints[0].price.prompt, 500_000);
    assert_eq!(llama.context_length, Some(131_072));
    assert_eq!(llama.endpoints[1].quantization.as_deref(), Some("fp8"));
    assert!(catalog.model("meta-llama/llama-3.1-8b-instruct").is_some());
    // No `mistral` provider here: its endpoint is skipped, the model dropped, once said.
    assert!(catalog.model("mistralai/mistral-small").is_none());
    let skipped: Vec<_> = loaded
        .warnings
        .iter()
        .filter(|w| w.message.contains("not configured"))
        .collect();
    assert_eq!(skipped.len(), 1, "{:?}", loaded.warnings);
    assert!(skipped[0].message.contains("mistral (1)"));
    assert_eq!(loaded.snapshot.included_files.len(), 2);
}

#[test]
fn errors_in_an_included_file_name_that_file_line_and_column() {
    let bad = "models:\n  a/b:\n    endpoints:\n      - { provider: groq, model: x, price: { prompt: -1 } }\n  c/d:\n    endpoints:\n      - provider: groq\n        model: y\n        bogus: 1\n";
    let dir = Dir::new("errors", &[("main.yaml", MAIN), ("catalog/bad.yaml", bad)]);
    let err = dir.load().unwrap_err();
    let bad_file = dir.0.join("catalog/bad.yaml").display().to_string();
    let price = err
        .errors
        .iter()
        .find(|e| e.message.contains("non-negative"))
        .unwrap();
    assert_eq!(price.file.as_deref(), Some(bad_file.as_str()));
    assert_eq!(price.line, Some(4));
    let bogus = err
        .errors
        .iter()
        .find(|e| e.message.contains("bogus"))
        .unwrap();
    assert_eq!((bogus.line, bogus.column), (Some(9), Some(9)));
    let rendered = err.to_string();
    assert!(rendered.contains(&format!("{bad_file}:9:9:")), "{rendered}");
    // On its own (as a reload logs it), an included file's problem names its file too.
    assert!(bogus.to_string().starts_with(&format!("{bad_file}:9:9:")));
    assert!(!rendered.contains("main.yaml:"), "{rendered}");
    // Syntax errors too.
    let dir = Dir::new(
        "syntax",
        &[
            ("main.yaml", MAIN),
            ("catalog/broken.yaml", "models:\n  a/b: [\n"),
        ],
    );
    let err = dir.load().unwrap_err();
    assert!(err.errors[0]
        .file
        .as_deref()
        .unwrap()
        .ends_with("broken.yaml"));
    assert!(err.errors[0].line.is_some());
}

#[test]
fn include_problems_point_at_the_include_entry() {
    let text = "include:\n  - missing.yaml\n  - \"*/x.yaml\"\n  - \"empty/*.yaml\"\n";
    let dir = Dir::new("missing", &[("main.yaml", text), ("empty/readme.txt", "")]);
    let err = dir.load().unwrap_err();
    assert_eq!(err.errors.len(), 2, "{err}");
    assert_eq!(err.errors[0].line, Some(2));
    assert!(err.errors[1].message.contains("file name only"));
    let dir = Dir::new(
        "nomatch",
        &[
            ("main.yaml", "include: [\"none/*.yaml\"]\n"),
            ("none/a.txt", ""),
        ],
    );
    let loaded = dir.load().unwrap();
    assert!(loaded.warnings[0].message.contains("matches no file"));
}

#[test]
fn a_provider_defined_twice_is_an_error_at_the_second() {
    let dup = "providers:\n  groq: { preset: groq }\nmodels: {}\n";
    let dir = Dir::new("dup", &[("main.yaml", MAIN), ("catalog/dup.yaml", dup)]);
    let err = dir.load().unwrap_err();
    let e = &err.errors[0];
    assert!(
        e.message.contains("already defined in the main file"),
        "{e}"
    );
    assert_eq!((e.file.is_some(), e.line), (true, Some(2)));
}

#[test]
fn modalities_and_unknown_providers_in_the_main_file_are_checked() {
    let text = "providers:\n  p: { preset: openai }\nmodels:\n  a/b:\n    input_modalities: [text, smell]\n    endpoints:\n      - { provider: nobody, model: x }\n    output_modalities: []\n";
    let err = load_str(text, "t.yaml", &env).unwrap_err();
    assert!(err
        .errors
        .iter()
        .any(|e| e.message.contains("at least one") && e.line == Some(8)));
    assert!(err
        .errors
        .iter()
        .any(|e| e.message.contains("`smell`") && e.line == Some(5)));
    assert!(err
        .errors
        .iter()
        .any(|e| e.message.contains("unknown provider") && e.line == Some(7)));
    // One error per cause: no extra "needs at least one endpoint".
    assert_eq!(err.errors.len(), 3, "{err}");
}

#[test]
fn supports_flags_imply_their_parameters() {
    let text = "providers:\n  p: { preset: openai }\nmodels:\n  a/b:\n    endpoints:\n      - { provider: p, model: x, supports: [tools, response_format] }\n";
    let loaded = load_str(text, "t.yaml", &env).unwrap();
    let ep = &loaded.snapshot.catalog.model("a/b").unwrap().endpoints[0];
    assert!(ep.supports("tool_choice") && ep.supports("structured_outputs"));
}

/// Credentials from files (`api_key_file`, `aws_*_file`): resolved against the config's
/// folder, trimmed, per backend too, and listed for the reload watch.
#[test]
fn credentials_come_from_files_next_to_the_config() {
    let main = "providers:\n  vertex:\n    preset: vertex\n    base_url: \"https://us-central1-aiplatform.googleapis.com/v1beta1/projects/p/locations/us-central1/endpoints/openapi\"\n    api_key_file: secrets/vertex-token\n  aws:\n    preset: bedrock\n    region: eu-west-1\n    aws_access_key_id_file: secrets/aws-id\n    aws_secret_access_key_file: secrets/aws-secret\n    aws_session_token_file: secrets/aws-token\n  pool:\n    dialect: openai\n    api_key_env: POOL_KEY\n    backends:\n      - { base_url: \"http://127.0.0.1:9/v1\", api_key_file: secrets/pool-b }\n      - { base_url: \"http://127.0.0.1:8/v1\" }\n";
    let dir = Dir::new(
        "credfiles",
        &[
            ("main.yaml", main),
            ("secrets/vertex-token", "ya29.a0token\n"),
            ("secrets/aws-id", "ASIAEXAMPLE\n"),
            ("secrets/aws-secret", "  s3cret \n"),
            ("secrets/aws-token", "FwoGZXIvYXdzEJr"),
            ("secrets/pool-b", "sk-from-file"),
        ],
    );
    let loaded = dir.load().unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let p = &loaded.snapshot.catalog.providers;
    let key_of = |id: &str, i: usize| p[id].backends[i].api_key.as_ref().unwrap().expose();
    assert_eq!(key_of("vertex", 0), "ya29.a0token");
    assert_eq!(key_of("pool", 0), "sk-from-file");
    assert_eq!(key_of("pool", 1), "secret-POOL_KEY");
    let aws = p["aws"].aws_credentials.as_ref().unwrap();
    assert_eq!(aws.access_key_id.expose(), "ASIAEXAMPLE");
    assert_eq!(aws.secret_access_key.expose(), "s3cret");
    assert_eq!(
        aws.session_token.as_ref().unwrap().expose(),
        "FwoGZXIvYXdzEJr"
    );
    assert!(p.values().all(|p| p.unavailable.is_none()));
    let mut watched = loaded.snapshot.secret_files.clone();
    watched.sort();
    let want: Vec<PathBuf> = [
        "aws-id",
        "aws-secret",
        "aws-token",
        "pool-b",
        "vertex-token",
    ]
    .iter()
    .map(|f| dir.0.join("secrets").join(f))
    .collect();
    assert_eq!(watched, want);
}

/// A missing or empty credential file is a warning that names it, and its provider is
/// unavailable (skipped by routing, shown unhealthy) until a reload reads it.
#[test]
fn an_unreadable_credential_file_leaves_its_provider_unavailable() {
    let main = "providers:\n  a: { preset: openai, api_key_file: nowhere/token }\n  b: { preset: openai, api_key_file: empty-token }\n  d: { preset: openai, api_key_file: /dev/null }\n  c:\n    preset: bedrock\n    region: us-east-1\n    aws_access_key_id_env: AWS_ACCESS_KEY_ID\n    aws_secret_access_key_env: AWS_SECRET_ACCESS_KEY\n    aws_session_token_file: gone\n";
    let dir = Dir::new("credmissing", &[("main.yaml", main), ("empty-token", "\n")]);
    let loaded = dir.load().unwrap();
    let warned = |what: &str| loaded.warnings.iter().any(|w| w.message.contains(what));
    assert!(warned("nowhere/token") && warned("empty-token") && warned("gone"));
    let p = &loaded.snapshot.catalog.providers;
    assert!(p["a"].unavailable.as_ref().unwrap().contains("cannot read"));
    assert!(p["b"].unavailable.as_ref().unwrap().contains("is empty"));
    assert!(p["d"]
        .unavailable
        .as_ref()
        .unwrap()
        .contains("not a regular file"));
    assert!(p["c"]
        .unavailable
        .as_ref()
        .unwrap()
        .contains("AWS credentials"));
    assert!(p["c"].aws_credentials.is_none());
    assert_eq!(loaded.snapshot.secret_files.len(), 4);
}

#[test]
fn a_credential_named_twice_or_by_half_is_an_error() {
    let twice = "providers:\n  a: { preset: openai, api_key_env: A_KEY, api_key_file: token }\n";
    let err = load_str(twice, "t.yaml", &env).unwrap_err();
    assert!(err.errors[0]
        .message
        .contains("api_key_env or api_key_file, not both"));
    let half = "providers:\n  c:\n    dialect: bedrock\n    base_url: \"https://bedrock-runtime.us-east-1.amazonaws.com\"\n    aws_access_key_id_file: id\n";
    let err = load_str(half, "t.yaml", &env).unwrap_err();
    assert!(err.errors[0].message.contains("set both"), "{err}");
    let token_alone = "providers:\n  c:\n    dialect: bedrock\n    base_url: \"https://bedrock-runtime.us-east-1.amazonaws.com\"\n    aws_session_token_env: AWS_SESSION_TOKEN\n";
    let err = load_str(token_alone, "t.yaml", &env).unwrap_err();
    assert!(
        err.errors[0].message.contains("session token needs"),
        "{err}"
    );
}

/// Temporary AWS credentials: the standard variables bring `AWS_SESSION_TOKEN` when it is
/// set (as AWS's SDKs do; long-term keys have none); other variables name their own.
#[test]
fn aws_session_tokens_come_with_the_standard_variables_or_their_own_field() {
    let preset = "providers:\n  c: { preset: bedrock, region: us-east-1 }\n";
    let with_token = |var: &str| {
        (var.starts_with("AWS_") || var.starts_with("TEAM_")).then(|| format!("v-{var}"))
    };
    let loaded = load_str(preset, "t.yaml", &with_token).unwrap();
    let aws = loaded.snapshot.catalog.providers["c"]
        .aws_credentials
        .as_ref();
    let token = aws.unwrap().session_token.as_ref().unwrap();
    assert_eq!(token.expose(), "v-AWS_SESSION_TOKEN");
    let long_term = |var: &str| (var != "AWS_SESSION_TOKEN").then(|| format!("v-{var}"));
    let loaded = load_str(preset, "t.yaml", &long_term).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let aws = loaded.snapshot.catalog.providers["c"]
        .aws_credentials
        .as_ref();
    assert!(aws.unwrap().session_token.is_none());
    let team = "providers:\n  c:\n    preset: bedrock\n    region: us-east-1\n    aws_access_key_id_env: TEAM_ID\n    aws_secret_access_key_env: TEAM_SECRET\n";
    let loaded = load_str(team, "t.yaml", &with_token).unwrap();
    let aws = loaded.snapshot.catalog.providers["c"]
        .aws_credentials
        .as_ref();
    assert!(aws.unwrap().session_token.is_none());
    let named = format!("{team}    aws_session_token_env: TEAM_TOKEN\n");
    let loaded = load_str(&named, "t.yaml", &with_token).unwrap();
    let aws = loaded.snapshot.catalog.providers["c"]
        .aws_credentials
        .as_ref();
    assert_eq!(
        aws.unwrap().session_token.as_ref().unwrap().expose(),
        "v-TEAM_TOKEN"
    );
    let unset = format!("{team}    aws_session_token_env: UNSET_TOKEN\n");
    let loaded = load_str(&unset, "t.yaml", &with_token).unwrap();
    assert!(loaded.snapshot.catalog.providers["c"].unavailable.is_some());
}

/// DESIGN §2's `backends` example: the provider's own URL and key are a backend too, of
/// weight one, beside the listed ones; a preset's URL is not. A backend whose key is unset
/// sits out while another can serve.
#[test]
fn a_providers_own_url_and_key_are_its_first_backend() {
    let text = "providers:\n  openai:\n    dialect: openai\n    base_url: \"https://api.openai.com/v1\"\n    api_key_env: OPENAI_API_KEY\n    backends:\n      - { base_url: \"https://api.openai.com/v1\", api_key_env: SECOND_KEY, weight: 2 }\n  preset:\n    preset: openai\n    backends:\n      - { base_url: \"https://eu.example/v1\" }\n  half:\n    dialect: openai\n    base_url: \"https://a.example/v1\"\n    api_key_env: UNSET_VAR\n    backends:\n      - { base_url: \"https://b.example/v1\", api_key_env: B_KEY }\n  none:\n    dialect: openai\n    api_key_env: UNSET_VAR\n    backends:\n      - { base_url: \"https://c.example/v1\" }\n";
    let loaded = load_str(text, "t.yaml", &env).unwrap();
    let p = &loaded.snapshot.catalog.providers;
    let pool = |id: &str| -> Vec<(String, String, u32)> {
        p[id]
            .backends
            .iter()
            .map(|b| {
                let key = b.api_key.as_ref().map_or("", |k| k.expose()).to_string();
                (b.url.host.clone(), key, b.weight)
            })
            .collect()
    };
    let openai = "api.openai.com".to_string();
    assert_eq!(
        pool("openai"),
        [
            (openai.clone(), "secret-OPENAI_API_KEY".into(), 1),
            (openai, "secret-SECOND_KEY".into(), 2)
        ]
    );
    let preset = pool("preset");
    assert_eq!(preset.len(), 1);
    assert_eq!(
        (preset[0].0.as_str(), preset[0].1.as_str()),
        ("eu.example", "secret-OPENAI_API_KEY")
    );
    assert_eq!(
        pool("half"),
        [("b.example".into(), "secret-B_KEY".into(), 1)]
    );
    assert!(p["half"].unavailable.is_none());
    assert!(loaded
        .warnings
        .iter()
        .any(|w| w.message.contains("UNSET_VAR")));
    assert!(p["none"].unavailable.is_some());
}
