//! Signing up, in and out on the pages; CSRF; mistakes explained; what users typed, escaped.

use crate::helpers::{PASSWORD, ResponseExt, TestApp, assert_page, csrf_field};
use reqwest::StatusCode;

backend_tests!(
    sign_up_see_home_sign_out_and_sign_in_again,
    a_form_without_its_csrf_token_is_refused,
    sign_in_mistakes_are_explained,
    signup_errors_are_shown_next_to_the_field,
    pages_escape_what_users_typed,
);

async fn sign_up_see_home_sign_out_and_sign_in_again(app: TestApp) {
    let b = app.browser();
    let response = b.open("/").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.location(), "/login");

    let response = b.open("/signup").await;
    let csrf_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csrf_cookie.starts_with("tessera_csrf="));
    assert!(csrf_cookie.contains("HttpOnly") && csrf_cookie.contains("SameSite=Lax"));
    assert!(!csrf_cookie.contains("Secure"), "plain http in tests");
    let html = response.html().await;
    assert!(html.contains("<label for=\"email\">Email</label>"));

    let fields = [
        ("account_name", "Acme"),
        ("name", "Ada Lovelace"),
        ("email", "page@example.com"),
        ("password", PASSWORD),
    ];
    let response = b.submit(&html, "/signup", &fields).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.location(), "/");
    let session_cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(session_cookie.starts_with("tessera_session="));
    assert!(session_cookie.contains("HttpOnly") && session_cookie.contains("SameSite=Lax"));
    assert!(session_cookie.contains("Max-Age=43200"));
    // The browser that chose the password is recognized from now on.
    let device_cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with("tessera_device="))
        .expect("the browser is recognized");
    assert!(device_cookie.contains("HttpOnly") && device_cookie.contains("Max-Age=2592000"));

    let (status, home) = b.get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(home.contains("Welcome, Ada Lovelace"));
    assert!(home.contains("Acme"));
    assert!(home.contains("Optional"));
    assert!(home.contains("Account created") && home.contains("Signed in"));
    // Signed in, the sign-in page sends you home.
    assert_eq!(b.open("/login").await.location(), "/");

    let response = b.sign_out(&home).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.location(), "/login");
    assert_eq!(b.open("/").await.location(), "/login");

    let response = b.sign_in(&app, "page@example.com", PASSWORD).await;
    assert_eq!(response.location(), "/");
    assert_eq!(
        app.device_codes_sent("page@example.com").await,
        0,
        "no emailed code for this browser"
    );
    let (status, home) = b.get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(home.contains("Signed out"));
}

async fn a_form_without_its_csrf_token_is_refused(app: TestApp) {
    app.signed_up("csrf@example.com").await;
    let b = app.browser();
    let (_, html) = b.get("/login").await;
    let good = csrf_field(&html);
    let creds = [("email", "csrf@example.com"), ("password", PASSWORD)];

    // No token.
    let response = b.post_form("/login", &creds).await;
    assert_page(response, StatusCode::FORBIDDEN, "This form has expired").await;
    // A forged token.
    let mut forged = creds.to_vec();
    forged.push(("csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
    assert_eq!(b.post_form("/login", &forged).await.status(), 403);
    // A real token, but from another browser (cookie mismatch).
    let other = app.browser();
    let mut stolen = creds.to_vec();
    stolen.push(("csrf", &good));
    let (_, _) = other.get("/login").await;
    assert_eq!(other.post_form("/login", &stolen).await.status(), 403);
    // No cookie at all (a cross-site post from a fresh browser).
    let fresh = app.browser();
    assert_eq!(fresh.post_form("/login", &stolen).await.status(), 403);
    // The right pair works; so does the code form after it, with its token only.
    let response = b.post_form("/login", &stolen).await;
    assert_eq!(response.location(), "/login/verify-device");
    let (_, html) = b.get("/login/verify-device").await;
    let code = app.next_device_code("csrf@example.com").await;
    let bare = b
        .post_form("/login/verify-device", &[("code", &code)])
        .await;
    assert_eq!(bare.status(), StatusCode::FORBIDDEN);
    let resend = b.post_form("/login/verify-device/resend", &[]).await;
    assert_eq!(resend.status(), StatusCode::FORBIDDEN);
    let response = b
        .submit(&html, "/login/verify-device", &[("code", &code)])
        .await;
    assert_eq!(response.location(), "/");
    // Sign-out is a form too; a field from before sign-in no longer fits: tokens are bound
    // to the session.
    assert_eq!(b.post_form("/logout", &[]).await.status(), 403);
    let before = b.post_form("/logout", &[("csrf", &good)]).await;
    assert_eq!(before.status(), 403);
    let (status, _) = b.get("/").await;
    assert_eq!(status, StatusCode::OK, "still signed in");
}

async fn sign_in_mistakes_are_explained(app: TestApp) {
    app.signed_up("oops@example.com").await;
    let b = app.browser();
    let (_, html) = b.get("/login").await;
    let wrong = [("email", "oops@example.com"), ("password", "nope nope")];
    let response = b.submit(&html, "/login", &wrong).await;
    let page = assert_page(
        response,
        StatusCode::UNAUTHORIZED,
        "Incorrect email or password.",
    )
    .await;
    assert!(
        page.contains("value=\"oops@example.com\""),
        "the email is kept"
    );
    for _ in 0..9 {
        b.submit(&html, "/login", &wrong).await;
    }
    let right = [("email", "oops@example.com"), ("password", PASSWORD)];
    let response = b.submit(&html, "/login", &right).await;
    assert_page(
        response,
        StatusCode::TOO_MANY_REQUESTS,
        "Try again in 15 minutes.",
    )
    .await;
}

async fn signup_errors_are_shown_next_to_the_field(app: TestApp) {
    let b = app.browser();
    let response = b.sign_up("Acme", "Ada", "field@example.com", "short").await;
    let html = assert_page(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "id=\"password-error\">Must be at least 12 characters.</p>",
    )
    .await;
    assert!(html.contains("aria-invalid=\"true\""));
    assert!(
        html.contains("value=\"field@example.com\""),
        "typed values are kept"
    );
    assert!(
        !html.contains("value=\"short\""),
        "the password is never echoed"
    );
}

async fn pages_escape_what_users_typed(app: TestApp) {
    let b = app.browser();
    b.sign_up(
        "<script>alert('team')</script>",
        "<img src=x onerror=alert(1)>",
        "xss@example.com",
        PASSWORD,
    )
    .await;
    let (_, home) = b.get("/").await;
    assert!(!home.contains("<script>alert"));
    assert!(!home.contains("<img src=x"));
    assert!(home.contains("&#60;img src=x onerror=alert(1)&#62;"));
}
