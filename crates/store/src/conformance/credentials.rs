//! Password reset links and changes of password on every backend: a link resets once under
//! a race; a reset ends every session, lifts the lock and retires the other links; a change
//! keeps its own session; links are limited per user over any hour; a deleted user's links
//! are gone.

use super::*;
use tessera_core::credentials::NewResetLink;
use tessera_core::crypto::TokenHash;
use tessera_core::throttle::send_window::admit_send;
use tessera_core::throttle::{RetryAt, Window};

conformance!(
    a_reset_link_resets_once_under_a_race,
    a_reset_ends_every_session_lifts_the_lock_and_retires_other_links,
    an_expired_link_resets_nothing,
    a_change_keeps_its_own_session_only,
    reset_links_are_limited_over_any_hour,
    a_deleted_users_links_are_gone,
);

const HOURLY_THREE: Window = Window { max: 3, secs: 3600 };

/// Stores a link for `user` made at `at`, valid 1 h, within `limit`.
async fn link_at(
    store: &Arc<dyn Store>,
    user: &User,
    at: Timestamp,
    limit: Window,
) -> (TokenHash, Result<(), RetryAt>) {
    let token = Token::generate().hash();
    let link = NewResetLink {
        user: user.id,
        token: &token,
        created_at: at,
        expires_at: at.plus_secs(3600),
    };
    let made = store
        .create_reset_link(
            link,
            &mut |sent| admit_send(sent, at, &limit),
            &event(user, EventKind::PasswordResetRequested),
        )
        .await
        .unwrap();
    (token, made)
}

async fn stored_hash(store: &Arc<dyn Store>, user: &User) -> Option<String> {
    store
        .find_user_by_email(user.email.normalized())
        .await
        .unwrap()
        .and_then(|u| u.password_hash)
}

async fn a_reset_link_resets_once_under_a_race(store: Arc<dyn Store>, _: String) {
    let (_, ada) = signup(&store, "ada@example.com").await;
    let (token, made) = link_at(&store, &ada, T0, HOURLY_THREE).await;
    assert_eq!(made, Ok(()));
    let now = T0.plus_secs(60);
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (store, user) = (Arc::clone(&store), ada.clone());
            tokio::spawn(async move {
                let hash = format!("$argon2id$new{i}");
                let reset = store
                    .reset_password(
                        &token,
                        user.id,
                        now,
                        &hash,
                        &[],
                        &event(&user, EventKind::PasswordReset),
                    )
                    .await
                    .unwrap();
                reset.then_some(hash)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        winners.extend(t.await.unwrap());
    }
    assert_eq!(winners.len(), 1, "one reset per link");
    assert_eq!(stored_hash(&store, &ada).await, winners.pop());
    let link = store.find_reset_link(&token).await.unwrap().unwrap();
    assert_eq!(link.used_at, Some(now));
    let resets = store.user_events(ada.id, None, 50).await.unwrap();
    let counted = resets
        .iter()
        .filter(|e| e.kind == EventKind::PasswordReset)
        .count();
    assert_eq!(counted, 1, "one event for one reset");
}

async fn a_reset_ends_every_session_lifts_the_lock_and_retires_other_links(
    store: Arc<dyn Store>,
    _: String,
) {
    let (_, ada) = signup(&store, "ada@example.com").await;
    let (_, bob) = signup(&store, "bob@example.com").await;
    for user in [&ada, &ada, &bob] {
        let s = session(user, T0.plus_secs(86_400));
        store
            .create_session(&s, &Token::generate().hash(), &Effects::default())
            .await
            .unwrap();
    }
    let locked = |_| {
        let state = ThrottleState {
            failures: 10,
            window_start: T0,
            locked_until: Some(T0.plus_secs(900)),
        };
        (state, Effects::default())
    };
    let key = ada.email.normalized().to_owned();
    store
        .update_throttle(Scope::Password, &key, &mut { locked })
        .await
        .unwrap();
    let (first, _) = link_at(&store, &ada, T0, HOURLY_THREE).await;
    let (second, _) = link_at(&store, &ada, T0, HOURLY_THREE).await;
    let lifted = [(Scope::Password, key.clone())];
    let reset = store
        .reset_password(
            &first,
            ada.id,
            T0,
            "$argon2id$new",
            &lifted,
            &Effects::default(),
        )
        .await
        .unwrap();
    assert!(reset);
    assert!(
        store
            .list_sessions(ada.id, T0, Timestamp::from_unix(0), None, 1000)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .list_sessions(bob.id, T0, Timestamp::from_unix(0), None, 1000)
            .await
            .unwrap()
            .len(),
        1
    );
    let after = store
        .update_throttle(Scope::Password, &key, &mut |s| (s, Effects::default()))
        .await
        .unwrap();
    assert_eq!(after, ThrottleState::default(), "the lock is lifted");
    let second = store.find_reset_link(&second).await.unwrap().unwrap();
    assert!(second.used_at.is_some(), "the other link is retired");
}

async fn an_expired_link_resets_nothing(store: Arc<dyn Store>, _: String) {
    let (_, ada) = signup(&store, "ada@example.com").await;
    let (token, _) = link_at(&store, &ada, T0, HOURLY_THREE).await;
    let late = T0.plus_secs(3600);
    let reset = store
        .reset_password(
            &token,
            ada.id,
            late,
            "$argon2id$new",
            &[],
            &Effects::default(),
        )
        .await
        .unwrap();
    assert!(!reset);
    assert_eq!(
        stored_hash(&store, &ada).await.as_deref(),
        Some("$argon2id$hash")
    );
    // Nor does a link with another user's id.
    let (_, bob) = signup(&store, "bob@example.com").await;
    let (token, _) = link_at(&store, &ada, T0, HOURLY_THREE).await;
    let reset = store
        .reset_password(
            &token,
            bob.id,
            T0,
            "$argon2id$new",
            &[],
            &Effects::default(),
        )
        .await
        .unwrap();
    assert!(!reset);
    assert_eq!(
        stored_hash(&store, &bob).await.as_deref(),
        Some("$argon2id$hash")
    );
}

async fn a_change_keeps_its_own_session_only(store: Arc<dyn Store>, _: String) {
    let (_, ada) = signup(&store, "ada@example.com").await;
    let mine = session(&ada, T0.plus_secs(86_400));
    let other = session(&ada, T0.plus_secs(86_400));
    for s in [&mine, &other] {
        store
            .create_session(s, &Token::generate().hash(), &Effects::default())
            .await
            .unwrap();
    }
    let (link, _) = link_at(&store, &ada, T0, HOURLY_THREE).await;
    let changed = store
        .change_password(
            ada.id,
            mine.id,
            T0,
            "$argon2id$new",
            &event(&ada, EventKind::PasswordChanged),
        )
        .await
        .unwrap();
    assert!(changed);
    let left = store
        .list_sessions(ada.id, T0, Timestamp::from_unix(0), None, 1000)
        .await
        .unwrap();
    assert_eq!(left.iter().map(|s| s.id).collect::<Vec<_>>(), [mine.id]);
    assert_eq!(
        stored_hash(&store, &ada).await.as_deref(),
        Some("$argon2id$new")
    );
    let link = store.find_reset_link(&link).await.unwrap().unwrap();
    assert!(link.used_at.is_some(), "a live link is retired");
    // From a session that has ended: nothing changes.
    let changed = store
        .change_password(ada.id, other.id, T0, "$argon2id$other", &Effects::default())
        .await
        .unwrap();
    assert!(!changed);
    assert_eq!(
        stored_hash(&store, &ada).await.as_deref(),
        Some("$argon2id$new")
    );
}

async fn reset_links_are_limited_over_any_hour(store: Arc<dyn Store>, _: String) {
    let (_, ada) = signup(&store, "ada@example.com").await;
    assert_eq!(link_at(&store, &ada, T0, HOURLY_THREE).await.1, Ok(()));
    for _ in 0..2 {
        assert_eq!(
            link_at(&store, &ada, T0.plus_secs(3590), HOURLY_THREE)
                .await
                .1,
            Ok(())
        );
    }
    let (refused, made) = link_at(&store, &ada, T0.plus_secs(3599), HOURLY_THREE).await;
    assert_eq!(made, Err(RetryAt(T0.plus_secs(3600))));
    assert!(store.find_reset_link(&refused).await.unwrap().is_none());
    assert_eq!(
        link_at(&store, &ada, T0.plus_secs(3600), HOURLY_THREE)
            .await
            .1,
        Ok(())
    );
    // Concurrent requests cannot pass the limit either.
    let at = T0.plus_secs(20_000);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, ada) = (Arc::clone(&store), ada.clone());
            tokio::spawn(async move { link_at(&store, &ada, at, HOURLY_THREE).await.1 })
        })
        .collect();
    let mut made = 0;
    for t in tasks {
        made += usize::from(t.await.unwrap().is_ok());
    }
    assert_eq!(made, 3);
}

async fn a_deleted_users_links_are_gone(store: Arc<dyn Store>, _: String) {
    let (_, ada) = signup(&store, "ada@example.com").await;
    let (token, _) = link_at(&store, &ada, T0, HOURLY_THREE).await;
    assert!(store.find_reset_link(&token).await.unwrap().is_some());
    assert!(
        store
            .delete_user(ada.id, &[], T0, &Effects::default())
            .await
            .unwrap()
    );
    assert!(store.find_reset_link(&token).await.unwrap().is_none());
    let reset = store
        .reset_password(
            &token,
            ada.id,
            T0,
            "$argon2id$new",
            &[],
            &Effects::default(),
        )
        .await
        .unwrap();
    assert!(!reset);
}
