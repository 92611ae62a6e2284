//! A password's life (SPEC §8): changing it, asking for a reset link, resetting it — on the
//! API, each on both backends. The pages are in `pages::passwords`, the browser in
//! `e2e::passwords`.

use crate::helpers::{PASSWORD, ResponseExt, TestApp, assert_error};
use reqwest::StatusCode;
use serde_json::{Value, json};

backend_tests!(
    changing_the_password_ends_the_other_sessions_and_emails_the_user,
    a_wrong_current_password_counts_towards_the_sign_in_lock,
    forgot_answers_the_same_for_unknown_emails_and_the_link_resets_once,
    a_reset_ends_every_session_and_lifts_the_password_lock,
    a_reset_never_turns_two_factor_off,
    a_reset_link_expires_after_an_hour,
    reset_links_are_limited_per_email_and_per_address,
    racing_the_same_link_changes_the_password_once,
    a_deleted_users_link_is_invalid,
    bad_input_answers_validation_errors,
);

const NEW_PASSWORD: &str = "quartz lantern meadow violet";

async fn kinds(app: &TestApp, token: &str) -> Vec<String> {
    let body = app.events(token, "").await.body().await;
    body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

/// The outbox's emails of this kind, sent or not.
async fn outbox_count(app: &TestApp, kind: &str) -> usize {
    let outbox = app.store().await.list_outbox(true, 200).await.unwrap();
    outbox.iter().filter(|e| e.kind == kind).count()
}

/// Reset links are made after `POST /password/forgot` answers (so its timing tells nothing):
/// waits until `expected` emails of `kind` are queued, then a little longer to see that no
/// more come.
async fn settled_outbox_count(app: &TestApp, kind: &str, expected: usize) {
    let mut count = 0;
    for _ in 0..200 {
        count = outbox_count(app, kind).await;
        if count >= expected {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        outbox_count(app, kind).await,
        expected,
        "{kind} emails queued"
    );
    assert_eq!(count, expected, "{kind} emails queued");
}

/// Asks for a reset link for `email` and reads the token from the email (the `nth` to it).
async fn reset_link(app: &TestApp, email: &str, nth: usize) -> String {
    let response = app.forgot_password(email).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    app.reset_token(email, nth).await
}

async fn changing_the_password_ends_the_other_sessions_and_emails_the_user(app: TestApp) {
    let email = "ada@example.com";
    let mine = app.signed_in(email).await;
    let other = app.signed_in_again(email).await;
    let response = app.change_password(&mine, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.me(&mine).await.status(), 200, "this session is kept");
    assert_error(
        app.me(&other).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    assert_error(
        app.login(email, PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    assert_eq!(app.login(email, NEW_PASSWORD).await.status(), 200);
    let notice = app
        .mail_containing(email, "changed from your security settings")
        .await;
    assert_eq!(notice.subject, "Your Tessera password was changed");
    assert!(notice.text.contains("127.0.0.1"), "{}", notice.text);
    assert!(
        kinds(&app, &mine)
            .await
            .contains(&"password_changed".to_owned())
    );
    // The policy, with the user's own name as context.
    let weak = app
        .change_password(&mine, NEW_PASSWORD, "Ada Lovelace Acme")
        .await;
    let body = assert_error(weak, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
    assert!(
        body["error"]["fields"]["new_password"].is_string(),
        "{body}"
    );
}

async fn a_wrong_current_password_counts_towards_the_sign_in_lock(app: TestApp) {
    let email = "ada@example.com";
    let token = app.signed_in(email).await;
    for _ in 0..10 {
        let wrong = app
            .change_password(&token, "not my password", NEW_PASSWORD)
            .await;
        assert_error(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    let locked = app.change_password(&token, PASSWORD, NEW_PASSWORD).await;
    assert_error(locked, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    assert_eq!(app.login(email, PASSWORD).await.status(), 429, "one lock");
    app.clock.advance(15 * 60);
    let response = app.change_password(&token, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

async fn forgot_answers_the_same_for_unknown_emails_and_the_link_resets_once(app: TestApp) {
    let email = "ada@example.com";
    app.signed_in(email).await;
    let known = app.forgot_password(email).await;
    let unknown = app.forgot_password("nobody@example.com").await;
    assert_eq!(known.status(), StatusCode::ACCEPTED);
    assert_eq!(unknown.status(), StatusCode::ACCEPTED);
    let (known, unknown): (Value, Value) = (known.body().await, unknown.body().await);
    assert_eq!(known, unknown);
    assert_eq!(known, json!({"status": "reset_link_sent_if_registered"}));
    settled_outbox_count(&app, "password_reset_link", 1).await;
    let token = app.reset_token(email, 1).await;
    assert_eq!(token.len(), 43, "256 bits, base64url");
    let mail = app.mail_containing(email, "/password/reset/").await;
    assert_eq!(mail.subject, "Reset your Tessera password");
    let response = app.reset_password(&token, NEW_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    app.mail_containing(email, "changed with a reset link")
        .await;
    let session = app.login(email, NEW_PASSWORD).await.body().await;
    let session = session["session_token"].as_str().unwrap().to_owned();
    let kinds = kinds(&app, &session).await;
    for kind in ["password_reset_requested", "password_reset"] {
        assert!(kinds.contains(&kind.to_owned()), "{kind}: {kinds:?}");
    }
    let again = app
        .reset_password(&token, "another quite long passphrase")
        .await;
    assert_error(again, StatusCode::GONE, "reset_token_used").await;
    let unknown = app.reset_password("no-such-token", NEW_PASSWORD).await;
    assert_error(unknown, StatusCode::NOT_FOUND, "reset_token_invalid").await;
}

async fn a_reset_ends_every_session_and_lifts_the_password_lock(app: TestApp) {
    let email = "ada@example.com";
    let first = app.signed_in(email).await;
    let second = app.signed_in_again(email).await;
    app.lock_out(email).await;
    let token = reset_link(&app, email, 1).await;
    let response = app.reset_password(&token, NEW_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    for session in [&first, &second] {
        assert_error(
            app.me(session).await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
    }
    // Well within the 15 minutes of the lock: it was lifted.
    let body = app.login(email, NEW_PASSWORD).await.body().await;
    assert!(body["session_token"].is_string(), "{body}");
}

async fn a_reset_never_turns_two_factor_off(app: TestApp) {
    let email = "ada@example.com";
    let Some((_, factor)) = app.user_with_2fa(email).await else {
        return;
    };
    let token = reset_link(&app, email, 1).await;
    assert_eq!(app.reset_password(&token, NEW_PASSWORD).await.status(), 204);
    let body = app.login(email, NEW_PASSWORD).await.body().await;
    assert_eq!(body["status"], "two_factor_required", "{body}");
    let challenge = body["challenge_token"].as_str().unwrap();
    let wrong = app.verify(challenge, "000000").await;
    assert_error(wrong, StatusCode::UNAUTHORIZED, "invalid_code").await;
    let response = app.verify(challenge, &app.totp(&factor)).await;
    assert_eq!(response.status(), StatusCode::OK);
    // A user without 2FA, from a browser never seen: the emailed device code, as before.
    let bob = "bob@example.com";
    app.signed_in(bob).await;
    let token = reset_link(&app, bob, 1).await;
    assert_eq!(app.reset_password(&token, NEW_PASSWORD).await.status(), 204);
    let body = json!({"email": bob, "password": NEW_PASSWORD});
    let answer = app
        .login_with(&body, &[("user-agent", "NewBrowser/1.0")])
        .await;
    assert_eq!(
        answer.body().await["status"],
        "device_verification_required"
    );
}

async fn a_reset_link_expires_after_an_hour(app: TestApp) {
    let email = "ada@example.com";
    app.signed_up(email).await;
    let token = reset_link(&app, email, 1).await;
    app.clock.advance(3600);
    let late = app.reset_password(&token, NEW_PASSWORD).await;
    assert_error(late, StatusCode::GONE, "reset_token_expired").await;
    assert_eq!(app.login(email, PASSWORD).await.status(), 200);
}

async fn reset_links_are_limited_per_email_and_per_address(app: TestApp) {
    let email = "ada@example.com";
    app.signed_up(email).await;
    for _ in 0..4 {
        assert_eq!(app.forgot_password(email).await.status(), 202);
    }
    // 3 links an hour, the same answer past them.
    settled_outbox_count(&app, "password_reset_link", 3).await;
    for i in 0..16 {
        let other = format!("someone{i}@example.com");
        assert_eq!(app.forgot_password(&other).await.status(), 202);
    }
    let refused = app.forgot_password("nobody@example.com").await;
    assert!(refused.headers().contains_key("retry-after"));
    assert_error(refused, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    app.clock.advance(3600);
    assert_eq!(app.forgot_password(email).await.status(), 202);
    settled_outbox_count(&app, "password_reset_link", 4).await;
}

async fn racing_the_same_link_changes_the_password_once(app: TestApp) {
    let email = "ada@example.com";
    app.signed_up(email).await;
    let token = reset_link(&app, email, 1).await;
    let passwords: Vec<String> = (0..6)
        .map(|i| format!("{NEW_PASSWORD} number {i}"))
        .collect();
    let tasks: Vec<_> = passwords
        .iter()
        .map(|p| {
            let (api, token, p) = (app.api(), token.clone(), p.clone());
            tokio::spawn(async move { api.reset_password(&token, &p).await.status() })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let won: Vec<_> = statuses
        .iter()
        .zip(&passwords)
        .filter(|(s, _)| **s == StatusCode::NO_CONTENT)
        .map(|(_, p)| p)
        .collect();
    assert_eq!(won.len(), 1, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 204 || *s == 410),
        "{statuses:?}"
    );
    assert_eq!(app.login(email, won[0]).await.status(), 200);
    assert_eq!(outbox_count(&app, "password_changed").await, 1);
}

async fn a_deleted_users_link_is_invalid(app: TestApp) {
    let team = app.team().await;
    let token = reset_link(&app, "member@example.com", 1).await;
    assert_eq!(
        app.delete_user(&team.owner, &team.member_id).await.status(),
        204
    );
    let response = app.reset_password(&token, NEW_PASSWORD).await;
    assert_error(response, StatusCode::NOT_FOUND, "reset_token_invalid").await;
}

async fn bad_input_answers_validation_errors(app: TestApp) {
    let token = app.signed_in("ada@example.com").await;
    for (path, auth) in [
        ("/api/v1/me/password", Some(token.as_str())),
        ("/api/v1/password/forgot", None),
        ("/api/v1/password/reset", None),
    ] {
        let missing = app.post(path, json!({}), auth).await;
        assert_error(
            missing,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
        )
        .await;
        let malformed = app
            .client
            .post(app.url(path))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_error(malformed, StatusCode::BAD_REQUEST, "malformed_json").await;
    }
    let not_an_email = app.forgot_password("not an email").await;
    assert_error(
        not_an_email,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    )
    .await;
    let empty = app.change_password(&token, "", NEW_PASSWORD).await;
    let body = assert_error(empty, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
    assert_eq!(body["error"]["field"], "current_password");
    let link = reset_link(&app, "ada@example.com", 1).await;
    let weak = app.reset_password(&link, "password123456").await;
    let body = assert_error(weak, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
    assert!(
        body["error"]["fields"]["new_password"].is_string(),
        "{body}"
    );
    // A refused password does not use the link up.
    assert_eq!(app.reset_password(&link, NEW_PASSWORD).await.status(), 204);
    let anonymous = app
        .change_password("no-session", PASSWORD, NEW_PASSWORD)
        .await;
    assert_error(anonymous, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}
