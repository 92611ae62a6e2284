//! `/login/2fa`: the code after the password, for users with 2FA.

use super::account::{minutes, page, signed_in, with_cookies};
use super::csrf::{Csrf, CsrfForm};
use super::{PageSession, cookies};
use crate::app::AppState;
use crate::extract::ClientMeta;
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tessera_core::second_step::SecondStepError;

#[derive(Template)]
#[template(path = "login_2fa.html")]
struct CodePage {
    csrf: String,
    error: Option<String>,
}

pub async fn code_page(
    PageSession(session): PageSession,
    headers: HeaderMap,
    csrf: Csrf,
) -> Response {
    if session.is_some() {
        return Redirect::to("/").into_response();
    }
    if cookies::get(&headers, cookies::CHALLENGE).is_none() {
        return Redirect::to("/login").into_response();
    }
    let template = CodePage {
        csrf: csrf.field.clone(),
        error: None,
    };
    page(StatusCode::OK, &template, csrf)
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
    let Some(challenge) = cookies::get(&headers, cookies::CHALLENGE) else {
        return Redirect::to("/login").into_response();
    };
    let clear = cookies::clear(cookies::CHALLENGE, state.secure_cookies);
    let (status, message) = match state
        .auth
        .verify_second_step(&challenge, &form.code, &meta)
        .await
    {
        Ok(done) => return with_cookies(signed_in(&state, &done.signed_in), [clear]),
        Err(SecondStepError::ChallengeExpired) => {
            return with_cookies(Redirect::to("/login").into_response(), [clear]);
        }
        Err(SecondStepError::Invalid(_)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Enter the 6-digit code from your app, or a recovery code.".to_owned(),
        ),
        Err(SecondStepError::InvalidCode { attempts_remaining }) => {
            if attempts_remaining == 0 {
                return with_cookies(Redirect::to("/login").into_response(), [clear]);
            }
            (
                StatusCode::UNAUTHORIZED,
                format!(
                    "That code is not valid. {attempts_remaining} attempt{} left.",
                    if attempts_remaining == 1 { "" } else { "s" }
                ),
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
    let template = CodePage {
        csrf: csrf.field.clone(),
        error: Some(message),
    };
    page(status, &template, csrf)
}
