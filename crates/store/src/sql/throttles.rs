//! Throttle counters, changed under a row lock.

use super::Backend;
use crate::db;
use crate::query::query;
use async_trait::async_trait;
use tessera_core::Timestamp;
use tessera_core::store::StoreResult;
use tessera_core::throttle::{Scope, ThrottleChange, ThrottleState, ThrottleStore};

pub(super) fn state(failures: i64, window_start: i64, locked_until: Option<i64>) -> ThrottleState {
    ThrottleState {
        failures,
        window_start: Timestamp::from_unix(window_start),
        locked_until: locked_until.map(Timestamp::from_unix),
    }
}

/// The state of (`scope`, `key`), its row created if need be and locked by `tx` until it
/// ends.
pub(super) async fn lock(
    tx: &mut super::Tx,
    scope: Scope,
    key: &str,
) -> StoreResult<ThrottleState> {
    // Creates the row, or touches it: either way the row is now locked by this transaction
    // until commit, and its current state comes back.
    let row = query(
        "INSERT INTO throttles (scope, key, failures, window_start, locked_until) \
         VALUES ($1, $2, 0, 0, NULL) \
         ON CONFLICT (scope, key) DO UPDATE SET failures = throttles.failures \
         RETURNING failures, window_start, locked_until",
    )
    .bind(scope.as_str())
    .bind(key)
    .fetch_one(&mut **tx)
    .await
    .map_err(db)?;
    Ok(state(
        row.try_get("failures").map_err(db)?,
        row.try_get("window_start").map_err(db)?,
        row.try_get("locked_until").map_err(db)?,
    ))
}

/// Writes the state of (`scope`, `key`), locked by [`lock`] in the same transaction.
pub(super) async fn write(
    tx: &mut super::Tx,
    scope: Scope,
    key: &str,
    next: &ThrottleState,
) -> StoreResult<()> {
    query(
        "UPDATE throttles SET failures = $3, window_start = $4, locked_until = $5 \
         WHERE scope = $1 AND key = $2",
    )
    .bind(scope.as_str())
    .bind(key)
    .bind(next.failures)
    .bind(next.window_start.unix())
    .bind(next.locked_until.map(Timestamp::unix))
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    Ok(())
}

/// Writes `next` for (`scope`, `key`), read as `was` by [`lock`] in the same transaction,
/// unless nothing changed (a sign-in with no failure before it): one statement less.
pub(super) async fn write_changed(
    tx: &mut super::Tx,
    (scope, key): (Scope, &str),
    was: &ThrottleState,
    next: &ThrottleState,
) -> StoreResult<()> {
    if next == was {
        return Ok(());
    }
    write(tx, scope, key, next).await
}

#[async_trait]
impl ThrottleStore for Backend {
    async fn update_throttle(
        &self,
        scope: Scope,
        key: &str,
        change: &mut ThrottleChange<'_>,
    ) -> StoreResult<ThrottleState> {
        let mut tx = self.begin().await.map_err(db)?;
        let current = lock(&mut tx, scope, key).await?;
        let (next, effects) = change(current);
        write(&mut tx, scope, key, &next).await?;
        super::events::write(&mut tx, &effects).await?;
        tx.commit().await.map_err(db)?;
        Ok(next)
    }

    async fn clear_throttle(&self, scope: Scope, key: &str) -> StoreResult<bool> {
        // A row at rest (no failures, no lock) has nothing to forget.
        let mut tx = self.begin_single().await.map_err(db)?;
        let cleared = query(
            "DELETE FROM throttles WHERE scope = $1 AND key = $2 \
             AND (failures > 0 OR locked_until IS NOT NULL)",
        )
        .bind(scope.as_str())
        .bind(key)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(cleared.rows_affected() > 0)
    }
}
