//! API keys at the HTTP edge (SPEC §11): `Authorization: Bearer tsk_…` on the account API,
//! by grant. [`Caller<G>`] is what an endpoint open to keys takes: a manager's session, or a
//! key holding grant `G`; the core's use case then takes it as `&impl Reads<G>`. A power
//! that amounts to account recovery takes [`Caller<G, RecoveryAdminSession>`] (the session
//! then within the step-up window, with 2FA), which the core takes as an
//! [`Acting<G>`]. A key never reaches the endpoints that take only a session: it is not a
//! session.

use crate::error::AppError;
use crate::extract::{ClientMeta, ManagerSession, RecoveryAdminSession};
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use tessera_core::api_keys::{ApiKeyError, InsufficientGrant, KeyRefused, looks_like_key};
use tessera_core::model::Account;
use tessera_core::principal::grant::InvitationsWrite;
use tessera_core::principal::{ApiKeyPrincipal, Grant, Granted, Reads};
use tessera_core::team::{Acting, Inviter};

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

/// A person's session, as the extractor `S` admits it (a manager's by default), or an API
/// key holding grant `G`.
// Clippy cannot size the generic session (which is as large as the key): one per request.
#[allow(clippy::large_enum_variant)]
pub enum Caller<G, S = ManagerSession> {
    Session(S),
    Key(Granted<G>),
}

impl<G: Grant> Reads<G> for Caller<G> {
    fn account_read(&self) -> &Account {
        match self {
            Self::Session(ManagerSession(manager)) => Reads::<G>::account_read(manager),
            Self::Key(key) => key.account_read(),
        }
    }
}

impl Caller<InvitationsWrite> {
    /// Who invites: the manager, or the key (which invites members only).
    pub fn inviter(&self) -> Inviter<'_> {
        match self {
            Self::Session(ManagerSession(manager)) => Inviter::Manager(manager),
            Self::Key(key) => Inviter::Key(key),
        }
    }
}

impl<G> Caller<G, RecoveryAdminSession> {
    /// Who uses the recovery power: the admin, or the key (as its creator).
    pub fn acting(&self) -> Acting<'_, G> {
        match self {
            Self::Session(RecoveryAdminSession(admin)) => Acting::Admin(admin),
            Self::Key(key) => Acting::Key(key),
        }
    }
}

impl<G, S> FromRequestParts<AppState> for Caller<G, S>
where
    G: Grant + Send,
    S: FromRequestParts<AppState, Rejection = AppError> + Send,
{
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(presented) = presented_key(&parts.headers).map(str::to_owned) else {
            return Ok(Self::Session(S::from_request_parts(parts, state).await?));
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
