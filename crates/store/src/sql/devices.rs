//! Recognized devices and device challenges.

use super::{Backend, FOR_NO_KEY_UPDATE, events};
use crate::db;
use crate::query::query;
use async_trait::async_trait;
use tessera_core::Timestamp;
use tessera_core::crypto::{TokenHash, secure_eq};
use tessera_core::devices::{CodeSent, DeviceStore};
use tessera_core::model::{Challenge, ChallengeId, Device, DeviceId, UserId};
use tessera_core::store::{Effects, StoreError, StoreResult};
use tessera_core::throttle::RetryAt;
use tessera_core::throttle::send_window::SendGate;

/// Inserts a device inside a transaction (a verified email code).
pub(super) async fn insert(
    tx: &mut super::Tx,
    device: &Device,
    token: &TokenHash,
) -> StoreResult<()> {
    query(
        "INSERT INTO devices (id, user_id, token_hash, user_agent, ip, created_at, last_used_at, \
         expires_at, trusted_until) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(device.id.to_string())
    .bind(device.user_id.to_string())
    .bind(token.as_bytes())
    .bind(device.user_agent.as_deref())
    .bind(device.ip.as_deref())
    .bind(device.created_at.unix())
    .bind(device.last_used_at.unix())
    .bind(device.expires_at.unix())
    .bind(device.trusted_until.map(Timestamp::unix))
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    Ok(())
}

const DEVICE_COLUMNS: &str =
    "id, user_id, user_agent, ip, created_at, last_used_at, expires_at, trusted_until";

/// Trusts a known device of `user` until `until` (SPEC §9); it stays recognized at least as
/// long.
pub(super) async fn trust(
    tx: &mut super::Tx,
    user: &str,
    device: DeviceId,
    until: Timestamp,
) -> StoreResult<()> {
    query(
        "UPDATE devices SET trusted_until = $3, \
         expires_at = CASE WHEN expires_at < $3 THEN $3 ELSE expires_at END \
         WHERE id = $1 AND user_id = $2",
    )
    .bind(device.to_string())
    .bind(user)
    .bind(until.unix())
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    Ok(())
}

/// Ends the trust of every device of `user` (a new password, 2FA off).
pub(super) async fn end_trust(tx: &mut super::Tx, user: &str) -> StoreResult<()> {
    query(
        "UPDATE devices SET trusted_until = NULL WHERE user_id = $1 AND trusted_until IS NOT NULL",
    )
    .bind(user)
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    Ok(())
}

fn device(row: &super::Row) -> StoreResult<Device> {
    let corrupt =
        |what: &str, e: &dyn std::fmt::Display| StoreError::Corrupt(format!("{what}: {e}"));
    let text = |c: &str| row.try_get::<String, _>(c).map_err(db);
    let time = |c: &str| {
        row.try_get::<i64, _>(c)
            .map(Timestamp::from_unix)
            .map_err(db)
    };
    Ok(Device {
        id: text("id")?.parse().map_err(|e| corrupt("id", &e))?,
        user_id: text("user_id")?
            .parse()
            .map_err(|e| corrupt("user_id", &e))?,
        user_agent: row.try_get("user_agent").map_err(db)?,
        ip: row.try_get("ip").map_err(db)?,
        created_at: time("created_at")?,
        last_used_at: time("last_used_at")?,
        expires_at: time("expires_at")?,
        trusted_until: row
            .try_get::<Option<i64>, _>("trusted_until")
            .map_err(db)?
            .map(Timestamp::from_unix),
    })
}

/// Passes an email code for `user` at `now` through `sends` (the core's send window) under
/// the user's row lock (PostgreSQL; SQLite has one writer), recording it when it goes:
/// `Limited` if it may not.
async fn count_code(
    tx: &mut super::Tx,
    user: UserId,
    now: Timestamp,
    sends: &mut SendGate<'_>,
) -> StoreResult<CodeSent> {
    let user = user.to_string();
    // Not FOR UPDATE: a second step inserting this user's session or device checks its
    // foreign key with a share lock on this row while holding the challenge this
    // transaction goes on to change; the two would deadlock.
    query(&format!(
        "SELECT id FROM users WHERE id = $1{FOR_NO_KEY_UPDATE}"
    ))
    .bind(&user)
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    let sent = query("SELECT sent_at FROM email_code_sends WHERE user_id = $1")
        .bind(&user)
        .fetch_all(&mut **tx)
        .await
        .map_err(db)?
        .iter()
        .map(|row| row.try_get::<i64, _>(0).map(Timestamp::from_unix))
        .collect::<Result<Vec<_>, _>>()
        .map_err(db)?;
    let decision = sends(&sent);
    query("DELETE FROM email_code_sends WHERE user_id = $1 AND sent_at <= $2")
        .bind(&user)
        .bind(decision.forget_until.unix())
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    if let Err(RetryAt(next)) = decision.verdict {
        return Ok(CodeSent::Limited(next));
    }
    query("INSERT INTO email_code_sends (user_id, sent_at) VALUES ($1, $2)")
        .bind(&user)
        .bind(now.unix())
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    Ok(CodeSent::Sent)
}

/// Spends an emailed code: only the code sent last counts; the device it verifies is
/// recognized from then on.
pub(super) async fn spend_code(
    tx: &mut super::Tx,
    latest: Option<Vec<u8>>,
    typed: &[u8],
    device: &Device,
    token: &TokenHash,
) -> StoreResult<bool> {
    let matches = latest.is_some_and(|stored| secure_eq(&stored, typed));
    if matches {
        insert(tx, device, token).await?;
    }
    Ok(matches)
}

/// Ends user `$1`'s open device challenge (a device sign-in, each time).
pub(super) const END_DEVICE_CHALLENGES: &str =
    "DELETE FROM login_challenges WHERE user_id = $1 AND kind = 'device'";

#[async_trait]
impl DeviceStore for Backend {
    async fn create_device_challenge(
        &self,
        challenge: &Challenge,
        token: &TokenHash,
        code_hash: &[u8],
        sends: &mut SendGate<'_>,
        effects: &Effects,
    ) -> StoreResult<CodeSent> {
        let mut tx = self.begin().await.map_err(db)?;
        let counted = count_code(&mut tx, challenge.user_id, challenge.created_at, sends).await?;
        if counted != CodeSent::Sent {
            return Ok(counted);
        }
        // One live device challenge per user: signing in again replaces the code, as a
        // resend does, instead of adding a second one to guess at.
        query(END_DEVICE_CHALLENGES)
            .bind(challenge.user_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        // Lapsed devices are forgotten as new ones arrive.
        query("DELETE FROM devices WHERE user_id = $1 AND expires_at <= $2")
            .bind(challenge.user_id.to_string())
            .bind(challenge.created_at.unix())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        query(
            "INSERT INTO login_challenges (id, token_hash, user_id, kind, attempts, created_at, \
             expires_at, code_hash, last_sent_at, ip, user_agent) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(challenge.id.to_string())
        .bind(token.as_bytes())
        .bind(challenge.user_id.to_string())
        .bind(challenge.kind.as_str())
        .bind(challenge.attempts)
        .bind(challenge.created_at.unix())
        .bind(challenge.expires_at.unix())
        .bind(code_hash)
        .bind(challenge.created_at.unix())
        .bind(challenge.meta.ip.as_deref())
        .bind(challenge.meta.user_agent.as_deref())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        events::write(&mut tx, effects).await?;
        tx.commit().await.map_err(db)?;
        Ok(CodeSent::Sent)
    }

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
    ) -> StoreResult<CodeSent> {
        let mut tx = self.begin().await.map_err(db)?;
        let counted = count_code(&mut tx, user, now, sends).await?;
        if counted != CodeSent::Sent {
            return Ok(counted);
        }
        let resent = query(
            "UPDATE login_challenges SET code_hash = $2, last_sent_at = $3, expires_at = $5 \
             WHERE id = $1 AND kind = 'device' AND expires_at > $3 AND last_sent_at <= $4 \
             AND user_id = $6",
        )
        .bind(challenge.to_string())
        .bind(code_hash)
        .bind(now.unix())
        .bind(sent_before.unix())
        .bind(expires_at.unix())
        .bind(user.to_string())
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected()
            > 0;
        if !resent {
            // Rolling back takes the count back too.
            return Ok(CodeSent::NotNow);
        }
        events::write(&mut tx, effects).await?;
        tx.commit().await.map_err(db)?;
        Ok(CodeSent::Sent)
    }

    async fn use_device(
        &self,
        user: UserId,
        token: &TokenHash,
        user_agent: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<Option<Device>> {
        let mut tx = self.begin_single().await.map_err(db)?;
        let row = query(&format!(
            "UPDATE devices SET last_used_at = $3 \
             WHERE token_hash = $1 AND user_id = $2 AND expires_at > $3 \
             AND user_agent IS NOT DISTINCT FROM $4 RETURNING {DEVICE_COLUMNS}"
        ))
        .bind(token.as_bytes())
        .bind(user.to_string())
        .bind(now.unix())
        .bind(user_agent)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.as_ref().map(device).transpose()
    }

    async fn list_devices(&self, user: UserId, now: Timestamp) -> StoreResult<Vec<Device>> {
        let found = query(&format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE user_id = $1 AND expires_at > $2 \
             ORDER BY last_used_at DESC, id DESC"
        ))
        .bind(user.to_string())
        .bind(now.unix())
        .fetch_all(self.reader())
        .await
        .map_err(db)?;
        found.iter().map(device).collect()
    }

    async fn add_device(&self, device: &Device, token: &TokenHash) -> StoreResult<()> {
        let mut tx = self.begin().await.map_err(db)?;
        insert(&mut tx, device, token).await?;
        tx.commit().await.map_err(db)
    }

    async fn stop_trusting_device(
        &self,
        user: UserId,
        device: DeviceId,
        effects: &Effects,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await.map_err(db)?;
        let found = query("UPDATE devices SET trusted_until = NULL WHERE id = $1 AND user_id = $2")
            .bind(device.to_string())
            .bind(user.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected()
            > 0;
        events::settle(tx, found, effects).await
    }

    async fn delete_device(
        &self,
        user: UserId,
        device: DeviceId,
        effects: &Effects,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await.map_err(db)?;
        let deleted = query("DELETE FROM devices WHERE id = $1 AND user_id = $2")
            .bind(device.to_string())
            .bind(user.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected()
            > 0;
        events::settle(tx, deleted, effects).await
    }
}
