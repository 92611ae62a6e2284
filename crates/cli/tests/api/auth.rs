//! Sign-up, sign-in, `/me`, sessions and sign-out through the API.

use crate::helpers::{PASSWORD, ResponseExt, TestApp, assert_error};
use reqwest::StatusCode;
use serde_json::{Value, json};

backend_tests!(
    signup_login_me_logout,
    signup_refuses_a_taken_email_in_any_case,
    signup_validates_every_field,
    wrong_password_and_unknown_email_answer_identically,
    login_ignores_email_case,
    each_login_gets_a_new_session,
    sessions_expire_after_12_hours,
    logout_ends_only_that_session,
    requests_without_a_valid_session_are_refused,
    security_events_record_the_story,
);

async fn signup_login_me_logout(app: TestApp) {
    let created = app.signed_up("ada@example.com").await;
    assert_eq!(created["user"]["email"], "ada@example.com");
    assert_eq!(created["user"]["role"], "owner");
    assert_eq!(created["user"]["two_factor_enabled"], false);
    assert_eq!(created["account"]["name"], "Acme");
    assert_eq!(
        created["account"]["two_factor_policy"]["status"],
        "optional"
    );
    assert!(created["user"].get("password").is_none());

    // A first sign-in from a new device: a code by email (the user has no 2FA).
    let response = app.login("ada@example.com", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.body().await;
    assert_eq!(body["status"], "device_verification_required", "{body}");
    assert_eq!(body["methods"], json!(["email_code"]));
    assert!(body.get("session_token").is_none());
    let body = app.verify_device("ada@example.com", &body).await;
    assert_eq!(body["status"], "authenticated");
    assert_eq!(body["two_factor_setup"], Value::Null);
    assert_eq!(body["user"]["id"], created["user"]["id"]);
    let token = body["session_token"].as_str().unwrap();
    assert_eq!(token.len(), 43, "256 bits in base64url");
    let expires = body["expires_at"].as_str().unwrap();
    assert!(expires.ends_with('Z'), "{expires}");

    let me = app.me(token).await.body().await;
    assert_eq!(me["user"]["email"], "ada@example.com");
    assert_eq!(me["account"]["id"], created["account"]["id"]);
    assert_eq!(
        me["two_factor"],
        json!({"enabled": false, "enabled_at": null, "recovery_codes_remaining": 0,
               "pending_setup": false})
    );
    assert_eq!(
        me["enforcement"],
        json!({"required": false, "grace_period_until": null, "status": "not_required"})
    );

    assert_eq!(app.logout(token).await.status(), StatusCode::NO_CONTENT);
    let response = app.me(token).await;
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

async fn signup_refuses_a_taken_email_in_any_case(app: TestApp) {
    app.signed_up("grace@example.com").await;
    let response = app
        .signup(
            &json!({"account_name": "Other", "name": "G", "email": "GRACE@Example.com",
                        "password": "another password"}),
        )
        .await;
    assert_error(response, StatusCode::CONFLICT, "email_taken").await;
    // The first owner's password still works; the second was not saved anywhere.
    assert_eq!(app.login("grace@example.com", PASSWORD).await.status(), 200);
    let response = app.login("grace@example.com", "another password").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

async fn signup_validates_every_field(app: TestApp) {
    let valid = json!({"account_name": "Acme", "name": "Ada", "email": "v@example.com",
                       "password": PASSWORD});
    let cases = [
        ("account_name", json!("  ")),
        ("name", json!("")),
        ("name", json!("x".repeat(101))),
        ("email", json!("not-an-email")),
        ("email", json!("a b@example.com")),
        ("password", json!("short")),
        ("password", json!("eleven char")),
        ("password", json!("v@example.com")),
        ("password", json!("p".repeat(129))),
        ("password", json!("password1234")),
    ];
    for (field, value) in cases {
        let mut body = valid.clone();
        body[field] = value.clone();
        let response = app.signup(&body).await;
        let error = assert_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
        )
        .await;
        assert_eq!(error["error"]["field"], field, "{field} = {value}");
        let hint = error["error"]["fields"][field].as_str().unwrap_or_default();
        assert!(!hint.is_empty(), "{field} = {value}: no hint in {error}");
    }
    // A guessable password is refused with the strength estimator's reasons.
    let mut body = valid.clone();
    body["password"] = json!("qwertyuiop123");
    let error = assert_error(
        app.signup(&body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    )
    .await;
    let hint = error["error"]["fields"]["password"].as_str().unwrap();
    assert!(hint.starts_with("is too easy to guess:"), "{hint}");
    // None of the refused sign-ups exists.
    let response = app.login("v@example.com", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

async fn wrong_password_and_unknown_email_answer_identically(app: TestApp) {
    app.signed_up("known@example.com").await;
    let wrong = app.login("known@example.com", "wrong password").await;
    let unknown = app.login("nobody@example.com", "wrong password").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    let header_names = |r: &reqwest::Response| {
        let mut names: Vec<_> = r
            .headers()
            .iter()
            .filter(|(k, _)| *k != "date")
            .map(|(k, v)| format!("{k}: {v:?}"))
            .collect();
        names.sort();
        names
    };
    assert_eq!(header_names(&wrong), header_names(&unknown));
    let wrong = wrong.bytes().await.unwrap();
    let unknown = unknown.bytes().await.unwrap();
    assert_eq!(wrong, unknown, "byte-identical bodies");
    let body: Value = serde_json::from_slice(&wrong).unwrap();
    assert_eq!(body["error"]["code"], "invalid_credentials");
}

async fn login_ignores_email_case(app: TestApp) {
    app.signed_up("Mixed.Case@Example.com").await;
    let response = app.login("  mixed.case@EXAMPLE.com ", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.body().await;
    let body = app.verify_device("Mixed.Case@Example.com", &body).await;
    assert_eq!(body["user"]["email"], "Mixed.Case@Example.com");
}

async fn each_login_gets_a_new_session(app: TestApp) {
    let first = app.signed_in("two@example.com").await;
    let second = app.signed_in_again("two@example.com").await;
    assert_ne!(first, second);
    assert_eq!(app.me(&first).await.status(), 200);
    assert_eq!(app.me(&second).await.status(), 200);
}

/// SPEC §8: 12 h at most, even for a session in use (every 20 min, under the idle timeout).
async fn sessions_expire_after_12_hours(app: TestApp) {
    let token = app.signed_in("clock@example.com").await;
    for _ in 0..35 {
        app.clock.advance(20 * 60);
        assert_eq!(app.me(&token).await.status(), 200);
    }
    app.clock.advance(20 * 60 - 1);
    assert_eq!(app.me(&token).await.status(), 200);
    app.clock.advance(1);
    let response = app.me(&token).await;
    assert_error(response, StatusCode::UNAUTHORIZED, "session_expired").await;
}

async fn logout_ends_only_that_session(app: TestApp) {
    let first = app.signed_in("multi@example.com").await;
    let second = app.signed_in_again("multi@example.com").await;
    assert_eq!(app.logout(&first).await.status(), 204);
    assert_eq!(app.me(&first).await.status(), 401);
    assert_eq!(app.me(&second).await.status(), 200);
    // Signing out again with the ended token is refused, not an error of the server.
    let response = app.logout(&first).await;
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

async fn requests_without_a_valid_session_are_refused(app: TestApp) {
    for (path, auth) in [
        ("/api/v1/me", None),
        ("/api/v1/me", Some("Bearer")),
        ("/api/v1/me", Some("Bearer not-a-token")),
        ("/api/v1/me", Some("Basic YWRhOnB3")),
        ("/api/v1/me/events", Some("Bearer ")),
    ] {
        let mut request = app.client.get(app.url(path));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap()),
            Some("Bearer")
        );
        assert_error(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    // The page session cookie is not an API credential.
    let token = app.signed_in("cookie@example.com").await;
    let response = app
        .client
        .get(app.url("/api/v1/me"))
        .header("cookie", format!("tessera_session={token}"))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

const STORY_BROWSER: &str = "StoryBrowser/1.0";

async fn security_events_record_the_story(app: TestApp) {
    app.signed_up("story@example.com").await;
    assert_eq!(
        app.login("story@example.com", "nope nope").await.status(),
        401
    );
    let challenge = app
        .login_as("story@example.com", STORY_BROWSER, None)
        .await
        .body()
        .await;
    let code = app.device_code("story@example.com", 1).await;
    let challenge = challenge["challenge_token"].as_str().unwrap();
    let signed_in = app
        .verify_as(STORY_BROWSER, challenge, &code)
        .await
        .body()
        .await;
    let device = signed_in["device_token"].as_str().unwrap();
    let token = signed_in["session_token"].as_str().unwrap();
    the_events_tell_the_story_newest_first(&app, token).await;

    // Signed out, then in again from the same (now recognized) browser: no code this time.
    app.logout(token).await;
    let again = app
        .login_as("story@example.com", STORY_BROWSER, Some(device))
        .await
        .body()
        .await;
    assert_eq!(again["status"], "authenticated", "{again}");
    let again = again["session_token"].as_str().unwrap();
    let body = app.events(again, "limit=2").await.body().await;
    assert_eq!(body["events"][1]["kind"], "sign_out");
}

/// The events of the story's first sign-in, whole and paged one at a time.
async fn the_events_tell_the_story_newest_first(app: &TestApp, token: &str) {
    let body = app.events(token, "").await.body().await;
    let kinds: Vec<_> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        ["device_verified", "sign_in", "sign_in_failed", "signup"]
    );
    assert_eq!(body["events"][0]["detail"]["user_agent"], STORY_BROWSER);
    let sign_in = &body["events"][1];
    assert_eq!(sign_in["ip"], "127.0.0.1");
    assert_eq!(sign_in["user_agent"], STORY_BROWSER);
    assert_eq!(sign_in["detail"]["method"], "email_code");
    assert_eq!(body["next_before"], Value::Null);

    // Paging: one at a time, newest first.
    let page = app.events(token, "limit=1").await.body().await;
    assert_eq!(page["events"][0]["kind"], "device_verified");
    let next = page["next_before"].as_i64().unwrap();
    let query = format!("limit=1&before={next}");
    let page = app.events(token, &query).await.body().await;
    assert_eq!(page["events"][0]["kind"], "sign_in");
}
