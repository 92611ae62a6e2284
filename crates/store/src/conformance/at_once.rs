//! A right TOTP code with what the challenge's read saw (`Seen`): PostgreSQL answers it in one
//! statement (`at_once`) if nothing changed since, else in the transaction. Either way the
//! outcome is the transaction's, which SQLite always takes: the same tests run on both. The
//! last test checks, on PostgreSQL alone, which way each answer went.

use super::second_step::{Spend, enabled};
use super::*;
use tessera_core::crypto::TokenHash;
use tessera_core::mail::Alert;
use tessera_core::model::{Challenge, ChallengeId, ChallengeKind, Device, DeviceId};
use tessera_core::second_step::{DeviceWrite, Seen};

conformance!(
    the_same_right_code_raced_signs_in_once,
    a_lock_changed_since_the_read_decides_by_its_new_state,
    a_user_deleted_since_the_read_gets_no_session,
    the_session_cap_holds_when_sign_ins_race,
);

/// A new challenge of `u`'s, read as the second step reads it: its id and what was seen.
async fn read(store: &Arc<dyn Store>, u: &User) -> (ChallengeId, Seen) {
    let token = Token::generate();
    let c = Challenge {
        id: ChallengeId::new(),
        user_id: u.id,
        kind: ChallengeKind::TwoFactor,
        attempts: 0,
        created_at: T0,
        expires_at: T0.plus_secs(600),
        last_sent_at: None,
        meta: RequestMeta::default(),
        device_id: None,
    };
    store.create_challenge(&c, &token.hash()).await.unwrap();
    (c.id, seen(store, &token.hash()).await)
}

async fn seen(store: &Arc<dyn Store>, token: &TokenHash) -> Seen {
    let context = store.find_challenge_context(token, T0).await.unwrap();
    context.and_then(|c| c.seen).expect("read with what it saw")
}

/// The second step's lock, simplified: refuses while locked, a success clears it.
fn unless_locked(state: ThrottleState) -> (ThrottleState, bool) {
    (state, state.locked_until.is_none_or(|until| until <= T0))
}

fn attempt(c: ChallengeId, seen: Seen) -> ChallengeAttempt {
    ChallengeAttempt {
        challenge: c,
        max_attempts: 5,
        now: T0,
        seen: Some(seen),
    }
}

/// Answers `c` behind `u`'s second-step lock, with what was seen.
async fn answer(
    store: &Arc<dyn Store>,
    (c, seen): (ChallengeId, Seen),
    u: &User,
    completing: Option<Completing<'_>>,
) -> Attempted {
    let mut admit = unless_locked;
    let mut lock = LockGate {
        scope: Scope::SecondStep,
        key: &u.id.to_string(),
        admit: &mut admit,
        success: |_| ThrottleState::default(),
    };
    store
        .attempt_second_step(attempt(c, seen), &mut lock, completing)
        .await
        .unwrap()
}

/// Answers every one of `reads` at once with the TOTP code of `step`: their outcomes.
async fn answer_at_once(
    store: &Arc<dyn Store>,
    reads: Vec<(ChallengeId, Seen)>,
    u: &User,
    step: i64,
) -> Vec<Attempted> {
    let tasks: Vec<_> = reads
        .into_iter()
        .map(|read| {
            let (store, u) = (Arc::clone(store), u.clone());
            tokio::spawn(async move {
                let right = Spend::new(&u, Proof::Totp { step });
                answer(&store, read, &u, right.completing()).await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    outcomes
}

async fn sessions_of(store: &Arc<dyn Store>, u: &User) -> usize {
    let since = Timestamp::from_unix(0);
    let all = store.list_sessions(u.id, T0, since, None, 1000).await;
    all.unwrap().len()
}

async fn last_step(store: &Arc<dyn Store>, u: &User) -> i64 {
    let factor = store.get_totp_factor(u.id).await.unwrap();
    factor.expect("a factor").last_step
}

async fn lock_of(store: &Arc<dyn Store>, u: &User) -> ThrottleState {
    let mut keep = |s| (s, Effects::default());
    let key = u.id.to_string();
    let read = store.update_throttle(Scope::SecondStep, &key, &mut keep);
    read.await.unwrap()
}

async fn set_lock(store: &Arc<dyn Store>, u: &User, to: ThrottleState) {
    let mut set = |_| (to, Effects::default());
    let key = u.id.to_string();
    let done = store.update_throttle(Scope::SecondStep, &key, &mut set);
    done.await.unwrap();
}

async fn the_same_right_code_raced_signs_in_once(store: Arc<dyn Store>, _: String) {
    let u = enabled(&store, "raced@example.com", &[1; 32]).await;
    // One challenge answered ten times at once with the same right code.
    let read_once = read(&store, &u).await;
    let outcomes = answer_at_once(&store, vec![read_once; 10], &u, 101).await;
    let done = outcomes.iter().filter(|o| **o == Attempted::Done).count();
    assert_eq!(done, 1, "{outcomes:?}");
    assert_eq!(sessions_of(&store, &u).await, 1);
    // Ten challenges, all read before any is answered, each with the same next code.
    let mut reads = Vec::new();
    for _ in 0..10 {
        reads.push(read(&store, &u).await);
    }
    let outcomes = answer_at_once(&store, reads, &u, 102).await;
    let done = outcomes.iter().filter(|o| **o == Attempted::Done).count();
    assert_eq!(done, 1, "{outcomes:?}");
    // The others were counted as the replays they are.
    let replayed = outcomes
        .iter()
        .filter(|o| **o == Attempted::Rejected { attempts: 1 });
    assert_eq!(replayed.count(), 9, "{outcomes:?}");
    assert_eq!(sessions_of(&store, &u).await, 2);
    assert_eq!(last_step(&store, &u).await, 102);
    assert_eq!(lock_of(&store, &u).await, ThrottleState::default());
}

async fn a_lock_changed_since_the_read_decides_by_its_new_state(store: Arc<dyn Store>, _: String) {
    let u = enabled(&store, "changed@example.com", &[1; 32]).await;
    let locked = ThrottleState {
        failures: 10,
        window_start: T0,
        locked_until: Some(T0.plus_secs(900)),
    };
    // Seen at rest, locked since: refused, nothing spent, no session.
    let at_rest = read(&store, &u).await;
    set_lock(&store, &u, locked).await;
    let right = Spend::new(&u, Proof::Totp { step: 101 });
    assert_eq!(
        answer(&store, at_rest, &u, right.completing()).await,
        Attempted::Locked
    );
    assert_eq!(last_step(&store, &u).await, 100);
    assert_eq!(sessions_of(&store, &u).await, 0);
    assert_eq!(lock_of(&store, &u).await, locked);
    // The lock's failures counted meanwhile: the right code still signs in and clears them.
    let some = ThrottleState {
        failures: 3,
        window_start: T0,
        locked_until: None,
    };
    set_lock(&store, &u, some).await;
    let three = read(&store, &u).await;
    assert_eq!(three.1.lock, some);
    set_lock(
        &store,
        &u,
        ThrottleState {
            failures: 4,
            ..some
        },
    )
    .await;
    assert_eq!(
        answer(&store, three, &u, right.completing()).await,
        Attempted::Done
    );
    assert_eq!(lock_of(&store, &u).await, ThrottleState::default());
    // Seen locked, unlocked since: signs in.
    set_lock(&store, &u, locked).await;
    let seen_locked = read(&store, &u).await;
    assert_eq!(seen_locked.1.lock, locked);
    assert!(
        store
            .clear_throttle(Scope::SecondStep, &u.id.to_string())
            .await
            .unwrap()
    );
    let next = Spend::new(&u, Proof::Totp { step: 102 });
    assert_eq!(
        answer(&store, seen_locked, &u, next.completing()).await,
        Attempted::Done
    );
    assert_eq!(sessions_of(&store, &u).await, 2);
    assert_eq!(last_step(&store, &u).await, 102);
}

async fn a_user_deleted_since_the_read_gets_no_session(store: Arc<dyn Store>, _: String) {
    let u = enabled(&store, "deleted@example.com", &[1; 32]).await;
    let read_before = read(&store, &u).await;
    let deleted = store.delete_user(u.id, &[], T0, &Effects::default()).await;
    assert!(deleted.unwrap());
    let right = Spend::new(&u, Proof::Totp { step: 101 });
    assert_eq!(
        answer(&store, read_before, &u, right.completing()).await,
        Attempted::ChallengeGone
    );
    assert_eq!(sessions_of(&store, &u).await, 0);
}

async fn the_session_cap_holds_when_sign_ins_race(store: Arc<dyn Store>, _: String) {
    let u = enabled(&store, "capped@example.com", &[1; 32]).await;
    for _ in 0..(MAX_SESSIONS_PER_USER - 3) {
        let s = session(&u, T0.plus_secs(3600));
        store
            .create_session(&s, &Token::generate().hash(), &Effects::default())
            .await
            .unwrap();
    }
    // Rounds of right codes, each read before it races password sign-ins of the same user
    // (which take the user's row and open a session in a transaction).
    let mut done = 0;
    for round in 0..10 {
        let read_now = read(&store, &u).await;
        let mut signing_in = Vec::new();
        for _ in 0..3 {
            let (store, s) = (Arc::clone(&store), session(&u, T0.plus_secs(3600)));
            signing_in.push(tokio::spawn(async move {
                let hash = Token::generate().hash();
                store.create_session(&s, &hash, &Effects::default()).await
            }));
        }
        let (racing, u2) = (Arc::clone(&store), u.clone());
        let answered = tokio::spawn(async move {
            let right = Spend::new(&u2, Proof::Totp { step: 101 + round });
            answer(&racing, read_now, &u2, right.completing()).await
        });
        for task in signing_in {
            task.await.unwrap().unwrap();
        }
        if answered.await.unwrap() == Attempted::Done {
            done += 1;
        }
        assert_eq!(
            sessions_of(&store, &u).await,
            MAX_SESSIONS_PER_USER as usize,
            "round {round}"
        );
    }
    assert_eq!(done, 10, "each round's right code signs in");
}

/// PostgreSQL: which way an answer went. A right code with nothing changed since its read
/// is answered by the one statement, with everything the transaction writes; with a row
/// changed since, the statement writes nothing and leaves the attempt to the transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_answers_a_right_code_in_one_statement_unless_a_row_changed() {
    let Some(db) = crate::testing::TestDatabase::create(crate::testing::Backend::Postgres).await
    else {
        return;
    };
    let pg = Arc::new(crate::open_postgres(db.url()).await.unwrap());
    let store: Arc<dyn Store> = pg.clone();
    let u = enabled(&store, "once@example.com", &[1; 32]).await;
    let key = u.id.to_string();
    let at_once = async |read: (ChallengeId, Seen), completing: Option<Completing<'_>>| {
        let mut admit = unless_locked;
        let mut lock = LockGate {
            scope: Scope::SecondStep,
            key: &key,
            admit: &mut admit,
            success: |_| ThrottleState::default(),
        };
        pg.answer_at_once(attempt(read.0, read.1), &mut lock, completing)
            .await
            .unwrap()
    };
    // Nothing changed: answered at once, with the session, a new device, two events in
    // their order, an email, and an alert that is due.
    let first = read(&store, &u).await;
    let mut right = Spend::new(&u, Proof::Totp { step: 101 });
    let meta = RequestMeta::default();
    right.effects = Effects::event(NewEvent::for_user(&u, EventKind::SignIn, &meta, T0))
        .and_event(NewEvent::for_user(
            &u,
            EventKind::NewDeviceSignIn,
            &meta,
            T0,
        ))
        .and_email(mail(&u, "second_step_locked"))
        .and_alert(Alert {
            user_id: u.id,
            email: mail(&u, "new_sign_in"),
            now: T0,
            quiet_since: T0,
        });
    let device = Device {
        id: DeviceId::new(),
        user_id: u.id,
        user_agent: Some("Firefox/140".into()),
        ip: None,
        created_at: T0,
        last_used_at: T0,
        expires_at: T0.plus_secs(3600),
        trusted_until: None,
    };
    let new_device = DeviceWrite::New {
        device: device.clone(),
        token: Token::generate().hash(),
    };
    let completing = right.completing().map(|c| Completing {
        device: Some(&new_device),
        ..c
    });
    assert_eq!(at_once(first, completing).await, Some(Attempted::Done));
    assert_eq!(sessions_of(&store, &u).await, 1);
    assert_eq!(last_step(&store, &u).await, 101);
    let devices = store.list_devices(u.id, T0).await.unwrap();
    assert_eq!(
        devices.iter().map(|d| d.id).collect::<Vec<_>>(),
        [device.id]
    );
    let events = store.user_events(u.id, None, 10).await.unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.kind).take(2).collect();
    assert_eq!(kinds, [EventKind::NewDeviceSignIn, EventKind::SignIn]);
    let claimed = store
        .claim_emails(T0, T0.plus_secs(60), uuid::Uuid::new_v4(), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2, "the email and the alert");
    // The same alert again is not due: the sign-in goes, its email does not.
    let again = read(&store, &u).await;
    let mut next = Spend::new(&u, Proof::Totp { step: 102 });
    next.effects = Effects::default().and_alert(Alert {
        user_id: u.id,
        email: mail(&u, "new_sign_in"),
        now: T0,
        quiet_since: T0.plus_secs(-1),
    });
    assert_eq!(
        at_once(again, next.completing()).await,
        Some(Attempted::Done)
    );
    let claimed = store
        .claim_emails(T0, T0.plus_secs(60), uuid::Uuid::new_v4(), 10)
        .await
        .unwrap();
    assert!(claimed.is_empty(), "{claimed:?}");
    // A lock changed since the read: nothing written, left to the transaction.
    let stale = read(&store, &u).await;
    set_lock(
        &store,
        &u,
        ThrottleState {
            failures: 2,
            ..ThrottleState::default()
        },
    )
    .await;
    let third = Spend::new(&u, Proof::Totp { step: 103 });
    assert_eq!(at_once(stale, third.completing()).await, None);
    assert_eq!(last_step(&store, &u).await, 102);
    assert_eq!(sessions_of(&store, &u).await, 2);
    assert_eq!(lock_of(&store, &u).await.failures, 2);
    assert_eq!(
        answer(&store, stale, &u, third.completing()).await,
        Attempted::Done
    );
    assert_eq!(lock_of(&store, &u).await, ThrottleState::default());
    // A session opened since the read: the same.
    let stale = read(&store, &u).await;
    let s = session(&u, T0.plus_secs(3600));
    store
        .create_session(&s, &Token::generate().hash(), &Effects::default())
        .await
        .unwrap();
    let fourth = Spend::new(&u, Proof::Totp { step: 104 });
    assert_eq!(at_once(stale, fourth.completing()).await, None);
    assert_eq!(last_step(&store, &u).await, 103);
    // A step spent since: the same, and the transaction calls it a replay.
    let stale = read(&store, &u).await;
    assert_eq!(at_once(stale, third.completing()).await, None);
    let attempts = answer(&store, stale, &u, third.completing()).await;
    assert_eq!(attempts, Attempted::Rejected { attempts: 1 });
    // A wrong code (no proof) is never answered here.
    let wrong = read(&store, &u).await;
    assert_eq!(at_once(wrong, None).await, None);
}

/// An email for `u`'s outbox.
fn mail(u: &User, kind: &'static str) -> SealedEmail {
    SealedEmail {
        id: uuid::Uuid::new_v4(),
        kind,
        priority: Priority::Notice,
        recipient: u.email.as_str().to_owned(),
        payload: vec![1, 2, 3],
        created_at: T0,
    }
}
