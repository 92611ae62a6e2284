//! The web pages as a browser without JavaScript uses them: forms, cookies, CSRF.

use crate::helpers::{PASSWORD, TestApp};
use reqwest::{Client, StatusCode};

backend_tests!(
    sign_up_see_home_sign_out_and_sign_in_again,
    a_form_without_its_csrf_token_is_refused,
    sign_in_mistakes_are_explained,
    signup_errors_are_shown_next_to_the_field,
    pages_escape_what_users_typed,
);

/// A browser: keeps cookies, does not follow redirects (so tests see them).
fn browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn csrf_field(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[start..].split('"').next().unwrap().to_owned()
}

async fn get_page(browser: &Client, app: &TestApp, path: &str) -> (StatusCode, String) {
    let response = browser.get(app.url(path)).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

async fn post_form(
    browser: &Client,
    app: &TestApp,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    browser
        .post(app.url(path))
        .form(fields)
        .send()
        .await
        .unwrap()
}

fn location(response: &reqwest::Response) -> &str {
    response.headers()["location"].to_str().unwrap()
}

async fn sign_up_see_home_sign_out_and_sign_in_again(app: TestApp) {
    let b = browser();
    let response = b.get(app.url("/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login");

    let response = b.get(app.url("/signup")).send().await.unwrap();
    let csrf_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csrf_cookie.starts_with("tessera_csrf="));
    assert!(csrf_cookie.contains("HttpOnly") && csrf_cookie.contains("SameSite=Lax"));
    assert!(!csrf_cookie.contains("Secure"), "plain http in tests");
    let html = response.text().await.unwrap();
    assert!(html.contains("<label for=\"email\">Email</label>"));
    let csrf = csrf_field(&html);

    let response = post_form(
        &b,
        &app,
        "/signup",
        &[
            ("csrf", &csrf),
            ("account_name", "Acme"),
            ("name", "Ada Lovelace"),
            ("email", "page@example.com"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/");
    let session_cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(session_cookie.starts_with("tessera_session="));
    assert!(session_cookie.contains("HttpOnly") && session_cookie.contains("SameSite=Lax"));
    assert!(session_cookie.contains("Max-Age=86400"));

    let (status, home) = get_page(&b, &app, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(home.contains("Welcome, Ada Lovelace"));
    assert!(home.contains("Acme"));
    assert!(home.contains("Optional"));
    assert!(home.contains("Account created") && home.contains("Signed in"));
    // Signed in, the sign-in page sends you home.
    let response = b.get(app.url("/login")).send().await.unwrap();
    assert_eq!(location(&response), "/");

    let response = post_form(&b, &app, "/logout", &[("csrf", &csrf_field(&home))]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login");
    let response = b.get(app.url("/")).send().await.unwrap();
    assert_eq!(location(&response), "/login");

    let (_, login) = get_page(&b, &app, "/login").await;
    let response = post_form(
        &b,
        &app,
        "/login",
        &[
            ("csrf", &csrf_field(&login)),
            ("email", "page@example.com"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(location(&response), "/");
    let (status, home) = get_page(&b, &app, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(home.contains("Signed out"));
}

async fn a_form_without_its_csrf_token_is_refused(app: TestApp) {
    app.signup("csrf@example.com").await;
    let b = browser();
    let (_, html) = get_page(&b, &app, "/login").await;
    let good = csrf_field(&html);
    let creds = [("email", "csrf@example.com"), ("password", PASSWORD)];

    // No token.
    let response = post_form(&b, &app, "/login", &creds).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("This form has expired")
    );
    // A forged token.
    let mut forged = creds.to_vec();
    forged.push(("csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
    assert_eq!(post_form(&b, &app, "/login", &forged).await.status(), 403);
    // A real token, but from another browser (cookie mismatch).
    let other = browser();
    let mut stolen = creds.to_vec();
    stolen.push(("csrf", &good));
    let (_, _) = get_page(&other, &app, "/login").await;
    assert_eq!(
        post_form(&other, &app, "/login", &stolen).await.status(),
        403
    );
    // No cookie at all (a cross-site post from a fresh browser).
    assert_eq!(
        post_form(&browser(), &app, "/login", &stolen)
            .await
            .status(),
        403
    );
    // The right pair works.
    let response = post_form(&b, &app, "/login", &stolen).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    // Sign-out is a form too.
    assert_eq!(post_form(&b, &app, "/logout", &[]).await.status(), 403);
    let (status, _) = get_page(&b, &app, "/").await;
    assert_eq!(status, StatusCode::OK, "still signed in");
}

async fn sign_in_mistakes_are_explained(app: TestApp) {
    app.signup("oops@example.com").await;
    let b = browser();
    let (_, html) = get_page(&b, &app, "/login").await;
    let csrf = csrf_field(&html);
    let response = post_form(
        &b,
        &app,
        "/login",
        &[
            ("csrf", &csrf),
            ("email", "oops@example.com"),
            ("password", "nope nope"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let html = response.text().await.unwrap();
    assert!(html.contains("Incorrect email or password."));
    assert!(
        html.contains("value=\"oops@example.com\""),
        "the email is kept"
    );
    for _ in 0..9 {
        post_form(
            &b,
            &app,
            "/login",
            &[
                ("csrf", &csrf),
                ("email", "oops@example.com"),
                ("password", "nope nope"),
            ],
        )
        .await;
    }
    let response = post_form(
        &b,
        &app,
        "/login",
        &[
            ("csrf", &csrf),
            ("email", "oops@example.com"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Try again in 15 minutes.")
    );
}

async fn signup_errors_are_shown_next_to_the_field(app: TestApp) {
    let b = browser();
    let (_, html) = get_page(&b, &app, "/signup").await;
    let response = post_form(
        &b,
        &app,
        "/signup",
        &[
            ("csrf", &csrf_field(&html)),
            ("account_name", "Acme"),
            ("name", "Ada"),
            ("email", "field@example.com"),
            ("password", "short"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(html.contains("id=\"password-error\">Must be at least 8 characters.</p>"));
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
    let b = browser();
    let (_, html) = get_page(&b, &app, "/signup").await;
    post_form(
        &b,
        &app,
        "/signup",
        &[
            ("csrf", &csrf_field(&html)),
            ("account_name", "<script>alert('team')</script>"),
            ("name", "<img src=x onerror=alert(1)>"),
            ("email", "xss@example.com"),
            ("password", PASSWORD),
        ],
    )
    .await;
    let (_, home) = get_page(&b, &app, "/").await;
    assert!(!home.contains("<script>alert"));
    assert!(!home.contains("<img src=x"));
    assert!(home.contains("&#60;img src=x onerror=alert(1)&#62;"));
}
