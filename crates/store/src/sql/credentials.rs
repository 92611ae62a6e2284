//! Password reset links, and the one transaction each change of password is.

use super::rows::{self, account_columns, user_columns};
use super::{Backend, FOR_NO_KEY_UPDATE, events};
use crate::db;
use crate::query::query;
use async_trait::async_trait;
use tessera_core::Timestamp;
use tessera_core::credentials::{NewResetLink, PasswordStore, ResetLink};
use tessera_core::crypto::TokenHash;
use tessera_core::model::{SessionId, UserId};
use tessera_core::store::{Effects, StoreResult};
use tessera_core::throttle::send_window::SendGate;
use tessera_core::throttle::{RetryAt, Scope};

/// How long a link is kept after it expired, so that it is still answered as expired.
const KEEP_EXPIRED_SECS: i64 = 7 * 24 * 3600;

/// Retires the user's live reset links (a new password makes them moot).
async fn retire_links(tx: &mut super::Tx, user: &str, now: Timestamp) -> StoreResult<()> {
    query("UPDATE password_resets SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL")
        .bind(user)
        .bind(now.unix())
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    Ok(())
}

/// Ends the user's unanswered login challenges: each was opened with the old password. Done
/// first, in the order a second step locks rows (challenge, throttle, user), so the two
/// cannot deadlock on PostgreSQL.
async fn end_challenges(tx: &mut super::Tx, user: &str) -> StoreResult<()> {
    query("DELETE FROM login_challenges WHERE user_id = $1")
        .bind(user)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    Ok(())
}

/// Sets the user's password hash; `false` if the user is gone.
async fn set_hash(tx: &mut super::Tx, user: &str, hash: &str) -> StoreResult<bool> {
    Ok(query("UPDATE users SET password_hash = $2 WHERE id = $1")
        .bind(user)
        .bind(hash)
        .execute(&mut **tx)
        .await
        .map_err(db)?
        .rows_affected()
        > 0)
}

#[async_trait]
impl PasswordStore for Backend {
    async fn create_reset_link(
        &self,
        link: NewResetLink<'_>,
        sends: &mut SendGate<'_>,
        effects: &Effects,
    ) -> StoreResult<Result<(), RetryAt>> {
        let user = link.user.to_string();
        let mut tx = self.begin().await.map_err(db)?;
        // The user's row serializes their links (PostgreSQL; SQLite has one writer).
        query(&format!(
            "SELECT id FROM users WHERE id = $1{FOR_NO_KEY_UPDATE}"
        ))
        .bind(&user)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        query("DELETE FROM password_resets WHERE user_id = $1 AND expires_at <= $2")
            .bind(&user)
            .bind(link.created_at.unix() - KEEP_EXPIRED_SECS)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let made = query("SELECT created_at FROM password_resets WHERE user_id = $1")
            .bind(&user)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?
            .iter()
            .map(|row| row.try_get::<i64, _>(0).map(Timestamp::from_unix))
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        if let Err(retry) = sends(&made).verdict {
            return Ok(Err(retry));
        }
        query(
            "INSERT INTO password_resets (token_hash, user_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(link.token.as_bytes())
        .bind(&user)
        .bind(link.created_at.unix())
        .bind(link.expires_at.unix())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        events::write(&mut tx, effects).await?;
        tx.commit().await.map_err(db)?;
        Ok(Ok(()))
    }

    async fn find_reset_link(&self, token: &TokenHash) -> StoreResult<Option<ResetLink>> {
        let row = query(concat!(
            "SELECT r.expires_at, r.used_at, ",
            user_columns!(),
            ", ",
            account_columns!(),
            " FROM password_resets r JOIN users u ON u.id = r.user_id \
             JOIN accounts a ON a.id = u.account_id WHERE r.token_hash = $1"
        ))
        .bind(token.as_bytes())
        .fetch_optional(self.reader())
        .await
        .map_err(db)?;
        let Some(row) = row else { return Ok(None) };
        let time = |c: &str| {
            row.try_get::<i64, _>(c)
                .map(Timestamp::from_unix)
                .map_err(db)
        };
        Ok(Some(ResetLink {
            user: rows::user(&row)?,
            account: rows::account(&row)?,
            expires_at: time("expires_at")?,
            used_at: row
                .try_get::<Option<i64>, _>("used_at")
                .map_err(db)?
                .map(Timestamp::from_unix),
        }))
    }

    async fn reset_password(
        &self,
        token: &TokenHash,
        user: UserId,
        now: Timestamp,
        password_hash: &str,
        lifted: &[(Scope, String)],
        effects: &Effects,
    ) -> StoreResult<bool> {
        let user = user.to_string();
        let mut tx = self.begin().await.map_err(db)?;
        // Challenges, throttles, then the user's row, then theirs: the order in which a
        // second step and deleting a user lock them.
        end_challenges(&mut tx, &user).await?;
        for (scope, key) in lifted {
            query("DELETE FROM throttles WHERE scope = $1 AND key = $2")
                .bind(scope.as_str())
                .bind(key)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        if !set_hash(&mut tx, &user, password_hash).await? {
            return Ok(false);
        }
        // The one statement a racing reset with the same link cannot pass twice.
        let used = query(
            "UPDATE password_resets SET used_at = $3 WHERE token_hash = $1 AND user_id = $2 \
             AND used_at IS NULL AND expires_at > $3",
        )
        .bind(token.as_bytes())
        .bind(&user)
        .bind(now.unix())
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected()
            > 0;
        if !used {
            return Ok(false);
        }
        retire_links(&mut tx, &user, now).await?;
        // A new password ends "Don't ask again on this device" (SPEC §9).
        super::devices::end_trust(&mut tx, &user).await?;
        query("DELETE FROM sessions WHERE user_id = $1")
            .bind(&user)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        events::settle(tx, true, effects).await
    }

    async fn change_password(
        &self,
        user: UserId,
        keep: SessionId,
        now: Timestamp,
        password_hash: &str,
        effects: &Effects,
    ) -> StoreResult<bool> {
        let user = user.to_string();
        let mut tx = self.begin().await.map_err(db)?;
        end_challenges(&mut tx, &user).await?;
        let changed = query(
            "UPDATE users SET password_hash = $2 WHERE id = $1 \
             AND EXISTS (SELECT 1 FROM sessions WHERE id = $3 AND user_id = $1)",
        )
        .bind(&user)
        .bind(password_hash)
        .bind(keep.to_string())
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected()
            > 0;
        if !changed {
            return Ok(false);
        }
        retire_links(&mut tx, &user, now).await?;
        super::devices::end_trust(&mut tx, &user).await?;
        query("DELETE FROM sessions WHERE user_id = $1 AND id <> $2")
            .bind(&user)
            .bind(keep.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        events::settle(tx, true, effects).await
    }
}
