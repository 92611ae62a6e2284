//! The team's OpenID Connect clients (SPEC §13): applications that sign the team's users in
//! with Tessera, registered by the account's owner. Listing needs the owner's session;
//! registering and removing are sensitive actions (the step-up window, SPEC §9).

use crate::error::{AppError, ErrorBody, Json};
use crate::extract::{ClientMeta, ManagerSession, Recent};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tessera_core::oidc_provider::ClientRow;
use tessera_core::oidc_provider::clients::{ClientError, NewClient};
use utoipa::ToSchema;

/// A registered application.
#[derive(Serialize, ToSchema)]
pub struct OidcClientBody {
    pub client_id: String,
    pub name: String,
    /// A public client has no secret and must use PKCE.
    pub public: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// `RS256` or `ES256`.
    pub id_token_alg: String,
    pub created_at: String,
}

impl From<&ClientRow> for OidcClientBody {
    fn from(c: &ClientRow) -> Self {
        Self {
            client_id: c.id.clone(),
            name: c.name.clone(),
            public: c.secret_hash.is_none(),
            redirect_uris: c.redirect_uris.clone(),
            post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
            id_token_alg: c.id_token_alg.clone(),
            created_at: c.created_at.to_string(),
        }
    }
}

/// A client just registered, with its secret (shown this once).
#[derive(Serialize, ToSchema)]
pub struct RegisteredClientBody {
    #[serde(flatten)]
    pub client: OidcClientBody,
    /// The client secret of a confidential client; never shown again.
    pub client_secret: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClientRequest {
    #[schema(example = "Wiki")]
    pub name: String,
    /// Where Tessera may send the browser back with a code: absolute http(s) URLs, matched
    /// exactly.
    #[schema(example = json!(["https://wiki.example.com/oauth/callback"]))]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// A single-page or native app: no secret, PKCE required.
    #[serde(default)]
    pub public: bool,
    /// `RS256` (default) or `ES256`.
    pub id_token_alg: Option<String>,
}

impl From<ClientError> for AppError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Invalid(field) => field.into(),
            ClientError::NotFound => AppError::NotFound,
            ClientError::OwnerOnly => {
                AppError::Forbidden("only the account owner can manage the team's OIDC clients")
            }
            ClientError::Internal(e) => AppError::internal(e),
        }
    }
}

/// The applications registered for the team.
#[utoipa::path(get, path = "/account/oidc-clients", tag = "account", security(("session" = [])),
    responses(
        (status = 200, body = Vec<OidcClientBody>),
        (status = 403, description = "`forbidden` (not the owner) or `two_factor_setup_required`", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    ManagerSession(manager): ManagerSession,
) -> Result<Json<Vec<OidcClientBody>>, AppError> {
    let clients = state.core.oidc.team_clients(&manager).await?;
    Ok(Json(clients.iter().map(OidcClientBody::from).collect()))
}

/// Registers an application that signs the team's users in with Tessera.
///
/// Only the team's users can sign in to it. The secret is in this answer only.
#[utoipa::path(post, path = "/account/oidc-clients", tag = "account",
    security(("session" = [])), request_body = NewClientRequest,
    responses(
        (status = 201, body = RegisteredClientBody),
        (status = 403, description = "`forbidden` (not the owner), `two_factor_setup_required` or `reauthentication_required` (no authentication of this session in the last 15 minutes: `POST /me/reauthenticate`)", body = ErrorBody),
        (status = 422, description = "`validation_error`: a name, redirect URI or algorithm that is not valid", body = ErrorBody),
    ))]
pub async fn add(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    Recent(owner): Recent<ManagerSession>,
    Json(body): Json<NewClientRequest>,
) -> Result<(StatusCode, Json<RegisteredClientBody>), AppError> {
    let new = NewClient {
        name: body.name,
        redirect_uris: body.redirect_uris,
        post_logout_redirect_uris: body.post_logout_redirect_uris,
        public: body.public,
        id_token_alg: body.id_token_alg,
    };
    let registered = state.core.oidc.add_team_client(&owner, &new, &meta).await?;
    Ok((
        StatusCode::CREATED,
        Json(RegisteredClientBody {
            client: OidcClientBody::from(&registered.client),
            client_secret: registered.secret.map(|s| s.expose().to_owned()),
        }),
    ))
}

/// Removes one of the team's applications; its tokens stop working.
#[utoipa::path(delete, path = "/account/oidc-clients/{id}", tag = "account",
    security(("session" = [])),
    params(("id" = String, Path, description = "The client id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "`forbidden` (not the owner), `two_factor_setup_required` or `reauthentication_required`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such client of the team", body = ErrorBody),
    ))]
pub async fn remove(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    Recent(owner): Recent<ManagerSession>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    state
        .core
        .oidc
        .remove_team_client(&owner, &id, &meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
