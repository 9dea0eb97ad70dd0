//! Endpoints the gateway answers itself: the catalog, a model's endpoints, the caller's key,
//! generation records, health.

use bytes::Bytes;
use pingora::proxy::Session;
use pingora::Result;
use serde_json::json;

use super::ctx::RequestCtx;
use super::respond::send_json;
use super::routes::{self, Route};
use super::Gateway;
use crate::api::models::models_response;
use crate::api::ApiError;

impl Gateway {
    /// Answers a local endpoint; `Ok(true)`: the response is sent.
    pub(super) async fn answer_locally(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<bool> {
        match ctx.route {
            Route::Models => {
                let query = session.req_header().uri.query();
                let (status, body) = models_response(&ctx.snapshot.catalog, query);
                send_json(session, status, body, &[]).await?;
                Ok(true)
            }
            Route::ModelEndpoints => {
                let id =
                    routes::model_endpoints_id(routes::api_path(session.req_header().uri.path()))
                        .unwrap_or_default();
                match ctx.snapshot.catalog.model(id) {
                    Some(model) => {
                        let body = crate::api::models::model_endpoints(model, &self.health);
                        send_json(session, 200, Bytes::from(body.to_string()), &[]).await?;
                        Ok(true)
                    }
                    None => {
                        let e = ApiError::model_not_found(format!(
                            "model `{id}` is not in this gateway's catalog"
                        ));
                        self.send_error(session, ctx, e).await
                    }
                }
            }
            Route::Generation => self.generation(session, ctx).await,
            Route::Key => match self.authenticate(session, ctx) {
                Ok(key) => {
                    let report = self.limits.report(&key.hash, ctx.created_unix_ms).await;
                    let body = crate::api::key::key_info(&key, &report, ctx.created_unix);
                    ctx.key = Some(key);
                    send_json(session, 200, Bytes::from(body.to_string()), &[]).await?;
                    Ok(true)
                }
                Err(e) => self.send_error(session, ctx, e).await,
            },
            Route::Healthz | Route::Readyz => {
                send_json(session, 200, Bytes::from_static(br#"{"status":"ok"}"#), &[]).await?;
                Ok(true)
            }
            Route::MethodNotAllowed(allowed) => {
                let e = ApiError::method_not_allowed(format!(
                    "use {allowed} for {}",
                    session.req_header().uri.path()
                ));
                self.refuse_unread(session, ctx, e).await
            }
            Route::NotFound
            | Route::ChatCompletions
            | Route::Messages
            | Route::Responses
            | Route::Embeddings => {
                let req = session.req_header();
                let e = ApiError::not_found(format!(
                    "no such endpoint: {} {}",
                    req.method,
                    req.uri.path()
                ));
                self.refuse_unread(session, ctx, e).await
            }
        }
    }

    /// `GET /v1/generation?id=`: the caller's own generation record (another key's is as
    /// unknown as a missing one).
    async fn generation(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let key = match self.authenticate(session, ctx) {
            Ok(k) => k,
            Err(e) => return self.send_error(session, ctx, e).await,
        };
        ctx.key = Some(key.clone());
        let id = session
            .req_header()
            .uri
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("id=")))
            .map(str::to_string);
        let Some(id) = id.filter(|i| !i.is_empty()) else {
            let e = ApiError::bad_param("id", "`id` is required: /v1/generation?id=gen-...");
            return self.send_error(session, ctx, e).await;
        };
        let record = match self.recent.get(&id) {
            Some(r) => Some((*r).clone()),
            None => match self.ledger.get_generation(&id).await {
                Ok(r) => r,
                Err(e) => {
                    log::error!("reading generation {id}: {e}");
                    let e = ApiError::unavailable("the generation ledger is unavailable right now");
                    return self.send_error(session, ctx, e).await;
                }
            },
        };
        match record.filter(|r| r.key_hash == key.hash) {
            Some(r) => {
                let body = json!({ "data": r.to_openrouter_json() });
                send_json(session, 200, Bytes::from(body.to_string()), &[]).await?;
                Ok(true)
            }
            None => {
                let e = ApiError::not_found(format!("no generation `{id}` for this key"));
                self.send_error(session, ctx, e).await
            }
        }
    }
}
