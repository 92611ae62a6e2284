//! What the throttles need from storage.

use super::{Scope, ThrottleState};
use crate::store::{Effects, StoreResult};
use async_trait::async_trait;

/// A throttle change: gets the current state (default when the key is new), returns the next
/// and what the transition causes (a lock's event and email), written in the same
/// transaction.
pub type ThrottleChange<'a> = dyn FnMut(ThrottleState) -> (ThrottleState, Effects) + Send + 'a;

#[async_trait]
pub trait ThrottleStore: Send + Sync {
    /// Applies `change` to the state of (`scope`, `key`) atomically and returns the new state.
    async fn update_throttle(
        &self,
        scope: Scope,
        key: &str,
        change: &mut ThrottleChange<'_>,
    ) -> StoreResult<ThrottleState>;
    /// Forgets a throttle's failures and lock (the operator's `unlock`); `false` if it had
    /// none.
    async fn clear_throttle(&self, scope: Scope, key: &str) -> StoreResult<bool>;
}
