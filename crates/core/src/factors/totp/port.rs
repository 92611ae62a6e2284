//! What TOTP needs from storage: the pending setup and the active factor.

use crate::Timestamp;
use crate::model::UserId;
use crate::store::{Effects, StoreResult};
use async_trait::async_trait;

/// A TOTP secret being set up (sealed), with the paper key shown alongside (hashed).
#[derive(Clone, Debug)]
pub struct Enrollment {
    pub secret_sealed: Vec<u8>,
    pub paper_key_hash: Vec<u8>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// The active TOTP factor.
#[derive(Clone, Debug)]
pub struct TotpFactor {
    pub secret_sealed: Vec<u8>,
    /// The highest step accepted so far; codes at or below it are replays.
    pub last_step: i64,
    pub enabled_at: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Activated,
    NoPendingSetup,
    AlreadyEnabled,
}

#[async_trait]
pub trait TotpStore: Send + Sync {
    /// Starts (or restarts: replacing any pending one) a setup.
    async fn put_enrollment(
        &self,
        user: UserId,
        enrollment: &Enrollment,
        effects: &Effects,
    ) -> StoreResult<()>;
    /// The pending setup, if it has not lapsed at `now`.
    async fn get_enrollment(&self, user: UserId, now: Timestamp)
    -> StoreResult<Option<Enrollment>>;
    /// Turns the pending setup whose sealed secret is `secret_sealed` (the one the code was
    /// checked against) into the active factor, with fresh recovery codes and the step of
    /// the confirming code as the first replay mark. The user's open device challenge ends:
    /// the authenticator replaces the emailed code.
    async fn activate_totp(
        &self,
        user: UserId,
        secret_sealed: &[u8],
        now: Timestamp,
        first_step: i64,
        recovery_code_hashes: &[Vec<u8>],
        effects: &Effects,
    ) -> StoreResult<Activation>;
    async fn get_totp_factor(&self, user: UserId) -> StoreResult<Option<TotpFactor>>;
}
