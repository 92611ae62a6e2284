//! The owner's pages: Require 2FA with a grace period, invitations, reset and delete; and
//! the member who must set up 2FA first.

use super::{browser_tests, set_up_2fa, sign_in};
use crate::browser::Browser;
use crate::helpers::{PASSWORD, TestApp};
use crate::otp::oathtool;
use serde_json::json;
use tessera_core::Clock;

browser_tests!(
    an_owner_requires_2fa_and_invites_a_member,
    a_restricted_user_sets_up_2fa_before_anything_else,
);

async fn an_owner_requires_2fa_and_invites_a_member(app: TestApp, b: Browser) {
    app.signed_up("owner@example.com").await;
    sign_in(&app, &b, "owner@example.com", false).await;
    assert_eq!(b.path().await, "/");

    // Without 2FA of their own, the owner may not change the policy (review F6).
    b.open("/account/settings").await;
    b.check("#required").await;
    b.press("Save").await;
    assert!(
        b.text()
            .await
            .contains("Turn on two-factor authentication for your own user")
    );
    b.screenshot("team-settings-admin-2fa-required").await;
    let Some(factor) = set_up_2fa(&app, &b, false).await else {
        return;
    };
    requires_2fa_with_a_grace_period(&app, &b, &factor.secret).await;

    b.open("/account/users").await;
    b.fill("Email", "grace@example.com").await;
    b.fill("Name", "Grace Hopper").await;
    b.check("#invite-role option[value='admin']").await;
    b.press("Send invitation").await;
    assert!(b.text().await.contains("Invitation sent."));
    b.screenshot("team-users").await;

    // The invitee, in their own browser.
    let token = app.invitation_token("grace@example.com", 1).await;
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
    b.click("button[aria-label='Delete grace@example.com']")
        .await;
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
    let owner = app.owner_with_2fa("owner@example.com").await;
    app.join(&owner, "member@example.com", "member").await;
    let response = app.set_2fa_policy(&owner, json!({"required": true})).await;
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

/// Requires 2FA with a grace date, 16 minutes after the last authentication: the
/// re-authentication page comes in between (SPEC §9), and the form comes back as it was.
async fn requires_2fa_with_a_grace_period(app: &TestApp, b: &Browser, secret: &str) {
    app.clock.advance(16 * 60);
    b.open("/account/settings").await;
    assert_eq!(
        b.find("#policy-status").await.text().await.unwrap(),
        "Optional"
    );
    b.check("#required").await;
    b.client
        .execute(
            "document.getElementById('grace_period_until').value = '2099-01-01';",
            vec![],
        )
        .await
        .unwrap();
    b.press("Save").await;
    assert_eq!(b.path().await, "/reauthenticate");
    b.screenshot("reauthenticate-policy").await;
    b.fill("Password", PASSWORD).await;
    let code = oathtool(secret, app.clock.now()).unwrap();
    b.fill("Authentication code", &code).await;
    b.press("Confirm").await;
    assert_eq!(b.path().await, "/account/settings");
    assert_eq!(
        b.find("#policy-status").await.text().await.unwrap(),
        "Optional",
        "not saved yet"
    );
    let kept = b
        .find("#grace_period_until")
        .await
        .prop("value")
        .await
        .unwrap();
    assert_eq!(
        kept.as_deref(),
        Some("2099-01-01"),
        "the form as it was filled"
    );
    let ticked = b.find("#required").await.prop("checked").await.unwrap();
    assert_eq!(ticked.as_deref(), Some("true"));
    b.screenshot("team-settings-kept").await;
    b.press("Save").await;
    assert_eq!(
        b.find("#policy-status").await.text().await.unwrap(),
        "Required"
    );
    assert!(b.text().await.contains("Saved."));
    b.screenshot("team-settings").await;
}
