//! `POST /me/reauthenticate`: step-up ("sudo mode", SPEC §9). Sensitive actions need this
//! session to have authenticated within the last 15 minutes; this proves it again.

use crate::error::{AppError, ErrorBody, Json, reauth_error};
use crate::extract::{AnySession, ClientMeta};
use crate::state::AppState;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use tessera_core::sessions::ReauthInput;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReauthenticateRequest {
    pub password: String,
    /// Required when the user has 2FA: a 6-digit TOTP code or a recovery code.
    pub code: Option<String>,
    /// `totp` or `recovery_code`: which kind `code` is; read from its shape when absent.
    #[schema(example = "totp")]
    pub method: Option<String>,
    /// Instead of `code`: a security key's assertion (`PublicKeyCredential.toJSON()`) to the
    /// options of `POST /me/reauthenticate/options`.
    #[schema(value_type = Option<Object>)]
    pub webauthn: Option<serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
pub struct ReauthOptionsResponse {
    /// `{"publicKey": PublicKeyCredentialRequestOptions}` for the user's security keys;
    /// `null` without keys.
    #[schema(value_type = Option<Object>)]
    pub webauthn_options: Option<serde_json::Value>,
}

/// The security-key options for re-authenticating this session (answer them with
/// `POST /me/reauthenticate` `{password, webauthn}`); asking again replaces them.
#[utoipa::path(post, path = "/me/reauthenticate/options", tag = "me", security(("session" = [])),
    responses((status = 200, body = ReauthOptionsResponse)))]
pub async fn options(
    State(state): State<AppState>,
    AnySession(me): AnySession,
) -> Result<Json<ReauthOptionsResponse>, AppError> {
    let webauthn_options = state.core.sessions.reauthentication_options(&me).await?;
    Ok(Json(ReauthOptionsResponse { webauthn_options }))
}

#[derive(Serialize, ToSchema)]
pub struct ReauthenticateResponse {
    /// Sensitive actions are allowed until then; each one restarts the window.
    pub reauthenticated_until: String,
    /// `password` (a user without 2FA), `totp`, `recovery_code` or `webauthn`.
    pub method_used: &'static str,
    /// Unused recovery codes left, when one was just used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_codes_remaining: Option<i64>,
}

/// Proves again who is behind this session: the password, and with 2FA a code from the
/// authenticator app or a recovery code. Sensitive actions (change password, start 2FA setup,
/// turn 2FA off, new recovery codes, the team's 2FA policy, inviting an admin, deleting a user,
/// resetting a user's 2FA) are then allowed for 15 minutes, each restarting the window.
///
/// Wrong passwords count toward the sign-in lock of the email (10 lock it for 15 minutes),
/// wrong codes toward the second step's lock of the user (likewise); a TOTP code works once,
/// each recovery code once. A session restricted to setting up 2FA may call it too.
#[utoipa::path(post, path = "/me/reauthenticate", tag = "me", security(("session" = [])),
    request_body = ReauthenticateRequest,
    responses(
        (status = 200, body = ReauthenticateResponse),
        (status = 401, description = "`invalid_credentials` (wrong password), `invalid_code`, `unauthenticated` or `session_expired`", body = ErrorBody),
        (status = 422, description = "`validation_error`: `fields.code` (missing with 2FA on, or not a code), `fields.method`, `fields.password`", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`, with `Retry-After`", body = ErrorBody),
    ))]
pub async fn reauthenticate(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    AnySession(me): AnySession,
    Json(body): Json<ReauthenticateRequest>,
) -> Result<Json<ReauthenticateResponse>, AppError> {
    let input = ReauthInput {
        password: body.password.into(),
        code: body.code,
        method: body.method,
        webauthn: body.webauthn.map(|v| v.to_string()),
    };
    let done = state
        .core
        .sessions
        .reauthenticate(&me, input, &meta)
        .await
        .map_err(|e| reauth_error(e, state.core.now()))?;
    Ok(Json(ReauthenticateResponse {
        reauthenticated_until: done.until.to_rfc3339(),
        method_used: done.method.map_or("password", |m| m.as_str()),
        recovery_codes_remaining: done.recovery_codes_remaining,
    }))
}
