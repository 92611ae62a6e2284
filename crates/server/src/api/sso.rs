//! Single sign-on (SPEC §12): the team's settings (`GET`/`PUT /account/sso`) and starting a
//! sign-in for API clients (`POST /login/sso`). The provider sends the person back to the
//! page `/login/sso/callback`, which signs the browser in.

use crate::error::{AppError, ErrorBody, Json};
use crate::extract::{ClientMeta, ManagerSession, RecoveryAdminSession};
use crate::state::AppState;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use tessera_core::sso::{SsoSettings, SsoSettingsInput};
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct SsoSettingsBody {
    /// Whether the team has an identity provider connected.
    pub configured: bool,
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    /// The client secret is never shown again; this says whether one is stored.
    pub client_secret_set: bool,
    pub email_domains: Vec<String>,
    pub jit_provisioning: bool,
    /// `exempt` (SSO users are outside the 2FA requirement) or `disable_sso` (SSO sign-in is
    /// off while the team requires 2FA).
    pub sso_two_factor: &'static str,
    /// The redirect URI to register at the provider.
    pub redirect_uri: String,
    pub updated_at: Option<String>,
}

impl SsoSettingsBody {
    fn new(settings: Option<SsoSettings>, mode: &'static str, redirect_uri: &str) -> Self {
        let redirect_uri = redirect_uri.to_owned();
        match settings {
            Some(s) => Self {
                configured: true,
                issuer: Some(s.issuer),
                client_id: Some(s.client_id),
                client_secret_set: true,
                email_domains: s.email_domains,
                jit_provisioning: s.jit_provisioning,
                sso_two_factor: s.sso_two_factor.as_str(),
                redirect_uri,
                updated_at: Some(s.updated_at.to_rfc3339()),
            },
            None => Self {
                configured: false,
                issuer: None,
                client_id: None,
                client_secret_set: false,
                email_domains: Vec::new(),
                jit_provisioning: false,
                sso_two_factor: mode,
                redirect_uri,
                updated_at: None,
            },
        }
    }
}

/// The team's single sign-on settings (never the client secret).
#[utoipa::path(get, path = "/account/sso", tag = "account", security(("session" = [])),
    responses(
        (status = 200, body = SsoSettingsBody),
        (status = 403, description = "`forbidden` (members) or `two_factor_setup_required`", body = ErrorBody),
    ))]
pub async fn settings(
    State(state): State<AppState>,
    ManagerSession(manager): ManagerSession,
) -> Result<Json<SsoSettingsBody>, AppError> {
    let mode = manager.account().sso_two_factor.as_str();
    let settings = state.core.sso.settings(&manager).await?;
    Ok(Json(SsoSettingsBody::new(
        settings,
        mode,
        &state.sso_redirect_uri,
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SsoSettingsRequest {
    /// The provider's issuer URL (https; http only for localhost), as in its discovery
    /// document: `https://id.example.com/realms/acme`.
    #[schema(example = "https://id.example.com/realms/acme")]
    pub issuer: String,
    pub client_id: String,
    /// Required the first time; left out (or empty), the stored secret is kept.
    pub client_secret: Option<String>,
    /// The domains whose addresses sign in through this provider (at least one).
    #[schema(example = json!(["example.com"]))]
    pub email_domains: Vec<String>,
    /// Whether a first sign-in by an unknown address of these domains creates a member.
    #[serde(default)]
    pub jit_provisioning: bool,
    /// `exempt` (default) or `disable_sso`.
    pub sso_two_factor: Option<String>,
}

/// Connects the team's identity provider, or changes its settings.
///
/// Tessera reads the provider's discovery document first: an issuer it cannot use is refused
/// with `validation_error` on `issuer`, in words.
#[utoipa::path(put, path = "/account/sso", tag = "account", security(("session" = [])),
    request_body = SsoSettingsRequest,
    responses(
        (status = 200, body = SsoSettingsBody),
        (status = 403, description = "`forbidden` (members), `two_factor_setup_required`, `admin_two_factor_required` (the caller has no 2FA and `TESSERA_ADMIN_REQUIRES_2FA` is on) or `reauthentication_required` (no authentication of this session in the last 15 minutes: `POST /me/reauthenticate`)", body = ErrorBody),
        (status = 422, description = "`validation_error`: a bad issuer (or one whose discovery document cannot be used), client id, secret, domain (or one another team uses) or mode", body = ErrorBody),
    ))]
pub async fn configure(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    RecoveryAdminSession(admin): RecoveryAdminSession,
    Json(body): Json<SsoSettingsRequest>,
) -> Result<Json<SsoSettingsBody>, AppError> {
    let input = SsoSettingsInput {
        issuer: body.issuer,
        client_id: body.client_id,
        client_secret: body.client_secret.map(Into::into),
        email_domains: body.email_domains,
        jit_provisioning: body.jit_provisioning,
        sso_two_factor: body.sso_two_factor.unwrap_or_else(|| "exempt".to_owned()),
    };
    let settings = state.core.sso.configure(&admin, input, &meta).await?;
    let mode = settings.sso_two_factor.as_str();
    Ok(Json(SsoSettingsBody::new(
        Some(settings),
        mode,
        &state.sso_redirect_uri,
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SsoStartRequest {
    pub email: String,
}

#[derive(Serialize, ToSchema)]
pub struct SsoStartBody {
    /// Open this in the person's browser: after the provider, `/login/sso/callback` signs
    /// that browser in (valid 10 minutes, once).
    pub authorization_url: String,
}

/// Starts a single sign-on for an email: its domain selects the team's identity provider.
#[utoipa::path(post, path = "/login/sso", tag = "auth", request_body = SsoStartRequest,
    responses(
        (status = 200, body = SsoStartBody),
        (status = 403, description = "`sso_disabled`: the team requires 2FA and turns SSO off meanwhile (`disable_sso`): sign in with a password", body = ErrorBody),
        (status = 404, description = "`sso_not_configured`: no team signs in with SSO for this email's domain", body = ErrorBody),
        (status = 422, description = "`validation_error`: not an email", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: too many sign-ins started from this address (50 in 10 minutes, with failed password sign-ins) without finishing; with `Retry-After`", body = ErrorBody),
        (status = 502, description = "`sso_provider_unreachable`: the identity provider cannot be reached", body = ErrorBody),
    ))]
pub async fn start(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    Json(body): Json<SsoStartRequest>,
) -> Result<Json<SsoStartBody>, AppError> {
    let started = state.core.sso.start(&body.email, false, &meta).await?;
    Ok(Json(SsoStartBody {
        authorization_url: started.url,
    }))
}
