//! Single sign-on in Chromium: an owner connects the team's identity provider on
//! `/account/sso`, then someone new signs in with "Sign in with SSO" through the provider's
//! own login screen and lands on the home page; a refusal is a page in words.

use super::{browser_tests, set_up_2fa, sign_up};
use crate::browser::Browser;
use crate::helpers::TestApp;
use crate::sso::Idp;

browser_tests!(an_owner_connects_sso_and_someone_new_signs_in_with_it);

/// At the provider's login screen (not ours): any password for a known account.
async fn provider_login(b: &Browser, login: &str) {
    b.find("input[name=login]")
        .await
        .send_keys(login)
        .await
        .unwrap();
    b.find("input[name=password]")
        .await
        .send_keys("any")
        .await
        .unwrap();
    b.click("button[type=submit]").await;
}

async fn an_owner_connects_sso_and_someone_new_signs_in_with_it(app: TestApp, b: Browser) {
    let Some(idp) = Idp::start(&app.base).await else {
        return;
    };
    sign_up(&app, &b, "boss@acme.test").await;
    if set_up_2fa(&app, &b, false).await.is_none() {
        return;
    }
    b.open("/account/sso").await;
    assert!(b.text().await.contains("Not connected"));
    b.screenshot("sso-settings-empty").await;
    b.fill("Issuer URL", &idp.issuer).await;
    b.fill("Client ID", crate::sso::CLIENT_ID).await;
    b.fill("Client secret", crate::sso::CLIENT_SECRET).await;
    b.fill("Email domains", "acme.test").await;
    b.check("#jit_provisioning").await;
    b.press("Save").await;
    let text = b.text().await;
    assert!(
        text.contains("Saved.") && text.contains("Connected"),
        "{text}"
    );
    assert!(
        text.contains("/login/sso/callback"),
        "the redirect URI is shown"
    );
    b.screenshot("sso-settings").await;
    b.press("Sign out").await;

    b.open("/login").await;
    b.fill("Work email", "grace@acme.test").await;
    b.screenshot("login-sso").await;
    b.press("Sign in with SSO").await;
    provider_login(&b, "grace").await;
    assert_eq!(b.path().await, "/");
    assert!(b.text().await.contains("Grace Hopper"));
    b.screenshot("sso-home").await;
    b.press("Sign out").await;

    // The provider has not verified Mallory's address: refused, in words. (Grace's session
    // at the provider ends first, so that it asks who signs in.)
    b.client
        .goto(&format!("{}/.well-known/openid-configuration", idp.issuer))
        .await
        .unwrap();
    b.client.delete_all_cookies().await.unwrap();
    b.open("/login").await;
    b.fill("Work email", "mallory@acme.test").await;
    b.press("Sign in with SSO").await;
    provider_login(&b, "mallory").await;
    let text = b.text().await;
    assert!(
        text.contains("has not verified your email address"),
        "{text}"
    );
    b.screenshot("sso-refused").await;
}
