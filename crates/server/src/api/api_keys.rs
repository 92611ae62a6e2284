//! `/account/api-keys` (SPEC §11): the account's API keys, for its owner and admins. Keys
//! themselves cannot manage keys. Creating, changing and revoking one is a sensitive action
//! (within the step-up window, `403 reauthentication_required` otherwise).

use super::path_id as id;
use crate::error::{AppError, ErrorBody, Json};
use crate::extract::{ClientMeta, ManagerSession, Recent};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tessera_core::Timestamp;
use tessera_core::api_keys::{ApiKey, NewApiKey};
use tessera_core::model::ApiKeyId;
use utoipa::ToSchema;

/// A key as listed: never the key itself.
#[derive(Serialize, ToSchema)]
pub struct ApiKeyBody {
    pub id: String,
    pub label: String,
    /// The key's first 8 characters.
    #[schema(example = "tsk_4f9Q")]
    pub prefix: String,
    #[schema(example = json!(["users:read", "messages:send"]))]
    pub grants: Vec<String>,
    /// Addresses and CIDR blocks the key may be used from; empty: anywhere.
    #[schema(example = json!(["203.0.113.0/24", "2001:db8::/32"]))]
    pub allowed_ips: Vec<String>,
    pub created_at: String,
    /// The id of the user who created it.
    pub created_by: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub last_used_ip: Option<String>,
}

impl From<&ApiKey> for ApiKeyBody {
    fn from(k: &ApiKey) -> Self {
        Self {
            id: k.id.to_string(),
            label: k.label.clone(),
            prefix: k.prefix.clone(),
            grants: k.grants.clone(),
            allowed_ips: k.allowed_ips.iter().map(ToString::to_string).collect(),
            created_at: k.created_at.to_rfc3339(),
            created_by: k.created_by.to_string(),
            expires_at: k.expires_at.map(Timestamp::to_rfc3339),
            last_used_at: k.last_used_at.map(Timestamp::to_rfc3339),
            last_used_ip: k.last_used_ip.clone(),
        }
    }
}

/// A new key, with the key itself: shown this once.
#[derive(Serialize, ToSchema)]
pub struct CreatedApiKeyBody {
    /// `tsk_` and 40 base62 characters, the last 6 a CRC32 checksum. Store it now: it is
    /// never shown again.
    #[schema(example = "tsk_4f9QxZk2Vd8Lm3Np7Rt1Wy6Bc0Hj5Gs9Ea2K0e1x3Q")]
    pub key: String,
    #[serde(flatten)]
    pub api_key: ApiKeyBody,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyRequest {
    #[schema(example = "Billing sync")]
    pub label: String,
    /// Tessera's grants (`account:read`, `users:read`, `users:write`, `invitations:write`,
    /// `events:read`, `policy:write`) and the app's (`TESSERA_API_GRANTS`); only ones the
    /// caller may do themselves.
    #[schema(example = json!(["users:read"]))]
    pub grants: Vec<String>,
    /// IPv4 and IPv6 addresses and CIDR blocks; empty or absent: anywhere.
    #[serde(default)]
    #[schema(example = json!(["203.0.113.0/24"]))]
    pub allowed_ips: Vec<String>,
    /// A date (`2027-01-01`) or an RFC 3339 time in the future; absent: never.
    #[serde(default)]
    pub expires_at: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyChangeRequest {
    pub label: String,
    pub grants: Vec<String>,
    #[serde(default)]
    pub allowed_ips: Vec<String>,
}

/// The account's API keys (not revoked), newest first.
#[utoipa::path(get, path = "/account/api-keys", tag = "account", security(("session" = [])),
    responses(
        (status = 200, body = Vec<ApiKeyBody>),
        (status = 403, description = "`forbidden` (members) or `two_factor_setup_required`", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    ManagerSession(manager): ManagerSession,
) -> Result<Json<Vec<ApiKeyBody>>, AppError> {
    let keys = state.core.api_keys.list(&manager).await?;
    Ok(Json(keys.iter().map(ApiKeyBody::from).collect()))
}

/// Creates an API key: the answer holds the key, shown this once. The account's owner is
/// emailed.
#[utoipa::path(post, path = "/account/api-keys", tag = "account", security(("session" = [])),
    request_body = ApiKeyRequest,
    responses(
        (status = 201, body = CreatedApiKeyBody),
        (status = 403, description = "`forbidden` (members), `two_factor_setup_required`, `reauthentication_required` (no authentication of this session in the last 15 minutes: `POST /me/reauthenticate`) or `insufficient_grant` (a grant of something the caller may not do, named in `grant`)", body = ErrorBody),
        (status = 422, description = "`validation_error`: an empty label, no or an unknown grant, a bad address or block, a past expiry", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    Recent(manager): Recent<ManagerSession>,
    Json(body): Json<ApiKeyRequest>,
) -> Result<(StatusCode, Json<CreatedApiKeyBody>), AppError> {
    let input = NewApiKey {
        label: &body.label,
        grants: &body.grants,
        allowed_ips: &body.allowed_ips,
        expires_at: body.expires_at.as_deref(),
    };
    let created = state.core.api_keys.create(&manager, input, &meta).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKeyBody {
            key: created.secret.expose().to_owned(),
            api_key: ApiKeyBody::from(&created.key),
        }),
    ))
}

/// Replaces a key's label, grants and allowed addresses.
#[utoipa::path(put, path = "/account/api-keys/{id}", tag = "account", security(("session" = [])),
    params(("id" = String, Path, description = "API key id")),
    request_body = ApiKeyChangeRequest,
    responses(
        (status = 200, body = ApiKeyBody),
        (status = 403, description = "`forbidden`, `two_factor_setup_required`, `reauthentication_required` or `insufficient_grant`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such key, or it was revoked", body = ErrorBody),
        (status = 422, description = "`validation_error`", body = ErrorBody),
    ))]
pub async fn change(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    Recent(manager): Recent<ManagerSession>,
    Path(key): Path<String>,
    Json(body): Json<ApiKeyChangeRequest>,
) -> Result<Json<ApiKeyBody>, AppError> {
    let input = NewApiKey {
        label: &body.label,
        grants: &body.grants,
        allowed_ips: &body.allowed_ips,
        expires_at: None,
    };
    let changed = state
        .core
        .api_keys
        .change(&manager, id::<ApiKeyId>(&key)?, input, &meta)
        .await?;
    Ok(Json(ApiKeyBody::from(&changed)))
}

/// Revokes a key: once this answers, no request with it succeeds.
#[utoipa::path(delete, path = "/account/api-keys/{id}", tag = "account", security(("session" = [])),
    params(("id" = String, Path, description = "API key id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "`forbidden`, `two_factor_setup_required` or `reauthentication_required`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such key, or it was revoked already", body = ErrorBody),
    ))]
pub async fn revoke(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    Recent(manager): Recent<ManagerSession>,
    Path(key): Path<String>,
) -> Result<StatusCode, AppError> {
    state
        .core
        .api_keys
        .revoke(&manager, id::<ApiKeyId>(&key)?, &meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
