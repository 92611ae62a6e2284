//! Security keys (`SecurityKeyStore`): ceremonies taken once, the first key turning 2FA on
//! with its backups, the counter's compare-and-set under a race, removing the last key.

use super::*;
use tessera_core::factors::FactorKind;
use tessera_core::factors::webauthn::{
    CeremonyKey, FirstFactor, KeyAdded, KeyRemoved, KeyUse, StoredKey,
};
use tessera_core::model::SecurityKeyId;

conformance!(
    a_ceremony_is_taken_once_and_expires,
    the_first_key_turns_two_factor_on_and_the_last_turns_it_off,
    a_counter_is_accepted_once_and_only_rising,
);

fn key(user: &User, credential_id: u8) -> StoredKey {
    StoredKey {
        id: SecurityKeyId::new(),
        user_id: user.id,
        credential_id: vec![credential_id; 16],
        name: "My YubiKey".into(),
        credential: "{}".into(),
        sign_count: 0,
        created_at: T0,
        last_used_at: None,
    }
}

async fn a_ceremony_is_taken_once_and_expires(store: Arc<dyn Store>, _: String) {
    let (_, u) = signup(&store, "ceremony@example.com").await;
    let register = CeremonyKey::Register(u.id);
    let until = T0.plus_secs(600);
    store
        .put_ceremony(&register, Some(u.id), "first", until)
        .await
        .unwrap();
    // Starting again replaces it.
    store
        .put_ceremony(&register, Some(u.id), "second", until)
        .await
        .unwrap();
    assert_eq!(
        store.get_ceremony(&register, T0).await.unwrap().as_deref(),
        Some("second")
    );
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.take_ceremony(&register, T0).await.unwrap() })
        })
        .collect();
    let mut taken = 0;
    for t in tasks {
        if t.await.unwrap().is_some() {
            taken += 1;
        }
    }
    assert_eq!(taken, 1, "of ten takers, one");
    let passkey = CeremonyKey::Passkey(Token::generate().hash());
    store
        .put_ceremony(&passkey, None, "state", until)
        .await
        .unwrap();
    assert!(
        store
            .take_ceremony(&passkey, until)
            .await
            .unwrap()
            .is_none(),
        "expired"
    );
}

async fn the_first_key_turns_two_factor_on_and_the_last_turns_it_off(
    store: Arc<dyn Store>,
    _: String,
) {
    let (_, u) = signup(&store, "first-key@example.com").await;
    let first = FirstFactor {
        recovery_code_hashes: (0..10u8).map(|i| vec![i; 32]).collect(),
        paper_key_hash: vec![42; 32],
    };
    let one = key(&u, 1);
    assert_eq!(
        store
            .add_security_key(&one, Some(&first), &Effects::default())
            .await
            .unwrap(),
        KeyAdded::Added
    );
    assert_eq!(
        store.active_factors(u.id).await.unwrap(),
        vec![FactorKind::WebAuthn]
    );
    let status = store.two_factor_status(u.id, T0).await.unwrap();
    assert_eq!(
        (status.enabled_at, status.recovery_codes_remaining),
        (Some(T0), 10)
    );
    // The same authenticator's credential again, even for someone else, is a duplicate.
    let (_, v) = signup(&store, "other@example.com").await;
    let copy = key(&v, 1);
    assert_eq!(
        store
            .add_security_key(&copy, None, &Effects::default())
            .await
            .unwrap(),
        KeyAdded::Duplicate
    );
    let two = key(&u, 2);
    store
        .add_security_key(&two, None, &Effects::default())
        .await
        .unwrap();
    assert_eq!(store.security_keys(u.id).await.unwrap().len(), 2);
    let removed = store
        .remove_security_key(u.id, one.id, &Effects::default(), &Effects::default())
        .await
        .unwrap();
    assert_eq!(removed, KeyRemoved::Removed);
    // Someone else's key is not found.
    let theirs = store
        .remove_security_key(v.id, two.id, &Effects::default(), &Effects::default())
        .await
        .unwrap();
    assert_eq!(theirs, KeyRemoved::NotFound);
    let last = store
        .remove_security_key(u.id, two.id, &Effects::default(), &Effects::default())
        .await
        .unwrap();
    assert_eq!(last, KeyRemoved::TwoFactorOff);
    let status = store.two_factor_status(u.id, T0).await.unwrap();
    assert_eq!(
        (status.enabled_at, status.recovery_codes_remaining),
        (None, 0)
    );
    // The paper key went with it.
    assert!(
        !store
            .disable_with_paper_key(u.id, &[42; 32], &Effects::default())
            .await
            .unwrap()
    );
}

async fn a_counter_is_accepted_once_and_only_rising(store: Arc<dyn Store>, _: String) {
    let (_, u) = signup(&store, "counter@example.com").await;
    let k = key(&u, 3);
    store
        .add_security_key(&k, None, &Effects::default())
        .await
        .unwrap();
    let used = |counter: u32| KeyUse {
        key: k.id,
        user: u.id,
        counter,
        credential: format!("{{\"counter\":{counter}}}"),
        now: T0.plus_secs(60),
    };
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (store, used, u) = (Arc::clone(&store), used(5), u.clone());
            tokio::spawn(async move {
                let s = session(&u, T0.plus_secs(3600));
                store
                    .sign_in_with_key(&used, (&s, &Token::generate().hash()), &Effects::default())
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut accepted = 0;
    for t in tasks {
        if t.await.unwrap() {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 1, "one counter value, one sign-in");
    let s = session(&u, T0.plus_secs(3600));
    for lower in [5, 4] {
        let token = Token::generate().hash();
        assert!(
            !store
                .sign_in_with_key(&used(lower), (&s, &token), &Effects::default())
                .await
                .unwrap()
        );
    }
    let stored = store.find_security_key(&[3; 16]).await.unwrap().unwrap();
    assert_eq!(stored.sign_count, 5);
    assert_eq!(stored.last_used_at, Some(T0.plus_secs(60)));
    assert_eq!(stored.credential, "{\"counter\":5}");
    let token = Token::generate().hash();
    assert!(
        store
            .sign_in_with_key(&used(6), (&s, &token), &Effects::default())
            .await
            .unwrap()
    );
}
