//! What every kind of second factor shares in storage: whether 2FA is on (any active factor,
//! the `active_factors` view), the recovery codes and paper key that back them, and turning
//! them all off.

use super::{FactorKind, TwoFactorStatus};
use crate::Timestamp;
use crate::model::UserId;
use crate::store::{Effects, StoreResult};
use async_trait::async_trait;

#[async_trait]
pub trait FactorStore: Send + Sync {
    /// The user's active second factors: 2FA is on when there is any.
    async fn active_factors(&self, user: UserId) -> StoreResult<Vec<FactorKind>>;
    async fn two_factor_status(&self, user: UserId, now: Timestamp)
    -> StoreResult<TwoFactorStatus>;
    /// Removes every factor, the recovery codes and any pending setup, ends the trust of the
    /// user's devices (SPEC §9), and with `end_sessions` every session of the user too (a
    /// reset by someone else); `false` if there was no factor.
    async fn disable_two_factor(
        &self,
        user: UserId,
        end_sessions: bool,
        effects: &Effects,
    ) -> StoreResult<bool>;
    /// Like [`FactorStore::disable_two_factor`], only if `paper_key_hash` matches.
    async fn disable_with_paper_key(
        &self,
        user: UserId,
        paper_key_hash: &[u8],
        effects: &Effects,
    ) -> StoreResult<bool>;
    /// Replaces the recovery codes of a user with 2FA on; `false` without it.
    async fn replace_recovery_codes(
        &self,
        user: UserId,
        hashes: &[Vec<u8>],
        now: Timestamp,
        effects: &Effects,
    ) -> StoreResult<bool>;
}
