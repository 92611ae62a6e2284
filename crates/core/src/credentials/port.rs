//! What changing and resetting a password need from storage: reset links and the one
//! transaction each change of password is.

use crate::Timestamp;
use crate::crypto::TokenHash;
use crate::model::{Account, SessionId, User, UserId};
use crate::store::{Effects, StoreResult};
use crate::throttle::send_window::SendGate;
use crate::throttle::{RetryAt, Scope};
use async_trait::async_trait;

/// A stored reset link, found by the hash of its token, with the user it is for.
#[derive(Clone, Debug)]
pub struct ResetLink {
    pub user: User,
    pub account: Account,
    pub expires_at: Timestamp,
    /// When it was used, or retired by another change of the password.
    pub used_at: Option<Timestamp>,
}

/// A reset link about to be stored.
#[derive(Clone, Copy, Debug)]
pub struct NewResetLink<'a> {
    pub user: UserId,
    pub token: &'a TokenHash,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

#[async_trait]
pub trait PasswordStore: Send + Sync {
    /// Stores a reset link and queues its email (in `effects`), if `sends` (the send window
    /// of [`crate::throttle::send_window`], given when the user's earlier links were made)
    /// admits it under the user's row lock; else stores and sends nothing. Links expired
    /// for a week are forgotten.
    async fn create_reset_link(
        &self,
        link: NewResetLink<'_>,
        sends: &mut SendGate<'_>,
        effects: &Effects,
    ) -> StoreResult<Result<(), RetryAt>>;
    /// The link whose token hashes to `token`, if its user still exists.
    async fn find_reset_link(&self, token: &TokenHash) -> StoreResult<Option<ResetLink>>;
    /// In one transaction, if the link `token` of `user` is unused and live at `now`: marks
    /// it used, sets `password_hash`, ends every session of the user and the trust of their
    /// devices, retires their other links, forgets the `lifted` throttles and writes
    /// `effects`. `false` (nothing written)
    /// if the link was no longer usable, a concurrent reset with it included.
    async fn reset_password(
        &self,
        token: &TokenHash,
        user: UserId,
        now: Timestamp,
        password_hash: &str,
        lifted: &[(Scope, String)],
        effects: &Effects,
    ) -> StoreResult<bool>;
    /// In one transaction, if the session `keep` of `user` still exists: sets
    /// `password_hash`, ends every other session of the user and the trust of their
    /// devices, retires their live reset links and writes `effects`. `false` (nothing written) if the session is gone.
    async fn change_password(
        &self,
        user: UserId,
        keep: SessionId,
        now: Timestamp,
        password_hash: &str,
        effects: &Effects,
    ) -> StoreResult<bool>;
}
