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
use crate::reload::Reloader;

pub struct AdminApp {
    store: Arc<SnapshotStore>,
    reloader: Arc<Reloader>,
}

fn json_response(status: u16, body: Bytes) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .body(body.to_vec())
        .unwrap_or_default()
}

fn error(e: ApiError) -> Response<Vec<u8>> {
    json_response(e.status, e.body(FrontDoor::OpenAi))
}

impl AdminApp {
    pub fn new(store: Arc<SnapshotStore>, reloader: Arc<Reloader>) -> AdminApp {
        AdminApp { store, reloader }
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
                match tokio::task::spawn_blocking(move || reloader.reload()).await {
                    Ok(Ok(report)) => json_response(200, Bytes::from(json!({"reloaded": true, "changes": report.changes, "warnings": report.warnings}).to_string())),
                    Ok(Err(errors)) => {
                        let mut e = ApiError::bad_request("the config file is invalid; the running config stays");
                        e.metadata = Some(Box::new(json!({ "errors": errors.lines().collect::<Vec<_>>() })));
                        error(e)
                    }
                    Err(_) => error(ApiError::internal("the reload task failed")),
                }
            }
            _ => error(ApiError::not_found(format!(
                "no such admin endpoint: {method} {path}"
            ))),
        }
    }
}
