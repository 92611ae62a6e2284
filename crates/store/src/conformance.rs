//! One conformance suite for every backend: each test below runs on SQLite and PostgreSQL.

use crate::testing::{Backend, TestDatabase};
use std::sync::Arc;
use tessera_core::Timestamp;
use tessera_core::crypto::Token;
use tessera_core::email::Email;
use tessera_core::mail::SealedEmail;
use tessera_core::model::{
    Account, AccountId, AuthSource, EventKind, NewEvent, OutboxStatus, RequestMeta, Role, Session,
    SessionId, SessionKind, User, UserId,
};
use tessera_core::store::{Activation, Attempted, Effects, Enrollment, Store, StoreError};
use tessera_core::throttle::ThrottleState;

macro_rules! conformance {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::run(crate::testing::Backend::Sqlite, super::$name).await
            }
        )+}
        mod postgres {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::run(crate::testing::Backend::Postgres, super::$name).await
            }
        )+}
    };
}

mod devices;
mod second_step;
mod team;

conformance!(
    accounts_and_owners_are_created_together,
    emails_are_unique_ignoring_case,
    sessions_are_found_by_token_hash_until_they_expire,
    a_session_is_read_with_its_user_s_two_factor_status,
    ending_a_session_records_one_event,
    events_page_newest_first,
    concurrent_throttle_updates_are_serialized,
    users_are_listed_per_account,
    a_throttle_change_writes_its_effects,
    data_survives_reopening,
    emails_are_queued_with_their_change,
    a_claimed_email_is_leased_to_one_worker,
    retries_wait_until_due_and_failures_stop,
    a_worker_that_lost_its_lease_cannot_settle,
    concurrent_claims_never_share_an_email,
    a_pending_setup_activates_once,
    disabling_two_factor_removes_every_factor,
);

async fn run<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(Arc<dyn Store>, String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Some(db) = TestDatabase::create(backend).await else {
        return;
    };
    let store = crate::connect(db.url()).await.expect("connect");
    test(store, db.url().to_owned()).await;
}

const T0: Timestamp = Timestamp::from_unix(1_800_000_000);

fn account(name: &str) -> Account {
    Account {
        id: AccountId::new(),
        name: name.into(),
        two_factor_required: false,
        grace_period_until: None,
        created_at: T0,
    }
}

fn owner(account: &Account, email: &str) -> User {
    User {
        id: UserId::new(),
        account_id: account.id,
        email: Email::parse(email).unwrap(),
        name: "Owner".into(),
        role: Role::Owner,
        auth_source: AuthSource::Password,
        created_at: T0,
    }
}

fn event(user: &User, kind: EventKind) -> Effects {
    Effects::event(NewEvent::for_user(user, kind, &RequestMeta::default(), T0))
}

async fn signup(store: &Arc<dyn Store>, email: &str) -> (Account, User) {
    let a = account("Acme");
    let u = owner(&a, email);
    store
        .create_account_with_owner(&a, &u, "$argon2id$hash", &event(&u, EventKind::Signup))
        .await
        .unwrap();
    (a, u)
}

fn session(user: &User, expires_at: Timestamp) -> Session {
    Session {
        id: SessionId::new(),
        user_id: user.id,
        kind: SessionKind::Full,
        created_at: T0,
        expires_at,
        ip: Some("127.0.0.1".into()),
        user_agent: Some("test".into()),
    }
}

async fn accounts_and_owners_are_created_together(store: Arc<dyn Store>, _: String) {
    let (a, u) = signup(&store, "Owner@Example.com").await;
    let found = store
        .find_user_by_email("owner@example.com")
        .await
        .unwrap()
        .expect("found by normalized email");
    assert_eq!(found.user.id, u.id);
    assert_eq!(found.user.email.as_str(), "Owner@Example.com");
    assert_eq!(found.user.role, Role::Owner);
    assert_eq!(found.password_hash.as_deref(), Some("$argon2id$hash"));
    let got = store.get_account(a.id).await.unwrap().unwrap();
    assert_eq!(
        (got.name.as_str(), got.two_factor_required),
        ("Acme", false)
    );
    assert_eq!(got.created_at, T0);
    assert_eq!(store.get_user(u.id).await.unwrap().unwrap().name, "Owner");
    assert!(store.get_user(UserId::new()).await.unwrap().is_none());
    let events = store.user_events(u.id, None, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, EventKind::Signup);
}

async fn emails_are_unique_ignoring_case(store: Arc<dyn Store>, _: String) {
    signup(&store, "dup@example.com").await;
    let a = account("Other");
    let u = owner(&a, "DUP@example.com");
    let err = store
        .create_account_with_owner(&a, &u, "h", &event(&u, EventKind::Signup))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict("email")), "{err:?}");
    // Nothing of the refused signup was kept, not even its account.
    assert!(store.get_account(a.id).await.unwrap().is_none());
    assert_eq!(store.list_accounts().await.unwrap().len(), 1);
}

async fn sessions_are_found_by_token_hash_until_they_expire(store: Arc<dyn Store>, _: String) {
    let (a, u) = signup(&store, "s@example.com").await;
    let token = Token::generate();
    let s = session(&u, T0.plus_secs(3600));
    store
        .create_session(&s, &token.hash(), &event(&u, EventKind::SignIn))
        .await
        .unwrap();
    let found = store
        .find_session(&token.hash(), T0.plus_secs(3599))
        .await
        .unwrap()
        .expect("live session");
    assert_eq!(found.session.id, s.id);
    assert_eq!(found.user.id, u.id);
    assert_eq!(found.account.id, a.id);
    assert_eq!(found.session.ip.as_deref(), Some("127.0.0.1"));
    assert!(
        store
            .find_session(&token.hash(), T0.plus_secs(3600))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find_session(&Token::generate().hash(), T0)
            .await
            .unwrap()
            .is_none()
    );
}

async fn ending_a_session_records_one_event(store: Arc<dyn Store>, _: String) {
    let (_, u) = signup(&store, "e@example.com").await;
    let token = Token::generate();
    let s = session(&u, T0.plus_secs(60));
    store
        .create_session(&s, &token.hash(), &event(&u, EventKind::SignIn))
        .await
        .unwrap();
    assert!(
        store
            .end_session(s.id, &event(&u, EventKind::SignOut))
            .await
            .unwrap()
    );
    assert!(
        !store
            .end_session(s.id, &event(&u, EventKind::SignOut))
            .await
            .unwrap()
    );
    assert!(
        store
            .find_session(&token.hash(), T0)
            .await
            .unwrap()
            .is_none()
    );
    let kinds: Vec<_> = store
        .user_events(u.id, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [EventKind::SignOut, EventKind::SignIn, EventKind::Signup]
    );
}

async fn events_page_newest_first(store: Arc<dyn Store>, _: String) {
    let (_, u) = signup(&store, "p@example.com").await;
    for i in 0..5 {
        let e = NewEvent::for_user(&u, EventKind::SignInFailed, &RequestMeta::default(), T0)
            .with_detail(serde_json::json!({ "i": i }));
        store.record(&Effects::event(e)).await.unwrap();
    }
    let first = store.user_events(u.id, None, 3).await.unwrap();
    assert_eq!(first.len(), 3);
    assert_eq!(first[0].detail["i"], 4);
    assert!(first.windows(2).all(|w| w[0].id > w[1].id));
    let rest = store
        .user_events(u.id, Some(first[2].id), 10)
        .await
        .unwrap();
    assert_eq!(rest.len(), 3, "two failures and the signup");
    assert_eq!(rest[2].kind, EventKind::Signup);
    assert_eq!(rest[0].email.as_deref(), Some("p@example.com"));
}

async fn concurrent_throttle_updates_are_serialized(store: Arc<dyn Store>, _: String) {
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .update_throttle("test", "k", &mut |s| {
                        let next = ThrottleState {
                            failures: s.failures + 1,
                            ..s
                        };
                        (next, Effects::default())
                    })
                    .await
                    .unwrap()
                    .failures
            })
        })
        .collect();
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=50).collect::<Vec<_>>(),
        "every update saw the one before"
    );
    assert_eq!(current(&store, "k").await.failures, 50);
    assert_eq!(current(&store, "other").await, ThrottleState::default());
}

async fn users_are_listed_per_account(store: Arc<dyn Store>, _: String) {
    let (a, u) = signup(&store, "one@example.com").await;
    let (b, v) = signup(&store, "two@example.com").await;
    let ids = |users: Vec<User>| users.into_iter().map(|u| u.id).collect::<Vec<_>>();
    assert_eq!(ids(store.list_users(Some(a.id)).await.unwrap()), [u.id]);
    assert_eq!(ids(store.list_users(Some(b.id)).await.unwrap()), [v.id]);
    assert_eq!(store.list_users(None).await.unwrap().len(), 2);
    let accounts = store.list_accounts().await.unwrap();
    assert_eq!(accounts.len(), 2);
    assert!(accounts.iter().all(|s| s.users == 1));
}

async fn data_survives_reopening(store: Arc<dyn Store>, url: String) {
    let (_, u) = signup(&store, "keep@example.com").await;
    drop(store);
    let reopened = crate::connect(&url).await.expect("reopen");
    let found = reopened
        .find_user_by_email("keep@example.com")
        .await
        .unwrap();
    assert_eq!(found.map(|f| f.user.id), Some(u.id));
    reopened.ping().await.unwrap();
}

fn sealed(recipient: &str, at: Timestamp) -> SealedEmail {
    SealedEmail {
        id: uuid::Uuid::now_v7(),
        kind: "password_locked",
        recipient: recipient.into(),
        payload: vec![1, 2, 3],
        created_at: at,
    }
}

async fn emails_are_queued_with_their_change(store: Arc<dyn Store>, _: String) {
    let a = account("Acme");
    let u = owner(&a, "mail@example.com");
    let effects = event(&u, EventKind::Signup).and_email(sealed("mail@example.com", T0));
    store
        .create_account_with_owner(&a, &u, "h", &effects)
        .await
        .unwrap();
    // A change that fails takes its email with it.
    let b = account("Dup");
    let v = owner(&b, "MAIL@example.com");
    let failing = event(&v, EventKind::Signup).and_email(sealed("lost@example.com", T0));
    assert!(
        store
            .create_account_with_owner(&b, &v, "h", &failing)
            .await
            .is_err()
    );

    let queued = store.list_outbox(true, 10).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].recipient, "mail@example.com");
    assert_eq!(queued[0].kind, "password_locked");
    assert_eq!(queued[0].status, OutboxStatus::Pending);
    assert_eq!(queued[0].next_attempt_at, T0);
}

async fn a_claimed_email_is_leased_to_one_worker(store: Arc<dyn Store>, _: String) {
    let email = sealed("lease@example.com", T0);
    store
        .record(&Effects::default().and_email(email.clone()))
        .await
        .unwrap();
    let (w1, w2) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let lease = T0.plus_secs(60);
    let claimed = store.claim_emails(T0, lease, w1, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!((claimed[0].id, claimed[0].attempts), (email.id, 1));
    assert_eq!(claimed[0].payload, vec![1, 2, 3]);
    assert!(
        store
            .claim_emails(T0.plus_secs(59), lease, w2, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // The lease ran out (the worker died): another worker takes over.
    let again = store
        .claim_emails(T0.plus_secs(60), T0.plus_secs(120), w2, 10)
        .await
        .unwrap();
    assert_eq!((again.len(), again[0].attempts), (1, 2));
    assert!(
        store
            .email_sent(email.id, w2, T0.plus_secs(61))
            .await
            .unwrap()
    );
    let listed = store.list_outbox(true, 10).await.unwrap();
    assert_eq!(listed[0].status, OutboxStatus::Sent);
    assert_eq!(listed[0].sent_at, Some(T0.plus_secs(61)));
    assert!(store.list_outbox(false, 10).await.unwrap().is_empty());
    assert!(
        store
            .claim_emails(T0.plus_secs(999), T0.plus_secs(9999), w1, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn retries_wait_until_due_and_failures_stop(store: Arc<dyn Store>, _: String) {
    let email = sealed("retry@example.com", T0);
    store
        .record(&Effects::default().and_email(email.clone()))
        .await
        .unwrap();
    let w = uuid::Uuid::now_v7();
    store
        .claim_emails(T0, T0.plus_secs(60), w, 1)
        .await
        .unwrap();
    assert!(
        store
            .email_retry(email.id, w, T0.plus_secs(30), "connection refused")
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_emails(T0.plus_secs(29), T0.plus_secs(90), w, 1)
            .await
            .unwrap()
            .is_empty()
    );
    let listed = store.list_outbox(false, 10).await.unwrap();
    assert_eq!(listed[0].last_error.as_deref(), Some("connection refused"));
    assert_eq!(listed[0].attempts, 1);
    let claimed = store
        .claim_emails(T0.plus_secs(30), T0.plus_secs(90), w, 1)
        .await
        .unwrap();
    assert_eq!(claimed[0].attempts, 2);
    assert!(
        store
            .email_failed(email.id, w, "550 no such user")
            .await
            .unwrap()
    );
    let listed = store.list_outbox(false, 10).await.unwrap();
    assert_eq!(listed[0].status, OutboxStatus::Failed);
    assert!(
        store
            .claim_emails(T0.plus_secs(9999), T0.plus_secs(99999), w, 1)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_worker_that_lost_its_lease_cannot_settle(store: Arc<dyn Store>, _: String) {
    let email = sealed("stale@example.com", T0);
    store
        .record(&Effects::default().and_email(email.clone()))
        .await
        .unwrap();
    let (slow, fast) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    store
        .claim_emails(T0, T0.plus_secs(10), slow, 1)
        .await
        .unwrap();
    store
        .claim_emails(T0.plus_secs(10), T0.plus_secs(20), fast, 1)
        .await
        .unwrap();
    assert!(!store.email_failed(email.id, slow, "late").await.unwrap());
    assert!(!store.email_retry(email.id, slow, T0, "late").await.unwrap());
    assert!(!store.email_sent(email.id, slow, T0).await.unwrap());
    assert!(
        store
            .email_sent(email.id, fast, T0.plus_secs(11))
            .await
            .unwrap()
    );
}

async fn concurrent_claims_never_share_an_email(store: Arc<dyn Store>, _: String) {
    let mut effects = Effects::default();
    for i in 0..40 {
        effects = effects.and_email(sealed(&format!("{i}@example.com"), T0));
    }
    store.record(&effects).await.unwrap();
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let me = uuid::Uuid::now_v7();
                let mut mine = Vec::new();
                loop {
                    let batch = store
                        .claim_emails(T0, T0.plus_secs(60), me, 3)
                        .await
                        .unwrap();
                    if batch.is_empty() {
                        break mine;
                    }
                    mine.extend(batch.into_iter().map(|e| e.id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!(
        (total, all.len()),
        (40, 40),
        "each email claimed exactly once"
    );
}

async fn a_session_is_read_with_its_user_s_two_factor_status(store: Arc<dyn Store>, _: String) {
    let u = with_enrollment(&store, "status@example.com").await;
    let token = Token::generate();
    let s = session(&u, T0.plus_secs(3600));
    store
        .create_session(&s, &token.hash(), &Effects::default())
        .await
        .unwrap();
    let read = |now| {
        let (store, hash) = (Arc::clone(&store), token.hash());
        async move { store.find_session_with_status(&hash, now).await.unwrap() }
    };
    let (context, status) = read(T0).await.expect("live session");
    assert_eq!((context.session.id, context.user.id), (s.id, u.id));
    assert!(!context.two_factor_enabled);
    assert_eq!(
        (status.enabled_at, status.recovery_codes_remaining),
        (None, 0)
    );
    assert_eq!(status.pending_until, Some(T0.plus_secs(1800)));
    // The setup lapses at its expiry, as `two_factor_status` says.
    let (_, later) = read(T0.plus_secs(1800)).await.expect("live session");
    assert_eq!(later.pending_until, None);

    store
        .activate_two_factor(
            u.id,
            &[7; 60],
            T0.plus_secs(5),
            1,
            &[vec![1; 32], vec![2; 32]],
            &Effects::default(),
        )
        .await
        .unwrap();
    let (context, status) = read(T0).await.expect("live session");
    assert!(context.two_factor_enabled);
    assert_eq!(
        (
            status.enabled_at,
            status.recovery_codes_remaining,
            status.pending_until
        ),
        (Some(T0.plus_secs(5)), 2, None)
    );
    assert!(read(T0.plus_secs(3600)).await.is_none(), "expired");
}

async fn with_enrollment(store: &Arc<dyn Store>, email: &str) -> User {
    let (_, u) = signup(store, email).await;
    let enrollment = Enrollment {
        secret_sealed: vec![7; 60],
        paper_key_hash: vec![9; 32],
        created_at: T0,
        expires_at: T0.plus_secs(1800),
    };
    store
        .put_enrollment(u.id, &enrollment, &Effects::default())
        .await
        .unwrap();
    u
}

async fn a_pending_setup_activates_once(store: Arc<dyn Store>, _: String) {
    let u = with_enrollment(&store, "once@example.com").await;
    let status = store.two_factor_status(u.id, T0).await.unwrap();
    assert_eq!(status.pending_until, Some(T0.plus_secs(1800)));
    assert!(
        store
            .two_factor_status(u.id, T0.plus_secs(1800))
            .await
            .unwrap()
            .pending_until
            .is_none()
    );
    let codes: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 32]).collect();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (store, codes) = (Arc::clone(&store), codes.clone());
            tokio::spawn(async move {
                store
                    .activate_two_factor(
                        u.id,
                        &[7; 60],
                        T0.plus_secs(5),
                        100,
                        &codes,
                        &Effects::default(),
                    )
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut activated = 0;
    for t in tasks {
        if t.await.unwrap() == Activation::Activated {
            activated += 1;
        }
    }
    assert_eq!(activated, 1);
    let status = store.two_factor_status(u.id, T0).await.unwrap();
    assert_eq!(
        (status.recovery_codes_remaining, status.pending_until),
        (10, None)
    );
    assert_eq!(status.enabled_at, Some(T0.plus_secs(5)));
    let factor = store.get_totp_factor(u.id).await.unwrap().unwrap();
    assert_eq!((factor.last_step, factor.secret_sealed), (100, vec![7; 60]));
    // Only the setup the code was checked against activates (not one restarted meanwhile).
    let w = with_enrollment(&store, "restarted@example.com").await;
    let other = store
        .activate_two_factor(w.id, &[8; 60], T0, 1, &codes, &Effects::default())
        .await
        .unwrap();
    assert_eq!(other, Activation::NoPendingSetup);
    // An expired setup never activates.
    let v = with_enrollment(&store, "late@example.com").await;
    let late = store
        .activate_two_factor(
            v.id,
            &[7; 60],
            T0.plus_secs(1800),
            1,
            &codes,
            &Effects::default(),
        )
        .await
        .unwrap();
    assert_eq!(late, Activation::NoPendingSetup);
}

async fn disabling_two_factor_removes_every_factor(store: Arc<dyn Store>, _: String) {
    let u = with_enrollment(&store, "gone@example.com").await;
    store
        .activate_two_factor(u.id, &[7; 60], T0, 1, &[vec![3; 32]], &Effects::default())
        .await
        .unwrap();
    let c = second_step::challenge_for(&store, &u).await;
    assert!(
        !store
            .disable_with_paper_key(u.id, &[0; 32], &Effects::default())
            .await
            .unwrap()
    );
    assert!(
        store
            .disable_with_paper_key(u.id, &[9; 32], &Effects::default())
            .await
            .unwrap()
    );
    assert!(store.get_totp_factor(u.id).await.unwrap().is_none());
    let status = store.two_factor_status(u.id, T0).await.unwrap();
    assert_eq!(
        (status.enabled_at, status.recovery_codes_remaining),
        (None, 0)
    );
    assert_eq!(
        second_step::attempt(&store, c, T0, None).await,
        Attempted::ChallengeGone,
        "open challenges go too"
    );
    assert!(
        !store
            .disable_two_factor(u.id, false, &Effects::default())
            .await
            .unwrap()
    );
    assert!(
        !store
            .replace_recovery_codes(u.id, &[], T0, &Effects::default())
            .await
            .unwrap()
    );
}

async fn a_throttle_change_writes_its_effects(store: Arc<dyn Store>, _: String) {
    let (_, u) = signup(&store, "lockfx@example.com").await;
    let lock = event(&u, EventKind::PasswordLocked).and_email(sealed("lockfx@example.com", T0));
    let next = store
        .update_throttle("password", "lockfx@example.com", &mut |s| {
            let locked = ThrottleState {
                locked_until: Some(T0.plus_secs(900)),
                ..s
            };
            (locked, lock.clone())
        })
        .await
        .unwrap();
    assert_eq!(next.locked_until, Some(T0.plus_secs(900)));
    let events = store.user_events(u.id, None, 1).await.unwrap();
    assert_eq!(events[0].kind, EventKind::PasswordLocked);
    assert_eq!(store.list_outbox(true, 10).await.unwrap().len(), 1);
}

/// A throttle's state, unchanged.
async fn current(store: &Arc<dyn Store>, key: &str) -> ThrottleState {
    store
        .update_throttle("test", key, &mut |s| (s, Effects::default()))
        .await
        .unwrap()
}
