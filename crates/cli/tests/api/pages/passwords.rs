//! Passwords on the pages (SPEC §8): the change form of `/settings/security`, the link on
//! `/login`, `/password/forgot` and `/password/reset/{token}`, with CSRF like every form.

use crate::helpers::{PASSWORD, ResponseExt, TestApp, assert_page};
use reqwest::StatusCode;

backend_tests!(
    the_security_page_changes_the_password,
    forgot_and_reset_on_the_pages,
    an_unusable_reset_link_has_a_clear_page,
);

const NEW_PASSWORD: &str = "quartz lantern meadow violet";

async fn the_security_page_changes_the_password(app: TestApp) {
    let email = "pages@example.com";
    let b = app.browser_signed_up(email).await;
    let other = app.signed_in_again(email).await;
    let (_, html) = b.get("/settings/security").await;
    assert!(html.contains("<label for=\"current_password\">Current password</label>"));
    let fields = [
        ("current_password", "wrong one"),
        ("new_password", NEW_PASSWORD),
    ];
    let response = b
        .submit(&html, "/settings/security/password", &fields)
        .await;
    assert_page(
        response,
        StatusCode::UNAUTHORIZED,
        "Your current password is not right.",
    )
    .await;
    // The estimator's hint, next to the field.
    let fields = [
        ("current_password", PASSWORD),
        ("new_password", "password123456"),
    ];
    let response = b
        .submit(&html, "/settings/security/password", &fields)
        .await;
    let refused = assert_page(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "id=\"new_password-error\"",
    )
    .await;
    assert!(refused.contains("aria-invalid=\"true\""));
    // Without the CSRF field: refused.
    let forged = b.post_form("/settings/security/password", &fields).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let fields = [
        ("current_password", PASSWORD),
        ("new_password", NEW_PASSWORD),
    ];
    let response = b
        .submit(&html, "/settings/security/password", &fields)
        .await;
    assert_eq!(response.location(), "/settings/security?notice=password");
    let (status, html) = b.get("/settings/security?notice=password").await;
    assert_eq!(status, StatusCode::OK, "this browser stays signed in");
    assert!(html.contains("Your password is changed."));
    assert_eq!(
        app.me(&other).await.status(),
        401,
        "the other session ended"
    );
}

async fn forgot_and_reset_on_the_pages(app: TestApp) {
    let email = "pages@example.com";
    app.signed_up(email).await;
    let b = app.browser();
    let (_, login) = b.get("/login").await;
    assert!(login.contains("<a href=\"/password/forgot\">Forgot your password?</a>"));
    for address in ["nobody@example.com", email] {
        let response = b
            .fill_in(
                "/password/forgot",
                "/password/forgot",
                &[("email", address)],
            )
            .await;
        assert_page(response, StatusCode::OK, "Check your email.").await;
    }
    let token = app.reset_token(email, 1).await;
    let path = format!("/password/reset/{token}");
    let (status, form) = b.get(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(form.contains(email));
    let weak = [("new_password", "password123456")];
    let response = b.submit(&form, &path, &weak).await;
    assert_page(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "id=\"new_password-error\"",
    )
    .await;
    let response = b
        .submit(&form, &path, &[("new_password", NEW_PASSWORD)])
        .await;
    assert_page(response, StatusCode::OK, "Your password is changed").await;
    let (status, page) = b.get(&path).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(page.contains("This reset link was already used"));
    let signed_in = b.sign_in(&app, email, NEW_PASSWORD).await;
    assert_eq!(signed_in.location(), "/");
}

async fn an_unusable_reset_link_has_a_clear_page(app: TestApp) {
    let email = "pages@example.com";
    app.signed_up(email).await;
    let b = app.browser();
    let (status, page) = b.get("/password/reset/not-a-token").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(page.contains("This reset link is not valid"));
    b.fill_in("/password/forgot", "/password/forgot", &[("email", email)])
        .await;
    let token = app.reset_token(email, 1).await;
    let path = format!("/password/reset/{token}");
    let (_, form) = b.get(&path).await;
    app.clock.advance(3600);
    let (status, page) = b.get(&path).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(page.contains("This reset link has expired"));
    let response = b
        .submit(&form, &path, &[("new_password", NEW_PASSWORD)])
        .await;
    assert_page(response, StatusCode::GONE, "This reset link has expired").await;
}
