//! `return_to` on the sign-in page (SPEC §11): after signing in, whether straight away, with
//! an emailed code or with a second factor, the browser goes back where the gate sent it
//! from, but only to Tessera's own paths, its public origin, or an origin the operator
//! allowed. Anything else leads home: the sign-in page is no open redirect.

use crate::helpers::{PASSWORD, PageBrowser, ResponseExt, SecondFactor, TestApp};
use reqwest::StatusCode;

backend_tests!(
    sign_in_goes_back_only_to_allowed_places,
    a_signed_in_browser_goes_straight_back,
);

/// Signs in on the pages with `return_to`, answering the emailed code or the second
/// factor when asked: where the browser is sent at the end.
async fn sign_in_to(
    app: &TestApp,
    b: &PageBrowser,
    email: &str,
    factor: Option<&SecondFactor>,
    return_to: &str,
) -> String {
    let sent = app.device_codes_sent(email).await;
    let login = format!(
        "/login?{}",
        serde_urlencoded::to_string([("return_to", return_to)]).unwrap()
    );
    let (_, page) = b.get(&login).await;
    let response = b
        .submit(
            &page,
            "/login",
            &[
                ("email", email),
                ("password", PASSWORD),
                ("return_to", return_to),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let mut location = response.location().to_owned();
    for _ in 0..2 {
        let code = match location.as_str() {
            "/login/verify-device" => app.device_code(email, sent + 1).await,
            "/login/2fa" => app.totp(factor.expect("a second factor")),
            _ => break,
        };
        let (_, html) = b.get(&location).await;
        let response = b.submit(&html, &location, &[("code", &code)]).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        location = response.location().to_owned();
    }
    location
}

async fn sign_in_goes_back_only_to_allowed_places(mut app: TestApp) {
    app.reconfigure(|c| c.allowed_return_origins = vec!["https://app.example.com".to_owned()])
        .await;
    app.signed_up("ada@example.com").await;
    let own = format!("{}/account/api-keys", app.base);
    let b = app.browser();
    for (asked, lands) in [
        ("/settings/devices", "/settings/devices"),
        (own.as_str(), own.as_str()),
        (
            "https://app.example.com/dash?tab=2",
            "https://app.example.com/dash?tab=2",
        ),
        ("https://evil.example/phish", "/"),
        ("//evil.example/phish", "/"),
        ("/\\evil.example", "/"),
        ("https://app.example.com.evil.example/", "/"),
        ("https://ada@app.example.com/", "/"),
        ("javascript:alert(1)", "/"),
    ] {
        let landed = sign_in_to(&app, &b, "ada@example.com", None, asked).await;
        assert_eq!(landed, lands, "return_to={asked}");
        // Signed out again; the browser stays recognized (no more emailed codes).
        let (_, home) = b.get("/").await;
        b.sign_out(&home).await;
    }
    // A refused return_to is not even put in the form.
    let (_, page) = app
        .browser()
        .get("/login?return_to=https%3A%2F%2Fevil.example%2F")
        .await;
    assert!(!page.contains("evil.example"), "{page}");
    // An odd query is no error: the page is shown.
    let (status, _) = app
        .browser()
        .get("/login?return_to=%2Fa&return_to=%2Fb&x=%ZZ")
        .await;
    assert_eq!(status, StatusCode::OK);
    // Through the second step too, the way back waits in a cookie.
    let (_, factor) = app
        .user_with_2fa("grace@example.com")
        .await
        .expect("oathtool");
    app.clock.advance(30);
    let b = app.browser();
    let landed = sign_in_to(
        &app,
        &b,
        "grace@example.com",
        Some(&factor),
        "https://app.example.com/after-2fa",
    )
    .await;
    assert_eq!(landed, "https://app.example.com/after-2fa");
}

async fn a_signed_in_browser_goes_straight_back(app: TestApp) {
    app.signed_up("ada@example.com").await;
    let b = app.browser_signed_in("ada@example.com").await;
    let back = format!("{}/settings/activity", app.base);
    let query = serde_urlencoded::to_string([("return_to", &back)]).unwrap();
    let response = b.open(&format!("/login?{query}")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.location(), back);
    let response = b
        .open("/login?return_to=https%3A%2F%2Fevil.example%2F")
        .await;
    assert_eq!(response.location(), "/");
}
