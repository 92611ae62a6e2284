//! Sign-in, sign-out and the signed-in home page (sign-up is in [`super::sign_up`]).

use super::activity::EventRow;
use super::cookies::Cookie;
use super::csrf::{Csrf, CsrfForm};
use super::error::PageError;
use super::ui::{Moment, Nav, page, signed_in, with_cookies};
use super::{Empty, PageSession, PageUser};
use crate::extract::ClientMeta;
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tessera_core::sign_in::{LoginError, LoginInput, LoginOutcome, PendingChallenge};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    email: String,
    error: Option<String>,
    /// "Sign in with a passkey" is offered (the public URL is a relying party).
    passkeys: bool,
}

pub async fn login_page(
    State(state): State<AppState>,
    PageSession(session): PageSession,
    csrf: Csrf,
) -> Response {
    if session.is_some() {
        return Redirect::to("/").into_response();
    }
    login_form(&state, csrf, String::new(), StatusCode::OK, None)
}

fn login_form(
    state: &AppState,
    csrf: Csrf,
    email: String,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let template = LoginPage {
        csrf: csrf.field.clone(),
        email,
        error,
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
    match state.core.sign_in.login(input, &meta).await {
        Ok(LoginOutcome::SignedIn(done)) => {
            state.metrics.sign_in("success");
            signed_in(&state, &done)
        }
        Ok(LoginOutcome::SecondStep(pending)) => {
            state.metrics.sign_in("second_step");
            to_step(&state, &pending, "/login/2fa")
        }
        Ok(LoginOutcome::DeviceVerification(pending)) => {
            state.metrics.sign_in("device_verification");
            to_step(&state, &pending, "/login/verify-device")
        }
        Err(e) => {
            let (label, refused) = login_refused(&state, e);
            state.metrics.sign_in(label);
            refused
                .or_form(async |status, message| {
                    login_form(&state, csrf, form.email, status, Some(message))
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
/// code.
fn to_step(state: &AppState, pending: &PendingChallenge, path: &str) -> Response {
    let max_age = pending
        .challenge
        .created_at
        .secs_until(pending.challenge.expires_at);
    let cookie = state
        .cookies
        .set(Cookie::Challenge, pending.token.expose(), Some(max_age));
    with_cookies(Redirect::to(path).into_response(), [cookie])
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
