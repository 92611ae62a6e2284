//! The team store on every backend: the policy flips once, invitations are single-use under
//! races, a deleted user takes their rows along.

use super::*;
use std::sync::Arc;
use tessera_core::crypto::Token;
use tessera_core::email::Email;
use tessera_core::mail::SealedEmail;
use tessera_core::model::{
    AuthSource, EventKind, Invitation, InvitationId, InvitationStatus, Role, User, UserId,
};

conformance!(
    the_policy_turns_on_once_under_a_race,
    an_invitation_is_accepted_once_under_a_race,
    one_open_invitation_per_email_and_expired_ones_make_way,
    invitations_are_revoked_within_their_account_only,
    deleting_a_user_takes_their_rows_and_throttles,
);

fn email_to(to: &str) -> Effects {
    Effects::default().and_email(SealedEmail {
        id: uuid::Uuid::now_v7(),
        kind: "two_factor_required",
        priority: tessera_core::mail::Priority::Bulk,
        recipient: to.to_owned(),
        payload: vec![1, 2, 3],
        created_at: T0,
    })
}

fn invitation(account: &tessera_core::model::Account, email: &str) -> Invitation {
    Invitation {
        id: InvitationId::new(),
        account_id: account.id,
        email: Email::parse(email).unwrap(),
        name: "Grace".into(),
        role: Role::Member,
        invited_by: None,
        auth_source: AuthSource::Password,
        status: InvitationStatus::Pending,
        created_at: T0,
        expires_at: T0.plus_secs(7 * 24 * 3600),
    }
}

fn invitee(i: &Invitation) -> User {
    User {
        id: UserId::new(),
        account_id: i.account_id,
        email: i.email.clone(),
        name: i.name.clone(),
        role: i.role,
        auth_source: AuthSource::Password,
        created_at: T0,
    }
}

async fn the_policy_turns_on_once_under_a_race(store: Arc<dyn Store>, _: String) {
    let (a, u) = signup(&store, "owner@example.com").await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .set_two_factor_policy(
                        a.id,
                        true,
                        Some(T0.plus_secs(60)),
                        &Effects::default(),
                        &email_to("owner@example.com"),
                    )
                    .await
                    .unwrap()
                    .unwrap()
            })
        })
        .collect();
    for t in tasks {
        let account = t.await.unwrap();
        assert!(account.two_factor_required);
        assert_eq!(account.grace_period_until, Some(T0.plus_secs(60)));
    }
    let queued = store.list_outbox(true, 100).await.unwrap();
    assert_eq!(queued.len(), 1, "emailed once");
    // On-with-a-date and off at once: whichever wins, the account is never "optional with a
    // grace period" (each change reads the flag under the row lock).
    for round in 0..10 {
        let on = {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let grace = Some(T0.plus_secs(60 + round));
                let none = Effects::default();
                store
                    .set_two_factor_policy(a.id, true, grace, &none, &none)
                    .await
            })
        };
        let off = {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let none = Effects::default();
                store
                    .set_two_factor_policy(a.id, false, None, &none, &none)
                    .await
            })
        };
        on.await.unwrap().unwrap();
        off.await.unwrap().unwrap();
        let now = store.get_account(a.id).await.unwrap().unwrap();
        assert_eq!(
            now.two_factor_required,
            now.grace_period_until.is_some(),
            "round {round}: {now:?}"
        );
    }
    // Off again: nothing is emailed, and the grace period goes.
    let off = store
        .set_two_factor_policy(
            a.id,
            false,
            None,
            &event(&u, EventKind::TwoFactorPolicyChanged),
            &email_to("owner@example.com"),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(!off.two_factor_required && off.grace_period_until.is_none());
    assert_eq!(store.list_outbox(true, 100).await.unwrap().len(), 1);
    let missing = store
        .set_two_factor_policy(
            tessera_core::model::AccountId::new(),
            true,
            None,
            &Effects::default(),
            &Effects::default(),
        )
        .await
        .unwrap();
    assert!(missing.is_none());
}

async fn an_invitation_is_accepted_once_under_a_race(store: Arc<dyn Store>, _: String) {
    let (a, _) = signup(&store, "owner@example.com").await;
    let i = invitation(&a, "Grace@example.com");
    let token = Token::generate();
    store
        .create_invitation(&i, &token.hash(), &Effects::default())
        .await
        .unwrap();
    let found = store.find_invitation(&token.hash()).await.unwrap().unwrap();
    assert_eq!(
        (found.id, found.email.as_str(), found.role),
        (i.id, "Grace@example.com", Role::Member)
    );
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, i) = (Arc::clone(&store), i.clone());
            tokio::spawn(async move {
                store
                    .accept_invitation(
                        i.id,
                        T0.plus_secs(1),
                        &invitee(&i),
                        "$hash",
                        &Effects::default(),
                    )
                    .await
            })
        })
        .collect();
    let mut accepted = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(true) => accepted += 1,
            Ok(false) | Err(StoreError::Conflict(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(accepted, 1);
    let users = store.list_users(Some(a.id)).await.unwrap();
    assert_eq!(users.len(), 2);
    let found = store.find_invitation(&token.hash()).await.unwrap().unwrap();
    assert_eq!(found.status, InvitationStatus::Accepted);
    assert!(store.open_invitations(a.id, T0).await.unwrap().is_empty());
}

async fn one_open_invitation_per_email_and_expired_ones_make_way(store: Arc<dyn Store>, _: String) {
    let (a, _) = signup(&store, "owner@example.com").await;
    let first = invitation(&a, "grace@example.com");
    store
        .create_invitation(&first, &Token::generate().hash(), &Effects::default())
        .await
        .unwrap();
    let twin = invitation(&a, "GRACE@example.com");
    let refused = store
        .create_invitation(&twin, &Token::generate().hash(), &Effects::default())
        .await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(Unique::OpenInvitation))),
        "{refused:?}"
    );
    // Another account may invite the same person meanwhile: it does not block this one.
    let (b, _) = signup(&store, "other-owner@example.com").await;
    store
        .create_invitation(
            &invitation(&b, "grace@example.com"),
            &Token::generate().hash(),
            &Effects::default(),
        )
        .await
        .unwrap();
    let owner_email = invitation(&a, "owner@example.com");
    let refused = store
        .create_invitation(&owner_email, &Token::generate().hash(), &Effects::default())
        .await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(Unique::Email))),
        "{refused:?}"
    );

    // A week later the first has lapsed: a new one replaces it, the old is marked expired.
    let later = Invitation {
        created_at: first.expires_at,
        expires_at: first.expires_at.plus_secs(60),
        ..invitation(&a, "grace@example.com")
    };
    let token = Token::generate();
    store
        .create_invitation(&later, &token.hash(), &Effects::default())
        .await
        .unwrap();
    let open = store
        .open_invitations(a.id, first.expires_at)
        .await
        .unwrap();
    assert_eq!(open.iter().map(|i| i.id).collect::<Vec<_>>(), [later.id]);
    assert!(
        !store
            .accept_invitation(
                first.id,
                first.expires_at,
                &invitee(&first),
                "$h",
                &Effects::default()
            )
            .await
            .unwrap(),
        "the expired one cannot be accepted"
    );
}

async fn invitations_are_revoked_within_their_account_only(store: Arc<dyn Store>, _: String) {
    let (a, u) = signup(&store, "owner@example.com").await;
    let (other, _) = signup(&store, "other@example.com").await;
    let i = invitation(&a, "grace@example.com");
    store
        .create_invitation(&i, &Token::generate().hash(), &Effects::default())
        .await
        .unwrap();
    let effects = event(&u, EventKind::InvitationRevoked);
    assert!(
        !store
            .revoke_invitation(other.id, i.id, T0, &effects)
            .await
            .unwrap()
    );
    assert!(
        store
            .revoke_invitation(a.id, i.id, T0, &effects)
            .await
            .unwrap()
    );
    assert!(
        !store
            .revoke_invitation(a.id, i.id, T0, &effects)
            .await
            .unwrap()
    );
    let events = store.account_events(a.id, None, 10).await.unwrap();
    assert_eq!(events[0].kind, EventKind::InvitationRevoked);
    assert_eq!(events.len(), 2, "signup and one revocation");
    assert!(
        !store
            .accept_invitation(i.id, T0, &invitee(&i), "$h", &Effects::default())
            .await
            .unwrap()
    );
}

async fn deleting_a_user_takes_their_rows_and_throttles(store: Arc<dyn Store>, _: String) {
    let (a, owner) = signup(&store, "owner@example.com").await;
    let i = invitation(&a, "gone@example.com");
    store
        .create_invitation(&i, &Token::generate().hash(), &Effects::default())
        .await
        .unwrap();
    let user = invitee(&i);
    assert!(
        store
            .accept_invitation(
                i.id,
                T0,
                &user,
                "$h",
                &event(&user, EventKind::InvitationAccepted)
            )
            .await
            .unwrap()
    );
    let token = Token::generate();
    store
        .create_session(
            &session(&user, T0.plus_secs(60)),
            &token.hash(),
            &Effects::default(),
        )
        .await
        .unwrap();
    store
        .update_throttle(Scope::Password, "gone@example.com", &mut |mut s| {
            s.failures = 3;
            (s, Effects::default())
        })
        .await
        .unwrap();
    // The user invited someone; that invitation goes with them.
    let sent = Invitation {
        invited_by: Some(user.id),
        role: Role::Admin,
        ..invitation(&a, "friend@example.com")
    };
    let sent_token = Token::generate();
    store
        .create_invitation(&sent, &sent_token.hash(), &Effects::default())
        .await
        .unwrap();
    let members = store.team_members(a.id).await.unwrap();
    assert_eq!(members.len(), 2);
    assert!(members.iter().all(|m| !m.two_factor_enabled));

    let throttles = [(Scope::Password, "gone@example.com".to_owned())];
    let effects = event(&owner, EventKind::UserDeleted);
    assert!(
        store
            .delete_user(user.id, &throttles, T0, &effects)
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_user(user.id, &throttles, T0, &effects)
            .await
            .unwrap()
    );
    assert!(store.get_user(user.id).await.unwrap().is_none());
    let sent = store
        .find_invitation(&sent_token.hash())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sent.status, InvitationStatus::Revoked);
    assert_eq!(sent.invited_by, None);
    assert!(store.find_session(&token.hash()).await.unwrap().is_none());
    assert!(
        !store
            .clear_throttle(Scope::Password, "gone@example.com")
            .await
            .unwrap()
    );
    // The deleted user's events stay, with their email, in the account's log.
    let events = store.account_events(a.id, None, 10).await.unwrap();
    let accepted = events
        .iter()
        .find(|e| e.kind == EventKind::InvitationAccepted)
        .unwrap();
    assert_eq!(
        (accepted.user_id, accepted.email.as_deref()),
        (None, Some("gone@example.com"))
    );
    assert_eq!(store.team_members(a.id).await.unwrap().len(), 1);
}
