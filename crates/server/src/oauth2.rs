//! The OpenID Connect provider's machine endpoints (SPEC §13): discovery, the JWKS, the token
//! endpoint and userinfo. Their errors are OAuth's own shape (`{"error", "error_description"}`,
//! RFC 6749 §5.2, RFC 6750 §3), not the API's. The browser endpoints (authorize, logout) are
//! pages ([`crate::pages`]).

use crate::extract::ClientMeta;
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use tessera_core::oidc_provider::OidcInternal;
use tessera_core::oidc_provider::token::{ClientAuth, TokenError, TokenRequest, UserinfoError};

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/oauth2/jwks", get(jwks))
        .route("/oauth2/token", post(token))
        .route("/oauth2/userinfo", get(userinfo).post(userinfo))
}

/// An OAuth error response.
fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    let mut response = (
        status,
        Json(json!({ "error": code, "error_description": description })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// Our failure, logged; `temporarily_unavailable` while the database is away.
fn internal(context: &'static str, cause: &OidcInternal) -> Response {
    if cause.is_unavailable() {
        tracing::warn!(error = %cause, "{context}: the database is unavailable");
        return oauth_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the service is temporarily unavailable, try again",
        );
    }
    tracing::error!(error = %cause, "{context}");
    oauth_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "something went wrong",
    )
}

async fn discovery(State(state): State<AppState>) -> Response {
    let mut response = Json(state.core.oidc.discovery()).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

async fn jwks(State(state): State<AppState>) -> Response {
    match state.core.oidc.jwks().await {
        Ok(keys) => {
            let mut response = Json(keys).into_response();
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=60"),
            );
            response
        }
        Err(e) => internal("cannot publish the JWKS", &e),
    }
}

/// `client_secret_basic`: `Authorization: Basic base64(urlencode(id):urlencode(secret))`.
/// `Err` for a malformed header.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, ()> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(drop)?;
    let Some(encoded) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    else {
        return Err(());
    };
    let decoded = STANDARD.decode(encoded.trim()).map_err(drop)?;
    let decoded = String::from_utf8(decoded).map_err(drop)?;
    let (id, secret) = decoded.split_once(':').ok_or(())?;
    let unescape = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(drop)
    };
    Ok(Some((unescape(id)?, unescape(secret)?)))
}

async fn token(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let bad = |why| oauth_error(StatusCode::BAD_REQUEST, "invalid_request", why);
    let Ok(request) = serde_urlencoded::from_bytes::<TokenRequest>(&body) else {
        return bad("the body must be an application/x-www-form-urlencoded token request");
    };
    let auth = match basic_credentials(&headers) {
        Err(()) => {
            return token_refused(TokenError::InvalidClient { basic: true });
        }
        Ok(Some(_)) if request.client_secret.is_some() => {
            return bad("use one way of client authentication, not two");
        }
        Ok(Some((id, _))) if request.client_id.as_deref().is_some_and(|c| c != id) => {
            return bad("client_id differs from the authenticated client");
        }
        Ok(Some((id, secret))) => ClientAuth {
            client_id: Some(id),
            client_secret: Some(secret),
            basic: true,
        },
        Ok(None) => ClientAuth {
            client_id: request.client_id.clone(),
            client_secret: request.client_secret.clone(),
            basic: false,
        },
    };
    match state.core.oidc.token(&auth, &request, &meta).await {
        Ok(issued) => {
            let mut response = Json(issued).into_response();
            response
                .headers_mut()
                .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            response
        }
        Err(e) => token_refused(e),
    }
}

fn token_refused(error: TokenError) -> Response {
    match error {
        TokenError::Internal(e) => internal("token request failed", &e),
        TokenError::InvalidClient { basic } => {
            let mut response =
                oauth_error(StatusCode::UNAUTHORIZED, error.code(), &error.to_string());
            if basic {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"tessera\""),
                );
            }
            response
        }
        other => oauth_error(StatusCode::BAD_REQUEST, other.code(), &other.to_string()),
    }
}

async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let refused = |description: &str| {
        let mut response = oauth_error(StatusCode::UNAUTHORIZED, "invalid_token", description);
        if let Ok(value) = HeaderValue::from_str(&format!(
            "Bearer error=\"invalid_token\", error_description=\"{description}\""
        )) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    };
    let Some(token) = token else {
        return refused("an access token is required (Authorization: Bearer)");
    };
    match state.core.oidc.userinfo(token).await {
        Ok(claims) => Json(claims).into_response(),
        Err(UserinfoError::InvalidToken) => {
            refused("the access token is missing, expired or revoked")
        }
        Err(UserinfoError::Internal(e)) => internal("userinfo failed", &e),
    }
}
