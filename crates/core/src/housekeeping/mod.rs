//! Housekeeping (SPEC §14, review D13): what has expired is deleted, so the database stays
//! the size of what is live.
//!
//! Each [`Sweep`] is one kind of row past its end, deleted in batches of at most `batch`
//! rows, one statement each: a delete is idempotent and short, so several instances may run
//! housekeeping at once (they just find less to do) and none holds a lock for long. A sweep
//! keeps going while its batches come back full.
//!
//! | sweep | deleted when |
//! |---|---|
//! | sessions | past their absolute end, or idle past the idle timeout |
//! | challenges | a day past their end (two-factor ones are ended, with their alert, by the sweep of unfinished sign-ins within a minute) |
//! | pending setups | past their end (30 min) |
//! | throttles | back to nothing (no failure, no lock), or untouched for 30 days and not locked |
//! | reset links, sign-up links | a day past their end (used or not) |
//! | email-code sends | a day past the send window |
//! | devices | past their lifetime (30 days): no longer recognized anyway |
//! | sent emails | 30 days after delivery (`sent_email_retention_days`) |
//! | audit events | after `event_retention_days` (400, `TESSERA_EVENT_RETENTION_DAYS`) |
//! | OIDC codes, access and refresh tokens | a day past their end (used or not) |
//!
//! Pending and failed emails are never deleted: they wait for delivery or an operator.

mod port;

pub use port::{HousekeepingStore, Sweep};

use crate::store::StoreResult;
use crate::{SecurityPolicy, Timestamp};

/// A throttle untouched this long (and not locked) is forgotten.
const THROTTLE_KEEP_SECS: i64 = 30 * 24 * 3600;
/// Used and expired links and send records are kept a day, for a person looking into one.
const GRACE_SECS: i64 = 24 * 3600;
const DAY_SECS: i64 = 24 * 3600;
/// A revoked or expired API key is kept this long, then deleted.
const API_KEY_RETENTION_DAYS: i64 = 30;

/// Rows deleted per statement.
pub const BATCH: i64 = 1000;

/// Every sweep, and the time before which its rows are gone, for the rules at `now`.
pub fn cutoffs(policy: &SecurityPolicy, now: Timestamp) -> Vec<(Sweep, Timestamp)> {
    let ago = |secs: i64| now.plus_secs(-secs);
    vec![
        (Sweep::ExpiredSessions, now),
        (Sweep::IdleSessions, ago(policy.session_idle_secs)),
        // The server's sweep of unfinished sign-ins ends expired challenges every minute,
        // alerting their users; this only removes what it left (device challenges, or all
        // of them after a long outage), a day on.
        (Sweep::Challenges, ago(GRACE_SECS)),
        (Sweep::PendingSetups, now),
        (Sweep::Ceremonies, now),
        (Sweep::ClearedThrottles, now),
        (Sweep::StaleThrottles, ago(THROTTLE_KEEP_SECS)),
        (
            Sweep::ResetLinks,
            ago(GRACE_SECS.max(policy.reset_link_send_window_secs)),
        ),
        (Sweep::SignupLinks, ago(GRACE_SECS)),
        (
            Sweep::EmailCodeSends,
            ago(GRACE_SECS.max(policy.email_code_send_window_secs)),
        ),
        (Sweep::Devices, now),
        (
            Sweep::SentEmails,
            ago(policy.sent_email_retention_days.max(1) * DAY_SECS),
        ),
        (
            Sweep::Events,
            ago(policy.event_retention_days.max(1) * DAY_SECS),
        ),
        (Sweep::SsoLogins, now),
        (Sweep::OidcCodes, ago(GRACE_SECS)),
        (Sweep::OidcTokens, ago(GRACE_SECS)),
        // A revoked or expired key is still recognized (its uses refused as such, and
        // audited) for a month, then forgotten.
        (Sweep::ApiKeys, ago(API_KEY_RETENTION_DAYS * DAY_SECS)),
    ]
}

/// Runs every sweep once, to its end: what each deleted.
pub async fn run(
    store: &dyn HousekeepingStore,
    policy: &SecurityPolicy,
    now: Timestamp,
    batch: i64,
) -> StoreResult<Vec<(Sweep, u64)>> {
    let mut swept = Vec::new();
    for (sweep, before) in cutoffs(policy, now) {
        let mut total = 0;
        loop {
            let deleted = store.sweep(sweep, before, batch).await?;
            total += deleted;
            if deleted < u64::try_from(batch).unwrap_or(0) {
                break;
            }
        }
        swept.push((sweep, total));
    }
    Ok(swept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sweep_has_one_cutoff_and_retention_counts_in_days() {
        let now = Timestamp::from_unix(1_800_000_000);
        let policy = SecurityPolicy::default();
        let cutoffs = cutoffs(&policy, now);
        assert_eq!(cutoffs.len(), Sweep::ALL.len());
        let of = |sweep| cutoffs.iter().find(|(s, _)| *s == sweep).unwrap().1;
        assert_eq!(of(Sweep::Events), now.plus_secs(-400 * DAY_SECS));
        assert_eq!(of(Sweep::SentEmails), now.plus_secs(-30 * DAY_SECS));
        assert_eq!(of(Sweep::IdleSessions), now.plus_secs(-1800));
        assert_eq!(of(Sweep::Challenges), now.plus_secs(-DAY_SECS));
    }
}
