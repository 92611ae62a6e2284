//! Email codes for unrecognized devices (Mailtrap), recognized devices, and a user's own
//! sessions, through the API and the pages.

use crate::helpers::{PASSWORD, TestApp, assert_error};
use crate::pages::{
    browser, csrf_field, get_page, location, page_sign_in, post_form, post_password,
};
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
    the_browser_that_chose_the_password_is_recognized,
    turning_2fa_on_ends_an_open_email_code,
    devices_and_sessions_are_listed_and_revoked,
    a_verified_device_still_meets_the_teams_2fa_requirement,
    the_device_pages_verify_resend_and_list,
);

const SUBJECT: &str = "Verify your identity to proceed with the login";

/// Signs in with the password from a browser with this User-Agent and optional device token.
async fn login_as(app: &TestApp, email: &str, user_agent: &str, device: Option<&str>) -> Value {
    let response = app
        .client
        .post(app.url("/api/v1/login"))
        .header("user-agent", user_agent)
        .json(&json!({"email": email, "password": PASSWORD, "device_token": device}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn verify_as(
    app: &TestApp,
    user_agent: &str,
    challenge: &Value,
    code: &str,
) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/login/verify"))
        .header("user-agent", user_agent)
        .json(&json!({"challenge_token": challenge["challenge_token"], "code": code}))
        .send()
        .await
        .unwrap()
}

async fn resend(app: &TestApp, challenge: &Value) -> reqwest::Response {
    app.post(
        "/api/v1/login/resend",
        json!({"challenge_token": challenge["challenge_token"]}),
        None,
    )
    .await
}

/// Verifies a new device from `user_agent`: (session token, device token).
async fn verified(
    app: &TestApp,
    email: &str,
    user_agent: &str,
    nth_code: usize,
) -> (String, String) {
    let challenge = login_as(app, email, user_agent, None).await;
    assert_eq!(
        challenge["status"], "device_verification_required",
        "{challenge}"
    );
    let code = app.device_code(email, nth_code).await;
    let body: Value = verify_as(app, user_agent, &challenge, &code)
        .await
        .json()
        .await
        .unwrap();
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
    app.signup("ada@example.com").await;
    let challenge = login_as(&app, "ada@example.com", "Firefox/140", None).await;
    assert_eq!(challenge["status"], "device_verification_required");
    assert_eq!(challenge["methods"], json!(["email_code"]));
    assert!(challenge["expires_at"].as_str().is_some());
    assert!(challenge["resend_available_at"].as_str().is_some());

    let mail = sink.wait_for(1).await;
    assert_eq!(mail[0].subject, SUBJECT);
    assert_eq!(mail[0].to, "ada@example.com");
    let code = app.device_code("ada@example.com", 1).await;
    let response = verify_as(&app, "Firefox/140", &challenge, &code).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "authenticated");
    assert_eq!(body["method_used"], "email_code");
    let device = body["device_token"].as_str().unwrap();
    assert_eq!(device.len(), 43, "a 256-bit token");

    // Recognized now: straight in, no second email.
    let again = login_as(&app, "ada@example.com", "Firefox/140", Some(device)).await;
    assert_eq!(again["status"], "authenticated", "{again}");
    assert!(again.get("device_token").is_none());
    assert_eq!(sink.received().len(), 1);
    let token = again["session_token"].as_str().unwrap();
    let devices: Value = app
        .get("/api/v1/me/devices", Some(token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(devices.as_array().unwrap().len(), 1);
    assert_eq!(devices[0]["user_agent"], "Firefox/140");
    let events: Value = app
        .get("/api/v1/me/events", Some(token))
        .await
        .json()
        .await
        .unwrap();
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

async fn another_browser_user_or_an_expired_device_is_not_recognized(app: TestApp) {
    app.signup("ada@example.com").await;
    app.signup("bob@example.com").await;
    let (_, device) = verified(&app, "ada@example.com", "Firefox/140", 1).await;
    let recognized = login_as(&app, "ada@example.com", "Firefox/140", Some(&device)).await;
    assert_eq!(recognized["status"], "authenticated");

    // A new browser version is a new device.
    let upgraded = login_as(&app, "ada@example.com", "Firefox/141", Some(&device)).await;
    assert_eq!(upgraded["status"], "device_verification_required");
    // Another user on the same browser and token.
    let other = login_as(&app, "bob@example.com", "Firefox/140", Some(&device)).await;
    assert_eq!(other["status"], "device_verification_required");
    // A token that was never issued.
    let forged = login_as(&app, "ada@example.com", "Firefox/140", Some("forged")).await;
    assert_eq!(forged["status"], "device_verification_required");
    // Thirty days later the device has lapsed.
    app.clock.advance(30 * 24 * 3600 - 1);
    let still = login_as(&app, "ada@example.com", "Firefox/140", Some(&device)).await;
    assert_eq!(still["status"], "authenticated");
    app.clock.advance(1);
    let lapsed = login_as(&app, "ada@example.com", "Firefox/140", Some(&device)).await;
    assert_eq!(lapsed["status"], "device_verification_required");
}

async fn users_with_2fa_skip_the_email_step(app: TestApp) {
    let Some(_) = crate::two_factor::user_with_2fa(&app, "totp@example.com").await else {
        return;
    };
    let sent = app.mail_to("totp@example.com", 0).await.len();
    let body = login_as(&app, "totp@example.com", "Brand-new browser", None).await;
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
    app.signup("ada@example.com").await;
    let challenge = login_as(&app, "ada@example.com", "UA", None).await;
    let code = app.device_code("ada@example.com", 1).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for left in (1..5).rev() {
        let body = assert_error(
            verify_as(&app, "UA", &challenge, wrong).await,
            StatusCode::UNAUTHORIZED,
            "invalid_code",
        )
        .await;
        assert_eq!(body["error"]["attempts_remaining"], left);
    }
    let fifth = verify_as(&app, "UA", &challenge, wrong).await;
    assert_error(fifth, StatusCode::UNAUTHORIZED, "invalid_code").await;
    // Five wrong: the right code no longer helps; the password must be given again.
    let late = verify_as(&app, "UA", &challenge, &code).await;
    assert_error(late, StatusCode::UNAUTHORIZED, "challenge_expired").await;
    let malformed = verify_as(&app, "UA", &challenge, "abc").await;
    assert_eq!(
        malformed.status(),
        StatusCode::UNAUTHORIZED,
        "a dead challenge first"
    );

    // A code lives ten minutes.
    let challenge = login_as(&app, "ada@example.com", "UA", None).await;
    let code = app.device_code("ada@example.com", 2).await;
    let malformed = verify_as(&app, "UA", &challenge, "12345").await;
    assert_error(
        malformed,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    )
    .await;
    app.clock.advance(600);
    let expired = verify_as(&app, "UA", &challenge, &code).await;
    assert_error(expired, StatusCode::UNAUTHORIZED, "challenge_expired").await;
}

async fn resending_honours_the_wait_and_the_hourly_limit(app: TestApp) {
    app.signup("ada@example.com").await;
    let challenge = login_as(&app, "ada@example.com", "UA", None).await;
    let first = app.device_code("ada@example.com", 1).await;
    let early = resend(&app, &challenge).await;
    assert_eq!(early.headers()["retry-after"], "30");
    assert_error(early, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    app.clock.advance(30);
    let response = resend(&app, &challenge).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body: Value = response.json().await.unwrap();
    assert!(body["resend_available_at"].as_str().is_some());
    let second = app.device_code("ada@example.com", 2).await;
    if first != second {
        // The old code stopped working when the new one was sent.
        let old = verify_as(&app, "UA", &challenge, &first).await;
        assert_error(old, StatusCode::UNAUTHORIZED, "invalid_code").await;
    }
    // Sends three to five this hour; the sixth is refused, at sign-in too.
    for _ in 0..3 {
        app.clock.advance(30);
        assert_eq!(
            resend(&app, &challenge).await.status(),
            StatusCode::ACCEPTED
        );
    }
    app.clock.advance(30);
    let sixth = resend(&app, &challenge).await;
    assert_error(sixth, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    let login = app
        .client
        .post(app.url("/api/v1/login"))
        .header("user-agent", "UA")
        .json(&json!({"email": "ada@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_error(login, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    let latest = app.device_code("ada@example.com", 5).await;
    let response = verify_as(&app, "UA", &challenge, &latest).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the latest code still works"
    );
    let gone = resend(&app, &challenge).await;
    assert_error(gone, StatusCode::UNAUTHORIZED, "challenge_expired").await;
}

async fn one_email_code_signs_in_once_under_a_race(app: TestApp) {
    app.signup("race@example.com").await;
    let challenge = login_as(&app, "race@example.com", "UA", None).await;
    let code = app.device_code("race@example.com", 1).await;
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let client = app.client.clone();
            let url = app.url("/api/v1/login/verify");
            let body = json!({"challenge_token": challenge["challenge_token"], "code": code});
            tokio::spawn(async move { client.post(url).json(&body).send().await.unwrap().status() })
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
    let sessions: Value = app
        .get("/api/v1/me/sessions", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        sessions.as_array().unwrap().len(),
        2,
        "the raced one and this one"
    );
}

async fn devices_and_sessions_are_listed_and_revoked(app: TestApp) {
    app.signup("ada@example.com").await;
    let (laptop, laptop_device) = verified(&app, "ada@example.com", "Laptop", 1).await;
    let (phone, _) = verified(&app, "ada@example.com", "Phone", 2).await;
    let (tablet, _) = verified(&app, "ada@example.com", "Tablet", 3).await;

    let sessions: Value = app
        .get("/api/v1/me/sessions", Some(&laptop))
        .await
        .json()
        .await
        .unwrap();
    let sessions = sessions.as_array().unwrap();
    assert_eq!(sessions.len(), 3);
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    let current = sessions.iter().find(|s| s["current"] == true).unwrap();
    assert_eq!(current["user_agent"], "Laptop");
    let phone_session = sessions
        .iter()
        .find(|s| s["user_agent"] == "Phone")
        .unwrap();

    let path = format!(
        "/api/v1/me/sessions/{}",
        phone_session["id"].as_str().unwrap()
    );
    assert_eq!(app.delete(&path, Some(&laptop)).await.status(), 204);
    assert_error(
        app.get("/api/v1/me", Some(&phone)).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    assert_error(
        app.delete(&path, Some(&laptop)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        app.delete("/api/v1/me/sessions/nope", Some(&laptop)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    // Sign out everywhere else.
    assert_eq!(
        app.delete("/api/v1/me/sessions", Some(&laptop))
            .await
            .status(),
        204
    );
    assert_eq!(app.get("/api/v1/me", Some(&tablet)).await.status(), 401);
    assert_eq!(app.get("/api/v1/me", Some(&laptop)).await.status(), 200);

    // Devices: three recognized, the laptop's forgotten.
    let devices: Value = app
        .get("/api/v1/me/devices", Some(&laptop))
        .await
        .json()
        .await
        .unwrap();
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
    let path = format!("/api/v1/me/devices/{laptop_id}");
    assert_error(
        app.delete(&path, Some(&bob)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(app.delete(&path, Some(&laptop)).await.status(), 204);
    let again = login_as(&app, "ada@example.com", "Laptop", Some(&laptop_device)).await;
    assert_eq!(again["status"], "device_verification_required");
}

async fn a_verified_device_still_meets_the_teams_2fa_requirement(app: TestApp) {
    let owner = app.signed_in("owner@example.com").await;
    crate::team::join(&app, &owner, "member@example.com", "member").await;
    app.put(
        "/api/v1/account/two-factor-policy",
        json!({"required": true}),
        Some(&owner),
    )
    .await;
    let challenge = login_as(&app, "member@example.com", "New browser", None).await;
    assert_eq!(challenge["status"], "device_verification_required");
    let code = app.device_code("member@example.com", 2).await;
    let body: Value = verify_as(&app, "New browser", &challenge, &code)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "two_factor_setup_required", "{body}");
    assert!(body["device_token"].as_str().is_some());
    let token = body["session_token"].as_str().unwrap();
    assert_error(
        app.get("/api/v1/me/sessions", Some(token)).await,
        StatusCode::FORBIDDEN,
        "two_factor_setup_required",
    )
    .await;
}

async fn the_device_pages_verify_resend_and_list(app: TestApp) {
    app.signup("page@example.com").await;
    let b = browser();
    let response = post_password(&b, &app, "page@example.com", PASSWORD).await;
    assert_eq!(location(&response), "/login/verify-device");
    let (_, html) = get_page(&b, &app, "/login/verify-device").await;
    assert!(html.contains("<label for=\"code\">Code from the email</label>"));
    assert!(html.contains("You can ask for a new code in 30 seconds."));
    let resend = post_form(
        &b,
        &app,
        "/login/verify-device/resend",
        &[("csrf", &csrf_field(&html))],
    )
    .await;
    assert_eq!(resend.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        resend
            .text()
            .await
            .unwrap()
            .contains("you can ask for a new code in 30 seconds")
    );
    app.clock.advance(30);
    let resend = post_form(
        &b,
        &app,
        "/login/verify-device/resend",
        &[("csrf", &csrf_field(&html))],
    )
    .await;
    assert_eq!(resend.status(), StatusCode::OK);
    let html = resend.text().await.unwrap();
    assert!(html.contains("A new code is on its way."));
    let code = app.device_code("page@example.com", 2).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let response = post_form(
        &b,
        &app,
        "/login/verify-device",
        &[("csrf", &csrf_field(&html)), ("code", wrong)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("That code is not valid. 4 attempts left.")
    );
    let response = post_form(
        &b,
        &app,
        "/login/verify-device",
        &[("csrf", &csrf_field(&html)), ("code", &code)],
    )
    .await;
    assert_eq!(location(&response), "/");

    // The devices page lists this browser and this session, and signs out the others.
    let other = browser();
    let response = page_sign_in(&other, &app, "page@example.com", PASSWORD).await;
    assert_eq!(location(&response), "/");
    let (status, html) = get_page(&b, &app, "/settings/devices").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<h1>Devices and sessions</h1>"));
    assert!(html.contains("This session"));
    assert_eq!(
        html.matches("/forget\"").count(),
        2,
        "two recognized browsers"
    );
    let response = post_form(
        &b,
        &app,
        "/settings/sessions/end-others",
        &[("csrf", &csrf_field(&html))],
    )
    .await;
    assert_eq!(location(&response), "/settings/devices?notice=others");
    let (status, _) = get_page(&other, &app, "/").await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "the other browser was signed out"
    );
    let (status, _) = get_page(&b, &app, "/").await;
    assert_eq!(status, StatusCode::OK);
}

async fn turning_2fa_on_ends_an_open_email_code(app: TestApp) {
    // Someone with the password (and the mailbox) starts a sign-in; the user, warned, turns
    // 2FA on before the code is used: the code no longer signs in, nor can it be resent.
    let token = app.signed_in("ada@example.com").await;
    let challenge = login_as(&app, "ada@example.com", "Attacker", None).await;
    assert_eq!(challenge["status"], "device_verification_required");
    let code = app.device_code("ada@example.com", 2).await;
    let Some(_) = crate::two_factor::enable_2fa(&app, &token).await else {
        return;
    };
    let late = verify_as(&app, "Attacker", &challenge, &code).await;
    assert_error(late, StatusCode::UNAUTHORIZED, "challenge_expired").await;
    app.clock.advance(30);
    assert_error(
        resend(&app, &challenge).await,
        StatusCode::UNAUTHORIZED,
        "challenge_expired",
    )
    .await;
    // A second sign-in replaces the first one's code too.
    let bob = app.signed_in("bob@example.com").await;
    let first = login_as(&app, "bob@example.com", "UA", None).await;
    let first_code = app.device_code("bob@example.com", 2).await;
    let second = login_as(&app, "bob@example.com", "UA", None).await;
    let second_code = app.device_code("bob@example.com", 3).await;
    let old = verify_as(&app, "UA", &first, &first_code).await;
    assert_error(old, StatusCode::UNAUTHORIZED, "challenge_expired").await;
    assert_eq!(
        verify_as(&app, "UA", &second, &second_code).await.status(),
        200
    );
    assert!(!bob.is_empty());
}

/// A code answered while a resend of the same challenge runs (each locks what the other
/// needs on PostgreSQL): one of them wins, and neither fails with a server error.
async fn a_resend_racing_the_answer_never_fails(app: TestApp) {
    for i in 0..8 {
        let email = format!("race{i}@example.com");
        app.signup(&email).await;
        let challenge = login_as(&app, &email, "RaceBrowser/1.0", None).await;
        assert_eq!(challenge["status"], "device_verification_required");
        let code = app.next_device_code(&email).await;
        // Past the resend wait, so the resend really replaces the code.
        app.clock.advance(31);
        let (verified, resent) = tokio::join!(
            verify_as(&app, "RaceBrowser/1.0", &challenge, &code),
            resend(&app, &challenge)
        );
        let (verified, resent) = (verified.status(), resent.status());
        assert!(
            verified == StatusCode::OK || verified == StatusCode::UNAUTHORIZED,
            "{verified} {resent}"
        );
        assert!(!resent.is_server_error(), "{verified} {resent}");
    }
}

/// Signs out of the pages, then in again with the password: where the sign-in leads.
async fn sign_out_and_in(b: &reqwest::Client, app: &TestApp, email: &str) -> String {
    let (_, home) = get_page(b, app, "/").await;
    post_form(b, app, "/logout", &[("csrf", &csrf_field(&home))]).await;
    password_sign_in(b, app, email).await
}

/// Signs in on the login page with the password: where the sign-in leads.
async fn password_sign_in(b: &reqwest::Client, app: &TestApp, email: &str) -> String {
    location(&post_password(b, app, email, PASSWORD).await).to_owned()
}

/// Signing up, or accepting an invitation, in a browser makes it a recognized device: the
/// next sign-in from it needs no emailed code; another browser still does.
async fn the_browser_that_chose_the_password_is_recognized(app: TestApp) {
    let b = browser();
    let (_, page) = get_page(&b, &app, "/signup").await;
    let response = post_form(
        &b,
        &app,
        "/signup",
        &[
            ("csrf", &csrf_field(&page)),
            ("account_name", "Acme"),
            ("name", "Ada"),
            ("email", "ada@example.com"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(location(&response), "/");
    let cookies: Vec<_> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("tessera_device=") && c.contains("HttpOnly")),
        "{cookies:?}"
    );
    assert_eq!(sign_out_and_in(&b, &app, "ada@example.com").await, "/");
    assert_eq!(
        password_sign_in(&browser(), &app, "ada@example.com").await,
        "/login/verify-device",
        "another browser"
    );

    // An invitee who joins in a browser.
    let owner = app.signed_in("owner@example.com").await;
    let sent = crate::team::invite(&app, &owner, "grace@example.com", "member").await;
    assert_eq!(sent.status(), StatusCode::CREATED);
    let token = crate::team::invitation_token(&app, "grace@example.com", 1).await;
    let invitee = browser();
    let (_, page) = get_page(&invitee, &app, &format!("/invitations/{token}")).await;
    let response = post_form(
        &invitee,
        &app,
        "/invitations/accept",
        &[
            ("csrf", &csrf_field(&page)),
            ("token", &token),
            ("name", "Grace"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(location(&response), "/");
    assert_eq!(
        sign_out_and_in(&invitee, &app, "grace@example.com").await,
        "/"
    );
    // Listed with the others: the API client here verified itself by email.
    let devices = app
        .get(
            "/api/v1/me/devices",
            Some(&app.signed_in_again("grace@example.com").await),
        )
        .await;
    let devices: Value = devices.json().await.unwrap();
    assert_eq!(devices.as_array().unwrap().len(), 2, "{devices}");
}
