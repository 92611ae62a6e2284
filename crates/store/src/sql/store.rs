//! The whole store: health, readiness and identity of the backend.

use super::{Backend, NAME};
use crate::db;
use crate::query::query;
use async_trait::async_trait;
use tessera_core::Timestamp;
use tessera_core::store::{Store, StoreError, StoreResult};

#[async_trait]
impl Store for Backend {
    async fn ping(&self) -> StoreResult<()> {
        query("SELECT 1").execute(self.reader()).await.map_err(db)?;
        Ok(())
    }

    async fn ready(&self, now: Timestamp) -> StoreResult<()> {
        self.volume_has_room()?;
        let applied = query("SELECT MAX(version) AS v FROM _sqlx_migrations WHERE success")
            .fetch_one(self.reader())
            .await
            .map_err(db)?
            .try_get::<Option<i64>, _>("v")
            .map_err(db)?
            .unwrap_or(0);
        let latest = self.latest_migration();
        if applied < latest {
            return Err(StoreError::Backend(
                format!("the database is at migration {applied}, this build needs {latest}").into(),
            ));
        }
        // A write, committed: the path every change takes, `COMMIT` (and its fsync) included.
        let mut tx = self.begin().await.map_err(db)?;
        query("UPDATE heartbeat SET at = $1 WHERE id = 1")
            .bind(now.unix())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    fn backend(&self) -> &'static str {
        NAME
    }
}
