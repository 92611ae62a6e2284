//! What sign-up needs from storage: sign-ups waiting for their emailed link.

use crate::Timestamp;
use crate::crypto::TokenHash;
use crate::email::Email;
use crate::model::{Account, SignupId, User};
#[cfg(doc)]
use crate::store::Unique;
use crate::store::{Effects, StoreResult};
use async_trait::async_trait;

/// A sign-up waiting for its link: everything the team and its owner will be made of. It
/// reserves nothing (no user, no account) until the link is followed.
#[derive(Clone, Debug)]
pub struct PendingSignup {
    pub id: SignupId,
    pub account_name: String,
    pub name: String,
    pub email: Email,
    /// The argon2id hash of the password chosen at sign-up; `None` for a team the operator
    /// created, whose owner chooses the password at the link.
    pub password_hash: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
}

#[async_trait]
pub trait SignupStore: Send + Sync {
    /// Stores a pending sign-up under its token's hash, with its effects (the email holding
    /// the link).
    async fn create_signup(
        &self,
        signup: &PendingSignup,
        token: &TokenHash,
        effects: &Effects,
    ) -> StoreResult<()>;
    /// The sign-up a token belongs to, whatever its state.
    async fn find_signup(&self, token: &TokenHash) -> StoreResult<Option<PendingSignup>>;
    /// In one transaction: marks the sign-up used if it is still unused and unexpired at
    /// `now`, and creates `account` with `owner`. `false` if it was no longer open (used,
    /// also by a concurrent request, or expired); `Conflict(Unique::Email)` if a user with the
    /// email appeared meanwhile (then nothing changes).
    async fn confirm_signup(
        &self,
        id: SignupId,
        now: Timestamp,
        account: &Account,
        owner: &User,
        password_hash: &str,
        effects: &Effects,
    ) -> StoreResult<bool>;
}
