//! Security keys and passkeys (SPEC §10): `POST /me/webauthn/register/start` and `/finish`,
//! `GET /me/webauthn`, `DELETE /me/webauthn/{id}`, and passkey sign-in
//! (`POST /login/passkey/start`, `/finish`). The second step's answer with a key is
//! `POST /login/verify` `{challenge_token, webauthn}` ([`super::second_step`]).
//!
//! Options are answered in the JSON form `PublicKeyCredential.parseCreationOptionsFromJSON`
//! and `parseRequestOptionsFromJSON` accept, wrapped as `{"publicKey": …}`; credentials are
//! taken as `PublicKeyCredential.toJSON()` gives them.

use super::path_id as id;
use super::sign_in::LoginResponse;
use crate::error::{AppError, ErrorBody, Json, passkey_error, security_key_error};
use crate::extract::{AnySession, ClientMeta, FullSession, Recent};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tessera_core::factors::webauthn::KeySummary;
use tessera_core::model::SecurityKeyId;
use tessera_core::sessions::SignInMethod;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct RegisterStartResponse {
    /// `{"publicKey": PublicKeyCredentialCreationOptions}`, for
    /// `PublicKeyCredential.parseCreationOptionsFromJSON(options.publicKey)`.
    #[schema(value_type = Object)]
    pub options: Value,
    /// Finish before this.
    pub expires_at: String,
}

/// Starts registering a security key or passkey. A sensitive action: the session must have
/// authenticated in the last 15 minutes. Starting again replaces a pending registration.
#[utoipa::path(post, path = "/me/webauthn/register/start", tag = "two-factor", security(("session" = [])),
    responses(
        (status = 200, body = RegisterStartResponse),
        (status = 403, description = "`reauthentication_required`: `POST /me/reauthenticate` first", body = ErrorBody),
        (status = 409, description = "`webauthn_unavailable`: the public URL has no domain name", body = ErrorBody),
    ))]
pub async fn register_start(
    State(state): State<AppState>,
    Recent(context): Recent<AnySession>,
) -> Result<Json<RegisterStartResponse>, AppError> {
    let started = state
        .core
        .factors
        .start_key_registration(&context)
        .await
        .map_err(security_key_error)?;
    Ok(Json(RegisterStartResponse {
        options: started.options,
        expires_at: started.expires_at.to_rfc3339(),
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct RegisterFinishRequest {
    /// What to call the key (`My YubiKey`): 1 to 64 characters.
    pub name: String,
    /// The authenticator's answer: `PublicKeyCredential.toJSON()` of
    /// `navigator.credentials.create(…)` (unknown members are ignored).
    #[schema(value_type = Object)]
    pub credential: Value,
}

#[derive(Serialize, ToSchema)]
pub struct SecurityKeyBody {
    pub id: String,
    pub name: String,
    pub created_at: String,
    /// When it last answered a second step or signed in; `null` if never.
    pub last_used_at: Option<String>,
}

impl From<KeySummary> for SecurityKeyBody {
    fn from(k: KeySummary) -> Self {
        Self {
            id: k.id.to_string(),
            name: k.name,
            created_at: k.created_at.to_rfc3339(),
            last_used_at: k.last_used_at.map(|t| t.to_rfc3339()),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RegisterFinishResponse {
    pub id: String,
    pub name: String,
    pub created_at: String,
    /// With the first factor only (2FA turned on by this key): ten single-use recovery
    /// codes, shown only now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_codes: Option<Vec<String>>,
    /// With the first factor only: the 64-character paper key, shown only now (it turns 2FA
    /// off on the recovery page).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paper_key: Option<String>,
}

/// Finishes a registration with the authenticator's answer and names the key. A sensitive
/// action. The first factor turns 2FA on and answers the recovery codes and paper key.
#[utoipa::path(post, path = "/me/webauthn/register/finish", tag = "two-factor", security(("session" = [])),
    request_body = RegisterFinishRequest,
    responses(
        (status = 201, body = RegisterFinishResponse),
        (status = 403, description = "`reauthentication_required`", body = ErrorBody),
        (status = 409, description = "`no_pending_registration`, `already_registered` or `webauthn_unavailable`", body = ErrorBody),
        (status = 422, description = "`validation_error`: a bad name, a malformed credential, or one that does not verify", body = ErrorBody),
    ))]
pub async fn register_finish(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    Recent(context): Recent<AnySession>,
    Json(body): Json<RegisterFinishRequest>,
) -> Result<(StatusCode, Json<RegisterFinishResponse>), AppError> {
    let credential = body.credential.to_string();
    let registered = state
        .core
        .factors
        .finish_key_registration(&context, &body.name, &credential, &meta)
        .await
        .map_err(security_key_error)?;
    Ok((
        StatusCode::CREATED,
        Json(RegisterFinishResponse {
            id: registered.key.id.to_string(),
            name: registered.key.name,
            created_at: registered.key.created_at.to_rfc3339(),
            recovery_codes: registered.recovery_codes,
            paper_key: registered.paper_key,
        }),
    ))
}

/// One's security keys and passkeys, oldest first, with when each was last used.
#[utoipa::path(get, path = "/me/webauthn", tag = "two-factor", security(("session" = [])),
    responses((status = 200, body = Vec<SecurityKeyBody>)))]
pub async fn list(
    State(state): State<AppState>,
    AnySession(context): AnySession,
) -> Result<Json<Vec<SecurityKeyBody>>, AppError> {
    let keys = state.core.factors.security_keys(&context).await?;
    Ok(Json(keys.into_iter().map(SecurityKeyBody::from).collect()))
}

/// Removes a security key. A sensitive action. Removing the last factor turns 2FA off (as
/// `POST /me/2fa/disable` does), which a team that requires 2FA refuses.
#[utoipa::path(delete, path = "/me/webauthn/{id}", tag = "two-factor", security(("session" = [])),
    params(("id" = String, Path, description = "Security key id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "`reauthentication_required`, `two_factor_setup_required`, or `forbidden` (the team requires 2FA and this is the last factor)", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn remove(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    Recent(context): Recent<FullSession>,
    Path(key): Path<String>,
) -> Result<StatusCode, AppError> {
    let key = id::<SecurityKeyId>(&key)?;
    state
        .core
        .factors
        .remove_security_key(&context, key, &meta)
        .await
        .map_err(security_key_error)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct PasskeyStartResponse {
    /// `{"publicKey": PublicKeyCredentialRequestOptions}` with no credentials listed, for
    /// `PublicKeyCredential.parseRequestOptionsFromJSON(options.publicKey)`.
    #[schema(value_type = Object)]
    pub options: Value,
    /// Send it back with the assertion to `POST /login/passkey/finish`.
    pub challenge_token: String,
    pub expires_at: String,
}

/// Starts a sign-in with a passkey (no password): the browser asks the authenticator for a
/// discoverable credential of this site, with user verification.
#[utoipa::path(post, path = "/login/passkey/start", tag = "auth",
    responses(
        (status = 200, body = PasskeyStartResponse),
        (status = 409, description = "`webauthn_unavailable`", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: each start counts against the \
            client's address like a failed sign-in (given back when the sign-in succeeds)",
            body = ErrorBody),
    ))]
pub async fn passkey_start(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
) -> Result<Json<PasskeyStartResponse>, AppError> {
    let started = state
        .core
        .passkeys
        .start(&meta)
        .await
        .map_err(|e| passkey_error(e, state.core.now()))?;
    Ok(Json(PasskeyStartResponse {
        options: started.options,
        challenge_token: started.token.expose().to_owned(),
        expires_at: started.expires_at.to_rfc3339(),
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct PasskeyFinishRequest {
    pub challenge_token: String,
    /// The authenticator's assertion: `PublicKeyCredential.toJSON()` of
    /// `navigator.credentials.get(…)`.
    #[schema(value_type = Object)]
    pub credential: Value,
}

/// Signs in with a passkey. It satisfies the team's 2FA requirement (`method_used:
/// "passkey"`). Each start serves one finish; failures count against the client address as
/// wrong passwords do.
#[utoipa::path(post, path = "/login/passkey/finish", tag = "auth", request_body = PasskeyFinishRequest,
    responses(
        (status = 200, body = LoginResponse),
        (status = 401, description = "`invalid_credentials` (not a passkey of ours, or it does not verify) or `challenge_expired`", body = ErrorBody),
        (status = 409, description = "`webauthn_unavailable`", body = ErrorBody),
        (status = 422, description = "`validation_error`: a malformed credential", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`, with `Retry-After`", body = ErrorBody),
    ))]
pub async fn passkey_finish(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    Json(body): Json<PasskeyFinishRequest>,
) -> Result<Json<LoginResponse>, AppError> {
    let credential = body.credential.to_string();
    let signed_in = state
        .core
        .passkeys
        .finish(&body.challenge_token, &credential, &meta)
        .await
        .map_err(|e| passkey_error(e, state.core.now()))?;
    state.metrics.sign_in("success");
    let mut response = LoginResponse::signed_in(&signed_in, state.core.now());
    if let LoginResponse::Authenticated { method_used, .. } = &mut response {
        *method_used = Some(SignInMethod::Passkey.as_str());
    }
    Ok(Json(response))
}
