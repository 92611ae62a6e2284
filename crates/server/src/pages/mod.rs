//! The web control panel: server-rendered pages that work without JavaScript, protected by
//! CSRF tokens, signed in through an `HttpOnly` session cookie.

mod activity;
mod api_keys;
pub mod cookies;
use cookies::Cookie;
mod csrf;
mod devices;
mod error;
mod invitations;
mod oauth2;
mod oidc_clients;
mod passwords;
mod second_step;
mod security_keys;
mod sign_in;
mod sign_up;
mod sso;
mod step_up;
mod team;
mod two_factor;
mod ui;

use crate::state::AppState;
use axum::Router;
use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use error::PageError;
use tessera_core::crypto::Token;
use tessera_core::principal::{AnySession, FullSession, Manager};
use ui::to_login;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(sign_in::home))
        .route("/login", get(sign_in::login_page).post(sign_in::login))
        .route("/login/sso", get(sso::start))
        .route("/login/sso/callback", get(sso::callback))
        .route("/account/sso", get(sso::settings).post(sso::save))
        .route(
            "/login/2fa",
            get(second_step::code_page).post(second_step::verify),
        )
        .route(
            "/login/verify-device",
            get(second_step::device_page).post(second_step::verify_device),
        )
        .route(
            "/login/verify-device/resend",
            post(second_step::resend_device_code),
        )
        .route("/signup", get(sign_up::signup_page).post(sign_up::signup))
        .route("/signup/confirm", post(sign_up::confirm))
        .route("/signup/confirm/{token}", get(sign_up::confirm_page))
        .route("/logout", post(sign_in::logout))
        .route("/reauthenticate", get(step_up::show).post(step_up::submit))
        .route("/settings/security", get(two_factor::show))
        .route("/settings/security/setup", post(two_factor::setup))
        .route("/settings/security/activate", post(two_factor::activate))
        .route("/settings/security/disable", post(two_factor::disable))
        .route(
            "/settings/security/recovery-codes",
            post(two_factor::regenerate),
        )
        .route("/settings/security/download", post(two_factor::download))
        .route("/settings/security/keys/add", post(security_keys::add))
        .route(
            "/settings/security/keys/finish",
            post(security_keys::finish),
        )
        .route(
            "/settings/security/keys/{id}/remove",
            post(security_keys::remove),
        )
        .route("/login/passkey", post(security_keys::passkey))
        .route("/login/passkey/finish", post(security_keys::passkey_finish))
        .route("/settings/security/password", post(passwords::change))
        .route(
            "/password/forgot",
            get(passwords::forgot_page).post(passwords::forgot),
        )
        .route(
            "/password/reset/{token}",
            get(passwords::reset_page).post(passwords::reset),
        )
        .route(
            "/recover",
            get(two_factor::recover_page).post(two_factor::recover),
        )
        .route("/settings/activity", get(activity::mine))
        .route("/settings/devices", get(devices::show))
        .route(
            "/settings/devices/{id}/forget",
            post(devices::forget_device),
        )
        .route(
            "/settings/devices/{id}/untrust",
            post(devices::stop_trusting_device),
        )
        .route("/settings/sessions/{id}/end", post(devices::end_session))
        .route(
            "/settings/sessions/end-others",
            post(devices::end_other_sessions),
        )
        .route("/account/activity", get(activity::team))
        .route(
            "/account/settings",
            get(team::settings).post(team::save_settings),
        )
        .route(
            "/account/settings/trusted-devices",
            post(team::save_trusted_devices),
        )
        .route(
            "/account/api-keys",
            get(api_keys::show).post(api_keys::create),
        )
        .route("/account/api-keys/{id}/revoke", post(api_keys::revoke))
        .route(
            "/account/oidc-clients",
            get(oidc_clients::show).post(oidc_clients::add),
        )
        .route(
            "/account/oidc-clients/{id}/remove",
            post(oidc_clients::remove),
        )
        .route("/account/users", get(team::users))
        .route("/account/users/invite", post(team::invite))
        .route("/account/users/{id}/delete", post(team::delete_user))
        .route(
            "/account/users/{id}/reset-2fa",
            post(team::reset_two_factor),
        )
        .route(
            "/account/invitations/{id}/revoke",
            post(team::revoke_invitation),
        )
        .route(
            "/oauth2/authorize",
            get(oauth2::authorize_get).post(oauth2::authorize_post),
        )
        .route(
            "/oauth2/logout",
            get(oauth2::logout_get).post(oauth2::logout_post),
        )
        .route("/invitations/accept", post(invitations::accept))
        .route("/invitations/{token}", get(invitations::invitation))
        .route("/static/tessera.css", get(stylesheet))
        .route("/static/tessera.js", get(script))
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/tessera.js"),
    )
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/tessera.css"),
    )
}

/// Unknown paths: JSON under `/api/`, a page elsewhere.
pub async fn not_found(OriginalUri(uri): OriginalUri) -> Response {
    if uri.path().starts_with("/api/") {
        crate::error::AppError::NotFound.into_response()
    } else {
        PageError::NOT_FOUND.into_response()
    }
}

/// The signed-in user of a page request, from the session cookie.
pub struct PageSession(pub Option<AnySession>);

impl FromRequestParts<AppState> for PageSession {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(token) = state.cookies.get(&parts.headers, Cookie::Session) else {
            return Ok(Self(None));
        };
        match state
            .core
            .sessions
            .authenticate(&Token::from_client(&token).hash())
            .await
        {
            Ok(context) => Ok(Self(Some(context))),
            Err(
                tessera_core::sessions::SessionError::Unauthenticated
                | tessera_core::sessions::SessionError::Expired,
            ) => Ok(Self(None)),
            Err(e) => Err(PageError::internal("cannot look up a page session", e).into_response()),
        }
    }
}

/// A form with no fields but its CSRF token (a button).
#[derive(serde::Deserialize)]
pub struct Empty {}

/// A signed-in user whose session may do everything. Without a session the browser is sent
/// to sign in; a session that may only set up 2FA is sent to the security page to do that.
pub struct PageUser(pub FullSession);

impl FromRequestParts<AppState> for PageUser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match PageSession::from_request_parts(parts, state).await?.0 {
            None => Err(to_login()),
            Some(session) => session
                .full()
                .map(Self)
                .map_err(|_| Redirect::to("/settings/security").into_response()),
        }
    }
}

/// The account's owner or an admin: the team pages. Members see a 403 page.
pub struct PageManager(pub Manager);

impl FromRequestParts<AppState> for PageManager {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let PageUser(context) = PageUser::from_request_parts(parts, state).await?;
        match Manager::new(context.clone()) {
            Ok(manager) => Ok(Self(manager)),
            Err(why) => {
                crate::extract::refused(parts, state, &context, why).await;
                Err(PageError::MANAGERS_ONLY.into_response())
            }
        }
    }
}
