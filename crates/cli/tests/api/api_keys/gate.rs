//! The gate over HTTP (SPEC §11): who a session cookie or a key is, `?grant=`, the way to
//! sign in for a browser, setup-only sessions, and `TESSERA_COOKIE_DOMAIN`.

use super::{header, unknown_key};
use crate::helpers::{PASSWORD, TestApp, assert_error};
use reqwest::StatusCode;
use serde_json::json;

backend_tests!(
    the_gate_tells_who_a_session_cookie_is,
    the_gate_tells_who_a_key_is_and_checks_its_grant,
    the_gate_sends_a_browser_to_sign_in_and_back,
    a_setup_only_session_is_sent_to_set_up_two_factor,
    the_session_cookie_spans_the_cookie_domain,
);

fn cookie(token: &str) -> String {
    format!("tessera_session={token}")
}

async fn the_gate_tells_who_a_session_cookie_is(app: TestApp) {
    let owner = app.signed_in("owner@example.com").await;
    let (member_id, member) = app.join(&owner, "member@example.com", "member").await;
    let me = app.me_body(&owner).await;
    for path in ["", "/", "/any/sub/path"] {
        let response = app.gate(path, &[("cookie", &cookie(&owner))]).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT, "{path}");
        assert_eq!(header(&response, "x-tessera-user-id"), me["user"]["id"]);
        assert_eq!(header(&response, "x-tessera-email"), "owner@example.com");
        assert_eq!(
            header(&response, "x-tessera-account-id"),
            me["account"]["id"]
        );
        assert_eq!(header(&response, "x-tessera-role"), "owner");
        assert_eq!(header(&response, "x-tessera-auth"), "session");
        let grants = header(&response, "x-tessera-grants");
        assert!(
            grants.contains("users:read") && grants.contains("account:read"),
            "{grants}"
        );
    }
    let response = app.gate("", &[("cookie", &cookie(&member))]).await;
    assert_eq!(header(&response, "x-tessera-user-id"), member_id);
    assert_eq!(header(&response, "x-tessera-role"), "member");
    assert_eq!(header(&response, "x-tessera-grants"), "");
    assert_eq!(
        app.gate("?grant=users:read", &[("cookie", &cookie(&owner))])
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let body = assert_error(
        app.gate("?grant=users:read", &[("cookie", &cookie(&member))])
            .await,
        StatusCode::FORBIDDEN,
        "insufficient_grant",
    )
    .await;
    assert_eq!(body["error"]["grant"], "users:read");
    assert_error(
        app.gate("?grant=Not%20a%20grant", &[("cookie", &cookie(&owner))])
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    )
    .await;
    // Signed out, the cookie is nothing.
    app.logout(&owner).await;
    assert_error(
        app.gate("", &[("cookie", &cookie(&owner))]).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    // A session token as a bearer is not how the gate is asked.
    assert_error(
        app.gate("", &[("authorization", &format!("Bearer {member}"))])
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
}

async fn the_gate_tells_who_a_key_is_and_checks_its_grant(app: TestApp) {
    let owner = app.signed_in("owner@example.com").await;
    let (key, id) = app.new_key(&owner, &["users:read"], &[]).await;
    let bearer = format!("Bearer {key}");
    let response = app.gate("/x", &[("authorization", &bearer)]).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&response, "x-tessera-auth"), "api_key");
    assert_eq!(header(&response, "x-tessera-api-key-id"), id);
    assert_eq!(header(&response, "x-tessera-email"), "owner@example.com");
    assert_eq!(header(&response, "x-tessera-grants"), "users:read");
    let with = app
        .gate("?grant=users:read", &[("authorization", &bearer)])
        .await;
    assert_eq!(with.status(), StatusCode::NO_CONTENT);
    let without = app
        .gate("?grant=events:read", &[("authorization", &bearer)])
        .await;
    let body = assert_error(without, StatusCode::FORBIDDEN, "insufficient_grant").await;
    assert_eq!(body["error"]["grant"], "events:read");
    for bad in [unknown_key(), "tsk_nope".to_owned()] {
        assert_error(
            app.gate("", &[("authorization", &format!("Bearer {bad}"))])
                .await,
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
        )
        .await;
    }
    assert_eq!(
        app.revoke_key(&owner, &id).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_error(
        app.gate("", &[("authorization", &bearer)]).await,
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
    )
    .await;
}

async fn the_gate_sends_a_browser_to_sign_in_and_back(mut app: TestApp) {
    let public = app.base.clone();
    let html = ("accept", "text/html,application/xhtml+xml");
    // nginx's form of the original URL, on Tessera's own origin.
    let original = format!("{public}/reports?id=7");
    let response = app.gate("", &[html, ("x-original-url", &original)]).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let location = header(&response, "location").to_owned();
    let expected = format!(
        "{public}/login?{}",
        serde_urlencoded::to_string([("return_to", &original)]).unwrap()
    );
    assert_eq!(location, expected);
    // Another origin is not followed back unless the operator allows it.
    let app_origin = "https://app.example.com";
    let traefik = [
        html,
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "app.example.com"),
        ("x-forwarded-uri", "/dash?tab=2"),
    ];
    let response = app.gate("", &traefik).await;
    assert_eq!(header(&response, "location"), format!("{public}/login"));
    // No HTML wanted: no redirect.
    let response = app.gate("", &[("accept", "application/json")]).await;
    assert!(!response.headers().contains_key("location"));
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    app.reconfigure(|c| c.allowed_return_origins = vec![app_origin.to_owned()])
        .await;
    let public = app.base.clone();
    let response = app.gate("", &traefik).await;
    let location = header(&response, "location");
    assert_eq!(
        location,
        format!(
            "{public}/login?{}",
            serde_urlencoded::to_string([("return_to", "https://app.example.com/dash?tab=2")])
                .unwrap()
        )
    );
    // A look-alike origin is not the allowed one.
    let evil = [
        html,
        ("x-original-url", "https://app.example.com.evil.example/"),
    ];
    let response = app.gate("", &evil).await;
    assert_eq!(header(&response, "location"), format!("{public}/login"));
}

async fn a_setup_only_session_is_sent_to_set_up_two_factor(app: TestApp) {
    let owner = app.owner_with_2fa("owner@example.com").await;
    let (_, member) = app.join(&owner, "member@example.com", "member").await;
    let policy = app.set_2fa_policy(&owner, json!({"required": true})).await;
    assert_eq!(policy.status(), StatusCode::OK);
    // Whatever the request accepts: the session must set up 2FA first.
    let response = app
        .gate("", &[("cookie", &cookie(&member)), ("accept", "*/*")])
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&response, "location"),
        format!("{}/settings/security", app.base)
    );
    assert_error(
        response,
        StatusCode::UNAUTHORIZED,
        "two_factor_setup_required",
    )
    .await;
    // The owner, with 2FA, passes.
    assert_eq!(
        app.gate("", &[("cookie", &cookie(&owner))]).await.status(),
        StatusCode::NO_CONTENT
    );
}

async fn the_session_cookie_spans_the_cookie_domain(mut app: TestApp) {
    app.reconfigure(|c| c.cookie_domain = Some("example.com".to_owned()))
        .await;
    app.signed_up("ada@example.com").await;
    let token = app.signed_in_again("ada@example.com").await;
    let b = app.browser();
    // Through the emailed code of a new browser: its answer sets the session cookie.
    let response = b.sign_in(&app, "ada@example.com", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let set: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let session = set
        .iter()
        .find(|line| line.starts_with("tessera_session="))
        .expect("the session cookie");
    assert!(session.contains("; Domain=example.com"), "{session}");
    for line in set.iter().filter(|l| !l.starts_with("tessera_session=")) {
        assert!(
            !line.contains("Domain="),
            "only the session cookie spans it: {line}"
        );
    }
    assert_eq!(
        app.gate("", &[("cookie", &cookie(&token))]).await.status(),
        StatusCode::NO_CONTENT
    );
}
