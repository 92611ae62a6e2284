//! The durable outbox, as the mail worker and the operator reach it.

use crate::Timestamp;
use crate::model::OutboxStatus;
use crate::store::StoreResult;
use async_trait::async_trait;
use uuid::Uuid;

/// An email claimed for delivery.
#[derive(Clone, Debug)]
pub struct QueuedEmail {
    pub id: Uuid,
    pub kind: String,
    pub recipient: String,
    pub payload: Vec<u8>,
    /// Delivery attempts so far, this one included.
    pub attempts: i64,
}

/// An outbox row, for the operator.
#[derive(Clone, Debug)]
pub struct OutboxEntry {
    pub id: Uuid,
    pub kind: String,
    pub recipient: String,
    pub status: OutboxStatus,
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub sent_at: Option<Timestamp>,
}

/// The durable outbox. Workers claim due emails under a lease (`claim` identifies the
/// claimant); every later change names the claim, so a worker whose lease ran out cannot
/// overwrite the outcome of the one that took over.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Claims up to `limit` pending emails due at `now` and not leased by another worker,
    /// until `lease_until`; counts the attempt.
    async fn claim_emails(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        claim: Uuid,
        limit: i64,
    ) -> StoreResult<Vec<QueuedEmail>>;
    /// Delivered: the sealed payload is dropped.
    async fn email_sent(&self, id: Uuid, claim: Uuid, at: Timestamp) -> StoreResult<bool>;
    /// Try again at `next_attempt_at`.
    async fn email_retry(
        &self,
        id: Uuid,
        claim: Uuid,
        next_attempt_at: Timestamp,
        error: &str,
    ) -> StoreResult<bool>;
    /// Not opened (no master key of this instance decrypts it): left pending for an instance
    /// or an operator with the right key, from `next_attempt_at`, and the attempt is not
    /// counted (SPEC §14: never marked done).
    async fn email_unreadable(
        &self,
        id: Uuid,
        claim: Uuid,
        next_attempt_at: Timestamp,
        error: &str,
    ) -> StoreResult<bool>;
    /// Given up.
    async fn email_failed(&self, id: Uuid, claim: Uuid, error: &str) -> StoreResult<bool>;
    /// Pending and failed emails (and sent ones when asked), oldest first.
    async fn list_outbox(&self, include_sent: bool, limit: i64) -> StoreResult<Vec<OutboxEntry>>;
}
