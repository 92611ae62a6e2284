//! The page `/account/api-keys` (SPEC §11), as a browser without JavaScript uses it: grant
//! checkboxes and an address list, the new key shown once, the list, revoking; words for
//! mistakes, the way through `/reauthenticate`, and no page for members.

use super::well_formed;
use crate::helpers::{ResponseExt, TestApp, assert_page};
use reqwest::StatusCode;

backend_tests!(
    the_api_keys_page_creates_shows_once_lists_and_revokes,
    the_api_keys_page_says_what_is_wrong_and_who_may_not,
);

/// The key in the page's copy-once field.
fn shown_key(html: &str) -> String {
    let start = html
        .find("id=\"created-key\"")
        .expect("the new key's field");
    let value = &html[start..];
    let value = &value[value.find("value=\"").unwrap() + 7..];
    value[..value.find('"').unwrap()].to_owned()
}

async fn the_api_keys_page_creates_shows_once_lists_and_revokes(app: TestApp) {
    app.signed_up("ada@example.com").await;
    let token = app.signed_in_again("ada@example.com").await;
    let b = app.browser_signed_in("ada@example.com").await;
    let (status, page) = b.get("/account/api-keys").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("No API keys yet."));
    for grant in ["account:read", "users:read", "events:read"] {
        assert!(page.contains(&format!("value=\"{grant}\"")), "{grant}");
    }
    let response = b
        .submit(
            &page,
            "/account/api-keys",
            &[
                ("label", "Nightly export"),
                ("grants", "users:read"),
                ("grants", "events:read"),
                ("allowed_ips", "203.0.113.0/24\n2001:db8::/32, 127.0.0.1"),
                ("expires_at", ""),
            ],
        )
        .await;
    let html = assert_page(response, StatusCode::CREATED, "Copy it now").await;
    let key = shown_key(&html);
    assert!(well_formed(&key), "{key}");
    assert!(html.contains("Nightly export"));
    // It works, from an allowed address.
    assert_eq!(app.users(&key).await.status(), StatusCode::OK);
    // Shown once: the list has its prefix only.
    let (_, list) = b.get("/account/api-keys").await;
    assert!(!list.contains(&key));
    assert!(list.contains(&key[..8]));
    assert!(list.contains("users:read, events:read"));
    assert!(list.contains("203.0.113.0/24, 2001:db8::/32, 127.0.0.1"));
    let id = app.keys(&token).await.body().await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = b
        .submit(&list, &format!("/account/api-keys/{id}/revoke"), &[])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.location(), "/account/api-keys?notice=revoked");
    let (_, after) = b.get("/account/api-keys?notice=revoked").await;
    assert!(after.contains("Key revoked"));
    assert!(!after.contains(&key[..8]));
    assert_eq!(app.users(&key).await.status(), StatusCode::UNAUTHORIZED);
}

async fn the_api_keys_page_says_what_is_wrong_and_who_may_not(app: TestApp) {
    app.signed_up("ada@example.com").await;
    let owner = app.signed_in_again("ada@example.com").await;
    let b = app.browser_signed_in("ada@example.com").await;
    let (_, page) = b.get("/account/api-keys").await;
    for (fields, says) in [
        (
            vec![("label", ""), ("grants", "users:read")],
            "Label: must not be empty.",
        ),
        (
            vec![("label", "x")],
            "Grants: give the key at least one grant.",
        ),
        (
            vec![
                ("label", "x"),
                ("grants", "users:read"),
                ("allowed_ips", "10.0.0.0/33"),
            ],
            "at most /32",
        ),
        (
            vec![
                ("label", "x"),
                ("grants", "users:read"),
                ("expires_at", "2001-01-01"),
            ],
            "Expires on: must be in the future.",
        ),
    ] {
        let response = b.submit(&page, "/account/api-keys", &fields).await;
        let html = assert_page(response, StatusCode::UNPROCESSABLE_ENTITY, says).await;
        assert!(!html.contains("Copy it now"));
    }
    // Outside the step-up window: confirm it is you, then back here.
    app.clock.advance(16 * 60);
    let (_, page) = b.get("/account/api-keys").await;
    let response = b
        .submit(
            &page,
            "/account/api-keys",
            &[("label", "Late"), ("grants", "users:read")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.location(),
        "/reauthenticate?return_to=%2Faccount%2Fapi-keys"
    );
    // A member has no such page.
    let (_, member) = app.join(&owner, "member@example.com", "member").await;
    drop(member);
    let m = app.browser_signed_in("member@example.com").await;
    let (status, _) = m.get("/account/api-keys").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
