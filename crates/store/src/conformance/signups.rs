//! Pending sign-ups on every backend: a link creates one team however many confirmations
//! race, reserves nothing before, and an expired or taken one creates nothing.

use super::*;
use tessera_core::model::SignupId;
use tessera_core::sign_up::PendingSignup;

conformance!(
    a_signup_link_creates_one_team_under_a_race,
    a_pending_signup_reserves_nothing,
    an_expired_signup_link_creates_nothing,
);

fn pending(email: &str, password_hash: Option<&str>) -> PendingSignup {
    PendingSignup {
        id: SignupId::new(),
        account_name: "Acme".into(),
        name: "Ada".into(),
        email: Email::parse(email).unwrap(),
        password_hash: password_hash.map(str::to_owned),
        created_at: T0,
        expires_at: T0.plus_secs(24 * 3600),
        used_at: None,
    }
}

async fn stored(store: &Arc<dyn Store>, signup: &PendingSignup) -> Token {
    let token = Token::generate();
    store
        .create_signup(signup, &token.hash(), &Effects::default())
        .await
        .unwrap();
    token
}

async fn a_signup_link_creates_one_team_under_a_race(store: Arc<dyn Store>, _: String) {
    let signup = pending("Ada@Example.com", Some("$argon2id$hash"));
    let token = stored(&store, &signup).await;
    let found = store.find_signup(&token.hash()).await.unwrap().unwrap();
    assert_eq!(
        (
            found.id,
            found.email.as_str(),
            found.password_hash.as_deref()
        ),
        (signup.id, "Ada@Example.com", Some("$argon2id$hash"))
    );
    assert_eq!((found.used_at, found.expires_at), (None, signup.expires_at));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let a = account("Acme");
                let u = owner(&a, "ada@example.com");
                store
                    .confirm_signup(
                        signup.id,
                        T0.plus_secs(5),
                        &a,
                        &u,
                        "$h",
                        &Effects::default(),
                    )
                    .await
            })
        })
        .collect();
    let mut confirmed = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(true) => confirmed += 1,
            Ok(false) | Err(StoreError::Conflict(Unique::Email)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(confirmed, 1);
    assert_eq!(store.list_accounts().await.unwrap().len(), 1);
    assert_eq!(store.list_users(None).await.unwrap().len(), 1);
    let found = store.find_signup(&token.hash()).await.unwrap().unwrap();
    assert_eq!(found.used_at, Some(T0.plus_secs(5)));
}

async fn a_pending_signup_reserves_nothing(store: Arc<dyn Store>, _: String) {
    let first = pending("grace@example.com", Some("$h1"));
    let second = pending("grace@example.com", None);
    stored(&store, &first).await;
    stored(&store, &second).await;
    // Nobody has the email yet: someone else may take it.
    assert!(
        store
            .find_user_by_email("grace@example.com")
            .await
            .unwrap()
            .is_none()
    );
    signup(&store, "grace@example.com").await;
    // Then the link can no longer create a second user with it, and stays unused.
    let a = account("Acme");
    let u = owner(&a, "grace@example.com");
    let refused = store
        .confirm_signup(
            first.id,
            T0.plus_secs(1),
            &a,
            &u,
            "$h1",
            &Effects::default(),
        )
        .await;
    assert!(matches!(refused, Err(StoreError::Conflict(Unique::Email))));
    assert_eq!(store.list_accounts().await.unwrap().len(), 1);
}

async fn an_expired_signup_link_creates_nothing(store: Arc<dyn Store>, _: String) {
    let signup = pending("late@example.com", Some("$h"));
    let token = stored(&store, &signup).await;
    let a = account("Acme");
    let u = owner(&a, "late@example.com");
    let at_expiry = signup.expires_at;
    assert!(
        !store
            .confirm_signup(signup.id, at_expiry, &a, &u, "$h", &Effects::default())
            .await
            .unwrap()
    );
    assert!(store.list_accounts().await.unwrap().is_empty());
    let found = store.find_signup(&token.hash()).await.unwrap().unwrap();
    assert_eq!(found.used_at, None);
    assert!(
        store
            .find_signup(&Token::generate().hash())
            .await
            .unwrap()
            .is_none()
    );
}
