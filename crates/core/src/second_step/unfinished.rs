//! Sign-ins left unfinished (SPEC §9): the right password was given, but the second step was
//! never completed — the classic sign of a leaked password. The user is alerted by email
//! (at most once an hour) with when, from where and from which browser the password came.
//!
//! ## When it is seen
//! - A challenge that *dies* of wrong codes is seen at once, by the attempt that kills it,
//!   and recorded in that attempt's transaction.
//! - A challenge that *expires* has no request of its own, so it is seen where that is
//!   reliable: by the periodic sweep of the server ([`SecondStep::sweep_unfinished`], every
//!   minute), and when the same user gives their password again (their expired challenges are
//!   swept first). Each expired challenge is deleted with its event and alert in one
//!   transaction that only one sweeper can win, so it is told about once. Challenges answered
//!   right are deleted by that answer and never seen here; a challenge that died was told
//!   about when it died and is deleted silently.
//!
//! Only two-factor challenges count: a device challenge's emailed code already tells its user
//! that someone has their password.

use super::SecondStep;
use crate::Timestamp;
use crate::ctx::{Ctx, Internal};
use crate::mail::Message;
use crate::model::{Account, EventKind, NewEvent, RequestMeta, User, UserId};
use crate::second_step::Expired;
use crate::store::Effects;
use serde_json::json;

/// Expired challenges handled per sweep round.
const SWEEP_BATCH: i64 = 100;

impl Ctx {
    /// The event and alert of a sign-in left unfinished, whose password came at `started`.
    pub(crate) fn unfinished_effects(
        &self,
        user: &User,
        account: &Account,
        meta: &RequestMeta,
        (started, now): (Timestamp, Timestamp),
        reason: &str,
    ) -> Effects {
        let event = NewEvent::for_user(user, EventKind::SignInUnfinished, meta, now)
            .with_detail(json!({ "reason": reason, "started_at": started.to_rfc3339() }));
        let alert = self.alert(
            user,
            account,
            meta,
            (started, now),
            Message::UnfinishedSignIn,
        );
        Effects::event(event).and_alert(alert)
    }

    /// Ends the expired two-factor challenges of `user` (or a batch of anyone's), telling
    /// each user about those that had not died of wrong codes: how many were found.
    pub(crate) async fn end_unfinished(
        &self,
        user: Option<UserId>,
        now: Timestamp,
    ) -> Result<usize, Internal> {
        let which = user.map_or(Expired::Any(SWEEP_BATCH), Expired::OfUser);
        let found = self.store.expired_challenges(which, now).await?;
        for expired in &found {
            let challenge = &expired.challenge;
            let effects = if challenge.attempts < self.policy.challenge_max_attempts {
                let at = (challenge.created_at, now);
                let (user, account) = (&expired.user, &expired.account);
                self.unfinished_effects(user, account, &challenge.meta, at, "expired")
            } else {
                Effects::default()
            };
            self.store.end_challenge(challenge.id, &effects).await?;
        }
        Ok(found.len())
    }
}

impl SecondStep {
    /// Ends every expired two-factor challenge, alerting their users (the server runs this
    /// every minute): how many there were.
    pub async fn sweep_unfinished(&self) -> Result<usize, Internal> {
        let ctx = &self.0;
        let now = ctx.now();
        let mut ended = 0;
        loop {
            let round = ctx.end_unfinished(None, now).await?;
            ended += round;
            if round < usize::try_from(SWEEP_BATCH).unwrap_or(usize::MAX) {
                return Ok(ended);
            }
        }
    }
}
