//! What a key is refused for: an address outside its allowlist (IPv4, IPv6, CIDR, mapped
//! addresses), bad input when it is made, malformed keys (refused before the database), and
//! failed keys counting towards the address's limit.

use super::unknown_key;
use crate::helpers::{ResponseExt, TestApp, assert_error};
use reqwest::StatusCode;
use serde_json::json;
use tessera_core::api_keys::IpRule;

backend_tests!(
    a_key_works_only_from_its_allowed_addresses,
    bad_key_input_is_a_clear_error,
    malformed_keys_are_refused_without_counting,
    failed_keys_count_towards_the_address_limit,
);

async fn a_key_works_only_from_its_allowed_addresses(mut app: TestApp) {
    // The test's requests come through a "proxy" on 127.0.0.1 that says who the client is.
    app.reconfigure(|c| c.trusted_proxies = vec![IpRule::parse("127.0.0.1/32").unwrap()])
        .await;
    let owner = app.signed_in("owner@example.com").await;
    let (key, _) = app
        .new_key(
            &owner,
            &["users:read"],
            &["203.0.113.0/24", "2001:db8::/32"],
        )
        .await;
    let from = |ip: &'static str| users_from(app.api(), key.clone(), ip);
    for ip in [
        "203.0.113.7",
        "203.0.113.255",
        "::ffff:203.0.113.9",
        "2001:db8:5::1",
    ] {
        assert_eq!(from(ip).await.status(), StatusCode::OK, "from {ip}");
    }
    for ip in ["203.0.114.1", "198.51.100.1", "2001:db9::1", "::1"] {
        assert_error(from(ip).await, StatusCode::FORBIDDEN, "ip_not_allowed").await;
    }
    // From the proxy itself (no header): not allowed either.
    assert_error(
        app.users(&key).await,
        StatusCode::FORBIDDEN,
        "ip_not_allowed",
    )
    .await;
    // A mapped rule is an IPv4 one.
    let (mapped, _) = app
        .new_key(&owner, &["users:read"], &["::ffff:127.0.0.1"])
        .await;
    assert_eq!(app.users(&mapped).await.status(), StatusCode::OK);
    // Refusals are audited with the address that was refused.
    let events = app.account_events(&owner, "").await.body().await;
    let refused = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "api_key_refused")
        .expect("an api_key_refused event")
        .clone();
    assert_eq!(refused["detail"]["reason"], "ip_not_allowed");
    // Without trusting the proxy, its header is ignored: the client is 127.0.0.1.
    app.reconfigure(|c| c.trusted_proxies = Vec::new()).await;
    assert_error(
        users_from(app.api(), key, "203.0.113.7").await,
        StatusCode::FORBIDDEN,
        "ip_not_allowed",
    )
    .await;
}

/// `GET /account/users` with `key`, through a proxy that says the client is `ip`.
async fn users_from(api: crate::helpers::Api, key: String, ip: &str) -> reqwest::Response {
    api.client
        .get(api.url("/api/v1/account/users"))
        .bearer_auth(key)
        .header("x-forwarded-for", ip)
        .send()
        .await
        .unwrap()
}

async fn bad_key_input_is_a_clear_error(app: TestApp) {
    let owner = app.signed_in("owner@example.com").await;
    for (body, field) in [
        (json!({"label": "", "grants": ["users:read"]}), "label"),
        (json!({"label": "   ", "grants": ["users:read"]}), "label"),
        (
            json!({"label": "x".repeat(101), "grants": ["users:read"]}),
            "label",
        ),
        (
            json!({"label": "a\u{202e}b", "grants": ["users:read"]}),
            "label",
        ),
        (json!({"label": "x", "grants": []}), "grants"),
        (json!({"label": "x", "grants": ["users:delete"]}), "grants"),
        (
            json!({"label": "x", "grants": ["users:read"], "allowed_ips": ["10.0.0.0/33"]}),
            "allowed_ips",
        ),
        (
            json!({"label": "x", "grants": ["users:read"], "allowed_ips": ["::ffff:1.2.3.4/200"]}),
            "allowed_ips",
        ),
        (
            json!({"label": "x", "grants": ["users:read"], "allowed_ips": ["example.com"]}),
            "allowed_ips",
        ),
        (
            json!({"label": "x", "grants": ["users:read"], "expires_at": "2001-01-01"}),
            "expires_at",
        ),
        (
            json!({"label": "x", "grants": ["users:read"], "expires_at": "soon"}),
            "expires_at",
        ),
    ] {
        let error = assert_error(
            app.create_key(&owner, body.clone()).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
        )
        .await;
        assert_eq!(error["error"]["field"], field, "{body}");
    }
    for body in [
        json!({"grants": ["users:read"]}),
        json!({"label": "x", "grants": "users:read"}),
        json!({"label": "x", "grants": ["users:read"], "extra": 1}),
    ] {
        assert_error(
            app.create_key(&owner, body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
        )
        .await;
    }
    for id in ["not-an-id", "0190a5c8-0000-7000-8000-000000000000"] {
        assert_error(
            app.revoke_key(&owner, id).await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    }
    assert!(
        app.keys(&owner)
            .await
            .body()
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );
}

async fn malformed_keys_are_refused_without_counting(app: TestApp) {
    let owner = app.signed_in("owner@example.com").await;
    let (key, _) = app.new_key(&owner, &["users:read"], &[]).await;
    // One character changed: the checksum no longer matches.
    let mut wrong = key.clone().into_bytes();
    wrong[12] = if wrong[12] == b'a' { b'b' } else { b'a' };
    let wrong = String::from_utf8(wrong).unwrap();
    let max = tessera_core::SecurityPolicy::default().ip_max_failures;
    for i in 0..=max {
        let malformed = match i % 4 {
            0 => wrong.clone(),
            1 => "tsk_short".to_owned(),
            2 => format!("{key}x"),
            _ => format!("tsk_{}", "!".repeat(40)),
        };
        let body = assert_error(
            app.users(&malformed).await,
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
        )
        .await;
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("not a valid API key")
        );
    }
    // None of them reached the database, so none counted against the address.
    assert_error(
        app.users(&unknown_key()).await,
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
    )
    .await;
    assert_eq!(app.users(&key).await.status(), StatusCode::OK);
}

async fn failed_keys_count_towards_the_address_limit(app: TestApp) {
    let owner = app.signed_in("owner@example.com").await;
    let (key, id) = app.new_key(&owner, &["users:read"], &[]).await;
    assert_eq!(
        app.revoke_key(&owner, &id).await.status(),
        StatusCode::NO_CONTENT
    );
    let max = tessera_core::SecurityPolicy::default().ip_max_failures;
    let unknown = unknown_key();
    for i in 0..max {
        // Unknown and revoked keys alike.
        let presented = if i % 2 == 0 { &unknown } else { &key };
        assert_error(
            app.users(presented).await,
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
        )
        .await;
    }
    let response = app.users(&unknown).await;
    assert!(response.headers().contains_key("retry-after"));
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    // The same limit as failed sign-ins from the address (SPEC §3).
    assert_error(
        app.login("owner@example.com", "wrong password").await,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
    )
    .await;
}
