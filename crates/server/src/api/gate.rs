//! The gate (SPEC §11): forward authentication for a reverse proxy in front of an app
//! (nginx `auth_request`, Traefik `forwardAuth`, Caddy `forward_auth`). The proxy asks
//! `GET /api/v1/gate` (or any path under it) with the original request's headers; a valid
//! session cookie or API key answers `204` with who it is in `X-Tessera-*` headers, which
//! the proxy copies onto the request to the app.
//!
//! It runs before every request of the app, so it reads once (the session or key, by
//! index, with its user and account) and writes nothing in the common case: a session's or
//! key's last use is written at most once a minute.
//!
//! Without a valid credential: `401`, and, when the original request accepts HTML, a
//! `Location` of the sign-in page with `return_to` set to the original URL, if that URL is
//! on an allowed origin ([`crate::return_to`]). A session that may only set up 2FA: `401`
//! with a `Location` of the security page. `?grant=NAME` also requires that grant: `403
//! insufficient_grant` otherwise.

use crate::error::{AppError, ErrorBody, Query};
use crate::extract::ClientMeta;
use crate::key_auth::presented_key;
use crate::pages::cookies::Cookie;
use crate::state::AppState;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tessera_core::api_keys::grants::valid_name;
use tessera_core::crypto::Token;
use tessera_core::model::{Account, User};
use tessera_core::validate::FieldError;
use utoipa::IntoParams;

#[derive(Deserialize, IntoParams)]
pub struct GateQuery {
    /// A grant the caller must hold (Tessera's or one of `TESSERA_API_GRANTS`).
    #[param(example = "messages:send")]
    pub grant: Option<String>,
}

/// Forward authentication for a reverse proxy.
///
/// `204` with `X-Tessera-User-Id`, `X-Tessera-Email`, `X-Tessera-Account-Id`,
/// `X-Tessera-Role`, `X-Tessera-Grants` (comma-separated) and `X-Tessera-Auth` (`session` or
/// `api_key`; a key also gives `X-Tessera-Api-Key-Id`, and is its creator acting within the
/// key's grants). Any path under `/gate` answers the same. The session is read from the
/// session cookie (`TESSERA_COOKIE_DOMAIN` lets it reach the app's subdomains), a key from
/// `Authorization: Bearer tsk_…`.
#[utoipa::path(get, path = "/gate", tag = "gate", params(GateQuery),
    responses(
        (status = 204, description = "Signed in; identity in the `X-Tessera-*` headers",
            headers(
                ("X-Tessera-User-Id" = String, description = "The user's id (a key's creator)"),
                ("X-Tessera-Email" = String, description = "The user's email"),
                ("X-Tessera-Account-Id" = String, description = "The account's id"),
                ("X-Tessera-Role" = String, description = "`owner`, `admin` or `member`"),
                ("X-Tessera-Grants" = String, description = "The grants, comma-separated"),
                ("X-Tessera-Auth" = String, description = "`session` or `api_key`"),
                ("X-Tessera-Api-Key-Id" = String, description = "The key's id, for `api_key`"),
            )),
        (status = 401, description = "`unauthenticated` (with `Location` of the sign-in page and `return_to`, when the request accepts HTML), `two_factor_setup_required` (a session that must set up 2FA first, with `Location` of the security page), `session_expired`, `invalid_api_key` or `api_key_expired`", body = ErrorBody,
            headers(
                ("Location" = String, description = "Where a browser signs in (or sets up 2FA)"),
                ("WWW-Authenticate" = String, description = "`Bearer`"),
            )),
        (status = 403, description = "`insufficient_grant` (the grant of `?grant=` is missing, named in `grant`) or `ip_not_allowed` (an API key used from outside its allowlist)", body = ErrorBody),
        (status = 422, description = "`validation_error`: `grant` is not a grant name", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: too many failed API keys from this address", body = ErrorBody,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
    ))]
pub async fn gate(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    ClientMeta(meta): ClientMeta,
    Query(query): Query<GateQuery>,
    headers: HeaderMap,
) -> Response {
    let grant = query
        .grant
        .as_deref()
        .map(str::trim)
        .filter(|g| !g.is_empty());
    if let Some(grant) = grant
        && !valid_name(grant)
    {
        return AppError::from(FieldError::new(
            "grant",
            "must be a grant name such as messages:send",
        ))
        .into_response();
    }
    if let Some(presented) = presented_key(&headers) {
        let key = match state.core.api_keys.authenticate(presented, &meta).await {
            Ok(key) => key,
            Err(e) => return AppError::from(e).into_response(),
        };
        if let Some(grant) = grant
            && !key.holds(grant)
        {
            let refused = state
                .core
                .api_keys
                .insufficient(&key, grant, uri.path(), &meta)
                .await;
            return AppError::from(refused).into_response();
        }
        let mut response = identity(key.creator(), key.account(), key.grants(), "api_key");
        insert(
            &mut response,
            "x-tessera-api-key-id",
            &key.key().id.to_string(),
        );
        return response;
    }
    let session = match state.cookies.get(&headers, Cookie::Session) {
        None => None,
        Some(token) => {
            match state
                .core
                .sessions
                .authenticate(&Token::from_client(&token).hash())
                .await
            {
                Ok(session) => Some(session),
                Err(tessera_core::sessions::SessionError::Internal(e)) => {
                    return AppError::from(e).into_response();
                }
                Err(_) => None,
            }
        }
    };
    let Some(session) = session else {
        return unauthenticated(&state, &headers);
    };
    if session.setup_only() {
        let mut response = AppError::TwoFactorSetupRequired.into_response();
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        let to = format!("{}/settings/security", state.public_url);
        insert(&mut response, header::LOCATION.as_str(), &to);
        return response;
    }
    let grants = state.core.api_keys.grants_of(&session);
    if let Some(grant) = grant
        && !grants.iter().any(|g| g == grant)
    {
        tracing::warn!(user_id = %session.user().id, grant, "gate: a grant the user lacks");
        return AppError::InsufficientGrant {
            message: format!("you lack the grant {grant}"),
            grant: grant.to_owned(),
        }
        .into_response();
    }
    identity(session.user(), session.account(), &grants, "session")
}

/// `204` with who is asking.
fn identity(user: &User, account: &Account, grants: &[String], auth: &str) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    insert(&mut response, "x-tessera-user-id", &user.id.to_string());
    insert(&mut response, "x-tessera-email", user.email.as_str());
    insert(
        &mut response,
        "x-tessera-account-id",
        &account.id.to_string(),
    );
    insert(&mut response, "x-tessera-role", user.role.as_str());
    insert(&mut response, "x-tessera-grants", &grants.join(","));
    insert(&mut response, "x-tessera-auth", auth);
    response
}

fn insert(response: &mut Response, name: &str, value: &str) {
    if let (Ok(name), Ok(value)) = (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_bytes(value.as_bytes()),
    ) {
        response.headers_mut().insert(name, value);
    }
}

/// `401`; for a browser, with the way to sign in and come back.
fn unauthenticated(state: &AppState, headers: &HeaderMap) -> Response {
    let mut response = AppError::Unauthenticated.into_response();
    let wants_html = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/html"));
    if wants_html {
        let mut login = format!("{}/login", state.public_url);
        if let Some(back) = original_url(headers).and_then(|u| state.return_origins.check(&u)) {
            let query = serde_urlencoded::to_string([("return_to", back)]).unwrap_or_default();
            login = format!("{login}?{query}");
        }
        insert(&mut response, header::LOCATION.as_str(), &login);
    }
    response
}

/// The URL the browser asked the proxy for, from the headers the common proxies send:
/// `X-Original-URL` (nginx, as configured in the README), or `X-Forwarded-Proto`,
/// `X-Forwarded-Host` and `X-Forwarded-Uri` (Traefik, Caddy), or `X-Original-URI` with the
/// `Host` (nginx's other habit).
fn original_url(headers: &HeaderMap) -> Option<String> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    if let Some(url) = get("x-original-url")
        && url.contains("://")
    {
        return Some(url.to_owned());
    }
    let host = get("x-forwarded-host").or_else(|| get("host"))?;
    let path = get("x-forwarded-uri").or_else(|| get("x-original-uri"))?;
    let proto = get("x-forwarded-proto").unwrap_or("http");
    path.starts_with('/')
        .then(|| format!("{proto}://{host}{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn the_original_url_comes_from_the_common_proxies_headers() {
        let nginx = headers(&[("x-original-url", "https://app.example.com/a?b=1")]);
        assert_eq!(
            original_url(&nginx).unwrap(),
            "https://app.example.com/a?b=1"
        );
        let traefik = headers(&[
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "app.example.com"),
            ("x-forwarded-uri", "/reports?id=7"),
        ]);
        assert_eq!(
            original_url(&traefik).unwrap(),
            "https://app.example.com/reports?id=7"
        );
        let uri_only = headers(&[("host", "app.example.com"), ("x-original-uri", "/x")]);
        assert_eq!(original_url(&uri_only).unwrap(), "http://app.example.com/x");
        assert_eq!(original_url(&headers(&[("host", "a.example")])), None);
        let odd = headers(&[("host", "a.example"), ("x-forwarded-uri", "x")]);
        assert_eq!(original_url(&odd), None);
    }
}
