//! What every kind of second factor shares: "2FA on" (the `active_factors` view, asked
//! through [`super::rows::two_factor_on`]), recovery codes, the paper key, turning it all off.

use super::rows;
use super::{Backend, events};
use crate::db;
use crate::query::query;
use async_trait::async_trait;
use tessera_core::Timestamp;
use tessera_core::factors::{FactorKind, FactorStore, TwoFactorStatus};
use tessera_core::model::UserId;
use tessera_core::store::{Effects, StoreError, StoreResult};

/// The tables of the kinds of factor, each keyed by `user_id`: what turning 2FA off removes.
const FACTOR_TABLES: &[&str] = &[
    "DELETE FROM totp_factors WHERE user_id = $1",
    "DELETE FROM webauthn_credentials WHERE user_id = $1",
];

/// The 2FA status of user `$1` at `$2`.
pub(super) const STATUS: &str = concat!("SELECT ", rows::status_columns!("$1", "$2"));

#[async_trait]
impl FactorStore for Backend {
    async fn active_factors(&self, user: UserId) -> StoreResult<Vec<FactorKind>> {
        query("SELECT kind FROM active_factors WHERE user_id = $1 GROUP BY kind ORDER BY MIN(enabled_at)")
            .bind(user.to_string())
            .fetch_all(self.reader())
            .await
            .map_err(db)?
            .iter()
            .map(|row| {
                let kind: String = row.try_get(0).map_err(db)?;
                FactorKind::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("factor kind {kind:?}")))
            })
            .collect()
    }

    async fn two_factor_status(
        &self,
        user: UserId,
        now: Timestamp,
    ) -> StoreResult<TwoFactorStatus> {
        let row = query(STATUS)
            .bind(user.to_string())
            .bind(now.unix())
            .fetch_one(self.reader())
            .await
            .map_err(db)?;
        rows::status(&row)
    }

    async fn disable_two_factor(
        &self,
        user: UserId,
        end_sessions: bool,
        effects: &Effects,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await.map_err(db)?;
        end_challenges(&mut tx, user).await?;
        if remove_factors(&mut tx, user).await? == 0 {
            return Ok(false);
        }
        clear_factors(&mut tx, user).await?;
        if end_sessions {
            delete_for_user(&mut tx, user, &["DELETE FROM sessions WHERE user_id = $1"]).await?;
        }
        events::write(&mut tx, effects).await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn disable_with_paper_key(
        &self,
        user: UserId,
        paper_key_hash: &[u8],
        effects: &Effects,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await.map_err(db)?;
        end_challenges(&mut tx, user).await?;
        // The paper key is kept with the TOTP factor, or on its own when the first factor was
        // a security key.
        let matches = query(
            "SELECT 1 FROM totp_factors WHERE user_id = $1 AND paper_key_hash = $2 \
             UNION ALL SELECT 1 FROM paper_keys WHERE user_id = $1 AND paper_key_hash = $2",
        )
        .bind(user.to_string())
        .bind(paper_key_hash)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        if matches.is_empty() {
            return Ok(false);
        }
        // The paper key backs up every factor: all of them go.
        remove_factors(&mut tx, user).await?;
        clear_factors(&mut tx, user).await?;
        events::write(&mut tx, effects).await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn replace_recovery_codes(
        &self,
        user: UserId,
        hashes: &[Vec<u8>],
        now: Timestamp,
        effects: &Effects,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await.map_err(db)?;
        // Prove a factor exists (2FA is on) before touching its codes.
        let active = query("SELECT COUNT(*) AS n FROM active_factors WHERE user_id = $1")
            .bind(user.to_string())
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?
            .try_get::<i64, _>("n")
            .map_err(db)?;
        if active == 0 {
            return Ok(false);
        }
        query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        insert_codes(&mut tx, user, hashes, now).await?;
        events::write(&mut tx, effects).await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }
}

/// Spends an unused recovery code of `user`; `false` if it is not theirs or already used.
pub(super) async fn spend_recovery_code(
    tx: &mut super::Tx,
    user: &str,
    hash: &[u8],
    now: Timestamp,
) -> StoreResult<bool> {
    Ok(query(
        "UPDATE recovery_codes SET used_at = $3 \
         WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
    )
    .bind(user)
    .bind(hash)
    .bind(now.unix())
    .execute(&mut **tx)
    .await
    .map_err(db)?
    .rows_affected()
        > 0)
}

/// Turns 2FA off for `user` inside `tx`, whatever factors are left: challenges, factors,
/// recovery codes, paper key, pending setups, the trust of devices.
pub(super) async fn turn_off(tx: &mut super::Tx, user: UserId) -> StoreResult<()> {
    end_challenges(tx, user).await?;
    remove_factors(tx, user).await?;
    clear_factors(tx, user).await
}

/// Removes every active factor of `user`; how many there were.
async fn remove_factors(tx: &mut super::Tx, user: UserId) -> StoreResult<u64> {
    let mut removed = 0;
    for statement in FACTOR_TABLES {
        removed += query(statement)
            .bind(user.to_string())
            .execute(&mut **tx)
            .await
            .map_err(db)?
            .rows_affected();
    }
    Ok(removed)
}

pub(super) async fn insert_codes(
    tx: &mut super::Tx,
    user: UserId,
    hashes: &[Vec<u8>],
    now: Timestamp,
) -> StoreResult<()> {
    for hash in hashes {
        query(
            "INSERT INTO recovery_codes (user_id, code_hash, used_at, created_at) \
             VALUES ($1, $2, NULL, $3)",
        )
        .bind(user.to_string())
        .bind(hash)
        .bind(now.unix())
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    }
    Ok(())
}

/// Ends the user's open login challenges. The second step's writers take row locks in this
/// order: challenges, the user's second-step throttle, the factor or recovery codes, then
/// rows that refer to the user (sessions, devices, events; their foreign-key checks share-lock
/// the user's row). Whatever changes the same rows follows it, as `attempt_second_step` does,
/// so that PostgreSQL does not deadlock two of them.
async fn end_challenges(tx: &mut super::Tx, user: UserId) -> StoreResult<()> {
    delete_for_user(
        tx,
        user,
        &["DELETE FROM login_challenges WHERE user_id = $1"],
    )
    .await
}

/// Everything but the factor row itself: recovery codes, a pending setup, and the trust of
/// the user's devices (with 2FA off there is no second step to skip; SPEC §9).
async fn clear_factors(tx: &mut super::Tx, user: UserId) -> StoreResult<()> {
    super::devices::end_trust(tx, &user.to_string()).await?;
    delete_for_user(
        tx,
        user,
        &[
            "DELETE FROM recovery_codes WHERE user_id = $1",
            "DELETE FROM totp_enrollments WHERE user_id = $1",
            "DELETE FROM paper_keys WHERE user_id = $1",
            "DELETE FROM webauthn_ceremonies WHERE user_id = $1",
        ],
    )
    .await
}

/// Runs each `DELETE … WHERE user_id = $1` for `user`.
async fn delete_for_user(
    tx: &mut super::Tx,
    user: UserId,
    statements: &[&'static str],
) -> StoreResult<()> {
    for statement in statements {
        query(statement)
            .bind(user.to_string())
            .execute(&mut **tx)
            .await
            .map_err(db)?;
    }
    Ok(())
}
