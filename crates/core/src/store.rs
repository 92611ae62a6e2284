//! What the rules need from storage. Implemented for SQLite and PostgreSQL by `tessera-store`,
//! and checked against both by one conformance suite.
//!
//! Every method is one atomic unit: a change and the audit event it causes are written in the
//! same transaction, and [`ThrottleStore::update_throttle`] reads and writes a counter under a
//! lock, so two concurrent requests never both see the old value.

use crate::Timestamp;
use crate::crypto::TokenHash;
use crate::model::{Account, AccountId, NewEvent, SecurityEvent, Session, SessionId, User, UserId};
use crate::throttle::ThrottleState;
use async_trait::async_trait;

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
        event: &NewEvent,
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
        event: &NewEvent,
    ) -> StoreResult<()>;
    /// The session whose token hashes to `token`, if it has not expired at `now`.
    async fn find_session(
        &self,
        token: &TokenHash,
        now: Timestamp,
    ) -> StoreResult<Option<SessionContext>>;
    /// Ends a session; `false` if it was already gone.
    async fn end_session(&self, id: SessionId, event: &NewEvent) -> StoreResult<bool>;
}

#[async_trait]
pub trait EventStore: Send + Sync {
    async fn record_event(&self, event: &NewEvent) -> StoreResult<()>;
    /// A user's events, newest first, older than the event id `before` when given.
    async fn user_events(
        &self,
        user: UserId,
        before: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<SecurityEvent>>;
}

/// A throttle change: gets the current state (default when the key is new), returns the next.
pub type ThrottleChange<'a> = dyn FnMut(ThrottleState) -> ThrottleState + Send + 'a;

#[async_trait]
pub trait ThrottleStore: Send + Sync {
    /// Applies `change` to the state of (`scope`, `key`) atomically and returns the new state.
    async fn update_throttle(
        &self,
        scope: &str,
        key: &str,
        change: &mut ThrottleChange<'_>,
    ) -> StoreResult<ThrottleState>;
    async fn read_throttle(&self, scope: &str, key: &str) -> StoreResult<ThrottleState>;
}

#[async_trait]
pub trait Store: AccountStore + SessionStore + EventStore + ThrottleStore {
    /// Checks that the database answers.
    async fn ping(&self) -> StoreResult<()>;
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;
}
