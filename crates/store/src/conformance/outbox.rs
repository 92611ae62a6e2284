//! The durable outbox (`OutboxStore`).

use super::*;

conformance!(
    emails_are_queued_with_their_change,
    a_claimed_email_is_leased_to_one_worker,
    retries_wait_until_due_and_failures_stop,
    a_worker_that_lost_its_lease_cannot_settle,
    concurrent_claims_never_share_an_email,
    urgent_emails_are_claimed_before_older_bulk_ones,
);

pub(super) fn sealed(recipient: &str, at: Timestamp) -> SealedEmail {
    SealedEmail {
        id: uuid::Uuid::now_v7(),
        kind: "password_locked",
        priority: Priority::Notice,
        recipient: recipient.into(),
        payload: vec![1, 2, 3],
        created_at: at,
    }
}

async fn emails_are_queued_with_their_change(store: Arc<dyn Store>, _: String) {
    let a = account("Acme");
    let u = owner(&a, "mail@example.com");
    let effects = event(&u, EventKind::Signup).and_email(sealed("mail@example.com", T0));
    store
        .create_account_with_owner(&a, &u, "h", &effects)
        .await
        .unwrap();
    // A change that fails takes its email with it.
    let b = account("Dup");
    let v = owner(&b, "MAIL@example.com");
    let failing = event(&v, EventKind::Signup).and_email(sealed("lost@example.com", T0));
    assert!(
        store
            .create_account_with_owner(&b, &v, "h", &failing)
            .await
            .is_err()
    );

    let queued = store.list_outbox(true, 10).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].recipient, "mail@example.com");
    assert_eq!(queued[0].kind, "password_locked");
    assert_eq!(queued[0].status, OutboxStatus::Pending);
    assert_eq!(queued[0].next_attempt_at, T0);
}

async fn a_claimed_email_is_leased_to_one_worker(store: Arc<dyn Store>, _: String) {
    let email = sealed("lease@example.com", T0);
    store
        .record(&Effects::default().and_email(email.clone()))
        .await
        .unwrap();
    let (w1, w2) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let lease = T0.plus_secs(60);
    let claimed = store.claim_emails(T0, lease, w1, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!((claimed[0].id, claimed[0].attempts), (email.id, 1));
    assert_eq!(claimed[0].payload, vec![1, 2, 3]);
    assert!(
        store
            .claim_emails(T0.plus_secs(59), lease, w2, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // The lease ran out (the worker died): another worker takes over.
    let again = store
        .claim_emails(T0.plus_secs(60), T0.plus_secs(120), w2, 10)
        .await
        .unwrap();
    assert_eq!((again.len(), again[0].attempts), (1, 2));
    assert!(
        store
            .email_sent(email.id, w2, T0.plus_secs(61))
            .await
            .unwrap()
    );
    let listed = store.list_outbox(true, 10).await.unwrap();
    assert_eq!(listed[0].status, OutboxStatus::Sent);
    assert_eq!(listed[0].sent_at, Some(T0.plus_secs(61)));
    assert!(store.list_outbox(false, 10).await.unwrap().is_empty());
    assert!(
        store
            .claim_emails(T0.plus_secs(999), T0.plus_secs(9999), w1, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn retries_wait_until_due_and_failures_stop(store: Arc<dyn Store>, _: String) {
    let email = sealed("retry@example.com", T0);
    store
        .record(&Effects::default().and_email(email.clone()))
        .await
        .unwrap();
    let w = uuid::Uuid::now_v7();
    store
        .claim_emails(T0, T0.plus_secs(60), w, 1)
        .await
        .unwrap();
    assert!(
        store
            .email_retry(email.id, w, T0.plus_secs(30), "connection refused")
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_emails(T0.plus_secs(29), T0.plus_secs(90), w, 1)
            .await
            .unwrap()
            .is_empty()
    );
    let listed = store.list_outbox(false, 10).await.unwrap();
    assert_eq!(listed[0].last_error.as_deref(), Some("connection refused"));
    assert_eq!(listed[0].attempts, 1);
    let claimed = store
        .claim_emails(T0.plus_secs(30), T0.plus_secs(90), w, 1)
        .await
        .unwrap();
    assert_eq!(claimed[0].attempts, 2);
    assert!(
        store
            .email_failed(email.id, w, "550 no such user")
            .await
            .unwrap()
    );
    let listed = store.list_outbox(false, 10).await.unwrap();
    assert_eq!(listed[0].status, OutboxStatus::Failed);
    assert!(
        store
            .claim_emails(T0.plus_secs(9999), T0.plus_secs(99999), w, 1)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_worker_that_lost_its_lease_cannot_settle(store: Arc<dyn Store>, _: String) {
    let email = sealed("stale@example.com", T0);
    store
        .record(&Effects::default().and_email(email.clone()))
        .await
        .unwrap();
    let (slow, fast) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    store
        .claim_emails(T0, T0.plus_secs(10), slow, 1)
        .await
        .unwrap();
    store
        .claim_emails(T0.plus_secs(10), T0.plus_secs(20), fast, 1)
        .await
        .unwrap();
    assert!(!store.email_failed(email.id, slow, "late").await.unwrap());
    assert!(!store.email_retry(email.id, slow, T0, "late").await.unwrap());
    assert!(!store.email_sent(email.id, slow, T0).await.unwrap());
    assert!(
        store
            .email_sent(email.id, fast, T0.plus_secs(11))
            .await
            .unwrap()
    );
}

async fn concurrent_claims_never_share_an_email(store: Arc<dyn Store>, _: String) {
    let mut effects = Effects::default();
    for i in 0..40 {
        effects = effects.and_email(sealed(&format!("{i}@example.com"), T0));
    }
    store.record(&effects).await.unwrap();
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let me = uuid::Uuid::now_v7();
                let mut mine = Vec::new();
                loop {
                    let batch = store
                        .claim_emails(T0, T0.plus_secs(60), me, 3)
                        .await
                        .unwrap();
                    if batch.is_empty() {
                        break mine;
                    }
                    mine.extend(batch.into_iter().map(|e| e.id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!(
        (total, all.len()),
        (40, 40),
        "each email claimed exactly once"
    );
}

async fn urgent_emails_are_claimed_before_older_bulk_ones(store: Arc<dyn Store>, _: String) {
    let with = |priority, kind, at| SealedEmail {
        priority,
        kind,
        ..sealed("someone@example.com", at)
    };
    let mut effects = Effects::default();
    for i in 0..5 {
        effects = effects.and_email(with(Priority::Bulk, "two_factor_required", T0.plus_secs(i)));
    }
    let notice = with(Priority::Notice, "password_locked", T0.plus_secs(10));
    let code = with(Priority::Interactive, "device_code", T0.plus_secs(20));
    store
        .record(&effects.and_email(notice.clone()).and_email(code.clone()))
        .await
        .unwrap();
    let now = T0.plus_secs(30);
    let claimed = |worker| store.claim_emails(now, now.plus_secs(60), worker, 1);
    let first = claimed(uuid::Uuid::now_v7()).await.unwrap();
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].id, code.id, "the device code first");
    let second = claimed(uuid::Uuid::now_v7()).await.unwrap();
    assert_eq!(second[0].id, notice.id, "then the notice");
    let rest = store
        .claim_emails(now, now.plus_secs(60), uuid::Uuid::now_v7(), 10)
        .await
        .unwrap();
    assert_eq!(rest.len(), 5, "then the bulk, oldest first");
    assert!(rest.iter().all(|e| e.kind == "two_factor_required"));
}
