//! Email codes for unrecognized devices (Mailtrap), recognized devices, and a user's own
//! sessions, through the API. (The device pages are tested in `pages::devices`.)

use crate::helpers::{ResponseExt, TestApp, assert_error};
use crate::smtp::SmtpSink;
use reqwest::StatusCode;
use serde_json::{Value, json};

backend_tests!(
    a_new_device_gets_an_emailed_code_and_is_recognized_afterwards,
    another_browser_user_or_an_expired_device_is_not_recognized,
    users_with_2fa_skip_the_email_step,
    wrong_codes_and_expiry_end_the_challenge,
    resending_honours_the_wait_and_the_hourly_limit,
    one_email_code_signs_in_once_under_a_race,
    a_resend_racing_the_answer_never_fails,
    turning_2fa_on_ends_an_open_email_code,
    devices_and_sessions_are_listed_and_revoked,
    a_verified_device_still_meets_the_teams_2fa_requirement,
);

const SUBJECT: &str = "Verify your identity to proceed with the login";

/// Signs in with the password from a browser with this User-Agent and optional device
/// token: the answer, which must be a 200.
async fn sign_in_from(app: &TestApp, email: &str, user_agent: &str, device: Option<&str>) -> Value {
    let response = app.login_as(email, user_agent, device).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.body().await
}

/// The challenge token of a sign-in's answer.
fn challenge_token(challenge: &Value) -> &str {
    challenge["challenge_token"].as_str().unwrap()
}

/// Verifies a new device from `user_agent`: (session token, device token).
async fn verified(
    app: &TestApp,
    email: &str,
    user_agent: &str,
    nth_code: usize,
) -> (String, String) {
    let challenge = sign_in_from(app, email, user_agent, None).await;
    assert_eq!(
        challenge["status"], "device_verification_required",
        "{challenge}"
    );
    let code = app.device_code(email, nth_code).await;
    let response = app
        .verify_as(user_agent, challenge_token(&challenge), &code)
        .await;
    let body = response.body().await;
    assert_eq!(body["status"], "authenticated", "{body}");
    (
        body["session_token"].as_str().unwrap().to_owned(),
        body["device_token"].as_str().unwrap().to_owned(),
    )
}

async fn a_new_device_gets_an_emailed_code_and_is_recognized_afterwards(app: TestApp) {
    let Some(sink) = SmtpSink::start().await else {
        return;
    };
    let mut app = app;
    app.use_smtp(&sink).await;
    app.signed_up("ada@example.com").await;
    let challenge = sign_in_from(&app, "ada@example.com", "Firefox/140", None).await;
    assert_eq!(challenge["status"], "device_verification_required");
    assert_eq!(challenge["methods"], json!(["email_code"]));
    assert!(challenge["expires_at"].as_str().is_some());
    assert!(challenge["resend_available_at"].as_str().is_some());

    let mail = sink.wait_for(1).await;
    assert_eq!(mail[0].subject, SUBJECT);
    assert_eq!(mail[0].to, "ada@example.com");
    let code = app.device_code("ada@example.com", 1).await;
    let response = app
        .verify_as("Firefox/140", challenge_token(&challenge), &code)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.body().await;
    assert_eq!(body["status"], "authenticated");
    assert_eq!(body["method_used"], "email_code");
    let device = body["device_token"].as_str().unwrap();
    assert_eq!(device.len(), 43, "a 256-bit token");

    // Recognized now: straight in, no second email.
    let again = sign_in_from(&app, "ada@example.com", "Firefox/140", Some(device)).await;
    assert_eq!(again["status"], "authenticated", "{again}");
    assert!(again.get("device_token").is_none());
    assert_eq!(sink.received().len(), 1);
    let token = again["session_token"].as_str().unwrap();
    let devices = app.devices(token).await.body().await;
    assert_eq!(devices.as_array().unwrap().len(), 1);
    assert_eq!(devices[0]["user_agent"], "Firefox/140");
    let events = app.events(token, "").await.body().await;
    let kinds: Vec<_> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["kind"])
        .collect();
    assert!(
        kinds.contains(&&json!("device_verified")),
        "a security event: {kinds:?}"
    );
}

/// The status of a password sign-in from `user_agent` with a device token.
async fn status_of(app: &TestApp, email: &str, user_agent: &str, device: &str) -> Value {
    sign_in_from(app, email, user_agent, Some(device)).await["status"].clone()
}

async fn another_browser_user_or_an_expired_device_is_not_recognized(app: TestApp) {
    app.signed_up("ada@example.com").await;
    app.signed_up("bob@example.com").await;
    let (_, device) = verified(&app, "ada@example.com", "Firefox/140", 1).await;
    assert_eq!(
        status_of(&app, "ada@example.com", "Firefox/140", &device).await,
        "authenticated"
    );

    let unrecognized = "device_verification_required";
    // A new browser version is a new device.
    assert_eq!(
        status_of(&app, "ada@example.com", "Firefox/141", &device).await,
        unrecognized
    );
    // Another user on the same browser and token.
    assert_eq!(
        status_of(&app, "bob@example.com", "Firefox/140", &device).await,
        unrecognized
    );
    // A token that was never issued.
    assert_eq!(
        status_of(&app, "ada@example.com", "Firefox/140", "forged").await,
        unrecognized
    );
    // Thirty days later the device has lapsed.
    app.clock.advance(30 * 24 * 3600 - 1);
    assert_eq!(
        status_of(&app, "ada@example.com", "Firefox/140", &device).await,
        "authenticated"
    );
    app.clock.advance(1);
    assert_eq!(
        status_of(&app, "ada@example.com", "Firefox/140", &device).await,
        unrecognized
    );
}

async fn users_with_2fa_skip_the_email_step(app: TestApp) {
    let Some(_) = app.user_with_2fa("totp@example.com").await else {
        return;
    };
    let sent = app.mail_to("totp@example.com", 0).await.len();
    let body = sign_in_from(&app, "totp@example.com", "Brand-new browser", None).await;
    assert_eq!(body["status"], "two_factor_required");
    assert_eq!(body["methods"], json!(["totp", "recovery_code"]));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mail = app.mail_to("totp@example.com", sent).await;
    assert!(
        mail.iter().skip(sent).all(|m| m.subject != SUBJECT),
        "no device email"
    );
}

async fn wrong_codes_and_expiry_end_the_challenge(app: TestApp) {
    app.signed_up("ada@example.com").await;
    let challenge = sign_in_from(&app, "ada@example.com", "UA", None).await;
    let challenge = challenge_token(&challenge);
    let code = app.device_code("ada@example.com", 1).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for left in (1..5).rev() {
        let body = assert_error(
            app.verify_as("UA", challenge, wrong).await,
            StatusCode::UNAUTHORIZED,
            "invalid_code",
        )
        .await;
        assert_eq!(body["error"]["attempts_remaining"], left);
    }
    let fifth = app.verify_as("UA", challenge, wrong).await;
    assert_error(fifth, StatusCode::UNAUTHORIZED, "invalid_code").await;
    // Five wrong: the right code no longer helps; the password must be given again.
    let late = app.verify_as("UA", challenge, &code).await;
    assert_error(late, StatusCode::UNAUTHORIZED, "challenge_expired").await;
    let malformed = app.verify_as("UA", challenge, "abc").await;
    assert_eq!(
        malformed.status(),
        StatusCode::UNAUTHORIZED,
        "a dead challenge first"
    );

    // A code lives ten minutes.
    let challenge = sign_in_from(&app, "ada@example.com", "UA", None).await;
    let challenge = challenge_token(&challenge);
    let code = app.device_code("ada@example.com", 2).await;
    let malformed = app.verify_as("UA", challenge, "12345").await;
    assert_error(
        malformed,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    )
    .await;
    app.clock.advance(600);
    let expired = app.verify_as("UA", challenge, &code).await;
    assert_error(expired, StatusCode::UNAUTHORIZED, "challenge_expired").await;
}

async fn resending_honours_the_wait_and_the_hourly_limit(app: TestApp) {
    app.signed_up("ada@example.com").await;
    let challenge = sign_in_from(&app, "ada@example.com", "UA", None).await;
    let challenge = challenge_token(&challenge);
    let first = app.device_code("ada@example.com", 1).await;
    let early = app.resend(challenge).await;
    assert_eq!(early.headers()["retry-after"], "30");
    assert_error(early, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    app.clock.advance(30);
    let response = app.resend(challenge).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body = response.body().await;
    assert!(body["resend_available_at"].as_str().is_some());
    let second = app.device_code("ada@example.com", 2).await;
    if first != second {
        // The old code stopped working when the new one was sent.
        let old = app.verify_as("UA", challenge, &first).await;
        assert_error(old, StatusCode::UNAUTHORIZED, "invalid_code").await;
    }
    // Sends three to five this hour; the sixth is refused, at sign-in too.
    for _ in 0..3 {
        app.clock.advance(30);
        assert_eq!(app.resend(challenge).await.status(), StatusCode::ACCEPTED);
    }
    app.clock.advance(30);
    let sixth = app.resend(challenge).await;
    assert_error(sixth, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    let login = app.login_as("ada@example.com", "UA", None).await;
    assert_error(login, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    let latest = app.device_code("ada@example.com", 5).await;
    let response = app.verify_as("UA", challenge, &latest).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the latest code still works"
    );
    let gone = app.resend(challenge).await;
    assert_error(gone, StatusCode::UNAUTHORIZED, "challenge_expired").await;
}

async fn one_email_code_signs_in_once_under_a_race(app: TestApp) {
    app.signed_up("race@example.com").await;
    let challenge = sign_in_from(&app, "race@example.com", "UA", None).await;
    let challenge = challenge_token(&challenge).to_owned();
    let code = app.device_code("race@example.com", 1).await;
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (api, challenge, code) = (app.api(), challenge.clone(), code.clone());
            tokio::spawn(async move { api.verify(&challenge, &code).await.status() })
        })
        .collect();
    let mut signed_in = 0;
    for task in tasks {
        match task.await.unwrap() {
            StatusCode::OK => signed_in += 1,
            StatusCode::UNAUTHORIZED => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(signed_in, 1, "one code, one session");
    let (token, _) = verified(&app, "race@example.com", "Another browser", 2).await;
    let sessions = app.sessions(&token).await.body().await;
    assert_eq!(
        sessions.as_array().unwrap().len(),
        2,
        "the raced one and this one"
    );
}

/// A code answered while a resend of the same challenge runs (each locks what the other
/// needs on PostgreSQL): one of them wins, and neither fails with a server error.
async fn a_resend_racing_the_answer_never_fails(app: TestApp) {
    for i in 0..8 {
        let email = format!("race{i}@example.com");
        app.signed_up(&email).await;
        let challenge = sign_in_from(&app, &email, "RaceBrowser/1.0", None).await;
        assert_eq!(challenge["status"], "device_verification_required");
        let challenge = challenge_token(&challenge);
        let code = app.next_device_code(&email).await;
        // Past the resend wait, so the resend really replaces the code.
        app.clock.advance(31);
        let (verified, resent) = tokio::join!(
            app.verify_as("RaceBrowser/1.0", challenge, &code),
            app.resend(challenge)
        );
        let (verified, resent) = (verified.status(), resent.status());
        assert!(
            verified == StatusCode::OK || verified == StatusCode::UNAUTHORIZED,
            "{verified} {resent}"
        );
        assert!(!resent.is_server_error(), "{verified} {resent}");
    }
}

async fn turning_2fa_on_ends_an_open_email_code(app: TestApp) {
    // Someone with the password (and the mailbox) starts a sign-in; the user, warned, turns
    // 2FA on before the code is used: the code no longer signs in, nor can it be resent.
    let token = app.signed_in("ada@example.com").await;
    let challenge = sign_in_from(&app, "ada@example.com", "Attacker", None).await;
    assert_eq!(challenge["status"], "device_verification_required");
    let code = app.device_code("ada@example.com", 2).await;
    let Some(_) = app.enable_2fa(&token).await else {
        return;
    };
    let late = app
        .verify_as("Attacker", challenge_token(&challenge), &code)
        .await;
    assert_error(late, StatusCode::UNAUTHORIZED, "challenge_expired").await;
    app.clock.advance(30);
    assert_error(
        app.resend(challenge_token(&challenge)).await,
        StatusCode::UNAUTHORIZED,
        "challenge_expired",
    )
    .await;
    // A second sign-in replaces the first one's code too.
    let bob = app.signed_in("bob@example.com").await;
    let first = sign_in_from(&app, "bob@example.com", "UA", None).await;
    let first_code = app.device_code("bob@example.com", 2).await;
    let second = sign_in_from(&app, "bob@example.com", "UA", None).await;
    let second_code = app.device_code("bob@example.com", 3).await;
    let old = app
        .verify_as("UA", challenge_token(&first), &first_code)
        .await;
    assert_error(old, StatusCode::UNAUTHORIZED, "challenge_expired").await;
    assert_eq!(
        app.verify_as("UA", challenge_token(&second), &second_code)
            .await
            .status(),
        200
    );
    assert!(!bob.is_empty());
}

async fn devices_and_sessions_are_listed_and_revoked(app: TestApp) {
    app.signed_up("ada@example.com").await;
    let (laptop, laptop_device) = verified(&app, "ada@example.com", "Laptop", 1).await;
    let (phone, _) = verified(&app, "ada@example.com", "Phone", 2).await;
    let (tablet, _) = verified(&app, "ada@example.com", "Tablet", 3).await;

    let sessions = app.sessions(&laptop).await.body().await;
    let sessions = sessions.as_array().unwrap();
    assert_eq!(sessions.len(), 3);
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    let current = sessions.iter().find(|s| s["current"] == true).unwrap();
    assert_eq!(current["user_agent"], "Laptop");
    let phone_session = sessions
        .iter()
        .find(|s| s["user_agent"] == "Phone")
        .unwrap();
    let phone_session = phone_session["id"].as_str().unwrap();

    assert_eq!(app.end_session(&laptop, phone_session).await.status(), 204);
    let response = app.me(&phone).await;
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    for id in [phone_session, "nope"] {
        let response = app.end_session(&laptop, id).await;
        assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    }

    // Sign out everywhere else.
    assert_eq!(app.end_other_sessions(&laptop).await.status(), 204);
    assert_eq!(app.me(&tablet).await.status(), 401);
    assert_eq!(app.me(&laptop).await.status(), 200);

    // Devices: three recognized, the laptop's forgotten.
    let devices = app.devices(&laptop).await.body().await;
    assert_eq!(devices.as_array().unwrap().len(), 3);
    let laptop_id = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["user_agent"] == "Laptop")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Another user cannot forget it.
    let bob = app.signed_in("bob@example.com").await;
    let response = app.forget_device(&bob, &laptop_id).await;
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(app.forget_device(&laptop, &laptop_id).await.status(), 204);
    let again = sign_in_from(&app, "ada@example.com", "Laptop", Some(&laptop_device)).await;
    assert_eq!(again["status"], "device_verification_required");
}

async fn a_verified_device_still_meets_the_teams_2fa_requirement(app: TestApp) {
    let owner = app.owner_with_2fa("owner@example.com").await;
    app.join(&owner, "member@example.com", "member").await;
    app.set_2fa_policy(&owner, json!({"required": true})).await;
    let challenge = sign_in_from(&app, "member@example.com", "New browser", None).await;
    assert_eq!(challenge["status"], "device_verification_required");
    let code = app.device_code("member@example.com", 2).await;
    let response = app
        .verify_as("New browser", challenge_token(&challenge), &code)
        .await;
    let body = response.body().await;
    assert_eq!(body["status"], "two_factor_setup_required", "{body}");
    assert!(body["device_token"].as_str().is_some());
    let token = body["session_token"].as_str().unwrap();
    assert_error(
        app.sessions(token).await,
        StatusCode::FORBIDDEN,
        "two_factor_setup_required",
    )
    .await;
}
