//! Sign-in, sign-out and the signed-in home page (sign-up is in [`super::sign_up`]).

use super::activity::EventRow;
use super::cookies::Cookie;
use super::csrf::{Csrf, CsrfForm};
use super::error::PageError;
use super::ui::{Moment, Nav, page, signed_in_back, with_cookies};
use super::{Empty, PageSession, PageUser};
use crate::extract::ClientMeta;
use crate::state::AppState;
use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tessera_core::crypto::b64;
use tessera_core::sign_in::{LoginError, LoginInput, LoginOutcome, PendingChallenge};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    email: String,
    error: Option<String>,
    /// Where to go after signing in (checked), kept through the form.
    return_to: String,
    /// "Sign in with a passkey" is offered (the public URL is a relying party).
    passkeys: bool,
}

/// `/login?return_to=…`: where the gate (SPEC §11) or a page sends a browser to sign in
/// and come back. Only a local path or an allowed origin is kept ([`crate::return_to`]).
/// `?email=`: the address to fill in (an application's `login_hint`). A query that says
/// nothing usable is ignored, never refused.
fn query_value(query: Option<&str>, name: &str) -> String {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query.unwrap_or_default())
        .unwrap_or_default()
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
        .unwrap_or_default()
}

pub async fn login_page(
    State(state): State<AppState>,
    PageSession(session): PageSession,
    RawQuery(query): RawQuery,
    csrf: Csrf,
) -> Response {
    let back = state
        .return_origins
        .check(&query_value(query.as_deref(), "return_to"));
    if let Some(session) = session {
        // Signed in already: straight back, unless the session must set up 2FA first.
        let to = back.filter(|_| !session.setup_only());
        return Redirect::to(to.as_deref().unwrap_or("/")).into_response();
    }
    login_form(
        &state,
        csrf,
        query_value(query.as_deref(), "email"),
        StatusCode::OK,
        None,
        back.unwrap_or_default(),
    )
}

pub(super) fn login_form(
    state: &AppState,
    csrf: Csrf,
    email: String,
    status: StatusCode,
    error: Option<String>,
    return_to: String,
) -> Response {
    let template = LoginPage {
        csrf: csrf.field.clone(),
        email,
        error,
        return_to,
        passkeys: state.core.webauthn_available(),
    };
    page(status, &template, csrf)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    return_to: String,
}

pub async fn login(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    headers: HeaderMap,
    CsrfForm { form, csrf }: CsrfForm<LoginForm>,
) -> Response {
    let input = LoginInput {
        email: form.email.clone(),
        password: form.password.into(),
        device_token: state.cookies.get(&headers, Cookie::Device),
    };
    let back = state.return_origins.check(&form.return_to);
    match state.core.sign_in.login(input, &meta).await {
        Ok(LoginOutcome::SignedIn(done)) => {
            state.metrics.sign_in("success");
            signed_in_back(&state, &headers, &done, back.as_deref())
        }
        Ok(LoginOutcome::SecondStep(pending)) => {
            state.metrics.sign_in("second_step");
            to_step(&state, &pending, "/login/2fa", back.as_deref())
        }
        Ok(LoginOutcome::DeviceVerification(pending)) => {
            state.metrics.sign_in("device_verification");
            to_step(&state, &pending, "/login/verify-device", back.as_deref())
        }
        Err(e) => {
            let (label, refused) = login_refused(&state, e);
            state.metrics.sign_in(label);
            refused
                .or_form(async |status, message| {
                    let back = back.unwrap_or_default();
                    login_form(&state, csrf, form.email, status, Some(message), back)
                })
                .await
        }
    }
}

/// A refused sign-in: its metrics label (the API's error code for it) and the words on the
/// form.
fn login_refused(state: &AppState, e: LoginError) -> (&'static str, PageError) {
    match e {
        LoginError::TooManyAttempts { retry_at } => (
            "too_many_attempts",
            PageError::too_many(
                "Too many attempts. Try again in",
                state.core.now().secs_until(retry_at).max(1),
            ),
        ),
        LoginError::Internal(cause) => {
            let code = if tessera_core::store::is_unavailable(&cause) {
                "unavailable"
            } else {
                "internal_error"
            };
            (
                code,
                PageError::internal_on_form("page sign-in failed", cause),
            )
        }
        LoginError::Invalid(_) => (
            "validation_error",
            PageError::refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Enter your email and password.",
            ),
        ),
        LoginError::InvalidCredentials => (
            "invalid_credentials",
            PageError::refused(StatusCode::UNAUTHORIZED, "Incorrect email or password."),
        ),
    }
}

/// Holds the challenge in a cookie (never in a URL) and goes to the page that asks for its
/// code; where to go back after it (`back`, checked) waits in a cookie as long.
pub(super) fn to_step(
    state: &AppState,
    pending: &PendingChallenge,
    path: &str,
    back: Option<&str>,
) -> Response {
    let max_age = pending
        .challenge
        .created_at
        .secs_until(pending.challenge.expires_at);
    let mut cookies =
        vec![
            state
                .cookies
                .set(Cookie::Challenge, pending.token.expose(), Some(max_age)),
        ];
    cookies.push(match back {
        Some(back) => state
            .cookies
            .set(Cookie::ReturnTo, &b64(back.as_bytes()), Some(max_age)),
        None => state.cookies.clear(Cookie::ReturnTo),
    });
    with_cookies(Redirect::to(path).into_response(), cookies)
}

pub async fn logout(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    PageSession(session): PageSession,
    CsrfForm { .. }: CsrfForm<Empty>,
) -> Response {
    if let Some(context) = session
        && let Err(e) = state.core.sessions.logout(&context, &meta).await
    {
        tracing::error!(error = %e, "page sign-out failed");
    }
    with_cookies(
        Redirect::to("/login").into_response(),
        [state.cookies.clear(Cookie::Session)],
    )
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    nav: Nav,
    name: String,
    account_name: String,
    role: String,
    two_factor_policy: &'static str,
    session_expires: Moment,
    events: Vec<EventRow>,
}

pub async fn home(
    State(state): State<AppState>,
    PageUser(context): PageUser,
    csrf: Csrf,
) -> Response {
    let events = match state.core.audit.my_events(&context, None, 10).await {
        Ok(events) => events.into_iter().map(EventRow::from).collect(),
        Err(e) => {
            tracing::error!(error = %e, "cannot read events for the home page");
            Vec::new()
        }
    };
    let template = HomePage {
        name: context.user().name.clone(),
        nav: Nav::new(&context, &csrf),
        account_name: context.account().name.clone(),
        role: context.user().role.to_string(),
        two_factor_policy: if context.account().two_factor_required {
            "Required"
        } else {
            "Optional"
        },
        session_expires: context.session().expires_at.into(),
        events,
    };
    page(StatusCode::OK, &template, csrf)
}
