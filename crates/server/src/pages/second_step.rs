//! The code after the password: `/login/2fa` for users with 2FA (authenticator or recovery
//! code), `/login/verify-device` for users without 2FA on a device not recognized (the code
//! emailed to them, with a resend button that honours the wait).

use super::cookies::Cookie;
use super::csrf::{Csrf, CsrfForm};
use super::error::PageError;
use super::ui::{device_cookie, page, return_cookie, signed_in_back, to_login, with_cookies};
use super::{Empty, PageSession};
use crate::extract::ClientMeta;
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tessera_core::devices::ResendError;
use tessera_core::second_step::SecondStepError;

#[derive(Template)]
#[template(path = "login_2fa.html")]
struct CodePage {
    csrf: String,
    error: Option<String>,
    /// Days "Don't ask again on this device" lasts (0: not offered).
    trust_days: i64,
    /// The box was ticked (kept when a code is turned down).
    remember: bool,
    /// The security-key request options (JSON) when the user has keys: the page's script
    /// offers "Use your security key".
    webauthn_options: Option<String>,
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

/// What a step page shows besides the form.
struct Shown {
    status: StatusCode,
    error: Option<String>,
    notice: Option<&'static str>,
    remember: bool,
}

impl Shown {
    fn fresh() -> Self {
        Self {
            status: StatusCode::OK,
            error: None,
            notice: None,
            remember: false,
        }
    }
}

/// The step page, with what went wrong or happened.
async fn step_page(
    state: &AppState,
    step: Step,
    challenge: &str,
    csrf: Csrf,
    shown: Shown,
) -> Response {
    let Shown {
        status,
        error,
        notice,
        remember,
    } = shown;
    match step {
        Step::TwoFactor => {
            let webauthn_options = match state.core.second_step.webauthn_options(challenge).await {
                Ok(options) => options.map(|o| o.to_string()),
                Err(e) => {
                    tracing::error!(error = %e, "cannot read a challenge's security-key options");
                    None
                }
            };
            let template = CodePage {
                webauthn_options,
                csrf: csrf.field.clone(),
                error,
                trust_days: state.core.policy().trusted_device_secs / 86_400,
                remember,
            };
            page(status, &template, csrf)
        }
        Step::Device => {
            let resend_wait = match state.core.devices.resend_wait(challenge).await {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read a device challenge");
                    0
                }
            };
            let policy = state.core.policy();
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
    session: Option<tessera_core::principal::AnySession>,
    headers: &HeaderMap,
    csrf: Csrf,
) -> Response {
    if session.is_some() {
        return Redirect::to("/").into_response();
    }
    let Some(challenge) = state.cookies.get(headers, Cookie::Challenge) else {
        return to_login();
    };
    step_page(state, step, &challenge, csrf, Shown::fresh()).await
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
    /// A security key's answer (`PublicKeyCredential.toJSON()`), put here by the page's
    /// script instead of a code.
    #[serde(default)]
    webauthn: String,
    /// "Don't ask again on this device" (a ticked box sends `on`).
    #[serde(default)]
    remember_device: Option<String>,
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
    CsrfForm { csrf, .. }: CsrfForm<Empty>,
) -> Response {
    let Some(challenge) = state.cookies.get(&headers, Cookie::Challenge) else {
        return to_login();
    };
    let refused = match state.core.devices.resend_code(&challenge, &meta).await {
        Ok(_) => {
            let shown = Shown {
                notice: Some("A new code is on its way. The previous one no longer works."),
                ..Shown::fresh()
            };
            return step_page(&state, Step::Device, &challenge, csrf, shown).await;
        }
        Err(ResendError::ChallengeExpired) => {
            let clear = state.cookies.clear(Cookie::Challenge);
            return with_cookies(to_login(), [clear]);
        }
        Err(ResendError::TooManyAttempts { retry_at }) => PageError::too_many(
            "Please wait: you can ask for a new code in",
            state.core.now().secs_until(retry_at),
        ),
        Err(ResendError::Internal(e)) => PageError::internal_on_form("page resend failed", e),
    };
    refused
        .or_form(async |status, message| {
            let shown = Shown {
                status,
                error: Some(message),
                ..Shown::fresh()
            };
            step_page(&state, Step::Device, &challenge, csrf, shown).await
        })
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
    let Some(challenge) = state.cookies.get(headers, Cookie::Challenge) else {
        return to_login();
    };
    let clear = state.cookies.clear(Cookie::Challenge);
    let remember = step == Step::TwoFactor && form.remember_device.is_some();
    let second_step = &state.core.second_step;
    let verified = if step == Step::TwoFactor && !form.webauthn.is_empty() {
        second_step
            .verify_security_key(&challenge, &form.webauthn, remember, meta)
            .await
    } else {
        second_step
            .verify(&challenge, &form.code, remember, meta)
            .await
    };
    match verified {
        Ok(done) => {
            let mut set = vec![clear];
            if let Some(device) = &done.device_token {
                set.push(device_cookie(state, device));
            } else if let (Some(until), Some(known)) = (
                done.trusted_until,
                state.cookies.get(headers, Cookie::Device),
            ) {
                // The known device is trusted now: its cookie must last as long.
                let lifetime = state.core.now().secs_until(until);
                let lifetime = lifetime.max(state.core.policy().device_lifetime_secs);
                set.push(state.cookies.set(Cookie::Device, &known, Some(lifetime)));
            }
            set.push(state.cookies.clear(Cookie::ReturnTo));
            let back = return_cookie(state, headers);
            let done = &done.signed_in;
            with_cookies(signed_in_back(state, headers, done, back.as_deref()), set)
        }
        Err(e) => match code_refused(state, step, e) {
            None => with_cookies(to_login(), [clear]),
            Some(refused) => {
                refused
                    .or_form(async |status, message| {
                        let shown = Shown {
                            status,
                            error: Some(message),
                            notice: None,
                            remember,
                        };
                        step_page(state, step, &challenge, csrf, shown).await
                    })
                    .await
            }
        },
    }
}

/// A code the step page turns down, in its words; `None` when the sign-in is over (expired,
/// or no attempts left) and the browser goes back to enter the password again.
fn code_refused(state: &AppState, step: Step, e: SecondStepError) -> Option<PageError> {
    Some(match e {
        SecondStepError::ChallengeExpired
        | SecondStepError::InvalidCode {
            attempts_remaining: 0,
            ..
        } => return None,
        SecondStepError::Invalid(e) => PageError::refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            match step {
                Step::TwoFactor if e.field == "webauthn" => {
                    "Your security key's answer could not be read. Try again, or enter a code."
                }
                Step::TwoFactor => "Enter the 6-digit code from your app, or a recovery code.",
                Step::Device => "Enter the 6-digit code from the email.",
            },
        ),
        SecondStepError::InvalidCode {
            attempts_remaining,
            already_used,
        } => {
            let left = format!(
                "{attempts_remaining} attempt{} left.",
                if attempts_remaining == 1 { "" } else { "s" }
            );
            PageError::refused(
                StatusCode::UNAUTHORIZED,
                if already_used {
                    format!("That code was already used. Wait for the next one in your app. {left}")
                } else {
                    format!("That code is not valid. {left}")
                },
            )
        }
        SecondStepError::TooManyAttempts { retry_at } => PageError::too_many(
            "Too many wrong codes. Try again in",
            state.core.now().secs_until(retry_at),
        ),
        // Not counted, not settled (SPEC §14): the operator is alerted by the log and metric.
        SecondStepError::Internal(e @ tessera_core::Internal::Sealed(_)) => {
            tracing::error!(error = %e, "page second step: a secret cannot be decrypted");
            PageError::refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "Your code cannot be checked by this server right now; nothing was counted. \
                 Try again in a minute.",
            )
        }
        SecondStepError::Internal(e) => PageError::internal_on_form("page second step failed", e),
    })
}
