//! The sign-up pages by mode: "check your email", the link's page that signs in and remembers
//! the browser, and the closed door.

use crate::helpers::{PASSWORD, ResponseExt, TestApp, assert_page};
use reqwest::StatusCode;
use tessera_core::sign_up::SignupMode;

backend_tests!(
    the_emailed_link_signs_the_browser_in_once,
    closed_signup_says_so_and_the_operator_link_asks_for_a_password,
);

async fn the_emailed_link_signs_the_browser_in_once(mut app: TestApp) {
    app.reconfigure(|c| c.signup = SignupMode::Verify).await;
    let b = app.browser();
    let response = b
        .sign_up("Orbit", "Grace", "grace@example.com", PASSWORD)
        .await;
    assert_page(response, StatusCode::OK, "Check your email").await;
    let token = app.signup_token("grace@example.com", 1).await;
    let path = format!("/signup/confirm/{token}");

    // Opening the link (as a mail scanner would) uses nothing up; the button does.
    let (status, page) = b.get(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Create Orbit"), "{page}");
    let response = b
        .submit(&page, "/signup/confirm", &[("token", &token)])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.location(), "/");
    let cookies: Vec<_> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        cookies.iter().any(|c| c.starts_with("tessera_device=")),
        "{cookies:?}"
    );
    let (status, home) = b.get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(home.contains("Welcome, Grace"), "{home}");

    let (status, page) = b.get(&path).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(page.contains("already been used"), "{page}");
    let (status, _) = app.browser().get("/signup/confirm/nonsense").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn closed_signup_says_so_and_the_operator_link_asks_for_a_password(mut app: TestApp) {
    app.reconfigure(|c| c.signup = SignupMode::Closed).await;
    let b = app.browser();
    let (status, page) = b.get("/signup").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("Sign-up is closed"), "{page}");

    let (ok, _, err) = app.admin(&[
        "create-account",
        "--name",
        "Orbit",
        "--owner-email",
        "owner@example.com",
        "--owner-name",
        "Grace",
    ]);
    assert!(ok, "{err}");
    // The command queued the email by the wall clock; the app's clock stands still.
    app.clock.advance(60);
    let token = app.signup_token("owner@example.com", 1).await;
    let (_, page) = b.get(&format!("/signup/confirm/{token}")).await;
    assert!(page.contains("Choose your password"), "{page}");
    let response = b
        .submit(
            &page,
            "/signup/confirm",
            &[("token", &token), ("password", "short")],
        )
        .await;
    assert_page(response, StatusCode::UNPROCESSABLE_ENTITY, "12 characters").await;
    let (_, page) = b.get(&format!("/signup/confirm/{token}")).await;
    let response = b
        .submit(
            &page,
            "/signup/confirm",
            &[("token", &token), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(response.location(), "/");
    let (_, home) = b.get("/").await;
    assert!(home.contains("Welcome, Grace"), "{home}");
}
