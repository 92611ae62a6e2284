//! The master-key guard: the key check row, and re-sealing every sealed value at once.

use super::{Backend, FOR_UPDATE, Row};
use crate::db;
use crate::query::{Exec, query};
use async_trait::async_trait;
use tessera_core::Timestamp;
use tessera_core::keys::{KeyCheck, KeyStore, Resealed, SealedKind, SealedRow};
use tessera_core::store::StoreResult;

/// Every sealed column: its kind, table, key column and value column. A new sealed column
/// belongs here, or rotation would leave it under the old key.
const SEALED: &[(SealedKind, &str, &str, &str)] = &[
    (
        SealedKind::TotpFactor,
        "totp_factors",
        "user_id",
        "secret_sealed",
    ),
    (
        SealedKind::TotpEnrollment,
        "totp_enrollments",
        "user_id",
        "secret_sealed",
    ),
    (SealedKind::Outbox, "outbox", "id", "payload"),
    (
        SealedKind::SsoClientSecret,
        "sso_connections",
        "account_id",
        "client_secret_sealed",
    ),
    (SealedKind::SsoLogin, "sso_logins", "id", "secrets_sealed"),
    (
        SealedKind::OidcSigningKey,
        "oidc_signing_keys",
        "id",
        "private_sealed",
    ),
];

fn check(row: &Row) -> StoreResult<KeyCheck> {
    Ok(KeyCheck {
        fingerprint: row.try_get("fingerprint").map_err(db)?,
        mac_keys_sealed: row.try_get("mac_keys_sealed").map_err(db)?,
        created_at: Timestamp::from_unix(row.try_get("created_at").map_err(db)?),
        rotated_at: row
            .try_get::<Option<i64>, _>("rotated_at")
            .map_err(db)?
            .map(Timestamp::from_unix),
    })
}

fn sealed_rows(kind: SealedKind, rows: &[Row]) -> StoreResult<Vec<SealedRow>> {
    rows.iter()
        .map(|row| {
            Ok(SealedRow {
                kind,
                id: row.try_get("id").map_err(db)?,
                sealed: row.try_get("sealed").map_err(db)?,
            })
        })
        .collect()
}

/// `SELECT` of one kind's sealed values (the sent emails' payloads are gone).
fn select(table: &str, key: &str, value: &str) -> String {
    format!("SELECT {key} AS id, {value} AS sealed FROM {table} WHERE {value} IS NOT NULL")
}

const CHECK_COLUMNS: &str = "fingerprint, mac_keys_sealed, created_at, rotated_at";

/// The key check, read on `on` (the store's readers, or a backup's).
pub(crate) async fn read_check(on: impl Exec) -> StoreResult<Option<KeyCheck>> {
    query(&format!(
        "SELECT {CHECK_COLUMNS} FROM key_check WHERE id = 1"
    ))
    .fetch_optional(on)
    .await
    .map_err(db)?
    .as_ref()
    .map(check)
    .transpose()
}

/// Up to `limit` sealed values of each kind, read on `on`.
pub(crate) async fn sample<E: Exec + Copy>(on: E, limit: i64) -> StoreResult<Vec<SealedRow>> {
    let mut sample = Vec::new();
    for (kind, table, key, value) in SEALED {
        let rows = query(&format!("{} LIMIT $1", select(table, key, value)))
            .bind(limit)
            .fetch_all(on)
            .await
            .map_err(db)?;
        sample.extend(sealed_rows(*kind, &rows)?);
    }
    Ok(sample)
}

#[async_trait]
impl KeyStore for Backend {
    async fn key_check(&self) -> StoreResult<Option<KeyCheck>> {
        read_check(self.reader()).await
    }

    async fn record_key_check(&self, first: &KeyCheck) -> StoreResult<KeyCheck> {
        let mut tx = self.begin().await.map_err(db)?;
        query(
            "INSERT INTO key_check (id, fingerprint, mac_keys_sealed, created_at, rotated_at) \
             VALUES (1, $1, $2, $3, NULL) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&first.fingerprint)
        .bind(&first.mac_keys_sealed)
        .bind(first.created_at.unix())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let row = query(&format!(
            "SELECT {CHECK_COLUMNS} FROM key_check WHERE id = 1"
        ))
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        check(&row)
    }

    async fn sample_sealed(&self, limit: i64) -> StoreResult<Vec<SealedRow>> {
        sample(self.reader(), limit).await
    }

    async fn reseal_all(
        &self,
        expected: &[u8],
        next: &KeyCheck,
        reseal: &mut (dyn for<'r> FnMut(&'r SealedRow) -> Option<Vec<u8>> + Send),
    ) -> StoreResult<Resealed> {
        let mut tx = self.begin().await.map_err(db)?;
        // The check first, locked: a second rotation waits here, then finds it changed.
        let current = query(&format!(
            "SELECT fingerprint FROM key_check WHERE id = 1{FOR_UPDATE}"
        ))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let current: Option<Vec<u8>> = current
            .map(|row| row.try_get("fingerprint"))
            .transpose()
            .map_err(db)?;
        if current.as_deref() != Some(expected) {
            return Ok(Resealed::CheckChanged);
        }
        let mut count = 0;
        for (kind, table, key, value) in SEALED {
            let rows = query(&format!("{}{FOR_UPDATE}", select(table, key, value)))
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
            let update = format!("UPDATE {table} SET {value} = $2 WHERE {key} = $1");
            for row in sealed_rows(*kind, &rows)? {
                let Some(resealed) = reseal(&row) else {
                    // Dropping the transaction rolls every change back.
                    return Ok(Resealed::Unreadable {
                        kind: row.kind,
                        id: row.id,
                    });
                };
                query(&update)
                    .bind(&row.id)
                    .bind(resealed)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                count += 1;
            }
        }
        query(
            "UPDATE key_check SET fingerprint = $1, mac_keys_sealed = $2, rotated_at = $3 \
             WHERE id = 1",
        )
        .bind(&next.fingerprint)
        .bind(&next.mac_keys_sealed)
        .bind(next.rotated_at.map(|t| t.unix()))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(Resealed::Done { rows: count })
    }
}
