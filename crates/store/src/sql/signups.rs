//! Sign-ups waiting for their emailed link (SPEC §8): stored, found by token, confirmed once.

use super::rows::{self, signup_columns};
use super::{Backend, accounts, events};
use crate::db;
use crate::query::query;
use async_trait::async_trait;
use tessera_core::Timestamp;
use tessera_core::crypto::TokenHash;
use tessera_core::model::{Account, SignupId, User};
use tessera_core::sign_up::{PendingSignup, SignupStore};
use tessera_core::store::{Effects, StoreResult};

#[async_trait]
impl SignupStore for Backend {
    async fn create_signup(
        &self,
        signup: &PendingSignup,
        token: &TokenHash,
        effects: &Effects,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await.map_err(db)?;
        query(
            "INSERT INTO signups (id, token_hash, account_name, name, email, email_normalized, \
             password_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(signup.id.to_string())
        .bind(token.as_bytes())
        .bind(&signup.account_name)
        .bind(&signup.name)
        .bind(signup.email.as_str())
        .bind(signup.email.normalized())
        .bind(signup.password_hash.as_deref())
        .bind(signup.created_at.unix())
        .bind(signup.expires_at.unix())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        events::write(&mut tx, effects).await?;
        tx.commit().await.map_err(db)
    }

    async fn find_signup(&self, token: &TokenHash) -> StoreResult<Option<PendingSignup>> {
        let row = query(concat!(
            "SELECT ",
            signup_columns!(),
            " FROM signups s WHERE s.token_hash = $1"
        ))
        .bind(token.as_bytes())
        .fetch_optional(self.reader())
        .await
        .map_err(db)?;
        row.as_ref().map(rows::signup).transpose()
    }

    async fn confirm_signup(
        &self,
        id: SignupId,
        now: Timestamp,
        account: &Account,
        owner: &User,
        password_hash: &str,
        effects: &Effects,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await.map_err(db)?;
        // The conditional update is the single use: of two racing confirmations, the second
        // waits for the first's row lock and then matches nothing.
        let taken = query(
            "UPDATE signups SET used_at = $2 \
             WHERE id = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(id.to_string())
        .bind(now.unix())
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected()
            > 0;
        if !taken {
            return Ok(false);
        }
        accounts::insert_account(&mut tx, account).await?;
        accounts::insert_user(&mut tx, owner, password_hash).await?;
        events::write(&mut tx, effects).await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }
}
