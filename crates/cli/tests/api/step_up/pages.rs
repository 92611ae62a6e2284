//! `/reauthenticate?return_to=…` on the pages: refused actions lead there and back (with the
//! form kept where nothing secret is in it), and only to paths of this site.

use super::STALE;
use crate::helpers::{PASSWORD, PageBrowser, ResponseExt, TestApp, assert_page};
use reqwest::StatusCode;

backend_tests!(
    the_reauthentication_page_returns_only_to_local_paths,
    turning_2fa_off_on_the_page_goes_through_the_reauthentication_page,
    the_policy_form_is_kept_across_the_reauthentication,
    every_sensitive_page_action_leads_to_the_reauthentication_page,
);

/// Where a stale session's post of `fields` to `action` (from the page `page`) is sent.
async fn refused_to(b: &PageBrowser, page: &str, action: &str, fields: &[(&str, &str)]) -> String {
    let (_, html) = b.get(page).await;
    let response = b.submit(&html, action, fields).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{action}");
    response.location().to_owned()
}

async fn every_sensitive_page_action_leads_to_the_reauthentication_page(app: TestApp) {
    let Some((owner, factor)) = app.user_with_2fa("owner@example.com").await else {
        return;
    };
    let (member_id, _) = app.join(&owner, "member@example.com", "member").await;
    let b = app.browser();
    let response = b.post_password("owner@example.com", PASSWORD).await;
    assert_eq!(response.location(), "/login/2fa");
    let code = app.totp(&factor);
    let response = b
        .fill_in("/login/2fa", "/login/2fa", &[("code", &code)])
        .await;
    assert_eq!(response.location(), "/");
    // A browser without 2FA of its own user: Grace, a member.
    let g = app.browser_signed_in("member@example.com").await;
    app.clock.advance(STALE);
    let security = "/reauthenticate?return_to=%2Fsettings%2Fsecurity";
    let setup = refused_to(&g, "/settings/security", "/settings/security/setup", &[]).await;
    assert_eq!(setup, security);
    let password = [
        ("current_password", PASSWORD),
        ("new_password", "purple monkey dishwasher"),
    ];
    let changed = refused_to(
        &g,
        "/settings/security",
        "/settings/security/password",
        &password,
    );
    assert_eq!(changed.await, security);
    let users = "/reauthenticate?return_to=%2Faccount%2Fusers";
    for action in ["delete", "reset-2fa"] {
        let path = format!("/account/users/{member_id}/{action}");
        assert_eq!(refused_to(&b, "/account/users", &path, &[]).await, users);
    }
    // Nothing happened meanwhile.
    let (_, html) = b.get("/account/users").await;
    assert!(html.contains("member@example.com"));
}

/// The `return_to` of the page's form, as a browser reads the attribute.
fn return_to(html: &str) -> String {
    let field = "name=\"return_to\" value=\"";
    let start = html.find(field).expect("a return_to field") + field.len();
    html[start..start + html[start..].find('"').unwrap()]
        .replace("&#38;", "&")
        .replace("&amp;", "&")
        .replace("&#61;", "=")
}

/// Percent-encodes every byte but letters and digits.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

async fn the_reauthentication_page_returns_only_to_local_paths(app: TestApp) {
    app.signed_up("ada@example.com").await;
    let b = app.browser_signed_in("ada@example.com").await;
    let local = "/account/settings?draft=1&required=on";
    for (asked, kept) in [
        ("//evil.example", "/settings/security"),
        ("/\\evil.example", "/settings/security"),
        ("https://evil.example", "/settings/security"),
        ("javascript:alert(1)", "/settings/security"),
        ("evil.example", "/settings/security"),
        ("", "/settings/security"),
        ("/settings/devices", "/settings/devices"),
    ] {
        let (status, html) = b
            .get(&format!("/reauthenticate?return_to={}", encode(asked)))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("<h1>Confirm it is you</h1>"));
        assert!(
            !html.contains("name=\"code\""),
            "no 2FA: the password alone"
        );
        assert_eq!(return_to(&html), kept, "{asked}");
    }
    // The form's own field is checked again when it comes back.
    let (_, html) = b.get("/reauthenticate").await;
    for (sent, back) in [
        ("//evil.example", "/settings/security"),
        ("/\\evil.example", "/settings/security"),
        ("https://evil.example/", "/settings/security"),
        ("javascript:alert(1)", "/settings/security"),
        ("/ /evil", "/settings/security"),
        (local, local),
    ] {
        let fields = [("password", PASSWORD), ("return_to", sent)];
        let response = b.submit(&html, "/reauthenticate", &fields).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{sent}");
        assert_eq!(response.location(), back, "{sent}");
    }
    let wrong = [("password", "not my password"), ("return_to", local)];
    let response = b.submit(&html, "/reauthenticate", &wrong).await;
    let html = assert_page(response, StatusCode::UNAUTHORIZED, "Incorrect password.").await;
    assert_eq!(return_to(&html), local);
    // Signed out, the page sends to sign in.
    let response = app.browser().open("/reauthenticate").await;
    assert_eq!(response.location(), "/login");
}

/// Follows a refusal to the re-authentication page, and passes it: where it leads back.
async fn reauthenticate(b: &PageBrowser, refused: reqwest::Response, code: &str) -> String {
    assert_eq!(refused.status(), StatusCode::SEE_OTHER);
    let to = refused.location().to_owned();
    assert!(to.starts_with("/reauthenticate?return_to="), "{to}");
    let (status, html) = b.get(&to).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("name=\"code\""), "2FA on: a code too");
    let fields = [
        ("password", PASSWORD),
        ("code", code),
        ("return_to", &return_to(&html)),
    ];
    let response = b.submit(&html, "/reauthenticate", &fields).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    response.location().to_owned()
}

async fn turning_2fa_off_on_the_page_goes_through_the_reauthentication_page(app: TestApp) {
    let b = app.browser_signed_up("ada@example.com").await;
    let Some(factor) = b.enable_2fa(&app).await else {
        return;
    };
    app.clock.advance(STALE);
    let (_, html) = b.get("/settings/security").await;
    assert!(
        !html.contains("id=\"disable-password\""),
        "a button: the step-up replaces the password"
    );
    let refused = b.submit(&html, "/settings/security/disable", &[]).await;
    let back = reauthenticate(&b, refused, &app.totp(&factor)).await;
    assert_eq!(back, "/settings/security");
    let (_, html) = b.get(&back).await;
    assert!(
        html.contains("<span class=\"badge\">On</span>"),
        "nothing changed yet"
    );
    let response = b.submit(&html, "/settings/security/disable", &[]).await;
    assert_eq!(response.location(), "/settings/security?notice=disabled");
    // The old form with the password works too, and counts as the re-authentication.
    let Some(_) = b.enable_2fa(&app).await else {
        return;
    };
    app.clock.advance(STALE);
    let (_, html) = b.get("/settings/security").await;
    let response = b
        .submit(
            &html,
            "/settings/security/recovery-codes",
            &[("password", PASSWORD)],
        )
        .await;
    assert_page(response, StatusCode::OK, "Your new recovery codes").await;
}

async fn the_policy_form_is_kept_across_the_reauthentication(app: TestApp) {
    let b = app.browser_signed_up("owner@example.com").await;
    let Some(factor) = b.enable_2fa(&app).await else {
        return;
    };
    app.clock.advance(STALE);
    let (_, html) = b.get("/account/settings").await;
    let policy = [("required", "on"), ("grace_period_until", "2099-01-01")];
    let refused = b.submit(&html, "/account/settings", &policy).await;
    let back = reauthenticate(&b, refused, &app.totp(&factor)).await;
    assert_eq!(
        back,
        "/account/settings?draft=1&required=on&grace_period_until=2099-01-01"
    );
    let (_, html) = b.get(&back).await;
    assert!(
        html.contains("id=\"policy-status\">Optional</span>"),
        "not saved yet"
    );
    assert!(
        html.contains("value=\"on\" checked"),
        "the box as it was ticked"
    );
    assert!(
        html.contains("value=\"2099-01-01\""),
        "the date as it was typed"
    );
    let response = b.submit(&html, "/account/settings", &policy).await;
    assert_eq!(response.location(), "/account/settings?notice=saved");
    // An admin invitation is kept the same way; a member's needs no step-up.
    app.clock.advance(STALE);
    let (_, html) = b.get("/account/users").await;
    let admin = [
        ("email", "boss@example.com"),
        ("name", "Boss"),
        ("role", "admin"),
    ];
    let refused = b.submit(&html, "/account/users/invite", &admin).await;
    app.clock.advance(30);
    let back = reauthenticate(&b, refused, &app.totp(&factor)).await;
    let (_, html) = b.get(&back).await;
    assert!(html.contains("value=\"boss@example.com\"") && html.contains("value=\"Boss\""));
    let response = b.submit(&html, "/account/users/invite", &admin).await;
    assert_eq!(response.location(), "/account/users?notice=invited");
    app.clock.advance(STALE);
    let member = [
        ("email", "m@example.com"),
        ("name", "M"),
        ("role", "member"),
    ];
    let response = b.submit(&html, "/account/users/invite", &member).await;
    assert_eq!(response.location(), "/account/users?notice=invited");
}
