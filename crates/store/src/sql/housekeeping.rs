//! Housekeeping: one bounded delete per call, of rows past their end.

use super::Backend;
use crate::db;
use crate::query::query;
use async_trait::async_trait;
use tessera_core::Timestamp;
use tessera_core::housekeeping::{HousekeepingStore, Sweep};
use tessera_core::store::StoreResult;

/// The table, its key (what a batch is chosen by) and the condition (`$1`: the cutoff).
fn rule(sweep: Sweep) -> (&'static str, &'static str, &'static str) {
    match sweep {
        Sweep::ExpiredSessions => ("sessions", "id", "expires_at <= $1"),
        Sweep::IdleSessions => ("sessions", "id", "last_seen_at <= $1"),
        Sweep::Challenges => ("login_challenges", "id", "expires_at <= $1"),
        Sweep::PendingSetups => ("totp_enrollments", "user_id", "expires_at <= $1"),
        Sweep::Ceremonies => ("webauthn_ceremonies", "ceremony_key", "expires_at <= $1"),
        Sweep::ClearedThrottles => (
            "throttles",
            "(scope, key)",
            "failures = 0 AND (locked_until IS NULL OR locked_until <= $1)",
        ),
        Sweep::StaleThrottles => (
            "throttles",
            "(scope, key)",
            "window_start <= $1 AND (locked_until IS NULL OR locked_until <= $1)",
        ),
        Sweep::ResetLinks => ("password_resets", "token_hash", "expires_at <= $1"),
        Sweep::SignupLinks => ("signups", "id", "expires_at <= $1"),
        Sweep::EmailCodeSends => ("email_code_sends", "user_id", "sent_at <= $1"),
        Sweep::Devices => ("devices", "id", "expires_at <= $1"),
        Sweep::SentEmails => ("outbox", "id", "status = 'sent' AND sent_at <= $1"),
        Sweep::Events => ("security_events", "id", "created_at <= $1"),
        Sweep::SsoLogins => ("sso_logins", "id", "expires_at <= $1"),
        Sweep::OidcCodes => ("oidc_codes", "code_hash", "expires_at <= $1"),
        Sweep::OidcTokens => ("oidc_tokens", "token_hash", "expires_at <= $1"),
        Sweep::ApiKeys => ("api_keys", "id", "(revoked_at <= $1 OR expires_at <= $1)"),
    }
}

#[async_trait]
impl HousekeepingStore for Backend {
    async fn sweep(&self, sweep: Sweep, before: Timestamp, limit: i64) -> StoreResult<u64> {
        let (table, key, condition) = rule(sweep);
        // The batch is picked once, in a materialized CTE (as a subquery, PostgreSQL may run
        // the `LIMIT` more than once). The condition also outside: a key (a user's, for
        // email-code sends) may have rows that are not due yet.
        let columns = key.trim_matches(['(', ')']);
        let sql = format!(
            "WITH picked AS MATERIALIZED (SELECT {columns} FROM {table} WHERE {condition} LIMIT $2) \
             DELETE FROM {table} WHERE {condition} AND {key} IN (SELECT {columns} FROM picked)"
        );
        let mut tx = self.begin_single().await.map_err(db)?;
        let done = query(&sql)
            .bind(before.unix())
            .bind(limit)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(done.rows_affected())
    }
}
