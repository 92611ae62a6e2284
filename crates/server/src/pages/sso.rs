//! Single sign-on pages (SPEC §12): "Sign in with SSO" (`/login/sso?email=E`, the target of
//! the form on `/login`), the provider's return (`/login/sso/callback`), and the team's
//! settings (`/account/sso`). Every refusal, the provider's own included, is a page in words.
//!
//! The browser that starts a sign-in keeps its `state` in a cookie; the callback must bring
//! the same one back, so a callback link from someone else's sign-in signs nobody in here.
//!
//! `/login/sso` answers a page that goes on to the provider at once (`<meta
//! http-equiv="refresh">`, and a link), not a `303`: the pages' CSP (`form-action 'self'`)
//! makes browsers refuse a form submission that redirects to another origin, and the
//! provider's origin cannot be named in a policy sent before the email is known.

use super::PageManager;
use super::cookies::Cookie;
use super::csrf::{Csrf, CsrfForm};
use super::error::PageError;
use super::sign_in::{login_form, to_step};
use super::step_up::recovery_refused;
use super::ui::{Nav, capitalize, page, render, return_cookie, signed_in_back, with_cookies};
use crate::extract::ClientMeta;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tessera_core::crypto::b64;
use tessera_core::principal::Manager;
use tessera_core::sign_in::LoginOutcome;
use tessera_core::sso::{PENDING_LIFETIME_SECS, SsoError, SsoSettingsInput};

/// How an SSO refusal reads on a page, with its status.
fn refusal(e: SsoError) -> PageError {
    let status = match &e {
        SsoError::TooManyAttempts { wait_secs } => {
            return PageError::too_many("Too many attempts. Try again in", *wait_secs);
        }
        SsoError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        SsoError::NotConfigured => StatusCode::NOT_FOUND,
        SsoError::InvalidState | SsoError::Expired => StatusCode::BAD_REQUEST,
        SsoError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
        SsoError::ProviderUnreachable(_) | SsoError::ProviderRejected(_) => StatusCode::BAD_GATEWAY,
        _ => StatusCode::FORBIDDEN,
    };
    match e {
        SsoError::Internal(cause) => PageError::internal_on_form("SSO sign-in failed", cause),
        SsoError::Invalid(_) => {
            PageError::refused(status, "Enter your work email to sign in with SSO.")
        }
        other => PageError::refused(status, capitalize(&other.to_string())),
    }
}

/// On to the provider.
#[derive(Template)]
#[template(path = "sso_redirect.html")]
struct OnwardPage {
    url: String,
}

#[derive(Deserialize)]
pub struct StartQuery {
    #[serde(default)]
    email: String,
    /// Where to go once signed in (checked), as on `/login`; kept in a cookie meanwhile.
    #[serde(default)]
    return_to: String,
}

/// `GET /login/sso?email=E`: off to the team's identity provider. Also for someone signed in
/// already: signing in again is how an SSO user confirms it is them (the new session's
/// step-up window starts at once).
pub async fn start(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    Query(query): Query<StartQuery>,
    csrf: Csrf,
) -> Response {
    let back = state.return_origins.check(&query.return_to);
    match state.core.sso.start(&query.email, true, &meta).await {
        Ok(started) => {
            state.metrics.sign_in("sso_started");
            let cookie = state.cookies.set(
                Cookie::SsoState,
                started.state.expose(),
                Some(PENDING_LIFETIME_SECS),
            );
            let back = match &back {
                Some(back) => state.cookies.set(
                    Cookie::ReturnTo,
                    &b64(back.as_bytes()),
                    Some(PENDING_LIFETIME_SECS),
                ),
                None => state.cookies.clear(Cookie::ReturnTo),
            };
            let onward = render(&OnwardPage { url: started.url });
            with_cookies(onward, [cookie, back])
        }
        Err(e) => {
            state.metrics.sign_in(e.code());
            refusal(e)
                .or_form(async |status, message| {
                    let back = back.unwrap_or_default();
                    login_form(&state, csrf, query.email, status, Some(message), back)
                })
                .await
        }
    }
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    #[serde(default)]
    state: String,
    code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /login/sso/callback`: back from the provider, signed in (or on to the second step).
pub async fn callback(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
    csrf: Csrf,
) -> Response {
    let kept = state.cookies.get(&headers, Cookie::SsoState);
    let provider_error =
        query
            .error
            .as_deref()
            .map(|error| match query.error_description.as_deref() {
                Some(description) => format!("{error}: {description}"),
                None => error.to_owned(),
            });
    let callback = tessera_core::sso::Callback {
        state: &query.state,
        code: query.code.as_deref(),
        error: provider_error.as_deref(),
        browser_state: kept.as_deref(),
    };
    let forget = state.cookies.clear(Cookie::SsoState);
    // Where the sign-in started from (checked again), carried to the second step if one is
    // due (which sets its own return cookie).
    let back = return_cookie(&state, &headers);
    let response = match state.core.sso.finish(callback, &meta).await {
        Ok(LoginOutcome::SignedIn(done)) => {
            state.metrics.sign_in("success");
            let response = signed_in_back(&state, &headers, &done, back.as_deref());
            with_cookies(response, [state.cookies.clear(Cookie::ReturnTo)])
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
            state.metrics.sign_in(e.code());
            refusal(e)
                .or_form(async |status, message| {
                    login_form(
                        &state,
                        csrf,
                        String::new(),
                        status,
                        Some(message),
                        String::new(),
                    )
                })
                .await
        }
    };
    with_cookies(response, [forget])
}

// ----- /account/sso -----

#[derive(Template)]
#[template(path = "team_sso.html")]
struct SettingsPage {
    csrf: String,
    nav: Nav,
    account_name: String,
    configured: bool,
    issuer: String,
    client_id: String,
    email_domains: String,
    jit_provisioning: bool,
    disable_sso: bool,
    redirect_uri: String,
    window_minutes: i64,
    notice: Option<&'static str>,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
    /// Separated by commas, spaces or lines.
    #[serde(default)]
    email_domains: String,
    /// A checkbox: present when ticked.
    jit_provisioning: Option<String>,
    #[serde(default)]
    sso_two_factor: String,
}

async fn settings_page(
    state: &AppState,
    manager: &Manager,
    csrf: Csrf,
    status: StatusCode,
    (notice, error): (Option<&'static str>, Option<String>),
    draft: Option<&SettingsForm>,
) -> Response {
    let stored = match state.core.sso.settings(manager).await {
        Ok(stored) => stored,
        Err(e) => return refusal(e).into_response(),
    };
    let account = manager.account();
    let mut template = SettingsPage {
        csrf: csrf.field.clone(),
        nav: Nav::new(manager, &csrf),
        account_name: account.name.clone(),
        configured: stored.is_some(),
        issuer: String::new(),
        client_id: String::new(),
        email_domains: String::new(),
        jit_provisioning: false,
        disable_sso: account.sso_two_factor == tessera_core::model::SsoTwoFactor::DisableSso,
        redirect_uri: state.sso_redirect_uri.clone(),
        window_minutes: state.core.sessions.reauth_window_secs() / 60,
        notice,
        error,
    };
    if let Some(stored) = stored {
        template.issuer = stored.issuer;
        template.client_id = stored.client_id;
        template.email_domains = stored.email_domains.join(", ");
        template.jit_provisioning = stored.jit_provisioning;
    }
    if let Some(draft) = draft {
        template.issuer = draft.issuer.clone();
        template.client_id = draft.client_id.clone();
        template.email_domains = draft.email_domains.clone();
        template.jit_provisioning = draft.jit_provisioning.is_some();
        template.disable_sso = draft.sso_two_factor == "disable_sso";
    }
    page(status, &template, csrf)
}

#[derive(Deserialize)]
pub struct SettingsQuery {
    notice: Option<String>,
}

pub async fn settings(
    State(state): State<AppState>,
    PageManager(manager): PageManager,
    Query(query): Query<SettingsQuery>,
    csrf: Csrf,
) -> Response {
    let notice = (query.notice.as_deref() == Some("saved")).then_some("Saved.");
    settings_page(&state, &manager, csrf, StatusCode::OK, (notice, None), None).await
}

pub async fn save(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    PageManager(manager): PageManager,
    CsrfForm { form, csrf }: CsrfForm<SettingsForm>,
) -> Response {
    let admin = match state.core.team.recovery_admin(manager.clone()) {
        Ok(admin) => admin,
        // The secret is never put in a URL: after confirming, the person fills it in again.
        Err(why) => {
            return match recovery_refused(why, "/account/sso") {
                Ok(reauthenticate) => reauthenticate,
                Err(refused) => {
                    refused
                        .or_form(async |status, message| {
                            let said = (None, Some(message));
                            settings_page(&state, &manager, csrf, status, said, Some(&form)).await
                        })
                        .await
                }
            };
        }
    };
    let input = settings_input(&form);
    match state.core.sso.configure(&admin, input, &meta).await {
        Ok(_) => Redirect::to("/account/sso?notice=saved").into_response(),
        Err(e) => {
            let status = match &e {
                SsoError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::BAD_GATEWAY,
            };
            let message = match e {
                SsoError::Invalid(field) => {
                    format!("{}: {}", field.field.replace('_', " "), field.message)
                }
                SsoError::Internal(cause) => {
                    return PageError::internal("cannot save SSO settings", cause).into_response();
                }
                other => other.to_string(),
            };
            let said = (None, Some(capitalize(&message)));
            settings_page(&state, &manager, csrf, status, said, Some(&form)).await
        }
    }
}

/// The form as the core's input.
fn settings_input(form: &SettingsForm) -> SsoSettingsInput {
    SsoSettingsInput {
        issuer: form.issuer.clone(),
        client_id: form.client_id.clone(),
        client_secret: Some(form.client_secret.clone().into()),
        email_domains: form
            .email_domains
            .split([',', ' ', '\n', '\r', ';'])
            .filter(|d| !d.trim().is_empty())
            .map(str::to_owned)
            .collect(),
        jit_provisioning: form.jit_provisioning.is_some(),
        sso_two_factor: if form.sso_two_factor.is_empty() {
            "exempt".to_owned()
        } else {
            form.sso_two_factor.clone()
        },
    }
}
