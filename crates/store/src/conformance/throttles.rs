//! Throttles (`ThrottleStore`).

use super::outbox::sealed;
use super::*;

conformance!(
    concurrent_throttle_updates_are_serialized,
    a_throttle_change_writes_its_effects,
);

async fn concurrent_throttle_updates_are_serialized(store: Arc<dyn Store>, _: String) {
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .update_throttle(Scope::Ip, "k", &mut |s| {
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

async fn a_throttle_change_writes_its_effects(store: Arc<dyn Store>, _: String) {
    let (_, u) = signup(&store, "lockfx@example.com").await;
    let lock = event(&u, EventKind::PasswordLocked).and_email(sealed("lockfx@example.com", T0));
    let next = store
        .update_throttle(Scope::Password, "lockfx@example.com", &mut |s| {
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
        .update_throttle(Scope::Ip, key, &mut |s| (s, Effects::default()))
        .await
        .unwrap()
}
