//! Email through the durable outbox: a real SMTP server, outages, restarts, several workers,
//! and the mail folder when no SMTP is configured.

use crate::helpers::{Api, TestApp};
use crate::smtp::{SmtpSink, free_port, parse};
use std::sync::Arc;
use std::time::Duration;
use tessera_core::mail::{DisabledVia, Message, OutgoingEmail, ResetBy};
use tessera_core::model::OutboxStatus;
use tessera_core::store::Effects;
use tessera_core::{Clock, Timestamp};

backend_tests!(
    the_folder_transport_writes_parseable_eml_files,
    a_locked_sign_in_is_emailed_through_smtp,
    every_message_arrives_through_smtp,
    an_email_waits_for_the_smtp_server_to_come_up,
    several_workers_send_each_email_once,
    emails_queued_before_a_crash_are_sent_after_restart,
);

/// Waits until the outbox shows an email in `status` with at least `attempts` settled
/// attempts (a pending email counts its attempt when claimed, and shows the error once the
/// attempt has failed).
async fn wait_outbox(app: &TestApp, status: OutboxStatus, attempts: i64) {
    let store = app.store().await;
    for _ in 0..600 {
        let entries = store.list_outbox(true, 100).await.unwrap();
        if entries.iter().any(|e| {
            e.status == status
                && e.attempts >= attempts
                && (status != OutboxStatus::Pending || e.last_error.is_some())
        }) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {status} email with {attempts} attempts");
}

async fn the_folder_transport_writes_parseable_eml_files(app: TestApp) {
    app.signed_up("folder@example.com").await;
    app.lock_out("folder@example.com").await;
    wait_outbox(&app, OutboxStatus::Sent, 1).await;
    let folder = app.db.data_dir().join("mail");
    let files: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().unwrap(), "eml");
    let email = parse(&std::fs::read(&files[0]).unwrap());
    assert_eq!(
        email.subject,
        "Your Tessera sign-in is locked after too many wrong passwords"
    );
    assert_eq!(email.to, "folder@example.com");
    assert_eq!(email.to_name, "Ada Lovelace");
    assert_eq!(email.from, "Tessera <no-reply@localhost>");
    assert!(email.text.contains("locked until"));
    assert!(email.text.contains("127.0.0.1"));
    assert!(email.html.contains("<h1"));
}

async fn a_locked_sign_in_is_emailed_through_smtp(app: TestApp) {
    let Some(sink) = SmtpSink::start().await else {
        return;
    };
    let app = restart_with_smtp(app, &sink.url()).await;
    app.signed_up("smtp@example.com").await;
    app.lock_out("smtp@example.com").await;
    let received = sink.wait_for(1).await;
    assert_eq!(received.len(), 1, "one lock, one email");
    let email = &received[0];
    assert_eq!(
        email.subject,
        "Your Tessera sign-in is locked after too many wrong passwords"
    );
    assert_eq!(
        (email.to.as_str(), email.to_name.as_str()),
        ("smtp@example.com", "Ada Lovelace")
    );
    assert_eq!(email.from, "Tessera <no-reply@localhost>");
    assert!(
        email.message_id.ends_with("@localhost"),
        "{}",
        email.message_id
    );
    assert!(email.text.contains("Hello Ada Lovelace,"));
    assert!(email.text.contains("in Acme"), "names the account");
    assert!(email.text.contains("IP address: 127.0.0.1"));
    assert!(
        email
            .text
            .contains(&format!("{}/settings/security", app.base))
    );
    assert!(email.html.contains("Sign-in locked after wrong passwords"));
    wait_outbox(&app, OutboxStatus::Sent, 1).await;
    let metrics = app.metrics().await.text().await.unwrap();
    assert!(metrics.contains("tessera_emails_total{outcome=\"sent\"} 1"));
}

/// The app again, on the same database, now sending through `smtp_url`.
async fn restart_with_smtp(mut app: TestApp, smtp_url: &str) -> TestApp {
    app.use_smtp_url(smtp_url.to_owned()).await;
    app
}

async fn every_message_arrives_through_smtp(app: TestApp) {
    let Some(sink) = SmtpSink::start().await else {
        return;
    };
    let app = restart_with_smtp(app, &sink.url()).await;
    let t = Timestamp::from_unix(1_900_000_000);
    let messages = [
        Message::Invitation {
            inviter: "Grace".into(),
            role: "member".into(),
            token: "invite-token".into(),
            expires_at: t,
            sso: false,
        },
        Message::DeviceCode {
            code: "204816".into(),
            expires_at: t,
        },
        Message::TwoFactorEnabled,
        Message::TwoFactorDisabled {
            via: DisabledVia::Password,
        },
        Message::RecoveryCodeUsed { remaining: 9 },
        Message::RecoveryCodesRegenerated,
        Message::TwoFactorReset {
            by: ResetBy::Operator,
            required: true,
        },
        Message::TwoFactorRequired {
            by: "Grace".into(),
            deadline: None,
        },
        Message::SecondStepLocked { until: t },
        Message::PasswordLocked { until: t },
    ];
    let mailer = app.mailer();
    let mut effects = Effects::default();
    for (i, message) in messages.iter().enumerate() {
        let email = OutgoingEmail {
            to: format!("user{i}@example.com"),
            to_name: format!("User {i}"),
            account_name: Some("Acme".into()),
            at: t,
            ip: Some("198.51.100.4".into()),
            user_agent: Some("Test/1".into()),
            message: message.clone(),
        };
        effects = effects.and_email(mailer.seal(&email, app.clock.now()));
    }
    app.store().await.record(&effects).await.unwrap();
    let received = sink.wait_for(messages.len()).await;
    assert_eq!(received.len(), messages.len());
    for (i, message) in messages.iter().enumerate() {
        let email = received
            .iter()
            .find(|r| r.to == format!("user{i}@example.com"))
            .unwrap_or_else(|| panic!("{} arrived", message.kind()));
        assert!(!email.subject.is_empty() && !email.text.is_empty() && !email.html.is_empty());
        match message {
            Message::DeviceCode { code, .. } => {
                assert_eq!(
                    email.subject,
                    "Verify your identity to proceed with the login"
                );
                assert!(email.text.contains(code.as_str()));
            }
            Message::Invitation { token, .. } => {
                assert!(
                    email
                        .text
                        .contains(&format!("{}/invitations/{token}", app.base))
                );
            }
            Message::RecoveryCodeUsed { .. } => {
                assert!(email.text.contains("You have 9 recovery codes left."));
            }
            _ => {}
        }
    }
}

async fn an_email_waits_for_the_smtp_server_to_come_up(app: TestApp) {
    let port = free_port();
    let app = restart_with_smtp(app, &format!("smtp://127.0.0.1:{port}")).await;
    app.signed_up("outage@example.com").await;
    app.lock_out("outage@example.com").await;
    // The server is down: the first attempt fails and a retry is scheduled.
    wait_outbox(&app, OutboxStatus::Pending, 1).await;
    let entries = app.store().await.list_outbox(false, 10).await.unwrap();
    assert!(entries[0].last_error.is_some());
    assert!(entries[0].next_attempt_at > app.clock.now());
    let Some(sink) = SmtpSink::start_on(port).await else {
        return;
    };
    // Nothing is sent before the retry is due …
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(sink.received().is_empty());
    // … and the email arrives once it is.
    app.clock.advance(3600);
    let received = sink.wait_for(1).await;
    assert_eq!(received[0].to, "outage@example.com");
    wait_outbox(&app, OutboxStatus::Sent, 2).await;
    let metrics = app.metrics().await.text().await.unwrap();
    assert!(metrics.contains("tessera_emails_total{outcome=\"retried\"} 1"));
}

async fn several_workers_send_each_email_once(app: TestApp) {
    let Some(sink) = SmtpSink::start().await else {
        return;
    };
    let app = restart_with_smtp(app, &sink.url()).await;
    // Two more workers, as two more instances would run, beside the app's own.
    let mut workers = Vec::new();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    for _ in 0..2 {
        let outbox = tessera_mail::Outbox::new(
            tessera_mail::OutboxConfig {
                smtp_url: Some(sink.url()),
                folder: app.db.data_dir().join("unused"),
                from: "Tessera <no-reply@localhost>".into(),
                brand: tessera_mail::Brand {
                    product: "Tessera".into(),
                    public_url: app.base.clone(),
                },
                settings: tessera_mail::DeliverySettings {
                    poll_interval: Duration::from_millis(20),
                    batch: 2,
                    ..Default::default()
                },
            },
            app.store().await,
            Arc::new(app.mailer()),
            app.clock.clone(),
            Arc::default(),
        )
        .unwrap();
        workers.push(tokio::spawn(outbox.run(stopped.clone())));
    }
    let mailer = app.mailer();
    let mut effects = Effects::default();
    for i in 0..30 {
        let email = OutgoingEmail {
            to: format!("many{i}@example.com"),
            to_name: format!("Many {i}"),
            account_name: None,
            at: app.clock.now(),
            ip: None,
            user_agent: None,
            message: Message::RecoveryCodesRegenerated,
        };
        effects = effects.and_email(mailer.seal(&email, app.clock.now()));
    }
    app.store().await.record(&effects).await.unwrap();
    let received = sink.wait_for(30).await;
    // Give a duplicate, if there were one, time to arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received_after = sink.received();
    assert_eq!(received_after.len(), 30, "no email twice");
    let mut ids: Vec<_> = received.iter().map(|r| r.message_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 30);
    stop.send(true).unwrap();
    for w in workers {
        w.await.unwrap();
    }
    let pending = app.store().await.list_outbox(false, 100).await.unwrap();
    assert!(pending.is_empty(), "{pending:?}");
}

async fn emails_queued_before_a_crash_are_sent_after_restart(mut app: TestApp) {
    // Only the `tessera serve` processes below may deliver.
    app.stop().await;
    let port = free_port();
    let config = app.db.data_dir().join("tessera.toml");
    std::fs::write(
        &config,
        "[mail]\npoll_interval_ms = 50\nretry_base_secs = 1\nretry_max_secs = 1\nlease_secs = 2\n",
    )
    .unwrap();
    let serve = || {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tessera"));
        command
            .arg("serve")
            .env_clear()
            .env("TESSERA_CONFIG", &config)
            .env("TESSERA_BIND", "127.0.0.1:0")
            .env("TESSERA_DATA_DIR", app.db.data_dir())
            .env("TESSERA_DATABASE_URL", app.db.url())
            .env("TESSERA_SMTP_URL", format!("smtp://127.0.0.1:{port}"))
            .env("TESSERA_LOG_FORMAT", "json")
            .env("TESSERA_SIGNUP", "open")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        command
    };
    let (mut first, base) = start_serving(serve()).await;
    let api = Api::at(&base);
    let signup = api
        .signup(&serde_json::json!({"account_name": "Acme", "name": "Ada",
                                     "email": "crash@example.com",
                                     "password": crate::helpers::PASSWORD}))
        .await;
    assert_eq!(signup.status(), 201);
    for _ in 0..10 {
        api.login("crash@example.com", "wrong").await;
    }
    wait_outbox(&app, OutboxStatus::Pending, 1).await;
    // Killed without warning, with the email still undelivered (perhaps claimed: the
    // claim lapses after its lease).
    first.kill().await.unwrap();
    let Some(sink) = SmtpSink::start_on(port).await else {
        return;
    };
    assert!(sink.received().is_empty());
    let (_second, _) = start_serving(serve()).await;
    let received = sink.wait_for(1).await;
    assert_eq!(received[0].to, "crash@example.com");
    wait_outbox(&app, OutboxStatus::Sent, 2).await;
}

/// Starts `tessera serve` and returns it with its base URL, read from its log.
async fn start_serving(mut command: tokio::process::Command) -> (tokio::process::Child, String) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(line) = lines.next_line().await.unwrap() {
        let entry: serde_json::Value = serde_json::from_str(&line).unwrap();
        if let Some(address) = entry["fields"]["address"].as_str() {
            let base = format!("http://{address}");
            // Keep draining the log so the process never blocks on a full pipe.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return (child, base);
        }
    }
    panic!("tessera serve exited before listening");
}
