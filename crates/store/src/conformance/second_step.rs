//! The second step's one transaction on every backend: an attempt is counted before its proof
//! is looked at, a locked user is refused but counted, and a challenge, a TOTP step and a
//! recovery code each serve one sign-in however many attempts race.

use super::*;
use std::sync::Arc;
use tessera_core::Timestamp;
use tessera_core::crypto::Token;
use tessera_core::model::{Challenge, ChallengeId, ChallengeKind, RequestMeta, User};
use tessera_core::second_step::Expired;

conformance!(
    a_challenge_is_read_with_its_user_account_and_factor,
    a_second_step_proof_is_spent_once_under_a_race,
    an_attempt_is_counted_before_its_proof,
    a_locked_user_is_refused_and_counted,
    an_expired_challenge_is_found_with_its_origin_and_ended_once,
);

pub(super) async fn challenge_for(store: &Arc<dyn Store>, user: &User) -> ChallengeId {
    let c = Challenge {
        last_sent_at: None,
        meta: RequestMeta::default(),
        device_id: None,
        id: ChallengeId::new(),
        user_id: user.id,
        kind: ChallengeKind::TwoFactor,
        attempts: 0,
        created_at: T0,
        expires_at: T0.plus_secs(600),
    };
    store
        .create_challenge(&c, &Token::generate().hash())
        .await
        .unwrap();
    c.id
}

async fn a_challenge_is_read_with_its_user_account_and_factor(store: Arc<dyn Store>, _: String) {
    let u = with_enrollment(&store, "context@example.com").await;
    let token = Token::generate();
    let c = Challenge {
        last_sent_at: None,
        meta: RequestMeta::default(),
        device_id: None,
        id: ChallengeId::new(),
        user_id: u.id,
        kind: ChallengeKind::Device,
        attempts: 0,
        created_at: T0,
        expires_at: T0.plus_secs(600),
    };
    store.create_challenge(&c, &token.hash()).await.unwrap();
    let found = store
        .find_challenge_context(&token.hash(), T0)
        .await
        .unwrap()
        .unwrap();
    // Ended (a re-authentication's own challenge that did not pass), it is gone.
    let other = challenge_for(&store, &u).await;
    store
        .end_challenge(other, &Effects::default())
        .await
        .unwrap();
    let gone = attempt(&store, other, T0, None).await;
    assert_eq!(gone, Attempted::ChallengeGone);
    assert_eq!(
        (
            found.challenge.id,
            found.challenge.kind,
            found.challenge.expires_at
        ),
        (c.id, ChallengeKind::Device, T0.plus_secs(600))
    );
    assert_eq!((found.user.id, found.user.email), (u.id, u.email.clone()));
    assert_eq!(found.account.id, u.account_id);
    assert!(found.totp.is_none(), "no factor before activation");

    store
        .activate_totp(u.id, &[7; 60], T0, 42, &[], &Effects::default())
        .await
        .unwrap();
    // Activation ends device challenges: a new, TOTP one.
    let c = challenge_for(&store, &u).await;
    let token = Token::generate();
    let c2 = Challenge {
        id: ChallengeId::new(),
        kind: ChallengeKind::TwoFactor,
        last_sent_at: None,
        meta: RequestMeta::default(),
        device_id: None,
        ..found.challenge
    };
    store.create_challenge(&c2, &token.hash()).await.unwrap();
    assert_ne!(c, c2.id);
    let found = store
        .find_challenge_context(&token.hash(), T0)
        .await
        .unwrap()
        .unwrap();
    let factor = found.totp.expect("the factor");
    assert_eq!((factor.secret_sealed, factor.last_step), (vec![7; 60], 42));
    assert_eq!(factor.enabled_at, T0);
    // Expired, or unknown: nothing.
    assert!(
        store
            .find_challenge_context(&token.hash(), T0.plus_secs(600))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find_challenge_context(&Token::generate().hash(), T0)
            .await
            .unwrap()
            .is_none()
    );
}

/// The throttle this module's attempts pass, keyed by `key`.
const SCOPE: Scope = Scope::SecondStep;

/// What a lock does with an attempt: the state to write, and whether the attempt goes on.
type Admit = fn(ThrottleState) -> (ThrottleState, bool);

/// Counts every attempt as a failure and admits it while fewer than 3 were counted; a
/// success clears the count.
fn admit_three(state: ThrottleState) -> (ThrottleState, bool) {
    let go_on = state.failures < 3;
    let next = ThrottleState {
        failures: state.failures + 1,
        ..state
    };
    (next, go_on)
}

/// One attempt at `c` (at most 5 per challenge) behind the lock `key`, which `admit` passes.
async fn attempt_behind(
    store: &Arc<dyn Store>,
    c: ChallengeId,
    (key, mut admit): (&str, Admit),
    now: Timestamp,
    completing: Option<Completing<'_>>,
) -> Attempted {
    store
        .attempt_second_step(
            ChallengeAttempt {
                challenge: c,
                max_attempts: 5,
                now,
                seen: None,
            },
            &mut LockGate {
                scope: SCOPE,
                key,
                admit: &mut admit,
                success: |_| ThrottleState::default(),
            },
            completing,
        )
        .await
        .unwrap()
}

/// One attempt at `c` behind a lock that never refuses.
pub(super) async fn attempt(
    store: &Arc<dyn Store>,
    c: ChallengeId,
    now: Timestamp,
    completing: Option<Completing<'_>>,
) -> Attempted {
    let open = |state| (state, true);
    attempt_behind(store, c, ("open", open), now, completing).await
}

/// A proof with a session and no effects.
pub(super) struct Spend {
    pub(super) proof: Proof,
    pub(super) session: tessera_core::model::Session,
    pub(super) token: tessera_core::crypto::TokenHash,
    pub(super) effects: Effects,
}

impl Spend {
    pub(super) fn new(user: &User, proof: Proof) -> Self {
        Self {
            proof,
            session: session(user, T0.plus_secs(3600)),
            token: Token::generate().hash(),
            effects: Effects::default(),
        }
    }

    pub(super) fn completing(&self) -> Option<Completing<'_>> {
        Some(Completing {
            proof: &self.proof,
            session: Some((&self.session, &self.token)),
            device: None,
            effects: &self.effects,
        })
    }
}

pub(super) async fn enabled(store: &Arc<dyn Store>, email: &str, recovery: &[u8]) -> User {
    let u = with_enrollment(store, email).await;
    store
        .activate_totp(
            u.id,
            &[7; 60],
            T0,
            100,
            &[recovery.to_vec()],
            &Effects::default(),
        )
        .await
        .unwrap();
    u
}

async fn a_second_step_proof_is_spent_once_under_a_race(store: Arc<dyn Store>, _: String) {
    let u = enabled(&store, "proof@example.com", &[1; 32]).await;
    for proof in [
        Proof::Totp { step: 101 },
        Proof::RecoveryCode { hash: vec![1; 32] },
    ] {
        let mut challenges = Vec::new();
        for _ in 0..20 {
            challenges.push(challenge_for(&store, &u).await);
        }
        let tasks: Vec<_> = challenges
            .into_iter()
            .map(|c| {
                let (store, proof, u) = (Arc::clone(&store), proof.clone(), u.clone());
                tokio::spawn(async move {
                    let proof = Spend::new(&u, proof);
                    attempt(&store, c, T0, proof.completing()).await
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for t in tasks {
            outcomes.push(t.await.unwrap());
        }
        let done = outcomes.iter().filter(|o| **o == Attempted::Done).count();
        assert_eq!(done, 1, "{proof:?}: {outcomes:?}");
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, Attempted::Done | Attempted::Rejected { attempts: 1 })),
            "{outcomes:?}"
        );
    }
    // One challenge, many right proofs at once: one sign-in, one session.
    let c = challenge_for(&store, &u).await;
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let (store, u) = (Arc::clone(&store), u.clone());
            tokio::spawn(async move {
                let proof = Spend::new(&u, Proof::Totp { step: 200 + i });
                attempt(&store, c, T0, proof.completing()).await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    assert_eq!(
        outcomes.iter().filter(|o| **o == Attempted::Done).count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(
        store
            .list_sessions(u.id, T0, Timestamp::from_unix(0), None, 1000)
            .await
            .unwrap()
            .len(),
        3
    );
}

async fn an_attempt_is_counted_before_its_proof(store: Arc<dyn Store>, _: String) {
    let u = enabled(&store, "count@example.com", &[1; 32]).await;
    let c = challenge_for(&store, &u).await;
    // A replayed step is rejected, and counted.
    let replay = Spend::new(&u, Proof::Totp { step: 100 });
    assert_eq!(
        attempt(&store, c, T0, replay.completing()).await,
        Attempted::Rejected { attempts: 1 }
    );
    for n in 2..=4 {
        assert_eq!(
            attempt(&store, c, T0, None).await,
            Attempted::Rejected { attempts: n }
        );
    }
    // The fifth try may still be right …
    let fresh = Spend::new(&u, Proof::Totp { step: 101 });
    assert_eq!(
        attempt(&store, c, T0, fresh.completing()).await,
        Attempted::Done
    );
    assert_eq!(
        store
            .get_totp_factor(u.id)
            .await
            .unwrap()
            .unwrap()
            .last_step,
        101
    );
    // … and a used challenge is gone.
    assert_eq!(attempt(&store, c, T0, None).await, Attempted::ChallengeGone);
    // Five wrong tries kill a challenge: a right sixth is not looked at.
    let dead = challenge_for(&store, &u).await;
    for n in 1..=5 {
        assert_eq!(
            attempt(&store, dead, T0, None).await,
            Attempted::Rejected { attempts: n }
        );
    }
    let late = Spend::new(&u, Proof::Totp { step: 102 });
    assert_eq!(
        attempt(&store, dead, T0, late.completing()).await,
        Attempted::ChallengeGone
    );
    // An expired challenge is gone, and nothing is spent.
    let expired = challenge_for(&store, &u).await;
    assert_eq!(
        attempt(&store, expired, T0.plus_secs(600), late.completing()).await,
        Attempted::ChallengeGone
    );
    assert_eq!(
        store
            .get_totp_factor(u.id)
            .await
            .unwrap()
            .unwrap()
            .last_step,
        101
    );
}

async fn a_locked_user_is_refused_and_counted(store: Arc<dyn Store>, _: String) {
    let u = enabled(&store, "locked@example.com", &[1; 32]).await;
    let key = u.id.to_string();
    let state = |store: Arc<dyn Store>, key: String| async move {
        store
            .update_throttle(SCOPE, &key, &mut |s| (s, Effects::default()))
            .await
            .unwrap()
    };
    // Three wrong codes on three challenges: each counted on the lock.
    for _ in 0..3 {
        let c = challenge_for(&store, &u).await;
        assert_eq!(
            attempt_behind(&store, c, (&key, admit_three), T0, None).await,
            Attempted::Rejected { attempts: 1 }
        );
    }
    assert_eq!(state(store.clone(), key.clone()).await.failures, 3);
    // Now the lock refuses even the right code: counted on the challenge and the lock,
    // nothing spent, no session.
    let c = challenge_for(&store, &u).await;
    let right = Spend::new(&u, Proof::Totp { step: 101 });
    assert_eq!(
        attempt_behind(&store, c, (&key, admit_three), T0, right.completing()).await,
        Attempted::Locked
    );
    assert_eq!(state(store.clone(), key.clone()).await.failures, 4);
    assert_eq!(
        store
            .get_totp_factor(u.id)
            .await
            .unwrap()
            .unwrap()
            .last_step,
        100
    );
    assert!(
        store
            .list_sessions(u.id, T0, Timestamp::from_unix(0), None, 1000)
            .await
            .unwrap()
            .is_empty()
    );
    // Behind a lock that admits, the same proof completes and the lock is settled.
    let other = challenge_for(&store, &u).await;
    let fresh_key = format!("{key}-fresh");
    assert_eq!(
        attempt_behind(
            &store,
            other,
            (&fresh_key, admit_three),
            T0,
            right.completing()
        )
        .await,
        Attempted::Done
    );
    assert_eq!(
        state(store.clone(), fresh_key).await,
        ThrottleState::default()
    );
}

async fn an_expired_challenge_is_found_with_its_origin_and_ended_once(
    store: Arc<dyn Store>,
    _: String,
) {
    let (_, u) = signup(&store, "expired@example.com").await;
    let device = tessera_core::model::DeviceId::new();
    let c = Challenge {
        last_sent_at: None,
        meta: RequestMeta {
            ip: Some("192.0.2.9".into()),
            user_agent: Some("Firefox/140".into()),
        },
        device_id: Some(device),
        id: ChallengeId::new(),
        user_id: u.id,
        kind: ChallengeKind::TwoFactor,
        attempts: 0,
        created_at: T0,
        expires_at: T0.plus_secs(600),
    };
    store
        .create_challenge(&c, &Token::generate().hash())
        .await
        .unwrap();
    let mine = Expired::OfUser(u.id);
    assert!(
        store
            .expired_challenges(mine, T0.plus_secs(599))
            .await
            .unwrap()
            .is_empty()
    );
    let found = store
        .expired_challenges(mine, T0.plus_secs(600))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    let found = &found[0];
    assert_eq!(found.challenge.id, c.id);
    assert_eq!(found.challenge.meta.ip.as_deref(), Some("192.0.2.9"));
    assert_eq!(
        found.challenge.meta.user_agent.as_deref(),
        Some("Firefox/140")
    );
    assert_eq!(found.challenge.device_id, Some(device));
    assert_eq!(found.user.id, u.id);
    let any = store
        .expired_challenges(Expired::Any(10), T0.plus_secs(600))
        .await
        .unwrap();
    assert_eq!(any.len(), 1);

    // Two sweepers end it at once: one of them, and its event, once.
    let event = NewEvent::for_user(&u, EventKind::SignInUnfinished, &RequestMeta::default(), T0);
    let effects = Effects::event(event);
    let (a, b) = tokio::join!(
        store.end_challenge(c.id, &effects),
        store.end_challenge(c.id, &effects)
    );
    assert!(a.unwrap() ^ b.unwrap());
    let events = store.user_events(u.id, None, 100).await.unwrap();
    let told = events
        .iter()
        .filter(|e| e.kind == EventKind::SignInUnfinished);
    assert_eq!(told.count(), 1);
    assert!(
        store
            .expired_challenges(mine, T0.plus_secs(600))
            .await
            .unwrap()
            .is_empty()
    );
}
