//! API keys at the HTTP edge (SPEC §11): `Authorization: Bearer tsk_…` on the account API,
//! by grant. [`Caller<G>`] is what an endpoint open to keys takes: a manager's session, or a
//! key holding grant `G`; the core's use case then takes it as `&impl Reads<G>`. A key never
//! reaches the endpoints that take a session: it is not a session.

use crate::error::AppError;
use crate::extract::{ClientMeta, ManagerSession};
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use tessera_core::api_keys::{ApiKeyError, InsufficientGrant, KeyRefused, looks_like_key};
use tessera_core::model::Account;
use tessera_core::principal::grant::InvitationsWrite;
use tessera_core::principal::{ApiKeyPrincipal, Grant, Granted, Manager, Reads};
use tessera_core::team::Inviter;

/// The text after `Bearer `, if it is meant as an API key.
pub(crate) fn presented_key(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && looks_like_key(token)).then_some(token)
}

/// The key presented with the request, checked (format, revocation, expiry, allowlist).
pub(crate) async fn authenticate(
    parts: &mut Parts,
    state: &AppState,
    presented: &str,
) -> Result<ApiKeyPrincipal, AppError> {
    let Ok(ClientMeta(meta)) = ClientMeta::from_request_parts(parts, state).await;
    Ok(state.core.api_keys.authenticate(presented, &meta).await?)
}

/// A manager's session, or an API key holding grant `G`.
pub enum Caller<G> {
    Manager(Manager),
    Key(Granted<G>),
}

impl<G: Grant> Reads<G> for Caller<G> {
    fn account_read(&self) -> &Account {
        match self {
            Self::Manager(manager) => Reads::<G>::account_read(manager),
            Self::Key(key) => key.account_read(),
        }
    }
}

impl Caller<InvitationsWrite> {
    /// Who invites: the manager, or the key (which invites members only).
    pub fn inviter(&self) -> Inviter<'_> {
        match self {
            Self::Manager(manager) => Inviter::Manager(manager),
            Self::Key(key) => Inviter::Key(key),
        }
    }
}

impl<G: Grant + Send> FromRequestParts<AppState> for Caller<G> {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(presented) = presented_key(&parts.headers).map(str::to_owned) else {
            let ManagerSession(manager) = ManagerSession::from_request_parts(parts, state).await?;
            return Ok(Self::Manager(manager));
        };
        let key = authenticate(parts, state, &presented).await?;
        let route = parts
            .extensions
            .get::<axum::extract::OriginalUri>()
            .map_or_else(|| parts.uri.path(), |uri| uri.path())
            .to_owned();
        let Ok(ClientMeta(meta)) = ClientMeta::from_request_parts(parts, state).await;
        Ok(Self::Key(
            state.core.api_keys.granted::<G>(key, &route, &meta).await?,
        ))
    }
}

impl From<KeyRefused> for AppError {
    fn from(e: KeyRefused) -> Self {
        match e {
            KeyRefused::Malformed => Self::InvalidApiKey(
                "this is not a valid API key (tsk_ and 40 letters and digits, with a checksum)",
            ),
            KeyRefused::Invalid => Self::InvalidApiKey("this API key is unknown or revoked"),
            KeyRefused::Expired => Self::ApiKeyExpired,
            KeyRefused::IpNotAllowed => Self::IpNotAllowed,
            KeyRefused::TooManyAttempts { wait_secs } => Self::TooManyAttempts {
                retry_after_secs: wait_secs,
            },
            KeyRefused::Internal(e) => e.into(),
        }
    }
}

impl From<InsufficientGrant> for AppError {
    fn from(InsufficientGrant(grant): InsufficientGrant) -> Self {
        Self::InsufficientGrant {
            message: format!("this API key lacks the grant {grant}"),
            grant,
        }
    }
}

impl From<ApiKeyError> for AppError {
    fn from(e: ApiKeyError) -> Self {
        match e {
            ApiKeyError::Invalid(e) => e.into(),
            ApiKeyError::Forbidden(why) => why.into(),
            ApiKeyError::GrantNotHeld(grant) => Self::InsufficientGrant {
                message: format!(
                    "you cannot give the grant {grant}: you may not do what it allows yourself"
                ),
                grant,
            },
            ApiKeyError::NotFound => Self::NotFound,
            ApiKeyError::Internal(e) => e.into(),
        }
    }
}
