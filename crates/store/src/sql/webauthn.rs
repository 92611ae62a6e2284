//! Security keys and passkeys: the credentials, their ceremonies, spending an assertion (the
//! counter's compare-and-set), adding the first key and removing the last.

use super::{Backend, events, factors, sessions};
use crate::db;
use crate::query::query;
use async_trait::async_trait;
use tessera_core::Timestamp;
use tessera_core::crypto::TokenHash;
use tessera_core::factors::webauthn::{
    CeremonyKey, FirstFactor, KeyAdded, KeyRemoved, KeyUse, SecurityKeyStore, StoredKey,
};
use tessera_core::model::{SecurityKeyId, Session, UserId};
use tessera_core::store::{Effects, StoreError, StoreResult};

const KEY_COLUMNS: &str =
    "id, user_id, credential_id, name, credential, sign_count, created_at, last_used_at";

fn stored_key(row: &super::Row) -> StoreResult<StoredKey> {
    let id: String = row.try_get("id").map_err(db)?;
    let user: String = row.try_get("user_id").map_err(db)?;
    Ok(StoredKey {
        id: id
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("security key id {id:?}")))?,
        user_id: user
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("user id {user:?}")))?,
        credential_id: row.try_get("credential_id").map_err(db)?,
        name: row.try_get("name").map_err(db)?,
        credential: row.try_get("credential").map_err(db)?,
        sign_count: row.try_get("sign_count").map_err(db)?,
        created_at: Timestamp::from_unix(row.try_get("created_at").map_err(db)?),
        last_used_at: row
            .try_get::<Option<i64>, _>("last_used_at")
            .map_err(db)?
            .map(Timestamp::from_unix),
    })
}

#[async_trait]
impl SecurityKeyStore for Backend {
    async fn put_ceremony(
        &self,
        key: &CeremonyKey,
        user: Option<UserId>,
        state: &str,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        let challenge = match key {
            CeremonyKey::SecondStep(challenge) => Some(challenge.to_string()),
            _ => None,
        };
        let mut tx = self.begin_single().await.map_err(db)?;
        query(
            "INSERT INTO webauthn_ceremonies (ceremony_key, kind, user_id, challenge_id, state, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (ceremony_key) DO UPDATE SET state = $5, expires_at = $6",
        )
        .bind(key.bytes())
        .bind(key.kind())
        .bind(user.map(|u| u.to_string()))
        .bind(challenge)
        .bind(state)
        .bind(expires_at.unix())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn get_ceremony(&self, key: &CeremonyKey, now: Timestamp) -> StoreResult<Option<String>> {
        let row = query(
            "SELECT state FROM webauthn_ceremonies \
             WHERE ceremony_key = $1 AND kind = $2 AND expires_at > $3",
        )
        .bind(key.bytes())
        .bind(key.kind())
        .bind(now.unix())
        .fetch_optional(self.reader())
        .await
        .map_err(db)?;
        row.map(|row| row.try_get("state").map_err(db)).transpose()
    }

    async fn take_ceremony(
        &self,
        key: &CeremonyKey,
        now: Timestamp,
    ) -> StoreResult<Option<String>> {
        let mut tx = self.begin_single().await.map_err(db)?;
        let row = query(
            "DELETE FROM webauthn_ceremonies \
             WHERE ceremony_key = $1 AND kind = $2 AND expires_at > $3 RETURNING state",
        )
        .bind(key.bytes())
        .bind(key.kind())
        .bind(now.unix())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.map(|row| row.try_get("state").map_err(db)).transpose()
    }

    async fn security_keys(&self, user: UserId) -> StoreResult<Vec<StoredKey>> {
        query(&format!(
            "SELECT {KEY_COLUMNS} FROM webauthn_credentials WHERE user_id = $1 \
             ORDER BY created_at, id"
        ))
        .bind(user.to_string())
        .fetch_all(self.reader())
        .await
        .map_err(db)?
        .iter()
        .map(stored_key)
        .collect()
    }

    async fn find_security_key(&self, credential_id: &[u8]) -> StoreResult<Option<StoredKey>> {
        query(&format!(
            "SELECT {KEY_COLUMNS} FROM webauthn_credentials WHERE credential_id = $1"
        ))
        .bind(credential_id)
        .fetch_optional(self.reader())
        .await
        .map_err(db)?
        .as_ref()
        .map(stored_key)
        .transpose()
    }

    async fn add_security_key(
        &self,
        key: &StoredKey,
        first: Option<&FirstFactor>,
        effects: &Effects,
    ) -> StoreResult<KeyAdded> {
        let mut tx = self.begin().await.map_err(db)?;
        let user = key.user_id.to_string();
        if first.is_some() {
            // With 2FA on, an emailed device code no longer signs in (as TOTP activation).
            query("DELETE FROM login_challenges WHERE user_id = $1 AND kind = 'device'")
                .bind(&user)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        let inserted = query(
            "INSERT INTO webauthn_credentials (id, user_id, credential_id, name, credential, \
             sign_count, created_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL) \
             ON CONFLICT (credential_id) DO NOTHING",
        )
        .bind(key.id.to_string())
        .bind(&user)
        .bind(&key.credential_id)
        .bind(&key.name)
        .bind(&key.credential)
        .bind(key.sign_count)
        .bind(key.created_at.unix())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if inserted.rows_affected() == 0 {
            return Ok(KeyAdded::Duplicate);
        }
        if let Some(first) = first {
            query("DELETE FROM recovery_codes WHERE user_id = $1")
                .bind(&user)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            factors::insert_codes(
                &mut tx,
                key.user_id,
                &first.recovery_code_hashes,
                key.created_at,
            )
            .await?;
            query(
                "INSERT INTO paper_keys (user_id, paper_key_hash, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (user_id) DO UPDATE SET paper_key_hash = $2, created_at = $3",
            )
            .bind(&user)
            .bind(&first.paper_key_hash)
            .bind(key.created_at.unix())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        events::write(&mut tx, effects).await?;
        tx.commit().await.map_err(db)?;
        Ok(KeyAdded::Added)
    }

    async fn remove_security_key(
        &self,
        user: UserId,
        key: SecurityKeyId,
        effects: &Effects,
        last_effects: &Effects,
    ) -> StoreResult<KeyRemoved> {
        let mut tx = self.begin().await.map_err(db)?;
        // Challenges first (the lock order of the second step, see `factors`): the open ones
        // offered this key, and one may have been the last factor.
        query("DELETE FROM login_challenges WHERE user_id = $1")
            .bind(user.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let removed = query("DELETE FROM webauthn_credentials WHERE id = $1 AND user_id = $2")
            .bind(key.to_string())
            .bind(user.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
        if removed == 0 {
            return Ok(KeyRemoved::NotFound);
        }
        let left = query("SELECT COUNT(*) AS n FROM active_factors WHERE user_id = $1")
            .bind(user.to_string())
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?
            .try_get::<i64, _>("n")
            .map_err(db)?;
        let outcome = if left == 0 {
            factors::turn_off(&mut tx, user).await?;
            events::write(&mut tx, last_effects).await?;
            KeyRemoved::TwoFactorOff
        } else {
            events::write(&mut tx, effects).await?;
            KeyRemoved::Removed
        };
        tx.commit().await.map_err(db)?;
        Ok(outcome)
    }

    async fn sign_in_with_key(
        &self,
        used: &KeyUse,
        (session, token): (&Session, &TokenHash),
        effects: &Effects,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await.map_err(db)?;
        if !spend(&mut tx, used).await? {
            return Ok(false);
        }
        sessions::insert(&mut tx, session, token).await?;
        events::write(&mut tx, effects).await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }
}

/// Accepts an assertion of a key of `used.user` only if its counter rises above the stored
/// one (or both are 0: an authenticator without a counter); `false` otherwise, or if the key
/// is gone.
pub(super) async fn spend(tx: &mut super::Tx, used: &KeyUse) -> StoreResult<bool> {
    Ok(query(
        "UPDATE webauthn_credentials SET sign_count = $3, credential = $4, last_used_at = $5 \
         WHERE id = $1 AND user_id = $2 AND (sign_count < $3 OR ($3 = 0 AND sign_count = 0))",
    )
    .bind(used.key.to_string())
    .bind(used.user.to_string())
    .bind(i64::from(used.counter))
    .bind(&used.credential)
    .bind(used.now.unix())
    .execute(&mut **tx)
    .await
    .map_err(db)?
    .rows_affected()
        > 0)
}
