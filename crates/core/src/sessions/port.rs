//! What sessions need from storage.

use crate::Timestamp;
use crate::crypto::TokenHash;
use crate::factors::TwoFactorStatus;
use crate::model::{Session, SessionId, UserId};
use crate::principal::SessionContext;
use crate::store::{Effects, StoreResult};
use async_trait::async_trait;

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn create_session(
        &self,
        session: &Session,
        token: &TokenHash,
        effects: &Effects,
    ) -> StoreResult<()>;
    /// The session whose token hashes to `token`, expired or not (a pure read).
    async fn find_session(&self, token: &TokenHash) -> StoreResult<Option<SessionContext>>;
    /// [`SessionStore::find_session`] with the user's 2FA status at `now`, in one read.
    async fn find_session_with_status(
        &self,
        token: &TokenHash,
        now: Timestamp,
    ) -> StoreResult<Option<(SessionContext, TwoFactorStatus)>>;
    /// Records activity: sets the session's last activity to `now` if it is at or before
    /// `due` (one conditional write, so concurrent requests write it once); `false` if it
    /// was not due or the session is gone.
    async fn touch_session(
        &self,
        id: SessionId,
        now: Timestamp,
        due: Timestamp,
    ) -> StoreResult<bool>;
    /// Ends a session; `false` if it was already gone.
    async fn end_session(&self, id: SessionId, effects: &Effects) -> StoreResult<bool>;
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
