//! The audit log.

use super::Backend;
use super::rows;
use crate::db;
use crate::query::{Exec, query};
use async_trait::async_trait;
use tessera_core::audit::EventStore;
use tessera_core::mail::Alert;
use tessera_core::model::{NewEvent, SecurityEvent, UserId};
use tessera_core::store::{Effects, StoreResult};

/// Writes a change's events and queued emails inside its transaction.
pub(super) async fn write(tx: &mut super::Tx, effects: &Effects) -> StoreResult<()> {
    for event in &effects.events {
        insert(&mut **tx, event).await?;
    }
    for email in &effects.emails {
        super::outbox::enqueue(&mut **tx, email).await?;
    }
    for alert in &effects.alerts {
        if alert_due(tx, alert).await? {
            super::outbox::enqueue(&mut **tx, &alert.email).await?;
        }
    }
    Ok(())
}

/// Records an alert as sent if the last one of its kind to its user was sent at or before
/// its `quiet_since` (or never): one upsert under the row's lock, so of concurrent alerts
/// one goes.
async fn alert_due(tx: &mut super::Tx, alert: &Alert) -> StoreResult<bool> {
    let sent = query(
        "INSERT INTO security_alerts (user_id, kind, sent_at) VALUES ($1, $2, $3) \
         ON CONFLICT (user_id, kind) DO UPDATE SET sent_at = excluded.sent_at \
         WHERE security_alerts.sent_at <= $4 RETURNING sent_at",
    )
    .bind(alert.user_id.to_string())
    .bind(alert.email.kind)
    .bind(alert.now.unix())
    .bind(alert.quiet_since.unix())
    .fetch_optional(&mut **tx)
    .await
    .map_err(db)?;
    Ok(sent.is_some())
}

/// Ends a change that may have found nothing to change: if it `changed`, its effects are
/// written and the transaction commits; if not, the transaction is dropped (rolled back) and
/// nothing is recorded. Returns `changed`.
pub(super) async fn settle(
    mut tx: super::Tx,
    changed: bool,
    effects: &Effects,
) -> StoreResult<bool> {
    if changed {
        write(&mut tx, effects).await?;
        tx.commit().await.map_err(db)?;
    }
    Ok(changed)
}

async fn insert(executor: impl Exec, event: &NewEvent) -> StoreResult<()> {
    query(
        "INSERT INTO security_events \
         (account_id, user_id, email, kind, ip, user_agent, detail, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(event.account_id.map(|id| id.to_string()))
    .bind(event.user_id.map(|id| id.to_string()))
    .bind(event.email.as_deref())
    .bind(event.kind.as_str())
    .bind(event.meta.ip.as_deref())
    .bind(event.meta.user_agent.as_deref())
    .bind(event.detail.to_string())
    .bind(event.at.unix())
    .execute(executor)
    .await
    .map_err(db)?;
    Ok(())
}

#[async_trait]
impl EventStore for Backend {
    async fn record(&self, effects: &Effects) -> StoreResult<()> {
        let mut tx = self.begin().await.map_err(db)?;
        write(&mut tx, effects).await?;
        tx.commit().await.map_err(db)
    }

    async fn user_events(
        &self,
        user: UserId,
        before: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<SecurityEvent>> {
        page(self, Owner::User, &user.to_string(), before, limit).await
    }
}

/// Whose events a page lists.
pub(super) enum Owner {
    User,
    Account,
}

/// A page of events of one user or account, newest first, older than `before`.
pub(super) async fn page(
    store: &Backend,
    owner: Owner,
    id: &str,
    before: Option<i64>,
    limit: i64,
) -> StoreResult<Vec<SecurityEvent>> {
    let sql = match owner {
        Owner::User => {
            "SELECT id, account_id, user_id, email, kind, ip, user_agent, detail, created_at \
             FROM security_events WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
        }
        Owner::Account => {
            "SELECT id, account_id, user_id, email, kind, ip, user_agent, detail, created_at \
             FROM security_events WHERE account_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
        }
    };
    let rows = query(sql)
        .bind(id)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(store.reader())
        .await
        .map_err(db)?;
    rows.iter().map(rows::event).collect()
}
