//! The web control panel: server-rendered pages that work without JavaScript, protected by
//! CSRF tokens, signed in through an `HttpOnly` session cookie.

mod account;
pub mod cookies;
mod csrf;
mod second_step;
mod security;

use crate::app::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tessera_core::crypto::Token;
use tessera_core::store::SessionContext;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(account::home))
        .route("/login", get(account::login_page).post(account::login))
        .route(
            "/login/2fa",
            get(second_step::code_page).post(second_step::verify),
        )
        .route("/signup", get(account::signup_page).post(account::signup))
        .route("/logout", axum::routing::post(account::logout))
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

/// Sends the browser to the sign-in page.
pub(crate) fn to_login() -> Response {
    Redirect::to("/login").into_response()
}
