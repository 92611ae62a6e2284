//! What security keys need from storage: the credentials, the ceremonies between start and
//! finish, and the writes that must be one transaction (adding the first key, removing the
//! last, signing in with a passkey).

use crate::Timestamp;
use crate::crypto::TokenHash;
use crate::model::{ChallengeId, SecurityKeyId, Session, SessionId, UserId};
use crate::store::{Effects, StoreResult};
use async_trait::async_trait;

/// A registered credential as stored: webauthn-rs's own record of it (JSON: the public key
/// and its settings, nothing secret) and the signature counter beside it.
#[derive(Clone, Debug)]
pub struct StoredKey {
    pub id: SecurityKeyId,
    pub user_id: UserId,
    /// The WebAuthn credential id (raw bytes), unique across users.
    pub credential_id: Vec<u8>,
    pub name: String,
    /// webauthn-rs's `Passkey`, as JSON.
    pub credential: String,
    /// The highest signature counter accepted so far.
    pub sign_count: i64,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

/// What a ceremony's state waits for, and under which key it is found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CeremonyKey {
    /// A registration of this user's (one at a time: restarting replaces it).
    Register(UserId),
    /// The security-key answer to this login challenge (it dies with the challenge).
    SecondStep(ChallengeId),
    /// A passkey sign-in, by its token's hash.
    Passkey(TokenHash),
    /// A re-authentication of this session (step-up, SPEC §9).
    Reauth(SessionId),
}

impl CeremonyKey {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Register(_) => "register",
            Self::SecondStep(_) => "second_step",
            Self::Passkey(_) => "passkey",
            Self::Reauth(_) => "reauth",
        }
    }

    /// The key column's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Self::Register(user) => format!("register:{user}").into_bytes(),
            Self::SecondStep(challenge) => format!("second_step:{challenge}").into_bytes(),
            Self::Passkey(hash) => hash.as_bytes().to_vec(),
            Self::Reauth(session) => format!("reauth:{session}").into_bytes(),
        }
    }
}

/// The backups the first factor brings (as TOTP activation does): recovery codes and the
/// paper key, hashed.
#[derive(Clone, Debug)]
pub struct FirstFactor {
    pub recovery_code_hashes: Vec<Vec<u8>>,
    pub paper_key_hash: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAdded {
    Added,
    /// This authenticator's credential is registered already (to someone).
    Duplicate,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRemoved {
    NotFound,
    /// Removed; other factors remain.
    Removed,
    /// Removed, and it was the last factor: 2FA is off (recovery codes, paper key and the
    /// trust of devices gone with it).
    TwoFactorOff,
}

/// A right assertion, to be accepted only if its counter rises (or both it and the stored
/// one are 0: an authenticator without a counter).
#[derive(Clone, Debug)]
pub struct KeyUse {
    pub key: SecurityKeyId,
    pub user: UserId,
    pub counter: u32,
    /// The credential's record, updated by webauthn-rs with what the assertion showed.
    pub credential: String,
    pub now: Timestamp,
}

#[async_trait]
pub trait SecurityKeyStore: Send + Sync {
    /// Keeps a ceremony's state until `expires_at`, replacing one under the same key.
    async fn put_ceremony(
        &self,
        key: &CeremonyKey,
        user: Option<UserId>,
        state: &str,
        expires_at: Timestamp,
    ) -> StoreResult<()>;
    /// A ceremony's state, left in place (a second step's: its challenge says when it ends).
    async fn get_ceremony(&self, key: &CeremonyKey, now: Timestamp) -> StoreResult<Option<String>>;
    /// Takes a ceremony's state: of two concurrent takers, one gets it.
    async fn take_ceremony(&self, key: &CeremonyKey, now: Timestamp)
    -> StoreResult<Option<String>>;
    /// The user's keys, oldest first.
    async fn security_keys(&self, user: UserId) -> StoreResult<Vec<StoredKey>>;
    /// The key with this WebAuthn credential id, whoever's it is.
    async fn find_security_key(&self, credential_id: &[u8]) -> StoreResult<Option<StoredKey>>;
    /// Adds a key, with `first` the recovery codes and paper key of the first factor (2FA
    /// turns on), and writes `effects`.
    async fn add_security_key(
        &self,
        key: &StoredKey,
        first: Option<&FirstFactor>,
        effects: &Effects,
    ) -> StoreResult<KeyAdded>;
    /// Removes one of the user's keys, writing `effects`, or `last_effects` when it was the
    /// last factor (and 2FA goes off with it, as [`crate::factors::FactorStore::disable_two_factor`]
    /// does).
    async fn remove_security_key(
        &self,
        user: UserId,
        key: SecurityKeyId,
        effects: &Effects,
        last_effects: &Effects,
    ) -> StoreResult<KeyRemoved>;
    /// Passkey sign-in: accepts `used` (its counter rising) and opens the session, in one
    /// transaction; `false` (nothing written) if the counter did not rise or the key is gone.
    async fn sign_in_with_key(
        &self,
        used: &KeyUse,
        session: (&Session, &TokenHash),
        effects: &Effects,
    ) -> StoreResult<bool>;
}
