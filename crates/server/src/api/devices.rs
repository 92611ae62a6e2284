//! The signed-in user's recognized devices and sessions: `GET/DELETE /me/devices`,
//! `GET/DELETE /me/sessions`.

use super::path_id as id;
use crate::error::{AppError, ErrorBody, Json, Query};
use crate::extract::{ClientMeta, FullSession};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tessera_core::model::{Device, DeviceId, Session, SessionId};
use tessera_core::sessions::SessionCursor;
use tessera_core::validate::FieldError;
use utoipa::{IntoParams, ToSchema};

#[derive(Serialize, ToSchema)]
pub struct DeviceBody {
    pub id: String,
    /// The browser it was verified with; it is recognized only from that same User-Agent.
    pub user_agent: Option<String>,
    /// Where it was verified from.
    pub ip: Option<String>,
    pub created_at: String,
    pub last_used_at: String,
    /// After this, signing in from it needs an email code again.
    pub expires_at: String,
    /// Until when sign-ins from it skip the second step ("Don't ask again on this device");
    /// `null` if it does not (never trusted, stopped, or the account forbids it).
    pub trusted_until: Option<String>,
}

impl From<Device> for DeviceBody {
    fn from(d: Device) -> Self {
        Self {
            id: d.id.to_string(),
            user_agent: d.user_agent,
            ip: d.ip,
            created_at: d.created_at.to_rfc3339(),
            last_used_at: d.last_used_at.to_rfc3339(),
            expires_at: d.expires_at.to_rfc3339(),
            trusted_until: d.trusted_until.map(|t| t.to_rfc3339()),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SessionBody {
    pub id: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: String,
    pub expires_at: String,
    /// The session making this request.
    pub current: bool,
}

impl SessionBody {
    fn new(s: Session, current: SessionId) -> Self {
        Self {
            current: s.id == current,
            id: s.id.to_string(),
            ip: s.ip,
            user_agent: s.user_agent,
            created_at: s.created_at.to_rfc3339(),
            expires_at: s.expires_at.to_rfc3339(),
        }
    }
}

/// The recognized devices (they skip the email code; the trusted ones, until
/// `trusted_until`, the second step), most recently used first.
#[utoipa::path(get, path = "/me/devices", tag = "me", security(("session" = [])),
    responses(
        (status = 200, body = Vec<DeviceBody>),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorBody),
        (status = 403, description = "`two_factor_setup_required`", body = ErrorBody),
    ))]
pub async fn devices(
    State(state): State<AppState>,
    FullSession(context): FullSession,
) -> Result<Json<Vec<DeviceBody>>, AppError> {
    let devices = state.core.devices.list(&context).await?;
    Ok(Json(devices.into_iter().map(DeviceBody::from).collect()))
}

/// Forgets a device: the next sign-in from it needs an email code again.
#[utoipa::path(delete, path = "/me/devices/{id}", tag = "me", security(("session" = [])),
    params(("id" = String, Path, description = "Device id")),
    responses(
        (status = 204, description = "Forgotten"),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn remove_device(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    FullSession(context): FullSession,
    Path(device): Path<String>,
) -> Result<StatusCode, AppError> {
    let device = id::<DeviceId>(&device)?;
    state.core.devices.remove(&context, device, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stops a device from skipping the second step; it stays recognized.
#[utoipa::path(delete, path = "/me/devices/{id}/trust", tag = "me", security(("session" = [])),
    params(("id" = String, Path, description = "Device id")),
    responses(
        (status = 204, description = "The device asks for the second step again"),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn stop_trusting_device(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    FullSession(context): FullSession,
    Path(device): Path<String>,
) -> Result<StatusCode, AppError> {
    let device = id::<DeviceId>(&device)?;
    state
        .core
        .devices
        .stop_trusting(&context, device, &meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SessionsQuery {
    /// Only sessions after this cursor (from the `Link` header of the previous page).
    pub after: Option<String>,
    /// Page size, 1 to 100 (default 100, as many as a user may hold).
    pub limit: Option<i64>,
}

/// The user's active sessions (at most 100: a new one ends the oldest), newest first, a page
/// at a time: when more follow, the answer carries `Link: <…?after=…&limit=…>; rel="next"`.
#[utoipa::path(get, path = "/me/sessions", tag = "me", security(("session" = [])),
    params(SessionsQuery),
    responses(
        (status = 200, body = Vec<SessionBody>,
         headers(("Link" = String, description = "`<next page URL>; rel=\"next\"` when more sessions follow"))),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorBody),
        (status = 422, description = "`validation_error`: `limit` outside 1–100 or a malformed `after`", body = ErrorBody),
    ))]
pub async fn sessions(
    State(state): State<AppState>,
    FullSession(context): FullSession,
    Query(query): Query<SessionsQuery>,
) -> Result<Response, AppError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=100).contains(&limit) {
        return Err(FieldError::new("limit", "must be between 1 and 100").into());
    }
    let after = query
        .after
        .as_deref()
        .map(|a| {
            SessionCursor::decode(a)
                .ok_or_else(|| FieldError::new("after", "is not a cursor this list gave"))
        })
        .transpose()?;
    let (sessions, next) = state.core.sessions.list(&context, after, limit).await?;
    let current = context.session().id;
    let body: Vec<SessionBody> = sessions
        .into_iter()
        .map(|s| SessionBody::new(s, current))
        .collect();
    let mut response = Json(body).into_response();
    if let Some(next) = next {
        let link = format!(
            "</api/v1/me/sessions?after={}&limit={limit}>; rel=\"next\"",
            next.encode()
        );
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    Ok(response)
}

/// Ends one session (it may be the current one).
#[utoipa::path(delete, path = "/me/sessions/{id}", tag = "me", security(("session" = [])),
    params(("id" = String, Path, description = "Session id")),
    responses(
        (status = 204, description = "Signed out"),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn revoke_session(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    FullSession(context): FullSession,
    Path(session): Path<String>,
) -> Result<StatusCode, AppError> {
    let session = id::<SessionId>(&session)?;
    state.core.sessions.revoke(&context, session, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Signs out everywhere else: every session but this one ends.
#[utoipa::path(delete, path = "/me/sessions", tag = "me", security(("session" = [])),
    responses(
        (status = 204, description = "Every other session ended"),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorBody),
    ))]
pub async fn revoke_other_sessions(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    FullSession(context): FullSession,
) -> Result<StatusCode, AppError> {
    state.core.sessions.revoke_others(&context, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}
