//! The audit log (`EventStore`).

use super::*;
use tessera_core::mail::Alert;

conformance!(
    events_page_newest_first,
    an_alert_goes_once_per_interval_and_kind_however_many_race,
);

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

/// An alert of `kind` to `user` at `now`, quiet for an hour.
fn alert(user: &User, kind: &'static str, now: Timestamp) -> Effects {
    let email = SealedEmail {
        kind,
        ..super::outbox::sealed(user.email.as_str(), now)
    };
    let event = NewEvent::for_user(
        user,
        EventKind::TotpReplayRefused,
        &RequestMeta::default(),
        now,
    );
    Effects::event(event).and_alert(Alert {
        user_id: user.id,
        email,
        now,
        quiet_since: now.plus_secs(-3600),
    })
}

async fn alerts_of(store: &Arc<dyn Store>, kind: &str) -> usize {
    let outbox = store.list_outbox(true, 1000).await.unwrap();
    outbox.iter().filter(|e| e.kind == kind).count()
}

async fn an_alert_goes_once_per_interval_and_kind_however_many_race(
    store: Arc<dyn Store>,
    _: String,
) {
    let (_, u) = signup(&store, "alerted@example.com").await;
    let racing: Vec<_> = (0..8)
        .map(|_| {
            let (store, effects) = (Arc::clone(&store), alert(&u, "code_replayed", T0));
            tokio::spawn(async move { store.record(&effects).await.unwrap() })
        })
        .collect();
    for task in racing {
        task.await.unwrap();
    }
    assert_eq!(alerts_of(&store, "code_replayed").await, 1);
    // Every cause is recorded, whether or not its email went.
    let events = store.user_events(u.id, None, 100).await.unwrap();
    let recorded = events
        .iter()
        .filter(|e| e.kind == EventKind::TotpReplayRefused);
    assert_eq!(recorded.count(), 8);
    // Another kind is not held back by this one; the same kind goes again after the hour.
    store
        .record(&alert(&u, "new_sign_in", T0.plus_secs(1)))
        .await
        .unwrap();
    assert_eq!(alerts_of(&store, "new_sign_in").await, 1);
    store
        .record(&alert(&u, "code_replayed", T0.plus_secs(3599)))
        .await
        .unwrap();
    assert_eq!(alerts_of(&store, "code_replayed").await, 1);
    store
        .record(&alert(&u, "code_replayed", T0.plus_secs(3600)))
        .await
        .unwrap();
    assert_eq!(alerts_of(&store, "code_replayed").await, 2);
    // Another user has their own.
    let (_, v) = signup(&store, "other@example.com").await;
    store
        .record(&alert(&v, "code_replayed", T0.plus_secs(3601)))
        .await
        .unwrap();
    assert_eq!(alerts_of(&store, "code_replayed").await, 3);
}
