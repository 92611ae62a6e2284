//! Turning 2FA on and off, signing in with a code, a recovery code and the paper key.

use super::{browser_tests, set_up_2fa, sign_in};
use crate::browser::Browser;
use crate::helpers::{PASSWORD, TestApp};
use crate::otp::oathtool;
use tessera_core::Clock;

browser_tests!(
    a_user_turns_2fa_on_and_signs_in_with_a_code_then_a_recovery_code,
    the_paper_key_recovers_an_account,
);

async fn a_user_turns_2fa_on_and_signs_in_with_a_code_then_a_recovery_code(
    app: TestApp,
    b: Browser,
) {
    b.open("/signup").await;
    b.screenshot("signup").await;
    b.fill("Team name", "Acme").await;
    b.fill("Your name", "Ada Lovelace").await;
    b.fill("Email", "ada@example.com").await;
    b.fill("Password", PASSWORD).await;
    b.press("Create account").await;
    assert!(b.text().await.contains("Check your email"));
    b.screenshot("signup-check-email").await;
    // The link from the email, as the SMTP server received it.
    let token = app.signup_token("ada@example.com", 1).await;
    b.open(&format!("/signup/confirm/{token}")).await;
    b.screenshot("signup-confirm").await;
    b.press("Confirm and sign in").await;
    assert_eq!(b.path().await, "/");
    assert!(b.text().await.contains("Welcome, Ada Lovelace"));
    b.screenshot("home").await;

    let Some(factor) = set_up_2fa(&app, &b, true).await else {
        return;
    };
    let (secret, codes) = (&factor.secret, &factor.recovery_codes);
    b.open("/settings/security").await;
    assert!(b.text().await.contains("Recovery codes left: 10 of 10."));
    b.screenshot("security-on").await;

    // A form whose CSRF field is gone is refused.
    b.client
        .execute(
            "document.querySelector('form[action=\"/logout\"] input[name=csrf]').remove();",
            vec![],
        )
        .await
        .unwrap();
    b.press("Sign out").await;
    assert!(b.text().await.contains("This form has expired"));
    b.screenshot("csrf-refused").await;

    b.open("/").await;
    b.press("Sign out").await;
    assert_eq!(b.path().await, "/login");
    sign_in(&app, &b, "ada@example.com", true).await;
    assert_eq!(b.path().await, "/login/2fa");
    b.fill("Authentication code", "000000").await;
    b.press("Verify").await;
    assert!(
        b.text()
            .await
            .contains("That code is not valid. 4 attempts left.")
    );
    b.screenshot("login-2fa").await;
    let code = oathtool(secret, app.clock.now()).unwrap();
    b.fill("Authentication code", &code).await;
    b.press("Verify").await;
    assert_eq!(b.path().await, "/");

    // The same code again is refused, and said so.
    b.press("Sign out").await;
    sign_in(&app, &b, "ada@example.com", false).await;
    b.fill("Authentication code", &code).await;
    b.press("Verify").await;
    assert!(b.text().await.contains("That code was already used."));

    // Then a recovery code.
    b.fill("Authentication code", &codes[0].to_uppercase())
        .await;
    b.press("Verify").await;
    assert_eq!(b.path().await, "/");
    b.open("/settings/security").await;
    assert!(b.text().await.contains("Recovery codes left: 9 of 10."));

    new_codes_then_2fa_off_through_the_reauthentication_page(&app, &b, secret).await;
    the_activity_page_tells_the_story(&b).await;
    b.close().await;
}

async fn the_paper_key_recovers_an_account(app: TestApp, b: Browser) {
    let Some((_, factor)) = app.user_with_2fa("lost@example.com").await else {
        return;
    };
    let paper = factor.paper_key;
    b.open("/login").await;
    b.click("a[href='/recover']").await;
    assert_eq!(b.path().await, "/recover");
    b.screenshot("recover").await;
    b.fill("Email", "lost@example.com").await;
    b.fill("Paper key", &"x".repeat(64)).await;
    b.press("Turn off two-factor authentication").await;
    assert!(
        b.text()
            .await
            .contains("That email and paper key do not match.")
    );
    b.fill("Email", "lost@example.com").await;
    b.fill("Paper key", &paper).await;
    b.press("Turn off two-factor authentication").await;
    assert!(
        b.text()
            .await
            .contains("Two-factor authentication is now off.")
    );
    b.screenshot("recovered").await;
    // Password only now, and this browser is new: the emailed code. With the keyboard
    // alone: the email field has the focus, Tab moves on, Enter submits.
    let sent = app.device_codes_sent("lost@example.com").await;
    b.open("/login").await;
    let focused = b.client.active_element().await.unwrap();
    assert_eq!(focused.attr("id").await.unwrap().as_deref(), Some("email"));
    let tab = char::from(fantoccini::key::Key::Tab);
    let enter = char::from(fantoccini::key::Key::Enter);
    b.type_and_submit(&format!("lost@example.com{tab}{PASSWORD}{enter}"))
        .await;
    assert_eq!(b.path().await, "/login/verify-device");
    let code = app.device_code("lost@example.com", sent + 1).await;
    b.type_and_submit(&format!("{code}{enter}")).await;
    assert_eq!(b.path().await, "/");
    b.close().await;
}

/// New codes at once (the sign-in just happened), then, 16 minutes later, turning 2FA off
/// goes through the re-authentication page (SPEC §9) and back.
async fn new_codes_then_2fa_off_through_the_reauthentication_page(
    app: &TestApp,
    b: &Browser,
    secret: &str,
) {
    b.press("Generate new recovery codes").await;
    assert!(b.text().await.contains("Your new recovery codes"));
    app.clock.advance(16 * 60);
    b.open("/settings/security").await;
    b.press("Turn off two-factor authentication").await;
    assert_eq!(b.path().await, "/reauthenticate");
    assert!(b.text().await.contains("Confirm it is you"));
    b.screenshot("reauthenticate-disable").await;
    let code = oathtool(secret, app.clock.now()).unwrap();
    b.fill("Password", "wrong password").await;
    b.fill("Authentication code", &code).await;
    b.press("Confirm").await;
    assert!(b.text().await.contains("Incorrect password."));
    b.screenshot("reauthenticate-refused").await;
    b.fill("Password", PASSWORD).await;
    b.fill("Authentication code", &code).await;
    b.press("Confirm").await;
    assert_eq!(b.path().await, "/settings/security");
    assert!(
        b.text().await.contains("Recovery codes left: 10 of 10."),
        "still on"
    );
    b.press("Turn off two-factor authentication").await;
    assert!(b.text().await.contains("Two-factor authentication is off."));
}

async fn the_activity_page_tells_the_story(b: &Browser) {
    b.open("/settings/activity").await;
    let text = b.text().await;
    for line in [
        "Two-factor authentication turned off",
        "Confirmed it was them",
        "Failed attempt to confirm it was them",
        "New recovery codes generated",
        "Signed in with a recovery code",
        "Wrong two-factor code",
        "Two-factor authentication turned on",
    ] {
        assert!(text.contains(line), "{line}");
    }
    b.screenshot("activity").await;
}
