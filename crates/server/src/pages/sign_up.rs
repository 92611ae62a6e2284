//! Sign-up pages (SPEC §8): `/signup` (its answer depends on the mode: signed in at once,
//! "check your email", or closed) and `/signup/confirm/{token}`, the emailed link, whose
//! button creates the team and signs the person in, remembering the browser. The link's page
//! only shows the sign-up: following it is a form (`POST /signup/confirm`), so a mail
//! scanner fetching the link uses nothing up.

use super::PageSession;
use super::csrf::{Csrf, CsrfForm};
use super::error::{PageError, TRY_AGAIN};
use super::ui::{capitalize, message_page, minutes, page, signed_in_here, to_login};
use crate::extract::ClientMeta;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tessera_core::sign_in::SignupInput;
use tessera_core::sign_up::{ConfirmError, Requested, SignUpError, SignupLink, SignupMode};

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

fn closed() -> Response {
    message_page(
        StatusCode::FORBIDDEN,
        "Sign-up is closed",
        "New teams are created by the operator of this server. Ask them for one; if you \
         already have an account, sign in.",
    )
}

pub async fn signup_page(
    State(state): State<AppState>,
    PageSession(session): PageSession,
    csrf: Csrf,
) -> Response {
    if session.is_some() {
        return Redirect::to("/").into_response();
    }
    if state.core.sign_up.mode() == SignupMode::Closed {
        return closed();
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
    let (status, error) = match state.core.sign_up.request(input, &meta).await {
        Ok(Requested::Created(registered)) => {
            match state.core.sessions.open_registered(registered, &meta).await {
                Ok(done) => return signed_in_here(&state, &done, &meta).await,
                Err(e) => {
                    tracing::error!(error = %e, "cannot sign in a new user");
                    return to_login();
                }
            }
        }
        Ok(Requested::ConfirmationSent) => return check_your_email(&state),
        Err(SignUpError::Invalid(e)) => {
            let slot = match e.field {
                "account_name" => &mut errors.account_name,
                "name" => &mut errors.name,
                "email" => &mut errors.email,
                _ => &mut errors.password,
            };
            *slot = Some(capitalize(&e.message));
            (StatusCode::UNPROCESSABLE_ENTITY, None)
        }
        Err(SignUpError::EmailTaken) => {
            errors.email =
                Some("An account with this email already exists. Sign in instead.".into());
            (StatusCode::CONFLICT, None)
        }
        Err(SignUpError::Closed) => return closed(),
        Err(SignUpError::TooManyAttempts { retry_at }) => {
            let wait = minutes(state.core.now().secs_until(retry_at).max(1));
            let message = format!("Too many sign-ups from your address. Try again in {wait}.");
            (StatusCode::TOO_MANY_REQUESTS, Some(message))
        }
        Err(SignUpError::Internal(e)) => {
            tracing::error!(error = %e, "page sign-up failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(TRY_AGAIN.to_owned()),
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

/// The same page whether or not the email already has a user: the email tells them apart.
fn check_your_email(state: &AppState) -> Response {
    let hours = state.core.policy().signup_lifetime_secs / 3600;
    message_page(
        StatusCode::OK,
        "Check your email",
        &format!(
            "We sent a link to the address you gave. Open it within {hours} hours to create \
             your team and sign in. Nothing is created until you do."
        ),
    )
}

#[derive(Template)]
#[template(path = "signup_confirm.html")]
struct ConfirmPage {
    csrf: String,
    token: String,
    link: SignupLink,
    error: Option<String>,
}

fn confirm_form(
    link: SignupLink,
    token: String,
    csrf: Csrf,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let template = ConfirmPage {
        csrf: csrf.field.clone(),
        token,
        link,
        error,
    };
    page(status, &template, csrf)
}

pub async fn confirm_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    csrf: Csrf,
) -> Response {
    match state.core.sign_up.link(&token).await {
        Ok(link) => confirm_form(link, token, csrf, StatusCode::OK, None),
        Err(e) => PageError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
}

/// Follows the link: the team is created, the person signed in and this browser remembered.
pub async fn confirm(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    CsrfForm { form, csrf }: CsrfForm<ConfirmForm>,
) -> Response {
    let password = form.password.into();
    match state
        .core
        .sign_up
        .confirm(&form.token, Some(&password), &meta)
        .await
    {
        Ok(registered) => match state.core.sessions.open_registered(registered, &meta).await {
            Ok(done) => signed_in_here(&state, &done, &meta).await,
            Err(e) => PageError::internal("a sign-up page failed", e).into_response(),
        },
        Err(ConfirmError::Invalid(field)) => match state.core.sign_up.link(&form.token).await {
            Ok(link) => {
                let error = Some(capitalize(&field.to_string()));
                let status = StatusCode::UNPROCESSABLE_ENTITY;
                confirm_form(link, form.token, csrf, status, error)
            }
            Err(e) => PageError::from(e).into_response(),
        },
        Err(e) => PageError::from(e).into_response(),
    }
}
