//! The audit log: `GET /me/events` (one's own security events) and `GET /account/events` (the
//! account's, for the owner and admins), newest first, a page at a time.
//!
//! Both were published with the operation id `events`; it is kept, stated explicitly.

use crate::error::{AppError, ErrorBody, Json, Query};
use crate::extract::FullSession;
use crate::key_auth::Caller;
use crate::state::AppState;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use tessera_core::model::SecurityEvent;
use tessera_core::principal::grant::EventsRead;
use tessera_core::validate::FieldError;
use utoipa::{IntoParams, ToSchema};

#[derive(Serialize, ToSchema)]
pub struct EventBody {
    pub id: i64,
    /// Whom it is about (`null` once that user was deleted).
    pub user_id: Option<String>,
    /// What happened: `signup`, `sign_in`, `sign_in_failed`, `password_locked`, `sign_out`, …
    pub kind: String,
    pub email: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    pub created_at: String,
}

impl From<SecurityEvent> for EventBody {
    fn from(e: SecurityEvent) -> Self {
        Self {
            id: e.id,
            user_id: e.user_id.map(|id| id.to_string()),
            kind: e.kind.to_string(),
            email: e.email,
            ip: e.ip,
            user_agent: e.user_agent,
            detail: e.detail,
            created_at: e.created_at.to_rfc3339(),
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only events older than this id (the `next_before` of the previous page).
    pub before: Option<i64>,
    /// Page size, 1 to 100 (default 50).
    pub limit: Option<i64>,
}

impl EventsQuery {
    pub fn limit(&self) -> Result<i64, AppError> {
        let limit = self.limit.unwrap_or(50);
        if (1..=100).contains(&limit) {
            Ok(limit)
        } else {
            Err(FieldError::new("limit", "must be between 1 and 100").into())
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct EventsResponse {
    pub events: Vec<EventBody>,
    /// Pass as `before` for the next page; `null` on the last page.
    pub next_before: Option<i64>,
}

impl EventsResponse {
    /// One page of events, asked for with `limit`.
    pub fn page(events: Vec<SecurityEvent>, limit: i64) -> Self {
        let full_page = i64::try_from(events.len()).is_ok_and(|n| n == limit);
        let next_before = full_page.then(|| events.last().map(|e| e.id)).flatten();
        Self {
            events: events.into_iter().map(EventBody::from).collect(),
            next_before,
        }
    }
}

/// The signed-in user's security events, newest first.
#[utoipa::path(get, path = "/me/events", tag = "me", operation_id = "events", security(("session" = [])),
    params(EventsQuery),
    responses(
        (status = 200, body = EventsResponse),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorBody),
        (status = 403, description = "`two_factor_setup_required`", body = ErrorBody),
        (status = 422, description = "`validation_error`", body = ErrorBody),
    ))]
pub async fn mine(
    State(state): State<AppState>,
    FullSession(context): FullSession,
    Query(query): Query<EventsQuery>,
) -> Result<Json<EventsResponse>, AppError> {
    let limit = query.limit()?;
    let events = state
        .core
        .audit
        .my_events(&context, query.before, limit)
        .await
        .map_err(AppError::internal)?;
    Ok(Json(EventsResponse::page(events, limit)))
}

/// The account's audit log, newest first. Also for API keys granted `events:read`.
#[utoipa::path(get, path = "/account/events", tag = "account", operation_id = "events",
    security(("session" = []), ("api_key" = ["events:read"])),
    params(EventsQuery),
    responses(
        (status = 200, body = EventsResponse),
        (status = 401, description = "`unauthenticated`, `session_expired`, `invalid_api_key` or `api_key_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`, `insufficient_grant` or `ip_not_allowed`", body = ErrorBody),
        (status = 422, description = "`validation_error`", body = ErrorBody),
    ))]
pub async fn team(
    State(state): State<AppState>,
    caller: Caller<EventsRead>,
    Query(query): Query<EventsQuery>,
) -> Result<Json<EventsResponse>, AppError> {
    let limit = query.limit()?;
    let events = state
        .core
        .team
        .account_events(&caller, query.before, limit)
        .await?;
    Ok(Json(EventsResponse::page(events, limit)))
}
