//! What the OpenID Connect provider needs from storage: signing keys, clients, codes and
//! tokens. Every method is one atomic unit with its [`Effects`].

use crate::Timestamp;
use crate::crypto::TokenHash;
use crate::model::{AccountId, SessionId, UserId};
use crate::store::{Effects, StoreResult};
use async_trait::async_trait;

/// A key ID tokens are signed with; the private half sealed under the master key, bound to
/// its id.
#[derive(Clone, Debug)]
pub struct SigningKeyRow {
    /// The `kid`.
    pub id: String,
    /// `RS256` or `ES256`.
    pub alg: String,
    /// The private key (PKCS#1 DER for RSA, PKCS#8 DER for P-256), sealed.
    pub private_sealed: Vec<u8>,
    /// The public key as a JWK (JSON text).
    pub public_jwk: String,
    pub created_at: Timestamp,
    /// Set when a newer key took over; published until its tokens expire.
    pub retired_at: Option<Timestamp>,
}

/// A registered relying party.
#[derive(Clone, Debug)]
pub struct ClientRow {
    pub id: String,
    /// The team that registered it; `None` for the operator's clients (any team's users).
    pub account_id: Option<AccountId>,
    pub name: String,
    /// SHA-256 of the secret; `None` for a public client (PKCE only).
    pub secret_hash: Option<Vec<u8>>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// `RS256` (default) or `ES256`.
    pub id_token_alg: String,
    pub created_at: Timestamp,
}

/// What an authorization code stands for.
#[derive(Clone, Debug)]
pub struct Grant {
    /// Names the code and every token issued from it (one family).
    pub id: String,
    pub client_id: String,
    pub user_id: UserId,
    pub session_id: Option<SessionId>,
    pub scope: String,
    /// When the user last authenticated (`auth_time`).
    pub auth_time: Timestamp,
    /// How (`amr`, space-separated).
    pub amr: String,
}

/// An authorization code as stored.
#[derive(Clone, Debug)]
pub struct CodeRow {
    pub grant: Grant,
    pub redirect_uri: String,
    pub nonce: Option<String>,
    /// The PKCE S256 challenge, if the request had one.
    pub code_challenge: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// An access or refresh token as stored.
#[derive(Clone, Debug)]
pub struct TokenRow {
    pub grant: Grant,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// Tokens to write: an access token and perhaps a refresh token, of one grant.
#[derive(Clone, Debug)]
pub struct NewTokens {
    pub grant: Grant,
    pub access: TokenHash,
    pub access_expires_at: Timestamp,
    pub refresh: Option<(TokenHash, Timestamp)>,
    pub now: Timestamp,
}

/// How spending a code or a refresh token ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spent {
    /// It was unused and is used now; the new tokens are written.
    Done,
    /// It was used before (or its family revoked): every token of its grant is revoked now.
    Reused,
    /// No such code or token any more, or expired.
    Unknown,
}

#[async_trait]
pub trait OidcStore: Send + Sync {
    /// Every signing key still published (current, or retired after `published_since`).
    async fn signing_keys(&self, published_since: Timestamp) -> StoreResult<Vec<SigningKeyRow>>;
    /// Adds `key` as its algorithm's current key unless one exists (a concurrent instance);
    /// with `rotate`, the current one is retired at `key.created_at` first. Answers whether
    /// it was added.
    async fn add_signing_key(
        &self,
        key: &SigningKeyRow,
        rotate: bool,
        effects: &Effects,
    ) -> StoreResult<bool>;

    async fn create_client(&self, client: &ClientRow, effects: &Effects) -> StoreResult<()>;
    async fn find_client(&self, id: &str) -> StoreResult<Option<ClientRow>>;
    /// The operator's clients (`None`) or one team's.
    async fn list_clients(&self, account: Option<AccountId>) -> StoreResult<Vec<ClientRow>>;
    /// Removes the client (of `account`, or the operator's with `None`) with its codes and
    /// tokens; `false` if there was none.
    async fn remove_client(
        &self,
        id: &str,
        account: Option<AccountId>,
        effects: &Effects,
    ) -> StoreResult<bool>;

    async fn create_code(
        &self,
        code: &TokenHash,
        row: &CodeRow,
        effects: &Effects,
    ) -> StoreResult<()>;
    /// The code, used or not, if it exists.
    async fn find_code(&self, code: &TokenHash) -> StoreResult<Option<(CodeRow, bool)>>;
    /// In one transaction: marks the code used if it is unused and unexpired at
    /// `tokens.now`, and writes `tokens` with `done`. A code used before (also by a
    /// concurrent request) revokes its grant's tokens instead, with `reused`.
    async fn spend_code(
        &self,
        code: &TokenHash,
        tokens: &NewTokens,
        done: &Effects,
        reused: &Effects,
    ) -> StoreResult<Spent>;
    /// A refresh token, spent or not, if it exists.
    async fn find_refresh_token(&self, token: &TokenHash) -> StoreResult<Option<(TokenRow, bool)>>;
    /// The same for a refresh token: spent once (rotation), and only while the session it
    /// was issued on (if any) exists; a reused one, or one of a revoked family, revokes the
    /// whole family.
    async fn spend_refresh_token(
        &self,
        token: &TokenHash,
        tokens: &NewTokens,
        done: &Effects,
        reused: &Effects,
    ) -> StoreResult<Spent>;
    /// A live access token (unrevoked, unexpired at `now`).
    async fn find_access_token(
        &self,
        token: &TokenHash,
        now: Timestamp,
    ) -> StoreResult<Option<TokenRow>>;
    /// Revokes every token issued on `session` (RP-initiated logout).
    async fn revoke_session_tokens(
        &self,
        session: SessionId,
        now: Timestamp,
        effects: &Effects,
    ) -> StoreResult<u64>;
}
