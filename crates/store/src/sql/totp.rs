//! TOTP: the pending setup, the active factor, and spending a step.

use super::rows::{self, factor_columns};
use super::{Backend, events, factors};
use crate::db;
use crate::query::query;
use async_trait::async_trait;
use tessera_core::Timestamp;
use tessera_core::factors::totp::{Activation, Enrollment, TotpFactor, TotpStore};
use tessera_core::model::UserId;
use tessera_core::store::{Effects, StoreResult};

#[async_trait]
impl TotpStore for Backend {
    async fn put_enrollment(
        &self,
        user: UserId,
        enrollment: &Enrollment,
        effects: &Effects,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await.map_err(db)?;
        query(
            "INSERT INTO totp_enrollments (user_id, secret_sealed, paper_key_hash, created_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (user_id) DO UPDATE SET secret_sealed = $2, paper_key_hash = $3, \
             created_at = $4, expires_at = $5",
        )
        .bind(user.to_string())
        .bind(&enrollment.secret_sealed)
        .bind(&enrollment.paper_key_hash)
        .bind(enrollment.created_at.unix())
        .bind(enrollment.expires_at.unix())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        events::write(&mut tx, effects).await?;
        tx.commit().await.map_err(db)
    }

    async fn get_enrollment(
        &self,
        user: UserId,
        now: Timestamp,
    ) -> StoreResult<Option<Enrollment>> {
        let row = query(
            "SELECT secret_sealed, paper_key_hash, created_at, expires_at FROM totp_enrollments \
             WHERE user_id = $1 AND expires_at > $2",
        )
        .bind(user.to_string())
        .bind(now.unix())
        .fetch_optional(self.reader())
        .await
        .map_err(db)?;
        row.map(|row| {
            Ok(Enrollment {
                secret_sealed: row.try_get("secret_sealed").map_err(db)?,
                paper_key_hash: row.try_get("paper_key_hash").map_err(db)?,
                created_at: Timestamp::from_unix(row.try_get("created_at").map_err(db)?),
                expires_at: Timestamp::from_unix(row.try_get("expires_at").map_err(db)?),
            })
        })
        .transpose()
    }

    async fn activate_totp(
        &self,
        user: UserId,
        secret_sealed: &[u8],
        now: Timestamp,
        first_step: i64,
        recovery_code_hashes: &[Vec<u8>],
        effects: &Effects,
    ) -> StoreResult<Activation> {
        let mut tx = self.begin().await.map_err(db)?;
        // With 2FA on, an emailed device code no longer signs in: open device challenges end
        // first (challenges before the factor, the lock order everywhere).
        query("DELETE FROM login_challenges WHERE user_id = $1 AND kind = 'device'")
            .bind(user.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        // Taking the enrollment deletes it: two concurrent activations cannot both succeed,
        // and only the secret the code was checked against can be taken (not a setup
        // restarted meanwhile).
        let taken = query(
            "DELETE FROM totp_enrollments WHERE user_id = $1 AND expires_at > $2 \
             AND secret_sealed = $3 RETURNING secret_sealed, paper_key_hash",
        )
        .bind(user.to_string())
        .bind(now.unix())
        .bind(secret_sealed)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some(taken) = taken else {
            return Ok(Activation::NoPendingSetup);
        };
        let inserted = query(
            "INSERT INTO totp_factors (user_id, secret_sealed, paper_key_hash, last_step, \
             enabled_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id) DO NOTHING",
        )
        .bind(user.to_string())
        .bind(taken.try_get::<Vec<u8>, _>("secret_sealed").map_err(db)?)
        .bind(taken.try_get::<Vec<u8>, _>("paper_key_hash").map_err(db)?)
        .bind(first_step)
        .bind(now.unix())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if inserted.rows_affected() == 0 {
            return Ok(Activation::AlreadyEnabled);
        }
        factors::insert_codes(&mut tx, user, recovery_code_hashes, now).await?;
        events::write(&mut tx, effects).await?;
        tx.commit().await.map_err(db)?;
        Ok(Activation::Activated)
    }

    async fn get_totp_factor(&self, user: UserId) -> StoreResult<Option<TotpFactor>> {
        let row = query(concat!(
            "SELECT ",
            factor_columns!(),
            " FROM totp_factors f WHERE f.user_id = $1"
        ))
        .bind(user.to_string())
        .fetch_optional(self.reader())
        .await
        .map_err(db)?;
        Ok(row.map(|row| rows::factor(&row)).transpose()?.flatten())
    }
}

/// Accepts a TOTP step for `user` only above the last accepted one; `false` for a replay.
pub(super) async fn spend(tx: &mut super::Tx, user: &str, step: i64) -> StoreResult<bool> {
    Ok(
        query("UPDATE totp_factors SET last_step = $2 WHERE user_id = $1 AND last_step < $2")
            .bind(user)
            .bind(step)
            .execute(&mut **tx)
            .await
            .map_err(db)?
            .rows_affected()
            > 0,
    )
}
