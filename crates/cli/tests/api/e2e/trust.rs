//! "Don't ask again on this device" (SPEC §9): the checkbox on the second step, the next
//! sign-in without a code, the device page saying until when, and stopping it there.

use super::{browser_tests, set_up_2fa, sign_in, sign_up};
use crate::browser::Browser;
use crate::helpers::TestApp;
use crate::otp::oathtool;
use tessera_core::Clock;

browser_tests!(a_trusted_browser_skips_the_code_until_the_user_stops_it);

async fn a_trusted_browser_skips_the_code_until_the_user_stops_it(app: TestApp, b: Browser) {
    sign_up(&app, &b, "ada@example.com").await;
    let Some(factor) = set_up_2fa(&app, &b, false).await else {
        return;
    };
    b.open("/").await;
    b.press("Sign out").await;

    sign_in(&app, &b, "ada@example.com", false).await;
    assert_eq!(b.path().await, "/login/2fa");
    let text = b.text().await;
    assert!(
        text.contains("Don't ask again on this device for 30 days"),
        "{text}"
    );
    b.fill(
        "Authentication code",
        &oathtool(&factor.secret, app.clock.now()).unwrap(),
    )
    .await;
    // A checkbox loads no page: clicked as an element.
    b.find("#remember_device").await.click().await.unwrap();
    b.screenshot("login-2fa-remember-device").await;
    b.press("Verify").await;
    assert_eq!(b.path().await, "/");

    // The next sign-in from this browser asks for no code.
    b.press("Sign out").await;
    sign_in(&app, &b, "ada@example.com", false).await;
    assert_eq!(b.path().await, "/");
    b.screenshot("login-trusted-device").await;

    // The device page says until when, and stops it.
    b.open("/settings/devices").await;
    let text = b.text().await;
    assert!(
        text.contains("Skips 2FA") && text.contains("Until"),
        "{text}"
    );
    b.screenshot("devices-trusted").await;
    b.click("button[aria-label^='Ask for the second step again']")
        .await;
    assert!(b.text().await.contains("asks for the second step again"));
    b.press("Sign out").await;
    sign_in(&app, &b, "ada@example.com", false).await;
    assert_eq!(b.path().await, "/login/2fa");
    b.close().await;
}
