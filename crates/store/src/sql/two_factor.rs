//! Second factors and login challenges.

use super::rows::{
    self, account_columns, challenge_columns, factor_columns, status_columns, user_columns,
};
use super::{Backend, events, sessions, throttles};
use crate::db;
use crate::query::query;
use async_trait::async_trait;
use tessera_core::Timestamp;
use tessera_core::crypto::{TokenHash, secure_eq};
use tessera_core::model::{Challenge, UserId};
use tessera_core::store::{
    Activation, Attempted, ChallengeAttempt, ChallengeContext, Completing, Effects, Enrollment,
    LockGate, SecondStepProof, StoreResult, TotpFactor, TwoFactorStatus, TwoFactorStore,
};

#[async_trait]
impl TwoFactorStore for Backend {
    async fn two_factor_status(
        &self,
        user: UserId,
        now: Timestamp,
    ) -> StoreResult<TwoFactorStatus> {
        let row = query(concat!("SELECT ", status_columns!("$1", "$2")))
            .bind(user.to_string())
            .bind(now.unix())
            .fetch_one(self.reader())
            .await
            .map_err(db)?;
        rows::status(&row)
    }

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

    async fn activate_two_factor(
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
        insert_codes(&mut tx, user, recovery_code_hashes, now).await?;
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

    async fn disable_two_factor(
        &self,
        user: UserId,
        end_sessions: bool,
        effects: &Effects,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await.map_err(db)?;
        end_challenges(&mut tx, user).await?;
        let removed = query("DELETE FROM totp_factors WHERE user_id = $1")
            .bind(user.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
        if removed == 0 {
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
        let removed = query("DELETE FROM totp_factors WHERE user_id = $1 AND paper_key_hash = $2")
            .bind(user.to_string())
            .bind(paper_key_hash)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
        if removed == 0 {
            return Ok(false);
        }
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
        // Lock the factor row (and prove it exists) before touching its codes.
        let active = query("UPDATE totp_factors SET last_step = last_step WHERE user_id = $1")
            .bind(user.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
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

    async fn create_challenge(&self, challenge: &Challenge, token: &TokenHash) -> StoreResult<()> {
        let mut tx = self.begin_single().await.map_err(db)?;
        query(
            "INSERT INTO login_challenges (id, token_hash, user_id, kind, attempts, created_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(challenge.id.to_string())
        .bind(token.as_bytes())
        .bind(challenge.user_id.to_string())
        .bind(challenge.kind.as_str())
        .bind(challenge.attempts)
        .bind(challenge.created_at.unix())
        .bind(challenge.expires_at.unix())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn find_challenge(
        &self,
        token: &TokenHash,
        now: Timestamp,
    ) -> StoreResult<Option<Challenge>> {
        let row = query(concat!(
            "SELECT ",
            challenge_columns!(),
            " FROM login_challenges c WHERE c.token_hash = $1 AND c.expires_at > $2"
        ))
        .bind(token.as_bytes())
        .bind(now.unix())
        .fetch_optional(self.reader())
        .await
        .map_err(db)?;
        row.map(|row| rows::challenge(&row)).transpose()
    }

    async fn find_challenge_context(
        &self,
        token: &TokenHash,
        now: Timestamp,
    ) -> StoreResult<Option<ChallengeContext>> {
        let row = query(concat!(
            "SELECT ",
            challenge_columns!(),
            ", ",
            user_columns!(),
            ", ",
            account_columns!(),
            ", ",
            factor_columns!(),
            " FROM login_challenges c JOIN users u ON u.id = c.user_id \
             JOIN accounts a ON a.id = u.account_id \
             LEFT JOIN totp_factors f ON f.user_id = u.id \
             WHERE c.token_hash = $1 AND c.expires_at > $2"
        ))
        .bind(token.as_bytes())
        .bind(now.unix())
        .fetch_optional(self.reader())
        .await
        .map_err(db)?;
        row.map(|row| {
            Ok(ChallengeContext {
                challenge: rows::challenge(&row)?,
                user: rows::user(&row)?,
                account: rows::account(&row)?,
                factor: rows::factor(&row)?,
            })
        })
        .transpose()
    }

    async fn attempt_second_step(
        &self,
        attempt: ChallengeAttempt,
        lock: &mut LockGate<'_>,
        completing: Option<Completing<'_>>,
    ) -> StoreResult<Attempted> {
        let mut tx = self.begin().await.map_err(db)?;
        let counted = query(
            "UPDATE login_challenges SET attempts = attempts + 1 \
             WHERE id = $1 AND attempts < $2 AND expires_at > $3 \
             RETURNING attempts, user_id, code_hash",
        )
        .bind(attempt.challenge.to_string())
        .bind(attempt.max_attempts)
        .bind(attempt.now.unix())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some(counted) = counted else {
            return Ok(Attempted::ChallengeGone);
        };
        let attempts: i64 = counted.try_get("attempts").map_err(db)?;
        let user: String = counted.try_get("user_id").map_err(db)?;
        let code_hash: Option<Vec<u8>> = counted.try_get("code_hash").map_err(db)?;
        let state = throttles::lock(&mut tx, lock.scope, lock.key).await?;
        let (admitted, go_on) = (lock.admit)(state);
        let Some(completing) = completing.filter(|_| go_on) else {
            throttles::write_changed(&mut tx, (lock.scope, lock.key), &state, &admitted).await?;
            tx.commit().await.map_err(db)?;
            return Ok(if go_on {
                Attempted::Rejected { attempts }
            } else {
                Attempted::Locked
            });
        };
        if !spend(&mut tx, &user, code_hash, completing.proof, attempt.now).await? {
            throttles::write_changed(&mut tx, (lock.scope, lock.key), &state, &admitted).await?;
            tx.commit().await.map_err(db)?;
            return Ok(Attempted::Rejected { attempts });
        }
        query("DELETE FROM login_challenges WHERE id = $1")
            .bind(attempt.challenge.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let settled = (lock.success)(admitted);
        throttles::write_changed(&mut tx, (lock.scope, lock.key), &state, &settled).await?;
        sessions::insert(&mut tx, completing.session, completing.token).await?;
        events::write(&mut tx, completing.effects).await?;
        tx.commit().await.map_err(db)?;
        Ok(Attempted::Done)
    }
}

/// Spends a proof for `user` inside `tx`; `false` if it was spent already (a replayed TOTP
/// step, a used recovery code) or is not the challenge's latest email code.
async fn spend(
    tx: &mut super::Tx,
    user: &str,
    code_hash: Option<Vec<u8>>,
    proof: &SecondStepProof,
    now: Timestamp,
) -> StoreResult<bool> {
    Ok(match proof {
        SecondStepProof::Totp { step } => {
            query("UPDATE totp_factors SET last_step = $2 WHERE user_id = $1 AND last_step < $2")
                .bind(user)
                .bind(step)
                .execute(&mut **tx)
                .await
                .map_err(db)?
                .rows_affected()
                > 0
        }
        SecondStepProof::RecoveryCode { hash } => {
            query(
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
                > 0
        }
        SecondStepProof::EmailCode {
            hash,
            device,
            token,
        } => {
            // Only the code sent last counts.
            let matches = code_hash.is_some_and(|stored| secure_eq(&stored, hash));
            if matches {
                super::devices::insert(tx, device, token).await?;
            }
            matches
        }
    })
}

async fn insert_codes(
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

/// Everything but the factor row itself: recovery codes and a pending setup.
async fn clear_factors(tx: &mut super::Tx, user: UserId) -> StoreResult<()> {
    delete_for_user(
        tx,
        user,
        &[
            "DELETE FROM recovery_codes WHERE user_id = $1",
            "DELETE FROM totp_enrollments WHERE user_id = $1",
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
