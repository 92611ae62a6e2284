//! Sign-up by mode (SPEC §8): `verify` answers alike for every email and creates the team
//! only through the emailed link, once; `closed` leaves team creation to the operator;
//! sign-ups are limited per address.

use crate::helpers::{PASSWORD, ResponseExt, TestApp, assert_error};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera_core::sign_up::SignupMode;

backend_tests!(
    verify_mode_answers_alike_for_taken_and_new_emails,
    a_pending_signup_does_not_block_an_invitation,
    the_link_signs_in_and_remembers_the_client_once,
    a_signup_link_expires_after_24_hours,
    a_link_confirmed_twice_at_once_creates_one_account,
    closed_signup_is_refused_and_the_operator_creates_teams,
    signups_from_one_address_are_limited_to_ten_an_hour,
);

fn request(email: &str) -> Value {
    json!({"account_name": "Orbit", "name": "Grace Hopper", "email": email,
           "password": PASSWORD})
}

async fn in_mode(app: &mut TestApp, mode: SignupMode) {
    app.reconfigure(|c| c.signup = mode).await;
}

/// Asks for a sign-up and returns the token of the link emailed for it.
async fn link_for(app: &TestApp, email: &str) -> String {
    let before = app.signup_links_sent(email).await;
    assert_eq!(app.signup(&request(email)).await.status(), 202);
    app.signup_token(email, before + 1).await
}

async fn verify_mode_answers_alike_for_taken_and_new_emails(mut app: TestApp) {
    app.signed_up("taken@example.com").await;
    in_mode(&mut app, SignupMode::Verify).await;
    let taken = app.signup(&request("TAKEN@example.com")).await;
    let new = app.signup(&request("new@example.com")).await;
    assert_eq!(
        (taken.status(), new.status()),
        (StatusCode::ACCEPTED, StatusCode::ACCEPTED)
    );
    let (taken, new) = (taken.text().await.unwrap(), new.text().await.unwrap());
    assert_eq!(taken, new, "byte for byte");
    assert_eq!(taken, r#"{"status":"confirmation_sent"}"#);

    // The owner of the address is told and offered sign-in and a reset; nothing else.
    let told = app
        .mail_containing("taken@example.com", "already has an account")
        .await;
    assert_eq!(told.subject, "You already have a Tessera account");
    assert!(told.text.contains("/login") && told.text.contains("/password/forgot"));
    assert_eq!(app.signup_links_sent("taken@example.com").await, 0);
    // The new address gets its link, and nothing exists before it is followed.
    let sent = app
        .mail_containing("new@example.com", "/signup/confirm/")
        .await;
    assert_eq!(sent.subject, "Confirm your Tessera sign-up");
    let response = app.login("new@example.com", PASSWORD).await;
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let (ok, users, _) = app.admin(&["users"]);
    assert!(ok && !users.contains("new@example.com"), "{users}");
    // The first owner's password still works.
    assert_eq!(app.login("taken@example.com", PASSWORD).await.status(), 200);
}

async fn a_pending_signup_does_not_block_an_invitation(mut app: TestApp) {
    let owner = app.signed_in("owner@example.com").await;
    in_mode(&mut app, SignupMode::Verify).await;
    let squatter = link_for(&app, "newhire@example.com").await;
    // The real team invites the address, and the invitee joins.
    assert_eq!(
        app.invite(&owner, "newhire@example.com", "member")
            .await
            .status(),
        201
    );
    let invitation = app.invitation_token("newhire@example.com", 1).await;
    let response = app.accept_invitation(&invitation, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    // The pending sign-up can no longer create a user with that email.
    let response = app.confirm_signup(&json!({ "token": squatter })).await;
    assert_error(response, StatusCode::CONFLICT, "email_taken").await;
    let (_, accounts, _) = app.admin(&["accounts"]);
    assert_eq!(accounts.lines().count(), 1, "{accounts}");
}

async fn the_link_signs_in_and_remembers_the_client_once(mut app: TestApp) {
    in_mode(&mut app, SignupMode::Verify).await;
    let token = link_for(&app, "grace@example.com").await;
    let response = app.confirm_signup(&json!({ "token": token })).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body = response.body().await;
    assert_eq!(body["user"]["email"], "grace@example.com");
    assert_eq!(body["user"]["role"], "owner");
    assert_eq!(body["account"]["name"], "Orbit");
    assert!(body["expires_at"].as_str().unwrap().ends_with('Z'));
    let session = body["session_token"].as_str().unwrap();
    let me = app.me_body(session).await;
    assert_eq!(me["account"]["id"], body["account"]["id"]);
    // This client is recognized: its next sign-in needs no emailed code.
    let device = body["device_token"].as_str().unwrap();
    let again = json!({"email": "grace@example.com", "password": PASSWORD, "device_token": device});
    let signed_in = app.login_with(&again, &[]).await.body().await;
    assert_eq!(signed_in["status"], "authenticated", "{signed_in}");

    let response = app.confirm_signup(&json!({ "token": token })).await;
    assert_error(response, StatusCode::GONE, "signup_link_used").await;
    let response = app
        .confirm_signup(&json!({ "token": "no-such-link" }))
        .await;
    assert_error(response, StatusCode::NOT_FOUND, "signup_link_unknown").await;
    let events = app.events(session, "").await.body().await;
    assert!(events.to_string().contains("\"signup\""), "{events}");
}

async fn a_signup_link_expires_after_24_hours(mut app: TestApp) {
    in_mode(&mut app, SignupMode::Verify).await;
    let early = link_for(&app, "early@example.com").await;
    let late = link_for(&app, "late@example.com").await;
    app.clock.advance(24 * 3600 - 1);
    let response = app.confirm_signup(&json!({ "token": early })).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    app.clock.advance(1);
    let response = app.confirm_signup(&json!({ "token": late })).await;
    assert_error(response, StatusCode::GONE, "signup_link_expired").await;
    assert_eq!(app.login("late@example.com", PASSWORD).await.status(), 401);
}

async fn a_link_confirmed_twice_at_once_creates_one_account(mut app: TestApp) {
    in_mode(&mut app, SignupMode::Verify).await;
    let token = link_for(&app, "race@example.com").await;
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (api, token) = (app.api(), token.clone());
            tokio::spawn(async move { api.confirm_signup(&json!({ "token": token })).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap().status().as_u16());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 410, 410, 410, 410, 410]);
    let (_, accounts, _) = app.admin(&["accounts"]);
    assert_eq!(accounts.lines().count(), 1, "{accounts}");
}

async fn closed_signup_is_refused_and_the_operator_creates_teams(mut app: TestApp) {
    app.signed_up("taken@example.com").await;
    in_mode(&mut app, SignupMode::Closed).await;
    let response = app.signup(&request("new@example.com")).await;
    assert_error(response, StatusCode::FORBIDDEN, "signup_closed").await;

    let (ok, _, err) = app.admin(&[
        "create-account",
        "--name",
        "Orbit",
        "--owner-email",
        "taken@example.com",
        "--owner-name",
        "T",
    ]);
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, out, err) = app.admin(&[
        "create-account",
        "--name",
        "Orbit",
        "--owner-email",
        "Owner@example.com",
        "--owner-name",
        "Grace Hopper",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("team Orbit created for Owner@example.com"),
        "{out}"
    );
    // The command queued the email by the wall clock; the app's clock stands still.
    app.clock.advance(60);
    let email = app
        .mail_containing("Owner@example.com", "/signup/confirm/")
        .await;
    assert_eq!(email.subject, "Your team Orbit on Tessera is ready");
    let token = app.signup_token("Owner@example.com", 1).await;

    // The owner chooses a password at the link; a weak one is refused.
    let response = app.confirm_signup(&json!({ "token": token })).await;
    assert_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    )
    .await;
    let weak = json!({ "token": token, "password": "password1234" });
    let response = app.confirm_signup(&weak).await;
    assert_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    )
    .await;
    let response = app
        .confirm_signup(&json!({ "token": token, "password": PASSWORD }))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body = response.body().await;
    assert_eq!(
        (
            &body["user"]["role"],
            &body["account"]["name"],
            &body["user"]["name"]
        ),
        (&json!("owner"), &json!("Orbit"), &json!("Grace Hopper"))
    );
    assert_eq!(app.login("owner@example.com", PASSWORD).await.status(), 200);
    let response = app
        .confirm_signup(&json!({ "token": token, "password": PASSWORD }))
        .await;
    assert_error(response, StatusCode::GONE, "signup_link_used").await;
}

async fn signups_from_one_address_are_limited_to_ten_an_hour(mut app: TestApp) {
    in_mode(&mut app, SignupMode::Verify).await;
    // Refused fields cost nothing and do not count.
    let mut bad = request("bad@example.com");
    bad["password"] = json!("short");
    assert_eq!(app.signup(&bad).await.status(), 422);
    for i in 0..10 {
        let response = app.signup(&request(&format!("u{i}@example.com"))).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED, "request {i}");
    }
    let response = app.signup(&request("u10@example.com")).await;
    let retry: i64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry), "{retry}");
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    app.clock.advance(3600);
    assert_eq!(app.signup(&request("u10@example.com")).await.status(), 202);
}
