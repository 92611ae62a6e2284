//! Sessions, found by the hash of their token.

use super::rows::{
    self, account_columns, session_columns, status_columns, two_factor_on, user_columns,
};
use super::{Backend, LOCK_USER_FOR_SESSION, Row, events};
use crate::db;
use crate::query::query;
use async_trait::async_trait;
use tessera_core::Timestamp;
use tessera_core::crypto::TokenHash;
use tessera_core::factors::TwoFactorStatus;
use tessera_core::model::UserId;
use tessera_core::model::{Session, SessionId};
use tessera_core::principal::SessionContext;
use tessera_core::sessions::{MAX_SESSIONS_PER_USER, SessionCursor, SessionStore};
use tessera_core::store::{Effects, StepUp, StoreError, StoreResult};

/// Inserts a session inside a transaction (sign-in, second step), and ends the user's
/// oldest sessions beyond [`MAX_SESSIONS_PER_USER`]. The user's row is locked first, so
/// their concurrent sign-ins take turns and the cap holds; a user deleted meanwhile is a lost
/// race, not a foreign-key failure. On PostgreSQL the lock moves the user's
/// `sessions_version` on, for a second step answered in one statement to see (`at_once`).
pub(super) async fn insert(
    tx: &mut super::Tx,
    session: &Session,
    token: &TokenHash,
) -> StoreResult<()> {
    let user = query(LOCK_USER_FOR_SESSION)
        .bind(session.user_id.to_string())
        .fetch_optional(&mut **tx)
        .await
        .map_err(db)?;
    if user.is_none() {
        return Err(StoreError::Raced);
    }
    query(
        "INSERT INTO sessions (id, user_id, token_hash, kind, created_at, expires_at, ip, \
         user_agent, last_seen_at, reauthenticated_at, method) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(session.id.to_string())
    .bind(session.user_id.to_string())
    .bind(token.as_bytes())
    .bind(session.kind.as_str())
    .bind(session.created_at.unix())
    .bind(session.expires_at.unix())
    .bind(session.ip.as_deref())
    .bind(session.user_agent.as_deref())
    .bind(session.last_seen_at.unix())
    .bind(session.reauthenticated_at.unix())
    .bind(session.method.map(|m| m.as_str()))
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    query(
        "DELETE FROM sessions WHERE user_id = $1 AND id <> $2 AND id NOT IN \
         (SELECT id FROM sessions WHERE user_id = $1 AND id <> $2 \
          ORDER BY created_at DESC, id DESC LIMIT $3)",
    )
    .bind(session.user_id.to_string())
    .bind(session.id.to_string())
    .bind(MAX_SESSIONS_PER_USER - 1)
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    Ok(())
}

/// Restarts a session's step-up window at `at` inside a change's transaction (never moving
/// it back: of two racing actions the later time stays).
pub(super) async fn step_up(tx: &mut super::Tx, step_up: &StepUp) -> StoreResult<()> {
    query("UPDATE sessions SET reauthenticated_at = $2 WHERE id = $1 AND reauthenticated_at < $2")
        .bind(step_up.session.to_string())
        .bind(step_up.at.unix())
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    Ok(())
}

/// What a [`SessionContext`] is read from, for [`context`].
macro_rules! session_context_columns {
    () => {
        concat!(
            session_columns!(),
            ", ",
            user_columns!(),
            ", ",
            account_columns!(),
            ", ",
            two_factor_on!("u.id"),
            " AS two_factor_enabled"
        )
    };
}

/// The session whose token hash is `$1`, with its user and account, live or not: whether
/// it has expired (absolutely or for want of activity) is the core's rule, and an expired
/// session is told apart from a token that never existed.
macro_rules! session_by_token {
    () => {
        " FROM sessions s JOIN users u ON u.id = s.user_id \
         JOIN accounts a ON a.id = u.account_id \
         WHERE s.token_hash = $1"
    };
}

/// The session of token hash `$1` (every authenticated request).
pub(super) const FIND: &str = concat!("SELECT ", session_context_columns!(), session_by_token!());

/// [`FIND`] with the user's 2FA status at `$2` (`GET /me`).
pub(super) const FIND_WITH_STATUS: &str = concat!(
    "SELECT ",
    session_context_columns!(),
    ", ",
    status_columns!("u.id", "$2"),
    session_by_token!()
);

fn context(row: &Row) -> StoreResult<SessionContext> {
    Ok(SessionContext {
        session: rows::session(row)?,
        user: rows::user(row)?,
        account: rows::account(row)?,
        two_factor_enabled: row.try_get("two_factor_enabled").map_err(db)?,
    })
}

#[async_trait]
impl SessionStore for Backend {
    async fn create_session(
        &self,
        session: &Session,
        token: &TokenHash,
        effects: &Effects,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await.map_err(db)?;
        insert(&mut tx, session, token).await?;
        events::write(&mut tx, effects).await?;
        tx.commit().await.map_err(db)
    }

    async fn find_session(&self, token: &TokenHash) -> StoreResult<Option<SessionContext>> {
        let row = query(FIND)
            .bind(token.as_bytes())
            .fetch_optional(self.reader())
            .await
            .map_err(db)?;
        row.map(|row| context(&row)).transpose()
    }

    async fn find_session_with_status(
        &self,
        token: &TokenHash,
        now: Timestamp,
    ) -> StoreResult<Option<(SessionContext, TwoFactorStatus)>> {
        let row = query(FIND_WITH_STATUS)
            .bind(token.as_bytes())
            .bind(now.unix())
            .fetch_optional(self.reader())
            .await
            .map_err(db)?;
        row.map(|row| Ok((context(&row)?, rows::status(&row)?)))
            .transpose()
    }

    async fn touch_session(
        &self,
        id: SessionId,
        now: Timestamp,
        due: Timestamp,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_single().await.map_err(db)?;
        let touched =
            query("UPDATE sessions SET last_seen_at = $2 WHERE id = $1 AND last_seen_at <= $3")
                .bind(id.to_string())
                .bind(now.unix())
                .bind(due.unix())
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
        tx.commit().await.map_err(db)?;
        Ok(touched > 0)
    }

    async fn end_session(&self, id: SessionId, effects: &Effects) -> StoreResult<bool> {
        let mut tx = self.begin().await.map_err(db)?;
        let ended = query("DELETE FROM sessions WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected()
            > 0;
        if ended {
            events::write(&mut tx, effects).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(ended)
    }

    async fn list_sessions(
        &self,
        user: UserId,
        now: Timestamp,
        idle_since: Timestamp,
        after: Option<SessionCursor>,
        limit: i64,
    ) -> StoreResult<Vec<Session>> {
        let found = query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions s WHERE s.user_id = $1 AND s.expires_at > $2 \
             AND s.last_seen_at > $3 \
             AND ($4 IS NULL OR s.created_at < $4 OR (s.created_at = $4 AND s.id < $5)) \
             ORDER BY s.created_at DESC, s.id DESC LIMIT $6"
        ))
        .bind(user.to_string())
        .bind(now.unix())
        .bind(idle_since.unix())
        .bind(after.map(|c| c.created_at.unix()))
        .bind(after.map(|c| c.id.to_string()))
        .bind(limit)
        .fetch_all(self.reader())
        .await
        .map_err(db)?;
        found.iter().map(rows::session).collect()
    }

    async fn end_user_session(
        &self,
        user: UserId,
        session: SessionId,
        effects: &Effects,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await.map_err(db)?;
        let ended = query("DELETE FROM sessions WHERE id = $1 AND user_id = $2")
            .bind(session.to_string())
            .bind(user.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected()
            > 0;
        events::settle(tx, ended, effects).await
    }

    async fn end_other_sessions(
        &self,
        user: UserId,
        keep: SessionId,
        effects: &Effects,
    ) -> StoreResult<u64> {
        let mut tx = self.begin().await.map_err(db)?;
        let ended = query("DELETE FROM sessions WHERE user_id = $1 AND id <> $2")
            .bind(user.to_string())
            .bind(keep.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
        events::write(&mut tx, effects).await?;
        tx.commit().await.map_err(db)?;
        Ok(ended)
    }
}
