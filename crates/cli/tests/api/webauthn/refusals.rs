//! What a security key's answer is refused for, on both backends: a counter that does not
//! rise (a cloned key), someone else's key, an answer to another challenge, a removed key,
//! one answer raced twice, and answers that are not answers at all.

use super::Key;
use crate::helpers::{ResponseExt, TestApp, assert_error};
use reqwest::StatusCode;
use serde_json::{Value, json};

backend_tests!(
    a_counter_that_does_not_rise_is_refused_and_recorded,
    a_key_of_another_user_is_refused,
    an_assertion_for_another_challenge_is_refused,
    a_removed_key_is_refused,
    one_assertion_raced_twice_signs_in_once,
    one_passkey_assertion_raced_twice_signs_in_once,
    malformed_or_oversized_answers_are_validation_errors,
    passkey_starts_count_against_the_address_and_a_sign_in_gives_one_back,
);

async fn a_counter_that_does_not_rise_is_refused_and_recorded(app: TestApp) {
    let (token, mut key) = app.user_with_key("clone@example.com").await;
    // A copy of the key as it is now: its next signature repeats the original's next counter.
    let mut cloned = key.clone_key();
    let challenge = app.key_challenge("clone@example.com").await;
    let assertion = key.get(&challenge["webauthn_options"]);
    assert_eq!(app.verify_key(&challenge, &assertion).await.status(), 200);

    let challenge = app.key_challenge("clone@example.com").await;
    let assertion = cloned.get(&challenge["webauthn_options"]);
    let body = assert_error(
        app.verify_key(&challenge, &assertion).await,
        StatusCode::UNAUTHORIZED,
        "invalid_code",
    )
    .await;
    assert_eq!(body["error"]["attempts_remaining"], 4);
    let kinds = app.event_kinds(&token).await;
    assert!(
        kinds.contains(&"security_key_counter_refused".to_owned()),
        "{kinds:?}"
    );
    // The real key, one ahead, still works.
    let assertion = key.get(&challenge["webauthn_options"]);
    assert_eq!(app.verify_key(&challenge, &assertion).await.status(), 200);
}

async fn a_key_of_another_user_is_refused(app: TestApp) {
    app.user_with_key("alice@example.com").await;
    let (_, mut mallory) = app.user_with_key("mallory@example.com").await;
    let challenge = app.key_challenge("alice@example.com").await;
    // Mallory's key signs Alice's challenge.
    let mut options = challenge["webauthn_options"].clone();
    let id = mallory.credential_id.clone().unwrap();
    options["publicKey"]["allowCredentials"] = json!([{"type": "public-key", "id": id}]);
    let assertion = mallory.get(&options);
    let body = assert_error(
        app.verify_key(&challenge, &assertion).await,
        StatusCode::UNAUTHORIZED,
        "invalid_code",
    )
    .await;
    assert_eq!(body["error"]["attempts_remaining"], 4, "it counts");
}

async fn an_assertion_for_another_challenge_is_refused(app: TestApp) {
    let (_, mut key) = app.user_with_key("two@example.com").await;
    let first = app.key_challenge("two@example.com").await;
    let second = app.key_challenge("two@example.com").await;
    let for_first = key.get(&first["webauthn_options"]);
    assert_error(
        app.verify_key(&second, &for_first).await,
        StatusCode::UNAUTHORIZED,
        "invalid_code",
    )
    .await;
    // It still answers its own.
    assert_eq!(app.verify_key(&first, &for_first).await.status(), 200);
}

async fn a_removed_key_is_refused(app: TestApp) {
    let (token, mut old) = app.user_with_key("removed@example.com").await;
    let mut spare = Key::new(&app);
    app.register_key(&token, &mut spare, "Spare").await;
    let keys = app.security_keys(&token).await;
    let id = keys[0]["id"].as_str().unwrap();
    // Open a challenge while the old key is still registered: its options list it.
    let before = app.key_challenge("removed@example.com").await;
    let removed = app
        .delete(&format!("/api/v1/me/webauthn/{id}"), Some(&token))
        .await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    // Challenges open when a key goes end with it.
    let late = old.get(&before["webauthn_options"]);
    assert_error(
        app.verify_key(&before, &late).await,
        StatusCode::UNAUTHORIZED,
        "challenge_expired",
    )
    .await;
    // A new challenge lists only the spare key; the old one, offered anyway, is refused.
    let challenge = app.key_challenge("removed@example.com").await;
    let listed = challenge["webauthn_options"]["publicKey"]["allowCredentials"].clone();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let mut options = challenge["webauthn_options"].clone();
    let old_id = old.credential_id.clone().unwrap();
    options["publicKey"]["allowCredentials"] = json!([{"type": "public-key", "id": old_id}]);
    let assertion = old.get(&options);
    assert_error(
        app.verify_key(&challenge, &assertion).await,
        StatusCode::UNAUTHORIZED,
        "invalid_code",
    )
    .await;
    let assertion = spare.get(&challenge["webauthn_options"]);
    assert_eq!(app.verify_key(&challenge, &assertion).await.status(), 200);
}

async fn one_assertion_raced_twice_signs_in_once(app: TestApp) {
    let (_, mut key) = app.user_with_key("race@example.com").await;
    let challenge = app.key_challenge("race@example.com").await;
    let assertion = key.get(&challenge["webauthn_options"]);
    let body = json!({ "challenge_token": challenge["challenge_token"], "webauthn": assertion });
    let statuses = race(&app, "/api/v1/login/verify", body).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 401),
        "{statuses:?}"
    );
}

async fn one_passkey_assertion_raced_twice_signs_in_once(app: TestApp) {
    let (_, mut key) = app.user_with_key("race-passkey@example.com").await;
    let started = app
        .post("/api/v1/login/passkey/start", json!({}), None)
        .await
        .body()
        .await;
    let assertion = key.get_discoverable(&started["options"]);
    let body = json!({ "challenge_token": started["challenge_token"], "credential": assertion });
    let statuses = race(&app, "/api/v1/login/passkey/finish", body).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 401),
        "{statuses:?}"
    );
}

/// The same request twice at once: the statuses.
async fn race(app: &TestApp, path: &'static str, body: Value) -> Vec<u16> {
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let (api, body) = (app.api(), body.clone());
            tokio::spawn(async move { api.post(path, body, None).await.status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses
}

async fn malformed_or_oversized_answers_are_validation_errors(app: TestApp) {
    let (token, _key) = app.user_with_key("junk@example.com").await;
    let challenge = app.key_challenge("junk@example.com").await;
    let huge = "A".repeat(40 * 1024);
    for junk in [
        json!({ "id": "x" }),
        json!("not an object"),
        json!({ "id": "x", "rawId": "!!", "type": "public-key", "response": {} }),
        json!({ "id": huge, "rawId": "AA", "type": "public-key",
                "response": { "authenticatorData": "AA", "clientDataJSON": "AA", "signature": "AA" } }),
    ] {
        let response = app.verify_key(&challenge, &junk).await;
        let body = assert_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
        )
        .await;
        assert_eq!(body["error"]["field"], "webauthn", "{body}");
        let started = app
            .post("/api/v1/login/passkey/start", json!({}), None)
            .await
            .body()
            .await;
        let response = app
            .post(
                "/api/v1/login/passkey/finish",
                json!({ "challenge_token": started["challenge_token"], "credential": junk }),
                None,
            )
            .await;
        assert_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
        )
        .await;
        let response = app
            .post(
                "/api/v1/me/webauthn/register/finish",
                json!({ "name": "Junk", "credential": junk }),
                Some(&token),
            )
            .await;
        assert_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
        )
        .await;
    }
    // Junk does not count as an attempt; an unknown credential does.
    let mut stranger = Key::new(&app);
    let mut options = challenge["webauthn_options"].clone();
    let started = app
        .post(
            "/api/v1/me/webauthn/register/start",
            json!({}),
            Some(&token),
        )
        .await
        .body()
        .await;
    stranger.create(&started["options"]);
    let id = stranger.credential_id.clone().unwrap();
    options["publicKey"]["allowCredentials"] = json!([{"type": "public-key", "id": id}]);
    let unknown = stranger.get(&options);
    let body = assert_error(
        app.verify_key(&challenge, &unknown).await,
        StatusCode::UNAUTHORIZED,
        "invalid_code",
    )
    .await;
    assert_eq!(body["error"]["attempts_remaining"], 4);
    // A name with a control character is refused.
    let response = app
        .post(
            "/api/v1/me/webauthn/register/finish",
            json!({ "name": "Evil\u{202e}key", "credential": {} }),
            Some(&token),
        )
        .await;
    let body = assert_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    )
    .await;
    assert_eq!(body["error"]["field"], "name", "{body}");
}

/// Anyone may start a passkey sign-in, and each start stores a ceremony: starts count against
/// the client's address like failed sign-ins (SPEC §3), a finished sign-in gives its start
/// back, and a finish with a token that opens nothing counts too.
async fn passkey_starts_count_against_the_address_and_a_sign_in_gives_one_back(app: TestApp) {
    let (_, mut key) = app.user_with_key("starts@example.com").await;
    let max = tessera_core::SecurityPolicy::default().ip_max_failures;
    let start = || app.post("/api/v1/login/passkey/start", json!({}), None);
    let first = start().await.body().await;
    let finished = app
        .post(
            "/api/v1/login/passkey/finish",
            json!({ "challenge_token": first["challenge_token"],
                    "credential": key.get_discoverable(&first["options"]) }),
            None,
        )
        .await;
    assert_eq!(finished.status(), StatusCode::OK, "given back");
    let bogus = app
        .post(
            "/api/v1/login/passkey/finish",
            json!({ "challenge_token": "no-such-token",
                    "credential": key.get_discoverable(&first["options"]) }),
            None,
        )
        .await;
    assert_error(bogus, StatusCode::UNAUTHORIZED, "challenge_expired").await;
    for _ in 1..max {
        assert_eq!(start().await.status(), StatusCode::OK);
    }
    let refused = start().await;
    assert!(refused.headers().contains_key("retry-after"));
    assert_error(refused, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    // The same limit as failed sign-ins from the address.
    assert_error(
        app.login("starts@example.com", "wrong password").await,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
    )
    .await;
}
