//! `POST /me/2fa/setup`, `/activate`, `/disable`, `/recovery-codes`, and the public
//! `POST /recover`.

use crate::error::{AppError, ErrorBody, Json, two_factor_error};
use crate::extract::{AnySession, ClientMeta, FullSession, Recent, refused_here};
use crate::qr;
use crate::state::AppState;
use axum::extract::{OriginalUri, State};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use tessera_core::model::RequestMeta;
use tessera_core::principal;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct SetupResponse {
    /// The base32 key (32 characters).
    pub secret: String,
    /// The key in groups of four, for typing.
    pub secret_formatted: String,
    pub otpauth_uri: String,
    /// A QR code of `otpauth_uri`, as an SVG document.
    pub qr_svg: String,
    /// 64 characters, shown only now: it turns 2FA off on the recovery page.
    pub paper_key: String,
    /// The setup lapses unless activated by then.
    pub expires_at: String,
}

/// Starts setting up an authenticator app (replacing a pending setup). A sensitive action:
/// the session must have authenticated in the last 15 minutes.
#[utoipa::path(post, path = "/me/2fa/setup", tag = "two-factor", security(("session" = [])),
    responses(
        (status = 200, body = SetupResponse),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorBody),
        (status = 403, description = "`reauthentication_required`: `POST /me/reauthenticate` first", body = ErrorBody),
        (status = 409, description = "`already_enabled`", body = ErrorBody),
    ))]
pub async fn setup(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    Recent(context): Recent<AnySession>,
) -> Result<Json<SetupResponse>, AppError> {
    let setup = state
        .core
        .factors
        .start_setup(&context, &meta)
        .await
        .map_err(|e| two_factor_error(e, state.core.now()))?;
    Ok(Json(SetupResponse {
        secret: setup.secret.base32(),
        secret_formatted: setup.secret.base32_grouped(),
        qr_svg: qr::svg(&setup.otpauth_uri),
        otpauth_uri: setup.otpauth_uri,
        paper_key: setup.paper_key,
        expires_at: setup.expires_at.to_rfc3339(),
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct CodeRequest {
    /// The 6-digit code the app shows now.
    pub code: String,
}

#[derive(Serialize, ToSchema)]
pub struct ActivateResponse {
    pub enabled: bool,
    /// Ten single-use codes, shown only now.
    pub recovery_codes: Vec<String>,
}

/// Confirms the pending setup with a code from the app: 2FA is on.
#[utoipa::path(post, path = "/me/2fa/activate", tag = "two-factor", security(("session" = [])),
    request_body = CodeRequest,
    responses(
        (status = 200, body = ActivateResponse),
        (status = 401, description = "`invalid_code` or `unauthenticated`", body = ErrorBody),
        (status = 409, description = "`no_pending_setup` or `already_enabled`", body = ErrorBody),
        (status = 503, description = "`unavailable`, with `Retry-After`: the pending secret cannot be decrypted by this instance (a master key rolling over)", body = ErrorBody),
        (status = 422, description = "`validation_error`", body = ErrorBody),
    ))]
pub async fn activate(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    AnySession(context): AnySession,
    Json(body): Json<CodeRequest>,
) -> Result<Json<ActivateResponse>, AppError> {
    let codes = state
        .core
        .factors
        .activate(&context, &body.code, &meta)
        .await
        .map_err(|e| two_factor_error(e, state.core.now()))?;
    Ok(Json(ActivateResponse {
        enabled: true,
        recovery_codes: codes,
    }))
}

/// `{}` within the step-up window, or the password (which counts as a re-authentication).
#[derive(Deserialize, ToSchema)]
pub struct PasswordRequest {
    pub password: Option<String>,
}

/// The session for a sensitive action with an optional `{password}` body (SPEC §9): with
/// the password, as before; without, within the step-up window.
enum Proof {
    Password(principal::FullSession, SecretString),
    Recent(principal::Recent<principal::FullSession>),
}

async fn proof(
    state: &AppState,
    me: principal::FullSession,
    password: Option<String>,
    route: &OriginalUri,
    meta: &RequestMeta,
) -> Result<Proof, AppError> {
    if let Some(password) = password {
        return Ok(Proof::Password(me, password.into()));
    }
    let who = (*me).clone();
    match state.core.sessions.recent(me) {
        Ok(recent) => Ok(Proof::Recent(recent)),
        Err(why) => Err(refused_here(state, &who, why, route.path(), meta).await),
    }
}

#[derive(Serialize, ToSchema)]
pub struct DisableResponse {
    pub enabled: bool,
}

/// Turns 2FA off. A sensitive action: `{}` within 15 minutes of an authentication of this
/// session, or `{password}` (the password then counts as the re-authentication). The secret,
/// recovery codes and paper key stop working; turning it on again needs a new setup.
#[utoipa::path(post, path = "/me/2fa/disable", tag = "two-factor", security(("session" = [])),
    request_body = PasswordRequest,
    responses(
        (status = 200, body = DisableResponse),
        (status = 401, description = "`invalid_credentials` (wrong password) or `unauthenticated`", body = ErrorBody),
        (status = 403, description = "`reauthentication_required` (no password and no recent authentication), or `forbidden` (the team requires 2FA)", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`", body = ErrorBody),
    ))]
pub async fn disable(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    route: OriginalUri,
    FullSession(context): FullSession,
    Json(body): Json<PasswordRequest>,
) -> Result<Json<DisableResponse>, AppError> {
    let factors = &state.core.factors;
    match proof(&state, context, body.password, &route, &meta).await? {
        Proof::Password(me, password) => factors.disable_with_password(&me, &password, &meta).await,
        Proof::Recent(me) => factors.disable(&me, &meta).await,
    }
    .map_err(|e| two_factor_error(e, state.core.now()))?;
    Ok(Json(DisableResponse { enabled: false }))
}

#[derive(Serialize, ToSchema)]
pub struct RecoveryCodesResponse {
    pub recovery_codes: Vec<String>,
}

/// Generates new recovery codes; the old set stops working. A sensitive action: `{}` within
/// 15 minutes of an authentication of this session, or `{password}`.
#[utoipa::path(post, path = "/me/2fa/recovery-codes", tag = "two-factor", security(("session" = [])),
    request_body = PasswordRequest,
    responses(
        (status = 200, body = RecoveryCodesResponse),
        (status = 401, description = "`invalid_credentials` or `unauthenticated`", body = ErrorBody),
        (status = 403, description = "`reauthentication_required` (no password and no recent authentication)", body = ErrorBody),
        (status = 409, description = "`not_enabled`", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`", body = ErrorBody),
    ))]
pub async fn regenerate(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    route: OriginalUri,
    FullSession(context): FullSession,
    Json(body): Json<PasswordRequest>,
) -> Result<Json<RecoveryCodesResponse>, AppError> {
    let factors = &state.core.factors;
    let codes = match proof(&state, context, body.password, &route, &meta).await? {
        Proof::Password(me, password) => {
            factors
                .regenerate_codes_with_password(&me, &password, &meta)
                .await
        }
        Proof::Recent(me) => factors.regenerate_codes(&me, &meta).await,
    }
    .map_err(|e| two_factor_error(e, state.core.now()))?;
    Ok(Json(RecoveryCodesResponse {
        recovery_codes: codes,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct RecoverRequest {
    pub email: String,
    /// The 64-character paper key from setup (case, spaces and dashes ignored).
    pub paper_key: String,
}

#[derive(Serialize, ToSchema)]
pub struct RecoverResponse {
    pub two_factor_enabled: bool,
}

/// The recovery page: email and paper key turn 2FA off; then sign in with email and
/// password. Wrong answers are throttled per email and per address.
#[utoipa::path(post, path = "/recover", tag = "two-factor", request_body = RecoverRequest,
    responses(
        (status = 200, body = RecoverResponse),
        (status = 401, description = "`invalid_credentials`", body = ErrorBody),
        (status = 422, description = "`validation_error`", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`", body = ErrorBody),
    ))]
pub async fn recover(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    Json(body): Json<RecoverRequest>,
) -> Result<Json<RecoverResponse>, AppError> {
    state
        .core
        .factors
        .recover(&body.email, &body.paper_key, &meta)
        .await
        .map_err(|e| two_factor_error(e, state.core.now()))?;
    Ok(Json(RecoverResponse {
        two_factor_enabled: false,
    }))
}
