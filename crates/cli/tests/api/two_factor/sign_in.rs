//! The second step of sign-in: TOTP and recovery codes, replays, the challenge's and the
//! user's locks, malformed codes, and races.

use crate::helpers::{PASSWORD, ResponseExt, TestApp, assert_error};
use reqwest::StatusCode;
use serde_json::json;

backend_tests!(
    sign_in_asks_for_a_totp_code_after_the_password,
    a_replayed_totp_code_is_refused,
    a_recovery_code_works_once,
    a_challenge_dies_after_five_wrong_codes_or_ten_minutes,
    ten_wrong_codes_lock_the_second_step_for_fifteen_minutes,
    malformed_codes_are_422_and_do_not_count,
    one_totp_code_signs_in_once_under_a_race,
    one_recovery_code_signs_in_once_under_a_race,
);

async fn sign_in_asks_for_a_totp_code_after_the_password(app: TestApp) {
    let Some((_, factor)) = app.user_with_2fa("totp@example.com").await else {
        return;
    };
    let body = app.login("totp@example.com", PASSWORD).await.body().await;
    assert_eq!(body["status"], "two_factor_required");
    assert_eq!(body["methods"], json!(["totp", "recovery_code"]));
    assert!(
        body.get("session_token").is_none(),
        "no session before the code"
    );
    let challenge = body["challenge_token"].as_str().unwrap();
    // A code from the previous step is still accepted (window t-1).
    app.clock.advance(30);
    let code = app.totp_at(&factor, -30);
    let response = app.verify(challenge, &code).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.body().await;
    assert_eq!(body["status"], "authenticated");
    assert_eq!(body["method_used"], "totp");
    assert_eq!(body["user"]["two_factor_enabled"], true);
    let token = body["session_token"].as_str().unwrap();
    assert_eq!(app.me(token).await.status(), 200);
    // The challenge is spent.
    let again = app.totp_at(&factor, 30);
    let response = app.verify(challenge, &again).await;
    assert_error(response, StatusCode::UNAUTHORIZED, "challenge_expired").await;
}

async fn a_replayed_totp_code_is_refused(app: TestApp) {
    let Some((_, factor)) = app.user_with_2fa("replay@example.com").await else {
        return;
    };
    let code = app.totp(&factor);
    let first = app.two_factor_challenge("replay@example.com").await;
    assert_eq!(app.verify(&first, &code).await.status(), 200);
    let second = app.two_factor_challenge("replay@example.com").await;
    let body = assert_error(
        app.verify(&second, &code).await,
        StatusCode::UNAUTHORIZED,
        "invalid_code",
    )
    .await;
    assert_eq!(body["error"]["attempts_remaining"], 4);
    // An older step than the last accepted one is a replay too.
    let older = app.totp_at(&factor, -30);
    assert_eq!(app.verify(&second, &older).await.status(), 401);
    // The next step works.
    app.clock.advance(30);
    let next = app.totp(&factor);
    assert_eq!(app.verify(&second, &next).await.status(), 200);
}

async fn a_recovery_code_works_once(app: TestApp) {
    let Some((_, factor)) = app.user_with_2fa("rc@example.com").await else {
        return;
    };
    let codes = &factor.recovery_codes;
    let typed = format!(" {} ", codes[3].to_uppercase().replace('-', " "));
    let c = app.two_factor_challenge("rc@example.com").await;
    let response = app.verify(&c, &typed).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.body().await;
    assert_eq!(body["method_used"], "recovery_code");
    assert_eq!(body["recovery_codes_remaining"], 9);
    let token = body["session_token"].as_str().unwrap();
    let me = app.me(token).await.body().await;
    assert_eq!(me["two_factor"]["recovery_codes_remaining"], 9);
    let c = app.two_factor_challenge("rc@example.com").await;
    assert_error(
        app.verify(&c, &codes[3]).await,
        StatusCode::UNAUTHORIZED,
        "invalid_code",
    )
    .await;
    assert_eq!(app.verify(&c, &codes[4]).await.status(), 200);
    assert!(app.emailed("recovery_code_used").await);
}

async fn a_challenge_dies_after_five_wrong_codes_or_ten_minutes(app: TestApp) {
    let Some((_, factor)) = app.user_with_2fa("dies@example.com").await else {
        return;
    };
    let c = app.two_factor_challenge("dies@example.com").await;
    for remaining in (0..5).rev() {
        let body = assert_error(
            app.verify(&c, "aaaaa-aaaaa").await,
            StatusCode::UNAUTHORIZED,
            "invalid_code",
        )
        .await;
        assert_eq!(body["error"]["attempts_remaining"], remaining);
    }
    let code = app.totp(&factor);
    let response = app.verify(&c, &code).await;
    assert_error(response, StatusCode::UNAUTHORIZED, "challenge_expired").await;

    let c = app.two_factor_challenge("dies@example.com").await;
    app.clock.advance(600);
    let code = app.totp(&factor);
    let response = app.verify(&c, &code).await;
    assert_error(response, StatusCode::UNAUTHORIZED, "challenge_expired").await;
    // The password again, and the code works.
    let c = app.two_factor_challenge("dies@example.com").await;
    assert_eq!(app.verify(&c, &code).await.status(), 200);
}

async fn ten_wrong_codes_lock_the_second_step_for_fifteen_minutes(app: TestApp) {
    let Some((_, factor)) = app.user_with_2fa("lock2@example.com").await else {
        return;
    };
    for _ in 0..2 {
        let c = app.two_factor_challenge("lock2@example.com").await;
        for _ in 0..5 {
            assert_eq!(app.verify(&c, "000000").await.status(), 401);
        }
    }
    let c = app.two_factor_challenge("lock2@example.com").await;
    let response = app.verify(&c, &app.totp(&factor)).await;
    assert_eq!(response.headers()["retry-after"], "900");
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    assert_eq!(
        app.verify(&c, &factor.recovery_codes[0]).await.status(),
        429,
        "recovery codes too"
    );
    assert!(app.emailed("second_step_locked").await);
    app.clock.advance(900);
    let c = app.two_factor_challenge("lock2@example.com").await;
    assert_eq!(app.verify(&c, &app.totp(&factor)).await.status(), 200);
}

async fn malformed_codes_are_422_and_do_not_count(app: TestApp) {
    let Some((_, factor)) = app.user_with_2fa("bad@example.com").await else {
        return;
    };
    let c = app.two_factor_challenge("bad@example.com").await;
    for bad in [
        "",
        "12345",
        "1234567",
        "12345a",
        "١٢٣٤٥٦",
        "abcde-fgh1",
        "💥",
        "0x1234",
    ] {
        let body = assert_error(
            app.verify(&c, bad).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
        )
        .await;
        assert_eq!(body["error"]["field"], "code", "{bad:?}");
    }
    let not_a_string = json!({ "challenge_token": c, "code": 123456 });
    let response = app.verify_with(&not_a_string, &[]).await;
    assert_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    )
    .await;
    let response = app.verify("no-such-challenge", "123456").await;
    assert_error(response, StatusCode::UNAUTHORIZED, "challenge_expired").await;
    // None of that counted: spaces and dashes are fine, and the challenge is whole.
    let code = app.totp(&factor);
    let typed = format!("{} {}", &code[..3], &code[3..]);
    assert_eq!(app.verify(&c, &typed).await.status(), 200);
}

async fn one_totp_code_signs_in_once_under_a_race(app: TestApp) {
    let Some((_, factor)) = app.user_with_2fa("race2@example.com").await else {
        return;
    };
    let challenges = fifty_challenges(&app, "race2@example.com").await;
    let successes = race(&app, challenges, app.totp(&factor)).await;
    assert_eq!(successes, 1, "one code, one sign-in");
}

async fn one_recovery_code_signs_in_once_under_a_race(app: TestApp) {
    let Some((_, factor)) = app.user_with_2fa("race3@example.com").await else {
        return;
    };
    let challenges = fifty_challenges(&app, "race3@example.com").await;
    let successes = race(&app, challenges, factor.recovery_codes[0].clone()).await;
    assert_eq!(successes, 1, "one recovery code, one sign-in");
}

async fn fifty_challenges(app: &TestApp, email: &str) -> Vec<String> {
    let mut challenges = Vec::new();
    for _ in 0..50 {
        challenges.push(app.two_factor_challenge(email).await);
    }
    challenges
}

/// Sends `code` to every challenge at once; counts the sign-ins.
async fn race(app: &TestApp, challenges: Vec<String>, code: String) -> usize {
    let tasks: Vec<_> = challenges
        .into_iter()
        .map(|c| {
            let api = app.api();
            let code = code.clone();
            tokio::spawn(async move { api.verify(&c, &code).await.status() })
        })
        .collect();
    let mut successes = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::OK => successes += 1,
            // Refused as spent, or turned away by the per-user lock, which counts the
            // attempts in flight.
            StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other}"),
        }
    }
    successes
}
