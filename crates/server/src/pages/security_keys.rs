//! Security keys and passkeys on the pages (SPEC §10): adding one (name, then the
//! authenticator, through the page's script), removing one, and "Sign in with a passkey" on
//! `/login`. The second step's "Use your security key" is on `/login/2fa`
//! ([`super::second_step`]). Adding and removing are sensitive (SPEC §9): outside the
//! step-up window they send the browser to `/reauthenticate` and back.

use super::csrf::{Csrf, CsrfForm};
use super::error::PageError;
use super::step_up::recent;
use super::two_factor::overview;
use super::ui::{Nav, page, signed_in_back, to_login};
use super::{Empty, PageSession, PageUser};
use crate::extract::ClientMeta;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tessera_core::factors::totp::group;
use tessera_core::factors::webauthn::{PasskeyError, SecurityKeyError};
use tessera_core::model::SecurityKeyId;
use tessera_core::principal::AnySession;

#[derive(Template)]
#[template(path = "security_key_add.html")]
struct AddPage {
    csrf: String,
    nav: Nav,
    name: String,
    /// The creation options, JSON, for the page's script.
    options: String,
}

#[derive(Template)]
#[template(path = "security_key_added.html")]
struct AddedPage {
    csrf: String,
    nav: Nav,
    name: String,
    codes: Vec<String>,
    codes_joined: String,
    paper_key_formatted: String,
}

#[derive(Template)]
#[template(path = "login_passkey.html")]
struct PasskeyPage {
    csrf: String,
    options: String,
    challenge_token: String,
    /// Where to go once signed in (checked), as on `/login`.
    return_to: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct NameForm {
    #[serde(default)]
    name: String,
}

/// Starts adding a key: the page that asks the authenticator.
pub async fn add(
    State(state): State<AppState>,
    PageSession(session): PageSession,
    CsrfForm { form, csrf }: CsrfForm<NameForm>,
) -> Response {
    let Some(context) = session else {
        return to_login();
    };
    let context = match recent(&state, context, "/settings/security") {
        Ok(recent) => recent,
        Err(reauthenticate) => return reauthenticate.into_response(),
    };
    if let Err(e) = tessera_core::validate::name("name", &form.name) {
        let message = format!("Name your key: it {}.", e.message);
        return overview(
            &state,
            &context,
            csrf,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some(message),
        )
        .await;
    }
    match state.core.factors.start_key_registration(&context).await {
        Ok(started) => {
            let template = AddPage {
                csrf: csrf.field.clone(),
                nav: Nav::new(&context, &csrf),
                name: form.name.trim().to_owned(),
                options: started.options.to_string(),
            };
            page(StatusCode::OK, &template, csrf)
        }
        Err(e) => refused(&state, &context, csrf, e).await,
    }
}

#[derive(Deserialize)]
pub struct FinishForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    credential: String,
}

/// Finishes adding a key with the authenticator's answer the script put in the form.
pub async fn finish(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    PageSession(session): PageSession,
    CsrfForm { form, csrf }: CsrfForm<FinishForm>,
) -> Response {
    let Some(context) = session else {
        return to_login();
    };
    let context = match recent(&state, context, "/settings/security") {
        Ok(recent) => recent,
        Err(reauthenticate) => return reauthenticate.into_response(),
    };
    let factors = &state.core.factors;
    match factors
        .finish_key_registration(&context, &form.name, &form.credential, &meta)
        .await
    {
        Ok(added) => match (added.recovery_codes, added.paper_key) {
            (Some(codes), Some(paper_key)) => {
                let template = AddedPage {
                    csrf: csrf.field.clone(),
                    nav: Nav::with_two_factor_on(&context, &csrf),
                    name: added.key.name,
                    codes_joined: codes.join(" "),
                    codes,
                    paper_key_formatted: group(&paper_key, 8, " "),
                };
                page(StatusCode::OK, &template, csrf)
            }
            _ => Redirect::to("/settings/security?notice=key_added").into_response(),
        },
        Err(e) => refused(&state, &context, csrf, e).await,
    }
}

/// Removes a key (the last factor: 2FA goes off with it).
pub async fn remove(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    PageUser(context): PageUser,
    Path(id): Path<String>,
    CsrfForm { csrf, .. }: CsrfForm<Empty>,
) -> Response {
    let Ok(id) = id.parse::<SecurityKeyId>() else {
        return PageError::refused(StatusCode::NOT_FOUND, "No such security key.").into_response();
    };
    let me = match recent(&state, context.clone(), "/settings/security") {
        Ok(me) => me,
        Err(reauthenticate) => return reauthenticate.into_response(),
    };
    match state.core.factors.remove_security_key(&me, id, &meta).await {
        Ok(()) => {
            let on = state.core.factors.status(&context).await.map(|s| s.is_on());
            let notice = if matches!(on, Ok(false)) {
                "disabled"
            } else {
                "key_removed"
            };
            Redirect::to(&format!("/settings/security?notice={notice}")).into_response()
        }
        Err(e) => refused(&state, &context, csrf, e).await,
    }
}

/// A refused key action, explained on the security page.
async fn refused(
    state: &AppState,
    context: &AnySession,
    csrf: Csrf,
    e: SecurityKeyError,
) -> Response {
    let (status, message) = match e {
        SecurityKeyError::Invalid(e) if e.field == "name" => (
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("Name your key: it {}.", e.message),
        ),
        SecurityKeyError::Invalid(_) | SecurityKeyError::Rejected => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Your security key's answer was not accepted. Add it again.".to_owned(),
        ),
        SecurityKeyError::NoPendingRegistration => (
            StatusCode::CONFLICT,
            "That took too long: add the key again.".to_owned(),
        ),
        SecurityKeyError::Duplicate => (
            StatusCode::CONFLICT,
            "This security key is registered already.".to_owned(),
        ),
        SecurityKeyError::NotFound => (StatusCode::NOT_FOUND, "No such security key.".to_owned()),
        SecurityKeyError::Unavailable => (
            StatusCode::CONFLICT,
            "Security keys need this server's public address to be a domain name (ask its \
             operator)."
                .to_owned(),
        ),
        SecurityKeyError::RequiredByAccount => (
            StatusCode::FORBIDDEN,
            "Your team requires two-factor authentication: add another key or an authenticator \
             app before removing your last one."
                .to_owned(),
        ),
        SecurityKeyError::Internal(e) => {
            return PageError::internal_on_form("page security key failed", e)
                .or_form(async |status, message| {
                    overview(state, context, csrf, status, None, Some(message)).await
                })
                .await;
        }
    };
    overview(state, context, csrf, status, None, Some(message)).await
}

/// "Sign in with a passkey": the page that asks the authenticator.
pub async fn passkey(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    CsrfForm { form, csrf }: CsrfForm<ReturnForm>,
) -> Response {
    match state.core.passkeys.start(&meta).await {
        Ok(started) => {
            let template = PasskeyPage {
                csrf: csrf.field.clone(),
                options: started.options.to_string(),
                challenge_token: started.token.expose().to_owned(),
                return_to: state
                    .return_origins
                    .check(&form.return_to)
                    .unwrap_or_default(),
                error: None,
            };
            page(StatusCode::OK, &template, csrf)
        }
        Err(e) => passkey_refused(&state, e).into_response(),
    }
}

/// The form on `/login` that asks for a passkey: where to go once signed in.
#[derive(Deserialize)]
pub struct ReturnForm {
    #[serde(default)]
    return_to: String,
}

#[derive(Deserialize)]
pub struct PasskeyForm {
    #[serde(default)]
    challenge_token: String,
    #[serde(default)]
    credential: String,
    #[serde(default)]
    return_to: String,
}

/// Signs in with the passkey's answer the script put in the form; then on to an
/// application's authorization request that sent the browser to sign in, or `return_to`.
pub async fn passkey_finish(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    headers: HeaderMap,
    CsrfForm { form, .. }: CsrfForm<PasskeyForm>,
) -> Response {
    match state
        .core
        .passkeys
        .finish(&form.challenge_token, &form.credential, &meta)
        .await
    {
        Ok(done) => {
            state.metrics.sign_in("success");
            let back = state.return_origins.check(&form.return_to);
            signed_in_back(&state, &headers, &done, back.as_deref())
        }
        Err(e) => passkey_refused(&state, e).into_response(),
    }
}

fn passkey_refused(state: &AppState, e: PasskeyError) -> PageError {
    match e {
        PasskeyError::Invalid(_) | PasskeyError::Rejected => PageError::refused(
            StatusCode::UNAUTHORIZED,
            "That passkey was not accepted. Sign in with your email and password instead.",
        ),
        PasskeyError::ChallengeExpired => PageError::refused(
            StatusCode::UNAUTHORIZED,
            "That took too long. Go back and sign in with a passkey again.",
        ),
        PasskeyError::Unavailable => PageError::refused(
            StatusCode::CONFLICT,
            "Passkeys need this server's public address to be a domain name (ask its operator).",
        ),
        PasskeyError::TooManyAttempts { retry_at } => PageError::too_many(
            "Too many attempts. Try again in",
            state.core.now().secs_until(retry_at).max(1),
        ),
        PasskeyError::Internal(e) => PageError::internal("page passkey sign-in failed", e),
    }
}
