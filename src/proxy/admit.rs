//! Admission: who is calling, what they ask, where it may go, and whether their limits let it
//! — all before any upstream call (DESIGN §1 step 1).

use http::HeaderName;
use pingora::proxy::Session;
use pingora::Result;
use serde_json::json;
use std::sync::Arc;

use super::ctx::RequestCtx;
use super::frontdoor::{Admitted, FrontEnd};
use super::{body, limits, Gateway};
use crate::api::{ApiError, ChatRequest};
use crate::auth::{bearer_secret, ApiKey};
use crate::catalog::Dialect;
use crate::limits::{now_ms, Refusal};
use crate::metering::Cost;
use crate::routing::{session_hash, PlanError, RoutePlan, RouteRequest};

/// Request headers the gateway reads, as names known in advance: looked up by `&str`, a
/// name is parsed on every request.
const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
const ANTHROPIC_BETA: HeaderName = HeaderName::from_static("anthropic-beta");
const X_SESSION_ID: HeaderName = HeaderName::from_static("x-session-id");

impl Gateway {
    /// The caller's key: `Authorization: Bearer`, or `x-api-key` on the Anthropic door.
    pub(super) fn authenticate(
        &self,
        session: &Session,
        ctx: &RequestCtx,
    ) -> std::result::Result<Arc<ApiKey>, ApiError> {
        let headers = &session.req_header().headers;
        let bearer = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| bearer_secret(v.as_bytes()));
        let x_api_key = (ctx.front == FrontEnd::Messages)
            .then(|| {
                headers
                    .get(X_API_KEY)
                    .and_then(|v| v.to_str().ok())
                    .map(str::trim)
            })
            .flatten()
            .filter(|k| !k.is_empty());
        let secret = bearer.or(x_api_key).ok_or_else(|| {
            ApiError::unauthorized(if ctx.front == FrontEnd::Messages {
                "missing API key: send `x-api-key: <key>` or `Authorization: Bearer <key>`"
            } else {
                "missing API key: send `Authorization: Bearer <key>`"
            })
        })?;
        match self.keys.find(&ctx.snapshot, secret) {
            Some(k) if !k.disabled => Ok(k),
            Some(_) => Err(ApiError::unauthorized("this API key is disabled")),
            None => Err(ApiError::unauthorized("invalid API key")),
        }
    }

    /// Authenticates, reads and parses the body, plans the route and admits the request
    /// against the key's limits. `Ok(true)` means an error was already sent.
    pub(super) async fn admit(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let key = match self.authenticate(session, ctx) {
            Ok(k) => k,
            Err(e) => return self.refuse_unread(session, ctx, e).await,
        };
        ctx.key = Some(key.clone());
        let body =
            match body::read_body_for_replay(session, ctx.snapshot.server.max_body_bytes).await {
                Ok(b) => b,
                Err(e) => return self.refuse_unread(session, ctx, e).await,
            };
        let admitted = match Admitted::parse(ctx.front, body) {
            Ok(a) => a,
            Err(e) => return self.send_error(session, ctx, e).await,
        };
        let header = |name: HeaderName| {
            session
                .req_header()
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        ctx.anthropic_beta = header(ANTHROPIC_BETA);
        // Stickiness chooses among a model's endpoints: with one endpoint there is nothing
        // to remember, and hashing the conversation's opening would be wasted.
        let has_choice = |model: &str| {
            ctx.snapshot
                .catalog
                .model(model)
                .is_some_and(|m| m.endpoints.len() > 1)
        };
        let session_key = match &admitted {
            Admitted::Chat { chat, .. } if has_choice(&chat.model) => {
                Some(sticky_session(&key, chat, header(X_SESSION_ID).as_deref()))
            }
            Admitted::Chat { .. } | Admitted::Embeddings(_) => None,
        };
        let sticky = session_key.and_then(|s| self.sticky.get(s));
        ctx.session = session_key;
        let inputs = admitted.route_inputs();
        let plan = RoutePlan::build(
            &ctx.snapshot.catalog,
            &RouteRequest {
                model: inputs.model,
                fallbacks: inputs.fallbacks,
                prefs: inputs.prefs,
                key: &key,
                parameters: inputs.parameters,
                health: &self.health,
                sticky: sticky.as_ref(),
            },
        );
        let (prompt_estimate, worst_case) = match (&admitted, &plan) {
            (Admitted::Chat { chat, .. }, Ok(plan)) => (
                limits::prompt_estimate(chat),
                limits::worst_case_cost(chat, plan, ctx.snapshot.billing.fee_percent),
            ),
            (Admitted::Embeddings(e), Ok(plan)) => {
                let usage = e.estimated_usage();
                (
                    usage.prompt,
                    limits::worst_case_of(&usage, plan, ctx.snapshot.billing.fee_percent),
                )
            }
            _ => (0, Default::default()),
        };
        match admitted {
            Admitted::Chat {
                chat,
                original,
                dropped,
            } => {
                ctx.chat = Some(chat);
                ctx.original = original;
                ctx.front_dropped = dropped;
            }
            Admitted::Embeddings(e) => ctx.embeddings = Some(Box::new(e)),
        }
        let mut plan = match plan {
            Ok(plan) => plan,
            Err(e) => return self.send_error(session, ctx, plan_error(e)).await,
        };
        if ctx.front == FrontEnd::Embeddings {
            // Only some dialects have an embeddings API.
            plan.retain(|c| {
                matches!(
                    c.provider().dialect,
                    Dialect::OpenAi | Dialect::Azure | Dialect::Gemini
                )
            });
            if !plan.has_more() {
                let e = ApiError::model_not_found(format!(
                    "no provider of `{}` serves embeddings",
                    inputs_model(ctx)
                ));
                return self.send_error(session, ctx, e).await;
            }
        }
        ctx.plan = Some(plan);
        match self
            .limits
            .admit(&key, prompt_estimate, worst_case, now_ms())
            .await
        {
            Ok(admission) => {
                ctx.rate_status = admission.rate_status;
                ctx.admission = Some(admission);
                Ok(false)
            }
            Err(refusal) => {
                let error = refusal_error(refusal, ctx);
                self.send_error(session, ctx, error).await
            }
        }
    }

    /// Releases what the request held and charges what it used: every request passes here
    /// exactly once (from `logging`), whatever path it took, unless its answer settled it
    /// already (`settle_at_once`).
    pub(super) async fn settle(&self, ctx: &mut RequestCtx) {
        let (Some(key), Some(admission)) = (ctx.key.clone(), ctx.admission.take()) else {
            return;
        };
        let (cost, tokens) = charge_of(ctx);
        self.limits
            .settle(&key, admission, cost, tokens, now_ms())
            .await;
    }

    /// Settles now, as the answer completes, what needs no wait (holds on this instance's
    /// own counters): a client that has read its answer then finds its key charged.
    pub(super) fn settle_at_once(&self, ctx: &mut RequestCtx) {
        let (Some(key), Some(admission)) = (ctx.key.as_ref(), ctx.admission.take()) else {
            return;
        };
        let (cost, tokens) = charge_of(ctx);
        ctx.admission = self
            .limits
            .settle_at_once(key, admission, cost, tokens, now_ms());
    }

    /// Sends an error before the body was read: the connection is not reused, and what
    /// the client still sends is dropped once the request is logged.
    pub(super) async fn refuse_unread(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        error: ApiError,
    ) -> Result<bool> {
        session.as_mut().set_keepalive(None);
        ctx.body_unread = true;
        self.send_error(session, ctx, error).await
    }
}

/// What the request used: its cost and tokens (nothing without usage).
fn charge_of(ctx: &RequestCtx) -> (Cost, u64) {
    match ctx.usage {
        Some(u) => (ctx.cost_of(&u), u.total()),
        None => (Cost::default(), 0),
    }
}

fn inputs_model(ctx: &RequestCtx) -> String {
    ctx.embeddings
        .as_ref()
        .map(|e| e.model.clone())
        .unwrap_or_default()
}

/// The client's answer to a refused admission: 429 with the rate standing, 402, or 503.
fn refusal_error(refusal: Refusal, ctx: &mut RequestCtx) -> ApiError {
    match refusal {
        Refusal::Rate(status) => {
            ctx.rate_status = Some(status);
            ApiError::rate_limited(
                format!("rate limit exceeded: {} {} per minute for this key", status.limit, status.kind),
                status.retry_after.unwrap_or(1),
            )
        }
        Refusal::Budget(exhausted) => ApiError::payment_required(format!(
            "this key's budget of ${:.6} is used up for the current period (spent ${:.6}, ${:.6} held by requests in flight)",
            exhausted.limit.usd(),
            exhausted.spent.usd(),
            exhausted.reserved.usd()
        )),
        Refusal::Unavailable(why) => ApiError::unavailable(format!("limits are unavailable, refusing by policy: {why}")),
    }
}

fn plan_error(e: PlanError) -> ApiError {
    match e {
        PlanError::UnknownModel(m) => {
            let mut e =
                ApiError::model_not_found(format!("model `{m}` is not in this gateway's catalog"));
            e.param = Some("model".into());
            e
        }
        PlanError::ModelNotAllowed(m) => {
            ApiError::forbidden(format!("this key may not use model `{m}`"))
        }
        PlanError::NoEligibleEndpoint { model, excluded } => ApiError::model_not_found(format!(
            "no endpoint of `{model}` is eligible: {}",
            excluded.join("; ")
        ))
        .with_metadata(json!({ "excluded": excluded })),
        PlanError::AllUnhealthy { model, endpoints } => ApiError::unavailable(format!(
            "every eligible endpoint of `{model}` is unhealthy right now: {}",
            endpoints.join(", ")
        ))
        .with_metadata(json!({ "unhealthy": endpoints })),
    }
}

/// The sticky-routing key: the client's session id (`session_id`, `x-session-id` or
/// `prompt_cache_key`), else the conversation's opening (first system and first user
/// message) — scoped to the key and the model either way.
fn sticky_session(key: &ApiKey, chat: &ChatRequest, header: Option<&str>) -> u64 {
    let model = chat.model.as_bytes();
    match chat.session_id.as_deref().or(header) {
        Some(id) => session_hash(&[&key.hash, model, id.as_bytes()]),
        None => {
            let (system, user) = chat.conversation_opening();
            session_hash(&[
                &key.hash,
                model,
                system.unwrap_or_default(),
                user.unwrap_or_default(),
            ])
        }
    }
}
