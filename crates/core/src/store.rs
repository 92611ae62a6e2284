//! What the rules need from storage. Implemented for SQLite and PostgreSQL by `tessera-store`,
//! and checked against both by one conformance suite.
//!
//! Every method is one atomic unit: a change and the audit events and emails it causes
//! ([`Effects`]) are written in the same transaction, and [`ThrottleStore::update_throttle`] reads and writes a counter under a
//! lock, so two concurrent requests never both see the old value.

use crate::Timestamp;
use crate::crypto::TokenHash;
use crate::mail::SealedEmail;
use crate::model::{
    Account, AccountId, Challenge, ChallengeId, Device, DeviceId, Invitation, InvitationId,
    NewEvent, OutboxStatus, SecurityEvent, Session, SessionId, User, UserId,
};
use crate::policy::{Enforcement, enforcement};
use crate::throttle::{ThrottleState, Window};
use async_trait::async_trait;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule refused the write; names what already exists (e.g. `"email"`).
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// A row could not be read back into the model.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// The database failed or could not be reached.
    #[error("database error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What a change causes besides itself: audit events and emails, written in the same
/// transaction as the change, so neither is lost nor recorded for a change that failed.
#[derive(Clone, Debug, Default)]
pub struct Effects {
    pub events: Vec<NewEvent>,
    pub emails: Vec<SealedEmail>,
}

impl Effects {
    pub fn event(event: NewEvent) -> Self {
        Self {
            events: vec![event],
            emails: Vec::new(),
        }
    }

    pub fn and_event(mut self, event: NewEvent) -> Self {
        self.events.push(event);
        self
    }

    pub fn and_email(mut self, email: SealedEmail) -> Self {
        self.emails.push(email);
        self
    }

    /// Both sets of effects.
    pub fn and(mut self, other: Effects) -> Self {
        self.events.extend(other.events);
        self.emails.extend(other.emails);
        self
    }
}

/// A user with the stored password hash, for sign-in.
#[derive(Clone, Debug)]
pub struct UserWithPassword {
    pub user: User,
    pub password_hash: Option<String>,
}

/// A live session with whom it belongs to: what every authenticated request needs.
#[derive(Clone, Debug)]
pub struct SessionContext {
    pub session: Session,
    pub user: User,
    pub account: Account,
    /// Whether the user has 2FA on, as of this request.
    pub two_factor_enabled: bool,
}

impl SessionContext {
    /// Where the user stands against the account's 2FA policy at `now`.
    pub fn enforcement(&self, now: Timestamp) -> Enforcement {
        enforcement(&self.account, &self.user, self.two_factor_enabled, now)
    }

    /// Whether the session may, at `now`, do nothing but set up 2FA. Decided on every
    /// request from the policy, not stored: a session opened before 2FA became required (or
    /// before the grace period ended) is restricted from then on, and becomes full again as
    /// soon as the user turns 2FA on.
    pub fn setup_only(&self, now: Timestamp) -> bool {
        self.enforcement(now) == Enforcement::SetupRequired
    }
}

/// A user of an account, as the account's managers see them.
#[derive(Clone, Debug)]
pub struct Member {
    pub user: User,
    pub two_factor_enabled: bool,
}

/// An account with its size, for the operator.
#[derive(Clone, Debug)]
pub struct AccountSummary {
    pub account: Account,
    pub users: i64,
}

#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Creates an account and its owner together. `Conflict("email")` if the owner's email is
    /// taken (case-insensitively).
    async fn create_account_with_owner(
        &self,
        account: &Account,
        owner: &User,
        password_hash: &str,
        effects: &Effects,
    ) -> StoreResult<()>;
    async fn find_user_by_email(
        &self,
        email_normalized: &str,
    ) -> StoreResult<Option<UserWithPassword>>;
    async fn get_user(&self, id: UserId) -> StoreResult<Option<User>>;
    async fn get_account(&self, id: AccountId) -> StoreResult<Option<Account>>;
    async fn list_accounts(&self) -> StoreResult<Vec<AccountSummary>>;
    /// Users of one account, or of all accounts, in order of creation.
    async fn list_users(&self, account: Option<AccountId>) -> StoreResult<Vec<User>>;
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn create_session(
        &self,
        session: &Session,
        token: &TokenHash,
        effects: &Effects,
    ) -> StoreResult<()>;
    /// The session whose token hashes to `token`, if it has not expired at `now`.
    async fn find_session(
        &self,
        token: &TokenHash,
        now: Timestamp,
    ) -> StoreResult<Option<SessionContext>>;
    /// [`SessionStore::find_session`] with the user's 2FA status at `now`, in one read.
    async fn find_session_with_status(
        &self,
        token: &TokenHash,
        now: Timestamp,
    ) -> StoreResult<Option<(SessionContext, TwoFactorStatus)>>;
    /// Ends a session; `false` if it was already gone.
    async fn end_session(&self, id: SessionId, effects: &Effects) -> StoreResult<bool>;
}

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

/// A throttle change: gets the current state (default when the key is new), returns the next
/// and what the transition causes (a lock's event and email), written in the same
/// transaction.
pub type ThrottleChange<'a> = dyn FnMut(ThrottleState) -> (ThrottleState, Effects) + Send + 'a;

#[async_trait]
pub trait ThrottleStore: Send + Sync {
    /// Applies `change` to the state of (`scope`, `key`) atomically and returns the new state.
    async fn update_throttle(
        &self,
        scope: &str,
        key: &str,
        change: &mut ThrottleChange<'_>,
    ) -> StoreResult<ThrottleState>;
    /// Forgets a throttle's failures and lock (the operator's `unlock`); `false` if it had
    /// none.
    async fn clear_throttle(&self, scope: &str, key: &str) -> StoreResult<bool>;
}

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
    /// Given up.
    async fn email_failed(&self, id: Uuid, claim: Uuid, error: &str) -> StoreResult<bool>;
    /// Pending and failed emails (and sent ones when asked), oldest first.
    async fn list_outbox(&self, include_sent: bool, limit: i64) -> StoreResult<Vec<OutboxEntry>>;
}

/// A user's second factors at a glance.
#[derive(Clone, Debug, Default)]
pub struct TwoFactorStatus {
    pub enabled_at: Option<Timestamp>,
    pub recovery_codes_remaining: i64,
    /// When the pending setup lapses, if one is pending.
    pub pending_until: Option<Timestamp>,
}

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

/// A live challenge with everything its answer is checked against, read in one query: the
/// user, their account and their TOTP factor, if they have one.
#[derive(Clone, Debug)]
pub struct ChallengeContext {
    pub challenge: Challenge,
    pub user: User,
    pub account: Account,
    pub factor: Option<TotpFactor>,
}

/// What completes a second step.
#[derive(Clone, Debug)]
pub enum SecondStepProof {
    /// A TOTP code of this step, accepted only above the last accepted step.
    Totp { step: i64 },
    /// A recovery code (its hash), accepted only if unused.
    RecoveryCode { hash: Vec<u8> },
    /// An emailed code (its hash), accepted only if it is the challenge's latest code; the
    /// device it verifies is recognized from then on, by `token`.
    EmailCode {
        hash: Vec<u8>,
        device: Device,
        token: TokenHash,
    },
}

/// One attempt at a login challenge.
#[derive(Clone, Copy, Debug)]
pub struct ChallengeAttempt {
    pub challenge: ChallengeId,
    /// The attempts a challenge may have had before this one (it dies at this many).
    pub max_attempts: i64,
    pub now: Timestamp,
}

/// The user's second-step lock as an attempt passes it, under the lock's row lock.
pub struct LockGate<'a> {
    pub scope: &'a str,
    pub key: &'a str,
    /// Counts the attempt before it is checked: the state to write, and whether the attempt
    /// may go on.
    pub admit: &'a mut (dyn FnMut(ThrottleState) -> (ThrottleState, bool) + Send),
    /// The state a success leaves.
    pub success: fn(ThrottleState) -> ThrottleState,
}

/// What a right code does: spend the proof, open the session, record the effects.
#[derive(Clone, Copy, Debug)]
pub struct Completing<'a> {
    pub proof: &'a SecondStepProof,
    pub session: &'a Session,
    pub token: &'a TokenHash,
    pub effects: &'a Effects,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Activated,
    NoPendingSetup,
    AlreadyEnabled,
}

/// Second factors and login challenges. Every consuming write is one statement whose `WHERE`
/// refuses the second of two concurrent attempts.
#[async_trait]
pub trait TwoFactorStore: Send + Sync {
    async fn two_factor_status(&self, user: UserId, now: Timestamp)
    -> StoreResult<TwoFactorStatus>;
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
    /// the confirming code as the first replay mark.
    async fn activate_two_factor(
        &self,
        user: UserId,
        secret_sealed: &[u8],
        now: Timestamp,
        first_step: i64,
        recovery_code_hashes: &[Vec<u8>],
        effects: &Effects,
    ) -> StoreResult<Activation>;
    async fn get_totp_factor(&self, user: UserId) -> StoreResult<Option<TotpFactor>>;
    /// Removes the factor, recovery codes and any pending setup, and with `end_sessions` every
    /// session of the user too (a reset by someone else); `false` if there was no factor.
    async fn disable_two_factor(
        &self,
        user: UserId,
        end_sessions: bool,
        effects: &Effects,
    ) -> StoreResult<bool>;
    /// Like [`TwoFactorStore::disable_two_factor`], only if `paper_key_hash` matches.
    async fn disable_with_paper_key(
        &self,
        user: UserId,
        paper_key_hash: &[u8],
        effects: &Effects,
    ) -> StoreResult<bool>;
    /// Replaces the recovery codes of an active factor; `false` without one.
    async fn replace_recovery_codes(
        &self,
        user: UserId,
        hashes: &[Vec<u8>],
        now: Timestamp,
        effects: &Effects,
    ) -> StoreResult<bool>;
    async fn create_challenge(&self, challenge: &Challenge, token: &TokenHash) -> StoreResult<()>;
    /// The challenge a token belongs to, if it has not expired at `now`.
    async fn find_challenge(
        &self,
        token: &TokenHash,
        now: Timestamp,
    ) -> StoreResult<Option<Challenge>>;
    /// [`TwoFactorStore::find_challenge`] with its user, account and TOTP factor: what the
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
    ///    racing attempts; if spent, consumes the challenge, opens the session, writes the
    ///    effects and applies `lock.success`: [`Attempted::Done`]. Otherwise the counts are
    ///    kept: [`Attempted::Rejected`].
    async fn attempt_second_step(
        &self,
        attempt: ChallengeAttempt,
        lock: &mut LockGate<'_>,
        completing: Option<Completing<'_>>,
    ) -> StoreResult<Attempted>;
}

/// Whether an email code went out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeSent {
    Sent,
    /// The user has had their codes for this window: the next may go at this time.
    Limited(Timestamp),
    /// Not a live device challenge, or its last code is too recent (a concurrent resend).
    NotNow,
}

/// Recognized devices, device challenges, and a user's own sessions.
#[async_trait]
pub trait DeviceStore: Send + Sync {
    /// Stores a device challenge with the hash of its code, sent at its `created_at`, and
    /// queues the email (in `effects`) in the same transaction. The user's other device
    /// challenges end (one live code per user), and their lapsed devices are forgotten.
    /// Both this and the resend count the code against `limit`, per user, over any
    /// `limit.secs` (a rolling window, under the user's row lock), and send nothing beyond it.
    async fn create_device_challenge(
        &self,
        challenge: &Challenge,
        token: &TokenHash,
        code_hash: &[u8],
        limit: Window,
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
        limit: Window,
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
    /// Forgets one of the user's devices; `false` if it is not theirs or already gone.
    async fn delete_device(
        &self,
        user: UserId,
        device: DeviceId,
        effects: &Effects,
    ) -> StoreResult<bool>;
    /// The user's sessions live at `now`, newest first.
    async fn list_sessions(&self, user: UserId, now: Timestamp) -> StoreResult<Vec<Session>>;
    /// Ends one of the user's sessions; `false` if it is not theirs or already gone.
    async fn end_user_session(
        &self,
        user: UserId,
        session: SessionId,
        effects: &Effects,
    ) -> StoreResult<bool>;
    /// Ends every session of the user but `keep`; how many ended.
    async fn end_other_sessions(
        &self,
        user: UserId,
        keep: SessionId,
        effects: &Effects,
    ) -> StoreResult<u64>;
}

/// What the owner and admins of an account change: its 2FA policy, invitations, users.
#[async_trait]
pub trait TeamStore: Send + Sync {
    /// The users of an account, in order of creation.
    async fn team_members(&self, account: AccountId) -> StoreResult<Vec<Member>>;
    /// Sets the account's 2FA policy; `turned_on` (the emails to every user) is written only
    /// if this call is the one that turned the requirement on, so two admins switching it on
    /// at once email everyone once. Returns the account as it now is (`None`: no account).
    async fn set_two_factor_policy(
        &self,
        account: AccountId,
        required: bool,
        grace_period_until: Option<Timestamp>,
        effects: &Effects,
        turned_on: &Effects,
    ) -> StoreResult<Option<Account>>;
    /// Stores a new invitation. `Conflict("email")` if a user has the email already,
    /// `Conflict("invitation")` if the account has an open invitation for it (one past its
    /// time is marked expired first, so it does not block a new one).
    async fn create_invitation(
        &self,
        invitation: &Invitation,
        token: &TokenHash,
        effects: &Effects,
    ) -> StoreResult<()>;
    /// The account's invitations still open at `now`, newest first.
    async fn open_invitations(
        &self,
        account: AccountId,
        now: Timestamp,
    ) -> StoreResult<Vec<Invitation>>;
    /// The invitation a token belongs to, whatever its state.
    async fn find_invitation(&self, token: &TokenHash) -> StoreResult<Option<Invitation>>;
    /// Revokes an open invitation of `account`; `false` if there is none by that id.
    async fn revoke_invitation(
        &self,
        account: AccountId,
        id: InvitationId,
        now: Timestamp,
        effects: &Effects,
    ) -> StoreResult<bool>;
    /// In one transaction: marks the invitation accepted if it is still open at `now`, and
    /// creates `user` with `password_hash`. `false` if it was no longer open (used,
    /// revoked, expired, or accepted by a concurrent request); `Conflict("email")` if a user
    /// with the email appeared meanwhile.
    async fn accept_invitation(
        &self,
        id: InvitationId,
        now: Timestamp,
        user: &User,
        password_hash: &str,
        effects: &Effects,
    ) -> StoreResult<bool>;
    /// Deletes a user with their sessions, factors, codes, challenges and devices, revokes
    /// the invitations they sent that are still pending, and forgets the given throttles (so
    /// a user invited again starts clean); `false` if the user was already gone. Their audit
    /// events stay, with their email.
    async fn delete_user(
        &self,
        user: UserId,
        throttles: &[(&str, String)],
        now: Timestamp,
        effects: &Effects,
    ) -> StoreResult<bool>;
    /// An account's events, newest first, older than the event id `before` when given.
    async fn account_events(
        &self,
        account: AccountId,
        before: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<SecurityEvent>>;
}

#[async_trait]
pub trait Store:
    AccountStore
    + SessionStore
    + EventStore
    + ThrottleStore
    + OutboxStore
    + TwoFactorStore
    + TeamStore
    + DeviceStore
{
    /// Checks that the database answers.
    async fn ping(&self) -> StoreResult<()>;
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;
}
