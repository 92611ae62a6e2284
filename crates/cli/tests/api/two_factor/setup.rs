//! Turning 2FA on: setup with QR and paper key, activation and recovery codes, what the
//! database keeps of them.

use crate::helpers::{PASSWORD, ResponseExt, TestApp, assert_error};
use crate::otp::{decode_qr_svg, oathtool};
use reqwest::StatusCode;
use tessera_core::Clock;

backend_tests!(
    setup_shows_the_key_as_qr_text_and_uri_with_a_paper_key,
    setup_stays_pending_until_a_right_code_and_restarting_replaces_it,
    activation_turns_2fa_on_with_ten_recovery_codes,
    the_database_holds_no_second_factor_in_plain_text,
    a_deployment_may_use_eight_digit_backup_codes,
);

async fn setup_shows_the_key_as_qr_text_and_uri_with_a_paper_key(app: TestApp) {
    let token = app.signed_in("qr@example.com").await;
    let response = app.setup_2fa(&token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let setup = response.body().await;
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
    let me = app.me(&token).await.body().await;
    assert_eq!(me["two_factor"]["pending_setup"], true);
    assert_eq!(me["two_factor"]["enabled"], false);
    assert!(expires.ends_with('Z'));
}

async fn setup_stays_pending_until_a_right_code_and_restarting_replaces_it(app: TestApp) {
    let token = app.signed_in("pending@example.com").await;
    let first = app.setup_2fa(&token).await.body().await;
    let response = app.activate_2fa(&token, "000000").await;
    // (A 1-in-a-million chance that 000000 is right is accepted here.)
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_code").await;

    // Starting again replaces the pending secret: the first one no longer activates.
    let second = app.setup_2fa(&token).await.body().await;
    assert_ne!(first["secret"], second["secret"]);
    let Some(old_code) = oathtool(first["secret"].as_str().unwrap(), app.clock.now()) else {
        return;
    };
    let second = second["secret"].as_str().unwrap();
    let new_code = oathtool(second, app.clock.now()).unwrap();
    if old_code != new_code {
        let response = app.activate_2fa(&token, &old_code).await;
        assert_error(response, StatusCode::UNAUTHORIZED, "invalid_code").await;
    }

    // Abandoned: after 30 minutes the setup is gone and never activates (the session, in
    // use meanwhile, outlives its 30-minute idle timeout).
    app.clock.advance(20 * 60);
    assert_eq!(app.me(&token).await.status(), 200);
    app.clock.advance(10 * 60);
    let late = oathtool(second, app.clock.now()).unwrap();
    let response = app.activate_2fa(&token, &late).await;
    assert_error(response, StatusCode::CONFLICT, "no_pending_setup").await;
    let me = app.me(&token).await.body().await;
    assert_eq!(me["two_factor"]["enabled"], false);
    assert_eq!(me["two_factor"]["pending_setup"], false);
    assert_eq!(
        app.login("pending@example.com", PASSWORD).await.status(),
        200
    );
}

async fn activation_turns_2fa_on_with_ten_recovery_codes(app: TestApp) {
    let Some((token, factor)) = app.user_with_2fa("on@example.com").await else {
        return;
    };
    let codes = &factor.recovery_codes;
    assert_eq!(codes.len(), 10);
    for code in codes {
        let (a, b) = code.split_once('-').expect("xxxxx-xxxxx");
        assert_eq!((a.len(), b.len()), (5, 5));
        assert!(
            code.chars()
                .all(|c| c == '-' || c.is_ascii_lowercase() || ('2'..='7').contains(&c))
        );
    }
    let me = app.me(&token).await.body().await;
    assert_eq!(me["two_factor"]["enabled"], true);
    assert_eq!(me["two_factor"]["recovery_codes_remaining"], 10);
    assert_eq!(me["two_factor"]["pending_setup"], false);
    assert!(me["two_factor"]["enabled_at"].as_str().is_some());
    assert_eq!(me["user"]["two_factor_enabled"], true);
    let response = app.setup_2fa(&token).await;
    assert_error(response, StatusCode::CONFLICT, "already_enabled").await;
    assert!(app.emailed("two_factor_enabled").await);
    let events = app.events(&token, "limit=1").await.body().await;
    assert_eq!(events["events"][0]["kind"], "two_factor_enabled");
}

async fn the_database_holds_no_second_factor_in_plain_text(app: TestApp) {
    let Some((_, factor)) = app.user_with_2fa("vault@example.com").await else {
        return;
    };
    let stored = crate::storage::everything_stored(&app).await;
    assert!(stored.contains("vault@example.com"), "the dump is real");
    let secret = &factor.secret;
    let raw = base32_decode(secret);
    assert!(!stored.contains(secret.as_str()), "base32 secret");
    assert!(!stored.contains(&hex(&raw)), "hex secret");
    assert!(
        !stored
            .as_bytes()
            .windows(raw.len())
            .any(|w| w == raw.as_slice()),
        "raw secret"
    );
    assert!(!stored.contains(&factor.paper_key), "paper key");
    for code in &factor.recovery_codes {
        assert!(
            !stored.contains(code) && !stored.contains(&code.replace('-', "")),
            "recovery code"
        );
    }
}

fn base32_decode(b32: &str) -> Vec<u8> {
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
    let Some((_, factor)) = app.user_with_2fa("digits@example.com").await else {
        return;
    };
    let codes = &factor.recovery_codes;
    assert_eq!(codes.len(), 10);
    assert!(
        codes
            .iter()
            .all(|c| c.len() == 8 && c.bytes().all(|b| b.is_ascii_digit()))
    );
    let c = app.two_factor_challenge("digits@example.com").await;
    let typed = format!("{} {}", &codes[0][..4], &codes[0][4..]);
    let response = app.verify(&c, &typed).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.body().await["method_used"], "recovery_code");
    let c = app.two_factor_challenge("digits@example.com").await;
    assert_eq!(app.verify(&c, &codes[0]).await.status(), 401, "used once");
}
