//! API keys (SPEC §11), found by the keyed hash of the key.

use super::rows::{self, account_columns, two_factor_on, user_columns};
use super::{Backend, FOR_NO_KEY_UPDATE, Row, events};
use crate::db;
use crate::query::query;
use async_trait::async_trait;
use tessera_core::Timestamp;
use tessera_core::api_keys::{ApiKey, ApiKeyChange, ApiKeyContext, ApiKeyStore, IpRule};
use tessera_core::crypto::TokenHash;
use tessera_core::model::{AccountId, ApiKeyId};
use tessera_core::store::{Effects, StoreError, StoreResult};

/// Columns of `api_keys k`, for [`key`].
macro_rules! key_columns {
    () => {
        "k.id AS key_id, k.account_id AS key_account_id, k.label AS key_label, \
         k.prefix AS key_prefix, k.grants AS key_grants, k.allowed_ips AS key_allowed_ips, \
         k.created_at AS key_created_at, k.created_by AS key_created_by, \
         k.expires_at AS key_expires_at, k.last_used_at AS key_last_used_at, \
         k.last_used_ip AS key_last_used_ip, k.revoked_at AS key_revoked_at"
    };
}

fn corrupt(column: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{column}: {e}"))
}

fn get<T: crate::query::Decode>(row: &Row, column: &str) -> StoreResult<T> {
    row.try_get(column).map_err(|e| corrupt(column, e))
}

fn optional_time(row: &Row, column: &str) -> StoreResult<Option<Timestamp>> {
    Ok(get::<Option<i64>>(row, column)?.map(Timestamp::from_unix))
}

fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split_ascii_whitespace()
}

fn key(row: &Row) -> StoreResult<ApiKey> {
    let id: String = get(row, "key_id")?;
    let account: String = get(row, "key_account_id")?;
    let creator: String = get(row, "key_created_by")?;
    let grants: String = get(row, "key_grants")?;
    let ips: String = get(row, "key_allowed_ips")?;
    Ok(ApiKey {
        id: id.parse().map_err(|e| corrupt("key_id", e))?,
        account_id: account.parse().map_err(|e| corrupt("key_account_id", e))?,
        label: get(row, "key_label")?,
        prefix: get(row, "key_prefix")?,
        grants: words(&grants).map(str::to_owned).collect(),
        allowed_ips: words(&ips)
            .map(|text| IpRule::parse(text).map_err(|e| corrupt("key_allowed_ips", e)))
            .collect::<StoreResult<_>>()?,
        created_at: Timestamp::from_unix(get(row, "key_created_at")?),
        created_by: creator.parse().map_err(|e| corrupt("key_created_by", e))?,
        expires_at: optional_time(row, "key_expires_at")?,
        last_used_at: optional_time(row, "key_last_used_at")?,
        last_used_ip: get(row, "key_last_used_ip")?,
        revoked_at: optional_time(row, "key_revoked_at")?,
    })
}

fn joined<T: ToString>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The key of hash `$1` with its creator and account (every request with a key: the gate).
pub(super) const FIND_BY_HASH: &str = concat!(
    "SELECT ",
    key_columns!(),
    ", ",
    user_columns!(),
    ", ",
    account_columns!(),
    ", ",
    two_factor_on!("u.id"),
    " AS two_factor_enabled \
     FROM api_keys k JOIN users u ON u.id = k.created_by \
     JOIN accounts a ON a.id = k.account_id \
     WHERE k.key_hash = $1"
);

#[async_trait]
impl ApiKeyStore for Backend {
    async fn create_api_key(
        &self,
        key: &ApiKey,
        hash: &TokenHash,
        effects: &Effects,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await.map_err(db)?;
        // The creator is locked first: one deleted meanwhile is a lost race, not a foreign-key
        // failure.
        let creator = query(&format!(
            "SELECT id FROM users WHERE id = $1 AND account_id = $2{FOR_NO_KEY_UPDATE}"
        ))
        .bind(key.created_by.to_string())
        .bind(key.account_id.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        if creator.is_none() {
            return Err(StoreError::Raced);
        }
        query(
            "INSERT INTO api_keys (id, account_id, created_by, key_hash, prefix, label, grants, \
             allowed_ips, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(key.id.to_string())
        .bind(key.account_id.to_string())
        .bind(key.created_by.to_string())
        .bind(hash.as_bytes())
        .bind(&key.prefix)
        .bind(&key.label)
        .bind(key.grants.join(" "))
        .bind(joined(&key.allowed_ips))
        .bind(key.created_at.unix())
        .bind(key.expires_at.map(Timestamp::unix))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        events::write(&mut tx, effects).await?;
        tx.commit().await.map_err(db)
    }

    async fn list_api_keys(&self, account: AccountId) -> StoreResult<Vec<ApiKey>> {
        let found = query(concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys k WHERE k.account_id = $1 AND k.revoked_at IS NULL \
             ORDER BY k.created_at DESC, k.id DESC"
        ))
        .bind(account.to_string())
        .fetch_all(self.reader())
        .await
        .map_err(db)?;
        found.iter().map(key).collect()
    }

    async fn get_api_key(&self, account: AccountId, id: ApiKeyId) -> StoreResult<Option<ApiKey>> {
        let found = query(concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys k WHERE k.account_id = $1 AND k.id = $2"
        ))
        .bind(account.to_string())
        .bind(id.to_string())
        .fetch_optional(self.reader())
        .await
        .map_err(db)?;
        found.as_ref().map(key).transpose()
    }

    async fn update_api_key(
        &self,
        account: AccountId,
        id: ApiKeyId,
        change: &ApiKeyChange,
        effects: &Effects,
    ) -> StoreResult<Option<ApiKey>> {
        let mut tx = self.begin().await.map_err(db)?;
        let changed = query(
            "UPDATE api_keys SET label = $3, grants = $4, allowed_ips = $5 \
             WHERE account_id = $1 AND id = $2 AND revoked_at IS NULL",
        )
        .bind(account.to_string())
        .bind(id.to_string())
        .bind(&change.label)
        .bind(change.grants.join(" "))
        .bind(joined(&change.allowed_ips))
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected()
            > 0;
        if !changed {
            return Ok(None);
        }
        let row = query(concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys k WHERE k.id = $1"
        ))
        .bind(id.to_string())
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        let updated = key(&row)?;
        events::write(&mut tx, effects).await?;
        tx.commit().await.map_err(db)?;
        Ok(Some(updated))
    }

    async fn revoke_api_key(
        &self,
        account: AccountId,
        id: ApiKeyId,
        now: Timestamp,
        effects: &Effects,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await.map_err(db)?;
        let revoked = query(
            "UPDATE api_keys SET revoked_at = $3 \
             WHERE account_id = $1 AND id = $2 AND revoked_at IS NULL",
        )
        .bind(account.to_string())
        .bind(id.to_string())
        .bind(now.unix())
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected()
            > 0;
        events::settle(tx, revoked, effects).await
    }

    async fn find_api_key(&self, hash: &TokenHash) -> StoreResult<Option<ApiKeyContext>> {
        let found = query(FIND_BY_HASH)
            .bind(hash.as_bytes())
            .fetch_optional(self.reader())
            .await
            .map_err(db)?;
        found
            .map(|row| {
                Ok(ApiKeyContext {
                    key: key(&row)?,
                    creator: rows::user(&row)?,
                    account: rows::account(&row)?,
                    creator_two_factor_enabled: get(&row, "two_factor_enabled")?,
                })
            })
            .transpose()
    }

    async fn touch_api_key(
        &self,
        id: ApiKeyId,
        now: Timestamp,
        due: Timestamp,
        ip: Option<&str>,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_single().await.map_err(db)?;
        let touched = query(
            "UPDATE api_keys SET last_used_at = $2, last_used_ip = $3 \
             WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $4)",
        )
        .bind(id.to_string())
        .bind(now.unix())
        .bind(ip)
        .bind(due.unix())
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        tx.commit().await.map_err(db)?;
        Ok(touched > 0)
    }
}
