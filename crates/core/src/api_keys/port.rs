//! What API keys need from storage.

use super::allowlist::IpRule;
use crate::Timestamp;
use crate::crypto::TokenHash;
use crate::model::{Account, AccountId, ApiKeyId, User, UserId};
use crate::store::{Effects, StoreResult};
use async_trait::async_trait;

/// A key as its account's managers see it (never the key itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub account_id: AccountId,
    pub label: String,
    /// The key's first 8 characters (`tsk_` and 4 more).
    pub prefix: String,
    pub grants: Vec<String>,
    pub allowed_ips: Vec<IpRule>,
    pub created_at: Timestamp,
    pub created_by: UserId,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub last_used_ip: Option<String>,
    /// When it was revoked; a revoked key is kept (its uses are refused and audited) but
    /// listed no more.
    pub revoked_at: Option<Timestamp>,
}

/// What a change of a key replaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyChange {
    pub label: String,
    pub grants: Vec<String>,
    pub allowed_ips: Vec<IpRule>,
}

/// A key found by its hash, with its creator, their account, and whether the creator has
/// 2FA on (what they may give, and so what the key may still do), read together.
#[derive(Clone, Debug)]
pub struct ApiKeyContext {
    pub key: ApiKey,
    pub creator: User,
    pub account: Account,
    pub creator_two_factor_enabled: bool,
}

#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// Stores a new key (its creator's row locked: a creator deleted meanwhile is
    /// [`crate::store::StoreError::Raced`]).
    async fn create_api_key(
        &self,
        key: &ApiKey,
        hash: &TokenHash,
        effects: &Effects,
    ) -> StoreResult<()>;
    /// The account's keys not revoked, newest first.
    async fn list_api_keys(&self, account: AccountId) -> StoreResult<Vec<ApiKey>>;
    /// One key of the account, revoked or not.
    async fn get_api_key(&self, account: AccountId, id: ApiKeyId) -> StoreResult<Option<ApiKey>>;
    /// Replaces the label, grants and allowed addresses of a key of `account` that is not
    /// revoked; the key as it now is, `None` if there is no such key.
    async fn update_api_key(
        &self,
        account: AccountId,
        id: ApiKeyId,
        change: &ApiKeyChange,
        effects: &Effects,
    ) -> StoreResult<Option<ApiKey>>;
    /// Revokes a key of `account` at `now`; `false` if it is unknown or revoked already (so
    /// of two racing revocations one writes its effects).
    async fn revoke_api_key(
        &self,
        account: AccountId,
        id: ApiKeyId,
        now: Timestamp,
        effects: &Effects,
    ) -> StoreResult<bool>;
    /// The key whose hash is `hash`, revoked or not, with its context: one indexed read.
    async fn find_api_key(&self, hash: &TokenHash) -> StoreResult<Option<ApiKeyContext>>;
    /// Records a use at `now` from `ip` if the last one recorded is at or before `due` (one
    /// conditional write, so concurrent uses write it once); `false` if not due.
    async fn touch_api_key(
        &self,
        id: ApiKeyId,
        now: Timestamp,
        due: Timestamp,
        ip: Option<&str>,
    ) -> StoreResult<bool>;
}
