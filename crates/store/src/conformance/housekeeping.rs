//! Housekeeping on every backend: a sweep deletes at most its batch, only rows past their
//! end.

use super::*;
use tessera_core::housekeeping::Sweep;
use tessera_core::model::SignupId;
use tessera_core::sign_up::PendingSignup;

conformance!(a_sweep_deletes_at_most_its_batch_of_rows_past_their_end);

async fn a_sweep_deletes_at_most_its_batch_of_rows_past_their_end(
    store: Arc<dyn Store>,
    _: String,
) {
    let day = 24 * 3600;
    for (i, lifetime) in [day, day, day, day, day, 3 * day].into_iter().enumerate() {
        let signup = PendingSignup {
            id: SignupId::new(),
            account_name: "Acme".into(),
            name: "Ada".into(),
            email: Email::parse(&format!("ada{i}@example.com")).unwrap(),
            password_hash: None,
            created_at: T0,
            expires_at: T0.plus_secs(lifetime),
            used_at: None,
        };
        store
            .create_signup(&signup, &Token::generate().hash(), &Effects::default())
            .await
            .unwrap();
    }
    let later = T0.plus_secs(2 * day);
    let mut batches = Vec::new();
    loop {
        let deleted = store.sweep(Sweep::SignupLinks, later, 2).await.unwrap();
        batches.push(deleted);
        if deleted == 0 {
            break;
        }
    }
    assert_eq!(batches, [2, 2, 1, 0], "five expired links, two at a time");
    let left = store
        .sweep(Sweep::SignupLinks, T0.plus_secs(4 * day), 100)
        .await
        .unwrap();
    assert_eq!(left, 1, "the link still valid was kept");
}
