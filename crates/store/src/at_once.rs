//! A right TOTP code answered in one PostgreSQL statement (SPEC §15).
//!
//! Through sqlx every statement costs a network round trip, and the second step's
//! transaction is a dozen of them (`sql/second_step.rs`). The success it usually ends in is
//! sent here as one statement instead: a chain of data-modifying CTEs in autocommit, each
//! part run only if the one before it changed its row, and the whole rolled back if the last
//! did not (an error of our own, division by zero, raised by the final `SELECT`):
//!
//! 1. the challenge is deleted if it is live and has attempts left (counting the attempt is
//!    moot: it is gone);
//! 2. the user's second-step lock gets the state the core's rules (`LockGate`) decided from
//!    the state the challenge's read saw (`Seen`), if it still has that state — an
//!    `INSERT … ON CONFLICT DO UPDATE … WHERE`, which checks the newest version of the row
//!    under its lock, or creates it if it has none;
//! 3. the TOTP step is spent if it is above the last one spent;
//! 4. the user's row moves its `sessions_version` on if it is still the one read: no session
//!    of theirs was committed since, so this statement's snapshot sees them all and the cap
//!    of sessions per user holds (a statement has one snapshot: locking the row would not
//!    make it see a session committed while it waited);
//! 5. the session is inserted, the oldest beyond the cap ended, the device written, the
//!    events, emails and alerts (each alert's email only if it is due) recorded.
//!
//! If any step finds its row changed (a concurrent request, a lock taken, a user deleted),
//! nothing is written and [`PgStore::answer_at_once`] answers `None`: the attempt then takes
//! the transaction, whose outcome is what it would have been anyway. Every other outcome
//! (a wrong code, a locked user, recovery codes, email codes, security keys,
//! re-authentication) takes the transaction directly.

use crate::query::{DbError, Param, Query, Value};
use crate::{PgStore, db};
use tessera_core::Timestamp;
use tessera_core::crypto::TokenHash;
use tessera_core::factors::Proof;
use tessera_core::model::Session;
use tessera_core::second_step::{Attempted, ChallengeAttempt, Completing, DeviceWrite, LockGate};
use tessera_core::sessions::MAX_SESSIONS_PER_USER;
use tessera_core::store::{Effects, StoreResult};
use tessera_core::throttle::ThrottleState;

/// The SQLSTATE of the final check: some step found its row changed (`division_by_zero`,
/// which nothing else in the statement can raise).
const CHANGED: &str = "22012";

impl PgStore {
    /// Answers a right TOTP code in one statement if the rows it changes are as the
    /// challenge's read saw them: `Some(Done)`; `None` if this is not such an attempt, or a
    /// row changed (nothing was written).
    pub(crate) async fn answer_at_once(
        &self,
        attempt: ChallengeAttempt,
        lock: &mut LockGate<'_>,
        completing: Option<Completing<'_>>,
    ) -> StoreResult<Option<Attempted>> {
        let (Some(seen), Some(completing)) = (attempt.seen, completing) else {
            return Ok(None);
        };
        let (&Proof::Totp { step }, Some(session)) = (completing.proof, completing.session) else {
            return Ok(None);
        };
        if completing.effects.step_up.is_some() {
            return Ok(None);
        }
        // The core's rules, on the state the read saw: only a success is answered here.
        let (admitted, go_on) = (lock.admit)(seen.lock);
        if !go_on {
            return Ok(None);
        }
        let settled = (lock.success)(admitted);
        let mut s = Statement::default();
        s.challenge(&attempt);
        s.lock(lock, &seen.lock, &settled);
        s.spend(step);
        s.open(session, seen.sessions);
        s.device(completing.device);
        s.effects(completing.effects);
        s.sql
            .push_str(" SELECT 1 / (SELECT count(*) FROM opened) AS done");
        let mut conn = self.begin_single().await.map_err(db)?;
        let answered = Query {
            sql: &s.sql,
            args: s.args,
        }
        .fetch_optional(&mut *conn)
        .await;
        match answered {
            Ok(_) => Ok(Some(Attempted::Done)),
            Err(e) if changed(&e) => {
                tracing::debug!(
                    "second step: a row changed since it was read, retried in a transaction"
                );
                Ok(None)
            }
            Err(e) => Err(db(e)),
        }
    }
}

/// Whether the statement was refused because a row was not as read (our check), or lost a
/// race the transaction will meet as such (a deadlock, a user deleted under a foreign key):
/// nothing of it was written either way.
fn changed(e: &DbError) -> bool {
    match e {
        DbError::Postgres(sqlx::Error::Database(d)) if d.code().as_deref() == Some(CHANGED) => true,
        e => e.lost_race(),
    }
}

/// The statement, built part by part: its SQL and its parameters.
#[derive(Default)]
struct Statement {
    sql: String,
    args: Vec<Value>,
}

impl Statement {
    /// Binds `value`: its placeholder.
    fn arg(&mut self, value: impl Param) -> String {
        self.args.push(value.value());
        format!("${}", self.args.len())
    }

    /// Adds the CTE `name AS (body)`.
    fn cte(&mut self, name: &str, body: &str) {
        self.sql
            .push_str(if self.sql.is_empty() { "WITH " } else { ", " });
        self.sql.push_str(name);
        self.sql.push_str(" AS (");
        self.sql.push_str(body);
        self.sql.push(')');
    }

    /// `counted`: the challenge, deleted if it is live with attempts left; its user.
    fn challenge(&mut self, attempt: &ChallengeAttempt) {
        let body = format!(
            "DELETE FROM login_challenges WHERE id = {} AND attempts < {} AND expires_at > {} \
             RETURNING user_id",
            self.arg(attempt.challenge.to_string()),
            self.arg(attempt.max_attempts),
            self.arg(attempt.now.unix()),
        );
        self.cte("counted", &body);
    }

    /// `gated`: the lock's row set to `settled` if it is still `seen`. A lock at rest may
    /// have no row (the transaction creates it at rest): then it is created.
    fn lock(&mut self, lock: &LockGate<'_>, seen: &ThrottleState, settled: &ThrottleState) {
        let (scope, key) = (self.arg(lock.scope.as_str()), self.arg(lock.key));
        let (failures, window_start, locked_until) = (
            self.arg(settled.failures),
            self.arg(settled.window_start.unix()),
            self.arg(settled.locked_until.map(Timestamp::unix)),
        );
        let was = format!(
            "throttles.failures = {} AND throttles.window_start = {} \
             AND throttles.locked_until IS NOT DISTINCT FROM {}",
            self.arg(seen.failures),
            self.arg(seen.window_start.unix()),
            self.arg(seen.locked_until.map(Timestamp::unix)),
        );
        let at_rest = ThrottleState {
            failures: 0,
            window_start: Timestamp::from_unix(0),
            locked_until: None,
        };
        let body = if *seen == at_rest {
            format!(
                "INSERT INTO throttles (scope, key, failures, window_start, locked_until) \
                 SELECT {scope}, {key}, {failures}, {window_start}, {locked_until} FROM counted \
                 ON CONFLICT (scope, key) DO UPDATE SET failures = excluded.failures, \
                 window_start = excluded.window_start, locked_until = excluded.locked_until \
                 WHERE {was} RETURNING 1"
            )
        } else {
            format!(
                "UPDATE throttles SET failures = {failures}, window_start = {window_start}, \
                 locked_until = {locked_until} \
                 WHERE scope = {scope} AND key = {key} AND {was} \
                 AND EXISTS (SELECT 1 FROM counted) RETURNING 1"
            )
        };
        self.cte("gated", &body);
    }

    /// `spent`: the TOTP step, taken if it is above the last one.
    fn spend(&mut self, step: i64) {
        let step = self.arg(step);
        let body = format!(
            "UPDATE totp_factors SET last_step = {step} \
             WHERE user_id = (SELECT user_id FROM counted) AND last_step < {step} \
             AND EXISTS (SELECT 1 FROM gated) RETURNING 1"
        );
        self.cte("spent", &body);
    }

    /// `owner`, `opened`, `capped`: the user's row moved on if its sessions' version is the
    /// one read, the session inserted, the oldest beyond the cap ended.
    fn open(&mut self, (session, token): (&Session, &TokenHash), version: i64) {
        let user = self.arg(session.user_id.to_string());
        let id = self.arg(session.id.to_string());
        let body = format!(
            "UPDATE users SET sessions_version = sessions_version + 1 \
             WHERE id = {user} AND sessions_version = {} AND EXISTS (SELECT 1 FROM spent) \
             RETURNING id",
            self.arg(version),
        );
        self.cte("owner", &body);
        let body = format!(
            "INSERT INTO sessions (id, user_id, token_hash, kind, created_at, expires_at, ip, \
             user_agent, last_seen_at, reauthenticated_at, method) \
             SELECT {id}, {user}, {}, {}, {}, {}, {}, {}, {}, {}, {} FROM owner RETURNING id",
            self.arg(token.as_bytes()),
            self.arg(session.kind.as_str()),
            self.arg(session.created_at.unix()),
            self.arg(session.expires_at.unix()),
            self.arg(session.ip.as_deref()),
            self.arg(session.user_agent.as_deref()),
            self.arg(session.last_seen_at.unix()),
            self.arg(session.reauthenticated_at.unix()),
            self.arg(session.method.map(|m| m.as_str())),
        );
        self.cte("opened", &body);
        // The new session is not in this statement's snapshot: the others are kept up to one
        // less than the cap, as `sessions::insert` does.
        let body = format!(
            "DELETE FROM sessions WHERE user_id = {user} AND id <> {id} \
             AND EXISTS (SELECT 1 FROM opened) AND id NOT IN \
             (SELECT id FROM sessions WHERE user_id = {user} AND id <> {id} \
              ORDER BY created_at DESC, id DESC LIMIT {})",
            self.arg(MAX_SESSIONS_PER_USER - 1),
        );
        self.cte("capped", &body);
    }

    /// `device`: what the step does to the device it came from.
    fn device(&mut self, device: Option<&DeviceWrite>) {
        let body = match device {
            None => return,
            Some(DeviceWrite::New { device, token }) => format!(
                "INSERT INTO devices (id, user_id, token_hash, user_agent, ip, created_at, \
                 last_used_at, expires_at, trusted_until) \
                 SELECT {}, {}, {}, {}, {}, {}, {}, {}, {} FROM opened",
                self.arg(device.id.to_string()),
                self.arg(device.user_id.to_string()),
                self.arg(token.as_bytes()),
                self.arg(device.user_agent.as_deref()),
                self.arg(device.ip.as_deref()),
                self.arg(device.created_at.unix()),
                self.arg(device.last_used_at.unix()),
                self.arg(device.expires_at.unix()),
                self.arg(device.trusted_until.map(Timestamp::unix)),
            ),
            Some(DeviceWrite::Trust { device, until }) => {
                let until = self.arg(until.unix());
                format!(
                    "UPDATE devices SET trusted_until = {until}, \
                     expires_at = CASE WHEN expires_at < {until} THEN {until} ELSE expires_at END \
                     WHERE id = {} AND user_id = (SELECT user_id FROM counted) \
                     AND EXISTS (SELECT 1 FROM opened)",
                    self.arg(device.to_string()),
                )
            }
        };
        self.cte("device", &body);
    }

    /// `events`, `email_N`, `alert_N` and `alert_email_N`: what the change records, in
    /// `events::write`'s order (the events' ids follow the order they are listed in).
    fn effects(&mut self, effects: &Effects) {
        if !effects.events.is_empty() {
            let rows: Vec<String> = effects
                .events
                .iter()
                .enumerate()
                .map(|(n, event)| {
                    format!(
                        "({n}, {}, {}, {}, {}, {}, {}, {}, {})",
                        self.arg(event.account_id.map(|id| id.to_string())),
                        self.arg(event.user_id.map(|id| id.to_string())),
                        self.arg(event.email.as_deref()),
                        self.arg(event.kind.as_str()),
                        self.arg(event.meta.ip.as_deref()),
                        self.arg(event.meta.user_agent.as_deref()),
                        self.arg(event.detail.to_string()),
                        self.arg(event.at.unix()),
                    )
                })
                .collect();
            let body = format!(
                "INSERT INTO security_events \
                 (account_id, user_id, email, kind, ip, user_agent, detail, created_at) \
                 SELECT account_id, user_id, email, kind, ip, user_agent, detail, created_at \
                 FROM (VALUES {}) AS e (n, account_id, user_id, email, kind, ip, user_agent, \
                 detail, created_at) WHERE EXISTS (SELECT 1 FROM opened) ORDER BY n",
                rows.join(", ")
            );
            self.cte("events", &body);
        }
        for (n, email) in effects.emails.iter().enumerate() {
            let body = self.email(email, "opened");
            self.cte(&format!("email_{n}"), &body);
        }
        for (n, alert) in effects.alerts.iter().enumerate() {
            let body = format!(
                "INSERT INTO security_alerts (user_id, kind, sent_at) \
                 SELECT {}, {}, {} FROM opened \
                 ON CONFLICT (user_id, kind) DO UPDATE SET sent_at = excluded.sent_at \
                 WHERE security_alerts.sent_at <= {} RETURNING 1",
                self.arg(alert.user_id.to_string()),
                self.arg(alert.email.kind),
                self.arg(alert.now.unix()),
                self.arg(alert.quiet_since.unix()),
            );
            self.cte(&format!("alert_{n}"), &body);
            let body = self.email(&alert.email, &format!("alert_{n}"));
            self.cte(&format!("alert_email_{n}"), &body);
        }
    }

    /// An email into the outbox, if `after` returned a row.
    fn email(&mut self, email: &tessera_core::mail::SealedEmail, after: &str) -> String {
        let created = self.arg(email.created_at.unix());
        format!(
            "INSERT INTO outbox (id, kind, priority, recipient, payload, status, attempts, \
             next_attempt_at, created_at) \
             SELECT {}, {}, {}, {}, {}, 'pending', 0, {created}, {created} FROM {after}",
            self.arg(email.id.to_string()),
            self.arg(email.kind),
            self.arg(email.priority.rank()),
            self.arg(email.recipient.as_str()),
            self.arg(email.payload.as_slice()),
        )
    }
}
