//! Passwords in Chromium (SPEC §8): changing one on the security page (with the estimator's
//! hint beside the field), and a forgotten one: the link on the sign-in page, the email
//! read from the SMTP server, the reset page, and signing in with the new password.

use super::{browser_tests, sign_in};
use crate::browser::Browser;
use crate::helpers::{PASSWORD, TestApp};

browser_tests!(
    a_user_changes_the_password_on_the_security_page,
    a_forgotten_password_is_reset_through_the_emailed_link,
);

const NEW_PASSWORD: &str = "quartz lantern meadow violet";

async fn a_user_changes_the_password_on_the_security_page(app: TestApp, b: Browser) {
    let email = "ada@example.com";
    app.signed_up(email).await;
    sign_in(&app, &b, email, false).await;
    b.open("/settings/security").await;
    b.fill("Current password", PASSWORD).await;
    b.fill("New password", "password123456").await;
    b.press("Change password").await;
    let text = b.text().await;
    assert!(text.contains("Choose another new password."), "{text}");
    b.screenshot("security-password-refused").await;
    b.fill("Current password", PASSWORD).await;
    b.fill("New password", NEW_PASSWORD).await;
    b.press("Change password").await;
    assert!(b.text().await.contains("Your password is changed."));
    b.screenshot("security-password-changed").await;
    let mail = app
        .mail_containing(email, "changed from your security settings")
        .await;
    assert_eq!(mail.subject, "Your Tessera password was changed");
    assert_eq!(app.login(email, PASSWORD).await.status(), 401);
    b.close().await;
}

async fn a_forgotten_password_is_reset_through_the_emailed_link(app: TestApp, b: Browser) {
    let email = "ada@example.com";
    app.signed_up(email).await;
    b.open("/login").await;
    b.click("a[href='/password/forgot']").await;
    assert_eq!(b.path().await, "/password/forgot");
    b.screenshot("password-forgot").await;
    b.fill("Email", email).await;
    b.press("Send me a link").await;
    assert!(b.text().await.contains("Check your email."));
    b.screenshot("password-forgot-sent").await;
    let token = app.reset_token(email, 1).await;
    b.open(&format!("/password/reset/{token}")).await;
    assert!(b.text().await.contains(email));
    b.fill("New password", NEW_PASSWORD).await;
    b.screenshot("password-reset").await;
    b.press("Set my new password").await;
    assert!(b.text().await.contains("Your password is changed"));
    b.screenshot("password-reset-done").await;
    b.open("/login").await;
    b.fill("Email", email).await;
    b.fill("Password", NEW_PASSWORD).await;
    b.press("Sign in").await;
    // A browser never verified: the emailed device code, as for any sign-in.
    assert_eq!(b.path().await, "/login/verify-device");
    let code = app.device_code(email, 1).await;
    b.fill("Code from the email", &code).await;
    b.press("Verify").await;
    assert_eq!(b.path().await, "/");
    b.close().await;
}
