//! Who is asking: the client's address and browser, and the session behind a request.
//!
//! What a session may do is decided by which extractor a handler takes, each carrying the
//! core's principal of that name ([`tessera_core::principal`]), which the use cases then
//! require: [`FullSession`] refuses a session that may only set up 2FA, [`AnySession`] (for
//! the endpoints such a session may call) accepts it, and [`ManagerSession`] admits only
//! the account's owner and admins. [`Recent`] wraps any of them for a sensitive action
//! (SPEC §9): the session must have authenticated within the step-up window, else `403
//! reauthentication_required`; [`RecoveryAdminSession`] is a recent manager with 2FA on (the
//! powers that amount to account recovery).

use crate::error::AppError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use std::net::SocketAddr;
use tessera_core::crypto::Token;
use tessera_core::factors::TwoFactorStatus;
use tessera_core::model::RequestMeta;
use tessera_core::principal::{self, Forbidden, Manager, RecoveryAdmin};

/// The longest User-Agent kept in the audit log.
const MAX_USER_AGENT: usize = 512;

/// The client's address and User-Agent.
pub struct ClientMeta(pub RequestMeta);

impl FromRequestParts<AppState> for ClientMeta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let forwarded = state
            .trust_forwarded_for
            .then(|| parts.headers.get_all("x-forwarded-for").iter().next_back())
            .flatten()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(|v| v.trim().to_owned())
            .filter(|v| v.parse::<std::net::IpAddr>().is_ok());
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(MAX_USER_AGENT).collect());
        Ok(Self(RequestMeta {
            ip: forwarded.or(peer),
            user_agent,
        }))
    }
}

/// The API's session token: `Authorization: Bearer …`. The API never reads the session
/// cookie, so a cross-site form cannot act through it; the pages read the cookie and check a
/// CSRF token instead.
fn bearer(parts: &Parts) -> Option<Token> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| Token::from_client(token.trim()))
}

async fn session(parts: &Parts, state: &AppState) -> Result<principal::AnySession, AppError> {
    let token = bearer(parts).ok_or(AppError::Unauthenticated)?;
    Ok(state.core.sessions.authenticate(&token.hash()).await?)
}

/// An API session that may do anything its user's role allows.
pub struct FullSession(pub principal::FullSession);

impl FromRequestParts<AppState> for FullSession {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let session = session(parts, state).await?;
        match session.clone().full() {
            Ok(full) => Ok(Self(full)),
            Err(why) => Err(refused(parts, state, &session, why).await),
        }
    }
}

/// A principal refused (SPEC §8): logged with the route, and audited for the signed-in user
/// (at most once a minute per session); answers the refusal's error.
pub(crate) async fn refused(
    parts: &mut Parts,
    state: &AppState,
    who: &principal::AnySession,
    why: Forbidden,
) -> AppError {
    // Under a nested router the URI lost its prefix; the original one has it.
    let route = parts
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| parts.uri.path(), |uri| uri.path())
        .to_owned();
    let Ok(ClientMeta(meta)) = ClientMeta::from_request_parts(parts, state).await;
    refused_here(state, who, why, &route, &meta).await
}

/// [`refused`], for a refusal a handler decides (the route given).
pub(crate) async fn refused_here(
    state: &AppState,
    who: &principal::AnySession,
    why: Forbidden,
    route: &str,
    meta: &RequestMeta,
) -> AppError {
    tracing::warn!(user_id = %who.user().id, route = %route, reason = ?why, "access refused");
    if let Err(e) = state.core.audit.refused(who, why, route, meta).await {
        tracing::error!(error = %e, "cannot audit a refused request");
    }
    why.into()
}

/// The account's owner or an admin, with a full session: the only callers of the account
/// administration endpoints. Members get `403 forbidden`.
pub struct ManagerSession(pub Manager);

impl FromRequestParts<AppState> for ManagerSession {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let session = session(parts, state).await?;
        let full = match session.clone().full() {
            Ok(full) => full,
            Err(why) => return Err(refused(parts, state, &session, why).await),
        };
        match Manager::new(full) {
            Ok(manager) => Ok(Self(manager)),
            Err(why) => Err(refused(parts, state, &session, why).await),
        }
    }
}

/// [`AnySession`] with its user's 2FA status, read in the same query.
pub struct AnySessionWithStatus(pub principal::AnySession, pub TwoFactorStatus);

impl FromRequestParts<AppState> for AnySessionWithStatus {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or(AppError::Unauthenticated)?;
        let (session, status) = state
            .core
            .sessions
            .authenticate_with_status(&token.hash())
            .await?;
        Ok(Self(session, status))
    }
}

/// Any live API session, including one that may only set up 2FA.
pub struct AnySession(pub principal::AnySession);

impl FromRequestParts<AppState> for AnySession {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        session(parts, state).await.map(Self)
    }
}

/// A principal whose session authenticated within the step-up window (SPEC §9): what a
/// sensitive action's handler takes, as `Recent<FullSession>` or `Recent<AnySession>`.
pub struct Recent<P: Inner>(pub principal::Recent<P::Principal>);

/// An extractor with a principal inside, that [`Recent`] can check.
pub trait Inner: FromRequestParts<AppState, Rejection = AppError> {
    type Principal: principal::Principal + Send;
    fn into_principal(self) -> Self::Principal;
}

impl Inner for FullSession {
    type Principal = principal::FullSession;
    fn into_principal(self) -> Self::Principal {
        self.0
    }
}

impl Inner for ManagerSession {
    type Principal = principal::Manager;
    fn into_principal(self) -> Self::Principal {
        self.0
    }
}

impl Inner for AnySession {
    type Principal = principal::AnySession;
    fn into_principal(self) -> Self::Principal {
        self.0
    }
}

impl<P: Inner + Send> FromRequestParts<AppState> for Recent<P> {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let inner = P::from_request_parts(parts, state).await?.into_principal();
        let who = principal::Principal::any(&inner).clone();
        match state.core.sessions.recent(inner) {
            Ok(recent) => Ok(Self(recent)),
            Err(why) => Err(refused(parts, state, &who, why).await),
        }
    }
}

/// The owner or an admin, within the step-up window and (unless the deployment allows
/// otherwise) with 2FA on: the callers of the powers that amount to account recovery
/// (delete a user, reset their 2FA, the team's 2FA policy; inviting an admin is decided by
/// the core, from the role asked for).
pub struct RecoveryAdminSession(pub RecoveryAdmin);

impl FromRequestParts<AppState> for RecoveryAdminSession {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ManagerSession(manager) = ManagerSession::from_request_parts(parts, state).await?;
        let who = principal::Principal::any(&manager).clone();
        match state.core.team.recovery_admin(manager) {
            Ok(admin) => Ok(Self(admin)),
            Err(why) => Err(refused(parts, state, &who, why).await),
        }
    }
}
