//! Races: a revocation against the key's uses (once it is acknowledged, no use succeeds),
//! and concurrent creations (each its own key, each audited and emailed).

use crate::helpers::{ResponseExt, TestApp};
use reqwest::StatusCode;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

backend_tests!(
    after_a_revocation_is_acknowledged_no_use_succeeds,
    concurrent_creations_make_distinct_keys,
);

async fn after_a_revocation_is_acknowledged_no_use_succeeds(app: TestApp) {
    let owner = app.signed_in("owner@example.com").await;
    for _ in 0..3 {
        let (key, id) = app.new_key(&owner, &["users:read"], &[]).await;
        let acknowledged = Arc::new(AtomicBool::new(false));
        let mut users = Vec::new();
        for _ in 0..4 {
            let (api, key, acknowledged) = (app.api(), key.clone(), Arc::clone(&acknowledged));
            users.push(tokio::spawn(async move {
                // (started after the acknowledgement, status)
                let mut seen = Vec::new();
                for _ in 0..15 {
                    let after = acknowledged.load(Ordering::SeqCst);
                    let status = api.users(&key).await.status();
                    seen.push((after, status));
                }
                seen
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert_eq!(
            app.revoke_key(&owner, &id).await.status(),
            StatusCode::NO_CONTENT
        );
        acknowledged.store(true, Ordering::SeqCst);
        for user in users {
            for (after, status) in user.await.unwrap() {
                // Refused: as revoked, or, once its failures add up, for the address.
                let refused = [StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS];
                if after {
                    assert!(
                        refused.contains(&status),
                        "a use after the revocation answered {status}"
                    );
                } else {
                    assert!(
                        status == StatusCode::OK || refused.contains(&status),
                        "{status}"
                    );
                }
            }
        }
        assert_ne!(app.users(&key).await.status(), StatusCode::OK);
    }
}

async fn concurrent_creations_make_distinct_keys(app: TestApp) {
    let owner = app.signed_in("owner@example.com").await;
    let mut creations = Vec::new();
    for i in 0..8 {
        let (api, owner) = (app.api(), owner.clone());
        creations.push(tokio::spawn(async move {
            let body = json!({"label": format!("Key {i}"), "grants": ["users:read"]});
            let response = api
                .post("/api/v1/account/api-keys", body, Some(&owner))
                .await;
            assert_eq!(response.status(), StatusCode::CREATED);
            response.body().await["key"].as_str().unwrap().to_owned()
        }));
    }
    let mut keys = Vec::new();
    for creation in creations {
        keys.push(creation.await.unwrap());
    }
    let mut unique = keys.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 8);
    for key in &keys {
        assert_eq!(app.users(key).await.status(), StatusCode::OK);
    }
    assert_eq!(
        app.keys(&owner)
            .await
            .body()
            .await
            .as_array()
            .unwrap()
            .len(),
        8
    );
    assert_eq!(
        app.emails_of_kind("owner@example.com", "api_key_created")
            .await,
        8
    );
}
