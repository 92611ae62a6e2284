//! API keys' storage (`ApiKeyStore`): found by hash with their creator in one read, listed
//! without the revoked, changed and revoked once, touched at most once per interval, and
//! gone with their creator.

use super::*;
use tessera_core::api_keys::{ApiKey, ApiKeyChange, IpRule};
use tessera_core::crypto::TokenHash;
use tessera_core::model::ApiKeyId;

conformance!(
    a_key_is_found_by_its_hash_with_its_creator,
    keys_are_listed_changed_and_revoked_once,
    a_key_use_is_recorded_once_per_interval,
    a_key_goes_with_its_creator,
    housekeeping_forgets_revoked_and_expired_keys_after_their_end,
);

fn new_key(user: &User, label: &str) -> ApiKey {
    ApiKey {
        id: ApiKeyId::new(),
        account_id: user.account_id,
        label: label.into(),
        prefix: "tsk_AbCd".into(),
        grants: vec!["users:read".into(), "messages:send".into()],
        allowed_ips: vec![
            IpRule::parse("192.0.2.0/24").unwrap(),
            IpRule::parse("2001:db8::1").unwrap(),
        ],
        created_at: T0,
        created_by: user.id,
        expires_at: Some(T0.plus_secs(3600)),
        last_used_at: None,
        last_used_ip: None,
        revoked_at: None,
    }
}

fn hash(n: u8) -> TokenHash {
    TokenHash([n; 32])
}

async fn a_key_is_found_by_its_hash_with_its_creator(store: Arc<dyn Store>, _: String) {
    let (account, user) = signup(&store, "keys@example.com").await;
    let key = new_key(&user, "Billing");
    store
        .create_api_key(&key, &hash(1), &event(&user, EventKind::ApiKeyCreated))
        .await
        .unwrap();
    let found = store.find_api_key(&hash(1)).await.unwrap().unwrap();
    assert_eq!(found.key, key);
    assert_eq!(found.creator.id, user.id);
    assert_eq!(found.account.id, account.id);
    assert!(!found.creator_two_factor_enabled);
    assert!(store.find_api_key(&hash(2)).await.unwrap().is_none());
    // The same hash twice breaks the unique rule (never a silent second key).
    let again = new_key(&user, "Again");
    assert!(
        store
            .create_api_key(&again, &hash(1), &Effects::default())
            .await
            .is_err()
    );
    let events = store.user_events(user.id, None, 10).await.unwrap();
    assert!(events.iter().any(|e| e.kind == EventKind::ApiKeyCreated));
}

async fn keys_are_listed_changed_and_revoked_once(store: Arc<dyn Store>, _: String) {
    let (account, user) = signup(&store, "list@example.com").await;
    let (_, other) = signup(&store, "other@example.com").await;
    let first = new_key(&user, "First");
    let mut second = new_key(&user, "Second");
    second.created_at = T0.plus_secs(1);
    for (key, n) in [(&first, 1), (&second, 2)] {
        store
            .create_api_key(key, &hash(n), &Effects::default())
            .await
            .unwrap();
    }
    let listed = store.list_api_keys(account.id).await.unwrap();
    assert_eq!(
        listed.iter().map(|k| k.label.as_str()).collect::<Vec<_>>(),
        ["Second", "First"],
        "newest first"
    );
    assert!(
        store
            .list_api_keys(other.account_id)
            .await
            .unwrap()
            .is_empty()
    );
    let change = ApiKeyChange {
        label: "Renamed".into(),
        grants: vec!["events:read".into()],
        allowed_ips: Vec::new(),
    };
    let changed = store
        .update_api_key(account.id, first.id, &change, &Effects::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(changed.label, "Renamed");
    assert_eq!(changed.grants, ["events:read"]);
    assert!(changed.allowed_ips.is_empty());
    // Another account cannot change or revoke it.
    assert!(
        store
            .update_api_key(other.account_id, first.id, &change, &Effects::default())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        !store
            .revoke_api_key(other.account_id, first.id, T0, &Effects::default())
            .await
            .unwrap()
    );
    // Of two revocations at once, one does it (and writes its event).
    let revoked = event(&user, EventKind::ApiKeyRevoked);
    let revoke = || store.revoke_api_key(account.id, first.id, T0.plus_secs(5), &revoked);
    let (a, b) = tokio::join!(revoke(), revoke());
    assert!(a.unwrap() ^ b.unwrap(), "exactly one revocation");
    let events = store.user_events(user.id, None, 10).await.unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == EventKind::ApiKeyRevoked)
            .count(),
        1
    );
    let found = store.find_api_key(&hash(1)).await.unwrap().unwrap();
    assert_eq!(found.key.revoked_at, Some(T0.plus_secs(5)));
    let listed = store.list_api_keys(account.id).await.unwrap();
    assert_eq!(listed.len(), 1, "a revoked key is listed no more");
    assert!(
        store
            .update_api_key(account.id, first.id, &change, &Effects::default())
            .await
            .unwrap()
            .is_none(),
        "a revoked key cannot be changed"
    );
    let got = store.get_api_key(account.id, first.id).await.unwrap();
    assert!(got.is_some_and(|k| k.revoked_at.is_some()));
}

async fn a_key_use_is_recorded_once_per_interval(store: Arc<dyn Store>, _: String) {
    let (_, user) = signup(&store, "touch@example.com").await;
    let key = new_key(&user, "Touched");
    store
        .create_api_key(&key, &hash(3), &Effects::default())
        .await
        .unwrap();
    let now = T0.plus_secs(100);
    let due = now.plus_secs(-60);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .touch_api_key(key.id, now, due, Some("192.0.2.9"))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut written = 0;
    for task in tasks {
        written += usize::from(task.await.unwrap());
    }
    assert_eq!(written, 1, "concurrent uses write once");
    let found = store.find_api_key(&hash(3)).await.unwrap().unwrap();
    assert_eq!(found.key.last_used_at, Some(now));
    assert_eq!(found.key.last_used_ip.as_deref(), Some("192.0.2.9"));
    // Not due again within the interval; due after it.
    let soon = now.plus_secs(30);
    assert!(
        !store
            .touch_api_key(key.id, soon, soon.plus_secs(-60), None)
            .await
            .unwrap()
    );
    let later = now.plus_secs(60);
    assert!(
        store
            .touch_api_key(key.id, later, later.plus_secs(-60), Some("2001:db8::1"))
            .await
            .unwrap()
    );
}

async fn a_key_goes_with_its_creator(store: Arc<dyn Store>, _: String) {
    let (_, user) = signup(&store, "gone@example.com").await;
    let key = new_key(&user, "Orphan");
    store
        .create_api_key(&key, &hash(4), &Effects::default())
        .await
        .unwrap();
    assert!(
        store
            .delete_user(user.id, &[], T0, &Effects::default())
            .await
            .unwrap()
    );
    assert!(store.find_api_key(&hash(4)).await.unwrap().is_none());
    // A key for a creator who is gone is a lost race.
    let late = new_key(&user, "Late");
    assert!(matches!(
        store
            .create_api_key(&late, &hash(5), &Effects::default())
            .await,
        Err(StoreError::Raced)
    ));
}

async fn housekeeping_forgets_revoked_and_expired_keys_after_their_end(
    store: Arc<dyn Store>,
    _: String,
) {
    use tessera_core::housekeeping::Sweep;
    let (account, user) = signup(&store, "sweep@example.com").await;
    let revoked = new_key(&user, "Revoked");
    let expired = ApiKey {
        expires_at: Some(T0.plus_secs(60)),
        ..new_key(&user, "Expired")
    };
    let live = ApiKey {
        expires_at: None,
        ..new_key(&user, "Live")
    };
    for (key, n) in [(&revoked, 1), (&expired, 2), (&live, 3)] {
        store
            .create_api_key(key, &hash(n), &Effects::default())
            .await
            .unwrap();
    }
    assert!(
        store
            .revoke_api_key(
                account.id,
                revoked.id,
                T0.plus_secs(10),
                &Effects::default()
            )
            .await
            .unwrap()
    );
    // Not yet past the cutoff: nothing goes.
    assert_eq!(store.sweep(Sweep::ApiKeys, T0, 100).await.unwrap(), 0);
    let later = T0.plus_secs(2 * 24 * 3600);
    assert_eq!(store.sweep(Sweep::ApiKeys, later, 100).await.unwrap(), 2);
    assert!(store.find_api_key(&hash(1)).await.unwrap().is_none());
    assert!(store.find_api_key(&hash(2)).await.unwrap().is_none());
    assert!(
        store.find_api_key(&hash(3)).await.unwrap().is_some(),
        "a live key stays"
    );
}
