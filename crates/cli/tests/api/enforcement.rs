//! The account's 2FA requirement (Mailtrap, SparkPost): the policy endpoints, the grace
//! period in the future, past and absent, sessions restricted to 2FA setup (new and
//! existing), and turning the requirement off.

use crate::helpers::{PASSWORD, ResponseExt, TestApp, assert_error};
use reqwest::{Response, StatusCode};
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

async fn assert_restricted(response: Response) {
    assert_error(response, StatusCode::FORBIDDEN, "two_factor_setup_required").await;
}

async fn required_without_grace_restricts_sign_in_to_2fa_setup(app: TestApp) {
    let owner = app.owner_with_2fa("owner@example.com").await;
    app.join(&owner, "member@example.com", "member").await;
    let (_, admin) = app.join(&owner, "admin@example.com", "admin").await;
    let response = app.set_2fa_policy(&owner, json!({"required": true})).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.body().await,
        json!({"status": "required", "grace_period_until": null})
    );

    let body = app.login("member@example.com", PASSWORD).await.body().await;
    assert_eq!(body["status"], "two_factor_setup_required", "{body}");
    let token = body["session_token"].as_str().unwrap().to_owned();
    assert_eq!(body["user"]["email"], "member@example.com");
    let status = app.me_body(&token).await;
    assert_eq!(status["enforcement"]["status"], "setup_required");
    assert_eq!(status["enforcement"]["required"], true);
    assert_restricted(app.events(&token, "").await).await;

    // After activation the same session is a full one.
    let Some(_) = app.enable_2fa(&token).await else {
        return;
    };
    assert_eq!(app.events(&token, "").await.status(), 200);
    let status = app.me_body(&token).await;
    assert_eq!(status["enforcement"]["status"], "compliant");
    // Admins are held to it too.
    assert_restricted(app.users(&admin).await).await;
}

async fn a_restricted_session_may_call_only_the_four_allowed_endpoints(app: TestApp) {
    let t = app.team().await;
    let required = app
        .set_2fa_policy(&t.admin, json!({"required": true}))
        .await;
    assert_eq!(required.status(), 200);
    let token = app.signed_in_again("member@example.com").await;
    let refused = [
        ("GET /me/events", app.events(&token, "").await),
        ("GET /me/devices", app.devices(&token).await),
        ("GET /me/sessions", app.sessions(&token).await),
        ("DELETE /me/sessions", app.end_other_sessions(&token).await),
        ("GET /account", app.account(&token).await),
        ("GET /account/users", app.users(&token).await),
        ("GET /account/events", app.account_events(&token, "").await),
        ("GET /account/invitations", app.invitations(&token).await),
        (
            "POST /me/2fa/disable",
            app.disable_2fa(&token, PASSWORD).await,
        ),
        (
            "POST /me/2fa/recovery-codes",
            app.regenerate_recovery_codes(&token, PASSWORD).await,
        ),
        (
            "POST /account/invitations",
            app.invite(&token, "x@example.com", "member").await,
        ),
        (
            "POST /account/users/{id}/two-factor/reset",
            app.reset_2fa(&token, &t.member_id).await,
        ),
        (
            "PUT /account/two-factor-policy",
            app.set_2fa_policy(&token, json!({"required": false})).await,
        ),
        (
            "DELETE /account/users/{id}",
            app.delete_user(&token, &t.member_id).await,
        ),
    ];
    for (endpoint, response) in refused {
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{endpoint}");
        let body = response.body().await;
        assert_eq!(
            body["error"]["code"], "two_factor_setup_required",
            "{endpoint}"
        );
    }
    // The four allowed.
    assert_eq!(app.me(&token).await.status(), 200);
    let Some(_) = app.enable_2fa(&token).await else {
        return;
    };
    app.join(&t.owner, "other@example.com", "member").await;
    let other = app.signed_in_again("other@example.com").await;
    assert_eq!(app.setup_2fa(&other).await.status(), 200);
    assert_eq!(app.logout(&other).await.status(), 204);
}

async fn during_the_grace_period_users_sign_in_and_are_told_the_deadline(app: TestApp) {
    let owner = app.owner_with_2fa("owner@example.com").await;
    app.join(&owner, "member@example.com", "member").await;
    let deadline = app.clock.now().plus_secs(3 * 24 * 3600).to_rfc3339();
    let policy = json!({"required": true, "grace_period_until": deadline});
    let response = app.set_2fa_policy(&owner, policy).await;
    assert_eq!(response.status(), 200);
    let policy = response.body().await;
    assert_eq!(policy["status"], "required");
    assert_eq!(policy["grace_period_until"], deadline);

    let body = app.login("member@example.com", PASSWORD).await.body().await;
    assert_eq!(body["status"], "authenticated", "{body}");
    assert_eq!(
        body["two_factor_setup"],
        json!({"required": true, "deadline": deadline})
    );
    let token = body["session_token"].as_str().unwrap();
    let status = app.me_body(token).await;
    assert_eq!(status["enforcement"]["status"], "grace");
    assert_eq!(status["enforcement"]["grace_period_until"], deadline);
    assert_eq!(app.events(token, "").await.status(), 200);
    let account = app.account(&owner).await.body().await;
    assert_eq!(account["two_factor_policy"]["status"], "required");
    assert_eq!(account["name"], "Acme");
}

async fn after_the_grace_period_existing_sessions_are_restricted_too(app: TestApp) {
    let owner = app.owner_with_2fa("owner@example.com").await;
    let (_, member) = app.join(&owner, "member@example.com", "member").await;
    // 20 minutes of grace: under the 30-minute idle timeout (SPEC §8) of the member's session.
    let grace = app.clock.now().plus_secs(1200);
    let policy = json!({"required": true, "grace_period_until": grace.to_rfc3339()});
    assert_eq!(app.set_2fa_policy(&owner, policy).await.status(), 200);
    app.clock.advance(1199);
    assert_eq!(app.events(&member, "").await.status(), 200);
    app.clock.advance(1);
    // The session opened during the grace period is now restricted.
    assert_restricted(app.events(&member, "").await).await;
    let status = app.me_body(&member).await;
    assert_eq!(status["enforcement"]["status"], "setup_required");
    let body = app.login("member@example.com", PASSWORD).await.body().await;
    assert_eq!(body["status"], "two_factor_setup_required");
}

async fn turning_the_requirement_off_changes_no_users_settings(app: TestApp) {
    let owner = app.owner_with_2fa("owner@example.com").await;
    let (_, member) = app.join(&owner, "member@example.com", "member").await;
    app.set_2fa_policy(&owner, json!({"required": true})).await;
    assert_eq!(app.events(&member, "").await.status(), 403);
    // While it is required, nobody turns their own 2FA off (an admin may reset it).
    let refused = app.disable_2fa(&owner, PASSWORD).await;
    let body = assert_error(refused, StatusCode::FORBIDDEN, "forbidden").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("requires")
    );
    let response = app.set_2fa_policy(&owner, json!({"required": false})).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.body().await,
        json!({"status": "optional", "grace_period_until": null})
    );
    // The restricted member is free again; the owner keeps 2FA.
    assert_eq!(app.events(&member, "").await.status(), 200);
    let status = app.me_body(&owner).await;
    assert_eq!(status["two_factor"]["enabled"], true);
    assert_eq!(status["enforcement"]["status"], "not_required");
    let body = app.login("owner@example.com", PASSWORD).await.body().await;
    assert_eq!(body["status"], "two_factor_required");
}

async fn turning_it_on_emails_every_user_once(app: TestApp) {
    let t = app.team().await;
    let recipients = async || {
        let outbox = app.store().await.list_outbox(true, 100).await.unwrap();
        outbox
            .into_iter()
            .filter(|e| e.kind == "two_factor_required")
            .map(|e| e.recipient)
            .collect::<Vec<_>>()
    };
    // Two admins switch it on at the same moment: everyone is emailed once.
    let policy = json!({"required": true, "grace_period_until": "2099-01-01"});
    let (a, b) = tokio::join!(
        app.set_2fa_policy(&t.owner, policy.clone()),
        app.set_2fa_policy(&t.admin, policy),
    );
    assert_eq!((a.status(), b.status()), (StatusCode::OK, StatusCode::OK));
    let mut sent = recipients().await;
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
    app.set_2fa_policy(&t.owner, json!({"required": true}))
        .await;
    assert_eq!(recipients().await.len(), 3);
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
    let owner = app.owner_with_2fa("owner@example.com").await;
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
        let response = app.set_2fa_policy(&owner, body.clone()).await;
        let error = assert_invalid(response).await;
        assert_eq!(error["error"]["field"], field, "{body}");
    }
    for body in [
        json!({"required": "yes"}),
        json!({}),
        json!({"required": true, "extra": 1}),
    ] {
        assert_invalid(app.set_2fa_policy(&owner, body).await).await;
    }
    // A date means the start of that day, UTC.
    let policy = json!({"required": true, "grace_period_until": "2099-01-01"});
    let policy = app.set_2fa_policy(&owner, policy).await.body().await;
    assert_eq!(policy["grace_period_until"], "2099-01-01T00:00:00Z");
    app.set_2fa_policy(&owner, json!({"required": false})).await;
    // Nothing was changed by the refused requests.
    let account = app.account(&owner).await.body().await;
    assert_eq!(
        account["two_factor_policy"],
        json!({"status": "optional", "grace_period_until": null})
    );
}

async fn assert_invalid(response: Response) -> Value {
    assert_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    )
    .await
}
