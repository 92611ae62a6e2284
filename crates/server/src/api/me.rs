//! `GET /me` and `GET /me/events`.

use super::schema::{
    AccountBody, EnforcementBody, EventsQuery, EventsResponse, TwoFactorBody, UserBody,
};
use crate::error::{AppError, ErrorBody, Json, Query};
use crate::extract::{AnySessionWithStatus, FullSession};
use crate::state::AppState;
use axum::extract::State;
use serde::Serialize;
use tessera_core::Timestamp;
use tessera_core::policy::enforcement;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct MeResponse {
    pub user: UserBody,
    pub account: AccountBody,
    pub two_factor: TwoFactorBody,
    pub enforcement: EnforcementBody,
}

/// The signed-in user, their account, their 2FA state and where they stand against the
/// account's 2FA policy.
#[utoipa::path(get, path = "/me", tag = "me", security(("session" = [])),
    responses(
        (status = 200, body = MeResponse),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
    ))]
pub async fn me(
    State(state): State<AppState>,
    AnySessionWithStatus(context, status): AnySessionWithStatus,
) -> Result<Json<MeResponse>, AppError> {
    let (user, account) = (&context.user, &context.account);
    let enabled = status.enabled_at.is_some();
    Ok(Json(MeResponse {
        user: UserBody::new(user, enabled),
        account: AccountBody::from(account),
        two_factor: TwoFactorBody {
            enabled,
            enabled_at: status.enabled_at.map(Timestamp::to_rfc3339),
            recovery_codes_remaining: status.recovery_codes_remaining,
            pending_setup: status.pending_until.is_some(),
        },
        enforcement: EnforcementBody {
            required: account.two_factor_required,
            grace_period_until: account.grace_period_until.map(Timestamp::to_rfc3339),
            status: enforcement(account, user, enabled, state.auth.now()),
        },
    }))
}

/// The signed-in user's security events, newest first.
#[utoipa::path(get, path = "/me/events", tag = "me", security(("session" = [])),
    params(EventsQuery),
    responses(
        (status = 200, body = EventsResponse),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`two_factor_setup_required`", body = ErrorBody),
        (status = 422, description = "`validation_error`", body = ErrorBody),
    ))]
pub async fn events(
    State(state): State<AppState>,
    FullSession(context): FullSession,
    Query(query): Query<EventsQuery>,
) -> Result<Json<EventsResponse>, AppError> {
    let limit = query.limit()?;
    let events = state
        .store
        .user_events(context.user.id, query.before, limit)
        .await
        .map_err(AppError::internal)?;
    Ok(Json(EventsResponse::page(events, limit)))
}
