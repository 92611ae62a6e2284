//! What sessions need from storage.

use crate::Timestamp;
use crate::crypto::TokenHash;
use crate::factors::TwoFactorStatus;
use crate::model::{Session, SessionId, UserId};
use crate::principal::SessionContext;
use crate::store::{Effects, StoreResult};
use async_trait::async_trait;

/// Where a page of sessions ends: the last session's creation time and id. The order
/// (newest first, then by id) is total, so pages neither skip nor repeat a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionCursor {
    pub created_at: Timestamp,
    pub id: SessionId,
}

impl SessionCursor {
    pub fn of(session: &Session) -> Self {
        Self {
            created_at: session.created_at,
            id: session.id,
        }
    }

    /// `created_at-id`, as given to clients.
    pub fn encode(&self) -> String {
        format!("{}-{}", self.created_at.unix(), self.id)
    }

    pub fn decode(text: &str) -> Option<Self> {
        let (at, id) = text.split_once('-')?;
        Some(Self {
            created_at: Timestamp::from_unix(at.parse().ok()?),
            id: id.parse().ok()?,
        })
    }
}

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
    /// The user's sessions live at `now` (not past `expires_at`, seen after `idle_since`),
    /// newest first (by creation, then id), after `after` if given, at most `limit`.
    async fn list_sessions(
        &self,
        user: UserId,
        now: Timestamp,
        idle_since: Timestamp,
        after: Option<SessionCursor>,
        limit: i64,
    ) -> StoreResult<Vec<Session>>;
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
