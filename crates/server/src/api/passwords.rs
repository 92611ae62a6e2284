//! A password's life (SPEC §8): `POST /me/password` (change), `POST /password/forgot` (a
//! reset link by email) and `POST /password/reset` (a new password with the link).

use crate::error::{AppError, ErrorBody, Json, change_password_error, forgot_error, reset_error};
use crate::extract::{ClientMeta, FullSession, Recent};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    /// 12 to 128 characters, strong enough for the estimator (SPEC §8).
    pub new_password: String,
}

/// Changes the password; every other session of the user ends and the user is emailed. A
/// sensitive action: the session must have authenticated in the last 15 minutes.
#[utoipa::path(post, path = "/me/password", tag = "me", security(("session" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "Changed; every other session ended"),
        (status = 401, description = "`invalid_credentials` (wrong current password) or `unauthenticated`", body = ErrorBody),
        (status = 403, description = "`two_factor_setup_required`, or `reauthentication_required` (`POST /me/reauthenticate` first)", body = ErrorBody),
        (status = 422, description = "`validation_error`: `fields.new_password` says why a password is refused", body = ErrorBody),
        (status = 429, description = "`too_many_attempts` (the password lock of sign-in)", body = ErrorBody),
    ))]
pub async fn change(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    Recent(me): Recent<FullSession>,
    Json(body): Json<ChangePasswordRequest>,
) -> Result<StatusCode, AppError> {
    state
        .core
        .passwords
        .change(
            &me,
            &body.current_password.into(),
            &body.new_password.into(),
            &meta,
        )
        .await
        .map_err(|e| change_password_error(e, state.core.now()))?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgotRequest {
    #[schema(example = "ada@example.com")]
    pub email: String,
}

#[derive(Serialize, ToSchema)]
pub struct ForgotResponse {
    /// Always `"reset_link_sent_if_registered"`.
    pub status: &'static str,
}

/// Emails a link to choose a new password (valid 1 h, single use) if the email is a user's.
/// The answer is the same whether or not it is, and when the user's limit of 3 links an
/// hour is reached; only the limit per client address (20 requests an hour) answers 429.
#[utoipa::path(post, path = "/password/forgot", tag = "auth", request_body = ForgotRequest,
    responses(
        (status = 202, body = ForgotResponse),
        (status = 422, description = "`validation_error` (not an email address)", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`, with `Retry-After`", body = ErrorBody),
    ))]
pub async fn forgot(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    Json(body): Json<ForgotRequest>,
) -> Result<(StatusCode, Json<ForgotResponse>), AppError> {
    state
        .core
        .passwords
        .forgot(&body.email, &meta)
        .await
        .map_err(|e| forgot_error(e, state.core.now()))?;
    let status = "reset_link_sent_if_registered";
    Ok((StatusCode::ACCEPTED, Json(ForgotResponse { status })))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    /// The token from the emailed link `/password/reset/{token}`.
    pub token: String,
    pub new_password: String,
}

/// Sets a new password with a reset link: every session of the user ends, the password lock
/// of their email is lifted and they are emailed. Two-factor authentication stays on: the
/// next sign-in still asks for the second factor (or the device code).
#[utoipa::path(post, path = "/password/reset", tag = "auth", request_body = ResetRequest,
    responses(
        (status = 204, description = "The password is changed; every session ended"),
        (status = 404, description = "`reset_token_invalid`: no such link (or its user was deleted)", body = ErrorBody),
        (status = 410, description = "`reset_token_used` or `reset_token_expired`", body = ErrorBody),
        (status = 422, description = "`validation_error`: `fields.new_password` says why a password is refused", body = ErrorBody),
    ))]
pub async fn reset(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    Json(body): Json<ResetRequest>,
) -> Result<StatusCode, AppError> {
    state
        .core
        .passwords
        .reset(&body.token, &body.new_password.into(), &meta)
        .await
        .map_err(reset_error)?;
    Ok(StatusCode::NO_CONTENT)
}
