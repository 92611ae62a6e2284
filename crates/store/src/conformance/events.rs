//! The audit log (`EventStore`).

use super::*;

conformance!(events_page_newest_first,);

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
