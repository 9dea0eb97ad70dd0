use super::*;

fn env(var: &str) -> Option<String> {
    match var {
        "OPENAI_API_KEY" => Some("sk-upstream".into()),
        "ALICE_KEY" => Some("sk-alice".into()),
        _ => None,
    }
}

fn load(text: &str) -> Result<Loaded, LoadError> {
    load_str(text, "test.yaml", &env)
}

const VALID: &str = r#"
server:
  listen: ["127.0.0.1:8080"]
  grace_period: 5s
providers:
  openai:
    dialect: openai
    base_url: "https://api.openai.com/v1"
    api_key_env: OPENAI_API_KEY
    data_collection: deny
    zdr: true
    timeouts: { connect: 2s, first_byte: 30s }
models:
  openai/gpt-4o-mini:
    context_length: 128000
    endpoints:
      - provider: openai
        model: gpt-4o-mini
        price: { prompt: 0.15, completion: 0.60, cached_prompt: 0.075 }
        supports: [tools, stream]
keys:
  - name: alice
    key_env: ALICE_KEY
    limit_usd: 50
    limit_reset: monthly
    allowed_models: ["openai/*"]
    provider: { data_collection: deny }
"#;

#[test]
fn lowers_a_valid_file() {
    let loaded = load(VALID).unwrap();
    let s = &loaded.snapshot;
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let provider = &s.catalog.providers["openai"];
    assert_eq!(
        provider.backends[0].api_key.as_ref().unwrap().expose(),
        "sk-upstream"
    );
    assert_eq!(provider.timeouts.connect, std::time::Duration::from_secs(2));
    assert_eq!(
        provider.data_collection,
        crate::catalog::DataCollection::Deny
    );
    let model = s.catalog.model("openai/gpt-4o-mini").unwrap();
    assert_eq!(model.endpoints[0].price.prompt, 150_000);
    assert_eq!(model.endpoints[0].price.cached_prompt, Some(75_000));
    let alice = s.keys.find("sk-alice").unwrap();
    assert_eq!(alice.name, "alice");
    assert!(alice.may_use_model("openai/gpt-4o-mini"));
    assert!(!alice.may_use_model("anthropic/claude"));
    assert_eq!(s.server.grace_period, std::time::Duration::from_secs(5));
}

#[test]
fn reports_every_error_with_line_and_column() {
    let text = r#"
server:
  listen: ["nonsense"]
providers:
  p1:
    dialect: klingon
    base_url: "https://x"
  p2:
    dialect: openai
    base_url: "https://x"
    api_kee_env: TYPO
models:
  a/b:
    endpoints:
      - provider: nobody
        model: x
"#;
    let err = load(text).unwrap_err();
    let rendered = err.to_string();
    let find = |needle: &str| {
        err.errors
            .iter()
            .find(|e| e.message.contains(needle))
            .unwrap_or_else(|| panic!("no error mentioning {needle}: {rendered}"))
    };
    assert_eq!(find("not an ip:port").line, Some(3));
    let dialect = find("klingon");
    assert_eq!((dialect.line, dialect.column), (Some(6), Some(5)));
    let typo = find("api_kee_env");
    assert_eq!((typo.line, typo.column), (Some(11), Some(5)));
    assert_eq!(find("unknown provider").line, Some(15));
    assert!(rendered.contains("test.yaml:3:"), "{rendered}");
}

#[test]
fn unknown_fields_deep_in_an_entry_point_at_the_field() {
    let text = "models:\n  a/b:\n    endpoints:\n      - provider: p\n        model: m\n        bogus: 1\n";
    let err = load(text).unwrap_err();
    let e = &err.errors[0];
    assert_eq!(e.path, "models.a/b.endpoints[0].bogus");
    assert_eq!((e.line, e.column), (Some(6), Some(9)));
}

/// A key's routing preferences come from the operator: a misspelt field is an error at the
/// field (a client's body may carry fields we do not know; the config may not), and so is a
/// rate limit of 0, which meant "refuse all" in-process and "no limit" with Redis.
#[test]
fn a_keys_misspelt_preference_and_zero_rate_limits_are_errors() {
    let text = VALID.replace(
        "provider: { data_collection: deny }",
        "provider: { data_colection: deny }\n    rpm: 0\n    tpm: 0",
    );
    let err = load(&text).unwrap_err();
    let find = |path: &str| {
        err.errors
            .iter()
            .find(|e| e.path == path)
            .unwrap_or_else(|| panic!("no error at {path}: {:?}", err.errors))
    };
    let typo = find("keys[0].provider.data_colection");
    assert!(
        typo.message.contains("unknown field `data_colection`"),
        "{}",
        typo.message
    );
    assert_eq!(typo.line, Some(27));
    assert!(find("keys[0].rpm").message.contains("positive"));
    assert!(find("keys[0].tpm").message.contains("positive"));
    // Spelt right, as in VALID, it loads and applies.
    let loaded = load(VALID).unwrap();
    let alice = loaded.snapshot.keys.find("sk-alice").unwrap();
    assert_eq!(
        alice.provider_prefs.data_collection,
        Some(crate::routing::DataCollectionPref::Deny)
    );
}

#[test]
fn syntax_errors_have_positions() {
    let err = load("server:\n  listen: [\"a\"\n").unwrap_err();
    assert_eq!(err.errors.len(), 1);
    assert!(err.errors[0].line.is_some());
    let err = load("bogus_section: 1\n").unwrap_err();
    assert!(err.errors[0].message.contains("bogus_section"));
}

#[test]
fn missing_secrets_warn_and_make_the_provider_unavailable() {
    let text = VALID.replace("OPENAI_API_KEY", "UNSET_VAR");
    let loaded = load(&text).unwrap();
    assert!(loaded
        .warnings
        .iter()
        .any(|w| w.message.contains("UNSET_VAR")));
    assert!(loaded.snapshot.catalog.providers["openai"]
        .unavailable
        .is_some());
}

#[test]
fn refuses_bad_keys() {
    let text = "keys:\n  - name: a\n    key_sha256: nothex\n  - name: b\n";
    let err = load(text).unwrap_err();
    assert!(err.errors.iter().any(|e| e.message.contains("64 hex")));
    assert!(err.errors.iter().any(|e| e.message.contains("exactly one")));
}

#[test]
fn work_stealing_is_off_unless_asked_for() {
    assert!(!load(VALID).unwrap().snapshot.server.work_stealing);
    let on = VALID.replace(
        "  grace_period: 5s\n",
        "  grace_period: 5s\n  work_stealing: true\n",
    );
    assert!(load(&on).unwrap().snapshot.server.work_stealing);
    let bad = VALID.replace(
        "  grace_period: 5s\n",
        "  grace_period: 5s\n  work_stealing: often\n",
    );
    let err = load(&bad).unwrap_err();
    let e = &err.errors[0];
    assert!(e.message.contains("server.work_stealing"), "{e:?}");
    assert_eq!(e.line, Some(5), "{e:?}");
}

#[test]
fn two_listeners_on_one_address_are_an_error() {
    let errors = |server: &str| match load(&format!("server:\n{server}")) {
        Ok(_) => Vec::new(),
        Err(e) => e.errors.iter().map(ToString::to_string).collect(),
    };
    let shared = errors(
        "  listen: [\"127.0.0.1:8080\"]\n  admin_listen: \"127.0.0.1:8081\"\n  metrics_listen: \"127.0.0.1:8081\"\n",
    );
    assert_eq!(
        shared,
        ["4:3: server.metrics_listen: `127.0.0.1:8081` is taken by server.admin_listen already: each listener needs an address of its own"]
    );
    let twice = errors("  listen: [\"127.0.0.1:8080\", \"127.0.0.1:8080\"]\n");
    assert_eq!(twice.len(), 1, "{twice:?}");
    assert!(twice[0].contains("server.listen[1]") && twice[0].contains("server.listen[0]"));
    // A wildcard takes the port on every address of its family.
    let wildcard = errors("  listen: [\"0.0.0.0:8080\"]\n  metrics_listen: \"127.0.0.1:8080\"\n");
    assert_eq!(wildcard.len(), 1, "{wildcard:?}");
    // Distinct ports, or the same port on two specific addresses, are fine.
    assert!(errors(
        "  listen: [\"127.0.0.1:8080\", \"127.0.0.2:8080\"]\n  admin_listen: \"127.0.0.1:8081\"\n  metrics_listen: \"127.0.0.1:9090\"\n"
    )
    .is_empty());
}
