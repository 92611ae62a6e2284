//! The master-key guard's storage (`KeyStore`): the first check recorded wins, and
//! re-sealing is all or nothing, once per expected fingerprint.

use super::*;
use tessera_core::keys::{KeyCheck, Resealed, SealedKind, SealedRow};

conformance!(
    the_first_key_check_recorded_wins,
    resealing_replaces_every_sealed_value_or_none,
    of_two_concurrent_rotations_one_wins,
);

fn check(fingerprint: u8) -> KeyCheck {
    KeyCheck {
        fingerprint: vec![fingerprint; 32],
        mac_keys_sealed: vec![fingerprint; 80],
        created_at: T0,
        rotated_at: None,
    }
}

async fn the_first_key_check_recorded_wins(store: Arc<dyn Store>, _: String) {
    assert!(store.key_check().await.unwrap().is_none());
    let (one, two) = (check(1), check(2));
    let (a, b) = tokio::join!(store.record_key_check(&one), store.record_key_check(&two));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a, b, "both instances see the same check");
    assert_eq!(store.key_check().await.unwrap(), Some(a));
}

/// A user with a sealed TOTP secret, a queued email, and the team's SSO client secret and a
/// pending SSO sign-in.
async fn sealed_values(store: &Arc<dyn Store>) -> Vec<SealedRow> {
    let u = with_enrollment(store, "sealed@example.com").await;
    let connection = tessera_core::sso::SsoConnection {
        account_id: u.account_id,
        issuer: "https://id.example.com".into(),
        client_id: "tessera".into(),
        client_secret_sealed: vec![5; 40],
        email_domains: vec!["example.com".into()],
        jit_provisioning: false,
        updated_at: T0,
    };
    store
        .save_sso_connection(
            &connection,
            tessera_core::model::SsoTwoFactor::Exempt,
            &Effects::default(),
        )
        .await
        .unwrap();
    let pending = tessera_core::sso::PendingSsoLogin {
        id: uuid::Uuid::now_v7().to_string(),
        state: Token::generate().hash(),
        account_id: u.account_id,
        issuer: connection.issuer.clone(),
        secrets_sealed: vec![6; 40],
        browser_bound: true,
        created_at: T0,
        expires_at: T0.plus_secs(600),
    };
    store.create_sso_login(&pending).await.unwrap();
    let email = SealedEmail {
        id: uuid::Uuid::now_v7(),
        kind: "password_locked",
        recipient: "sealed@example.com".into(),
        payload: vec![9; 40],
        priority: tessera_core::mail::Priority::Notice,
        created_at: T0,
    };
    store
        .record(&Effects::default().and_email(email))
        .await
        .unwrap();
    let sample = store.sample_sealed(10).await.unwrap();
    assert!(
        sample
            .iter()
            .any(|r| r.kind == SealedKind::TotpEnrollment && r.id == u.id.to_string())
    );
    assert!(sample.iter().any(|r| r.kind == SealedKind::Outbox));
    assert!(
        sample
            .iter()
            .any(|r| r.kind == SealedKind::SsoClientSecret && r.id == u.account_id.to_string())
    );
    assert!(
        sample
            .iter()
            .any(|r| r.kind == SealedKind::SsoLogin && r.id == pending.id)
    );
    sample
}

async fn resealing_replaces_every_sealed_value_or_none(store: Arc<dyn Store>, _: String) {
    store.record_key_check(&check(1)).await.unwrap();
    let before = sealed_values(&store).await;
    // A value that does not open: nothing changes, not even the ones before it.
    let mut seen = 0;
    let refused = store
        .reseal_all(&[1; 32], &check(2), &mut |row| {
            seen += 1;
            (seen < 2).then(|| [row.sealed.as_slice(), b"-new"].concat())
        })
        .await
        .unwrap();
    assert!(
        matches!(refused, Resealed::Unreadable { .. }),
        "{refused:?}"
    );
    let unchanged = store.sample_sealed(10).await.unwrap();
    for row in &before {
        assert!(
            unchanged
                .iter()
                .any(|r| r.id == row.id && r.sealed == row.sealed)
        );
    }
    assert_eq!(store.key_check().await.unwrap(), Some(check(1)));
    // Every value opens: all are replaced, and the check with them.
    let done = store
        .reseal_all(&[1; 32], &check(2), &mut |row| {
            Some([row.sealed.as_slice(), b"-new"].concat())
        })
        .await
        .unwrap();
    assert_eq!(
        done,
        Resealed::Done {
            rows: before.len() as u64
        }
    );
    let after = store.sample_sealed(10).await.unwrap();
    for row in &before {
        let expected = [row.sealed.as_slice(), b"-new"].concat();
        assert!(after.iter().any(|r| r.id == row.id && r.sealed == expected));
    }
    assert_eq!(
        store.key_check().await.unwrap().unwrap().fingerprint,
        vec![2; 32]
    );
}

async fn of_two_concurrent_rotations_one_wins(store: Arc<dyn Store>, _: String) {
    store.record_key_check(&check(1)).await.unwrap();
    sealed_values(&store).await;
    let rotate = |to: u8| {
        let store = Arc::clone(&store);
        async move {
            let mut next = check(to);
            next.rotated_at = Some(T0);
            store
                .reseal_all(&[1; 32], &next, &mut |row| Some(row.sealed.clone()))
                .await
                .unwrap()
        }
    };
    let (a, b) = tokio::join!(tokio::spawn(rotate(2)), tokio::spawn(rotate(3)));
    let outcomes = [a.unwrap(), b.unwrap()];
    let won = outcomes
        .iter()
        .filter(|o| matches!(o, Resealed::Done { .. }))
        .count();
    assert_eq!(won, 1, "{outcomes:?}");
    assert!(outcomes.contains(&Resealed::CheckChanged), "{outcomes:?}");
}
