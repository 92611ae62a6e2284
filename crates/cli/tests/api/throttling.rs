//! Password throttling per email and per address (SPEC §3), and its atomicity under races.

use crate::helpers::{PASSWORD, ResponseExt, TestApp, assert_error};
use reqwest::{Response, StatusCode};
use serde_json::json;

backend_tests!(
    ten_wrong_passwords_lock_sign_in_for_fifteen_minutes,
    a_correct_password_resets_the_count,
    unknown_emails_lock_like_known_ones,
    fifty_failures_from_one_address_are_refused,
    concurrent_wrong_passwords_cannot_exceed_the_limit,
    forwarded_for_is_ignored_unless_trusted,
    concurrent_failures_from_one_address_cannot_exceed_the_limit,
);

fn retry_after(response: &Response) -> i64 {
    response
        .headers()
        .get("retry-after")
        .expect("429 carries Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn ten_wrong_passwords_lock_sign_in_for_fifteen_minutes(app: TestApp) {
    app.signed_up("lock@example.com").await;
    for attempt in 1..=10 {
        let response = app.login("lock@example.com", "wrong password").await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "attempt {attempt}"
        );
    }
    // Locked: even the right password is refused, without being checked.
    let response = app.login("lock@example.com", PASSWORD).await;
    assert_eq!(retry_after(&response), 900);
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;

    app.clock.advance(899);
    let response = app.login("lock@example.com", PASSWORD).await;
    assert_eq!(retry_after(&response), 1);
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);

    app.clock.advance(1);
    let response = app.login("lock@example.com", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let challenge = response.body().await;
    let signed_in = app.verify_device("lock@example.com", &challenge).await;
    let token = signed_in["session_token"].as_str().unwrap();
    let events = app.events(token, "").await.body().await;
    let locks = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "password_locked")
        .count();
    assert_eq!(locks, 1, "one lock, recorded once");
}

async fn a_correct_password_resets_the_count(app: TestApp) {
    app.signed_up("reset@example.com").await;
    for _ in 0..2 {
        for _ in 0..9 {
            let response = app.login("reset@example.com", "wrong password").await;
            assert_eq!(response.status(), 401);
        }
        assert_eq!(app.login("reset@example.com", PASSWORD).await.status(), 200);
    }
}

async fn unknown_emails_lock_like_known_ones(app: TestApp) {
    for _ in 0..10 {
        assert_eq!(app.login("ghost@example.com", "guess").await.status(), 401);
    }
    let response = app.login("ghost@example.com", "guess").await;
    assert_eq!(retry_after(&response), 900);
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
}

async fn fifty_failures_from_one_address_are_refused(app: TestApp) {
    app.signed_up("victim@example.com").await;
    for i in 0..50 {
        let response = app
            .login(&format!("spray{}@example.com", i % 10), "guess")
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "failure {i}");
    }
    let response = app.login("victim@example.com", PASSWORD).await;
    assert_eq!(retry_after(&response), 600);
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    app.clock.advance(600);
    assert_eq!(
        app.login("victim@example.com", PASSWORD).await.status(),
        200
    );
}

/// Sends every wrong password at once: (checked, refused).
async fn race_wrong_passwords(app: &TestApp, emails: Vec<String>) -> (usize, usize) {
    let attempts: Vec<_> = emails
        .into_iter()
        .map(|email| {
            let api = app.api();
            tokio::spawn(async move {
                let body = json!({"email": email, "password": "guess"});
                api.login_with(&body, &[]).await.status()
            })
        })
        .collect();
    let (mut checked, mut refused) = (0, 0);
    for attempt in attempts {
        match attempt.await.unwrap() {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    (checked, refused)
}

async fn concurrent_wrong_passwords_cannot_exceed_the_limit(app: TestApp) {
    app.signed_up("race@example.com").await;
    let emails = vec!["race@example.com".to_owned(); 25];
    let (checked, refused) = race_wrong_passwords(&app, emails).await;
    assert_eq!(checked, 10, "exactly ten guesses were checked");
    assert_eq!(refused, 15);
    assert_eq!(app.login("race@example.com", PASSWORD).await.status(), 429);
}

async fn forwarded_for_is_ignored_unless_trusted(app: TestApp) {
    app.signed_up("xff@example.com").await;
    let forwarded = [("x-forwarded-for", "203.0.113.9")];
    let body = json!({"email": "xff@example.com", "password": PASSWORD});
    let challenge = app.login_with(&body, &forwarded).await.body().await;
    let code = app.device_code("xff@example.com", 1).await;
    let body = json!({"challenge_token": challenge["challenge_token"], "code": code});
    let signed_in = app.verify_with(&body, &forwarded).await.body().await;
    let token = signed_in["session_token"].as_str().unwrap();
    let events = app.events(token, "limit=2").await.body().await;
    assert_eq!(events["events"][0]["ip"], "127.0.0.1");
    assert_eq!(events["events"][1]["kind"], "sign_in");
    assert_eq!(events["events"][1]["ip"], "127.0.0.1");
}

async fn concurrent_failures_from_one_address_cannot_exceed_the_limit(app: TestApp) {
    let emails = (0..60).map(|i| format!("spray{i}@example.com")).collect();
    let (checked, refused) = race_wrong_passwords(&app, emails).await;
    assert_eq!(
        (checked, refused),
        (50, 10),
        "exactly fifty guesses were checked"
    );
}
