//! Devices and sessions ended from the page; mistakes shown next to their field; and what a
//! browser sees at a wrong address, a page it may not open or a withdrawn invitation.

use super::{browser_tests, sign_in, sign_up};
use crate::browser::Browser;
use crate::helpers::{PASSWORD, TestApp};
use fantoccini::Locator;

browser_tests!(
    a_user_signs_out_everywhere_else_and_forgets_devices,
    mistakes_and_closed_doors_are_explained,
);

/// How many buttons on the page have an `aria-label` starting with `label`.
async fn buttons(b: &Browser, label: &str) -> usize {
    b.client
        .find_all(Locator::Css(&format!("button[aria-label^='{label}']")))
        .await
        .unwrap()
        .len()
}

async fn a_user_signs_out_everywhere_else_and_forgets_devices(app: TestApp, b: Browser) {
    sign_up(&app, &b, "ada@example.com").await;
    let laptop = Browser::start(&app.base).await.unwrap();
    sign_in(&app, &laptop, "ada@example.com", false).await;
    assert_eq!(laptop.path().await, "/");

    // Both browsers are recognized devices with a session each.
    b.open("/settings/devices").await;
    assert_eq!(buttons(&b, "Forget the device").await, 2);
    assert_eq!(buttons(&b, "Sign out the session").await, 2);
    let text = b.text().await;
    assert!(text.contains("This session"));
    // Named as people know them, not by the raw User-Agent.
    assert!(
        text.contains("Chrome") && text.contains("on Linux"),
        "{text}"
    );
    assert!(!text.contains("AppleWebKit"));
    b.screenshot("devices-two-browsers").await;

    b.press("Sign out everywhere else").await;
    assert!(b.text().await.contains("Signed out everywhere else."));
    assert_eq!(buttons(&b, "Sign out the session").await, 1);
    laptop.open("/settings/devices").await;
    assert_eq!(laptop.path().await, "/login");

    // Forget both devices: the next sign-in from either asks for an emailed code again,
    // and this session goes on.
    for left in [1, 0] {
        b.click("button[aria-label^='Forget the device']").await;
        assert!(b.text().await.contains("Device forgotten"));
        assert_eq!(buttons(&b, "Forget the device").await, left);
    }
    assert!(b.text().await.contains("No recognized devices."));
    b.screenshot("devices-forgotten").await;
    laptop.fill("Email", "ada@example.com").await;
    laptop.fill("Password", PASSWORD).await;
    laptop.press("Sign in").await;
    assert_eq!(laptop.path().await, "/login/verify-device");
    assert!(
        laptop
            .text()
            .await
            .contains("we emailed you a 6-digit code")
    );
    laptop.screenshot("login-verify-device").await;
    laptop.close().await;
    b.close().await;
}

async fn mistakes_and_closed_doors_are_explained(app: TestApp, b: Browser) {
    app.signed_up("taken@example.com").await;

    // Signup mistakes are named beside their field, and what was typed stays.
    b.open("/signup").await;
    b.fill("Team name", "Acme").await;
    b.fill("Email", "taken@example.com").await;
    b.fill("Password", "short").await;
    b.press("Create account").await;
    assert_eq!(b.path().await, "/signup");
    let field_error = |id: &'static str| {
        let b = &b;
        async move { b.find(&format!("#{id}-error")).await.text().await.unwrap() }
    };
    assert_eq!(field_error("name").await, "Must not be empty.");
    assert_eq!(
        b.find("#account_name")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("Acme")
    );
    b.screenshot("signup-errors").await;
    b.fill("Your name", "Someone").await;
    b.fill("Password", "short").await;
    b.press("Create account").await;
    assert!(field_error("password").await.contains("12 characters"));
    b.fill("Password", PASSWORD).await;
    b.press("Create account").await;
    // A taken email is not told apart on the page: its owner is emailed instead.
    assert!(b.text().await.contains("Check your email"));
    app.mail_containing("taken@example.com", "already has an account")
        .await;

    // A wrong address.
    b.open("/no/such/page").await;
    assert!(b.text().await.contains("Page not found"));
    b.screenshot("not-found").await;

    // A member cannot open the owner's pages.
    let owner = app.signed_in("owner@example.com").await;
    app.join(&owner, "member@example.com", "member").await;
    sign_in(&app, &b, "member@example.com", false).await;
    b.open("/account/users").await;
    assert!(
        b.text()
            .await
            .contains("Only for the team's owner and admins")
    );
    b.screenshot("forbidden").await;

    // A withdrawn invitation.
    let response = app.invite(&owner, "late@example.com", "member").await;
    assert_eq!(response.status(), 201);
    let token = app.invitation_token("late@example.com", 1).await;
    let owner_browser = Browser::start(&app.base).await.unwrap();
    sign_in(&app, &owner_browser, "owner@example.com", false).await;
    owner_browser.open("/account/users").await;
    owner_browser
        .click("button[aria-label='Withdraw the invitation of late@example.com']")
        .await;
    assert!(!owner_browser.text().await.contains("late@example.com"));
    owner_browser.close().await;
    b.open(&format!("/invitations/{token}")).await;
    assert!(b.text().await.contains("This invitation was withdrawn"));
    b.screenshot("invitation-withdrawn").await;
    b.close().await;
}
