//! `/oauth2/token` (the `authorization_code` and `refresh_token` grants, RFC 6749 §4.1.3 and
//! §6, PKCE RFC 7636) and `/oauth2/userinfo` (OIDC Core 5.3). Every refusal is one of the
//! standard error codes ([`TokenError::code`]).

use super::clients::secret_matches;
use super::signing::{ID_TOKEN_SECS, SigningAlg, at_hash};
use super::{
    ACCESS_SECS, ClientRow, CodeRow, Grant, NewTokens, OidcInternal, OidcProvider, REFRESH_SECS,
    Spent, acr,
};
use crate::crypto::{Token, secure_eq};
use crate::model::{EventKind, RequestMeta, User, UserId};
use crate::store::Effects;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// How the client authenticated: `client_secret_basic`, `client_secret_post`, or a public
/// client's bare `client_id`.
#[derive(Clone, Debug, Default)]
pub struct ClientAuth {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// Credentials came in the `Authorization` header (a refusal then answers 401 with
    /// `WWW-Authenticate`).
    pub basic: bool,
}

/// The token request's form.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// The successful token response.
#[derive(Clone, Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub id_token: String,
    pub scope: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    InvalidRequest(&'static str),
    #[error("client authentication failed")]
    InvalidClient { basic: bool },
    #[error("{0}")]
    InvalidGrant(&'static str),
    #[error("the client may not use this grant")]
    UnauthorizedClient,
    #[error("grant_type must be authorization_code or refresh_token")]
    UnsupportedGrantType,
    #[error(transparent)]
    Internal(#[from] OidcInternal),
}

impl From<crate::store::StoreError> for TokenError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Internal(e.into())
    }
}

impl TokenError {
    /// The `error` of the response (RFC 6749 §5.2).
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidClient { .. } => "invalid_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::Internal(_) => "server_error",
        }
    }
}

/// A bearer token refused at userinfo.
#[derive(Debug, thiserror::Error)]
pub enum UserinfoError {
    #[error("the access token is missing, expired or revoked")]
    InvalidToken,
    #[error(transparent)]
    Internal(#[from] OidcInternal),
}

impl From<crate::store::StoreError> for UserinfoError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Internal(e.into())
    }
}

/// The redirect URI and the PKCE verifier of a code exchange, against the code's request.
fn check_exchange(row: &CodeRow, request: &TokenRequest) -> Result<(), TokenError> {
    if request.redirect_uri.as_deref() != Some(row.redirect_uri.as_str()) {
        return Err(TokenError::InvalidGrant(
            "redirect_uri differs from the authorization request's",
        ));
    }
    match (&row.code_challenge, request.code_verifier.as_deref()) {
        (Some(challenge), Some(verifier)) if pkce_matches(challenge, verifier) => Ok(()),
        (None, None) => Ok(()),
        (Some(_), _) => Err(TokenError::InvalidGrant(
            "the PKCE code_verifier does not match",
        )),
        (None, Some(_)) => Err(TokenError::InvalidGrant(
            "code_verifier given, but the authorization request had no code_challenge",
        )),
    }
}

/// The S256 transform of a PKCE verifier (RFC 7636 §4.2).
fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Whether `verifier` is well-formed (43..=128 unreserved characters) and matches.
fn pkce_matches(challenge: &str, verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
        && secure_eq(s256(verifier).as_bytes(), challenge.as_bytes())
}

impl OidcProvider {
    /// The client that authenticated, or `invalid_client`. A confidential client needs its
    /// secret; a public one gives none.
    async fn client(&self, auth: &ClientAuth) -> Result<ClientRow, TokenError> {
        let refused = TokenError::InvalidClient { basic: auth.basic };
        let Some(id) = auth.client_id.as_deref() else {
            return Err(refused);
        };
        let Some(client) = self.ctx.store.find_client(id).await? else {
            return Err(refused);
        };
        match (&client.secret_hash, auth.client_secret.as_deref()) {
            (Some(_), Some(secret)) if secret_matches(&client, secret) => Ok(client),
            (None, None) => Ok(client),
            _ => Err(refused),
        }
    }

    /// Answers a token request.
    pub async fn token(
        &self,
        auth: &ClientAuth,
        request: &TokenRequest,
        meta: &RequestMeta,
    ) -> Result<TokenResponse, TokenError> {
        let grant_type = request
            .grant_type
            .as_deref()
            .ok_or(TokenError::InvalidRequest("grant_type is required"))?;
        if !matches!(grant_type, "authorization_code" | "refresh_token") {
            return Err(TokenError::UnsupportedGrantType);
        }
        let client = self.client(auth).await?;
        if grant_type == "authorization_code" {
            self.exchange_code(&client, request, meta).await
        } else {
            self.refresh(&client, request, meta).await
        }
    }

    async fn exchange_code(
        &self,
        client: &ClientRow,
        request: &TokenRequest,
        meta: &RequestMeta,
    ) -> Result<TokenResponse, TokenError> {
        let code = Token::from_client(
            request
                .code
                .as_deref()
                .ok_or(TokenError::InvalidRequest("code is required"))?,
        );
        let refused = TokenError::InvalidGrant("the code is invalid, expired or used");
        let Some((row, used)) = self.ctx.store.find_code(&code.hash()).await? else {
            return Err(refused);
        };
        if row.grant.client_id != client.id {
            return Err(TokenError::InvalidGrant(
                "the code was issued to another client",
            ));
        }
        // A used code is refused whatever else the request says, and revokes its grant.
        if !used {
            check_exchange(&row, request)?;
        }
        let now = self.ctx.now();
        let (user, account) = self.user_of(row.grant.user_id).await?.ok_or(refused)?;
        let issued = self
            .issue(client, &row.grant, &user, &account, row.nonce.as_deref())
            .await?;
        let tokens = issued.new_tokens(&row.grant, now);
        let done = self.event(
            &user,
            EventKind::OidcTokenIssued,
            meta,
            json!({ "client_id": client.id, "grant": "authorization_code" }),
        );
        let reused = self.event(
            &user,
            EventKind::OidcCodeReused,
            meta,
            json!({ "client_id": client.id, "revoked_grant": row.grant.id }),
        );
        match self
            .ctx
            .store
            .spend_code(
                &code.hash(),
                &tokens,
                &Effects::event(done),
                &Effects::event(reused),
            )
            .await?
        {
            Spent::Done => Ok(issued.response),
            Spent::Reused | Spent::Unknown => Err(TokenError::InvalidGrant(
                "the code is invalid, expired or used",
            )),
        }
    }

    async fn refresh(
        &self,
        client: &ClientRow,
        request: &TokenRequest,
        meta: &RequestMeta,
    ) -> Result<TokenResponse, TokenError> {
        let token = Token::from_client(
            request
                .refresh_token
                .as_deref()
                .ok_or(TokenError::InvalidRequest("refresh_token is required"))?,
        );
        let refused = TokenError::InvalidGrant("the refresh token is invalid, expired or revoked");
        let Some((row, _used)) = self.ctx.store.find_refresh_token(&token.hash()).await? else {
            return Err(refused);
        };
        if row.grant.client_id != client.id {
            return Err(TokenError::InvalidGrant(
                "the refresh token was issued to another client",
            ));
        }
        let now = self.ctx.now();
        let (user, account) = self.user_of(row.grant.user_id).await?.ok_or(refused)?;
        let issued = self
            .issue(client, &row.grant, &user, &account, None)
            .await?;
        let tokens = issued.new_tokens(&row.grant, now);
        let done = self.event(
            &user,
            EventKind::OidcTokenIssued,
            meta,
            json!({ "client_id": client.id, "grant": "refresh_token" }),
        );
        let reused = self.event(
            &user,
            EventKind::OidcRefreshReused,
            meta,
            json!({ "client_id": client.id, "revoked_grant": row.grant.id }),
        );
        match self
            .ctx
            .store
            .spend_refresh_token(
                &token.hash(),
                &tokens,
                &Effects::event(done),
                &Effects::event(reused),
            )
            .await?
        {
            Spent::Done => Ok(issued.response),
            Spent::Reused | Spent::Unknown => Err(TokenError::InvalidGrant(
                "the refresh token is invalid, expired or revoked",
            )),
        }
    }

    async fn user_of(
        &self,
        id: UserId,
    ) -> Result<Option<(User, crate::model::Account)>, OidcInternal> {
        let Some(user) = self.ctx.store.get_user(id).await? else {
            return Ok(None);
        };
        let Some(account) = self.ctx.store.get_account(user.account_id).await? else {
            return Ok(None);
        };
        Ok(Some((user, account)))
    }

    /// New tokens of `grant` and the signed ID token, not yet stored.
    async fn issue(
        &self,
        client: &ClientRow,
        grant: &Grant,
        user: &User,
        account: &crate::model::Account,
        nonce: Option<&str>,
    ) -> Result<Issued, TokenError> {
        let now = self.ctx.now();
        let access = Token::generate();
        let refresh = Token::generate();
        let amr: Vec<&str> = grant.amr.split(' ').filter(|m| !m.is_empty()).collect();
        let mut claims = self.user_claims(user, account, &grant.scope);
        claims.insert("iss".into(), json!(self.issuer_url()));
        claims.insert("aud".into(), json!(client.id));
        claims.insert("iat".into(), json!(now.unix()));
        claims.insert("exp".into(), json!(now.unix() + ID_TOKEN_SECS));
        claims.insert("auth_time".into(), json!(grant.auth_time.unix()));
        claims.insert("acr".into(), json!(acr(&amr)));
        claims.insert("amr".into(), json!(amr));
        claims.insert("at_hash".into(), json!(at_hash(access.expose())));
        claims.insert("azp".into(), json!(client.id));
        if let Some(nonce) = nonce {
            claims.insert("nonce".into(), json!(nonce));
        }
        let alg = SigningAlg::parse(&client.id_token_alg).unwrap_or(SigningAlg::Rs256);
        let signer = self.signer(alg).await?;
        let id_token = signer
            .sign(&Value::Object(claims))
            .map_err(OidcInternal::from)?;
        Ok(Issued {
            response: TokenResponse {
                access_token: access.expose().to_owned(),
                token_type: "Bearer",
                expires_in: ACCESS_SECS,
                refresh_token: Some(refresh.expose().to_owned()),
                id_token,
                scope: grant.scope.clone(),
            },
            access,
            refresh,
        })
    }

    /// The claims of userinfo for a bearer access token.
    pub async fn userinfo(&self, access_token: &str) -> Result<Value, UserinfoError> {
        let now = self.ctx.now();
        let Some(row) = self
            .ctx
            .store
            .find_access_token(&Token::from_client(access_token).hash(), now)
            .await?
        else {
            return Err(UserinfoError::InvalidToken);
        };
        let (user, account) = self
            .user_of(row.grant.user_id)
            .await?
            .ok_or(UserinfoError::InvalidToken)?;
        Ok(Value::Object(self.user_claims(
            &user,
            &account,
            &row.grant.scope,
        )))
    }
}

/// Tokens issued, with the response that carries them.
struct Issued {
    response: TokenResponse,
    access: Token,
    refresh: Token,
}

impl Issued {
    fn new_tokens(&self, grant: &Grant, now: crate::Timestamp) -> NewTokens {
        NewTokens {
            grant: grant.clone(),
            access: self.access.hash(),
            access_expires_at: now.plus_secs(ACCESS_SECS),
            refresh: Some((self.refresh.hash(), now.plus_secs(REFRESH_SECS))),
            now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_an_independent_computation() {
        // base64url(sha256(verifier)) by Python's hashlib.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU2p1r_wW-gFWFOEjXk";
        let challenge = "I4rod0ZdIgOF5Ons1XgdpXHKMawnUN6kdAxEkYGFJHY";
        assert_eq!(s256(verifier), challenge);
        assert!(pkce_matches(challenge, verifier));
        assert!(!pkce_matches(
            challenge,
            "dBjftJeZ4CVP-mB92K27uhbUJU2p1r_wW-gFWFOEjXX"
        ));
        assert!(!pkce_matches(challenge, "short"));
    }
}
