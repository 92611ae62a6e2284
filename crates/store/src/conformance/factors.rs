//! Second factors: TOTP setup and turning 2FA off (`TotpStore`, `FactorStore`).

use super::*;

conformance!(
    a_pending_setup_activates_once,
    disabling_two_factor_removes_every_factor,
);

async fn a_pending_setup_activates_once(store: Arc<dyn Store>, _: String) {
    let u = with_enrollment(&store, "once@example.com").await;
    let status = store.two_factor_status(u.id, T0).await.unwrap();
    assert_eq!(status.pending_until, Some(T0.plus_secs(1800)));
    assert!(
        store
            .two_factor_status(u.id, T0.plus_secs(1800))
            .await
            .unwrap()
            .pending_until
            .is_none()
    );
    let codes: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 32]).collect();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (store, codes) = (Arc::clone(&store), codes.clone());
            tokio::spawn(async move {
                store
                    .activate_totp(
                        u.id,
                        &[7; 60],
                        T0.plus_secs(5),
                        100,
                        &codes,
                        &Effects::default(),
                    )
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut activated = 0;
    for t in tasks {
        if t.await.unwrap() == Activation::Activated {
            activated += 1;
        }
    }
    assert_eq!(activated, 1);
    let status = store.two_factor_status(u.id, T0).await.unwrap();
    assert_eq!(
        (status.recovery_codes_remaining, status.pending_until),
        (10, None)
    );
    assert_eq!(status.enabled_at, Some(T0.plus_secs(5)));
    let factor = store.get_totp_factor(u.id).await.unwrap().unwrap();
    assert_eq!((factor.last_step, factor.secret_sealed), (100, vec![7; 60]));
    // Only the setup the code was checked against activates (not one restarted meanwhile).
    let w = with_enrollment(&store, "restarted@example.com").await;
    let other = store
        .activate_totp(w.id, &[8; 60], T0, 1, &codes, &Effects::default())
        .await
        .unwrap();
    assert_eq!(other, Activation::NoPendingSetup);
    // An expired setup never activates.
    let v = with_enrollment(&store, "late@example.com").await;
    let late = store
        .activate_totp(
            v.id,
            &[7; 60],
            T0.plus_secs(1800),
            1,
            &codes,
            &Effects::default(),
        )
        .await
        .unwrap();
    assert_eq!(late, Activation::NoPendingSetup);
}

async fn disabling_two_factor_removes_every_factor(store: Arc<dyn Store>, _: String) {
    let u = with_enrollment(&store, "gone@example.com").await;
    store
        .activate_totp(u.id, &[7; 60], T0, 1, &[vec![3; 32]], &Effects::default())
        .await
        .unwrap();
    let c = second_step::challenge_for(&store, &u).await;
    assert!(
        !store
            .disable_with_paper_key(u.id, &[0; 32], &Effects::default())
            .await
            .unwrap()
    );
    assert!(
        store
            .disable_with_paper_key(u.id, &[9; 32], &Effects::default())
            .await
            .unwrap()
    );
    assert!(store.get_totp_factor(u.id).await.unwrap().is_none());
    let status = store.two_factor_status(u.id, T0).await.unwrap();
    assert_eq!(
        (status.enabled_at, status.recovery_codes_remaining),
        (None, 0)
    );
    assert_eq!(
        second_step::attempt(&store, c, T0, None).await,
        Attempted::ChallengeGone,
        "open challenges go too"
    );
    assert!(
        !store
            .disable_two_factor(u.id, false, &Effects::default())
            .await
            .unwrap()
    );
    assert!(
        !store
            .replace_recovery_codes(u.id, &[], T0, &Effects::default())
            .await
            .unwrap()
    );
}
