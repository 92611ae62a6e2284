//! Sessions (`SessionStore`).

use super::*;

conformance!(
    sessions_are_found_by_token_hash_with_their_times,
    activity_is_written_only_when_due,
    concurrent_touches_write_once,
    a_session_is_read_with_its_user_s_two_factor_status,
    ending_a_session_records_one_event,
    sessions_are_listed_and_ended_per_user,
    a_step_up_restart_is_written_with_its_change_and_never_backwards,
    a_user_holds_at_most_100_sessions_listed_in_stable_pages,
    concurrent_sign_ins_never_pass_the_session_cap,
);

async fn a_step_up_restart_is_written_with_its_change_and_never_backwards(
    store: Arc<dyn Store>,
    _: String,
) {
    let (_, u) = signup(&store, "sudo@example.com").await;
    let token = Token::generate();
    let s = session(&u, T0.plus_secs(3600));
    store
        .create_session(&s, &token.hash(), &Effects::default())
        .await
        .unwrap();
    let stepped_up = || {
        let (store, hash) = (Arc::clone(&store), token.hash());
        async move {
            let found = store.find_session(&hash).await.unwrap().unwrap();
            found.session.reauthenticated_at
        }
    };
    assert_eq!(
        stepped_up().await,
        T0,
        "a new session counts as authenticated"
    );
    let restart = |at| Effects {
        step_up: Some(StepUp { session: s.id, at }),
        ..event(&u, EventKind::Reauthenticated)
    };
    store.record(&restart(T0.plus_secs(600))).await.unwrap();
    assert_eq!(stepped_up().await, T0.plus_secs(600));
    // An older restart (a slower concurrent action) does not move it back.
    store.record(&restart(T0.plus_secs(300))).await.unwrap();
    assert_eq!(stepped_up().await, T0.plus_secs(600));
    // A change that found nothing to change restarts nothing.
    assert!(
        !store
            .end_user_session(u.id, SessionId::new(), &restart(T0.plus_secs(900)))
            .await
            .unwrap()
    );
    assert_eq!(stepped_up().await, T0.plus_secs(600));
}

async fn sessions_are_found_by_token_hash_with_their_times(store: Arc<dyn Store>, _: String) {
    let (a, u) = signup(&store, "s@example.com").await;
    let token = Token::generate();
    let s = session(&u, T0.plus_secs(3600));
    store
        .create_session(&s, &token.hash(), &event(&u, EventKind::SignIn))
        .await
        .unwrap();
    let found = store
        .find_session(&token.hash())
        .await
        .unwrap()
        .expect("the session");
    assert_eq!(found.session.id, s.id);
    assert_eq!(found.user.id, u.id);
    assert_eq!(found.account.id, a.id);
    assert_eq!(found.session.ip.as_deref(), Some("127.0.0.1"));
    // The times decide in the core (an expired session is told apart from no session).
    assert_eq!(found.session.expires_at, T0.plus_secs(3600));
    assert_eq!(found.session.last_seen_at, T0);
    assert!(
        store
            .find_session(&Token::generate().hash())
            .await
            .unwrap()
            .is_none()
    );
}

async fn activity_is_written_only_when_due(store: Arc<dyn Store>, _: String) {
    let (_, u) = signup(&store, "touch@example.com").await;
    let token = Token::generate();
    let s = session(&u, T0.plus_secs(3600));
    store
        .create_session(&s, &token.hash(), &Effects::default())
        .await
        .unwrap();
    let last_seen = || {
        let (store, hash) = (Arc::clone(&store), token.hash());
        async move {
            let found = store.find_session(&hash).await.unwrap().unwrap();
            found.session.last_seen_at
        }
    };
    // Within a minute of the last activity: nothing is written.
    let t = T0.plus_secs(30);
    assert!(
        !store
            .touch_session(s.id, t, t.plus_secs(-60))
            .await
            .unwrap()
    );
    assert_eq!(last_seen().await, T0);
    // A minute later it is.
    let t = T0.plus_secs(60);
    assert!(
        store
            .touch_session(s.id, t, t.plus_secs(-60))
            .await
            .unwrap()
    );
    assert_eq!(last_seen().await, t);
    let t2 = T0.plus_secs(100);
    assert!(
        !store
            .touch_session(s.id, t2, t2.plus_secs(-60))
            .await
            .unwrap()
    );
    assert_eq!(last_seen().await, t);
    // A session that is gone is not touched.
    store.end_session(s.id, &Effects::default()).await.unwrap();
    let t3 = T0.plus_secs(600);
    assert!(
        !store
            .touch_session(s.id, t3, t3.plus_secs(-60))
            .await
            .unwrap()
    );
}

async fn concurrent_touches_write_once(store: Arc<dyn Store>, _: String) {
    let (_, u) = signup(&store, "race-touch@example.com").await;
    let s = session(&u, T0.plus_secs(3600));
    store
        .create_session(&s, &Token::generate().hash(), &Effects::default())
        .await
        .unwrap();
    let t = T0.plus_secs(120);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.touch_session(s.id, t, t.plus_secs(-60)).await })
        })
        .collect();
    let mut written = 0;
    for task in tasks {
        if task.await.unwrap().unwrap() {
            written += 1;
        }
    }
    assert_eq!(written, 1);
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
    // An expired session is still found: whether it may be used is the core's rule.
    let (context, _) = read(T0.plus_secs(3600)).await.expect("found");
    assert_eq!(context.session.expires_at, T0.plus_secs(3600));
    assert!(
        store
            .find_session_with_status(&Token::generate().hash(), T0)
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
    assert!(store.find_session(&token.hash()).await.unwrap().is_none());
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
    assert_eq!(
        store
            .list_sessions(ada.id, T0, Timestamp::from_unix(0), None, 1000)
            .await
            .unwrap()
            .len(),
        3
    );
    assert!(
        store
            .list_sessions(
                ada.id,
                T0.plus_secs(60),
                Timestamp::from_unix(0),
                None,
                1000
            )
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
        .list_sessions(ada.id, T0, Timestamp::from_unix(0), None, 1000)
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(left, [ids[1]]);
    assert_eq!(
        store
            .list_sessions(bob.id, T0, Timestamp::from_unix(0), None, 1000)
            .await
            .unwrap()
            .len(),
        1,
        "bob untouched"
    );
}

async fn a_user_holds_at_most_100_sessions_listed_in_stable_pages(
    store: Arc<dyn Store>,
    _: String,
) {
    let (_, ada) = signup(&store, "many@example.com").await;
    let mut opened = Vec::new();
    for i in 0..105 {
        // Several in the same second: the order falls back to the id.
        let mut s = session(&ada, T0.plus_secs(3600));
        s.created_at = T0.plus_secs(i / 3);
        store
            .create_session(&s, &Token::generate().hash(), &Effects::default())
            .await
            .unwrap();
        opened.push(s.id);
    }
    let since = Timestamp::from_unix(0);
    let all = store
        .list_sessions(ada.id, T0, since, None, 1000)
        .await
        .unwrap();
    assert_eq!(all.len(), MAX_SESSIONS_PER_USER as usize);
    assert!(all.iter().any(|s| s.id == opened[104]), "the newest stays");
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_sessions(ada.id, T0, since, after, 30)
            .await
            .unwrap();
        paged.extend(page.iter().map(|s| s.id));
        match page.last() {
            Some(last) if page.len() == 30 => after = Some(SessionCursor::of(last)),
            _ => break,
        }
    }
    assert_eq!(
        paged,
        all.iter().map(|s| s.id).collect::<Vec<_>>(),
        "no gap, no repeat"
    );
}

async fn concurrent_sign_ins_never_pass_the_session_cap(store: Arc<dyn Store>, _: String) {
    let (_, ada) = signup(&store, "race@example.com").await;
    // Close to the cap one by one, then past it in a race (130 at once kept a loaded
    // machine's pool waiting past its timeout: a test of the pool, not of the cap).
    for _ in 0..MAX_SESSIONS_PER_USER - 10 {
        let s = session(&ada, T0.plus_secs(3600));
        store
            .create_session(&s, &Token::generate().hash(), &Effects::default())
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for _ in 0..30 {
        let (store, s) = (Arc::clone(&store), session(&ada, T0.plus_secs(3600)));
        tasks.push(tokio::spawn(async move {
            store
                .create_session(&s, &Token::generate().hash(), &Effects::default())
                .await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let all = store
        .list_sessions(ada.id, T0, Timestamp::from_unix(0), None, 1000)
        .await
        .unwrap();
    assert_eq!(all.len(), MAX_SESSIONS_PER_USER as usize);
}
