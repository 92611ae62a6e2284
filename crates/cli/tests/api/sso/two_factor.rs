//! SSO and the team's 2FA requirement (SPEC §12): `exempt` leaves SSO users outside it;
//! `disable_sso` turns SSO off while it is on, emails each SSO user a link to choose a
//! password, and sends them through password sign-in and 2FA setup; without the exemption,
//! an SSO sign-in never skips the requirement.

use super::{connected, session_cookie};
use crate::helpers::{ResponseExt, TestApp, assert_error, assert_page};
use reqwest::StatusCode;
use serde_json::json;

backend_tests!(
    exempt_mode_keeps_sso_users_outside_the_requirement,
    disable_sso_refuses_sso_and_sends_sso_users_to_a_password,
    an_sso_sign_in_does_not_skip_the_requirement_for_a_user_not_exempt,
);

async fn require_2fa(app: &TestApp, owner: &str) {
    let response = app.set_2fa_policy(owner, json!({"required": true})).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response.body().await
    );
}

async fn exempt_mode_keeps_sso_users_outside_the_requirement(app: TestApp) {
    let Some(c) = connected(&app, true, "exempt").await else {
        return;
    };
    require_2fa(&app, &c.owner).await;
    let b = app.browser();
    let response = b.sso(&app, "grace@acme.test", "grace").await;
    assert_eq!(response.location(), "/");
    let token = session_cookie(&response);
    let me = app.me_body(&token).await;
    assert_eq!(me["enforcement"]["required"], true);
    assert_eq!(me["enforcement"]["status"], "exempt");
    // A full session: the home page, not the setup page.
    let (status, _) = b.get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.sessions(&token).await.status(), StatusCode::OK);
    // The exemption is the provider's MFA: with a password (from a reset link) she is like
    // anyone else.
    assert_eq!(app.forgot_password("grace@acme.test").await.status(), 202);
    let link = app.reset_token("grace@acme.test", 1).await;
    let new_password = "quartz lantern meadow violet";
    assert_eq!(app.reset_password(&link, new_password).await.status(), 204);
    let mut body = app
        .login("grace@acme.test", new_password)
        .await
        .body()
        .await;
    if body["status"] == "device_verification_required" {
        body = app.verify_device("grace@acme.test", &body).await;
    }
    assert_eq!(body["status"], "two_factor_setup_required", "{body}");
}

async fn disable_sso_refuses_sso_and_sends_sso_users_to_a_password(app: TestApp) {
    let Some(c) = connected(&app, true, "disable_sso").await else {
        return;
    };
    // Not required yet: SSO works, and provisions Grace.
    let first = app.browser().sso(&app, "grace@acme.test", "grace").await;
    assert_eq!(first.location(), "/");
    // Requiring 2FA turns SSO off, and emails her a link to choose a password.
    let b = app.browser();
    let callback = b.at_provider(&app, "grace@acme.test", "grace").await;
    require_2fa(&app, &c.owner).await;
    let token = app.reset_token("grace@acme.test", 1).await;
    assert!(app.emailed("sso_password_required").await);
    // A sign-in already at the provider is refused on its return.
    let response = b.visit(&callback).await;
    assert_page(response, StatusCode::FORBIDDEN, "single sign-on is off").await;
    let response = app
        .browser()
        .open("/login/sso?email=grace%40acme.test")
        .await;
    assert_page(response, StatusCode::FORBIDDEN, "single sign-on is off").await;
    let response = app
        .post(
            "/api/v1/login/sso",
            json!({"email": "grace@acme.test"}),
            None,
        )
        .await;
    assert_error(response, StatusCode::FORBIDDEN, "sso_disabled").await;
    // Her first session is no longer exempt: set up 2FA first.
    let me = app.me_body(&session_cookie(&first)).await;
    assert_eq!(me["enforcement"]["status"], "setup_required");
    // The password path: choose one with the link, sign in, set up 2FA.
    let new_password = "quartz lantern meadow violet";
    assert_eq!(app.reset_password(&token, new_password).await.status(), 204);
    let response = app.login("grace@acme.test", new_password).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.body().await;
    if body["status"] == "device_verification_required" {
        body = app.verify_device("grace@acme.test", &body).await;
    }
    assert_eq!(body["status"], "two_factor_setup_required", "{body}");
}

async fn an_sso_sign_in_does_not_skip_the_requirement_for_a_user_not_exempt(app: TestApp) {
    let Some(c) = connected(&app, false, "exempt").await else {
        return;
    };
    // Ada signs in with a password (she is linked, not an SSO user): not exempt.
    app.join(&c.owner, "ada@acme.test", "member").await;
    require_2fa(&app, &c.owner).await;
    let b = app.browser();
    let response = b.sso(&app, "ada@acme.test", "ada").await;
    assert_eq!(response.location(), "/");
    let token = session_cookie(&response);
    let me = app.me_body(&token).await;
    assert_eq!(me["enforcement"]["status"], "setup_required");
    // The session may only set up 2FA: the pages send her there.
    let home = b.open("/").await;
    assert_eq!(home.status(), StatusCode::SEE_OTHER);
    assert_eq!(home.location(), "/settings/security");
    assert_error(
        app.sessions(&token).await,
        StatusCode::FORBIDDEN,
        "two_factor_setup_required",
    )
    .await;
    // With 2FA on, an SSO sign-in asks for the second step, like a password.
    if app.enable_2fa(&token).await.is_none() {
        return;
    }
    let response = app.browser().sso(&app, "ada@acme.test", "ada").await;
    assert_eq!(response.location(), "/login/2fa");
}
