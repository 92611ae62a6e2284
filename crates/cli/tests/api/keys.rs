//! The master-key guard and rotation (SPEC §14, review D4): an instance with another key
//! refuses to start, a rotation re-encrypts every secret, a key ring lets instances roll
//! over, and a secret no key opens is reported and left alone, never settled.

use crate::helpers::{ResponseExt, SecondFactor, TestApp, assert_error, process};
use reqwest::StatusCode;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tessera_core::Clock;
use tessera_core::crypto::MasterKey;
use tessera_core::mail::{Mailer, Message, OutgoingEmail};
use tessera_core::model::OutboxStatus;
use tessera_core::store::Effects;
use tessera_server::config::MasterKeySource;

backend_tests!(
    an_instance_with_another_master_key_refuses_to_start,
    rotation_re_encrypts_every_secret_while_instances_roll_over,
    a_secret_no_key_opens_is_reported_and_left_alone,
);

fn key(path: &Path) -> MasterKey {
    MasterKey::from_hex(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn file(path: &Path) -> MasterKeySource {
    MasterKeySource::File {
        path: path.to_owned(),
        generate: false,
    }
}

fn default_key_file(app: &TestApp) -> PathBuf {
    app.db.data_dir().join("master.key")
}

async fn an_instance_with_another_master_key_refuses_to_start(app: TestApp) {
    app.signed_up("first@example.com").await;
    let other = app.new_key_file("other.key");
    let mut serve = tokio::process::Command::from(app.tessera());
    serve
        .arg("serve")
        .env("TESSERA_BIND", "127.0.0.1:0")
        .env("TESSERA_MASTER_KEY_FILE", &other)
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(30), serve.output())
        .await
        .expect("it stops at once")
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("tessera: master key mismatch"), "{err}");
    let ours = key(&default_key_file(&app)).fingerprint().short();
    assert!(err.contains(&ours), "names the database's key: {err}");
    assert!(
        err.contains(&key(&other).fingerprint().short()),
        "names its own: {err}"
    );
    // The admin command refuses the same way.
    let (ok, _, err) = app.admin(&["accounts"]);
    assert!(ok, "{err}");
    let mut admin = app.tessera();
    admin
        .env("TESSERA_MASTER_KEY_FILE", &other)
        .args(["admin", "accounts"]);
    let out = admin.output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("master key mismatch")
    );

    // With the database's key as the old key of its ring, the same instance starts and
    // reads the data.
    let mut ring = app.tessera();
    ring.env("TESSERA_MASTER_KEY_FILE", &other)
        .env("TESSERA_MASTER_KEY_OLD_FILE", default_key_file(&app));
    let second = process::serve(ring).await;
    assert_eq!(
        second
            .api
            .login("first@example.com", crate::helpers::PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    drop(second);
    app.signed_in_again("first@example.com").await;
}

/// Signs in with the password and a fresh TOTP code.
async fn signs_in_with_totp(app: &TestApp, email: &str, factor: &SecondFactor) {
    app.clock.advance(30);
    let challenge = app.two_factor_challenge(email).await;
    let response = app.verify(&challenge, &app.totp(factor)).await;
    assert_eq!(response.status(), StatusCode::OK, "{email}");
}

/// Queues an email sealed under `key`, as an instance holding it would.
async fn queue_email(app: &TestApp, key: &MasterKey, to: &str) {
    let t = app.clock.now();
    let email = OutgoingEmail {
        to: to.to_owned(),
        to_name: "Someone".into(),
        account_name: Some("Acme".into()),
        at: t,
        ip: None,
        user_agent: None,
        message: Message::PasswordLocked {
            until: t.plus_secs(900),
        },
    };
    let sealed = Mailer::new(key.sealer("outbox")).seal(&email, t);
    let store = app.store().await;
    store
        .record(&Effects::default().and_email(sealed))
        .await
        .unwrap();
}

/// Waits (the worker polls every 50 ms) until `to`'s email is in `status` with an error
/// recorded or not.
async fn email_reaches(
    app: &TestApp,
    to: &str,
    done: impl Fn(&tessera_core::mail::OutboxEntry) -> bool,
) {
    for _ in 0..400 {
        let outbox = app.store().await.list_outbox(true, 1000).await.unwrap();
        if outbox.iter().any(|e| e.recipient == to && done(e)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the email to {to} did not get there");
}

async fn decrypt_failures(app: &TestApp) -> u64 {
    let text = app.metrics().await.html().await;
    text.lines()
        .find_map(|l| l.strip_prefix("tessera_decrypt_failures_total "))
        .expect("the metric is exported")
        .parse()
        .unwrap()
}

async fn rotation_re_encrypts_every_secret_while_instances_roll_over(mut app: TestApp) {
    let Some((_, alice)) = app.user_with_2fa("alice@example.com").await else {
        return;
    };
    let old = default_key_file(&app);
    let new = app.new_key_file("new.key");
    // Step 1: instances restart one by one with the new key, keeping the old one.
    let (n, o) = (new.clone(), old.clone());
    app.reconfigure(move |c| {
        c.master_key = file(&n);
        c.master_key_old = Some(file(&o));
    })
    .await;
    signs_in_with_totp(&app, "alice@example.com", &alice).await;
    // Written by an instance with the ring: sealed under the new key already.
    let (_, bob) = app.user_with_2fa("bob@example.com").await.unwrap();
    // An email an instance still on the old key queued, not yet delivered.
    app.stop().await;
    queue_email(&app, &key(&old), "carol@example.com").await;

    // Step 2: the rotation.
    let mut rotate = app.tessera();
    rotate
        .env("TESSERA_MASTER_KEY_FILE", &new)
        .env("TESSERA_MASTER_KEY_OLD_FILE", &old)
        .args(["admin", "rotate-master-key", "--new-key-file"])
        .arg(&new);
    let out = rotate.output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("re-encrypted "), "{stdout}");
    assert!(
        stdout.contains(&key(&new).fingerprint().short()),
        "{stdout}"
    );
    // Nothing is left under the old key: an instance with only the old key is refused.
    let (ok, _, err) = app.admin(&["accounts"]);
    assert!(!ok);
    assert!(err.contains("master key mismatch"), "{err}");
    // Running it again changes nothing that matters.
    let out = rotate.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Step 3: the old key is dropped; every secret opens with the new one alone.
    app.reconfigure(|c| c.master_key_old = None).await;
    signs_in_with_totp(&app, "alice@example.com", &alice).await;
    signs_in_with_totp(&app, "bob@example.com", &bob).await;
    email_reaches(&app, "carol@example.com", |e| {
        e.status == OutboxStatus::Sent
    })
    .await;
    assert_eq!(decrypt_failures(&app).await, 0);
    // Recovery codes were hashed under keys that outlive the rotation.
    app.clock.advance(30);
    let challenge = app.two_factor_challenge("alice@example.com").await;
    let response = app.verify(&challenge, &alice.recovery_codes[0]).await;
    assert_eq!(response.status(), StatusCode::OK);
}

async fn a_secret_no_key_opens_is_reported_and_left_alone(mut app: TestApp) {
    let old = default_key_file(&app);
    let new = app.new_key_file("new.key");
    // An instance with the new key (and the old) writes a TOTP secret and queues an email.
    let (n, o) = (new.clone(), old.clone());
    app.reconfigure(move |c| {
        c.master_key = file(&n);
        c.master_key_old = Some(file(&o));
    })
    .await;
    let Some((_, dave)) = app.user_with_2fa("dave@example.com").await else {
        return;
    };
    app.stop().await;
    queue_email(&app, &key(&new), "erin@example.com").await;
    // An instance still on the old key alone meets both.
    let o = old.clone();
    app.reconfigure(move |c| {
        c.master_key = file(&o);
        c.master_key_old = None;
    })
    .await;
    app.clock.advance(30);
    let challenge = app.two_factor_challenge("dave@example.com").await;
    // More tries than a challenge allows: none is counted.
    for _ in 0..6 {
        let response = app.verify(&challenge, &app.totp(&dave)).await;
        assert_eq!(response.headers()["retry-after"], "30");
        assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    }
    email_reaches(&app, "erin@example.com", |e| {
        e.status == OutboxStatus::Pending && e.attempts == 0 && e.last_error.is_some()
    })
    .await;
    assert!(decrypt_failures(&app).await >= 7);
    // Looked at again later, still not settled.
    app.clock.advance(31);
    let before = decrypt_failures(&app).await;
    for _ in 0..400 {
        if decrypt_failures(&app).await > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // (A look in the middle of the worker's try sees the email claimed, its attempt
    // counted; the try ends by giving both back.)
    email_reaches(&app, "erin@example.com", |e| {
        e.status == OutboxStatus::Pending && e.attempts == 0
    })
    .await;

    // The operator gives the instance its key back: the same challenge still has all its
    // attempts, and the email goes out.
    app.reconfigure(move |c| {
        c.master_key = file(&new);
        c.master_key_old = Some(file(&old));
    })
    .await;
    let wrong = app.verify(&challenge, "000000").await;
    let body = assert_error(wrong, StatusCode::UNAUTHORIZED, "invalid_code").await;
    assert_eq!(body["error"]["attempts_remaining"], 4, "{body}");
    let response = app.verify(&challenge, &app.totp(&dave)).await;
    assert_eq!(response.status(), StatusCode::OK);
    app.clock.advance(31);
    email_reaches(&app, "erin@example.com", |e| e.status == OutboxStatus::Sent).await;
}
