//! The OpenID Connect provider's browser endpoints (SPEC §13): `/oauth2/authorize` and
//! `/oauth2/logout`.
//!
//! Sign-in, the second step, 2FA setup and re-authentication happen on Tessera's own pages;
//! the way back to the authorization request is a path of this site only
//! (`/oauth2/authorize?…`), kept in the `tessera_return` cookie across sign-in (and in
//! `return_to` across re-authentication). After a form, the browser goes on through a page
//! that continues by itself ([`continue_to`]): a redirect from a form's answer to the
//! application's origin would break the pages' `form-action 'self'` policy.

use super::PageSession;
use super::cookies::Cookie;
use super::csrf::{Csrf, CsrfForm};
use super::error::PageError;
use super::step_up::to_reauthenticate;
use super::ui::{message_page, page, render, with_cookies};
use crate::extract::ClientMeta;
use crate::state::AppState;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use tessera_core::Timestamp;
use tessera_core::oidc_provider::authorize::{AuthorizeError, AuthorizeRequest, Next};
use tessera_core::principal::AnySession;

/// The path every way back starts with.
const AUTHORIZE: &str = "/oauth2/authorize?";

/// How long the way back is kept while the person signs in.
const RETURN_SECS: i64 = 1800;

pub async fn authorize_get(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    PageSession(session): PageSession,
    RawQuery(query): RawQuery,
) -> Response {
    authorize(&state, &meta, session, &query.unwrap_or_default()).await
}

pub async fn authorize_post(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    PageSession(session): PageSession,
    body: Bytes,
) -> Response {
    let query = String::from_utf8_lossy(&body).into_owned();
    authorize(&state, &meta, session, &query).await
}

/// The authorization request again, marked as authenticated for from `after`.
fn way_back(query: &str, after: Timestamp) -> String {
    let mut pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    pairs.retain(|(k, _)| k != "tessera_auth_after");
    pairs.push(("tessera_auth_after".into(), after.unix().to_string()));
    format!(
        "{AUTHORIZE}{}",
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    )
}

async fn authorize(
    state: &AppState,
    meta: &tessera_core::model::RequestMeta,
    session: Option<AnySession>,
    query: &str,
) -> Response {
    let Ok(request) = serde_urlencoded::from_str::<AuthorizeRequest>(query) else {
        return message_page(
            StatusCode::BAD_REQUEST,
            "This sign-in link is not valid",
            "The application sent a malformed sign-in request. Nothing was sent back to it.",
        );
    };
    match state
        .core
        .oidc
        .authorize(&request, session.as_ref(), meta)
        .await
    {
        Ok(Next::ToClient(url)) => Redirect::to(&url).into_response(),
        Ok(Next::SignIn {
            login_hint,
            auth_after,
        }) => {
            let back = return_cookie(state, &way_back(query, auth_after));
            let login = match login_hint.filter(|h| !h.is_empty() && h.len() <= 254) {
                Some(hint) => format!(
                    "/login?{}",
                    serde_urlencoded::to_string([("email", hint)]).unwrap_or_default()
                ),
                None => "/login".to_owned(),
            };
            with_cookies(Redirect::to(&login).into_response(), [back])
        }
        Ok(Next::SetUpTwoFactor) => Redirect::to("/settings/security").into_response(),
        Ok(Next::Reauthenticate { auth_after }) => to_reauthenticate(&way_back(query, auth_after)),
        Err(AuthorizeError::Internal(e)) => {
            PageError::internal("authorization request failed", e).into_response()
        }
        Err(refused) => message_page(
            StatusCode::BAD_REQUEST,
            "This sign-in link is not valid",
            &format!(
                "{}. The application that sent you here is not set up to sign in with \
                 Tessera this way; nothing was sent back to it.",
                super::ui::capitalize(&refused.to_string()).trim_end_matches('.')
            ),
        ),
    }
}

/// The `Set-Cookie` value that keeps the way back across sign-in.
fn return_cookie(state: &AppState, path: &str) -> String {
    state.cookies.set(
        Cookie::Return,
        &URL_SAFE_NO_PAD.encode(path.as_bytes()),
        Some(RETURN_SECS),
    )
}

/// The way back to an authorization request kept across sign-in, if any.
pub(super) fn kept_return(state: &AppState, headers: &HeaderMap) -> Option<String> {
    let value = state.cookies.get(headers, Cookie::Return)?;
    let path = String::from_utf8(URL_SAFE_NO_PAD.decode(value).ok()?).ok()?;
    is_way_back(&path).then_some(path)
}

/// Whether `path` is a way back to an authorization request of this site.
pub(super) fn is_way_back(path: &str) -> bool {
    path.starts_with(AUTHORIZE) && !path.chars().any(|c| c.is_control() || c.is_whitespace())
}

#[derive(Template)]
#[template(path = "oauth2_continue.html")]
struct ContinuePage<'a> {
    next: &'a str,
}

/// A page that goes on to `path` (a way back) by itself.
pub(super) fn continue_to(path: &str, state: &AppState) -> Response {
    with_cookies(
        render(&ContinuePage { next: path }),
        [state.cookies.clear(Cookie::Return)],
    )
}

#[derive(Deserialize, Default)]
pub struct LogoutRequest {
    id_token_hint: Option<String>,
    client_id: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
}

#[derive(Template)]
#[template(path = "oauth2_logout.html")]
struct LogoutPage {
    csrf: String,
    client_id: String,
    post_logout_redirect_uri: String,
    state: String,
}

/// `GET /oauth2/logout`: with an `id_token_hint` of the signed-in user, signs out at once;
/// otherwise asks first (a link alone must not sign anyone out).
pub async fn logout_get(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    PageSession(session): PageSession,
    RawQuery(query): RawQuery,
    csrf: Csrf,
) -> Response {
    let Ok(request) = serde_urlencoded::from_str::<LogoutRequest>(&query.unwrap_or_default())
    else {
        return PageError::refused(
            StatusCode::BAD_REQUEST,
            "The sign-out request is malformed.",
        )
        .into_response();
    };
    let hint = match request.id_token_hint.as_deref() {
        None => None,
        Some(token) => match state.core.oidc.check_id_token_hint(token).await {
            Ok(Some(claims)) => Some(claims),
            Ok(None) => {
                return PageError::refused(
                    StatusCode::BAD_REQUEST,
                    "The sign-out request carries an ID token that Tessera did not issue.",
                )
                .into_response();
            }
            Err(e) => {
                return PageError::internal("cannot check an id_token_hint", e).into_response();
            }
        },
    };
    let Some(me) = session else {
        return back_after_logout(&state, &request, hint.as_ref()).await;
    };
    let same_user = hint
        .as_ref()
        .is_some_and(|h| h["sub"].as_str() == Some(&me.user().id.to_string()));
    if !same_user {
        let template = LogoutPage {
            csrf: csrf.field.clone(),
            client_id: request
                .client_id
                .clone()
                .or_else(|| {
                    hint.as_ref()
                        .and_then(|h| h["aud"].as_str().map(str::to_owned))
                })
                .unwrap_or_default(),
            post_logout_redirect_uri: request.post_logout_redirect_uri.clone().unwrap_or_default(),
            state: request.state.clone().unwrap_or_default(),
        };
        return page(StatusCode::OK, &template, csrf);
    }
    sign_out(&state, &meta, &me, &request, hint.as_ref()).await
}

/// `POST /oauth2/logout`: the confirmation form.
pub async fn logout_post(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    PageSession(session): PageSession,
    CsrfForm { form, .. }: CsrfForm<LogoutRequest>,
) -> Response {
    match session {
        Some(me) => sign_out(&state, &meta, &me, &form, None).await,
        None => back_after_logout(&state, &form, None).await,
    }
}

async fn sign_out(
    state: &AppState,
    meta: &tessera_core::model::RequestMeta,
    me: &AnySession,
    request: &LogoutRequest,
    hint: Option<&serde_json::Value>,
) -> Response {
    let client = request
        .client_id
        .as_deref()
        .or_else(|| hint.and_then(|h| h["aud"].as_str()));
    if let Err(e) = state
        .core
        .oidc
        .revoke_session_tokens(me, client, meta)
        .await
    {
        return PageError::internal("cannot revoke the tokens of a session", e).into_response();
    }
    if let Err(e) = state.core.sessions.logout(me, meta).await {
        return PageError::internal("RP-initiated sign-out failed", e).into_response();
    }
    with_cookies(
        back_after_logout(state, request, hint).await,
        [state.cookies.clear(Cookie::Session)],
    )
}

/// To the registered `post_logout_redirect_uri`, or a page saying the person is signed out.
async fn back_after_logout(
    state: &AppState,
    request: &LogoutRequest,
    hint: Option<&serde_json::Value>,
) -> Response {
    if let Some(uri) = request
        .post_logout_redirect_uri
        .as_deref()
        .filter(|u| !u.is_empty())
    {
        match state
            .core
            .oidc
            .logout_target(
                request.client_id.as_deref(),
                hint,
                uri,
                request.state.as_deref(),
            )
            .await
        {
            Ok(Some(url)) => return Redirect::to(&url).into_response(),
            Ok(None) => {
                return message_page(
                    StatusCode::BAD_REQUEST,
                    "Signed out",
                    "You are signed out of Tessera. The address the application asked to \
                     return to is not registered for it, so you stay here.",
                );
            }
            Err(e) => {
                return PageError::internal("cannot check a logout redirect", e).into_response();
            }
        }
    }
    message_page(
        StatusCode::OK,
        "Signed out",
        "You are signed out of Tessera.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_way_back_is_the_request_marked_fresh() {
        let back = way_back(
            "client_id=a&prompt=login&tessera_auth_after=1&state=x%20y",
            Timestamp::from_unix(5),
        );
        assert_eq!(
            back,
            "/oauth2/authorize?client_id=a&prompt=login&state=x+y&tessera_auth_after=5"
        );
        assert!(is_way_back(&back));
        assert!(!is_way_back("https://evil.example/oauth2/authorize?"));
        assert!(!is_way_back("/settings/security"));
    }
}
