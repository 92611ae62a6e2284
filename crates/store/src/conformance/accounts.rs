//! Accounts and users (`AccountStore`).

use super::*;

conformance!(
    accounts_and_owners_are_created_together,
    emails_are_unique_ignoring_case,
    users_are_listed_per_account,
    data_survives_reopening,
);

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
    assert!(
        matches!(err, StoreError::Conflict(Unique::Email)),
        "{err:?}"
    );
    // Nothing of the refused signup was kept, not even its account.
    assert!(store.get_account(a.id).await.unwrap().is_none());
    assert_eq!(store.list_accounts().await.unwrap().len(), 1);
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
