//! The seed flows, clicked through the control panel in headless Chromium: labels are
//! found by their text, buttons by what they say, TOTP codes computed by oathtool from the
//! key read off the page, emails read from the SMTP server (aiosmtpd) the app sent them
//! to. Every page is photographed into `target/e2e-screenshots/`.
//!
//! These run on SQLite only: the pages go through the same handlers and store calls as the
//! API, whose tests cover both backends; a browser per test per backend would double the
//! slowest tests for no new path.

use crate::browser::Browser;
use crate::helpers::{PASSWORD, SecondFactor, TestApp};
use crate::otp::{decode_qr_svg, oathtool};
use tessera_core::Clock;

mod devices;
mod passwords;
mod sso;
mod team;
mod trust;
mod two_factor;
mod webauthn;

/// Declares each `async fn name(app: TestApp, browser: Browser)` of the calling module as a
/// test on SQLite with a browser.
macro_rules! browser_tests {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn in_chromium() {
                let backend = tessera_store::testing::Backend::Sqlite;
                let Some(mut app) = crate::helpers::spawn_app(backend).await else {
                    return;
                };
                // Emails go through a real SMTP server, where the test reads them; sign-up
                // is the default `verify`: through the emailed link.
                let Some(smtp) = crate::smtp::SmtpSink::start().await else {
                    return;
                };
                app.reconfigure(|c| c.signup = tessera_core::sign_up::SignupMode::Verify)
                    .await;
                app.use_smtp(&smtp).await;
                let Some(browser) = crate::browser::Browser::start(&app.base).await else {
                    return;
                };
                super::$name(app, browser).await;
                drop(smtp);
            }
        }
    )+};
}
use browser_tests;

/// Signs Ada up at `email` through the pages and the link emailed to her: the browser is
/// signed in and recognized.
async fn sign_up(app: &TestApp, b: &Browser, email: &str) {
    let sent = app.signup_links_sent(email).await;
    b.open("/signup").await;
    b.fill("Team name", "Acme").await;
    b.fill("Your name", "Ada Lovelace").await;
    b.fill("Email", email).await;
    b.fill("Password", PASSWORD).await;
    b.press("Create account").await;
    assert!(b.text().await.contains("Check your email"));
    let token = app.signup_token(email, sent + 1).await;
    b.open(&format!("/signup/confirm/{token}")).await;
    b.press("Confirm and sign in").await;
    assert_eq!(b.path().await, "/");
}

/// Signs in through the pages; an unrecognized browser answers the emailed code.
async fn sign_in(app: &TestApp, b: &Browser, email: &str, shots: bool) {
    let sent = app.device_codes_sent(email).await;
    b.open("/login").await;
    if shots {
        b.screenshot("login").await;
    }
    b.fill("Email", email).await;
    b.fill("Password", PASSWORD).await;
    b.press("Sign in").await;
    if b.path().await == "/login/verify-device" {
        if shots {
            b.screenshot("login-verify-device").await;
        }
        let code = app.device_code(email, sent + 1).await;
        b.fill("Code from the email", &code).await;
        b.press("Verify").await;
    }
}

/// Sets up 2FA from the security page, checking the QR code holds the key shown.
async fn set_up_2fa(app: &TestApp, b: &Browser, shots: bool) -> Option<SecondFactor> {
    b.open("/settings/security").await;
    if shots {
        b.screenshot("security-off").await;
    }
    b.press("Set up an authenticator app").await;
    if shots {
        b.screenshot("security-setup").await;
    }
    let secret = b
        .find("#secret")
        .await
        .text()
        .await
        .unwrap()
        .replace(' ', "");
    assert_eq!(secret.len(), 32);
    let html = b.html().await;
    let start = html.find("<svg").expect("a QR code");
    let end = html[start..].find("</svg>").unwrap() + start + 6;
    let uri = decode_qr_svg(&html[start..end]);
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    let paper = b
        .find("#paper-key")
        .await
        .text()
        .await
        .unwrap()
        .replace(' ', "");
    assert_eq!(paper.len(), 64);
    if shots {
        // The paper key saved as a file holds what the page shows.
        let file = b
            .download("Download paper key (.txt)", "tessera-paper-key.txt")
            .await;
        assert!(file.replace(' ', "").contains(&paper), "{file}");
    }
    let code = oathtool(&secret, app.clock.now())?;
    b.fill("6-digit code", &code).await;
    b.press("Verify code").await;
    let text = b.text().await;
    assert!(text.contains("Code accepted."), "{text}");
    assert!(text.contains("Two-factor authentication is on"));
    if shots {
        b.screenshot("security-codes").await;
    }
    let mut codes = Vec::new();
    for element in b
        .client
        .find_all(fantoccini::Locator::Css("#recovery-codes code"))
        .await
        .unwrap()
    {
        codes.push(element.text().await.unwrap());
    }
    assert_eq!(codes.len(), 10);
    if shots {
        let file = b
            .download(
                "Download recovery codes (.txt)",
                "tessera-recovery-codes.txt",
            )
            .await;
        for code in &codes {
            assert!(file.contains(code.as_str()), "{code} in {file}");
        }
    }
    app.clock.advance(30);
    Some(SecondFactor {
        secret,
        recovery_codes: codes,
        paper_key: paper,
    })
}
