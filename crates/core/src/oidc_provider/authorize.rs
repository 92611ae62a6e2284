//! `/oauth2/authorize` (OIDC Core 3.1.2): checks the request, decides what the browser must
//! do first (sign in, set up 2FA, re-authenticate), and issues the code.
//!
//! Order of the checks (RFC 6749 4.1.2.1): the client and its redirect URI first, and a
//! failure there is shown on Tessera's page, never redirected; after that every refusal is
//! the standard error redirect to the registered URI, with `state` and `iss`.

use super::{CODE_SECS, CodeRow, Grant, OidcInternal, OidcProvider, SCOPES, acr, amr};
use crate::Timestamp;
use crate::crypto::Token;
use crate::model::{EventKind, RequestMeta};
use crate::principal::AnySession;
use crate::store::Effects;
use serde::Deserialize;
use serde_json::json;

/// At most this long a `state`, `nonce` or `code_challenge`.
const MAX_PARAM: usize = 512;

/// The authorization request as the browser brought it (query or form).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct AuthorizeRequest {
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub response_type: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub login_hint: Option<String>,
    /// Tessera's own: the browser signed in or re-authenticated for this request after this
    /// time (unix seconds), which satisfies `prompt=login` and `max_age`.
    pub tessera_auth_after: Option<String>,
}

/// A refusal shown on Tessera's page: the redirect URI cannot be trusted.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    #[error("the request names no client_id")]
    MissingClient,
    #[error("no application is registered with this client_id")]
    UnknownClient,
    #[error("the request names no redirect_uri")]
    MissingRedirectUri,
    #[error("this redirect_uri is not registered for the application")]
    RedirectUriMismatch,
    #[error(transparent)]
    Internal(#[from] OidcInternal),
}

impl From<crate::store::StoreError> for AuthorizeError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Internal(e.into())
    }
}

/// What the browser does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Back to the application: a code, or an error, at its redirect URI.
    ToClient(String),
    /// Sign in on Tessera's pages, then come back to the request.
    SignIn {
        login_hint: Option<String>,
        auth_after: Timestamp,
    },
    /// The team requires 2FA and the user has none: set it up first.
    SetUpTwoFactor,
    /// `prompt=login` or `max_age`: authenticate again, then come back.
    Reauthenticate { auth_after: Timestamp },
}

/// The request's redirect target, and how to send errors there.
struct Target<'r> {
    redirect_uri: &'r str,
    state: Option<&'r str>,
    issuer: &'r str,
}

impl Target<'_> {
    fn url(&self, pairs: &[(&str, &str)]) -> String {
        let mut query: Vec<(&str, &str)> = pairs.to_vec();
        if let Some(state) = self.state {
            query.push(("state", state));
        }
        query.push(("iss", self.issuer));
        let encoded = serde_urlencoded::to_string(&query).unwrap_or_default();
        let separator = if self.redirect_uri.contains('?') {
            '&'
        } else {
            '?'
        };
        format!("{}{separator}{encoded}", self.redirect_uri)
    }

    fn error(&self, code: &str, description: &str) -> Next {
        Next::ToClient(self.url(&[("error", code), ("error_description", description)]))
    }
}

/// The prompt values of a request, or an error.
fn prompts(prompt: Option<&str>) -> Result<Vec<&str>, &'static str> {
    let values: Vec<&str> = prompt
        .unwrap_or_default()
        .split(' ')
        .filter(|p| !p.is_empty())
        .collect();
    if values
        .iter()
        .any(|p| !matches!(*p, "none" | "login" | "consent" | "select_account"))
    {
        return Err("unknown prompt value");
    }
    if values.contains(&"none") && values.len() > 1 {
        return Err("prompt=none cannot be combined with other values");
    }
    Ok(values)
}

impl OidcProvider {
    /// Checks the request and decides; issues the code when nothing else is due. `session`
    /// is the browser's Tessera session, if any.
    pub async fn authorize(
        &self,
        request: &AuthorizeRequest,
        session: Option<&AnySession>,
        meta: &RequestMeta,
    ) -> Result<Next, AuthorizeError> {
        let client_id = request
            .client_id
            .as_deref()
            .ok_or(AuthorizeError::MissingClient)?;
        let client = self
            .ctx
            .store
            .find_client(client_id)
            .await?
            .ok_or(AuthorizeError::UnknownClient)?;
        let redirect_uri = request
            .redirect_uri
            .as_deref()
            .ok_or(AuthorizeError::MissingRedirectUri)?;
        if !client.redirect_uris.iter().any(|u| u == redirect_uri) {
            return Err(AuthorizeError::RedirectUriMismatch);
        }
        let target = Target {
            redirect_uri,
            state: request.state.as_deref(),
            issuer: self.issuer_url(),
        };
        let invalid = |why: &str| Ok(target.error("invalid_request", why));
        if request
            .state
            .as_deref()
            .is_some_and(|s| s.len() > MAX_PARAM)
            || request
                .nonce
                .as_deref()
                .is_some_and(|s| s.len() > MAX_PARAM)
        {
            return invalid("state and nonce are at most 512 characters");
        }
        match request.response_type.as_deref() {
            Some("code") => {}
            None => return invalid("response_type is required"),
            Some(_) => {
                return Ok(target.error(
                    "unsupported_response_type",
                    "only the authorization code flow (response_type=code) is supported",
                ));
            }
        }
        let requested: Vec<&str> = request
            .scope
            .as_deref()
            .unwrap_or_default()
            .split(' ')
            .collect();
        if !requested.contains(&"openid") {
            return Ok(target.error("invalid_scope", "the openid scope is required"));
        }
        let scope = SCOPES
            .into_iter()
            .filter(|s| requested.contains(s))
            .collect::<Vec<_>>()
            .join(" ");
        match (
            request.code_challenge.as_deref(),
            request.code_challenge_method.as_deref(),
        ) {
            (None, _) if client.secret_hash.is_none() => {
                return invalid("a public client must use PKCE (code_challenge with S256)");
            }
            (None, None) => {}
            (None, Some(_)) => return invalid("code_challenge_method without code_challenge"),
            (Some(challenge), Some("S256"))
                if (43..=128).contains(&challenge.len())
                    && challenge
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') => {}
            (Some(_), Some("S256")) => return invalid("code_challenge is not an S256 challenge"),
            (Some(_), _) => return invalid("code_challenge_method must be S256"),
        }
        let prompt = match prompts(request.prompt.as_deref()) {
            Ok(prompt) => prompt,
            Err(why) => return invalid(why),
        };
        let max_age = match request.max_age.as_deref().map(str::parse::<i64>) {
            None => None,
            Some(Ok(secs)) if secs >= 0 => Some(secs),
            Some(_) => return invalid("max_age must be a number of seconds"),
        };
        let now = self.ctx.now();
        let quiet = prompt.contains(&"none");
        let Some(session) = session else {
            if quiet {
                return Ok(target.error("login_required", "the user is not signed in"));
            }
            return Ok(Next::SignIn {
                login_hint: request.login_hint.clone(),
                auth_after: now,
            });
        };
        if session.setup_only() {
            if quiet {
                return Ok(target.error(
                    "interaction_required",
                    "the user must set up two-factor authentication first",
                ));
            }
            return Ok(Next::SetUpTwoFactor);
        }
        let authenticated = session.session().reauthenticated_at;
        let fresh_for_request = request
            .tessera_auth_after
            .as_deref()
            .and_then(|t| t.parse::<i64>().ok())
            .is_some_and(|after| authenticated.unix() >= after);
        let too_old = max_age.is_some_and(|secs| now.unix() - authenticated.unix() > secs);
        if (prompt.contains(&"login") || too_old) && !fresh_for_request {
            if quiet {
                return Ok(target.error("login_required", "the user must authenticate again"));
            }
            return Ok(Next::Reauthenticate { auth_after: now });
        }
        if client
            .account_id
            .is_some_and(|account| account != session.account().id)
        {
            return Ok(target.error(
                "access_denied",
                "this application is only for the users of another team",
            ));
        }
        let code = Token::generate();
        let methods = amr(session.session().method);
        let grant = Grant {
            id: uuid::Uuid::new_v4().to_string(),
            client_id: client.id.clone(),
            user_id: session.user().id,
            session_id: Some(session.session().id),
            scope,
            auth_time: authenticated,
            amr: methods.join(" "),
        };
        let row = CodeRow {
            grant,
            redirect_uri: redirect_uri.to_owned(),
            nonce: request.nonce.clone(),
            code_challenge: request.code_challenge.clone(),
            created_at: now,
            expires_at: now.plus_secs(CODE_SECS),
        };
        let event = self.event(
            session.user(),
            EventKind::OidcAuthorized,
            meta,
            json!({ "client_id": client.id, "amr": methods, "acr": acr(&methods) }),
        );
        self.ctx
            .store
            .create_code(&code.hash(), &row, &Effects::event(event))
            .await?;
        Ok(Next::ToClient(target.url(&[("code", code.expose())])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_values_are_checked() {
        assert_eq!(prompts(None).unwrap(), Vec::<&str>::new());
        assert_eq!(
            prompts(Some("login consent")).unwrap(),
            ["login", "consent"]
        );
        assert!(prompts(Some("none login")).is_err());
        assert!(prompts(Some("bogus")).is_err());
    }

    #[test]
    fn errors_go_to_the_redirect_uri_with_state_and_issuer() {
        let target = Target {
            redirect_uri: "https://app/cb?x=1",
            state: Some("s t"),
            issuer: "https://id",
        };
        assert_eq!(
            target.error("access_denied", "no"),
            Next::ToClient(
                "https://app/cb?x=1&error=access_denied&error_description=no&state=s+t\
                 &iss=https%3A%2F%2Fid"
                    .into()
            )
        );
    }
}
