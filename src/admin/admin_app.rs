//! The admin API on `server.admin_listen`: every request needs `Authorization: Bearer
//! <admin token>` (from `server.admin_token_env`); without a configured token it refuses all.

use async_trait::async_trait;
use bytes::Bytes;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::json;
use std::sync::Arc;
use subtle::ConstantTimeEq;

use crate::api::{ApiError, FrontDoor};
use crate::auth::bearer_secret;
use crate::config::SnapshotStore;
use crate::keystore::KeyStore;
use crate::ledger::Ledger;
use crate::limits::Budgets;
use crate::reload::Reloader;

use super::keys::KeysApi;

pub struct AdminApp {
    store: Arc<SnapshotStore>,
    reloader: Arc<Reloader>,
    ledger: Ledger,
    keys: Arc<KeyStore>,
    budgets: Arc<Budgets>,
}

/// Admin request bodies are small JSON objects.
const MAX_ADMIN_BODY: usize = 64 * 1024;

async fn read_body(session: &mut ServerSession) -> Result<Vec<u8>, ApiError> {
    let mut body = Vec::new();
    while let Some(chunk) = session
        .read_request_body()
        .await
        .map_err(|e| ApiError::bad_request(format!("could not read the body: {e}")))?
    {
        if body.len() + chunk.len() > MAX_ADMIN_BODY {
            return Err(ApiError::payload_too_large(MAX_ADMIN_BODY));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn json_response(status: u16, body: Bytes) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .body(body.to_vec())
        .unwrap_or_default()
}

/// `/v1/keys`, `/v1/keys/{hash}`, and the same under `/api`.
fn is_keys_path(path: &str) -> bool {
    let p = path.strip_prefix("/api").unwrap_or(path);
    p == "/v1/keys" || p.starts_with("/v1/keys/")
}

fn error(e: ApiError) -> Response<Vec<u8>> {
    json_response(e.status, e.body(FrontDoor::OpenAi))
}

impl AdminApp {
    pub fn new(
        store: Arc<SnapshotStore>,
        reloader: Arc<Reloader>,
        ledger: Ledger,
        keys: Arc<KeyStore>,
        budgets: Arc<Budgets>,
    ) -> AdminApp {
        AdminApp {
            store,
            reloader,
            ledger,
            keys,
            budgets,
        }
    }

    async fn keys(
        &self,
        session: &mut ServerSession,
        method: &str,
        rest: &str,
    ) -> Response<Vec<u8>> {
        let body = match read_body(session).await {
            Ok(b) => b,
            Err(e) => return error(e),
        };
        let api = KeysApi {
            ledger: &self.ledger,
            budgets: &self.budgets,
        };
        let query = session.req_header().uri.query().unwrap_or("");
        match api.handle(method, rest, query, &body).await {
            Ok((status, value)) => {
                if method != "GET" {
                    // The change takes effect on this instance now, on others at their refresh.
                    if let Err(e) = self.keys.refresh().await {
                        log::warn!("refreshing keys after an admin change: {e}");
                    }
                }
                json_response(status, Bytes::from(value.to_string()))
            }
            Err(e) => error(e),
        }
    }

    fn authorized(&self, session: &ServerSession) -> Result<(), ApiError> {
        let snapshot = self.store.current();
        let Some(token) = &snapshot.server.admin_token else {
            return Err(ApiError::forbidden(
                "the admin API is disabled: set server.admin_token_env",
            ));
        };
        let presented = session
            .get_header(http::header::AUTHORIZATION)
            .and_then(|v| bearer_secret(v.as_bytes()))
            .ok_or_else(|| ApiError::unauthorized("send `Authorization: Bearer <admin token>`"))?;
        if bool::from(presented.as_bytes().ct_eq(token.expose().as_bytes())) {
            Ok(())
        } else {
            Err(ApiError::unauthorized("invalid admin token"))
        }
    }
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        if let Err(e) = self.authorized(session) {
            return error(e);
        }
        let method = session.req_header().method.clone();
        let path = session.req_header().uri.path().to_string();
        match (method.as_str(), path.as_str()) {
            ("POST", "/admin/reload") => {
                let reloader = self.reloader.clone();
                // `?dry_run=1` validates and reports the changes without applying them.
                let dry_run = session.req_header().uri.query().is_some_and(|q| {
                    q.split('&')
                        .any(|kv| kv == "dry_run=1" || kv == "dry_run=true")
                });
                let work = move || {
                    if dry_run {
                        reloader.check()
                    } else {
                        reloader.reload()
                    }
                };
                match tokio::task::spawn_blocking(work).await {
                    Ok(Ok(report)) => json_response(200, Bytes::from(json!({"reloaded": !dry_run, "changes": report.changes, "warnings": report.warnings}).to_string())),
                    Ok(Err(errors)) => {
                        let mut e = ApiError::bad_request("the config file is invalid; the running config stays");
                        e.metadata = Some(Box::new(json!({ "errors": errors.lines().collect::<Vec<_>>() })));
                        error(e)
                    }
                    Err(_) => error(ApiError::internal("the reload task failed")),
                }
            }
            (m, p) if is_keys_path(p) => {
                let rest = p
                    .trim_start_matches("/api")
                    .trim_start_matches("/v1/keys")
                    .to_string();
                let m = m.to_string();
                self.keys(session, &m, &rest).await
            }
            _ => error(ApiError::not_found(format!(
                "no such admin endpoint: {method} {path}"
            ))),
        }
    }
}
