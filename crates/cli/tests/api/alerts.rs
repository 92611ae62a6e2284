//! Security alerts by email (SPEC §9, F11): a replayed code, a sign-in left unfinished, a
//! sign-in from a new device; each at most once an hour per user and kind, read from the
//! real SMTP server, and none for a sign-in that went as it should.

use crate::helpers::{ResponseExt, SecondFactor, TestApp, assert_error};
use crate::smtp::SmtpSink;
use reqwest::StatusCode;
use serde_json::{Value, json};

backend_tests!(
    a_replayed_code_is_refused_recorded_and_alerted_once_an_hour,
    racing_replays_send_one_alert,
    a_sign_in_killed_by_wrong_codes_or_left_to_expire_is_alerted_once_an_hour,
    the_periodic_sweep_tells_about_each_expired_sign_in_once,
    a_sign_in_from_a_new_device_is_alerted_once_an_hour,
    a_sign_in_that_went_as_it_should_alerts_nothing,
);

const EMAIL: &str = "ada@example.com";
const LAPTOP: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0";
const PHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 \
                     (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";
const HOUR: i64 = 3600;

/// The app sending email to a real SMTP server, and Ada with 2FA (`None` without the
/// tools, outside CI).
async fn ada_with_smtp(app: TestApp) -> Option<(TestApp, SmtpSink, SecondFactor)> {
    let sink = SmtpSink::start().await?;
    let mut app = app;
    app.use_smtp(&sink).await;
    let (_, factor) = app.user_with_2fa(EMAIL).await?;
    Some((app, sink, factor))
}

/// A sign-in with the password from `user_agent` holding `device`: its challenge token.
async fn challenge_from(app: &TestApp, user_agent: &str, device: Option<&str>) -> String {
    let body = app.login_as(EMAIL, user_agent, device).await.body().await;
    assert_eq!(body["status"], "two_factor_required", "{body}");
    body["challenge_token"].as_str().unwrap().to_owned()
}

/// A code of a step not used yet (the clock moves a step first).
fn fresh_code(app: &TestApp, factor: &SecondFactor) -> String {
    app.clock.advance(30);
    app.totp(factor)
}

/// Answers a challenge from `user_agent` with `code`, which must be right: the answer.
async fn answered(app: &TestApp, user_agent: &str, challenge: &str, code: &str) -> Value {
    let response = app.verify_as(user_agent, challenge, code).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.body().await
}

/// A session of Ada's, signed in from her known device.
async fn session(app: &TestApp, factor: &SecondFactor) -> String {
    let challenge = app.two_factor_challenge(EMAIL).await;
    let code = fresh_code(app, factor);
    let body = app.verify(&challenge, &code).await.body().await;
    body["session_token"].as_str().unwrap().to_owned()
}

/// The details of the events of this kind, newest first.
async fn events_of(app: &TestApp, token: &str, kind: &str) -> Vec<Value> {
    let body = app.events(token, "limit=100").await.body().await;
    body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .map(|e| e["detail"].clone())
        .collect()
}

async fn a_replayed_code_is_refused_recorded_and_alerted_once_an_hour(app: TestApp) {
    let Some((app, _sink, factor)) = ada_with_smtp(app).await else {
        return;
    };
    let code = app.totp(&factor);
    let first = challenge_from(&app, LAPTOP, None).await;
    answered(&app, LAPTOP, &first, &code).await;
    assert_eq!(app.emails_of_kind(EMAIL, "code_replayed").await, 0);

    let second = challenge_from(&app, LAPTOP, None).await;
    for _ in 0..2 {
        let refused = app.verify_as(LAPTOP, &second, &code).await;
        assert_error(refused, StatusCode::UNAUTHORIZED, "invalid_code").await;
    }
    // Told apart in the log (F11), and emailed once.
    let token = session(&app, &factor).await;
    let replays = events_of(&app, &token, "totp_replay_refused").await;
    assert_eq!(replays.len(), 2);
    assert_eq!(replays[0], json!({"method": "totp", "reason": "replayed"}));
    assert_eq!(app.emails_of_kind(EMAIL, "code_replayed").await, 1);
    let mail = app.mail_containing(EMAIL, "had already been used").await;
    assert_eq!(
        mail.subject,
        "A used Tessera sign-in code was entered again"
    );
    assert!(mail.text.contains("IP address: 127.0.0.1"), "{}", mail.text);
    assert!(
        mail.text.contains("Browser: Firefox 140 on Linux"),
        "{}",
        mail.text
    );

    // An hour later, a replay is emailed again.
    app.clock.advance(HOUR);
    let code = fresh_code(&app, &factor);
    let third = challenge_from(&app, LAPTOP, None).await;
    answered(&app, LAPTOP, &third, &code).await;
    let fourth = challenge_from(&app, LAPTOP, None).await;
    assert_eq!(app.verify_as(LAPTOP, &fourth, &code).await.status(), 401);
    assert_eq!(app.emails_of_kind(EMAIL, "code_replayed").await, 2);
}

async fn racing_replays_send_one_alert(app: TestApp) {
    let Some((app, _sink, factor)) = ada_with_smtp(app).await else {
        return;
    };
    let code = app.totp(&factor);
    let first = challenge_from(&app, LAPTOP, None).await;
    answered(&app, LAPTOP, &first, &code).await;
    let mut challenges = Vec::new();
    for _ in 0..6 {
        challenges.push(challenge_from(&app, LAPTOP, None).await);
    }
    let racing: Vec<_> = challenges
        .into_iter()
        .map(|challenge| {
            let (api, code) = (app.api(), code.clone());
            tokio::spawn(async move { api.verify(&challenge, &code).await.status() })
        })
        .collect();
    for task in racing {
        assert_eq!(task.await.unwrap(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(app.emails_of_kind(EMAIL, "code_replayed").await, 1);
}

async fn a_sign_in_killed_by_wrong_codes_or_left_to_expire_is_alerted_once_an_hour(app: TestApp) {
    let Some((app, _sink, factor)) = ada_with_smtp(app).await else {
        return;
    };
    // Five wrong codes kill the challenge: the password was right, the sign-in unfinished.
    let challenge = challenge_from(&app, LAPTOP, None).await;
    let right = [-30, 0, 30].map(|offset| app.totp_at(&factor, offset));
    let wrong = ["000000", "111111", "222222", "333333"]
        .into_iter()
        .find(|c| !right.contains(&(*c).to_owned()))
        .unwrap();
    for left in (0..5).rev() {
        let body = assert_error(
            app.verify_as(LAPTOP, &challenge, wrong).await,
            StatusCode::UNAUTHORIZED,
            "invalid_code",
        )
        .await;
        assert_eq!(body["error"]["attempts_remaining"], left);
        if left > 0 {
            assert_eq!(app.emails_of_kind(EMAIL, "unfinished_sign_in").await, 0);
        }
    }
    assert_eq!(app.emails_of_kind(EMAIL, "unfinished_sign_in").await, 1);
    let mail = app
        .mail_containing(EMAIL, "did not give the second factor")
        .await;
    assert_eq!(
        mail.subject,
        "Someone entered your Tessera password but did not finish signing in"
    );
    assert!(mail.text.contains("When: "), "{}", mail.text);
    assert!(mail.text.contains("IP address: 127.0.0.1"), "{}", mail.text);
    assert!(
        mail.text.contains("Browser: Firefox 140 on Linux"),
        "{}",
        mail.text
    );

    // A sign-in left to expire, seen when Ada signs in again: recorded, not emailed again
    // within the hour.
    challenge_from(&app, PHONE, None).await;
    app.clock.advance(601);
    let token = session(&app, &factor).await;
    let unfinished = events_of(&app, &token, "sign_in_unfinished").await;
    let reasons: Vec<_> = unfinished.iter().map(|d| d["reason"].clone()).collect();
    assert_eq!(reasons, [json!("expired"), json!("too_many_wrong_codes")]);
    assert_eq!(app.emails_of_kind(EMAIL, "unfinished_sign_in").await, 1);

    // An hour on, the next one is emailed, with where it came from.
    app.clock.advance(HOUR);
    challenge_from(&app, PHONE, None).await;
    app.clock.advance(601);
    session(&app, &factor).await;
    assert_eq!(app.emails_of_kind(EMAIL, "unfinished_sign_in").await, 2);
    let mail = app.mail_containing(EMAIL, "Safari 18 on iPhone").await;
    assert!(mail.text.contains("did not give the second factor"));
}

async fn the_periodic_sweep_tells_about_each_expired_sign_in_once(app: TestApp) {
    let Some((app, _sink, factor)) = ada_with_smtp(app).await else {
        return;
    };
    if app.user_with_2fa("grace@example.com").await.is_none() {
        return;
    }
    challenge_from(&app, LAPTOP, None).await;
    challenge_from(&app, PHONE, None).await;
    let grace = app.login_as("grace@example.com", LAPTOP, None).await;
    assert_eq!(grace.body().await["status"], "two_factor_required");
    // Not expired yet: nothing to tell.
    assert_eq!(
        app.core()
            .await
            .second_step
            .sweep_unfinished()
            .await
            .unwrap(),
        0
    );

    // Two instances sweep at once: each challenge is ended and told about once.
    app.clock.advance(601);
    let (one, two) = (app.core().await, app.core().await);
    let (a, b) = tokio::join!(
        one.second_step.sweep_unfinished(),
        two.second_step.sweep_unfinished()
    );
    // (The app's own sweep may have come first: what was told is what counts.)
    a.unwrap();
    b.unwrap();
    assert_eq!(
        app.core()
            .await
            .second_step
            .sweep_unfinished()
            .await
            .unwrap(),
        0
    );
    assert_eq!(app.emails_of_kind(EMAIL, "unfinished_sign_in").await, 1);
    let to_grace = app
        .emails_of_kind("grace@example.com", "unfinished_sign_in")
        .await;
    assert_eq!(to_grace, 1);
    let token = session(&app, &factor).await;
    assert_eq!(events_of(&app, &token, "sign_in_unfinished").await.len(), 2);
    let mail = app
        .mail_containing("grace@example.com", "did not give the second factor")
        .await;
    assert!(mail.text.contains("Firefox 140 on Linux"), "{}", mail.text);
}

async fn a_sign_in_from_a_new_device_is_alerted_once_an_hour(app: TestApp) {
    let Some((app, _sink, factor)) = ada_with_smtp(app).await else {
        return;
    };
    // From the known device (where Ada signed up): no alert, no new token.
    let known = session(&app, &factor).await;
    assert_eq!(app.emails_of_kind(EMAIL, "new_sign_in").await, 0);

    // From a phone never used: a token for it, an event, an email.
    let challenge = challenge_from(&app, PHONE, None).await;
    let code = fresh_code(&app, &factor);
    let done = answered(&app, PHONE, &challenge, &code).await;
    let phone = done["device_token"].as_str().unwrap().to_owned();
    assert_eq!(app.emails_of_kind(EMAIL, "new_sign_in").await, 1);
    let mail = app
        .mail_containing(EMAIL, "had not been used from before")
        .await;
    assert_eq!(mail.subject, "New sign-in to your Tessera account");
    assert!(
        mail.text.contains("Browser: Safari 18 on iPhone"),
        "{}",
        mail.text
    );
    assert!(mail.text.contains("IP address: 127.0.0.1"), "{}", mail.text);

    // The phone again: known now. A laptop within the hour: recorded, not emailed.
    let challenge = challenge_from(&app, PHONE, Some(&phone)).await;
    let code = fresh_code(&app, &factor);
    assert_eq!(
        answered(&app, PHONE, &challenge, &code).await["device_token"],
        Value::Null
    );
    let challenge = challenge_from(&app, LAPTOP, None).await;
    let code = fresh_code(&app, &factor);
    answered(&app, LAPTOP, &challenge, &code).await;
    assert_eq!(app.emails_of_kind(EMAIL, "new_sign_in").await, 1);
    let new = events_of(&app, &known, "new_device_sign_in").await;
    assert_eq!(new.len(), 2);
    assert_eq!(new[0]["user_agent"], LAPTOP);

    // An hour on, another new browser is emailed.
    app.clock.advance(HOUR);
    let challenge = challenge_from(&app, "Another browser/1.0", None).await;
    let code = fresh_code(&app, &factor);
    answered(&app, "Another browser/1.0", &challenge, &code).await;
    assert_eq!(app.emails_of_kind(EMAIL, "new_sign_in").await, 2);

    // A user without 2FA gets the device code instead, not this alert.
    app.signed_up("grace@example.com").await;
    let body = app
        .login_as("grace@example.com", PHONE, None)
        .await
        .body()
        .await;
    assert_eq!(body["status"], "device_verification_required");
    app.verify_device("grace@example.com", &body).await;
    assert_eq!(
        app.emails_of_kind("grace@example.com", "new_sign_in").await,
        0
    );
}

async fn a_sign_in_that_went_as_it_should_alerts_nothing(app: TestApp) {
    let Some((app, _sink, factor)) = ada_with_smtp(app).await else {
        return;
    };
    let token = session(&app, &factor).await;
    session(&app, &factor).await;
    app.clock.advance(601);
    assert_eq!(
        app.core()
            .await
            .second_step
            .sweep_unfinished()
            .await
            .unwrap(),
        0
    );
    session(&app, &factor).await;
    for kind in ["unfinished_sign_in", "code_replayed", "new_sign_in"] {
        assert_eq!(app.emails_of_kind(EMAIL, kind).await, 0, "{kind}");
    }
    assert!(
        events_of(&app, &token, "sign_in_unfinished")
            .await
            .is_empty()
    );
    assert!(
        events_of(&app, &token, "totp_replay_refused")
            .await
            .is_empty()
    );
}
