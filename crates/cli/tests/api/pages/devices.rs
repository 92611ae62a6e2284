//! Recognized browsers on the pages: the emailed-code page, the devices page, and the
//! browser that chose the password.

use crate::helpers::{PASSWORD, ResponseExt, TestApp, assert_page};
use reqwest::StatusCode;

backend_tests!(
    the_device_pages_verify_resend_and_list,
    the_browser_that_chose_the_password_is_recognized,
);

async fn the_device_pages_verify_resend_and_list(app: TestApp) {
    app.signed_up("page@example.com").await;
    let b = app.browser();
    let response = b.post_password("page@example.com", PASSWORD).await;
    assert_eq!(response.location(), "/login/verify-device");
    let (_, html) = b.get("/login/verify-device").await;
    assert!(html.contains("<label for=\"code\">Code from the email</label>"));
    assert!(html.contains("You can ask for a new code in 30 seconds."));
    let resend = b.submit(&html, "/login/verify-device/resend", &[]).await;
    assert_page(
        resend,
        StatusCode::TOO_MANY_REQUESTS,
        "you can ask for a new code in 30 seconds",
    )
    .await;
    app.clock.advance(30);
    let resend = b.submit(&html, "/login/verify-device/resend", &[]).await;
    let html = assert_page(resend, StatusCode::OK, "A new code is on its way.").await;
    let code = app.device_code("page@example.com", 2).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let response = b
        .submit(&html, "/login/verify-device", &[("code", wrong)])
        .await;
    assert_page(
        response,
        StatusCode::UNAUTHORIZED,
        "That code is not valid. 4 attempts left.",
    )
    .await;
    let response = b
        .submit(&html, "/login/verify-device", &[("code", &code)])
        .await;
    assert_eq!(response.location(), "/");

    // The devices page lists this browser and this session, and signs out the others.
    let other = app.browser_signed_in("page@example.com").await;
    let (status, html) = b.get("/settings/devices").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<h1>Devices and sessions</h1>"));
    assert!(html.contains("This session"));
    assert_eq!(
        html.matches("/forget\"").count(),
        2,
        "two recognized browsers"
    );
    let response = b.submit(&html, "/settings/sessions/end-others", &[]).await;
    assert_eq!(response.location(), "/settings/devices?notice=others");
    let (status, _) = other.get("/").await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "the other browser was signed out"
    );
    let (status, _) = b.get("/").await;
    assert_eq!(status, StatusCode::OK);
}

/// Signing up, or accepting an invitation, in a browser makes it a recognized device: the
/// next sign-in from it needs no emailed code; another browser still does.
async fn the_browser_that_chose_the_password_is_recognized(app: TestApp) {
    let b = app.browser();
    let response = b.sign_up("Acme", "Ada", "ada@example.com", PASSWORD).await;
    assert_eq!(response.location(), "/");
    let cookies: Vec<_> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("tessera_device=") && c.contains("HttpOnly")),
        "{cookies:?}"
    );
    assert_eq!(b.sign_out_and_in("ada@example.com").await, "/");
    assert_eq!(
        app.browser().password_sign_in("ada@example.com").await,
        "/login/verify-device",
        "another browser"
    );

    // An invitee who joins in a browser.
    let owner = app.signed_in("owner@example.com").await;
    let sent = app.invite(&owner, "grace@example.com", "member").await;
    assert_eq!(sent.status(), StatusCode::CREATED);
    let token = app.invitation_token("grace@example.com", 1).await;
    let invitee = app.browser();
    let fields = [
        ("token", token.as_str()),
        ("name", "Grace"),
        ("password", PASSWORD),
    ];
    let link = format!("/invitations/{token}");
    let response = invitee.fill_in(&link, "/invitations/accept", &fields).await;
    assert_eq!(response.location(), "/");
    assert_eq!(invitee.sign_out_and_in("grace@example.com").await, "/");
    // Listed with the others: the API client here verified itself by email.
    let token = app.signed_in_again("grace@example.com").await;
    let devices = app.devices(&token).await.body().await;
    assert_eq!(devices.as_array().unwrap().len(), 2, "{devices}");
}
