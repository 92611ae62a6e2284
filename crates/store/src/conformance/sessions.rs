//! Sessions (`SessionStore`).

use super::*;

conformance!(
    sessions_are_found_by_token_hash_until_they_expire,
    a_session_is_read_with_its_user_s_two_factor_status,
    ending_a_session_records_one_event,
    sessions_are_listed_and_ended_per_user,
);

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
        .activate_totp(
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

async fn sessions_are_listed_and_ended_per_user(store: Arc<dyn Store>, _: String) {
    let (_, ada) = signup(&store, "ada@example.com").await;
    let (_, bob) = signup(&store, "bob@example.com").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let s = session(&ada, T0.plus_secs(60));
        store
            .create_session(&s, &Token::generate().hash(), &Effects::default())
            .await
            .unwrap();
        ids.push(s.id);
    }
    let bobs = session(&bob, T0.plus_secs(60));
    store
        .create_session(&bobs, &Token::generate().hash(), &Effects::default())
        .await
        .unwrap();
    assert_eq!(store.list_sessions(ada.id, T0).await.unwrap().len(), 3);
    assert!(
        store
            .list_sessions(ada.id, T0.plus_secs(60))
            .await
            .unwrap()
            .is_empty(),
        "expired"
    );
    assert!(
        !store
            .end_user_session(ada.id, bobs.id, &Effects::default())
            .await
            .unwrap()
    );
    assert!(
        !store
            .end_user_session(ada.id, SessionId::new(), &Effects::default())
            .await
            .unwrap()
    );
    assert!(
        store
            .end_user_session(ada.id, ids[0], &Effects::default())
            .await
            .unwrap()
    );
    let ended = store
        .end_other_sessions(ada.id, ids[1], &Effects::default())
        .await
        .unwrap();
    assert_eq!(ended, 1);
    let left: Vec<_> = store
        .list_sessions(ada.id, T0)
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(left, [ids[1]]);
    assert_eq!(
        store.list_sessions(bob.id, T0).await.unwrap().len(),
        1,
        "bob untouched"
    );
}
