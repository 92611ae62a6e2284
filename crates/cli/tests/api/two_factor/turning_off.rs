//! Turning 2FA off with the password or the paper key, and replacing the recovery codes.

use crate::helpers::{PASSWORD, ResponseExt, TestApp, assert_error, strings};
use crate::otp::oathtool;
use reqwest::StatusCode;
use serde_json::json;
use tessera_core::Clock;

backend_tests!(
    disabling_needs_the_password_and_voids_every_factor,
    regenerating_codes_voids_the_old_set,
    the_paper_key_turns_2fa_off_on_the_recovery_page,
);

async fn disabling_needs_the_password_and_voids_every_factor(app: TestApp) {
    let Some((token, factor)) = app.user_with_2fa("off@example.com").await else {
        return;
    };
    let response = app.disable_2fa(&token, "wrong password").await;
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let response = app.disable_2fa(&token, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.body().await, json!({ "enabled": false }));
    let me = app.me(&token).await.body().await;
    assert_eq!(me["two_factor"]["enabled"], false);
    assert_eq!(me["two_factor"]["recovery_codes_remaining"], 0);
    // Sign-in is password-only again; the paper key no longer does anything.
    let body = app.login("off@example.com", PASSWORD).await.body().await;
    assert_eq!(body["status"], "authenticated");
    let response = app.recover("off@example.com", &factor.paper_key).await;
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    // Turning it on again needs a new secret; the old secret and codes are gone for good.
    let setup = app.setup_2fa(&token).await.body().await;
    assert_ne!(setup["secret"], factor.secret.as_str());
    let new_secret = setup["secret"].as_str().unwrap();
    let code = oathtool(new_secret, app.clock.now()).unwrap();
    app.activate_2fa(&token, &code).await;
    app.clock.advance(30);
    let c = app.two_factor_challenge("off@example.com").await;
    let old_code = &factor.recovery_codes[0];
    assert_eq!(app.verify(&c, old_code).await.status(), 401);
    let old = app.totp(&factor);
    let new = oathtool(new_secret, app.clock.now()).unwrap();
    if old != new {
        assert_eq!(app.verify(&c, &old).await.status(), 401);
    }
    assert!(app.emailed("two_factor_disabled").await);
}

async fn regenerating_codes_voids_the_old_set(app: TestApp) {
    let Some((token, factor)) = app.user_with_2fa("regen@example.com").await else {
        return;
    };
    let old = &factor.recovery_codes;
    let response = app.regenerate_recovery_codes(&token, "nope nope").await;
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let response = app.regenerate_recovery_codes(&token, PASSWORD).await;
    let new = strings(&response.body().await["recovery_codes"]);
    assert_eq!(new.len(), 10);
    assert!(new.iter().all(|c| !old.contains(c)));
    let c = app.two_factor_challenge("regen@example.com").await;
    assert_eq!(app.verify(&c, &old[0]).await.status(), 401);
    assert_eq!(app.verify(&c, &new[0]).await.status(), 200);
    assert!(app.emailed("recovery_codes_regenerated").await);
    // Without 2FA there is nothing to regenerate.
    app.disable_2fa(&token, PASSWORD).await;
    let response = app.regenerate_recovery_codes(&token, PASSWORD).await;
    assert_error(response, StatusCode::CONFLICT, "not_enabled").await;
}

async fn the_paper_key_turns_2fa_off_on_the_recovery_page(app: TestApp) {
    let Some((_, factor)) = app.user_with_2fa("paper@example.com").await else {
        return;
    };
    let paper = &factor.paper_key;
    let wrong = app.recover("paper@example.com", &"a".repeat(64)).await;
    let unknown = app.recover("ghost@example.com", paper).await;
    let wrong = assert_error(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let unknown = assert_error(unknown, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    assert_eq!(wrong, unknown);
    let typed = tessera_core::factors::totp::group(&paper.to_uppercase(), 8, " ");
    let response = app.recover("PAPER@example.com", &typed).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.body().await,
        json!({ "two_factor_enabled": false })
    );
    let body = app.login("paper@example.com", PASSWORD).await.body().await;
    assert_eq!(body["status"], "authenticated");
    assert!(app.emailed("two_factor_disabled").await);
    // Rate-limited: five wrong keys lock the page for that email.
    for _ in 0..5 {
        let r = app.recover("paper@example.com", &"b".repeat(64)).await;
        assert_eq!(r.status(), 401);
    }
    let r = app.recover("paper@example.com", paper).await;
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
}
