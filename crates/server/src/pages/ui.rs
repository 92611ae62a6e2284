//! What every page is made with: rendering a template with its cookies, the message page, the
//! navigation bar, moments, durations and sentences as people read them, and signing a
//! browser in.

use super::cookies::Cookie;
use super::csrf::Csrf;
use crate::state::AppState;
use askama::Template;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use tessera_core::crypto::Token;
use tessera_core::model::{RequestMeta, Role};
use tessera_core::principal::AnySession;
use tessera_core::sessions::SignedIn;

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

/// Renders a template; a template that fails to render is a bug, answered as a 500 page.
pub(super) fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong.").into_response()
        }
    }
}

/// Attaches the cookies a response must set.
pub(super) fn with_cookies(
    mut response: Response,
    cookies: impl IntoIterator<Item = String>,
) -> Response {
    for cookie in cookies {
        if let Ok(value) = cookie.parse() {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

pub(super) fn page(status: StatusCode, template: &impl Template, csrf: Csrf) -> Response {
    with_cookies((status, render(template)).into_response(), csrf.new_cookie)
}

/// Signed in: set the session cookie and go home.
pub(super) fn signed_in(state: &AppState, signed_in: &SignedIn) -> Response {
    signed_in_to(state, signed_in, None)
}

/// Signed in: set the session cookie and go to `back` (a `return_to` already checked), or
/// home.
pub(super) fn signed_in_to(state: &AppState, signed_in: &SignedIn, back: Option<&str>) -> Response {
    with_cookies(
        Redirect::to(back.unwrap_or("/")).into_response(),
        [session_cookie(state, signed_in)],
    )
}

fn session_cookie(state: &AppState, signed_in: &SignedIn) -> String {
    let session = &signed_in.context().session;
    let max_age = session.created_at.secs_until(session.expires_at);
    state
        .cookies
        .set(Cookie::Session, signed_in.token().expose(), Some(max_age))
}

/// Where to go back after a sign-in that passed through the second step: the `return_to`
/// kept in its cookie since `/login`, checked again.
pub(super) fn return_cookie(state: &AppState, headers: &axum::http::HeaderMap) -> Option<String> {
    let kept = state.cookies.get(headers, Cookie::ReturnTo)?;
    let text = String::from_utf8(tessera_core::crypto::from_b64(&kept)?).ok()?;
    state.return_origins.check(&text)
}

/// Signed in by any way of signing in: set the session cookie and go back to the
/// application's authorization request that sent the browser to sign in (SPEC §13), else to
/// `back` (a checked `return_to`, SPEC §11), else home.
pub(super) fn signed_in_back(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    done: &SignedIn,
    back: Option<&str>,
) -> Response {
    match super::oauth2::kept_return(state, headers) {
        Some(path) => with_cookies(
            super::oauth2::continue_to(&path, state),
            [session_cookie(state, done)],
        ),
        None => signed_in_to(state, done, back),
    }
}

/// Signs in a user who just chose their password in this browser (sign-up, an accepted
/// invitation), which is recognized from now on: no emailed code when they come back.
pub(super) async fn signed_in_here(
    state: &AppState,
    done: &SignedIn,
    meta: &RequestMeta,
) -> Response {
    let response = signed_in(state, done);
    match state.core.devices.remember(done, meta).await {
        Ok(token) => with_cookies(response, [device_cookie(state, &token)]),
        Err(e) => {
            // Only a convenience: the next sign-in asks for an emailed code instead.
            tracing::warn!(error = %e, "cannot remember the device of a new user");
            response
        }
    }
}

/// The `Set-Cookie` value that keeps a recognized device's token.
pub(super) fn device_cookie(state: &AppState, token: &Token) -> String {
    state.cookies.set(
        Cookie::Device,
        token.expose(),
        Some(state.core.policy().device_lifetime_secs),
    )
}

/// Sends the browser to the sign-in page.
pub(crate) fn to_login() -> Response {
    Redirect::to("/login").into_response()
}

/// "4 minutes", "1 minute", "30 seconds".
pub(super) fn minutes(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s} seconds"),
        s if s < 120 => "1 minute".to_owned(),
        s => format!("{} minutes", (s + 59) / 60),
    }
}

/// A message for people: first letter up, a full stop at the end.
pub(super) fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect::<String>() + "."
    })
}

/// `?notice=…`: which of a page's fixed notices a redirect asks it to show. Each page maps
/// the key to its own text, so nothing typed by anyone is echoed.
#[derive(Deserialize)]
pub struct Notice {
    pub notice: Option<String>,
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
    pub fn new(context: &AnySession, csrf: &Csrf) -> Self {
        Self::restricted_if(context, csrf, context.setup_only())
    }

    /// The bar of a session that just turned 2FA on, which is full from the next request.
    pub fn with_two_factor_on(context: &AnySession, csrf: &Csrf) -> Self {
        Self::restricted_if(context, csrf, false)
    }

    fn restricted_if(context: &AnySession, csrf: &Csrf, restricted: bool) -> Self {
        Self {
            csrf: csrf.field.clone(),
            email: context.user().email.as_str().to_owned(),
            manager: !restricted && matches!(context.user().role, Role::Owner | Role::Admin),
            restricted,
        }
    }
}
