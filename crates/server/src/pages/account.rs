//! Sign-up, sign-in, sign-out and the signed-in home page.

use super::activity::EventRow;
use super::csrf::{Csrf, CsrfForm};
use super::{Empty, Moment, Nav, PageSession, PageUser, cookies, render, to_login};
use crate::error::{AppError, login_error};
use crate::extract::ClientMeta;
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tessera_core::auth::{
    LoginInput, LoginOutcome, PendingChallenge, SignedIn, SignupError, SignupInput,
};
use tessera_core::crypto::Token;
use tessera_core::model::RequestMeta;

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
    let max_age = signed_in
        .context
        .session
        .created_at
        .secs_until(signed_in.context.session.expires_at);
    let cookie = cookies::set(
        cookies::SESSION,
        signed_in.token.expose(),
        Some(max_age),
        state.secure_cookies,
    );
    with_cookies(Redirect::to("/").into_response(), [cookie])
}

/// Signs in a user who just chose their password in this browser (sign-up, an accepted
/// invitation), which is recognized from now on: no emailed code when they come back.
pub(super) async fn signed_in_here(
    state: &AppState,
    done: &SignedIn,
    meta: &RequestMeta,
) -> Response {
    let response = signed_in(state, done);
    match state.auth.remember_device(&done.context.user, meta).await {
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
    cookies::set(
        cookies::DEVICE,
        token.expose(),
        Some(state.auth.policy.device_lifetime_secs),
        state.secure_cookies,
    )
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    email: String,
    error: Option<String>,
}

pub async fn login_page(PageSession(session): PageSession, csrf: Csrf) -> Response {
    if session.is_some() {
        return Redirect::to("/").into_response();
    }
    let template = LoginPage {
        csrf: csrf.field.clone(),
        email: String::new(),
        error: None,
    };
    page(StatusCode::OK, &template, csrf)
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
        device_token: cookies::get(&headers, cookies::DEVICE),
    };
    match state.auth.login(input, &meta).await {
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
            let error = login_error(e, state.auth.now());
            let (status, message) = match &error {
                AppError::TooManyAttempts { retry_after_secs } => (
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "Too many attempts. Try again in {}.",
                        minutes(*retry_after_secs)
                    ),
                ),
                AppError::Internal(_) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong. Please try again.".to_owned(),
                ),
                AppError::Validation { .. } => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Enter your email and password.".to_owned(),
                ),
                _ => (
                    StatusCode::UNAUTHORIZED,
                    "Incorrect email or password.".to_owned(),
                ),
            };
            state.metrics.sign_in(error.code());
            if let AppError::Internal(cause) = &error {
                tracing::error!(error = format!("{cause:#}"), "page sign-in failed");
            }
            let template = LoginPage {
                csrf: csrf.field.clone(),
                email: form.email,
                error: Some(message),
            };
            page(status, &template, csrf)
        }
    }
}

/// Holds the challenge in a cookie (never in a URL) and goes to the page that asks for its
/// code.
fn to_step(state: &AppState, pending: &PendingChallenge, path: &str) -> Response {
    let max_age = pending
        .challenge
        .created_at
        .secs_until(pending.challenge.expires_at);
    let cookie = cookies::set(
        cookies::CHALLENGE,
        pending.token.expose(),
        Some(max_age),
        state.secure_cookies,
    );
    with_cookies(Redirect::to(path).into_response(), [cookie])
}

/// "4 minutes", "1 minute", "30 seconds".
pub(super) fn minutes(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s} seconds"),
        s if s < 120 => "1 minute".to_owned(),
        s => format!("{} minutes", (s + 59) / 60),
    }
}

#[derive(Default)]
struct SignupErrors {
    account_name: Option<String>,
    name: Option<String>,
    email: Option<String>,
    password: Option<String>,
}

#[derive(Template)]
#[template(path = "signup.html")]
struct SignupPage {
    csrf: String,
    account_name: String,
    name: String,
    email: String,
    error: Option<String>,
    errors: SignupErrors,
}

pub async fn signup_page(PageSession(session): PageSession, csrf: Csrf) -> Response {
    if session.is_some() {
        return Redirect::to("/").into_response();
    }
    let template = SignupPage {
        csrf: csrf.field.clone(),
        account_name: String::new(),
        name: String::new(),
        email: String::new(),
        error: None,
        errors: SignupErrors::default(),
    };
    page(StatusCode::OK, &template, csrf)
}

#[derive(Deserialize)]
pub struct SignupForm {
    #[serde(default)]
    account_name: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

pub async fn signup(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    CsrfForm { form, csrf }: CsrfForm<SignupForm>,
) -> Response {
    let input = SignupInput {
        account_name: form.account_name.clone(),
        name: form.name.clone(),
        email: form.email.clone(),
        password: form.password.into(),
    };
    let mut errors = SignupErrors::default();
    let (status, error) = match state.auth.signup(input, &meta).await {
        Ok((user, _)) => match state
            .auth
            .open_session(user, &meta, state.auth.now(), "password")
            .await
        {
            Ok(done) => return signed_in_here(&state, &done, &meta).await,
            Err(e) => {
                tracing::error!(error = %e, "cannot sign in a new user");
                return to_login();
            }
        },
        Err(SignupError::Invalid(e)) => {
            let slot = match e.field {
                "account_name" => &mut errors.account_name,
                "name" => &mut errors.name,
                "email" => &mut errors.email,
                _ => &mut errors.password,
            };
            *slot = Some(capitalize(&e.message));
            (StatusCode::UNPROCESSABLE_ENTITY, None)
        }
        Err(SignupError::EmailTaken) => {
            errors.email =
                Some("An account with this email already exists. Sign in instead.".into());
            (StatusCode::CONFLICT, None)
        }
        Err(SignupError::Internal(e)) => {
            tracing::error!(error = %e, "page sign-up failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Some("Something went wrong. Please try again.".to_owned()),
            )
        }
    };
    let template = SignupPage {
        csrf: csrf.field.clone(),
        account_name: form.account_name,
        name: form.name,
        email: form.email,
        error,
        errors,
    };
    page(status, &template, csrf)
}

/// A message for people: first letter up, a full stop at the end.
pub(super) fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect::<String>() + "."
    })
}

pub async fn logout(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    PageSession(session): PageSession,
    CsrfForm { .. }: CsrfForm<Empty>,
) -> Response {
    if let Some(context) = session
        && let Err(e) = state.auth.logout(&context, &meta).await
    {
        tracing::error!(error = %e, "page sign-out failed");
    }
    with_cookies(
        Redirect::to("/login").into_response(),
        [cookies::clear(cookies::SESSION, state.secure_cookies)],
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
    let events = match state.store.user_events(context.user.id, None, 10).await {
        Ok(events) => events.into_iter().map(EventRow::from).collect(),
        Err(e) => {
            tracing::error!(error = %e, "cannot read events for the home page");
            Vec::new()
        }
    };
    let template = HomePage {
        name: context.user.name.clone(),
        nav: Nav::new(&context, &csrf, state.auth.now()),
        account_name: context.account.name.clone(),
        role: context.user.role.to_string(),
        two_factor_policy: if context.account.two_factor_required {
            "Required"
        } else {
            "Optional"
        },
        session_expires: context.session.expires_at.into(),
        events,
    };
    page(StatusCode::OK, &template, csrf)
}
