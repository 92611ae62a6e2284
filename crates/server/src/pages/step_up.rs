//! `/reauthenticate?return_to=…`: step-up ("sudo mode", SPEC §9) in the control panel. A page
//! action refused for want of a recent authentication sends the browser here
//! ([`to_reauthenticate`]) with where to come back: the page that holds its form (a `GET`,
//! so the form is shown again, with what was typed when that is no secret). Only paths of
//! this site are followed back ([`local_path`]): anything else goes to the security page, so
//! the page is no open redirect.

use super::PageSession;
use super::csrf::{Csrf, CsrfForm};
use super::error::PageError;
use super::ui::{Nav, page, to_login};
use crate::extract::ClientMeta;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tessera_core::principal::{AnySession, Forbidden, Principal, Recent};
use tessera_core::sessions::{ReauthError, ReauthInput};

/// Where a `return_to` that is not a local path leads.
const FALLBACK: &str = "/settings/security";

/// `input` if it is a path of this site: one `/` first, never `//` (another host), no
/// backslash (browsers read `/\evil` as `//evil`), no control character or space (a
/// browser strips some); anything else, [`FALLBACK`]. A scheme (`https:`, `javascript:`)
/// cannot start with `/`.
fn local_path(input: &str) -> &str {
    let local = input.starts_with('/')
        && !input.starts_with("//")
        && !input.contains('\\')
        && !input.chars().any(|c| c.is_control() || c.is_whitespace());
    if local { input } else { FALLBACK }
}

/// Sends the browser to re-authenticate, then back to `return_to`.
pub(super) fn to_reauthenticate(return_to: &str) -> Response {
    redirect(return_to).into_response()
}

fn redirect(return_to: &str) -> Redirect {
    let query =
        serde_urlencoded::to_string([("return_to", local_path(return_to))]).unwrap_or_default();
    Redirect::to(&format!("/reauthenticate?{query}"))
}

/// The principal within the step-up window, or the way to re-authenticate and come back to
/// `back`.
pub(super) fn recent<P: Principal>(
    state: &AppState,
    principal: P,
    back: &str,
) -> Result<Recent<P>, Redirect> {
    state
        .core
        .sessions
        .recent(principal)
        .map_err(|_| redirect(back))
}

/// A refusal of the team's recovery powers ([`tessera_core::principal::RecoveryAdmin`]):
/// re-authenticate and come back to `back`, or the reason in words.
pub(super) fn recovery_refused(why: Forbidden, back: &str) -> Result<Response, PageError> {
    match why {
        Forbidden::ReauthenticationRequired => Ok(to_reauthenticate(back)),
        Forbidden::AdminTwoFactorRequired => Err(PageError::refused(
            StatusCode::FORBIDDEN,
            "Turn on two-factor authentication for your own user first (Security): \
             administrators need it to delete users, reset 2FA, invite admins or change the \
             team's policy.",
        )),
        why => Err(PageError::refused(
            StatusCode::FORBIDDEN,
            super::ui::capitalize(why.reason()),
        )),
    }
}

#[derive(Template)]
#[template(path = "reauthenticate.html")]
struct ReauthPage {
    csrf: String,
    nav: Nav,
    return_to: String,
    two_factor: bool,
    window_minutes: i64,
    /// An SSO user's email: they may confirm by signing in again through the provider.
    sso_email: Option<String>,
    error: Option<String>,
    /// Security-key request options (JSON) when the user has keys: the page's script offers
    /// "Use your security key" beside the code.
    webauthn_options: Option<String>,
}

async fn form(
    state: &AppState,
    me: &AnySession,
    csrf: Csrf,
    return_to: &str,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let webauthn_options = match state.core.sessions.reauthentication_options(me).await {
        Ok(options) => options.map(|o| o.to_string()),
        Err(e) => {
            tracing::error!(error = %e, "cannot start a security-key re-authentication");
            None
        }
    };
    let template = ReauthPage {
        webauthn_options,
        csrf: csrf.field.clone(),
        nav: Nav::new(me, &csrf),
        return_to: local_path(return_to).to_owned(),
        two_factor: me.two_factor_enabled(),
        window_minutes: state.core.sessions.reauth_window_secs() / 60,
        sso_email: (me.user().auth_source == tessera_core::model::AuthSource::Sso)
            .then(|| me.user().email.as_str().to_owned()),
        error,
    };
    page(status, &template, csrf)
}

#[derive(Deserialize)]
pub struct ReturnTo {
    #[serde(default)]
    return_to: String,
}

pub async fn show(
    State(state): State<AppState>,
    PageSession(session): PageSession,
    Query(query): Query<ReturnTo>,
    csrf: Csrf,
) -> Response {
    let Some(me) = session else {
        return to_login();
    };
    form(&state, &me, csrf, &query.return_to, StatusCode::OK, None).await
}

#[derive(Deserialize)]
pub struct ReauthForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: String,
    /// A security key's answer, put here by the page's script instead of a code.
    #[serde(default)]
    webauthn: String,
    #[serde(default)]
    return_to: String,
}

pub async fn submit(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    PageSession(session): PageSession,
    CsrfForm { form: sent, csrf }: CsrfForm<ReauthForm>,
) -> Response {
    let Some(me) = session else {
        return to_login();
    };
    let input = ReauthInput {
        password: sent.password.into(),
        code: Some(sent.code),
        method: None,
        webauthn: (!sent.webauthn.is_empty()).then_some(sent.webauthn),
    };
    let refused = match state.core.sessions.reauthenticate(&me, input, &meta).await {
        Ok(_) if super::oauth2::is_way_back(&sent.return_to) => {
            return super::oauth2::continue_to(&sent.return_to, &state);
        }
        Ok(_) => return Redirect::to(local_path(&sent.return_to)).into_response(),
        Err(ReauthError::Invalid(e)) if e.field == "code" => PageError::refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Enter the 6-digit code from your app, or a recovery code.",
        ),
        Err(ReauthError::Invalid(_)) => {
            PageError::refused(StatusCode::UNPROCESSABLE_ENTITY, "Enter your password.")
        }
        Err(ReauthError::InvalidCredentials) => {
            PageError::refused(StatusCode::UNAUTHORIZED, "Incorrect password.")
        }
        Err(ReauthError::InvalidCode) => {
            PageError::refused(StatusCode::UNAUTHORIZED, "That code is not valid.")
        }
        Err(ReauthError::TooManyAttempts { retry_at }) => PageError::too_many(
            "Too many attempts. Try again in",
            state.core.now().secs_until(retry_at),
        ),
        Err(e @ ReauthError::Internal(_)) => {
            PageError::internal_on_form("page re-authentication failed", e)
        }
    };
    refused
        .or_form(async |status, message| {
            form(&state, &me, csrf, &sent.return_to, status, Some(message)).await
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_paths_of_this_site_are_followed_back() {
        for local in [
            "/",
            "/settings/devices",
            "/account/settings?draft=1&required=on",
        ] {
            assert_eq!(local_path(local), local);
        }
        for elsewhere in [
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            "evil.example",
            "",
            "/\t/evil.example",
            "/ /evil.example",
        ] {
            assert_eq!(local_path(elsewhere), "/settings/security", "{elsewhere:?}");
        }
    }
}
