//! Secrets and isolation: provider keys and client keys never show anywhere a client or an
//! operator's log reader could see them; nothing of the client's credentials or connection
//! headers reaches a provider; keys are kept as SHA-256 only; the admin API is off unless
//! configured and needs its token; keys cannot read each other's generations; and no request
//! can make the gateway connect anywhere but a configured provider.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ADMIN_TOKEN: &str = "adm-token-for-secrets-test";
const OTHER_KEY: &str = "sk-other-client-key";

/// OpenAI, Anthropic and Gemini providers on one keyed mock, a failing provider in front of
/// a good one, a provider whose key the mock refuses, and one nobody listens on.
fn config(
    mock: &MockServer,
    wrong_key_mock: &MockServer,
    admin: Option<u16>,
    metrics: u16,
) -> String {
    let base = mock.base_url();
    let admin = admin.map_or(String::new(), |port| {
        format!("  admin_listen: \"127.0.0.1:{port}\"\n  admin_token_env: ADMIN_TOKEN\n")
    });
    format!(
        "server:\n  listen: [\"{{listen}}\"]\n  metrics_listen: \"127.0.0.1:{metrics}\"\n{admin}  threads: 2\n  grace_period: 1s\nkeys:\n  - name: tester\n    key_sha256: \"{{key_sha256}}\"\n  - name: other\n    key_sha256: \"{}\"\nproviders:\n{}{}  claude:\n    dialect: anthropic\n    base_url: \"{base}\"\n    api_key_env: UPSTREAM_KEY\n  gem:\n    dialect: gemini\n    base_url: \"{base}\"\n    api_key_env: UPSTREAM_KEY\n  refused:\n    dialect: openai\n    base_url: \"http://127.0.0.1:{}/v1\"\n    api_key_env: UPSTREAM_KEY\n    timeouts: {{ connect: 1s }}\nmodels:\n  test/model:\n    endpoints:\n      - {{ provider: p1, model: up-model, price: {{ prompt: 1, completion: 1 }} }}\n  test/failover:\n    endpoints:\n      - {{ provider: p1, model: \"up+status=500\" }}\n      - {{ provider: refused, model: up }}\n      - {{ provider: claude, model: claude-test }}\n  test/broken:\n    endpoints:\n      - {{ provider: p1, model: \"up+status=503\" }}\n  test/refused:\n    endpoints:\n      - {{ provider: refused, model: up }}\n  test/badkey:\n    endpoints:\n      - {{ provider: wrongkey, model: up }}\n  anthropic/claude:\n    endpoints:\n      - {{ provider: claude, model: claude-test }}\n  google/gemini:\n    endpoints:\n      - {{ provider: gem, model: gemini-test }}\n  google/limited:\n    endpoints:\n      - {{ provider: gem, model: \"gemini-test+status=429\" }}\n",
        sha256_hex(OTHER_KEY),
        provider("p1", mock),
        provider("wrongkey", wrong_key_mock),
        free_port(),
    )
}

struct Env {
    mock: MockServer,
    _wrong: MockServer,
    gw: Gateway,
    admin_port: u16,
    metrics_port: u16,
}

fn start(with_admin: bool) -> Env {
    let mock = MockServer::start_with_key("127.0.0.1:0", UPSTREAM_KEY).unwrap();
    // This provider expects another key: the gateway's is refused with a 401.
    let wrong = MockServer::start_with_key("127.0.0.1:0", "sk-the-right-one").unwrap();
    let (admin_port, metrics_port) = (free_port(), free_port());
    let gw = Gateway::start_with_env(
        &config(
            &mock,
            &wrong,
            with_admin.then_some(admin_port),
            metrics_port,
        ),
        &[("ADMIN_TOKEN", ADMIN_TOKEN)],
    );
    Env {
        mock,
        _wrong: wrong,
        gw,
        admin_port,
        metrics_port,
    }
}

/// Everything a response showed: status line, every header, the body.
async fn transcript(r: reqwest::Response) -> String {
    let mut out = format!("{}\n", r.status());
    for (name, value) in r.headers() {
        out.push_str(&format!(
            "{name}: {}\n",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    out.push_str(
        &r.text()
            .await
            .unwrap_or_else(|e| format!("<body error: {e}>")),
    );
    out
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in [UPSTREAM_KEY, KEY, OTHER_KEY, ADMIN_TOKEN] {
        assert!(
            !text.contains(secret),
            "{what} shows the secret {secret:?}:\n{}",
            excerpt_around(text, secret)
        );
    }
}

fn excerpt_around(text: &str, needle: &str) -> String {
    let at = text.find(needle).unwrap_or(0);
    let start = text.floor_char_boundary(at.saturating_sub(300));
    let end = text.ceil_char_boundary((at + 300).min(text.len()));
    text[start..end].to_string()
}

#[tokio::test]
async fn provider_and_client_keys_never_appear_in_responses_errors_logs_or_metrics() {
    let mut env = start(true);
    let gw = &env.gw;
    let c = client();
    let mut seen = Vec::new();
    let hi = |model: &str, stream: bool| json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]});
    for model in [
        "test/model",
        "test/failover",
        "test/broken",
        "test/refused",
        "test/badkey",
        "anthropic/claude",
        "google/gemini",
        "google/limited",
        "no/such-model",
    ] {
        for stream in [false, true] {
            for key in [KEY, OTHER_KEY, "sk-wrong", UPSTREAM_KEY] {
                let r = c
                    .post(gw.url("/v1/chat/completions"))
                    .bearer_auth(key)
                    .json(&hi(model, stream))
                    .send()
                    .await
                    .unwrap();
                seen.push((format!("{model} stream={stream}"), transcript(r).await));
            }
        }
    }
    // A stream cut mid-way, and bad requests that echo what they got.
    let r = chat(gw, json!({"model": "test/model", "stream": true, "messages": [{"role": "user", "content": "hi"}], "mock": {"reset": "mid", "chunks": 10}})).await;
    seen.push(("mid-stream reset".into(), transcript(r).await));
    for body in [
        format!("{{\"model\": \"{UPSTREAM_KEY}\", \"messages\": []}}"),
        "{\"model\": 5}".to_string(),
        "not json".to_string(),
    ] {
        let r = c
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(KEY)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let text = transcript(r).await;
        // The body itself named the upstream key: the echo is the client's own input.
        if !body.contains(UPSTREAM_KEY) {
            seen.push((body, text));
        }
    }
    for path in [
        "/v1/models",
        "/v1/models/test/model/endpoints",
        "/v1/key",
        "/v1/generation?id=gen-nope",
        "/healthz",
    ] {
        let r = c.get(gw.url(path)).bearer_auth(KEY).send().await.unwrap();
        seen.push((path.to_string(), transcript(r).await));
    }
    // The admin API lists keys (by hash) and reloads.
    let admin = format!("http://127.0.0.1:{}", env.admin_port);
    for path in ["/v1/keys", "/admin/reload"] {
        let r = c
            .get(format!("{admin}{path}"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        seen.push((format!("admin {path}"), transcript(r).await));
    }
    for (what, text) in &seen {
        assert_no_secret(what, text);
    }
    let metrics = c
        .get(format!("http://127.0.0.1:{}/metrics", env.metrics_port))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("switchyard_"), "{metrics}");
    assert_no_secret("/metrics", &metrics);
    // `switchyard check` prints the config's summary without its secrets.
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["check", "-c"])
        .arg(gw.config_path())
        .env("UPSTREAM_KEY", UPSTREAM_KEY)
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .unwrap();
    assert_no_secret("switchyard check", &String::from_utf8_lossy(&check.stdout));
    assert_no_secret("switchyard check", &String::from_utf8_lossy(&check.stderr));
    assert!(env.mock.request_count() > 0);
    // The whole log, debug level included for the gateway's own modules: stopped first, so
    // that every access line of the requests above is written (shutdown writes the batch).
    env.gw.signal("TERM");
    assert!(
        env.gw
            .wait_exit(std::time::Duration::from_secs(15))
            .is_some(),
        "the gateway did not stop"
    );
    let log = env.gw.log_text();
    assert!(
        log.contains("key=tester"),
        "the access log names keys: {log}"
    );
    assert_no_secret("the gateway log", &log);
}

/// Drives traffic through a gateway logging at `rust_log`; the secrets its log shows.
async fn secrets_in_a_log_at(rust_log: &str) -> Vec<String> {
    let mock = MockServer::start_with_key("127.0.0.1:0", UPSTREAM_KEY).unwrap();
    let wrong = MockServer::start_with_key("127.0.0.1:0", "sk-the-right-one").unwrap();
    let gw = Gateway::start_with_env(
        &config(&mock, &wrong, Some(free_port()), free_port()),
        &[("ADMIN_TOKEN", ADMIN_TOKEN), ("RUST_LOG", rust_log)],
    );
    for model in [
        "test/model",
        "test/failover",
        "test/badkey",
        "anthropic/claude",
        "google/gemini",
    ] {
        for stream in [false, true] {
            let r = chat(&gw, json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]})).await;
            r.text().await.unwrap();
        }
    }
    // Ten chat requests: the log is checked once their ten access lines are out.
    let log = gw.log_with_access_lines(10);
    assert!(log.contains("DEBUG"), "debug logging is on");
    [UPSTREAM_KEY, KEY, ADMIN_TOKEN]
        .iter()
        .filter(|s| log.contains(**s))
        .map(|s| format!("{s}: ...{}...", excerpt_around(&log, s)))
        .collect()
}

#[tokio::test]
async fn a_debug_log_shows_no_secret_either() {
    for rust_log in ["debug", "trace"] {
        let leaked = secrets_in_a_log_at(rust_log).await;
        assert!(
            leaked.is_empty(),
            "RUST_LOG={rust_log}: the log shows secrets:\n{}",
            leaked.join("\n\n")
        );
    }
}

/// Directives naming Pingora's modules are the most specific, so env_logger would let them
/// win over any cap in the filter: `src/logging.rs` enforces it after the filter.
#[tokio::test]
async fn no_log_directive_shows_a_secret() {
    let rust_log = "debug,pingora_proxy::proxy_h1=debug,pingora_core::protocols=trace";
    let leaked = secrets_in_a_log_at(rust_log).await;
    assert!(
        leaked.is_empty(),
        "RUST_LOG={rust_log}: the log shows secrets:\n{}",
        leaked.join("\n\n")
    );
}

#[tokio::test]
async fn client_credentials_cookies_and_hop_by_hop_headers_never_reach_a_provider() {
    let env = start(false);
    let hop = [
        ("cookie", "session=client-cookie-value"),
        ("x-api-key", KEY),
        ("x-goog-api-key", KEY),
        ("api-key", KEY),
        ("proxy-authorization", "Basic Y2xpZW50OnNlY3JldA=="),
        ("connection", "keep-alive, x-hop-secret"),
        ("x-hop-secret", "hop-value"),
        ("keep-alive", "timeout=5"),
        ("te", "trailers"),
        ("upgrade", "h2c"),
        ("proxy-connection", "keep-alive"),
        ("forwarded", "for=10.0.0.1;host=evil.example"),
        ("x-forwarded-for", "10.0.0.1"),
        ("x-forwarded-host", "evil.example"),
        ("x-real-ip", "10.0.0.1"),
        ("x-mock-fault", "status=500"),
        ("openai-organization", "org-client"),
        ("anthropic-version", "1999-01-01"),
    ];
    for model in ["test/model", "anthropic/claude", "google/gemini"] {
        for stream in [false, true] {
            env.mock.clear_requests();
            let mut req = client()
                .post(env.gw.url("/v1/chat/completions"))
                .bearer_auth(KEY)
                .json(&json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}));
            for (name, value) in hop {
                req = req.header(name, value);
            }
            let r = req.send().await.unwrap();
            assert_eq!(
                r.status(),
                200,
                "{model}: the client's x-mock-fault must not reach it"
            );
            r.text().await.unwrap();
            let seen = env
                .mock
                .requests()
                .pop()
                .expect("the provider got the request");
            for (name, value) in &seen.headers {
                assert!(
                    !value.contains(KEY)
                        && !value.contains("client-cookie")
                        && !value.contains("hop-value")
                        && !value.contains("evil.example")
                        && !value.contains("10.0.0.1")
                        && !value.contains("org-client")
                        && !value.contains("1999-01-01"),
                    "{model}: the client's {name}: {value} reached the provider"
                );
            }
            for name in [
                "cookie",
                "proxy-authorization",
                "x-hop-secret",
                "keep-alive",
                "te",
                "upgrade",
                "proxy-connection",
                "forwarded",
                "x-forwarded-for",
                "x-forwarded-host",
                "x-real-ip",
                "x-mock-fault",
                "openai-organization",
            ] {
                assert_eq!(
                    seen.header(name),
                    None,
                    "{model}: {name} reached the provider"
                );
            }
            // The provider's own credential, and only that, in its own header.
            let (header, expected) = match model {
                "anthropic/claude" => ("x-api-key", UPSTREAM_KEY.to_string()),
                "google/gemini" => ("x-goog-api-key", UPSTREAM_KEY.to_string()),
                _ => ("authorization", format!("Bearer {UPSTREAM_KEY}")),
            };
            assert_eq!(seen.header(header), Some(expected.as_str()), "{model}");
            let credentials = seen
                .headers
                .iter()
                .filter(|(n, _)| {
                    ["authorization", "x-api-key", "x-goog-api-key", "api-key"]
                        .contains(&n.as_str())
                })
                .count();
            assert_eq!(credentials, 1, "{model}: {:?}", seen.headers);
            assert!(!String::from_utf8_lossy(&seen.body).contains(KEY));
            assert!(
                seen.query
                    .as_deref()
                    .is_none_or(|q| !q.contains(UPSTREAM_KEY)),
                "{model}: the key is in the URL"
            );
        }
    }
}

#[tokio::test]
async fn keys_are_stored_only_as_their_sha256() {
    let mut env = start(true);
    let r = client()
        .post(format!("http://127.0.0.1:{}/v1/keys", env.admin_port))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "stored-key", "limit": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let secret = created["key"].as_str().unwrap().to_string();
    let hash = created["data"]["hash"].as_str().unwrap().to_string();
    assert_eq!(hash, sha256_hex(&secret));
    // Use it, so it is in the generations too.
    let r = client()
        .post(env.gw.url("/v1/chat/completions"))
        .bearer_auth(&secret)
        .json(&json!({"model": "test/model", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap();
    let rows = stop_and_read_ledger(&mut env.gw).await;
    assert!(rows.iter().any(|r| r.key_hash == hash), "{rows:?}");
    // Every byte of every ledger file (database, WAL, shared memory).
    let mut files = 0;
    for entry in std::fs::read_dir(&env.gw.dir).unwrap() {
        let path = entry.unwrap().path();
        if !path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("ledger.db")
        {
            continue;
        }
        files += 1;
        let bytes = std::fs::read(&path).unwrap();
        for secret in [secret.as_str(), KEY, OTHER_KEY] {
            assert!(
                memchr::memmem::find(&bytes, secret.as_bytes()).is_none(),
                "{} holds a key's secret",
                path.display()
            );
        }
    }
    assert!(files >= 1);
    assert!(
        !env.gw.log_text().contains(&secret),
        "the log shows the new secret"
    );
}

/// The TCP ports a process listens on (from /proc: its socket inodes in LISTEN state).
fn listening_ports(pid: u32) -> HashSet<u16> {
    let mut inodes = HashSet::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        if let Ok(target) = std::fs::read_link(entry.path()) {
            let t = target.to_string_lossy().to_string();
            if let Some(inode) = t.strip_prefix("socket:[").and_then(|t| t.strip_suffix(']')) {
                inodes.insert(inode.to_string());
            }
        }
    }
    let mut ports = HashSet::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() > 9 && cols[3] == "0A" && inodes.contains(cols[9]) {
                let port = cols[1].rsplit(':').next().unwrap();
                ports.insert(u16::from_str_radix(port, 16).unwrap());
            }
        }
    }
    ports
}

#[tokio::test]
async fn the_admin_api_is_off_by_default_and_needs_its_token() {
    // Off: the gateway listens on its client port and nothing else (no metrics either).
    let mock = MockServer::start("127.0.0.1:0").unwrap();
    let gw = Gateway::start(&format!(
        "{}providers:\n{}models:\n  test/model:\n    endpoints:\n      - {{ provider: p1, model: m }}\n",
        config_head(),
        provider("p1", &mock)
    ));
    let ports = listening_ports(gw.pid());
    assert_eq!(
        ports,
        HashSet::from([gw.port]),
        "the gateway listens only on its client port"
    );
    // And the admin paths are not on the client port.
    for (method, path) in [
        ("GET", "/v1/keys"),
        ("POST", "/v1/keys"),
        ("POST", "/admin/reload"),
        ("GET", "/api/v1/keys"),
    ] {
        let r = client()
            .request(method.parse().unwrap(), gw.url(path))
            .bearer_auth(KEY)
            .json(&json!({"name": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{method} {path} on the client port");
    }
    drop(gw);

    // On: every path needs the token, in the Authorization header only.
    let env = start(true);
    let admin = |path: &str| format!("http://127.0.0.1:{}{path}", env.admin_port);
    let c = client();
    for (method, path) in [
        ("GET", "/v1/keys"),
        ("POST", "/v1/keys"),
        ("GET", "/v1/keys/00"),
        ("DELETE", "/v1/keys/00"),
        ("POST", "/admin/reload"),
        ("GET", "/nothing"),
    ] {
        let bad_tokens: [Option<String>; 6] = [
            None,
            Some("wrong".into()),
            Some(format!("{ADMIN_TOKEN}x")),
            Some(ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1].into()),
            Some(KEY.into()),
            Some(String::new()),
        ];
        for token in bad_tokens {
            let mut req = c
                .request(
                    method.parse().unwrap(),
                    admin(&format!("{path}?token={ADMIN_TOKEN}")),
                )
                .header("x-admin-token", ADMIN_TOKEN)
                .header("cookie", format!("token={ADMIN_TOKEN}"))
                .json(&json!({"name": "intruder"}));
            if let Some(t) = &token {
                req = req.bearer_auth(t);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 401, "{method} {path} with {token:?}");
            let text = r.text().await.unwrap();
            assert!(!text.contains(ADMIN_TOKEN));
        }
    }
    let r = c
        .get(admin("/v1/keys"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let keys: Value = r.json().await.unwrap();
    assert!(
        keys["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["name"] != "intruder"),
        "no key was created without the token: {keys}"
    );
}

#[tokio::test]
async fn an_admin_listener_without_a_token_refuses_everything() {
    let mock = MockServer::start("127.0.0.1:0").unwrap();
    let admin_port = free_port();
    let gw = Gateway::start(&format!(
        "server:\n  listen: [\"{{listen}}\"]\n  admin_listen: \"127.0.0.1:{admin_port}\"\n  admin_token_env: SWITCHYARD_TEST_UNSET_TOKEN\n  grace_period: 1s\nkeys:\n  - name: tester\n    key_sha256: \"{{key_sha256}}\"\nproviders:\n{}models:\n  test/model:\n    endpoints:\n      - {{ provider: p1, model: m }}\n",
        provider("p1", &mock)
    ));
    for token in ["", "x", "undefined", "null"] {
        let r = client()
            .get(format!("http://127.0.0.1:{admin_port}/v1/keys"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert!(
            r.status() == 401 || r.status() == 403,
            "{token:?}: {}",
            r.status()
        );
    }
    drop(gw);
}

#[tokio::test]
async fn a_key_cannot_read_another_keys_generations() {
    let env = start(false);
    let gw = &env.gw;
    let r = chat(
        gw,
        json!({"model": "test/model", "messages": [{"role": "user", "content": "mine"}]}),
    )
    .await;
    let id = r.headers()["x-generation-id"].to_str().unwrap().to_string();
    r.text().await.unwrap();
    let get = |key: Option<&'static str>, query: String| {
        let mut req = client().get(gw.url(&format!("/v1/generation?{query}")));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        req.send()
    };
    let r = get(Some(KEY), format!("id={id}")).await.unwrap();
    assert_eq!(r.status(), 200);
    let mine: Value = r.json().await.unwrap();
    assert_eq!(mine["data"]["id"], id.as_str());

    // Another key, no key, and tricks: all as unknown as a missing record, after the batch
    // writer has put it in the database too.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let nope = get(Some(OTHER_KEY), "id=gen-does-not-exist".into())
        .await
        .unwrap();
    let nope_status = nope.status();
    let nope_body: Value = nope.json().await.unwrap();
    assert_eq!(nope_status, 404);
    for query in [
        format!("id={id}"),
        format!("id={id}&id={id}"),
        format!("id=gen-x&id={id}"),
        format!("id={id}%00"),
        format!("id={id}' OR '1'='1"),
        "id=' OR '1'='1".to_string(),
        "id=%25".to_string(),
        format!("ID={id}"),
    ] {
        let r = get(Some(OTHER_KEY), query.clone()).await.unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert!(!body.to_string().contains("mine"), "{query}: {body}");
        if query.starts_with("ID=") {
            assert_eq!(status, 400, "{query}: `id` is case-sensitive: {body}");
            continue;
        }
        assert_eq!(status, 404, "{query}: {body}");
        assert_eq!(body["error"]["type"], nope_body["error"]["type"], "{query}");
        let r = get(None, query.clone()).await.unwrap();
        assert_eq!(r.status(), 401, "{query} without a key");
    }
    let r = get(Some(OTHER_KEY), "id=".into()).await.unwrap();
    assert_eq!(r.status(), 400);
}

/// A listener that counts the connections it gets, on a port no provider is configured for.
struct Canary {
    port: u16,
    hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Canary {
    fn start() -> Canary {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s) = (hits.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        h.fetch_add(1, Ordering::SeqCst);
                        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Canary {
            port,
            hits,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[tokio::test]
async fn no_request_can_make_the_gateway_connect_to_an_unconfigured_host() {
    let env = start(true);
    let gw = &env.gw;
    let canary = Canary::start();
    let cp = canary.port;
    let body = |model: &str| {
        json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}).to_string()
    };
    let raw = |target: &str, host: &str, extra: &str, body: &str| {
        format!(
            "POST {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
            body.len()
        )
    };
    let canary_url = format!("http://127.0.0.1:{cp}");
    let mut requests = vec![
        // Absolute-form targets, forward-proxy style.
        raw(&format!("{canary_url}/v1/chat/completions"), &format!("127.0.0.1:{cp}"), "", &body("test/model")),
        raw(&format!("{canary_url}/v1/chat/completions"), "x", "", &body("google/gemini")),
        raw(&format!("http://localhost:{cp}/api/v1/chat/completions"), "x", "", &body("anthropic/claude")),
        // Host and forwarding headers naming the canary.
        raw("/v1/chat/completions", &format!("127.0.0.1:{cp}"), "", &body("test/model")),
        raw("/v1/chat/completions", "x", &format!("X-Forwarded-Host: 127.0.0.1:{cp}\r\nForwarded: host=127.0.0.1:{cp}\r\nX-Original-URL: {canary_url}/\r\nX-Rewrite-URL: {canary_url}/\r\n"), &body("google/gemini")),
        // A tunnel.
        format!("CONNECT 127.0.0.1:{cp} HTTP/1.1\r\nHost: 127.0.0.1:{cp}\r\nAuthorization: Bearer {KEY}\r\n\r\n"),
        // Model ids and provider names that look like URLs or addresses.
        raw("/v1/chat/completions", "x", "", &body(&format!("{canary_url}/v1"))),
        raw("/v1/chat/completions", "x", "", &body(&format!("127.0.0.1:{cp}"))),
        raw("/v1/chat/completions", "x", "", &body(&format!("test/model@127.0.0.1:{cp}"))),
        raw("/v1/chat/completions", "x", "", &json!({"model": "test/model", "models": [canary_url.clone()], "provider": {"order": [canary_url.clone()], "only": ["p1", canary_url.clone()]}, "messages": [{"role": "user", "content": "hi"}]}).to_string()),
        raw("/v1/chat/completions", "x", "", &json!({"model": "test/model", "base_url": canary_url.clone(), "api_base": canary_url.clone(), "messages": [{"role": "user", "content": "hi"}]}).to_string()),
    ];
    // Image and file URLs to every dialect (a converter must not fetch them).
    for model in ["test/model", "anthropic/claude", "google/gemini"] {
        requests.push(raw(
            "/v1/chat/completions",
            "x",
            "",
            &json!({"model": model, "messages": [{"role": "user", "content": [
                {"type": "text", "text": "what is this"},
                {"type": "image_url", "image_url": {"url": format!("{canary_url}/cat.png")}},
                {"type": "file", "file": {"file_data": format!("{canary_url}/doc.pdf"), "filename": "doc.pdf"}},
                {"type": "input_audio", "input_audio": {"data": format!("{canary_url}/a.wav"), "format": "wav"}}
            ]}]})
            .to_string(),
        ));
    }
    let mut statuses = Vec::new();
    for request in &requests {
        let out = raw_exchange(gw.port, request.as_bytes());
        let text = String::from_utf8_lossy(&out);
        let status = text.get(9..12).unwrap_or("---").to_string();
        assert!(!status.starts_with('5'), "{request}\n-> {text}");
        statuses.push(status);
    }
    // Also on the admin and metrics listeners.
    for port in [env.admin_port, env.metrics_port] {
        for request in &requests[..6] {
            let _ = raw_exchange(port, request.as_bytes());
        }
    }
    // Redirects from a provider are not followed either: the mock answers what it answers.
    let deadline = Instant::now() + Duration::from_millis(300);
    while Instant::now() < deadline && canary.hits.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        canary.hits.load(Ordering::SeqCst),
        0,
        "the gateway connected to a host that is not a provider (statuses: {statuses:?})"
    );
    assert!(
        env.mock.request_count() > 0,
        "the legitimate requests went to the provider"
    );
    for seen in env.mock.requests() {
        let host = seen.header("host").unwrap_or_default();
        assert_eq!(
            host,
            env.mock.addr().to_string(),
            "the provider gets its own Host"
        );
    }
    let mut s = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 200"), "still serving: {out}");
}
