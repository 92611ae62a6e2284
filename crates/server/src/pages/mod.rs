//! The web control panel: server-rendered pages that work without JavaScript, protected by
//! CSRF tokens, signed in through an `HttpOnly` session cookie.

mod account;
mod activity;
pub mod cookies;
mod csrf;
mod devices;
mod second_step;
mod security;
mod team;

use crate::state::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tessera_core::crypto::Token;
use tessera_core::model::Role;
use tessera_core::store::SessionContext;
use tessera_core::team::Manager;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(account::home))
        .route("/login", get(account::login_page).post(account::login))
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
        .route("/signup", get(account::signup_page).post(account::signup))
        .route("/logout", post(account::logout))
        .route("/settings/security", get(security::show))
        .route("/settings/security/setup", post(security::setup))
        .route("/settings/security/activate", post(security::activate))
        .route("/settings/security/disable", post(security::disable))
        .route(
            "/settings/security/recovery-codes",
            post(security::regenerate),
        )
        .route("/settings/security/download", post(security::download))
        .route(
            "/recover",
            get(security::recover_page).post(security::recover),
        )
        .route("/settings/activity", get(activity::mine))
        .route("/settings/devices", get(devices::show))
        .route(
            "/settings/devices/{id}/forget",
            post(devices::forget_device),
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
        .route("/invitations/accept", post(team::accept))
        .route("/invitations/{token}", get(team::invitation))
        .route("/static/tessera.css", get(stylesheet))
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

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    title: &'a str,
    message: &'a str,
}

/// A page with a heading and one message (errors, notices).
pub fn message_page(status: StatusCode, title: &str, message: &str) -> Response {
    (status, render(&MessagePage { title, message })).into_response()
}

/// Unknown paths: JSON under `/api/`, a page elsewhere.
pub async fn not_found(OriginalUri(uri): OriginalUri) -> Response {
    if uri.path().starts_with("/api/") {
        crate::error::AppError::NotFound.into_response()
    } else {
        message_page(
            StatusCode::NOT_FOUND,
            "Page not found",
            "There is nothing at this address.",
        )
    }
}

/// Renders a template; a template that fails to render is a bug, answered as a 500 page.
fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong.").into_response()
        }
    }
}

/// The signed-in user of a page request, from the session cookie.
pub struct PageSession(pub Option<SessionContext>);

impl FromRequestParts<AppState> for PageSession {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(token) = cookies::get(&parts.headers, cookies::SESSION) else {
            return Ok(Self(None));
        };
        match state
            .auth
            .authenticate(&Token::from_client(&token).hash())
            .await
        {
            Ok(context) => Ok(Self(Some(context))),
            Err(tessera_core::auth::SessionError::Unauthenticated) => Ok(Self(None)),
            Err(e) => {
                tracing::error!(error = %e, "cannot look up a page session");
                Err(message_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "Please try again in a moment.",
                ))
            }
        }
    }
}

/// A form with no fields but its CSRF token (a button).
#[derive(serde::Deserialize)]
pub struct Empty {}

/// A signed-in user whose session may do everything. Without a session the browser is sent
/// to sign in; a session that may only set up 2FA is sent to the security page to do that.
pub struct PageUser(pub SessionContext);

impl FromRequestParts<AppState> for PageUser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match PageSession::from_request_parts(parts, state).await?.0 {
            None => Err(to_login()),
            Some(context) if context.setup_only(state.auth.now()) => {
                Err(Redirect::to("/settings/security").into_response())
            }
            Some(context) => Ok(Self(context)),
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
        Manager::new(context, state.auth.now())
            .map(Self)
            .map_err(|_| {
                message_page(
                    StatusCode::FORBIDDEN,
                    "Only for the team's owner and admins",
                    "Ask the owner or an admin of your team to make this change.",
                )
            })
    }
}

/// A moment as pages show it: readable text, machine-readable `datetime`.
pub(crate) struct Moment {
    pub iso: String,
    pub text: String,
}

impl From<tessera_core::Timestamp> for Moment {
    fn from(t: tessera_core::Timestamp) -> Self {
        Self {
            iso: t.to_rfc3339(),
            text: t.to_human(),
        }
    }
}

/// What the navigation bar shows: links a restricted session may not follow are hidden, and
/// the team pages only for the owner and admins.
pub(crate) struct Nav {
    pub csrf: String,
    pub email: String,
    pub manager: bool,
    pub restricted: bool,
}

impl Nav {
    pub fn new(context: &SessionContext, csrf: &csrf::Csrf, now: tessera_core::Timestamp) -> Self {
        let restricted = context.setup_only(now);
        Self {
            csrf: csrf.field.clone(),
            email: context.user.email.as_str().to_owned(),
            manager: !restricted && matches!(context.user.role, Role::Owner | Role::Admin),
            restricted,
        }
    }
}

/// Sends the browser to the sign-in page.
pub(crate) fn to_login() -> Response {
    Redirect::to("/login").into_response()
}
