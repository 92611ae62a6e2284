//! What single sign-on needs from outside: storage (the team's connection, pending sign-ins,
//! linked identities) and the identity provider itself, reached over HTTP by an adapter
//! (`tessera-server`'s `idp`), so that the rules here stay free of HTTP.

use crate::Timestamp;
use crate::crypto::TokenHash;
use crate::model::{Account, AccountId, InvitationId, SsoTwoFactor, User, UserId};
use crate::store::{Effects, StoreResult};
use async_trait::async_trait;
use secrecy::SecretString;

/// A team's identity provider, as stored.
#[derive(Clone, Debug)]
pub struct SsoConnection {
    pub account_id: AccountId,
    /// The issuer URL, exactly as the provider names itself in its discovery document.
    pub issuer: String,
    pub client_id: String,
    /// Sealed under the master key (label `sso`), bound to the account id.
    pub client_secret_sealed: Vec<u8>,
    /// Lowercase domains whose addresses sign in through this provider; each belongs to one
    /// team only.
    pub email_domains: Vec<String>,
    /// Whether a first sign-in by an unknown address of an allowed domain creates a member.
    pub jit_provisioning: bool,
    pub updated_at: Timestamp,
}

/// A sign-in sent to the provider and not back yet: found by the hash of its `state`, taken
/// once.
#[derive(Clone, Debug)]
pub struct PendingSsoLogin {
    /// The row's id, which its sealed secrets are bound to.
    pub id: String,
    pub state: TokenHash,
    pub account_id: AccountId,
    /// The issuer it was sent to: a connection changed meanwhile does not take it back.
    pub issuer: String,
    /// The nonce and the PKCE verifier, sealed under the master key (label `sso`).
    pub secrets_sealed: Vec<u8>,
    /// Started by a page, whose browser holds the state in a cookie that must come back with
    /// it (no login CSRF); `false` for `POST /api/v1/login/sso`.
    pub browser_bound: bool,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A person at a provider (`iss`, `sub`), linked to a user.
#[derive(Clone, Debug)]
pub struct SsoIdentity {
    pub issuer: String,
    pub subject: String,
    pub user_id: UserId,
    pub created_at: Timestamp,
}

#[async_trait]
pub trait SsoStore: Send + Sync {
    /// The account's connection, if it has one.
    async fn sso_connection(&self, account: AccountId) -> StoreResult<Option<SsoConnection>>;
    /// The connection that serves an email domain, with its account.
    async fn sso_connection_for_domain(
        &self,
        domain: &str,
    ) -> StoreResult<Option<(SsoConnection, Account)>>;
    /// Creates or replaces the account's connection with its domains, and sets the account's
    /// `sso_two_factor`, in one transaction. `Conflict(Unique::SsoDomain)` (nothing written)
    /// when a domain is another team's.
    async fn save_sso_connection(
        &self,
        connection: &SsoConnection,
        mode: SsoTwoFactor,
        effects: &Effects,
    ) -> StoreResult<()>;
    async fn create_sso_login(&self, login: &PendingSsoLogin) -> StoreResult<()>;
    /// Deletes and answers the pending sign-in with this state, in one statement: of two
    /// concurrent callbacks with the same state, one gets it.
    async fn take_sso_login(&self, state: &TokenHash) -> StoreResult<Option<PendingSsoLogin>>;
    /// The user linked to `(issuer, subject)`.
    async fn find_sso_identity(&self, issuer: &str, subject: &str) -> StoreResult<Option<User>>;
    /// Links `(issuer, subject)` to an existing user and writes `effects`; `false` (nothing
    /// written) if the pair is linked already or the user already has an identity at this
    /// issuer (a concurrent first sign-in won).
    async fn link_sso_identity(
        &self,
        identity: &SsoIdentity,
        effects: &Effects,
    ) -> StoreResult<bool>;
    /// Creates `user` (no password) and links `identity` to them, in one transaction.
    /// `Conflict(Unique::Email)` or `Conflict(Unique::SsoIdentity)` (nothing written) when a
    /// concurrent sign-in got there first.
    async fn provision_sso_user(
        &self,
        user: &User,
        identity: &SsoIdentity,
        effects: &Effects,
    ) -> StoreResult<()>;
    /// Accepts the SSO invitation `invitation` (if still pending and live at `now`) by
    /// creating `user` (no password) linked to `identity`, in one transaction; `false`
    /// (nothing written) if it was no longer open. Conflicts as [`Self::provision_sso_user`].
    async fn accept_sso_invitation(
        &self,
        invitation: InvitationId,
        now: Timestamp,
        user: &User,
        identity: &SsoIdentity,
        effects: &Effects,
    ) -> StoreResult<bool>;
    /// The account's users who sign in with SSO.
    async fn sso_users(&self, account: AccountId) -> StoreResult<Vec<User>>;
}

/// The client Tessera is at a provider.
pub struct ProviderClient<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub client_secret: &'a SecretString,
}

/// Where to send the person, and what must come back with them.
pub struct AuthorizationRequest {
    /// The provider's authorization endpoint with the code flow's parameters, PKCE (S256),
    /// `state` and `nonce`.
    pub url: String,
    pub nonce: SecretString,
    pub pkce_verifier: SecretString,
}

/// What a checked ID token says (signature, `iss`, `aud`, `exp` and `nonce` checked).
#[derive(Clone, Debug)]
pub struct VerifiedIdentity {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
}

/// Why the provider could not be used; the text is for the person, in words, and never holds a
/// secret.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Not reachable in time, or its discovery document is unusable.
    #[error("{0}")]
    Unreachable(String),
    /// It answered the code exchange with an error (a wrong client secret, a used code).
    #[error("{0}")]
    Rejected(String),
    /// Its ID token failed a check (signature, issuer, audience, expiry, nonce).
    #[error("{0}")]
    InvalidToken(String),
}

/// The identity provider, over HTTP: every call has a timeout.
#[async_trait]
pub trait IdentityProvider: Send + Sync {
    /// Fetches and checks the discovery document of `issuer`.
    async fn discover(&self, issuer: &str) -> Result<(), ProviderError>;
    /// The authorization URL for a new sign-in carrying `state`, with a fresh nonce and PKCE
    /// verifier.
    async fn authorization(
        &self,
        client: &ProviderClient<'_>,
        state: &str,
    ) -> Result<AuthorizationRequest, ProviderError>;
    /// Exchanges `code` (with the PKCE verifier) and checks the ID token against the nonce.
    async fn exchange(
        &self,
        client: &ProviderClient<'_>,
        code: &str,
        pkce_verifier: &SecretString,
        nonce: &SecretString,
    ) -> Result<VerifiedIdentity, ProviderError>;
}
