//! One conformance suite for every backend: each test below runs on SQLite and PostgreSQL.

use crate::testing::{Backend, TestDatabase};
use std::sync::Arc;
use tessera_core::Timestamp;
use tessera_core::crypto::Token;
use tessera_core::email::Email;
use tessera_core::model::{
    Account, AccountId, AuthSource, EventKind, NewEvent, RequestMeta, Role, Session, SessionId,
    SessionKind, User, UserId,
};
use tessera_core::store::{Store, StoreError};
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

conformance!(
    accounts_and_owners_are_created_together,
    emails_are_unique_ignoring_case,
    sessions_are_found_by_token_hash_until_they_expire,
    ending_a_session_records_one_event,
    events_page_newest_first,
    concurrent_throttle_updates_are_serialized,
    users_are_listed_per_account,
    data_survives_reopening,
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

fn event(user: &User, kind: EventKind) -> NewEvent {
    NewEvent::for_user(user, kind, &RequestMeta::default(), T0)
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
        let e = event(&u, EventKind::SignInFailed).with_detail(serde_json::json!({ "i": i }));
        store.record_event(&e).await.unwrap();
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
                    .update_throttle("test", "k", &mut |s| ThrottleState {
                        failures: s.failures + 1,
                        ..s
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
    assert_eq!(store.read_throttle("test", "k").await.unwrap().failures, 50);
    assert_eq!(
        store.read_throttle("test", "other").await.unwrap(),
        ThrottleState::default()
    );
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
