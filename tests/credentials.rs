//! Provider credentials that rotate: a key read from a file (`api_key_file`, e.g. Vertex's
//! hourly OAuth token written by a refresher) and AWS temporary credentials (a session token,
//! from the standard variables or from files) reach new requests when they change, without
//! a restart, and requests in between are never sent with a half-read identity.

mod common;

use common::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A folder of credential files outside the gateway's own, as a refresher or a mounted
/// Secret keeps them; removed when dropped.
struct SecretsDir(PathBuf);

impl SecretsDir {
    fn new(tag: &str) -> SecretsDir {
        let dir = std::env::temp_dir().join(format!(
            "switchyard-credentials-{tag}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        SecretsDir(dir)
    }

    /// Writes `name` by rename, as token refreshers do (readers never see a partial file).
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        let tmp = self.0.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        path
    }
}

impl Drop for SecretsDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn hi(model: &str) -> serde_json::Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

/// Asks until the gateway answers 200 (the watch and reload take a moment), at most `within`.
async fn until_served(gw: &Gateway, model: &str, within: Duration) -> u16 {
    let start = Instant::now();
    loop {
        let status = chat(gw, hi(model)).await.status().as_u16();
        if status == 200 || start.elapsed() > within {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn path_text(p: &Path) -> String {
    p.display().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_key_file_reaches_new_requests_without_a_restart() {
    // The provider accepts only the refreshed token.
    let mock = MockServer::start_with_key("127.0.0.1:0", "ya29.fresh").unwrap();
    let secrets = SecretsDir::new("keyfile");
    let token = secrets.write("vertex-token", "ya29.expired\n");
    let yaml = format!(
        "{}providers:\n  vertex:\n    dialect: openai\n    base_url: \"{}\"\n    api_key_file: \"{}\"\nmodels:\n  google/gemini:\n    endpoints:\n      - {{ provider: vertex, model: up }}\n",
        config_head(),
        mock.base_url(),
        path_text(&token)
    );
    let gw = Gateway::start(&yaml);

    let r = chat(&gw, hi("google/gemini")).await;
    assert_ne!(r.status().as_u16(), 200, "the expired token was accepted");
    let sent = mock.requests();
    assert_eq!(
        sent.last().unwrap().header("authorization"),
        Some("Bearer ya29.expired")
    );

    secrets.write("vertex-token", "ya29.fresh\n");
    assert_eq!(
        until_served(&gw, "google/gemini", Duration::from_secs(15)).await,
        200
    );
    let sent = mock.requests();
    assert_eq!(
        sent.last().unwrap().header("authorization"),
        Some("Bearer ya29.fresh")
    );
    let log = gw.log_text();
    assert!(!log.contains("ya29."), "a token reached the log");
}

fn bedrock_config(mock: &MockServer, credentials: &str) -> String {
    format!(
        "{}providers:\n  br:\n    dialect: bedrock\n    base_url: \"{}\"\n    region: us-east-1\n{credentials}models:\n  amazon/nova:\n    endpoints:\n      - {{ provider: br, model: \"amazon.nova-pro-v1:0\" }}\n",
        config_head(),
        mock.base_url()
    )
}

/// Temporary AWS credentials (a role's, SSO's) are three parts; the standard variables
/// bring the session token along, signed in `x-amz-security-token`.
#[tokio::test(flavor = "multi_thread")]
async fn bedrock_signs_with_the_session_token_of_temporary_credentials() {
    let mock = MockServer::start_with_key("127.0.0.1:0", "ASIATEMPORARY:FwoGZXIvYXdz").unwrap();
    let standard = "    aws_access_key_id_env: AWS_ACCESS_KEY_ID\n    aws_secret_access_key_env: AWS_SECRET_ACCESS_KEY\n";
    let env = [
        ("AWS_ACCESS_KEY_ID", "ASIATEMPORARY"),
        ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI"),
        ("AWS_SESSION_TOKEN", "FwoGZXIvYXdz"),
    ];
    let gw = Gateway::start_with_env(&bedrock_config(&mock, standard), &env);
    let r = chat(&gw, hi("amazon/nova")).await;
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    let sent = mock.requests();
    let request = sent.last().unwrap();
    assert_eq!(request.header("x-amz-security-token"), Some("FwoGZXIvYXdz"));
    drop(gw);

    // Without the token AWS refuses temporary keys: the mock does too.
    let gw = Gateway::start_with_env(&bedrock_config(&mock, standard), &env[..2]);
    let r = chat(&gw, hi("amazon/nova")).await;
    assert_ne!(r.status().as_u16(), 200);
}

/// AWS credentials from files, rotated together by a refresher: the new identity signs the
/// requests after the reload.
#[tokio::test(flavor = "multi_thread")]
async fn bedrock_credentials_from_files_rotate_without_a_restart() {
    let mock = MockServer::start_with_key("127.0.0.1:0", "ASIASECOND:token-two").unwrap();
    let secrets = SecretsDir::new("aws");
    let id = secrets.write("id", "ASIAFIRST\n");
    let secret = secrets.write("secret", "first-secret\n");
    let token = secrets.write("token", "token-one\n");
    let fields = format!(
        "    aws_access_key_id_file: \"{}\"\n    aws_secret_access_key_file: \"{}\"\n    aws_session_token_file: \"{}\"\n",
        path_text(&id),
        path_text(&secret),
        path_text(&token)
    );
    let gw = Gateway::start(&bedrock_config(&mock, &fields));
    let r = chat(&gw, hi("amazon/nova")).await;
    assert_ne!(r.status().as_u16(), 200, "the first identity was accepted");

    secrets.write("secret", "second-secret\n");
    secrets.write("token", "token-two\n");
    secrets.write("id", "ASIASECOND\n");
    assert_eq!(
        until_served(&gw, "amazon/nova", Duration::from_secs(15)).await,
        200
    );
    let sent = mock.requests();
    let request = sent.last().unwrap();
    assert_eq!(request.header("x-amz-security-token"), Some("token-two"));
    assert!(request
        .header("authorization")
        .unwrap()
        .contains("Credential=ASIASECOND/"));
}
