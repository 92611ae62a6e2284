//! Security keys and passkeys in Chromium, with a virtual authenticator added through the
//! WebDriver WebAuthn extension: adding a key on the security page, signing in with it as
//! the second step, then with the passkey alone; confirming it is you with it, and removing
//! it (the last factor: 2FA goes off).
//!
//! The browser is pointed at `http://localhost:PORT`: browsers refuse an IP address as
//! relying party, and the app serves the loopback address as `localhost`.

use super::sign_up;
use crate::browser::Browser;
use crate::helpers::PASSWORD;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_adds_a_security_key_signs_in_with_it_then_with_the_passkey_alone() {
    let backend = tessera_store::testing::Backend::Sqlite;
    let Some(mut app) = crate::helpers::spawn_app(backend).await else {
        return;
    };
    let Some(smtp) = crate::smtp::SmtpSink::start().await else {
        return;
    };
    app.reconfigure(|c| c.signup = tessera_core::sign_up::SignupMode::Verify)
        .await;
    app.use_smtp(&smtp).await;
    let base = app.base.replace("127.0.0.1", "localhost");
    let Some(b) = Browser::start(&base).await else {
        return;
    };
    let authenticator = b.add_virtual_authenticator().await;
    sign_up(&app, &b, "keys@example.com").await;

    b.open("/settings/security").await;
    b.fill("Name of the new key", "My YubiKey").await;
    b.screenshot("webauthn-security-add").await;
    b.press("Add a security key").await;
    assert_eq!(b.path().await, "/settings/security/keys/add");
    b.screenshot("webauthn-add-touch").await;
    b.press("Add “My YubiKey”").await;
    let text = b.text().await;
    assert!(text.contains("Two-factor authentication is on"), "{text}");
    assert!(text.contains("“My YubiKey” is added"), "{text}");
    b.screenshot("webauthn-added-codes").await;
    let credentials = b.virtual_credentials(&authenticator).await;
    assert_eq!(credentials.len(), 1, "{credentials:?}");
    assert_eq!(credentials[0]["isResidentCredential"], true, "a passkey");

    b.open("/settings/security").await;
    let text = b.text().await;
    assert!(text.contains("My YubiKey"), "{text}");
    assert!(text.contains("Never"), "not used yet: {text}");
    b.screenshot("webauthn-security-keys").await;

    // The second step, with the key.
    b.press("Sign out").await;
    b.open("/login").await;
    b.fill("Email", "keys@example.com").await;
    b.fill("Password", PASSWORD).await;
    b.press("Sign in").await;
    assert_eq!(b.path().await, "/login/2fa");
    let text = b.text().await;
    assert!(text.contains("Use your security key"), "{text}");
    b.screenshot("webauthn-login-2fa").await;
    b.press("Use your security key").await;
    assert_eq!(b.path().await, "/");
    b.screenshot("webauthn-signed-in-with-key").await;

    // The passkey alone.
    b.press("Sign out").await;
    b.open("/login").await;
    b.screenshot("webauthn-login").await;
    b.press("Sign in with a passkey").await;
    assert_eq!(b.path().await, "/login/passkey");
    b.screenshot("webauthn-passkey").await;
    b.press("Use your passkey").await;
    assert_eq!(b.path().await, "/");
    assert!(b.text().await.contains("Welcome, Ada Lovelace"));
    b.screenshot("webauthn-signed-in-with-passkey").await;

    b.open("/settings/security").await;
    let text = b.text().await;
    assert!(!text.contains("Never"), "used now: {text}");

    // Later, removing the key asks to confirm it is you: the key does.
    app.clock.advance(16 * 60);
    b.press("Remove").await;
    assert_eq!(b.path().await, "/reauthenticate");
    b.fill("Password", PASSWORD).await;
    b.screenshot("webauthn-reauthenticate").await;
    b.press("Confirm with your security key").await;
    assert_eq!(b.path().await, "/settings/security");
    b.press("Remove").await;
    let text = b.text().await;
    assert!(text.contains("Two-factor authentication is off."), "{text}");
    assert!(!text.contains("My YubiKey"), "{text}");
    b.screenshot("webauthn-removed").await;
    b.close().await;
    drop(smtp);
}
