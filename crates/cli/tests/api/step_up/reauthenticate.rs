//! `POST /me/reauthenticate`: the password, and with 2FA a code, checked by the rules of
//! sign-in and of the second step; the old `{password}` bodies of disable and regenerate.

use super::{STALE, assert_stale};
use crate::helpers::{PASSWORD, ResponseExt, TestApp, assert_error};
use reqwest::StatusCode;
use serde_json::json;
use tessera_core::Clock;

backend_tests!(
    reauthenticating_asks_for_the_password_and_with_2fa_a_code,
    wrong_passwords_and_codes_count_towards_the_sign_in_locks,
    the_old_password_bodies_still_work_and_count_as_a_reauthentication,
    one_totp_code_reauthenticates_once_under_a_race,
);

async fn one_totp_code_reauthenticates_once_under_a_race(app: TestApp) {
    let Some((ada, factor)) = app.user_with_2fa("ada@example.com").await else {
        return;
    };
    let code = app.totp(&factor);
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (api, token) = (app.api(), ada.clone());
            let body = json!({"password": PASSWORD, "code": code});
            tokio::spawn(async move { api.reauthenticate(&token, body).await.status() })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let passed = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(passed, 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
}

async fn reauthenticating_asks_for_the_password_and_with_2fa_a_code(app: TestApp) {
    let Some((ada, factor)) = app.user_with_2fa("ada@example.com").await else {
        return;
    };
    app.clock.advance(STALE);
    let code = app.totp(&factor);
    let wrong_password = json!({"password": "not my password", "code": code});
    assert_error(
        app.reauthenticate(&ada, wrong_password).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    let no_code = app
        .reauthenticate(&ada, json!({"password": PASSWORD}))
        .await;
    let body = assert_error(
        no_code,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    )
    .await;
    assert_eq!(body["error"]["field"], "code");
    let wrong_code = json!({"password": PASSWORD, "code": "000000"});
    assert_error(
        app.reauthenticate(&ada, wrong_code).await,
        StatusCode::UNAUTHORIZED,
        "invalid_code",
    )
    .await;
    let bad_method = json!({"password": PASSWORD, "code": code, "method": "email_code"});
    let body = assert_error(
        app.reauthenticate(&ada, bad_method).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    )
    .await;
    assert_eq!(body["error"]["field"], "method");
    assert_stale(app.regenerate_stepped_up(&ada).await, "nothing passed yet").await;

    // A TOTP code: the window is open for 15 minutes from now.
    let now = app.clock.now();
    let right = json!({"password": PASSWORD, "code": code, "method": "totp"});
    let response = app.reauthenticate(&ada, right.clone()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.body().await;
    assert_eq!(body["method_used"], "totp");
    assert_eq!(
        body["reauthenticated_until"],
        now.plus_secs(15 * 60).to_rfc3339()
    );
    // The same code again is a replay.
    let replay = app.reauthenticate(&ada, right).await;
    assert_error(replay, StatusCode::UNAUTHORIZED, "invalid_code").await;
    // A recovery code works once.
    let recovery = &factor.recovery_codes[0];
    let with_recovery = json!({"password": PASSWORD, "code": recovery});
    let response = app.reauthenticate(&ada, with_recovery.clone()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.body().await;
    assert_eq!(body["method_used"], "recovery_code");
    assert_eq!(body["recovery_codes_remaining"], 9);
    let again = app.reauthenticate(&ada, with_recovery).await;
    assert_error(again, StatusCode::UNAUTHORIZED, "invalid_code").await;

    let events = app.events(&ada, "limit=100").await.body().await["events"].clone();
    let kinds: Vec<_> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["detail"].clone()))
        .collect();
    assert!(kinds.contains(&("reauthenticated", json!({"method": "totp"}))));
    assert!(kinds.contains(&("reauthenticated", json!({"method": "recovery_code"}))));
    assert!(kinds.contains(&(
        "reauthentication_failed",
        json!({"reason": "invalid_credentials"})
    )));
    assert!(kinds.contains(&(
        "reauthentication_failed",
        json!({"reason": "invalid_code", "method": "totp"})
    )));

    // Without 2FA the password is enough.
    let bob = app.signed_in("bob@example.com").await;
    app.clock.advance(STALE);
    let response = app
        .reauthenticate(&bob, json!({"password": PASSWORD}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.body().await["method_used"], "password");
    assert_eq!(app.setup_2fa(&bob).await.status(), StatusCode::OK);
    let unauthenticated = app.reauthenticate("no-such-token", json!({"password": PASSWORD}));
    assert_error(
        unauthenticated.await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
}

async fn wrong_passwords_and_codes_count_towards_the_sign_in_locks(app: TestApp) {
    let Some((ada, factor)) = app.user_with_2fa("ada@example.com").await else {
        return;
    };
    // Ten wrong codes (with the right password) lock the second step, also for sign-in.
    for _ in 0..10 {
        let wrong = json!({"password": PASSWORD, "code": "000000"});
        let response = app.reauthenticate(&ada, wrong).await;
        assert_error(response, StatusCode::UNAUTHORIZED, "invalid_code").await;
    }
    let right = json!({"password": PASSWORD, "code": app.totp(&factor)});
    let locked = app.reauthenticate(&ada, right).await;
    assert_error(locked, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    let challenge = app.two_factor_challenge("ada@example.com").await;
    let sign_in = app.verify(&challenge, &app.totp(&factor)).await;
    assert_eq!(sign_in.status(), StatusCode::TOO_MANY_REQUESTS, "one lock");
    assert!(app.emailed("second_step_locked").await);

    // Ten wrong passwords lock password sign-in of the email.
    let bob = app.signed_in("bob@example.com").await;
    for _ in 0..10 {
        let wrong = app
            .reauthenticate(&bob, json!({"password": "not my password"}))
            .await;
        assert_error(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    let locked = app
        .reauthenticate(&bob, json!({"password": PASSWORD}))
        .await;
    assert_error(locked, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    assert_eq!(app.login("bob@example.com", PASSWORD).await.status(), 429);
}

async fn the_old_password_bodies_still_work_and_count_as_a_reauthentication(app: TestApp) {
    let Some((ada, _)) = app.user_with_2fa("ada@example.com").await else {
        return;
    };
    app.clock.advance(STALE);
    assert_stale(app.regenerate_stepped_up(&ada).await, "no password").await;
    let wrong = app.regenerate_recovery_codes(&ada, "not my password").await;
    assert_error(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    // With the password, as before (the password alone, though Ada has 2FA).
    let codes = app.regenerate_recovery_codes(&ada, PASSWORD).await;
    assert_eq!(codes.status(), StatusCode::OK);
    assert_eq!(
        codes.body().await["recovery_codes"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
    // It counted as a re-authentication: the window is open.
    app.clock.advance(10 * 60);
    assert_eq!(
        app.regenerate_stepped_up(&ada).await.status(),
        StatusCode::OK
    );
    app.clock.advance(STALE);
    let wrong = app.disable_2fa(&ada, "not my password").await;
    assert_error(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let off = app.disable_2fa(&ada, PASSWORD).await;
    assert_eq!(off.status(), StatusCode::OK);
    assert_eq!(off.body().await, json!({"enabled": false}));
    assert_eq!(
        app.setup_2fa(&ada).await.status(),
        StatusCode::OK,
        "restarted"
    );
}
