//! What the master-key guard needs from storage.

use crate::Timestamp;
use crate::store::StoreResult;
use async_trait::async_trait;

/// The row that says which master key the database belongs to (SPEC §14).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyCheck {
    /// [`crate::crypto::MasterKey::fingerprint`] of the key the data is sealed under.
    pub fingerprint: Vec<u8>,
    /// The MAC keys (codes, CSRF), sealed under that key. They outlive rotations: codes are
    /// stored only as MACs, which cannot be recomputed under a new key.
    pub mac_keys_sealed: Vec<u8>,
    pub created_at: Timestamp,
    pub rotated_at: Option<Timestamp>,
}

/// Where a sealed value lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealedKind {
    /// `totp_factors.secret_sealed`, by user id.
    TotpFactor,
    /// `totp_enrollments.secret_sealed` (a pending setup), by user id.
    TotpEnrollment,
    /// `outbox.payload` of an email not yet sent, by email id.
    Outbox,
    /// `sso_connections.client_secret_sealed`, by account id.
    SsoClientSecret,
    /// `sso_logins.secrets_sealed` (nonce and PKCE verifier), by pending sign-in id.
    SsoLogin,
    /// `oidc_signing_keys.private_sealed`, by key id (SPEC §13).
    OidcSigningKey,
}

impl SealedKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TotpFactor => "totp secret",
            Self::TotpEnrollment => "pending totp setup",
            Self::Outbox => "queued email",
            Self::SsoClientSecret => "SSO client secret",
            Self::SsoLogin => "pending SSO sign-in",
            Self::OidcSigningKey => "OIDC signing key",
        }
    }
}

/// One sealed value and the row it belongs to.
#[derive(Clone, Debug)]
pub struct SealedRow {
    pub kind: SealedKind,
    /// The row's key (a user id or an email id), as stored.
    pub id: String,
    pub sealed: Vec<u8>,
}

/// How a re-sealing transaction ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Resealed {
    /// Committed: every sealed value and the key check were replaced.
    Done { rows: u64 },
    /// A value could not be re-sealed (no key opens it); nothing changed.
    Unreadable { kind: SealedKind, id: String },
    /// The key check in force was not the expected one (another rotation); nothing changed.
    CheckChanged,
}

#[async_trait]
pub trait KeyStore: Send + Sync {
    /// The key check, if the database has one yet.
    async fn key_check(&self) -> StoreResult<Option<KeyCheck>>;

    /// Records `check` unless the database has one; answers the one in force (so instances
    /// starting together agree on the first).
    async fn record_key_check(&self, check: &KeyCheck) -> StoreResult<KeyCheck>;

    /// Up to `limit` sealed values of each kind, to try a key on.
    async fn sample_sealed(&self, limit: i64) -> StoreResult<Vec<SealedRow>>;

    /// In one transaction: each sealed value through `reseal`, then the key check replaced by
    /// `next`, provided the check in force has the fingerprint `expected`. `reseal` answering
    /// `None` aborts the whole.
    async fn reseal_all(
        &self,
        expected: &[u8],
        next: &KeyCheck,
        reseal: &mut (dyn for<'r> FnMut(&'r SealedRow) -> Option<Vec<u8>> + Send),
    ) -> StoreResult<Resealed>;
}
