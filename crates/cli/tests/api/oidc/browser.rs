//! The whole thing in Chromium: a small web app protected by authlib's Flask client
//! (`demo_app.py`) sends a user to Tessera, who signs in with a password and a TOTP code on
//! Tessera's pages and lands back in the app, which shows the claims it got. Photographed
//! into `target/e2e-screenshots/`. On SQLite only, as the other browser tests.

use super::{python, register_at};
use crate::browser::Browser;
use crate::helpers::{PASSWORD, spawn_app};
use fantoccini::Locator;
use std::path::PathBuf;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_protected_by_authlib_signs_a_user_in_with_totp_in_chromium() {
    let Some(app) = spawn_app(tessera_store::testing::Backend::Sqlite).await else {
        return;
    };
    let Some((_, factor)) = app.user_with_2fa("ada@example.com").await else {
        return;
    };
    let Some(python) = python() else {
        return;
    };
    let port = crate::smtp::free_port();
    let home = format!("http://127.0.0.1:{port}/");
    let client = register_at(&app, "Demo", &format!("{home}callback"), &[]);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/api/oidc/demo_app.py");
    let _demo = tokio::process::Command::new(python)
        .arg(script)
        .args([&app.base, &client.id, &client.secret, &port.to_string()])
        .env("AUTHLIB_INSECURE_TRANSPORT", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the demo app starts");
    for attempt in 0.. {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        assert!(attempt < 100, "the demo app did not listen on {port}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let Some(b) = Browser::start(&app.base).await else {
        return;
    };
    b.client.goto(&home).await.unwrap();
    b.screenshot("oidc-app-signed-out").await;
    b.client
        .find(Locator::LinkText("Sign in with Tessera"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let _ = b.find("#email").await;
    assert_eq!(b.path().await, "/login");
    b.screenshot("oidc-tessera-login").await;
    b.fill("Email", "ada@example.com").await;
    b.fill("Password", PASSWORD).await;
    b.press("Sign in").await;
    assert_eq!(b.path().await, "/login/2fa");
    b.screenshot("oidc-tessera-2fa").await;
    let code = app.totp(&factor);
    b.fill("Authentication code", &code).await;
    b.press("Verify").await;
    // Through the page that continues by itself, back to the app.
    let mut text = String::new();
    for _ in 0..100 {
        let url = b.client.current_url().await.unwrap();
        if url.port() == Some(port) && url.path() == "/" {
            text = b.text().await;
            if text.contains("Signed in as") {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(text.contains("Signed in as ada@example.com"), "{text}");
    let amr = b.find("#claim-amr").await.text().await.unwrap();
    assert!(amr.contains("otp") && amr.contains("mfa"), "{amr}");
    let role = b.find("#claim-tessera_role").await.text().await.unwrap();
    assert_eq!(role, "owner");
    b.screenshot("oidc-app-signed-in").await;
    b.close().await;
}
