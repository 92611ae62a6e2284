//! The account's 2FA requirement (Mailtrap, SparkPost): the policy endpoints, the grace
//! period in the future, past and absent, sessions restricted to 2FA setup (new and
//! existing), and turning the requirement off.

use crate::helpers::{PASSWORD, TestApp, assert_error};
use crate::otp::oathtool;
use crate::team::{join, team};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera_core::Clock;

backend_tests!(
    required_without_grace_restricts_sign_in_to_2fa_setup,
    a_restricted_session_may_call_only_the_four_allowed_endpoints,
    during_the_grace_period_users_sign_in_and_are_told_the_deadline,
    after_the_grace_period_existing_sessions_are_restricted_too,
    turning_the_requirement_off_changes_no_users_settings,
    turning_it_on_emails_every_user_once,
    the_policy_input_is_checked,
);

async fn set_policy(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.put("/api/v1/account/two-factor-policy", body, Some(token))
        .await
}

async fn me(app: &TestApp, token: &str) -> Value {
    let response = app.get("/api/v1/me", Some(token)).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Sets up and activates 2FA with `token` (which may be restricted): the secret.
async fn activate(app: &TestApp, token: &str) -> Option<String> {
    let setup: Value = app
        .post("/api/v1/me/2fa/setup", json!({}), Some(token))
        .await
        .json()
        .await
        .unwrap();
    let secret = setup["secret"].as_str().unwrap().to_owned();
    let code = oathtool(&secret, app.clock.now())?;
    let response = app
        .post(
            "/api/v1/me/2fa/activate",
            json!({"code": code}),
            Some(token),
        )
        .await;
    assert_eq!(response.status(), 200);
    Some(secret)
}

async fn required_without_grace_restricts_sign_in_to_2fa_setup(app: TestApp) {
    let owner = app.signed_in("owner@example.com").await;
    let (_, _member) = join(&app, &owner, "member@example.com", "member").await;
    let response = set_policy(&app, &owner, json!({"required": true})).await;
    assert_eq!(response.status(), 200);
    let policy: Value = response.json().await.unwrap();
    assert_eq!(
        policy,
        json!({"status": "required", "grace_period_until": null})
    );

    let body: Value = app
        .login("member@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "two_factor_setup_required", "{body}");
    let token = body["session_token"].as_str().unwrap().to_owned();
    assert_eq!(body["user"]["email"], "member@example.com");
    let status = me(&app, &token).await;
    assert_eq!(status["enforcement"]["status"], "setup_required");
    assert_eq!(status["enforcement"]["required"], true);
    assert_error(
        app.get("/api/v1/me/events", Some(&token)).await,
        StatusCode::FORBIDDEN,
        "two_factor_setup_required",
    )
    .await;

    // After activation the same session is a full one.
    let Some(_) = activate(&app, &token).await else {
        return;
    };
    assert_eq!(
        app.get("/api/v1/me/events", Some(&token)).await.status(),
        200
    );
    assert_eq!(me(&app, &token).await["enforcement"]["status"], "compliant");
    // The owner is held to it too: admins included.
    assert_error(
        app.get("/api/v1/account/users", Some(&owner)).await,
        StatusCode::FORBIDDEN,
        "two_factor_setup_required",
    )
    .await;
}

async fn a_restricted_session_may_call_only_the_four_allowed_endpoints(app: TestApp) {
    let t = team(&app).await;
    assert_eq!(
        set_policy(&app, &t.admin, json!({"required": true}))
            .await
            .status(),
        200
    );
    let token = app.signed_in_again("member@example.com").await;
    let member = format!("/api/v1/account/users/{}", t.member_id);
    let refused = [
        ("GET", "/api/v1/me/events".to_owned()),
        ("GET", "/api/v1/me/devices".to_owned()),
        ("GET", "/api/v1/me/sessions".to_owned()),
        ("DELETE", "/api/v1/me/sessions".to_owned()),
        ("GET", "/api/v1/account".to_owned()),
        ("GET", "/api/v1/account/users".to_owned()),
        ("GET", "/api/v1/account/events".to_owned()),
        ("GET", "/api/v1/account/invitations".to_owned()),
        ("POST", "/api/v1/me/2fa/disable".to_owned()),
        ("POST", "/api/v1/me/2fa/recovery-codes".to_owned()),
        ("POST", "/api/v1/account/invitations".to_owned()),
        ("POST", format!("{member}/two-factor/reset")),
        ("PUT", "/api/v1/account/two-factor-policy".to_owned()),
        ("DELETE", member.clone()),
    ];
    for (method, path) in &refused {
        let body = json!({"password": PASSWORD, "required": false, "email": "x@example.com",
                          "name": "X", "role": "member"});
        let response = match *method {
            "GET" => app.get(path, Some(&token)).await,
            "POST" => app.post(path, body, Some(&token)).await,
            "PUT" => app.put(path, body, Some(&token)).await,
            _ => app.delete(path, Some(&token)).await,
        };
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{method} {path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["error"]["code"], "two_factor_setup_required",
            "{method} {path}"
        );
    }
    // The four allowed.
    assert_eq!(app.get("/api/v1/me", Some(&token)).await.status(), 200);
    let Some(_) = activate(&app, &token).await else {
        return;
    };
    let other = app.signed_in_again("admin@example.com").await;
    let setup = app
        .post("/api/v1/me/2fa/setup", json!({}), Some(&other))
        .await;
    assert_eq!(setup.status(), 200);
    assert_eq!(
        app.post("/api/v1/logout", json!({}), Some(&other))
            .await
            .status(),
        204
    );
}

async fn during_the_grace_period_users_sign_in_and_are_told_the_deadline(app: TestApp) {
    let owner = app.signed_in("owner@example.com").await;
    join(&app, &owner, "member@example.com", "member").await;
    let deadline = app.clock.now().plus_secs(3 * 24 * 3600);
    let response = set_policy(
        &app,
        &owner,
        json!({"required": true, "grace_period_until": deadline.to_rfc3339()}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let policy: Value = response.json().await.unwrap();
    assert_eq!(policy["status"], "required");
    assert_eq!(policy["grace_period_until"], deadline.to_rfc3339());

    let body: Value = app
        .login("member@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "authenticated", "{body}");
    assert_eq!(
        body["two_factor_setup"],
        json!({"required": true, "deadline": deadline.to_rfc3339()})
    );
    let token = body["session_token"].as_str().unwrap();
    let status = me(&app, token).await;
    assert_eq!(status["enforcement"]["status"], "grace");
    assert_eq!(
        status["enforcement"]["grace_period_until"],
        deadline.to_rfc3339()
    );
    assert_eq!(
        app.get("/api/v1/me/events", Some(token)).await.status(),
        200
    );
    let account: Value = app
        .get("/api/v1/account", Some(&owner))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(account["two_factor_policy"]["status"], "required");
    assert_eq!(account["name"], "Acme");
}

async fn after_the_grace_period_existing_sessions_are_restricted_too(app: TestApp) {
    let owner = app.signed_in("owner@example.com").await;
    let (_, member) = join(&app, &owner, "member@example.com", "member").await;
    let grace = app.clock.now().plus_secs(3600);
    let response = set_policy(
        &app,
        &owner,
        json!({"required": true, "grace_period_until": grace.to_rfc3339()}),
    )
    .await;
    assert_eq!(response.status(), 200);
    app.clock.advance(3599);
    assert_eq!(
        app.get("/api/v1/me/events", Some(&member)).await.status(),
        200
    );
    app.clock.advance(1);
    // The session opened during the grace period is now restricted.
    assert_error(
        app.get("/api/v1/me/events", Some(&member)).await,
        StatusCode::FORBIDDEN,
        "two_factor_setup_required",
    )
    .await;
    assert_eq!(
        me(&app, &member).await["enforcement"]["status"],
        "setup_required"
    );
    let body: Value = app
        .login("member@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "two_factor_setup_required");
}

async fn turning_the_requirement_off_changes_no_users_settings(app: TestApp) {
    let owner = app.signed_in("owner@example.com").await;
    let (_, member) = join(&app, &owner, "member@example.com", "member").await;
    let Some(_) = crate::two_factor::enable_2fa(&app, &owner).await else {
        return;
    };
    set_policy(&app, &owner, json!({"required": true})).await;
    assert_eq!(
        app.get("/api/v1/me/events", Some(&member)).await.status(),
        403
    );
    // While it is required, nobody turns their own 2FA off (an admin may reset it).
    let refused = app
        .post(
            "/api/v1/me/2fa/disable",
            json!({"password": PASSWORD}),
            Some(&owner),
        )
        .await;
    let body = assert_error(refused, StatusCode::FORBIDDEN, "forbidden").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("requires")
    );
    let response = set_policy(&app, &owner, json!({"required": false})).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"status": "optional", "grace_period_until": null})
    );
    // The restricted member is free again; the owner keeps 2FA.
    assert_eq!(
        app.get("/api/v1/me/events", Some(&member)).await.status(),
        200
    );
    let status = me(&app, &owner).await;
    assert_eq!(status["two_factor"]["enabled"], true);
    assert_eq!(status["enforcement"]["status"], "not_required");
    let body: Value = app
        .login("owner@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "two_factor_required");
}

async fn turning_it_on_emails_every_user_once(app: TestApp) {
    let t = team(&app).await;
    let kinds = async || {
        app.store()
            .await
            .list_outbox(true, 100)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "two_factor_required")
            .map(|e| e.recipient)
            .collect::<Vec<_>>()
    };
    // Two admins switch it on at the same moment: everyone is emailed once.
    let (a, b) = tokio::join!(
        set_policy(
            &app,
            &t.owner,
            json!({"required": true, "grace_period_until": "2099-01-01"})
        ),
        set_policy(
            &app,
            &t.admin,
            json!({"required": true, "grace_period_until": "2099-01-01"})
        ),
    );
    assert_eq!((a.status(), b.status()), (StatusCode::OK, StatusCode::OK));
    let mut sent = kinds().await;
    sent.sort();
    assert_eq!(
        sent,
        [
            "admin@example.com",
            "member@example.com",
            "owner@example.com"
        ]
    );
    // Changing the grace period, or setting it again, emails no one.
    set_policy(&app, &t.owner, json!({"required": true})).await;
    assert_eq!(kinds().await.len(), 3);
    let required = app
        .mail_containing(
            "member@example.com",
            "now requires two-factor authentication",
        )
        .await;
    assert_eq!(
        required.subject,
        "Acme now requires two-factor authentication"
    );
    assert!(
        required.text.contains("before 2099-01-01 00:00 UTC"),
        "{}",
        required.text
    );
}

async fn the_policy_input_is_checked(app: TestApp) {
    let owner = app.signed_in("owner@example.com").await;
    for (body, field) in [
        (
            json!({"required": true, "grace_period_until": "next week"}),
            "grace_period_until",
        ),
        (
            json!({"required": true, "grace_period_until": "2020-01-01"}),
            "grace_period_until",
        ),
        (
            json!({"required": false, "grace_period_until": "2099-01-01"}),
            "grace_period_until",
        ),
    ] {
        let response = set_policy(&app, &owner, body.clone()).await;
        let error = assert_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
        )
        .await;
        assert_eq!(error["error"]["field"], field, "{body}");
    }
    for body in [
        json!({"required": "yes"}),
        json!({}),
        json!({"required": true, "extra": 1}),
    ] {
        let response = set_policy(&app, &owner, body).await;
        assert_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
        )
        .await;
    }
    // A date means the start of that day, UTC.
    let policy: Value = set_policy(
        &app,
        &owner,
        json!({"required": true, "grace_period_until": "2099-01-01"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(policy["grace_period_until"], "2099-01-01T00:00:00Z");
    set_policy(&app, &owner, json!({"required": false})).await;
    // Nothing was changed by the refused requests.
    let account: Value = app
        .get("/api/v1/account", Some(&owner))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        account["two_factor_policy"],
        json!({"status": "optional", "grace_period_until": null})
    );
}
