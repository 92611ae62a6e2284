//! How many emailed codes a user may be sent (SPEC §3: 5 an hour, sign-ins and resends
//! together): a rolling window over the times codes were sent. The store keeps the times and
//! runs [`admit_send`] under the user's row lock, so two concurrent sends see each other.

use super::{RetryAt, Window};
use crate::Timestamp;

/// What one send decides, given the times of earlier sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendDecision {
    /// Sends at or before this time have left the window and may be forgotten.
    pub forget_until: Timestamp,
    /// `Ok`: this send goes (and is recorded at `now`); else when the next one may.
    pub verdict: Result<(), RetryAt>,
}

/// At most `window.max` sends in any `window.secs`: the next may go once the oldest send in
/// the window has left it.
pub fn admit_send(sent: &[Timestamp], now: Timestamp, window: &Window) -> SendDecision {
    let forget_until = now.plus_secs(-window.secs);
    let mut live: Vec<Timestamp> = sent.iter().copied().filter(|t| *t > forget_until).collect();
    live.sort();
    let count = i64::try_from(live.len()).unwrap_or(i64::MAX);
    let verdict = if count >= window.max {
        let oldest = live.first().copied().unwrap_or(now);
        Err(RetryAt(oldest.plus_secs(window.secs)))
    } else {
        Ok(())
    };
    SendDecision {
        forget_until,
        verdict,
    }
}

/// The user's send window as the store passes it: gets the times of earlier sends, returns
/// the decision.
pub type SendGate<'a> = dyn FnMut(&[Timestamp]) -> SendDecision + Send + 'a;

#[cfg(test)]
mod tests {
    use super::*;

    const HOURLY_FIVE: Window = Window { max: 5, secs: 3600 };

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_unix(1_800_000_000 + secs)
    }

    #[test]
    fn five_codes_an_hour_then_the_oldest_must_leave_the_window() {
        let mut sent = Vec::new();
        for i in 0..5 {
            let decision = admit_send(&sent, t(i * 60), &HOURLY_FIVE);
            assert_eq!(decision.verdict, Ok(()), "send {i}");
            sent.push(t(i * 60));
        }
        let refused = admit_send(&sent, t(300), &HOURLY_FIVE);
        assert_eq!(refused.verdict, Err(RetryAt(t(3600))));
        // Rolling, not fixed: a second before the first send leaves, still refused.
        assert!(admit_send(&sent, t(3599), &HOURLY_FIVE).verdict.is_err());
        let after = admit_send(&sent, t(3600), &HOURLY_FIVE);
        assert_eq!(after.verdict, Ok(()));
        assert_eq!(after.forget_until, t(0));
    }

    #[test]
    fn a_limit_of_zero_sends_nothing() {
        let none = Window { max: 0, secs: 3600 };
        assert_eq!(admit_send(&[], t(0), &none).verdict, Err(RetryAt(t(3600))));
    }

    #[test]
    fn order_of_the_stored_times_does_not_matter() {
        let sent = [t(240), t(0), t(120), t(60), t(180)];
        assert_eq!(
            admit_send(&sent, t(300), &HOURLY_FIVE).verdict,
            Err(RetryAt(t(3600)))
        );
    }
}
