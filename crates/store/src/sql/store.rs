//! The whole store: health and identity of the backend.

use super::{Backend, NAME};
use crate::db;
use crate::query::query;
use async_trait::async_trait;
use tessera_core::store::{Store, StoreResult};

#[async_trait]
impl Store for Backend {
    async fn ping(&self) -> StoreResult<()> {
        query("SELECT 1").execute(self.reader()).await.map_err(db)?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        NAME
    }
}
