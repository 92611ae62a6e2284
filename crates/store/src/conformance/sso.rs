//! Single sign-on on every backend: a connection with its domains (one team per domain), a
//! pending sign-in taken once under a race, an identity linked once under a race, a
//! provisioned user without password, and the team's `sso_two_factor` read with the account.

use super::*;
use tessera_core::model::SsoTwoFactor;
use tessera_core::sso::{PendingSsoLogin, SsoConnection, SsoIdentity};

conformance!(
    a_connection_is_saved_replaced_and_found_by_domain,
    a_domain_belongs_to_one_team,
    a_pending_sign_in_is_taken_once_under_a_race,
    an_identity_is_linked_once_under_a_race,
    a_provisioned_user_has_no_password_and_one_identity,
);

fn connection(account: &Account, domains: &[&str]) -> SsoConnection {
    SsoConnection {
        account_id: account.id,
        issuer: "https://id.example.com".into(),
        client_id: "tessera".into(),
        client_secret_sealed: vec![1; 40],
        email_domains: domains.iter().map(|d| (*d).to_owned()).collect(),
        jit_provisioning: true,
        updated_at: T0,
    }
}

async fn a_connection_is_saved_replaced_and_found_by_domain(store: Arc<dyn Store>, _: String) {
    let (a, ada) = signup(&store, "ada@example.com").await;
    assert!(store.sso_connection(a.id).await.unwrap().is_none());
    let first = connection(&a, &["example.com", "example.org"]);
    store
        .save_sso_connection(
            &first,
            SsoTwoFactor::Exempt,
            &event(&ada, EventKind::SsoSettingsChanged),
        )
        .await
        .unwrap();
    let mut second = connection(&a, &["example.net"]);
    second.client_id = "other".into();
    second.jit_provisioning = false;
    store
        .save_sso_connection(&second, SsoTwoFactor::DisableSso, &Effects::default())
        .await
        .unwrap();
    let stored = store.sso_connection(a.id).await.unwrap().unwrap();
    assert_eq!(stored.client_id, "other");
    assert_eq!(stored.email_domains, vec!["example.net"]);
    assert!(!stored.jit_provisioning);
    assert_eq!(stored.client_secret_sealed, vec![1; 40]);
    assert!(
        store
            .sso_connection_for_domain("example.com")
            .await
            .unwrap()
            .is_none(),
        "a domain left out is released"
    );
    let (found, account) = store
        .sso_connection_for_domain("example.net")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.account_id, a.id);
    assert_eq!(account.sso_two_factor, SsoTwoFactor::DisableSso);
    let reread = store.get_account(a.id).await.unwrap().unwrap();
    assert_eq!(reread.sso_two_factor, SsoTwoFactor::DisableSso);
}

async fn a_domain_belongs_to_one_team(store: Arc<dyn Store>, _: String) {
    let (a, _) = signup(&store, "ada@example.com").await;
    let (b, _) = signup(&store, "bob@example.org").await;
    store
        .save_sso_connection(
            &connection(&a, &["example.com"]),
            SsoTwoFactor::Exempt,
            &Effects::default(),
        )
        .await
        .unwrap();
    let taken = store
        .save_sso_connection(
            &connection(&b, &["example.org", "example.com"]),
            SsoTwoFactor::DisableSso,
            &Effects::default(),
        )
        .await;
    assert!(
        matches!(taken, Err(StoreError::Conflict(Unique::SsoDomain))),
        "{taken:?}"
    );
    // Nothing of the refused change was written.
    assert!(store.sso_connection(b.id).await.unwrap().is_none());
    assert!(
        store
            .sso_connection_for_domain("example.org")
            .await
            .unwrap()
            .is_none()
    );
    let b = store.get_account(b.id).await.unwrap().unwrap();
    assert_eq!(b.sso_two_factor, SsoTwoFactor::Exempt);
}

async fn a_pending_sign_in_is_taken_once_under_a_race(store: Arc<dyn Store>, _: String) {
    let (a, _) = signup(&store, "ada@example.com").await;
    let state = Token::generate();
    let pending = PendingSsoLogin {
        id: uuid::Uuid::now_v7().to_string(),
        state: state.hash(),
        account_id: a.id,
        issuer: "https://id.example.com".into(),
        secrets_sealed: vec![3; 50],
        browser_bound: true,
        created_at: T0,
        expires_at: T0.plus_secs(600),
    };
    store.create_sso_login(&pending).await.unwrap();
    let takers = (0..8).map(|_| {
        let store = Arc::clone(&store);
        let hash = state.hash();
        tokio::spawn(async move { store.take_sso_login(&hash).await.unwrap() })
    });
    let mut taken = Vec::new();
    for taker in takers {
        if let Some(found) = taker.await.unwrap() {
            taken.push(found);
        }
    }
    assert_eq!(taken.len(), 1, "one callback gets the pending sign-in");
    let found = &taken[0];
    assert_eq!(found.id, pending.id);
    assert_eq!(found.account_id, a.id);
    assert_eq!(found.secrets_sealed, pending.secrets_sealed);
    assert!(found.browser_bound);
    assert_eq!(found.expires_at, pending.expires_at);
    assert!(store.take_sso_login(&state.hash()).await.unwrap().is_none());
}

async fn an_identity_is_linked_once_under_a_race(store: Arc<dyn Store>, _: String) {
    let (_, ada) = signup(&store, "ada@example.com").await;
    let (_, bob) = signup(&store, "bob@example.org").await;
    let link = |user: &User, subject: &str| SsoIdentity {
        issuer: "https://id.example.com".into(),
        subject: subject.into(),
        user_id: user.id,
        created_at: T0,
    };
    let linkers = (0..8).map(|i| {
        let store = Arc::clone(&store);
        // Half try to link the same person to Ada, half to Bob: one link wins.
        let user = if i % 2 == 0 { ada.clone() } else { bob.clone() };
        let identity = link(&user, "person-1");
        let effects = event(&user, EventKind::SsoLinked);
        tokio::spawn(async move { store.link_sso_identity(&identity, &effects).await.unwrap() })
    });
    let mut won = 0;
    for linker in linkers {
        won += usize::from(linker.await.unwrap());
    }
    assert_eq!(won, 1);
    let linked = store
        .find_sso_identity("https://id.example.com", "person-1")
        .await
        .unwrap()
        .unwrap();
    assert!(linked.id == ada.id || linked.id == bob.id);
    // One identity per user and issuer.
    let again = store
        .link_sso_identity(&link(&linked, "person-2"), &Effects::default())
        .await
        .unwrap();
    assert!(!again);
    assert!(
        store
            .find_sso_identity("https://id.example.com", "person-2")
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_provisioned_user_has_no_password_and_one_identity(store: Arc<dyn Store>, _: String) {
    let (a, _) = signup(&store, "ada@example.com").await;
    let new = |email: &str| User {
        id: UserId::new(),
        account_id: a.id,
        email: Email::parse(email).unwrap(),
        name: "Grace".into(),
        role: Role::Member,
        auth_source: AuthSource::Sso,
        created_at: T0,
    };
    let grace = new("grace@example.com");
    let identity = |user: &User| SsoIdentity {
        issuer: "https://id.example.com".into(),
        subject: "grace".into(),
        user_id: user.id,
        created_at: T0,
    };
    store
        .provision_sso_user(
            &grace,
            &identity(&grace),
            &event(&grace, EventKind::SsoProvisioned),
        )
        .await
        .unwrap();
    let found = store
        .find_user_by_email("grace@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.user.auth_source, AuthSource::Sso);
    assert!(found.password_hash.is_none());
    let sso_users = store.sso_users(a.id).await.unwrap();
    assert_eq!(sso_users.len(), 1);
    assert_eq!(sso_users[0].id, grace.id);
    // The same person again (a concurrent first sign-in): nothing more is created.
    let twin = new("grace2@example.com");
    let again = store
        .provision_sso_user(&twin, &identity(&twin), &Effects::default())
        .await;
    assert!(
        matches!(again, Err(StoreError::Conflict(Unique::SsoIdentity))),
        "{again:?}"
    );
    assert!(
        store
            .find_user_by_email("grace2@example.com")
            .await
            .unwrap()
            .is_none()
    );
    let same_email = new("grace@example.com");
    let again = store
        .provision_sso_user(
            &same_email,
            &SsoIdentity {
                subject: "other".into(),
                ..identity(&same_email)
            },
            &Effects::default(),
        )
        .await;
    assert!(
        matches!(again, Err(StoreError::Conflict(Unique::Email))),
        "{again:?}"
    );
}
