//! What the second step needs from storage: login challenges, and the one transaction that
//! answers one.

use crate::Timestamp;
use crate::crypto::TokenHash;
use crate::factors::Proof;
use crate::factors::totp::TotpFactor;
use crate::model::{Account, Challenge, ChallengeId, Device, DeviceId, Session, User, UserId};
use crate::store::{Effects, StoreResult};
use crate::throttle::{Scope, ThrottleState};
use async_trait::async_trait;

/// A live challenge with everything its answer is checked against, read in one query: the
/// user, their account and their TOTP factor, if they have one.
#[derive(Clone, Debug)]
pub struct ChallengeContext {
    pub challenge: Challenge,
    pub user: User,
    pub account: Account,
    /// The user's TOTP factor, if they have one.
    pub totp: Option<TotpFactor>,
    /// What the same read saw of the other rows a right answer changes, if the backend read
    /// them: handed back with the attempt ([`ChallengeAttempt::seen`]).
    pub seen: Option<Seen>,
}

/// The rows besides the challenge that a right answer changes, as the challenge's read saw
/// them. A backend whose every statement costs a network round trip (PostgreSQL) answers a
/// right code in one statement: it passes the lock's rules ([`LockGate`]) over `lock`, and
/// writes only if each row is still as seen (a compare-and-set); if one is not, nothing is
/// written and the attempt takes the transaction after all. So the rules are the same ones,
/// run in core, and the outcome is the transaction's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// The user's second-step lock (at rest when it has no row).
    pub lock: ThrottleState,
    /// The version of the user's set of sessions, which every session opened for them
    /// moves on: unchanged, no session of theirs was opened since the read, and the cap on
    /// their sessions can be kept without taking turns on their row.
    pub sessions: i64,
}

/// One attempt at a login challenge.
#[derive(Clone, Copy, Debug)]
pub struct ChallengeAttempt {
    pub challenge: ChallengeId,
    /// The attempts a challenge may have had before this one (it dies at this many).
    pub max_attempts: i64,
    pub now: Timestamp,
    /// [`ChallengeContext::seen`], for a backend that can answer in one statement.
    pub seen: Option<Seen>,
}

/// The user's second-step lock as an attempt passes it, under the lock's row lock.
pub struct LockGate<'a> {
    pub scope: Scope,
    pub key: &'a str,
    /// Counts the attempt before it is checked: the state to write, and whether the attempt
    /// may go on.
    pub admit: &'a mut (dyn FnMut(ThrottleState) -> (ThrottleState, bool) + Send),
    /// The state a success leaves.
    pub success: fn(ThrottleState) -> ThrottleState,
}

/// What a right code does: spend the proof, open the session (a sign-in; a re-authentication
/// opens none and restarts its session's step-up window through the effects), write the
/// device, record the
/// effects.
#[derive(Clone, Copy, Debug)]
pub struct Completing<'a> {
    pub proof: &'a Proof,
    pub session: Option<(&'a Session, &'a TokenHash)>,
    pub device: Option<&'a DeviceWrite>,
    pub effects: &'a Effects,
}

/// What a second step passed with a factor does to the device it was answered from.
#[derive(Clone, Debug)]
pub enum DeviceWrite {
    /// A device the user had not signed in from: recognized from now on by `token` (and
    /// trusted, if its `trusted_until` says so).
    New { device: Device, token: TokenHash },
    /// The user's known device the password came from: trusted until then (SPEC §9).
    Trust { device: DeviceId, until: Timestamp },
}

/// Which expired challenges to look at.
#[derive(Clone, Copy, Debug)]
pub enum Expired {
    /// One user's (when they sign in again).
    OfUser(UserId),
    /// Everyone's, oldest first, at most this many (the periodic sweep).
    Any(i64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempted {
    /// The challenge expired, died of wrong codes, or was used by a concurrent request:
    /// nothing was written.
    ChallengeGone,
    /// Counted, but the lock refused it.
    Locked,
    /// Counted (this was attempt number `attempts`), and there was no proof, or it was
    /// already spent (a replayed step, a used recovery code, an older email code).
    Rejected { attempts: i64 },
    /// The challenge is consumed, the proof spent, the session open and the lock settled.
    Done,
}

/// Login challenges. Every consuming write is one statement whose `WHERE` refuses the second
/// of two concurrent attempts.
#[async_trait]
pub trait ChallengeStore: Send + Sync {
    async fn create_challenge(&self, challenge: &Challenge, token: &TokenHash) -> StoreResult<()>;
    /// The challenge a token belongs to, if it has not expired at `now`.
    async fn find_challenge(
        &self,
        token: &TokenHash,
        now: Timestamp,
    ) -> StoreResult<Option<Challenge>>;
    /// [`ChallengeStore::find_challenge`] with its user, account and factors: what the
    /// answer to the challenge needs, in one read.
    async fn find_challenge_context(
        &self,
        token: &TokenHash,
        now: Timestamp,
    ) -> StoreResult<Option<ChallengeContext>>;
    /// One attempt at a challenge, in one transaction, so every request that answers a
    /// challenge costs one durable write:
    /// 1. counts the attempt if the challenge is live at `now` and has had fewer than
    ///    `max_attempts` (else [`Attempted::ChallengeGone`]): counting before checking means
    ///    parallel guesses cannot exceed the limit;
    /// 2. passes `lock.admit` under the lock's row lock (else [`Attempted::Locked`], the count
    ///    kept);
    /// 3. with `completing`, spends its proof with a `WHERE` that refuses the second of two
    ///    racing attempts; if spent, consumes the challenge, opens the session (if any), writes
    ///    the effects and applies `lock.success`: [`Attempted::Done`]. Otherwise the counts are
    ///    kept: [`Attempted::Rejected`].
    async fn attempt_second_step(
        &self,
        attempt: ChallengeAttempt,
        lock: &mut LockGate<'_>,
        completing: Option<Completing<'_>>,
    ) -> StoreResult<Attempted>;
    /// Two-factor challenges expired at `now` (never answered right: a right answer deletes
    /// its challenge), with their user and account.
    async fn expired_challenges(
        &self,
        which: Expired,
        now: Timestamp,
    ) -> StoreResult<Vec<ChallengeContext>>;
    /// Deletes a challenge and writes `effects` with it; `false` (nothing written) if it was
    /// gone already, so two sweeps tell about it once. (Also how a re-authentication that
    /// did not pass drops the challenge it opened for itself: no sign-in was left unfinished.)
    async fn end_challenge(&self, challenge: ChallengeId, effects: &Effects) -> StoreResult<bool>;
}
