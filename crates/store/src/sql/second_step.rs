//! Login challenges, and the one transaction that answers one.

use super::rows::{self, account_columns, challenge_columns, factor_columns, user_columns};
use super::{Backend, devices, events, factors, sessions, throttles, totp, webauthn};
use crate::db;
use crate::query::query;
use async_trait::async_trait;
use tessera_core::Timestamp;
use tessera_core::crypto::TokenHash;
use tessera_core::factors::Proof;
use tessera_core::model::{Challenge, ChallengeId};
use tessera_core::second_step::{
    Attempted, ChallengeAttempt, ChallengeContext, ChallengeStore, Completing, DeviceWrite,
    Expired, LockGate, Seen,
};
use tessera_core::store::{Effects, StoreResult};
use tessera_core::throttle::Scope;

/// A live challenge of token hash `$1` at `$2`, with its user, account, TOTP factor and
/// second-step lock (every second step).
pub(super) const FIND_CONTEXT: &str = concat!(
    "SELECT ",
    challenge_columns!(),
    ", ",
    user_columns!(),
    ", ",
    account_columns!(),
    ", ",
    factor_columns!(),
    // What a right answer changes besides (see `Seen`): the user's second-step lock (scope
    // `$3`) and the version of their sessions.
    ", u.sessions_version AS seen_sessions, t.failures AS seen_failures, \
     t.window_start AS seen_window_start, t.locked_until AS seen_locked_until \
     FROM login_challenges c JOIN users u ON u.id = c.user_id \
     JOIN accounts a ON a.id = u.account_id \
     LEFT JOIN totp_factors f ON f.user_id = u.id \
     LEFT JOIN throttles t ON t.scope = $3 AND t.key = u.id \
     WHERE c.token_hash = $1 AND c.expires_at > $2"
);

#[async_trait]
impl ChallengeStore for Backend {
    async fn create_challenge(&self, challenge: &Challenge, token: &TokenHash) -> StoreResult<()> {
        let mut tx = self.begin_single().await.map_err(db)?;
        query(
            "INSERT INTO login_challenges (id, token_hash, user_id, kind, attempts, created_at, \
             expires_at, ip, user_agent, device_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(challenge.id.to_string())
        .bind(token.as_bytes())
        .bind(challenge.user_id.to_string())
        .bind(challenge.kind.as_str())
        .bind(challenge.attempts)
        .bind(challenge.created_at.unix())
        .bind(challenge.expires_at.unix())
        .bind(challenge.meta.ip.as_deref())
        .bind(challenge.meta.user_agent.as_deref())
        .bind(challenge.device_id.map(|id| id.to_string()))
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
        let row = query(FIND_CONTEXT)
            .bind(token.as_bytes())
            .bind(now.unix())
            .bind(Scope::SecondStep.as_str())
            .fetch_optional(self.reader())
            .await
            .map_err(db)?;
        row.map(|row| {
            Ok(ChallengeContext {
                challenge: rows::challenge(&row)?,
                user: rows::user(&row)?,
                account: rows::account(&row)?,
                totp: rows::factor(&row)?,
                seen: Some(seen(&row)?),
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
        // A right code in one statement where round trips cost (PostgreSQL), if nothing
        // changed since the challenge was read; else (and for every other outcome) here.
        if let Some(done) = self.answer_at_once(attempt, lock, completing).await? {
            return Ok(done);
        }
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
        if let Some((session, token)) = completing.session {
            sessions::insert(&mut tx, session, token).await?;
        }
        match completing.device {
            Some(DeviceWrite::New { device, token }) => {
                devices::insert(&mut tx, device, token).await?
            }
            Some(DeviceWrite::Trust { device, until }) => {
                devices::trust(&mut tx, &user, *device, *until).await?;
            }
            None => {}
        }
        events::write(&mut tx, completing.effects).await?;
        tx.commit().await.map_err(db)?;
        Ok(Attempted::Done)
    }

    async fn expired_challenges(
        &self,
        which: Expired,
        now: Timestamp,
    ) -> StoreResult<Vec<ChallengeContext>> {
        let select = concat!(
            "SELECT ",
            challenge_columns!(),
            ", ",
            user_columns!(),
            ", ",
            account_columns!(),
            " FROM login_challenges c JOIN users u ON u.id = c.user_id \
             JOIN accounts a ON a.id = u.account_id \
             WHERE c.kind = 'two_factor' AND c.expires_at <= $1"
        );
        let found = match which {
            Expired::OfUser(user) => {
                query(&format!("{select} AND c.user_id = $2"))
                    .bind(now.unix())
                    .bind(user.to_string())
                    .fetch_all(self.reader())
                    .await
            }
            Expired::Any(limit) => {
                query(&format!("{select} ORDER BY c.expires_at LIMIT $2"))
                    .bind(now.unix())
                    .bind(limit)
                    .fetch_all(self.reader())
                    .await
            }
        }
        .map_err(db)?;
        found
            .iter()
            .map(|row| {
                Ok(ChallengeContext {
                    challenge: rows::challenge(row)?,
                    user: rows::user(row)?,
                    account: rows::account(row)?,
                    totp: None,
                    seen: None,
                })
            })
            .collect()
    }

    async fn end_challenge(&self, challenge: ChallengeId, effects: &Effects) -> StoreResult<bool> {
        let mut tx = self.begin().await.map_err(db)?;
        let ended = query("DELETE FROM login_challenges WHERE id = $1")
            .bind(challenge.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected()
            > 0;
        events::settle(tx, ended, effects).await
    }
}
/// What the context read saw of the user's lock (at rest without a row) and sessions.
fn seen(row: &super::Row) -> StoreResult<Seen> {
    let failures: Option<i64> = row.try_get("seen_failures").map_err(db)?;
    let window_start: Option<i64> = row.try_get("seen_window_start").map_err(db)?;
    let locked_until: Option<i64> = row.try_get("seen_locked_until").map_err(db)?;
    Ok(Seen {
        lock: throttles::state(
            failures.unwrap_or(0),
            window_start.unwrap_or(0),
            locked_until,
        ),
        sessions: row.try_get("seen_sessions").map_err(db)?,
    })
}

/// Spends a proof for `user` inside `tx`, each kind with its own factor (the one place a new
/// kind registers here); `false` if it was spent already (a replayed TOTP
/// step, a used recovery code) or is not the challenge's latest email code.
async fn spend(
    tx: &mut super::Tx,
    user: &str,
    code_hash: Option<Vec<u8>>,
    proof: &Proof,
    now: Timestamp,
) -> StoreResult<bool> {
    match proof {
        Proof::Totp { step } => totp::spend(tx, user, *step).await,
        Proof::SecurityKey(used) => {
            Ok(used.user.to_string() == user && webauthn::spend(tx, used).await?)
        }
        Proof::RecoveryCode { hash } => factors::spend_recovery_code(tx, user, hash, now).await,
        Proof::EmailCode {
            hash,
            device,
            token,
        } => devices::spend_code(tx, code_hash, hash, device, token).await,
    }
}
