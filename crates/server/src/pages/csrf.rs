//! CSRF protection for the pages: a signed double-submit token.
//!
//! The browser holds a random value in the `tessera_csrf` cookie; every form carries
//! HMAC(csrf key, that value ‖ the session cookie). A cross-site page can neither read the
//! cookies nor compute the MAC without the server's key, so it cannot forge the field; and
//! since the MAC also covers the session, a pair planted by someone who can set cookies for
//! the domain does not carry over into the victim's session.

use super::cookies::Cookie;
use super::error::PageError;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tessera_core::crypto::{Token, b64, from_b64};

/// The token a page puts in its forms, and the cookie to set if the browser had none.
pub struct Csrf {
    pub field: String,
    pub new_cookie: Option<String>,
}

/// What the field's MAC covers: the CSRF cookie and the session cookie (if any).
fn signed(state: &AppState, headers: &HeaderMap, csrf_cookie: &str) -> Vec<u8> {
    let session = state
        .cookies
        .get(headers, Cookie::Session)
        .unwrap_or_default();
    [csrf_cookie.as_bytes(), b"\0", session.as_bytes()].concat()
}

impl Csrf {
    fn new(
        state: &AppState,
        headers: &HeaderMap,
        cookie: &str,
        new_cookie: Option<String>,
    ) -> Self {
        Self {
            field: b64(&state.csrf_key.sign(&signed(state, headers, cookie))),
            new_cookie,
        }
    }
}

impl FromRequestParts<AppState> for Csrf {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(match state.cookies.get(&parts.headers, Cookie::Csrf) {
            Some(cookie) => Self::new(state, &parts.headers, &cookie, None),
            None => {
                let value = Token::generate();
                let set = state.cookies.set(Cookie::Csrf, value.expose(), None);
                Self::new(state, &parts.headers, value.expose(), Some(set))
            }
        })
    }
}

#[derive(Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

/// A form whose CSRF field matched its cookie, with the token to re-render it.
pub struct CsrfForm<T> {
    pub form: T,
    pub csrf: Csrf,
}

/// Why a form was refused before its handler ran.
pub enum FormRejection {
    /// Missing or wrong CSRF token: the page was stale, or the post came from elsewhere.
    Csrf,
    /// Not a form body, too large, or fields of the wrong shape.
    Invalid,
}

impl IntoResponse for FormRejection {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            Self::Csrf => (
                StatusCode::FORBIDDEN,
                "This form has expired",
                "For your security the form could not be accepted. Go back, reload the page and try again.",
            ),
            Self::Invalid => (
                StatusCode::BAD_REQUEST,
                "That did not work",
                "The form could not be read. Go back, reload the page and try again.",
            ),
        };
        PageError::Message {
            status,
            title,
            message,
        }
        .into_response()
    }
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = FormRejection;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let headers = req.headers().clone();
        let cookie = state
            .cookies
            .get(&headers, Cookie::Csrf)
            .ok_or(FormRejection::Csrf)?;
        let body = read_body(req, state).await.ok_or(FormRejection::Invalid)?;
        let field: CsrfField =
            serde_urlencoded::from_bytes(&body).map_err(|_| FormRejection::Invalid)?;
        let tag = from_b64(&field.csrf).ok_or(FormRejection::Csrf)?;
        if !state
            .csrf_key
            .verify(&signed(state, &headers, &cookie), &tag)
        {
            return Err(FormRejection::Csrf);
        }
        let form = serde_urlencoded::from_bytes(&body).map_err(|_| FormRejection::Invalid)?;
        Ok(Self {
            form,
            csrf: Csrf::new(state, &headers, &cookie, None),
        })
    }
}

/// The body of a urlencoded form post, within the body limit.
async fn read_body(req: Request, state: &AppState) -> Option<Bytes> {
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return None;
    }
    Bytes::from_request(req, state).await.ok()
}
