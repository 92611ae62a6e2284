//! The web pages as a browser without JavaScript uses them: forms, cookies, CSRF.

use crate::helpers::{PASSWORD, TestApp};
use crate::otp::{decode_qr_svg, oathtool};
use reqwest::{Client, StatusCode};
use tessera_core::Clock;

backend_tests!(
    sign_up_see_home_sign_out_and_sign_in_again,
    a_form_without_its_csrf_token_is_refused,
    sign_in_mistakes_are_explained,
    signup_errors_are_shown_next_to_the_field,
    pages_escape_what_users_typed,
    enable_2fa_download_codes_and_sign_in_with_a_code,
    the_recovery_page_turns_2fa_off_with_the_paper_key,
);

/// A browser: keeps cookies, does not follow redirects (so tests see them).
pub(crate) fn browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub(crate) fn csrf_field(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[start..].split('"').next().unwrap().to_owned()
}

pub(crate) async fn get_page(browser: &Client, app: &TestApp, path: &str) -> (StatusCode, String) {
    let response = browser.get(app.url(path)).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

pub(crate) async fn post_form(
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

pub(crate) fn location(response: &reqwest::Response) -> &str {
    response.headers()["location"].to_str().unwrap()
}

/// Fills in and posts the sign-in page's form: the answer.
pub(crate) async fn post_password(
    b: &Client,
    app: &TestApp,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let (_, login) = get_page(b, app, "/login").await;
    post_form(
        b,
        app,
        "/login",
        &[
            ("csrf", &csrf_field(&login)),
            ("email", email),
            ("password", password),
        ],
    )
    .await
}

/// Signs in on the pages; a browser the user has not verified yet is asked for the code
/// emailed to them, which this reads from the mail and types in. The last response.
pub(crate) async fn page_sign_in(
    b: &Client,
    app: &TestApp,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let sent = app.device_codes_sent(email).await;
    let response = post_password(b, app, email, password).await;
    if response.status() != StatusCode::SEE_OTHER || location(&response) != "/login/verify-device" {
        return response;
    }
    let (status, html) = get_page(b, app, "/login/verify-device").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<h1>Verify your identity</h1>"));
    let code = app.device_code(email, sent + 1).await;
    post_form(
        b,
        app,
        "/login/verify-device",
        &[("csrf", &csrf_field(&html)), ("code", &code)],
    )
    .await
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
    // The browser that chose the password is recognized from now on.
    let device_cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with("tessera_device="))
        .expect("the browser is recognized");
    assert!(device_cookie.contains("HttpOnly") && device_cookie.contains("Max-Age=2592000"));

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

    let response = page_sign_in(&b, &app, "page@example.com", PASSWORD).await;
    assert_eq!(location(&response), "/");
    assert_eq!(
        app.device_codes_sent("page@example.com").await,
        0,
        "no emailed code for this browser"
    );
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
    // The right pair works; so does the code form after it, with its token only.
    let response = post_form(&b, &app, "/login", &stolen).await;
    assert_eq!(location(&response), "/login/verify-device");
    let (_, html) = get_page(&b, &app, "/login/verify-device").await;
    let code = app.next_device_code("csrf@example.com").await;
    let bare = post_form(&b, &app, "/login/verify-device", &[("code", &code)]).await;
    assert_eq!(bare.status(), StatusCode::FORBIDDEN);
    let resend = post_form(&b, &app, "/login/verify-device/resend", &[]).await;
    assert_eq!(resend.status(), StatusCode::FORBIDDEN);
    let fields = [("csrf", csrf_field(&html)), ("code", code)];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let response = post_form(&b, &app, "/login/verify-device", &fields).await;
    assert_eq!(location(&response), "/");
    // Sign-out is a form too; a field from before sign-in no longer fits: tokens are bound
    // to the session.
    assert_eq!(post_form(&b, &app, "/logout", &[]).await.status(), 403);
    assert_eq!(
        post_form(&b, &app, "/logout", &[("csrf", &good)])
            .await
            .status(),
        403
    );
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

/// The text of the `<p>` with `id`.
fn paragraph(html: &str, id: &str) -> String {
    let start = html.find(&format!("id=\"{id}\"")).expect("the element");
    let body = &html[start..];
    let body = &body[body.find('>').unwrap() + 1..];
    body[..body.find("</p>").unwrap()].to_owned()
}

/// Signs up in a browser: the browser, signed in.
async fn browser_signed_up(app: &TestApp, email: &str) -> Client {
    let b = browser();
    let (_, html) = get_page(&b, app, "/signup").await;
    let response = post_form(
        &b,
        app,
        "/signup",
        &[
            ("csrf", &csrf_field(&html)),
            ("account_name", "Acme"),
            ("name", "Ada"),
            ("email", email),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    b
}

/// Sets up 2FA from the security page: (secret, recovery codes, paper key).
pub(crate) async fn enable_on_page(
    app: &TestApp,
    b: &Client,
) -> Option<(String, Vec<String>, String)> {
    let (status, html) = get_page(b, app, "/settings/security").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Two-factor authentication <span class=\"badge\">Off</span>"));
    let response = post_form(
        b,
        app,
        "/settings/security/setup",
        &[("csrf", &csrf_field(&html))],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    let svg_start = html.find("<svg").unwrap();
    let svg_end = html[svg_start..].find("</svg>").unwrap() + svg_start + 6;
    let uri = decode_qr_svg(&html[svg_start..svg_end]);
    let secret = paragraph(&html, "secret").replace(' ', "");
    assert_eq!(secret.len(), 32, "{secret}");
    assert!(
        uri.contains(&format!("secret={secret}")),
        "the QR code holds the key shown"
    );
    let paper = paragraph(&html, "paper-key").replace(' ', "");
    assert_eq!(paper.len(), 64);
    let code = oathtool(&secret, app.clock.now())?;
    let response = post_form(
        b,
        app,
        "/settings/security/activate",
        &[("csrf", &csrf_field(&html)), ("code", &code)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(html.contains("Two-factor authentication is on"));
    let codes: Vec<String> = html
        .split("<li><code>")
        .skip(1)
        .map(|s| s.split('<').next().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    // The download button returns the same codes as a file.
    let response = post_form(
        b,
        app,
        "/settings/security/download",
        &[
            ("csrf", &csrf_field(&html)),
            ("kind", "recovery-codes"),
            ("content", &codes.join(" ")),
        ],
    )
    .await;
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"tessera-recovery-codes.txt\""
    );
    let file = response.text().await.unwrap();
    assert!(codes.iter().all(|c| file.lines().any(|l| l == c)));
    app.clock.advance(30);
    Some((secret, codes, paper))
}

async fn enable_2fa_download_codes_and_sign_in_with_a_code(app: TestApp) {
    let b = browser_signed_up(&app, "page2fa@example.com").await;
    let Some((secret, codes, _)) = enable_on_page(&app, &b).await else {
        return;
    };
    let (_, html) = get_page(&b, &app, "/settings/security").await;
    assert!(html.contains("Recovery codes left: <strong>10</strong>"));
    post_form(&b, &app, "/logout", &[("csrf", &csrf_field(&html))]).await;

    let (_, login) = get_page(&b, &app, "/login").await;
    let response = post_form(
        &b,
        &app,
        "/login",
        &[
            ("csrf", &csrf_field(&login)),
            ("email", "page2fa@example.com"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(location(&response), "/login/2fa");
    let challenge_cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(
        challenge_cookie.starts_with("tessera_challenge=") && challenge_cookie.contains("HttpOnly")
    );
    let (status, html) = get_page(&b, &app, "/login/2fa").await;
    assert_eq!(status, StatusCode::OK);
    let csrf = csrf_field(&html);
    let response = post_form(
        &b,
        &app,
        "/login/2fa",
        &[("csrf", &csrf), ("code", "000000")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("That code is not valid. 4 attempts left.")
    );
    let code = oathtool(&secret, app.clock.now()).unwrap();
    let response = post_form(&b, &app, "/login/2fa", &[("csrf", &csrf), ("code", &code)]).await;
    assert_eq!(location(&response), "/");
    let (status, home) = get_page(&b, &app, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(home.contains("Welcome, Ada"));

    // Again with a recovery code, then turn 2FA off with the password.
    post_form(&b, &app, "/logout", &[("csrf", &csrf_field(&home))]).await;
    let (_, login) = get_page(&b, &app, "/login").await;
    post_form(
        &b,
        &app,
        "/login",
        &[
            ("csrf", &csrf_field(&login)),
            ("email", "page2fa@example.com"),
            ("password", PASSWORD),
        ],
    )
    .await;
    let (_, html) = get_page(&b, &app, "/login/2fa").await;
    let response = post_form(
        &b,
        &app,
        "/login/2fa",
        &[("csrf", &csrf_field(&html)), ("code", &codes[0])],
    )
    .await;
    assert_eq!(location(&response), "/");
    let (_, html) = get_page(&b, &app, "/settings/security").await;
    assert!(html.contains("Recovery codes left: <strong>9</strong>"));
    let response = post_form(
        &b,
        &app,
        "/settings/security/disable",
        &[("csrf", &csrf_field(&html)), ("password", "wrong password")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Incorrect password.")
    );
    let response = post_form(
        &b,
        &app,
        "/settings/security/disable",
        &[("csrf", &csrf_field(&html)), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(location(&response), "/settings/security?notice=disabled");
    let (_, html) = get_page(&b, &app, "/settings/security?notice=disabled").await;
    assert!(html.contains("Two-factor authentication is off."));
}

async fn the_recovery_page_turns_2fa_off_with_the_paper_key(app: TestApp) {
    let b = browser_signed_up(&app, "pagepaper@example.com").await;
    let Some((_, _, paper)) = enable_on_page(&app, &b).await else {
        return;
    };
    let other = browser();
    let (status, html) = get_page(&other, &app, "/recover").await;
    assert_eq!(status, StatusCode::OK);
    let csrf = csrf_field(&html);
    let response = post_form(
        &other,
        &app,
        "/recover",
        &[
            ("csrf", &csrf),
            ("email", "pagepaper@example.com"),
            ("paper_key", &"a".repeat(64)),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("That email and paper key do not match.")
    );
    let response = post_form(
        &other,
        &app,
        "/recover",
        &[
            ("csrf", &csrf),
            ("email", "pagepaper@example.com"),
            ("paper_key", &paper),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Two-factor authentication is now off.")
    );
    let body: serde_json::Value = app
        .login("pagepaper@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    // Password only now (and, from a browser never verified, the emailed code).
    assert_eq!(body["status"], "device_verification_required");
    let body = app.verify_device("pagepaper@example.com", &body).await;
    assert_eq!(body["status"], "authenticated");
}
