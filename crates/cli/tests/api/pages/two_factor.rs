//! 2FA on the pages: turning it on and off on the security page, the second step of
//! sign-in, and the recovery page.

use crate::helpers::{PASSWORD, PageBrowser, ResponseExt, TestApp, assert_page};
use reqwest::StatusCode;

backend_tests!(
    enable_2fa_download_codes_and_sign_in_with_a_code,
    a_recovery_code_signs_in_and_the_password_turns_2fa_off,
    the_recovery_page_turns_2fa_off_with_the_paper_key,
);

/// Signs out, then in with the password: the second step's page.
async fn sign_out_and_reach_the_second_step(b: &PageBrowser, email: &str) -> String {
    let (_, home) = b.get("/").await;
    b.sign_out(&home).await;
    let response = b.post_password(email, PASSWORD).await;
    assert_eq!(response.location(), "/login/2fa");
    let challenge_cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(
        challenge_cookie.starts_with("tessera_challenge=") && challenge_cookie.contains("HttpOnly")
    );
    let (status, html) = b.get("/login/2fa").await;
    assert_eq!(status, StatusCode::OK);
    html
}

async fn enable_2fa_download_codes_and_sign_in_with_a_code(app: TestApp) {
    let b = app.browser_signed_up("page2fa@example.com").await;
    let Some(factor) = b.enable_2fa(&app).await else {
        return;
    };
    let (_, html) = b.get("/settings/security").await;
    assert!(html.contains("Recovery codes left: <strong>10</strong>"));

    let html = sign_out_and_reach_the_second_step(&b, "page2fa@example.com").await;
    let response = b.submit(&html, "/login/2fa", &[("code", "000000")]).await;
    assert_page(
        response,
        StatusCode::UNAUTHORIZED,
        "That code is not valid. 4 attempts left.",
    )
    .await;
    let code = app.totp(&factor);
    let response = b.submit(&html, "/login/2fa", &[("code", &code)]).await;
    assert_eq!(response.location(), "/");
    let (status, home) = b.get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(home.contains("Welcome, Ada"));
}

async fn a_recovery_code_signs_in_and_the_password_turns_2fa_off(app: TestApp) {
    let b = app.browser_signed_up("page2fa@example.com").await;
    let Some(factor) = b.enable_2fa(&app).await else {
        return;
    };
    let html = sign_out_and_reach_the_second_step(&b, "page2fa@example.com").await;
    let code = &factor.recovery_codes[0];
    let response = b.submit(&html, "/login/2fa", &[("code", code)]).await;
    assert_eq!(response.location(), "/");
    let (_, html) = b.get("/settings/security").await;
    assert!(html.contains("Recovery codes left: <strong>9</strong>"));
    let wrong = [("password", "wrong password")];
    let response = b.submit(&html, "/settings/security/disable", &wrong).await;
    assert_page(response, StatusCode::UNAUTHORIZED, "Incorrect password.").await;
    let right = [("password", PASSWORD)];
    let response = b.submit(&html, "/settings/security/disable", &right).await;
    assert_eq!(response.location(), "/settings/security?notice=disabled");
    let (_, html) = b.get("/settings/security?notice=disabled").await;
    assert!(html.contains("Two-factor authentication is off."));
}

async fn the_recovery_page_turns_2fa_off_with_the_paper_key(app: TestApp) {
    let b = app.browser_signed_up("pagepaper@example.com").await;
    let Some(factor) = b.enable_2fa(&app).await else {
        return;
    };
    let other = app.browser();
    let (status, html) = other.get("/recover").await;
    assert_eq!(status, StatusCode::OK);
    let wrong = "a".repeat(64);
    let fields = [("email", "pagepaper@example.com"), ("paper_key", &wrong)];
    let response = other.submit(&html, "/recover", &fields).await;
    assert_page(
        response,
        StatusCode::UNAUTHORIZED,
        "That email and paper key do not match.",
    )
    .await;
    let fields = [
        ("email", "pagepaper@example.com"),
        ("paper_key", &factor.paper_key),
    ];
    let response = other.submit(&html, "/recover", &fields).await;
    assert_page(
        response,
        StatusCode::OK,
        "Two-factor authentication is now off.",
    )
    .await;
    let body = app
        .login("pagepaper@example.com", PASSWORD)
        .await
        .body()
        .await;
    // Password only now (and, from a browser never verified, the emailed code).
    assert_eq!(body["status"], "device_verification_required");
    let body = app.verify_device("pagepaper@example.com", &body).await;
    assert_eq!(body["status"], "authenticated");
}
