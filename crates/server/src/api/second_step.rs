//! The second step of a sign-in: `POST /login/verify` (a TOTP or recovery code, or the code
//! emailed for an unrecognized device) and `POST /login/resend` (another emailed code).

use super::sign_in::LoginResponse;
use crate::error::{AppError, ErrorBody, Json, resend_error, second_step_error};
use crate::extract::ClientMeta;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tessera_core::Timestamp;
use tessera_core::validate::FieldError;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
pub struct VerifyRequest {
    pub challenge_token: String,
    /// A 6-digit TOTP code, or a recovery code (case, spaces and dashes ignored). Give this
    /// or `webauthn`.
    pub code: Option<String>,
    /// A security key's assertion: `PublicKeyCredential.toJSON()` of
    /// `navigator.credentials.get(…)` with the `webauthn_options` of `two_factor_required`.
    #[schema(value_type = Option<Object>)]
    pub webauthn: Option<serde_json::Value>,
    /// "Don't ask again on this device for 30 days": with a TOTP or recovery code, and if
    /// the account allows it, later sign-ins from this device (its `device_token`, the same
    /// User-Agent) skip the second step. Ignored for an email code.
    #[serde(default)]
    pub remember_device: bool,
}

/// Completes a sign-in with the second step: a TOTP or recovery code, a security key's
/// assertion (`webauthn`), or the code emailed for an unrecognized device.
///
/// Each wrong code counts: the 5th kills the challenge (`challenge_expired`: sign in with
/// the password again); 10 in a row for one user lock the second step for 15 minutes (429).
/// A TOTP code is accepted once; each recovery code works once.
#[utoipa::path(post, path = "/login/verify", tag = "auth", request_body = VerifyRequest,
    responses(
        (status = 200, body = LoginResponse),
        (status = 401, description = "`invalid_code` (with `attempts_remaining`) or `challenge_expired`", body = ErrorBody),
        (status = 422, description = "`validation_error`: not a code at all, or not a security key's answer", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`, with `Retry-After`", body = ErrorBody),
        (status = 503, description = "`unavailable`, with `Retry-After`: the user's TOTP secret cannot be decrypted by this instance (a master key rolling over); the attempt was not counted", body = ErrorBody),
    ))]
pub async fn verify(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    Json(body): Json<VerifyRequest>,
) -> Result<Json<LoginResponse>, AppError> {
    let second_step = &state.core.second_step;
    let (token, remember) = (&body.challenge_token, body.remember_device);
    let done = match (&body.code, &body.webauthn) {
        (Some(code), None) => second_step.verify(token, code, remember, &meta).await,
        (None, Some(assertion)) => {
            let assertion = assertion.to_string();
            second_step
                .verify_security_key(token, &assertion, remember, &meta)
                .await
        }
        _ => {
            return Err(FieldError::new(
                "code",
                "give either a code or a security key's answer (webauthn)",
            )
            .into());
        }
    }
    .map_err(|e| second_step_error(e, state.core.now()))?;
    let mut response = LoginResponse::signed_in(&done.signed_in, state.core.now());
    let device = done.device_token.map(|t| t.expose().to_owned());
    match &mut response {
        LoginResponse::Authenticated {
            method_used,
            recovery_codes_remaining,
            device_token,
            trusted_until,
            ..
        } => {
            *method_used = Some(done.method.as_str());
            *recovery_codes_remaining = done.recovery_codes_remaining;
            *device_token = device;
            *trusted_until = done.trusted_until.map(Timestamp::to_rfc3339);
        }
        LoginResponse::TwoFactorSetupRequired {
            method_used,
            device_token,
            ..
        } => {
            *method_used = Some(done.method.as_str());
            *device_token = device;
        }
        _ => {}
    }
    Ok(Json(response))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResendRequest {
    pub challenge_token: String,
}

#[derive(Serialize, ToSchema)]
pub struct ResendResponse {
    /// When another code may be asked for.
    pub resend_available_at: String,
}

/// Emails a new code for a device verification (the previous code stops working). At most
/// one every 30 seconds, and 5 an hour per user (sign-ins included).
#[utoipa::path(post, path = "/login/resend", tag = "auth", request_body = ResendRequest,
    responses(
        (status = 202, body = ResendResponse),
        (status = 401, description = "`challenge_expired`", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`, with `Retry-After`", body = ErrorBody),
    ))]
pub async fn resend(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    Json(body): Json<ResendRequest>,
) -> Result<(StatusCode, Json<ResendResponse>), AppError> {
    let next = state
        .core
        .devices
        .resend_code(&body.challenge_token, &meta)
        .await
        .map_err(|e| resend_error(e, state.core.now()))?;
    Ok((
        StatusCode::ACCEPTED,
        Json(ResendResponse {
            resend_available_at: next.to_rfc3339(),
        }),
    ))
}
