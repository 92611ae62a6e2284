//! The seed flows, clicked through the control panel in headless Chromium: labels are
//! found by their text, buttons by what they say, TOTP codes computed by oathtool from the
//! key read off the page, emails read from what the app sent. Every page is photographed
//! into `target/e2e-screenshots/`.
//!
//! These run on SQLite only: the pages go through the same handlers and store calls as the
//! API, whose tests cover both backends; a browser per test per backend would double the
//! slowest tests for no new path.

use crate::browser::Browser;
use crate::helpers::{PASSWORD, TestApp, spawn_app};
use crate::otp::{decode_qr_svg, oathtool};
use crate::team::{invitation_token, join};
use serde_json::json;
use tessera_core::Clock;
use tessera_store::testing::Backend;

/// Declares each `async fn name(app: TestApp, browser: Browser)` as a test on SQLite with a
/// browser.
macro_rules! browser_tests {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn in_chromium() {
                let Some(app) = super::spawn_app(super::Backend::Sqlite).await else {
                    return;
                };
                let Some(browser) = super::Browser::start(&app.base).await else {
                    return;
                };
                super::$name(app, browser).await
            }
        }
    )+};
}

browser_tests!(
    a_user_turns_2fa_on_and_signs_in_with_a_code_then_a_recovery_code,
    the_paper_key_recovers_an_account,
    an_owner_requires_2fa_and_invites_a_member,
    a_restricted_user_sets_up_2fa_before_anything_else,
);

/// Signs in through the pages; an unrecognized browser answers the emailed code.
async fn sign_in(app: &TestApp, b: &Browser, email: &str, shots: bool) {
    let sent = app.device_codes_sent(email).await;
    b.open("/login").await;
    if shots {
        b.screenshot("login").await;
    }
    b.fill("Email", email).await;
    b.fill("Password", PASSWORD).await;
    b.press("Sign in").await;
    if b.path().await == "/login/verify-device" {
        if shots {
            b.screenshot("login-verify-device").await;
        }
        let code = app.device_code(email, sent + 1).await;
        b.fill("Code from the email", &code).await;
        b.press("Verify").await;
    }
}

/// Sets up 2FA from the security page, checking the QR code holds the key shown: the secret.
async fn set_up_2fa(
    app: &TestApp,
    b: &Browser,
    shots: bool,
) -> Option<(String, Vec<String>, String)> {
    b.open("/settings/security").await;
    if shots {
        b.screenshot("security-off").await;
    }
    b.press("Set up an authenticator app").await;
    if shots {
        b.screenshot("security-setup").await;
    }
    let secret = b
        .find("#secret")
        .await
        .text()
        .await
        .unwrap()
        .replace(' ', "");
    assert_eq!(secret.len(), 32);
    let html = b.html().await;
    let start = html.find("<svg").expect("a QR code");
    let end = html[start..].find("</svg>").unwrap() + start + 6;
    let uri = decode_qr_svg(&html[start..end]);
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    let paper = b
        .find("#paper-key")
        .await
        .text()
        .await
        .unwrap()
        .replace(' ', "");
    assert_eq!(paper.len(), 64);
    let code = oathtool(&secret, app.clock.now())?;
    b.fill("6-digit code", &code).await;
    b.press("Verify code").await;
    assert!(b.text().await.contains("Two-factor authentication is on"));
    if shots {
        b.screenshot("security-codes").await;
    }
    let mut codes = Vec::new();
    for element in b
        .client
        .find_all(fantoccini::Locator::Css("#recovery-codes code"))
        .await
        .unwrap()
    {
        codes.push(element.text().await.unwrap());
    }
    assert_eq!(codes.len(), 10);
    app.clock.advance(30);
    Some((secret, codes, paper))
}

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
    assert_eq!(b.path().await, "/");
    assert!(b.text().await.contains("Welcome, Ada Lovelace"));
    b.screenshot("home").await;

    let Some((secret, codes, _)) = set_up_2fa(&app, &b, true).await else {
        return;
    };
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
    let code = oathtool(&secret, app.clock.now()).unwrap();
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

    // New codes, then 2FA off, each with the password.
    b.fill("Your password", PASSWORD).await;
    b.press("Generate new recovery codes").await;
    assert!(b.text().await.contains("Your new recovery codes"));
    b.open("/settings/security").await;
    let disable = "//input[@id='disable-password']";
    b.client
        .find(fantoccini::Locator::XPath(disable))
        .await
        .unwrap()
        .send_keys("wrong password")
        .await
        .unwrap();
    b.press("Turn off two-factor authentication").await;
    assert!(b.text().await.contains("Incorrect password."));
    b.client
        .find(fantoccini::Locator::XPath(disable))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    b.press("Turn off two-factor authentication").await;
    assert!(b.text().await.contains("Two-factor authentication is off."));

    // The activity page tells the story.
    b.open("/settings/activity").await;
    let text = b.text().await;
    for line in [
        "Two-factor authentication turned off",
        "New recovery codes generated",
        "Signed in with a recovery code",
        "Wrong two-factor code",
        "Two-factor authentication turned on",
    ] {
        assert!(text.contains(line), "{line}");
    }
    b.screenshot("activity").await;
    b.close().await;
}

async fn the_paper_key_recovers_an_account(app: TestApp, b: Browser) {
    let Some((_, _, _, paper)) = crate::two_factor::user_with_2fa(&app, "lost@example.com").await
    else {
        return;
    };
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
    focused
        .send_keys(&format!("lost@example.com{tab}{PASSWORD}{enter}"))
        .await
        .unwrap();
    b.find("#code").await;
    assert_eq!(b.path().await, "/login/verify-device");
    let code = app.device_code("lost@example.com", sent + 1).await;
    let focused = b.client.active_element().await.unwrap();
    focused.send_keys(&format!("{code}{enter}")).await.unwrap();
    b.find("h1").await;
    assert_eq!(b.path().await, "/");
    b.close().await;
}

async fn an_owner_requires_2fa_and_invites_a_member(app: TestApp, b: Browser) {
    app.signup("owner@example.com").await;
    sign_in(&app, &b, "owner@example.com", false).await;
    assert_eq!(b.path().await, "/");

    b.open("/account/settings").await;
    assert_eq!(
        b.find("#policy-status").await.text().await.unwrap(),
        "Optional"
    );
    b.click("#required").await;
    b.client
        .execute(
            "document.getElementById('grace_period_until').value = '2099-01-01';",
            vec![],
        )
        .await
        .unwrap();
    b.press("Save").await;
    assert_eq!(
        b.find("#policy-status").await.text().await.unwrap(),
        "Required"
    );
    assert!(b.text().await.contains("Saved."));
    b.screenshot("team-settings").await;

    b.open("/account/users").await;
    b.fill("Email", "grace@example.com").await;
    b.fill("Name", "Grace Hopper").await;
    b.find("#invite-role option[value='admin']")
        .await
        .click()
        .await
        .unwrap();
    b.press("Send invitation").await;
    assert!(b.text().await.contains("Invitation sent."));
    b.screenshot("team-users").await;

    // The invitee, in their own browser.
    let token = invitation_token(&app, "grace@example.com", 1).await;
    let invitee = Browser::start(&app.base).await.unwrap();
    invitee.open(&format!("/invitations/{token}")).await;
    assert!(invitee.text().await.contains("You were invited as admin"));
    invitee.screenshot("invitation").await;
    invitee.fill("Password", PASSWORD).await;
    invitee.press("Join Acme").await;
    assert_eq!(invitee.path().await, "/");
    invitee.open("/settings/security").await;
    assert!(
        invitee
            .text()
            .await
            .contains("Acme requires two-factor authentication. Set it up before 2099-01-01")
    );
    invitee.screenshot("security-grace").await;
    let Some(_) = set_up_2fa(&app, &invitee, false).await else {
        return;
    };
    invitee.close().await;

    // The owner resets the member's 2FA: the member is emailed.
    b.open("/account/users").await;
    b.click("button[aria-label='Reset two-factor authentication of grace@example.com']")
        .await;
    assert!(b.text().await.contains("Two-factor authentication reset."));
    app.mail_containing("grace@example.com", "an administrator of Acme")
        .await;

    // The owner sees them, then deletes them.
    b.open("/account/users").await;
    assert!(b.text().await.contains("grace@example.com"));
    b.client
        .find(fantoccini::Locator::Css(
            "button[aria-label='Delete grace@example.com']",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert!(b.text().await.contains("User deleted."));
    assert!(!b.text().await.contains("grace@example.com"));
    b.open("/account/activity").await;
    assert!(b.text().await.contains("User deleted"));
    b.screenshot("team-activity").await;
    b.open("/settings/devices").await;
    assert!(b.text().await.contains("This session"));
    b.screenshot("devices").await;
    b.phone().await;
    b.open("/account/users").await;
    b.screenshot("team-users-phone").await;
    b.desktop().await;
    b.close().await;
}

async fn a_restricted_user_sets_up_2fa_before_anything_else(app: TestApp, b: Browser) {
    let owner = app.signed_in("owner@example.com").await;
    join(&app, &owner, "member@example.com", "member").await;
    let response = app
        .put(
            "/api/v1/account/two-factor-policy",
            json!({"required": true}),
            Some(&owner),
        )
        .await;
    assert_eq!(response.status(), 200);

    let sent = app.device_codes_sent("member@example.com").await;
    b.open("/login").await;
    b.fill("Email", "member@example.com").await;
    b.fill("Password", PASSWORD).await;
    b.press("Sign in").await;
    assert_eq!(b.path().await, "/login/verify-device");
    assert!(
        b.text()
            .await
            .contains("You can ask for a new code in 30 seconds.")
    );
    b.press("Send a new code").await;
    assert!(
        b.text()
            .await
            .contains("Please wait: you can ask for a new code in")
    );
    app.clock.advance(30);
    b.press("Send a new code").await;
    assert!(b.text().await.contains("A new code is on its way."));
    b.screenshot("login-verify-device-resent").await;
    let code = app.device_code("member@example.com", sent + 2).await;
    b.fill("Code from the email", &code).await;
    b.press("Verify").await;

    // Restricted: every page leads to the security page until 2FA is on.
    assert_eq!(b.path().await, "/settings/security");
    assert!(
        b.text()
            .await
            .contains("Acme requires two-factor authentication. Set it up to continue")
    );
    b.screenshot("security-required").await;
    b.open("/settings/activity").await;
    assert_eq!(b.path().await, "/settings/security");
    b.phone().await;
    b.screenshot("security-required-phone").await;
    b.desktop().await;
    let Some(_) = set_up_2fa(&app, &b, false).await else {
        return;
    };
    b.open("/").await;
    assert_eq!(b.path().await, "/");
    assert!(b.text().await.contains("Welcome"));
    b.close().await;
}
