//! The code after the password: `/login/2fa` for users with 2FA (authenticator or recovery
//! code), `/login/verify-device` for users without 2FA on a device not recognized (the code
//! emailed to them, with a resend button that honours the wait).

use super::account::{device_cookie, minutes, page, signed_in, with_cookies};
use super::csrf::{Csrf, CsrfForm};
use super::{PageSession, cookies};
use crate::extract::ClientMeta;
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tessera_core::device::ResendError;
use tessera_core::second_step::SecondStepError;

#[derive(Template)]
#[template(path = "login_2fa.html")]
struct CodePage {
    csrf: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "login_device.html")]
struct DevicePage {
    csrf: String,
    error: Option<String>,
    notice: Option<&'static str>,
    /// Seconds until a new code may be asked for (0: now).
    resend_wait: i64,
    code_minutes: i64,
    device_days: i64,
}

/// Which code a step page asks for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    TwoFactor,
    Device,
}

/// The step page, with what went wrong or happened.
async fn step_page(
    state: &AppState,
    step: Step,
    challenge: &str,
    csrf: Csrf,
    status: StatusCode,
    error: Option<String>,
    notice: Option<&'static str>,
) -> Response {
    match step {
        Step::TwoFactor => {
            let template = CodePage {
                csrf: csrf.field.clone(),
                error,
            };
            page(status, &template, csrf)
        }
        Step::Device => {
            let resend_wait = match state.auth.resend_wait(challenge).await {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read a device challenge");
                    0
                }
            };
            let policy = &state.auth.policy;
            let template = DevicePage {
                csrf: csrf.field.clone(),
                error,
                notice,
                resend_wait,
                code_minutes: policy.email_code_lifetime_secs / 60,
                device_days: policy.device_lifetime_secs / 86_400,
            };
            page(status, &template, csrf)
        }
    }
}

async fn show(
    state: &AppState,
    step: Step,
    session: Option<tessera_core::store::SessionContext>,
    headers: &HeaderMap,
    csrf: Csrf,
) -> Response {
    if session.is_some() {
        return Redirect::to("/").into_response();
    }
    let Some(challenge) = cookies::get(headers, cookies::CHALLENGE) else {
        return Redirect::to("/login").into_response();
    };
    step_page(state, step, &challenge, csrf, StatusCode::OK, None, None).await
}

pub async fn code_page(
    State(state): State<AppState>,
    PageSession(session): PageSession,
    headers: HeaderMap,
    csrf: Csrf,
) -> Response {
    show(&state, Step::TwoFactor, session, &headers, csrf).await
}

pub async fn device_page(
    State(state): State<AppState>,
    PageSession(session): PageSession,
    headers: HeaderMap,
    csrf: Csrf,
) -> Response {
    show(&state, Step::Device, session, &headers, csrf).await
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

pub async fn verify(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    headers: HeaderMap,
    CsrfForm { form, csrf }: CsrfForm<CodeForm>,
) -> Response {
    answer(&state, Step::TwoFactor, &meta, &headers, &form, csrf).await
}

pub async fn verify_device(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    headers: HeaderMap,
    CsrfForm { form, csrf }: CsrfForm<CodeForm>,
) -> Response {
    answer(&state, Step::Device, &meta, &headers, &form, csrf).await
}

/// Asks for a new email code.
pub async fn resend_device_code(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    headers: HeaderMap,
    CsrfForm { csrf, .. }: CsrfForm<super::Empty>,
) -> Response {
    let Some(challenge) = cookies::get(&headers, cookies::CHALLENGE) else {
        return Redirect::to("/login").into_response();
    };
    let (status, error, notice) = match state.auth.resend_device_code(&challenge, &meta).await {
        Ok(_) => (
            StatusCode::OK,
            None,
            Some("A new code is on its way. The previous one no longer works."),
        ),
        Err(ResendError::ChallengeExpired) => {
            let clear = cookies::clear(cookies::CHALLENGE, state.secure_cookies);
            return with_cookies(Redirect::to("/login").into_response(), [clear]);
        }
        Err(ResendError::TooManyAttempts { retry_at }) => (
            StatusCode::TOO_MANY_REQUESTS,
            Some(format!(
                "Please wait: you can ask for a new code in {}.",
                minutes(state.auth.now().secs_until(retry_at))
            )),
            None,
        ),
        Err(ResendError::Internal(e)) => {
            tracing::error!(error = %e, "page resend failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Some("Something went wrong. Please try again.".to_owned()),
                None,
            )
        }
    };
    step_page(
        &state,
        Step::Device,
        &challenge,
        csrf,
        status,
        error,
        notice,
    )
    .await
}

async fn answer(
    state: &AppState,
    step: Step,
    meta: &tessera_core::model::RequestMeta,
    headers: &HeaderMap,
    form: &CodeForm,
    csrf: Csrf,
) -> Response {
    let Some(challenge) = cookies::get(headers, cookies::CHALLENGE) else {
        return Redirect::to("/login").into_response();
    };
    let clear = cookies::clear(cookies::CHALLENGE, state.secure_cookies);
    let (status, message) = match state
        .auth
        .verify_second_step(&challenge, &form.code, meta)
        .await
    {
        Ok(done) => {
            let mut set = vec![clear];
            if let Some(device) = &done.device_token {
                set.push(device_cookie(state, device));
            }
            return with_cookies(signed_in(state, &done.signed_in), set);
        }
        Err(SecondStepError::ChallengeExpired) => {
            return with_cookies(Redirect::to("/login").into_response(), [clear]);
        }
        Err(SecondStepError::Invalid(_)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            match step {
                Step::TwoFactor => "Enter the 6-digit code from your app, or a recovery code.",
                Step::Device => "Enter the 6-digit code from the email.",
            }
            .to_owned(),
        ),
        Err(SecondStepError::InvalidCode {
            attempts_remaining,
            already_used,
        }) => {
            if attempts_remaining == 0 {
                return with_cookies(Redirect::to("/login").into_response(), [clear]);
            }
            let left = format!(
                "{attempts_remaining} attempt{} left.",
                if attempts_remaining == 1 { "" } else { "s" }
            );
            (
                StatusCode::UNAUTHORIZED,
                if already_used {
                    format!("That code was already used. Wait for the next one in your app. {left}")
                } else {
                    format!("That code is not valid. {left}")
                },
            )
        }
        Err(SecondStepError::TooManyAttempts { retry_at }) => (
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many wrong codes. Try again in {}.",
                minutes(state.auth.now().secs_until(retry_at))
            ),
        ),
        Err(SecondStepError::Internal(e)) => {
            tracing::error!(error = %e, "page second step failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong. Please try again.".to_owned(),
            )
        }
    };
    step_page(state, step, &challenge, csrf, status, Some(message), None).await
}
