//! What emailed device codes and recognized devices need from storage.

use crate::Timestamp;
use crate::crypto::TokenHash;
use crate::model::{Challenge, ChallengeId, Device, DeviceId, UserId};
use crate::store::{Effects, StoreResult};
use crate::throttle::send_window::SendGate;
use async_trait::async_trait;

/// Whether an email code went out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeSent {
    Sent,
    /// The user has had their codes for this window: the next may go at this time.
    Limited(Timestamp),
    /// Not a live device challenge, or its last code is too recent (a concurrent resend).
    NotNow,
}

/// Recognized devices and device challenges.
#[async_trait]
pub trait DeviceStore: Send + Sync {
    /// Stores a device challenge with the hash of its code, sent at its `created_at`, and
    /// queues the email (in `effects`) in the same transaction. The user's other device
    /// challenges end (one live code per user), and their lapsed devices are forgotten.
    /// Both this and the resend pass the code through `sends` (the send window of
    /// [`crate::throttle::send_window`]) under the user's row lock, recording it when it
    /// goes, and send nothing when it refuses.
    async fn create_device_challenge(
        &self,
        challenge: &Challenge,
        token: &TokenHash,
        code_hash: &[u8],
        sends: &mut SendGate<'_>,
        effects: &Effects,
    ) -> StoreResult<CodeSent>;
    /// Replaces the code of a live device challenge of `user` last sent at or before
    /// `sent_before`, which then lives until `expires_at`.
    #[allow(clippy::too_many_arguments)]
    async fn resend_device_code(
        &self,
        user: UserId,
        challenge: ChallengeId,
        code_hash: &[u8],
        now: Timestamp,
        sent_before: Timestamp,
        expires_at: Timestamp,
        sends: &mut SendGate<'_>,
        effects: &Effects,
    ) -> StoreResult<CodeSent>;
    /// The user's device with this token, if it is still valid at `now` and was verified
    /// with this User-Agent; its last use is set to `now`.
    async fn use_device(
        &self,
        user: UserId,
        token: &TokenHash,
        user_agent: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<Option<Device>>;
    /// Recognizes a device from now on, by `token`.
    async fn add_device(&self, device: &Device, token: &TokenHash) -> StoreResult<()>;
    /// The user's devices still valid at `now`, most recently used first.
    async fn list_devices(&self, user: UserId, now: Timestamp) -> StoreResult<Vec<Device>>;
    /// Stops one of the user's devices from skipping the second step (SPEC §9); `false` if
    /// it is not theirs.
    async fn stop_trusting_device(
        &self,
        user: UserId,
        device: DeviceId,
        effects: &Effects,
    ) -> StoreResult<bool>;
    /// Forgets one of the user's devices; `false` if it is not theirs or already gone.
    async fn delete_device(
        &self,
        user: UserId,
        device: DeviceId,
        effects: &Effects,
    ) -> StoreResult<bool>;
}
