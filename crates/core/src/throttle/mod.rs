//! Throttles: the state machines that slow down guessing.
//!
//! Each throttle ([`Scope`]) is one row of [`ThrottleState`] per key, changed only inside a
//! store transaction ([`ThrottleStore::update_throttle`]) by the pure functions here, so
//! concurrent requests see each other's counts.
//!
//! ## Consecutive-failure locks ([`Lockout`])
//! Password sign-in per email (SPEC §3: 10 failures, 15 min; keyed by the normalized email
//! whether or not a user has it, so a lock says nothing about which addresses exist), the
//! second step per user (10, 15 min), the recovery page per email (5, 1 h):
//! - `Open(n)` (n attempts counted since the last success, n < max): [`admit`] counts the
//!   attempt *before* the secret is checked → `Open(n+1)`. Counting first means concurrent
//!   guesses cannot slip past the limit.
//! - A success → `Open(0)` ([`success`]).
//! - A failure with n ≥ max → `Locked(now + lock)`; the caller that makes this transition
//!   (and only that one) emails the user ([`failure`]).
//! - `Locked(t)`: every attempt is refused until t without checking; once t has passed the
//!   next attempt starts again from `Open(0)`.
//!
//! ## Counted windows ([`Window`])
//! Failed sign-ins per IP address (SPEC §3: 50 in 10 min): a fixed window starting at its
//! first attempt. [`window_admit`] counts each attempt
//! before it is checked and refuses while the window holds `max`; an attempt that should not
//! count after all (a sign-in that succeeded) is given back ([`window_refund`]).
//!
//! ## Emailed codes ([`send_window`])
//! Codes emailed per user (5 an hour) use a rolling window over the send times.

mod gate;
mod port;
mod scope;
pub mod send_window;

pub use port::{ThrottleChange, ThrottleStore};
pub use scope::Scope;
pub(crate) use scope::{email_key, ip_key};

use crate::Timestamp;

/// The stored state of one throttle key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThrottleState {
    pub failures: i64,
    pub window_start: Timestamp,
    pub locked_until: Option<Timestamp>,
}

/// Refused: try again at this time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryAt(pub Timestamp);

/// A consecutive-failure lock: `max_failures` in a row lock for `lock_secs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lockout {
    pub max_failures: i64,
    pub lock_secs: i64,
}

/// Counts an attempt before it is checked, or refuses it while locked.
///
/// Each admission stamps `window_start`. If every allowed attempt was admitted but none was
/// ever settled (the process died, or the request failed midway), the count lapses
/// `lock_secs` after the last admission, so a stuck count can never lock anyone out for good.
pub fn admit(
    state: ThrottleState,
    now: Timestamp,
    lockout: &Lockout,
) -> (ThrottleState, Result<(), RetryAt>) {
    let state = match state.locked_until {
        Some(until) if until > now => return (state, Err(RetryAt(until))),
        Some(_) => ThrottleState::default(),
        None => state,
    };
    let state = if state.failures >= lockout.max_failures {
        let lapses = state.window_start.plus_secs(lockout.lock_secs);
        if now < lapses {
            // Every allowed attempt is in flight; the one that fails will set the lock.
            return (state, Err(RetryAt(lapses)));
        }
        ThrottleState::default()
    } else {
        state
    };
    (
        ThrottleState {
            failures: state.failures + 1,
            window_start: now,
            locked_until: None,
        },
        Ok(()),
    )
}

/// A success: the count starts again.
pub fn success(_state: ThrottleState) -> ThrottleState {
    ThrottleState::default()
}

/// A failure (already counted by [`admit`]). Returns whether this failure locked, which
/// happens exactly once per lock.
pub fn failure(state: ThrottleState, now: Timestamp, lockout: &Lockout) -> (ThrottleState, bool) {
    if state.locked_until.is_none() && state.failures >= lockout.max_failures {
        let locked = ThrottleState {
            locked_until: Some(now.plus_secs(lockout.lock_secs)),
            ..state
        };
        (locked, true)
    } else {
        (state, false)
    }
}

/// At most `max` counted attempts in `secs` from the first one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub max: i64,
    pub secs: i64,
}

/// Counts an attempt before it is checked (so parallel requests cannot all pass), or refuses
/// it while the window already holds `max`.
pub fn window_admit(
    state: ThrottleState,
    now: Timestamp,
    window: &Window,
) -> (ThrottleState, Result<(), RetryAt>) {
    let window_end = state.window_start.plus_secs(window.secs);
    if now >= window_end {
        let fresh = ThrottleState {
            failures: 1,
            window_start: now,
            locked_until: None,
        };
        return (fresh, Ok(()));
    }
    if state.failures >= window.max {
        return (state, Err(RetryAt(window_end)));
    }
    let next = ThrottleState {
        failures: state.failures + 1,
        ..state
    };
    (next, Ok(()))
}

/// The attempt does not count after all (a sign-in that succeeded).
pub fn window_refund(state: ThrottleState) -> ThrottleState {
    ThrottleState {
        failures: (state.failures - 1).max(0),
        ..state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SecurityPolicy;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_unix(1_000_000 + secs)
    }

    #[test]
    fn ten_wrong_passwords_lock_for_fifteen_minutes_exactly_once() {
        let p = SecurityPolicy::default();
        let mut s = ThrottleState::default();
        for i in 1..=10 {
            let (next, admitted) = admit(s, t(i), &p.password_lockout());
            assert!(admitted.is_ok(), "attempt {i} must be checked");
            let (next, locked) = failure(next, t(i), &p.password_lockout());
            assert_eq!(locked, i == 10, "only the 10th failure locks");
            s = next;
        }
        assert_eq!(s.locked_until, Some(t(10 + 900)));
        // A second failure report for the same lock does not lock again.
        assert!(!failure(s, t(11), &p.password_lockout()).1);
        // Locked: refused without counting, until the lock ends.
        let (same, refused) = admit(s, t(10 + 899), &p.password_lockout());
        assert_eq!(refused, Err(RetryAt(t(910))));
        assert_eq!(same, s);
        // After the lock: a fresh start.
        let (after, ok) = admit(s, t(910), &p.password_lockout());
        assert!(ok.is_ok());
        assert_eq!(after.failures, 1);
        assert_eq!(after.locked_until, None);
    }

    #[test]
    fn a_correct_password_resets_the_count() {
        let p = SecurityPolicy::default();
        let mut s = ThrottleState::default();
        for i in 0..9 {
            s = failure(
                admit(s, t(i), &p.password_lockout()).0,
                t(i),
                &p.password_lockout(),
            )
            .0;
        }
        assert_eq!(s.failures, 9);
        s = success(admit(s, t(9), &p.password_lockout()).0);
        assert_eq!(s, ThrottleState::default());
    }

    #[test]
    fn attempts_in_flight_count_against_the_limit() {
        let p = SecurityPolicy::default();
        let mut s = ThrottleState::default();
        for i in 0..10 {
            let (next, ok) = admit(s, t(i), &p.password_lockout());
            assert!(ok.is_ok());
            s = next;
        }
        // Ten attempts admitted, none finished: the eleventh is refused.
        assert!(admit(s, t(10), &p.password_lockout()).1.is_err());
    }

    #[test]
    fn fifty_failures_from_one_ip_within_ten_minutes_are_refused() {
        let p = SecurityPolicy::default();
        let mut s = ThrottleState::default();
        for i in 0..50 {
            let (next, ok) = window_admit(s, t(i), &p.ip_window());
            assert!(ok.is_ok(), "attempt {i}");
            s = next;
        }
        assert_eq!(
            window_admit(s, t(50), &p.ip_window()).1,
            Err(RetryAt(t(600)))
        );
        assert_eq!(
            window_admit(s, t(599), &p.ip_window()).1,
            Err(RetryAt(t(600)))
        );
        // The window ends ten minutes after its first failure.
        let (s, ok) = window_admit(s, t(600), &p.ip_window());
        assert!(ok.is_ok());
        assert_eq!((s.failures, s.window_start), (1, t(600)));
    }

    #[test]
    fn successes_from_an_address_are_refunded() {
        let p = SecurityPolicy::default();
        let mut s = ThrottleState::default();
        for i in 0..100 {
            let (next, ok) = window_admit(s, t(i), &p.ip_window());
            assert!(ok.is_ok());
            s = window_refund(next);
        }
        assert_eq!(s.failures, 0);
    }

    #[test]
    fn a_count_that_was_never_settled_lapses() {
        let lockout = SecurityPolicy::default().password_lockout();
        let mut s = ThrottleState::default();
        // Ten attempts admitted, none settled (say, the process died each time).
        for i in 0..10 {
            s = admit(s, t(i), &lockout).0;
        }
        assert_eq!(admit(s, t(10), &lockout).1, Err(RetryAt(t(9 + 900))));
        let (after, ok) = admit(s, t(9 + 900), &lockout);
        assert!(ok.is_ok());
        assert_eq!(after.failures, 1);
    }
}
