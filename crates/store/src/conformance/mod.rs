//! One conformance suite for every backend: each test below runs on SQLite and PostgreSQL.

use crate::testing::{Backend, TestDatabase};
use std::sync::Arc;
use tessera_core::Timestamp;
use tessera_core::crypto::Token;
use tessera_core::devices::CodeSent;
use tessera_core::email::Email;
use tessera_core::factors::Proof;
use tessera_core::factors::totp::{Activation, Enrollment};
use tessera_core::mail::{Priority, SealedEmail};
use tessera_core::model::{
    Account, AccountId, AuthSource, EventKind, NewEvent, OutboxStatus, RequestMeta, Role, Session,
    SessionId, SessionKind, User, UserId,
};
use tessera_core::second_step::{Attempted, ChallengeAttempt, Completing, LockGate};
use tessera_core::sessions::{MAX_SESSIONS_PER_USER, SessionCursor};
use tessera_core::store::{Effects, StepUp, Store, StoreError, Unique};
use tessera_core::throttle::{Scope, ThrottleState};

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

mod accounts;
mod api_keys;
mod at_once;
mod credentials;
mod devices;
mod events;
mod factors;
mod housekeeping;
mod keys;
mod oidc;
mod outbox;
mod second_step;
mod security_keys;
mod sessions;
mod signups;
mod sso;
mod team;
mod throttles;

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
        trusted_devices: tessera_core::model::TrustedDevices::Allowed,
        sso_two_factor: tessera_core::model::SsoTwoFactor::Exempt,
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
        last_seen_at: T0,
        reauthenticated_at: T0,
        ip: Some("127.0.0.1".into()),
        user_agent: Some("test".into()),
        method: Some(tessera_core::sessions::SignInMethod::Password),
    }
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
