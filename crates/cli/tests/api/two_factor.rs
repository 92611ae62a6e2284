//! TOTP two-factor authentication through the API: setup with QR and paper key, activation
//! and recovery codes, the second step of sign-in, its locks, replay and races, disabling,
//! regenerating, and the recovery page. Codes come from oathtool, never from Tessera.

use crate::helpers::{PASSWORD, TestApp, assert_error};
use crate::otp::{decode_qr_svg, oathtool};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera_core::Clock;

backend_tests!(
    setup_shows_the_key_as_qr_text_and_uri_with_a_paper_key,
    setup_stays_pending_until_a_right_code_and_restarting_replaces_it,
    activation_turns_2fa_on_with_ten_recovery_codes,
    sign_in_asks_for_a_totp_code_after_the_password,
    a_replayed_totp_code_is_refused,
    a_recovery_code_works_once,
    a_challenge_dies_after_five_wrong_codes_or_ten_minutes,
    ten_wrong_codes_lock_the_second_step_for_fifteen_minutes,
    disabling_needs_the_password_and_voids_every_factor,
    regenerating_codes_voids_the_old_set,
    the_paper_key_turns_2fa_off_on_the_recovery_page,
    malformed_codes_are_422_and_do_not_count,
    one_totp_code_signs_in_once_under_a_race,
    one_recovery_code_signs_in_once_under_a_race,
    the_database_holds_no_second_factor_in_plain_text,
    a_deployment_may_use_eight_digit_backup_codes,
);

/// A user with 2FA: (session token, base32 secret, recovery codes, paper key). The clock
/// is moved past the activation step so the next code is fresh.
pub async fn user_with_2fa(
    app: &TestApp,
    email: &str,
) -> Option<(String, String, Vec<String>, String)> {
    let token = app.signed_in(email).await;
    let (secret, codes, paper_key) = enable_2fa(app, &token).await?;
    Some((token, secret, codes, paper_key))
}

/// Turns 2FA on for the session's user: (base32 secret, recovery codes, paper key).
pub async fn enable_2fa(app: &TestApp, token: &str) -> Option<(String, Vec<String>, String)> {
    let response = app
        .post("/api/v1/me/2fa/setup", json!({}), Some(token))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let setup: Value = response.json().await.unwrap();
    let secret = setup["secret"].as_str().unwrap().to_owned();
    let code = oathtool(&secret, app.clock.now())?;
    let response = app
        .post(
            "/api/v1/me/2fa/activate",
            json!({ "code": code }),
            Some(token),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let codes = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    app.clock.advance(30);
    Some((
        secret,
        codes,
        setup["paper_key"].as_str().unwrap().to_owned(),
    ))
}

/// Signs in with the password: the challenge token.
async fn challenge(app: &TestApp, email: &str) -> String {
    let body: Value = app.login(email, PASSWORD).await.json().await.unwrap();
    assert_eq!(body["status"], "two_factor_required", "{body}");
    body["challenge_token"].as_str().unwrap().to_owned()
}

async fn verify(app: &TestApp, challenge: &str, code: &str) -> reqwest::Response {
    app.post(
        "/api/v1/login/verify",
        json!({ "challenge_token": challenge, "code": code }),
        None,
    )
    .await
}

async fn outbox_kinds(app: &TestApp) -> Vec<String> {
    app.store()
        .await
        .list_outbox(true, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

async fn setup_shows_the_key_as_qr_text_and_uri_with_a_paper_key(app: TestApp) {
    let token = app.signed_in("qr@example.com").await;
    let response = app
        .post("/api/v1/me/2fa/setup", json!({}), Some(&token))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let setup: Value = response.json().await.unwrap();
    let secret = setup["secret"].as_str().unwrap();
    assert_eq!(secret.len(), 32);
    assert!(
        secret
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
    );
    let grouped = setup["secret_formatted"].as_str().unwrap();
    assert_eq!(grouped.split(' ').map(str::len).collect::<Vec<_>>(), [4; 8]);
    assert_eq!(grouped.replace(' ', ""), secret);
    let uri = setup["otpauth_uri"].as_str().unwrap();
    assert_eq!(
        uri,
        format!(
            "otpauth://totp/Tessera:qr@example.com?secret={secret}&issuer=Tessera\
             &algorithm=SHA1&digits=6&period=30"
        )
    );
    assert_eq!(decode_qr_svg(setup["qr_svg"].as_str().unwrap()), uri);
    let paper = setup["paper_key"].as_str().unwrap();
    assert_eq!(paper.len(), 64);
    let expires = setup["expires_at"].as_str().unwrap();
    let me: Value = app
        .get("/api/v1/me", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["two_factor"]["pending_setup"], true);
    assert_eq!(me["two_factor"]["enabled"], false);
    assert!(expires.ends_with('Z'));
}

async fn setup_stays_pending_until_a_right_code_and_restarting_replaces_it(app: TestApp) {
    let token = app.signed_in("pending@example.com").await;
    let first: Value = app
        .post("/api/v1/me/2fa/setup", json!({}), Some(&token))
        .await
        .json()
        .await
        .unwrap();
    let response = app
        .post(
            "/api/v1/me/2fa/activate",
            json!({ "code": "000000" }),
            Some(&token),
        )
        .await;
    // (A 1-in-a-million chance that 000000 is right is accepted here.)
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_code").await;

    // Starting again replaces the pending secret: the first one no longer activates.
    let second: Value = app
        .post("/api/v1/me/2fa/setup", json!({}), Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(first["secret"], second["secret"]);
    let Some(old_code) = oathtool(first["secret"].as_str().unwrap(), app.clock.now()) else {
        return;
    };
    let new_code = oathtool(second["secret"].as_str().unwrap(), app.clock.now()).unwrap();
    if old_code != new_code {
        let response = app
            .post(
                "/api/v1/me/2fa/activate",
                json!({ "code": old_code }),
                Some(&token),
            )
            .await;
        assert_error(response, StatusCode::UNAUTHORIZED, "invalid_code").await;
    }

    // Abandoned: after 30 minutes the setup is gone and never activates.
    app.clock.advance(30 * 60);
    let late = oathtool(second["secret"].as_str().unwrap(), app.clock.now()).unwrap();
    let response = app
        .post(
            "/api/v1/me/2fa/activate",
            json!({ "code": late }),
            Some(&token),
        )
        .await;
    assert_error(response, StatusCode::CONFLICT, "no_pending_setup").await;
    let me: Value = app
        .get("/api/v1/me", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["two_factor"]["enabled"], false);
    assert_eq!(me["two_factor"]["pending_setup"], false);
    assert_eq!(
        app.login("pending@example.com", PASSWORD).await.status(),
        200
    );
}

async fn activation_turns_2fa_on_with_ten_recovery_codes(app: TestApp) {
    let Some((token, _, codes, _)) = user_with_2fa(&app, "on@example.com").await else {
        return;
    };
    assert_eq!(codes.len(), 10);
    for code in &codes {
        let (a, b) = code.split_once('-').expect("xxxxx-xxxxx");
        assert_eq!((a.len(), b.len()), (5, 5));
        assert!(
            code.chars()
                .all(|c| c == '-' || c.is_ascii_lowercase() || ('2'..='7').contains(&c))
        );
    }
    let me: Value = app
        .get("/api/v1/me", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["two_factor"]["enabled"], true);
    assert_eq!(me["two_factor"]["recovery_codes_remaining"], 10);
    assert_eq!(me["two_factor"]["pending_setup"], false);
    assert!(me["two_factor"]["enabled_at"].as_str().is_some());
    assert_eq!(me["user"]["two_factor_enabled"], true);
    let response = app
        .post("/api/v1/me/2fa/setup", json!({}), Some(&token))
        .await;
    assert_error(response, StatusCode::CONFLICT, "already_enabled").await;
    assert!(
        outbox_kinds(&app)
            .await
            .contains(&"two_factor_enabled".to_owned())
    );
    let events: Value = app
        .get("/api/v1/me/events?limit=1", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(events["events"][0]["kind"], "two_factor_enabled");
}

async fn sign_in_asks_for_a_totp_code_after_the_password(app: TestApp) {
    let Some((_, secret, _, _)) = user_with_2fa(&app, "totp@example.com").await else {
        return;
    };
    let body: Value = app
        .login("totp@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "two_factor_required");
    assert_eq!(body["methods"], json!(["totp", "recovery_code"]));
    assert!(
        body.get("session_token").is_none(),
        "no session before the code"
    );
    let challenge = body["challenge_token"].as_str().unwrap();
    // A code from the previous step is still accepted (window t-1).
    app.clock.advance(30);
    let code = oathtool(&secret, app.clock.now().plus_secs(-30)).unwrap();
    let response = verify(&app, challenge, &code).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "authenticated");
    assert_eq!(body["method_used"], "totp");
    assert_eq!(body["user"]["two_factor_enabled"], true);
    let token = body["session_token"].as_str().unwrap();
    assert_eq!(app.get("/api/v1/me", Some(token)).await.status(), 200);
    // The challenge is spent.
    let again = oathtool(&secret, app.clock.now().plus_secs(30)).unwrap();
    let response = verify(&app, challenge, &again).await;
    assert_error(response, StatusCode::UNAUTHORIZED, "challenge_expired").await;
}

async fn a_replayed_totp_code_is_refused(app: TestApp) {
    let Some((_, secret, _, _)) = user_with_2fa(&app, "replay@example.com").await else {
        return;
    };
    let code = oathtool(&secret, app.clock.now()).unwrap();
    let first = challenge(&app, "replay@example.com").await;
    assert_eq!(verify(&app, &first, &code).await.status(), 200);
    let second = challenge(&app, "replay@example.com").await;
    let body = assert_error(
        verify(&app, &second, &code).await,
        StatusCode::UNAUTHORIZED,
        "invalid_code",
    )
    .await;
    assert_eq!(body["error"]["attempts_remaining"], 4);
    // An older step than the last accepted one is a replay too.
    let older = oathtool(&secret, app.clock.now().plus_secs(-30)).unwrap();
    assert_eq!(verify(&app, &second, &older).await.status(), 401);
    // The next step works.
    app.clock.advance(30);
    let next = oathtool(&secret, app.clock.now()).unwrap();
    assert_eq!(verify(&app, &second, &next).await.status(), 200);
}

async fn a_recovery_code_works_once(app: TestApp) {
    let Some((_, _, codes, _)) = user_with_2fa(&app, "rc@example.com").await else {
        return;
    };
    let typed = format!(" {} ", codes[3].to_uppercase().replace('-', " "));
    let c = challenge(&app, "rc@example.com").await;
    let response = verify(&app, &c, &typed).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["method_used"], "recovery_code");
    assert_eq!(body["recovery_codes_remaining"], 9);
    let token = body["session_token"].as_str().unwrap();
    let me: Value = app
        .get("/api/v1/me", Some(token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["two_factor"]["recovery_codes_remaining"], 9);
    let c = challenge(&app, "rc@example.com").await;
    assert_error(
        verify(&app, &c, &codes[3]).await,
        StatusCode::UNAUTHORIZED,
        "invalid_code",
    )
    .await;
    assert_eq!(verify(&app, &c, &codes[4]).await.status(), 200);
    assert!(
        outbox_kinds(&app)
            .await
            .contains(&"recovery_code_used".to_owned())
    );
}

async fn a_challenge_dies_after_five_wrong_codes_or_ten_minutes(app: TestApp) {
    let Some((_, secret, _, _)) = user_with_2fa(&app, "dies@example.com").await else {
        return;
    };
    let c = challenge(&app, "dies@example.com").await;
    for remaining in (0..5).rev() {
        let body = assert_error(
            verify(&app, &c, "aaaaa-aaaaa").await,
            StatusCode::UNAUTHORIZED,
            "invalid_code",
        )
        .await;
        assert_eq!(body["error"]["attempts_remaining"], remaining);
    }
    let code = oathtool(&secret, app.clock.now()).unwrap();
    assert_error(
        verify(&app, &c, &code).await,
        StatusCode::UNAUTHORIZED,
        "challenge_expired",
    )
    .await;

    let c = challenge(&app, "dies@example.com").await;
    app.clock.advance(600);
    let code = oathtool(&secret, app.clock.now()).unwrap();
    assert_error(
        verify(&app, &c, &code).await,
        StatusCode::UNAUTHORIZED,
        "challenge_expired",
    )
    .await;
    // The password again, and the code works.
    let c = challenge(&app, "dies@example.com").await;
    assert_eq!(verify(&app, &c, &code).await.status(), 200);
}

async fn ten_wrong_codes_lock_the_second_step_for_fifteen_minutes(app: TestApp) {
    let Some((_, secret, codes, _)) = user_with_2fa(&app, "lock2@example.com").await else {
        return;
    };
    for _ in 0..2 {
        let c = challenge(&app, "lock2@example.com").await;
        for _ in 0..5 {
            assert_eq!(verify(&app, &c, "000000").await.status(), 401);
        }
    }
    let c = challenge(&app, "lock2@example.com").await;
    let code = oathtool(&secret, app.clock.now()).unwrap();
    let response = verify(&app, &c, &code).await;
    assert_eq!(response.headers()["retry-after"], "900");
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    assert_eq!(
        verify(&app, &c, &codes[0]).await.status(),
        429,
        "recovery codes too"
    );
    assert!(
        outbox_kinds(&app)
            .await
            .contains(&"second_step_locked".to_owned())
    );
    app.clock.advance(900);
    let c = challenge(&app, "lock2@example.com").await;
    let code = oathtool(&secret, app.clock.now()).unwrap();
    assert_eq!(verify(&app, &c, &code).await.status(), 200);
}

async fn disabling_needs_the_password_and_voids_every_factor(app: TestApp) {
    let Some((token, secret, codes, paper)) = user_with_2fa(&app, "off@example.com").await else {
        return;
    };
    let response = app
        .post(
            "/api/v1/me/2fa/disable",
            json!({ "password": "wrong password" }),
            Some(&token),
        )
        .await;
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let response = app
        .post(
            "/api/v1/me/2fa/disable",
            json!({ "password": PASSWORD }),
            Some(&token),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({ "enabled": false })
    );
    let me: Value = app
        .get("/api/v1/me", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["two_factor"]["enabled"], false);
    assert_eq!(me["two_factor"]["recovery_codes_remaining"], 0);
    // Sign-in is password-only again; the paper key no longer does anything.
    let body: Value = app
        .login("off@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "authenticated");
    let response = app
        .post(
            "/api/v1/recover",
            json!({ "email": "off@example.com", "paper_key": paper }),
            None,
        )
        .await;
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    // Turning it on again needs a new secret; the old secret and codes are gone for good.
    let setup: Value = app
        .post("/api/v1/me/2fa/setup", json!({}), Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(setup["secret"], secret.as_str());
    let code = oathtool(setup["secret"].as_str().unwrap(), app.clock.now()).unwrap();
    app.post(
        "/api/v1/me/2fa/activate",
        json!({ "code": code }),
        Some(&token),
    )
    .await;
    app.clock.advance(30);
    let c = challenge(&app, "off@example.com").await;
    assert_eq!(verify(&app, &c, &codes[0]).await.status(), 401);
    let old = oathtool(&secret, app.clock.now()).unwrap();
    let new = oathtool(setup["secret"].as_str().unwrap(), app.clock.now()).unwrap();
    if old != new {
        assert_eq!(verify(&app, &c, &old).await.status(), 401);
    }
    assert!(
        outbox_kinds(&app)
            .await
            .contains(&"two_factor_disabled".to_owned())
    );
}

async fn regenerating_codes_voids_the_old_set(app: TestApp) {
    let Some((token, _, old, _)) = user_with_2fa(&app, "regen@example.com").await else {
        return;
    };
    let response = app
        .post(
            "/api/v1/me/2fa/recovery-codes",
            json!({ "password": "nope nope" }),
            Some(&token),
        )
        .await;
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let body: Value = app
        .post(
            "/api/v1/me/2fa/recovery-codes",
            json!({ "password": PASSWORD }),
            Some(&token),
        )
        .await
        .json()
        .await
        .unwrap();
    let new: Vec<String> = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(new.len(), 10);
    assert!(new.iter().all(|c| !old.contains(c)));
    let c = challenge(&app, "regen@example.com").await;
    assert_eq!(verify(&app, &c, &old[0]).await.status(), 401);
    assert_eq!(verify(&app, &c, &new[0]).await.status(), 200);
    assert!(
        outbox_kinds(&app)
            .await
            .contains(&"recovery_codes_regenerated".to_owned())
    );
    // Without 2FA there is nothing to regenerate.
    app.post(
        "/api/v1/me/2fa/disable",
        json!({ "password": PASSWORD }),
        Some(&token),
    )
    .await;
    let response = app
        .post(
            "/api/v1/me/2fa/recovery-codes",
            json!({ "password": PASSWORD }),
            Some(&token),
        )
        .await;
    assert_error(response, StatusCode::CONFLICT, "not_enabled").await;
}

async fn the_paper_key_turns_2fa_off_on_the_recovery_page(app: TestApp) {
    let Some((_, _, _, paper)) = user_with_2fa(&app, "paper@example.com").await else {
        return;
    };
    let wrong = app
        .post(
            "/api/v1/recover",
            json!({ "email": "paper@example.com", "paper_key": "a".repeat(64) }),
            None,
        )
        .await;
    let unknown = app
        .post(
            "/api/v1/recover",
            json!({ "email": "ghost@example.com", "paper_key": paper }),
            None,
        )
        .await;
    let wrong = assert_error(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let unknown = assert_error(unknown, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    assert_eq!(wrong, unknown);
    let typed = tessera_core::totp::group(&paper.to_uppercase(), 8, " ");
    let response = app
        .post(
            "/api/v1/recover",
            json!({ "email": "PAPER@example.com", "paper_key": typed }),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({ "two_factor_enabled": false })
    );
    let body: Value = app
        .login("paper@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "authenticated");
    assert!(
        outbox_kinds(&app)
            .await
            .contains(&"two_factor_disabled".to_owned())
    );
    // Rate-limited: five wrong keys lock the page for that email.
    for _ in 0..5 {
        let r = app
            .post(
                "/api/v1/recover",
                json!({ "email": "paper@example.com", "paper_key": "b".repeat(64) }),
                None,
            )
            .await;
        assert_eq!(r.status(), 401);
    }
    let r = app
        .post(
            "/api/v1/recover",
            json!({ "email": "paper@example.com", "paper_key": paper }),
            None,
        )
        .await;
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
}

async fn malformed_codes_are_422_and_do_not_count(app: TestApp) {
    let Some((_, secret, _, _)) = user_with_2fa(&app, "bad@example.com").await else {
        return;
    };
    let c = challenge(&app, "bad@example.com").await;
    for bad in [
        "",
        "12345",
        "1234567",
        "12345a",
        "١٢٣٤٥٦",
        "abcde-fgh1",
        "💥",
        "0x1234",
    ] {
        let body = assert_error(
            verify(&app, &c, bad).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
        )
        .await;
        assert_eq!(body["error"]["field"], "code", "{bad:?}");
    }
    let response = app
        .post(
            "/api/v1/login/verify",
            json!({ "challenge_token": c, "code": 123456 }),
            None,
        )
        .await;
    assert_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    )
    .await;
    let response = verify(&app, "no-such-challenge", "123456").await;
    assert_error(response, StatusCode::UNAUTHORIZED, "challenge_expired").await;
    // None of that counted: spaces and dashes are fine, and the challenge is whole.
    let code = oathtool(&secret, app.clock.now()).unwrap();
    let typed = format!("{} {}", &code[..3], &code[3..]);
    assert_eq!(verify(&app, &c, &typed).await.status(), 200);
}

async fn one_totp_code_signs_in_once_under_a_race(app: TestApp) {
    let Some((_, secret, _, _)) = user_with_2fa(&app, "race2@example.com").await else {
        return;
    };
    let mut challenges = Vec::new();
    for _ in 0..50 {
        challenges.push(challenge(&app, "race2@example.com").await);
    }
    let code = oathtool(&secret, app.clock.now()).unwrap();
    let successes = race(&app, challenges, code).await;
    assert_eq!(successes, 1, "one code, one sign-in");
}

async fn one_recovery_code_signs_in_once_under_a_race(app: TestApp) {
    let Some((_, _, codes, _)) = user_with_2fa(&app, "race3@example.com").await else {
        return;
    };
    let mut challenges = Vec::new();
    for _ in 0..50 {
        challenges.push(challenge(&app, "race3@example.com").await);
    }
    let successes = race(&app, challenges, codes[0].clone()).await;
    assert_eq!(successes, 1, "one recovery code, one sign-in");
}

/// Sends `code` to every challenge at once; counts the sign-ins.
async fn race(app: &TestApp, challenges: Vec<String>, code: String) -> usize {
    let tasks: Vec<_> = challenges
        .into_iter()
        .map(|c| {
            let client = app.client.clone();
            let url = app.url("/api/v1/login/verify");
            let code = code.clone();
            tokio::spawn(async move {
                client
                    .post(url)
                    .json(&json!({ "challenge_token": c, "code": code }))
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    let mut successes = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::OK => successes += 1,
            // Refused as spent, or turned away by the per-user lock, which counts the
            // attempts in flight.
            StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other}"),
        }
    }
    successes
}

async fn the_database_holds_no_second_factor_in_plain_text(app: TestApp) {
    let Some((_, secret, codes, paper)) = user_with_2fa(&app, "vault@example.com").await else {
        return;
    };
    let stored = crate::storage::everything_stored(&app).await;
    assert!(stored.contains("vault@example.com"), "the dump is real");
    let raw = data_encoding_decode(&secret);
    assert!(!stored.contains(&secret), "base32 secret");
    assert!(!stored.contains(&hex(&raw)), "hex secret");
    assert!(
        !stored
            .as_bytes()
            .windows(raw.len())
            .any(|w| w == raw.as_slice()),
        "raw secret"
    );
    assert!(!stored.contains(&paper), "paper key");
    for code in &codes {
        assert!(
            !stored.contains(code) && !stored.contains(&code.replace('-', "")),
            "recovery code"
        );
    }
}

fn data_encoding_decode(b32: &str) -> Vec<u8> {
    let mut bits = 0u64;
    let mut n = 0;
    let mut out = Vec::new();
    for c in b32.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("not base32"),
        };
        bits = (bits << 5) | u64::from(v);
        n += 5;
        if n >= 8 {
            out.push((bits >> (n - 8)) as u8);
            n -= 8;
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn a_deployment_may_use_eight_digit_backup_codes(mut app: TestApp) {
    app.reconfigure(|c| c.security.recovery_code_format = tessera_core::codes::CodeFormat::Digits)
        .await;
    let Some((_, _, codes, _)) = user_with_2fa(&app, "digits@example.com").await else {
        return;
    };
    assert_eq!(codes.len(), 10);
    assert!(
        codes
            .iter()
            .all(|c| c.len() == 8 && c.bytes().all(|b| b.is_ascii_digit()))
    );
    let c = challenge(&app, "digits@example.com").await;
    let typed = format!("{} {}", &codes[0][..4], &codes[0][4..]);
    let response = verify(&app, &c, &typed).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["method_used"], "recovery_code");
    let c = challenge(&app, "digits@example.com").await;
    assert_eq!(verify(&app, &c, &codes[0]).await.status(), 401, "used once");
}
