//! The outbox: queued under the change's transaction, claimed under a lease, settled by claim.

use super::{Backend, Row, SKIP_LOCKED};
use crate::db;
use crate::query::{Exec, query};
use async_trait::async_trait;
use tessera_core::Timestamp;
use tessera_core::mail::{OutboxEntry, OutboxStore, Priority, QueuedEmail, SealedEmail};
use tessera_core::store::{StoreError, StoreResult};
use uuid::Uuid;

pub(super) async fn enqueue(executor: impl Exec, email: &SealedEmail) -> StoreResult<()> {
    query(
        "INSERT INTO outbox (id, kind, priority, recipient, payload, status, attempts, \
         next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6)",
    )
    .bind(email.id.to_string())
    .bind(email.kind)
    .bind(email.priority.rank())
    .bind(&email.recipient)
    .bind(&email.payload)
    .bind(email.created_at.unix())
    .execute(executor)
    .await
    .map_err(db)?;
    Ok(())
}

fn uuid(row: &Row, column: &str) -> StoreResult<Uuid> {
    let text: String = row.try_get(column).map_err(db)?;
    text.parse()
        .map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

/// Every priority, for `priority IN (…)`: with it, the due rows are found by seeking the
/// index (status, priority, next_attempt_at) once per priority to the due ones; without it,
/// every pending row is read to find them, and a queue of emails waiting to be retried (an
/// SMTP server down for a while) made every poll of every lane read all of them (half the
/// server's CPU under sign-ins, each queueing its notice).
fn ranks() -> String {
    Priority::ALL
        .iter()
        .map(|p| p.rank().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Claims up to `$4` due emails at `$3` for claim `$1` until `$2`.
///
/// The rows are picked once, in a materialized CTE: as a subquery of the UPDATE,
/// PostgreSQL may run the `LIMIT` again for every row it scans and claim them all.
/// The outer conditions repeat the inner ones: a row another worker claimed between
/// the two is left alone. The outer `status` is compared as an expression (`|| ''`): as a column, SQLite reads the
/// rows to update through the status index, every pending row, rather than by their ids.
pub(super) fn claim_statement() -> String {
    format!(
        "WITH picked AS MATERIALIZED ( \
             SELECT id FROM outbox WHERE status = 'pending' AND priority IN ({ranks}) \
             AND next_attempt_at <= $3 \
             AND (claimed_until IS NULL OR claimed_until <= $3) \
             ORDER BY priority, next_attempt_at, id LIMIT $4{SKIP_LOCKED}) \
         UPDATE outbox SET claim = $1, claimed_until = $2, attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM picked) AND status || '' = 'pending' \
         AND (claimed_until IS NULL OR claimed_until <= $3) \
         RETURNING id, kind, recipient, payload, attempts",
        ranks = ranks()
    )
}

/// Whether any email is due at `$1`.
pub(super) fn due_probe() -> String {
    format!(
        "SELECT id FROM outbox WHERE status = 'pending' AND priority IN ({}) \
         AND next_attempt_at <= $1 AND (claimed_until IS NULL OR claimed_until <= $1) LIMIT 1",
        ranks()
    )
}

#[async_trait]
impl OutboxStore for Backend {
    async fn claim_emails(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        claim: Uuid,
        limit: i64,
    ) -> StoreResult<Vec<QueuedEmail>> {
        // Most polls find nothing: look first with a read, which takes no write lock.
        let due = query(&due_probe())
            .bind(now.unix())
            .fetch_optional(self.reader())
            .await
            .map_err(db)?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let sql = claim_statement();
        let mut tx = self.begin_single().await.map_err(db)?;
        let rows = query(&sql)
            .bind(claim.to_string())
            .bind(lease_until.unix())
            .bind(now.unix())
            .bind(limit)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        rows.iter()
            .map(|row| {
                Ok(QueuedEmail {
                    id: uuid(row, "id")?,
                    kind: row.try_get("kind").map_err(db)?,
                    recipient: row.try_get("recipient").map_err(db)?,
                    payload: row
                        .try_get::<Option<Vec<u8>>, _>("payload")
                        .map_err(db)?
                        .unwrap_or_default(),
                    attempts: row.try_get("attempts").map_err(db)?,
                })
            })
            .collect()
    }

    async fn email_sent(&self, id: Uuid, claim: Uuid, at: Timestamp) -> StoreResult<bool> {
        let mut tx = self.begin_single().await.map_err(db)?;
        let done = query(
            "UPDATE outbox SET status = 'sent', sent_at = $3, payload = NULL, claim = NULL, \
             claimed_until = NULL, last_error = NULL WHERE id = $1 AND claim = $2",
        )
        .bind(id.to_string())
        .bind(claim.to_string())
        .bind(at.unix())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn email_retry(
        &self,
        id: Uuid,
        claim: Uuid,
        next_attempt_at: Timestamp,
        error: &str,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_single().await.map_err(db)?;
        let done = query(
            "UPDATE outbox SET next_attempt_at = $3, last_error = $4, claim = NULL, \
             claimed_until = NULL WHERE id = $1 AND claim = $2",
        )
        .bind(id.to_string())
        .bind(claim.to_string())
        .bind(next_attempt_at.unix())
        .bind(error)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn email_unreadable(
        &self,
        id: Uuid,
        claim: Uuid,
        next_attempt_at: Timestamp,
        error: &str,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_single().await.map_err(db)?;
        let done = query(
            "UPDATE outbox SET next_attempt_at = $3, last_error = $4, claim = NULL, \
             claimed_until = NULL, attempts = attempts - 1 WHERE id = $1 AND claim = $2",
        )
        .bind(id.to_string())
        .bind(claim.to_string())
        .bind(next_attempt_at.unix())
        .bind(error)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn email_failed(&self, id: Uuid, claim: Uuid, error: &str) -> StoreResult<bool> {
        let mut tx = self.begin_single().await.map_err(db)?;
        let done = query(
            "UPDATE outbox SET status = 'failed', last_error = $3, payload = NULL, claim = NULL, \
             claimed_until = NULL WHERE id = $1 AND claim = $2",
        )
        .bind(id.to_string())
        .bind(claim.to_string())
        .bind(error)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn list_outbox(&self, include_sent: bool, limit: i64) -> StoreResult<Vec<OutboxEntry>> {
        let rows = query(
            "SELECT id, kind, recipient, status, attempts, next_attempt_at, last_error, \
             created_at, sent_at FROM outbox WHERE ($1 OR status <> 'sent') \
             ORDER BY created_at, id LIMIT $2",
        )
        .bind(include_sent)
        .bind(limit)
        .fetch_all(self.reader())
        .await
        .map_err(db)?;
        rows.iter()
            .map(|row| {
                let status: String = row.try_get("status").map_err(db)?;
                Ok(OutboxEntry {
                    id: uuid(row, "id")?,
                    kind: row.try_get("kind").map_err(db)?,
                    recipient: row.try_get("recipient").map_err(db)?,
                    status: status
                        .parse()
                        .map_err(|e| StoreError::Corrupt(format!("status: {e}")))?,
                    attempts: row.try_get("attempts").map_err(db)?,
                    next_attempt_at: Timestamp::from_unix(
                        row.try_get("next_attempt_at").map_err(db)?,
                    ),
                    last_error: row.try_get("last_error").map_err(db)?,
                    created_at: Timestamp::from_unix(row.try_get("created_at").map_err(db)?),
                    sent_at: row
                        .try_get::<Option<i64>, _>("sent_at")
                        .map_err(db)?
                        .map(Timestamp::from_unix),
                })
            })
            .collect()
    }
}
