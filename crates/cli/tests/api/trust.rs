//! Trusted devices for 2FA (SPEC §9): "Don't ask again on this device for 30 days", and
//! every way it ends, through the API.

use crate::helpers::{PASSWORD, ResponseExt, SecondFactor, TestApp, assert_error};
use reqwest::StatusCode;
use serde_json::{Value, json};

backend_tests!(
    a_trusted_device_skips_the_second_step,
    no_trust_without_remember_device_or_without_2fa,
    a_new_password_ends_the_trust,
    turning_2fa_off_or_an_admin_reset_ends_the_trust,
    removing_or_stopping_the_device_ends_the_trust,
    the_accounts_policy_is_checked_at_every_use,
    another_browser_or_30_days_end_the_trust,
);

const LAPTOP: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0";
const PHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 \
                     (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";
const NEW_PASSWORD: &str = "an entirely different passphrase 7";

/// Signs in with `password` from a browser `user_agent` holding `device`: the answer (200).
async fn password_from(
    app: &TestApp,
    email: &str,
    password: &str,
    user_agent: &str,
    device: Option<&str>,
) -> Value {
    let body = json!({"email": email, "password": password, "device_token": device});
    let response = app.login_with(&body, &[("user-agent", user_agent)]).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.body().await
}

/// Answers a challenge from `user_agent` with a fresh code (the clock moves a step first, so
/// no code is used twice), ticking "Don't ask again" or not: the answer (200).
async fn second_step(
    app: &TestApp,
    factor: &SecondFactor,
    challenge: &Value,
    user_agent: &str,
    remember: bool,
) -> Value {
    assert_eq!(challenge["status"], "two_factor_required", "{challenge}");
    app.clock.advance(30);
    let body = json!({
        "challenge_token": challenge["challenge_token"],
        "code": app.totp(factor),
        "remember_device": remember,
    });
    let response = app.verify_with(&body, &[("user-agent", user_agent)]).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.body().await
}

/// Signs in from the laptop with the second step and "Don't ask again": (session token,
/// device token: the one it had, or the one it was given).
async fn trust_laptop(
    app: &TestApp,
    email: &str,
    factor: &SecondFactor,
    password: &str,
    device: Option<&str>,
) -> (String, String) {
    let challenge = password_from(app, email, password, LAPTOP, device).await;
    let done = second_step(app, factor, &challenge, LAPTOP, true).await;
    assert_eq!(done["status"], "authenticated", "{done}");
    assert!(done["trusted_until"].as_str().is_some(), "{done}");
    let device = done["device_token"]
        .as_str()
        .or(device)
        .expect("a device token")
        .to_owned();
    (done["session_token"].as_str().unwrap().to_owned(), device)
}

/// Whether a sign-in with the password from `user_agent` holding `device` skips the second
/// step (and says so); otherwise it must ask for it.
async fn skips(app: &TestApp, email: &str, password: &str, user_agent: &str, device: &str) -> bool {
    let body = password_from(app, email, password, user_agent, Some(device)).await;
    match body["status"].as_str() {
        Some("authenticated") => {
            assert_eq!(body["method_used"], "trusted_device", "{body}");
            true
        }
        Some("two_factor_required") => false,
        _ => panic!("unexpected answer {body}"),
    }
}

/// The session's devices.
async fn devices(app: &TestApp, token: &str) -> Vec<Value> {
    let response = app.devices(token).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.body().await.as_array().unwrap().clone()
}

/// The kinds of the session user's events, newest first.
async fn event_kinds(app: &TestApp, token: &str) -> Vec<String> {
    let body = app.events(token, "limit=100").await.body().await;
    body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

async fn a_trusted_device_skips_the_second_step(app: TestApp) {
    let email = "ada@example.com";
    let Some((_, factor)) = app.user_with_2fa(email).await else {
        return;
    };
    let (_, laptop) = trust_laptop(&app, email, &factor, PASSWORD, None).await;
    assert!(skips(&app, email, PASSWORD, LAPTOP, &laptop).await);
    assert!(skips(&app, email, PASSWORD, LAPTOP, &laptop).await);

    // The sign-in says how it was made; the trust was recorded when granted.
    let body = password_from(&app, email, PASSWORD, LAPTOP, Some(&laptop)).await;
    let token = body["session_token"].as_str().unwrap();
    let events = app.events(token, "limit=100").await.body().await;
    let last = &events["events"][0];
    assert_eq!(last["kind"], "sign_in");
    assert_eq!(last["detail"]["method"], "trusted_device");
    assert!(last["detail"]["device_id"].as_str().is_some());
    assert!(
        event_kinds(&app, token)
            .await
            .contains(&"device_trusted".to_owned())
    );

    // The device list says which device skips 2FA and until when.
    let listed = devices(&app, token).await;
    let trusted: Vec<_> = listed
        .iter()
        .filter(|d| d["trusted_until"].as_str().is_some())
        .collect();
    assert_eq!(trusted.len(), 1, "{listed:?}");
    assert_eq!(trusted[0]["user_agent"], LAPTOP);

    // A device known before (the browser Ada signed up in) is trusted as it is: no new token.
    let challenge = app.login(email, PASSWORD).await.body().await;
    app.clock.advance(30);
    let body = json!({"challenge_token": challenge["challenge_token"],
                      "code": app.totp(&factor), "remember_device": true});
    let done = app.verify_with(&body, &[]).await.body().await;
    assert_eq!(done["status"], "authenticated", "{done}");
    assert_eq!(done["device_token"], Value::Null, "{done}");
    assert!(done["trusted_until"].as_str().is_some(), "{done}");
    let again = app.login(email, PASSWORD).await.body().await;
    assert_eq!(again["method_used"], "trusted_device", "{again}");
}

async fn no_trust_without_remember_device_or_without_2fa(app: TestApp) {
    let email = "ada@example.com";
    let Some((_, factor)) = app.user_with_2fa(email).await else {
        return;
    };
    // Unticked: the phone becomes known (a token), not trusted.
    let challenge = password_from(&app, email, PASSWORD, PHONE, None).await;
    let done = second_step(&app, &factor, &challenge, PHONE, false).await;
    assert_eq!(done["trusted_until"], Value::Null, "{done}");
    let phone = done["device_token"].as_str().unwrap();
    assert!(!skips(&app, email, PASSWORD, PHONE, phone).await);
    let token = done["session_token"].as_str().unwrap();
    assert!(
        devices(&app, token)
            .await
            .iter()
            .all(|d| d["trusted_until"].is_null())
    );

    // Without 2FA there is nothing to skip: an emailed code with the box ticked trusts nothing,
    // and once 2FA is on, the device asks for the code.
    let grace = "grace@example.com";
    app.signed_up(grace).await;
    let challenge = password_from(&app, grace, PASSWORD, LAPTOP, None).await;
    assert_eq!(challenge["status"], "device_verification_required");
    let code = app.device_code(grace, 1).await;
    let body = json!({"challenge_token": challenge["challenge_token"], "code": code,
                      "remember_device": true});
    let done = app
        .verify_with(&body, &[("user-agent", LAPTOP)])
        .await
        .body()
        .await;
    assert_eq!(done["method_used"], "email_code", "{done}");
    assert_eq!(done["trusted_until"], Value::Null, "{done}");
    let device = done["device_token"].as_str().unwrap().to_owned();
    let session = done["session_token"].as_str().unwrap();
    app.enable_2fa(session).await.unwrap();
    assert!(!skips(&app, grace, PASSWORD, LAPTOP, &device).await);
}

async fn a_new_password_ends_the_trust(app: TestApp) {
    let email = "ada@example.com";
    let Some((_, factor)) = app.user_with_2fa(email).await else {
        return;
    };
    let (token, laptop) = trust_laptop(&app, email, &factor, PASSWORD, None).await;
    let changed = app.change_password(&token, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);
    assert!(!skips(&app, email, NEW_PASSWORD, LAPTOP, &laptop).await);

    // Trusted again, then the password is reset with an emailed link: asked again.
    trust_laptop(&app, email, &factor, NEW_PASSWORD, Some(&laptop)).await;
    assert!(skips(&app, email, NEW_PASSWORD, LAPTOP, &laptop).await);
    assert_eq!(app.forgot_password(email).await.status(), 202);
    let link = app.reset_token(email, 1).await;
    let reset = app.reset_password(&link, PASSWORD).await;
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    assert!(!skips(&app, email, PASSWORD, LAPTOP, &laptop).await);
}

async fn turning_2fa_off_or_an_admin_reset_ends_the_trust(app: TestApp) {
    let email = "ada@example.com";
    let Some((_, factor)) = app.user_with_2fa(email).await else {
        return;
    };
    let (token, laptop) = trust_laptop(&app, email, &factor, PASSWORD, None).await;
    assert_eq!(app.disable_2fa(&token, PASSWORD).await.status(), 200);
    // Without 2FA the laptop is a recognized device: in with the password alone.
    let body = password_from(&app, email, PASSWORD, LAPTOP, Some(&laptop)).await;
    assert_eq!(body["status"], "authenticated");
    app.enable_2fa(body["session_token"].as_str().unwrap())
        .await
        .unwrap();
    assert!(!skips(&app, email, PASSWORD, LAPTOP, &laptop).await);

    // A member's trusted laptop in a team that requires 2FA, then the owner resets the
    // member's 2FA: the laptop skips nothing, not even the setup the team requires.
    let team = app.team().await;
    let required = app
        .set_2fa_policy(&team.owner, json!({"required": true}))
        .await;
    assert_eq!(required.status(), StatusCode::OK);
    let member = "member@example.com";
    let member_factor = app.enable_2fa(&team.member).await.unwrap();
    let (_, member_laptop) = trust_laptop(&app, member, &member_factor, PASSWORD, None).await;
    assert!(skips(&app, member, PASSWORD, LAPTOP, &member_laptop).await);
    let reset = app.reset_2fa(&team.owner, &team.member_id).await;
    assert_eq!(reset.status(), StatusCode::OK);
    let body = password_from(&app, member, PASSWORD, LAPTOP, Some(&member_laptop)).await;
    assert_eq!(body["status"], "two_factor_setup_required", "{body}");
    app.enable_2fa(body["session_token"].as_str().unwrap())
        .await
        .unwrap();
    assert!(!skips(&app, member, PASSWORD, LAPTOP, &member_laptop).await);
}

async fn removing_or_stopping_the_device_ends_the_trust(app: TestApp) {
    let email = "ada@example.com";
    let Some((_, factor)) = app.user_with_2fa(email).await else {
        return;
    };
    let (token, laptop) = trust_laptop(&app, email, &factor, PASSWORD, None).await;
    let trusted = |list: &[Value]| {
        list.iter()
            .find(|d| d["trusted_until"].as_str().is_some())
            .map(|d| d["id"].as_str().unwrap().to_owned())
    };
    let id = trusted(&devices(&app, &token).await).unwrap();
    assert_eq!(app.forget_device(&token, &id).await.status(), 204);
    assert!(!skips(&app, email, PASSWORD, LAPTOP, &laptop).await);

    // Trusted again (a new device now), then only its trust is stopped.
    let (token, laptop) = trust_laptop(&app, email, &factor, PASSWORD, None).await;
    let id = trusted(&devices(&app, &token).await).unwrap();
    let path = format!("/api/v1/me/devices/{id}/trust");
    let stopped = app.delete(&path, Some(&token)).await;
    assert_eq!(stopped.status(), StatusCode::NO_CONTENT);
    assert_eq!(trusted(&devices(&app, &token).await), None);
    assert!(!skips(&app, email, PASSWORD, LAPTOP, &laptop).await);
    assert!(
        event_kinds(&app, &token)
            .await
            .contains(&"device_trust_ended".to_owned())
    );
    let unknown = "/api/v1/me/devices/0190c0de-0000-7000-8000-000000000000/trust";
    assert_error(
        app.delete(unknown, Some(&token)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

async fn the_accounts_policy_is_checked_at_every_use(app: TestApp) {
    let team = app.team().await;
    let owner = "owner@example.com";
    let factor = &team.owner_2fa;
    let (_, laptop) = trust_laptop(&app, owner, factor, PASSWORD, None).await;
    assert!(skips(&app, owner, PASSWORD, LAPTOP, &laptop).await);

    let path = "/api/v1/account/trusted-devices-policy";
    let forbid = json!({"trusted_devices": "forbidden"});
    assert_error(
        app.put(path, forbid.clone(), Some(&team.member)).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let bad = app
        .put(
            path,
            json!({"trusted_devices": "sometimes"}),
            Some(&team.owner),
        )
        .await;
    assert_error(bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
    assert_eq!(
        app.account(&team.owner).await.body().await["trusted_devices"],
        "allowed"
    );

    let response = app.put(path, forbid, Some(&team.admin)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.body().await,
        json!({"trusted_devices": "forbidden"})
    );
    assert_eq!(
        app.account(&team.owner).await.body().await["trusted_devices"],
        "forbidden"
    );
    // Forbidden: the trusted laptop asks again, and ticking the box grants nothing.
    assert!(!skips(&app, owner, PASSWORD, LAPTOP, &laptop).await);
    let challenge = password_from(&app, owner, PASSWORD, LAPTOP, Some(&laptop)).await;
    let done = second_step(&app, factor, &challenge, LAPTOP, true).await;
    assert_eq!(done["trusted_until"], Value::Null, "{done}");
    assert!(!skips(&app, owner, PASSWORD, LAPTOP, &laptop).await);

    // Allowed again: the trust that was ended stays ended, until granted anew.
    let allow = json!({"trusted_devices": "allowed"});
    assert_eq!(app.put(path, allow, Some(&team.owner)).await.status(), 200);
    assert!(!skips(&app, owner, PASSWORD, LAPTOP, &laptop).await);
    trust_laptop(&app, owner, factor, PASSWORD, Some(&laptop)).await;
    assert!(skips(&app, owner, PASSWORD, LAPTOP, &laptop).await);

    let events = app.account_events(&team.owner, "").await.body().await;
    let changes: Vec<_> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "trusted_devices_policy_changed")
        .map(|e| e["detail"]["trusted_devices"].clone())
        .collect();
    assert_eq!(changes, [json!("allowed"), json!("forbidden")]);

    // A 2FA policy, so a recovery power (SPEC §9): refused outside the step-up window.
    app.clock.advance(16 * 60);
    let forbid = json!({"trusted_devices": "forbidden"});
    assert_error(
        app.put(path, forbid, Some(&team.admin)).await,
        StatusCode::FORBIDDEN,
        "reauthentication_required",
    )
    .await;
}

async fn another_browser_or_30_days_end_the_trust(app: TestApp) {
    let email = "ada@example.com";
    let Some((_, factor)) = app.user_with_2fa(email).await else {
        return;
    };
    let (_, laptop) = trust_laptop(&app, email, &factor, PASSWORD, None).await;
    // The token copied into another browser is not the trusted device.
    assert!(!skips(&app, email, PASSWORD, PHONE, &laptop).await);
    app.clock.advance(29 * 24 * 3600);
    assert!(skips(&app, email, PASSWORD, LAPTOP, &laptop).await);
    app.clock.advance(24 * 3600);
    assert!(!skips(&app, email, PASSWORD, LAPTOP, &laptop).await);
}
