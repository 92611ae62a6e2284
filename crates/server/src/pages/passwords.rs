//! A password's life on the pages (SPEC §8): the change-password form of
//! `/settings/security`, `/password/forgot` (a reset link by email) and
//! `/password/reset/{token}` (a new password with the link).

use super::PageUser;
use super::csrf::{Csrf, CsrfForm};
use super::error::PageError;
use super::two_factor::overview_with;
use super::ui::{capitalize, message_page, page};
use crate::extract::ClientMeta;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tessera_core::Timestamp;
use tessera_core::credentials::{ChangePasswordError, ForgotError, ResetError};

/// Throttled: how long to wait, in words.
fn too_many(state: &AppState, retry_at: Timestamp) -> PageError {
    PageError::too_many(
        "Too many attempts. Try again in",
        state.core.now().secs_until(retry_at),
    )
}

#[derive(Deserialize)]
pub struct ChangeForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
}

/// The change-password form of `/settings/security`.
pub async fn change(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    PageUser(me): PageUser,
    CsrfForm { form, csrf }: CsrfForm<ChangeForm>,
) -> Response {
    // The passwords typed are not kept: the form is shown again, empty.
    let me = match super::step_up::recent(&state, me, "/settings/security") {
        Ok(recent) => recent,
        Err(reauthenticate) => return reauthenticate.into_response(),
    };
    let changed = state
        .core
        .passwords
        .change(
            &me,
            &form.current_password.into(),
            &form.new_password.into(),
            &meta,
        )
        .await;
    let (status, error, new_password_error) = match changed {
        Ok(()) => return Redirect::to("/settings/security?notice=password").into_response(),
        Err(ChangePasswordError::Invalid(e)) if e.field == "new_password" => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Choose another new password.".to_owned(),
            Some(capitalize(&e.message)),
        ),
        Err(ChangePasswordError::Invalid(_)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Enter your current password.".to_owned(),
            None,
        ),
        Err(ChangePasswordError::InvalidCredentials) => (
            StatusCode::UNAUTHORIZED,
            "Your current password is not right.".to_owned(),
            None,
        ),
        Err(ChangePasswordError::TooManyAttempts { retry_at }) => {
            return too_many(&state, retry_at)
                .or_form(async |status, message| {
                    overview_with(&state, &me, csrf, status, (None, Some(message)), None).await
                })
                .await;
        }
        Err(ChangePasswordError::SessionEnded) => return super::ui::to_login(),
        Err(e @ ChangePasswordError::Internal(_)) => {
            return PageError::internal("changing a password failed", e).into_response();
        }
    };
    overview_with(
        &state,
        &me,
        csrf,
        status,
        (None, Some(error)),
        new_password_error,
    )
    .await
}

#[derive(Template)]
#[template(path = "password_forgot.html")]
struct ForgotPage {
    csrf: String,
    email: String,
    error: Option<String>,
    sent: bool,
}

fn forgot_form(csrf: Csrf, email: String, status: StatusCode, error: Option<String>) -> Response {
    let template = ForgotPage {
        csrf: csrf.field.clone(),
        email,
        error,
        sent: false,
    };
    page(status, &template, csrf)
}

pub async fn forgot_page(csrf: Csrf) -> Response {
    forgot_form(csrf, String::new(), StatusCode::OK, None)
}

#[derive(Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    email: String,
}

/// Asks for a reset link: "check your email", whether or not the address is a user's.
pub async fn forgot(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    CsrfForm { form, csrf }: CsrfForm<ForgotForm>,
) -> Response {
    let refused = match state.core.passwords.forgot(&form.email, &meta).await {
        Ok(()) => {
            let template = ForgotPage {
                csrf: csrf.field.clone(),
                email: String::new(),
                error: None,
                sent: true,
            };
            return page(StatusCode::OK, &template, csrf);
        }
        Err(ForgotError::Invalid(_)) => PageError::refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Enter the email you sign in with.",
        ),
        Err(ForgotError::TooManyRequests { retry_at }) => too_many(&state, retry_at),
        Err(e @ ForgotError::Internal(_)) => {
            PageError::internal_on_form("asking for a reset link failed", e)
        }
    };
    refused
        .or_form(async |status, message| forgot_form(csrf, form.email, status, Some(message)))
        .await
}

#[derive(Template)]
#[template(path = "password_reset.html")]
struct ResetPage {
    csrf: String,
    token: String,
    email: String,
    error: Option<String>,
    new_password_error: Option<String>,
}

/// A reset link that cannot be used, on a page of its own.
fn link_page(e: ResetError) -> Response {
    let (status, title, message) = match e {
        ResetError::UsedLink => (
            StatusCode::GONE,
            "This reset link was already used",
            "Each link works once, and a newer password retires it. Ask for a new link if you \
             still need one.",
        ),
        ResetError::ExpiredLink => (
            StatusCode::GONE,
            "This reset link has expired",
            "Links work for one hour. Ask for a new one from the sign-in page.",
        ),
        ResetError::UnknownLink | ResetError::Invalid(_) => (
            StatusCode::NOT_FOUND,
            "This reset link is not valid",
            "Check that you opened the whole link from the email, or ask for a new one from \
             the sign-in page.",
        ),
        e @ ResetError::Internal(_) => {
            return PageError::internal("a reset link page failed", e).into_response();
        }
    };
    message_page(status, title, message)
}

/// The reset form; with `refusal`, why the policy refused the new password, beside it.
fn reset_form(csrf: Csrf, token: String, email: String, refusal: Option<String>) -> Response {
    let status = match refusal {
        Some(_) => StatusCode::UNPROCESSABLE_ENTITY,
        None => StatusCode::OK,
    };
    let template = ResetPage {
        csrf: csrf.field.clone(),
        token,
        email,
        error: refusal
            .is_some()
            .then(|| "Choose another new password.".to_owned()),
        new_password_error: refusal,
    };
    page(status, &template, csrf)
}

/// The form of a reset link, or why the link cannot be used.
pub async fn reset_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    csrf: Csrf,
) -> Response {
    match state.core.passwords.link_user(&token).await {
        Ok(user) => reset_form(csrf, token, user.email.as_str().to_owned(), None),
        Err(e) => link_page(e),
    }
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    new_password: String,
}

/// Sets the new password; then the user signs in with it (their 2FA still asked).
pub async fn reset(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    Path(token): Path<String>,
    CsrfForm { form, csrf }: CsrfForm<ResetForm>,
) -> Response {
    let passwords = &state.core.passwords;
    match passwords
        .reset(&token, &form.new_password.into(), &meta)
        .await
    {
        Ok(()) => message_page(
            StatusCode::OK,
            "Your password is changed",
            "Every session was signed out. Sign in with your new password: if you use \
             two-factor authentication, it is asked as before.",
        ),
        Err(ResetError::Invalid(e)) => match passwords.link_user(&token).await {
            Ok(user) => {
                let refusal = Some(capitalize(&e.message));
                reset_form(csrf, token, user.email.as_str().to_owned(), refusal)
            }
            Err(e) => link_page(e),
        },
        Err(e) => link_page(e),
    }
}
