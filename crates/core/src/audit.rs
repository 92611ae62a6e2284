//! The audit log (SPEC §5): every security change records an event in the transaction of
//! the change ([`crate::store::Effects`]); this room reads them back and records the few that
//! belong to no other change.

use crate::ctx::{Ctx, Internal};
use crate::model::{SecurityEvent, UserId};
use crate::principal::FullSession;
use crate::store::{Effects, StoreResult};
use async_trait::async_trait;
use std::sync::Arc;

#[async_trait]
pub trait EventStore: Send + Sync {
    /// Records events and queues emails that belong to no other change.
    async fn record(&self, effects: &Effects) -> StoreResult<()>;
    /// A user's events, newest first, older than the event id `before` when given.
    async fn user_events(
        &self,
        user: UserId,
        before: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<SecurityEvent>>;
}

/// A user's own audit log. Cheap to clone.
#[derive(Clone)]
pub struct Audit(pub(crate) Arc<Ctx>);

impl Audit {
    /// The signed-in user's events, newest first, older than event `before` when given.
    pub async fn my_events(
        &self,
        me: &FullSession,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<SecurityEvent>, Internal> {
        Ok(self
            .0
            .store
            .user_events(me.user().id, before, limit)
            .await?)
    }
}
