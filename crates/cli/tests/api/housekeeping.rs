//! Housekeeping (SPEC §14): run directly with the test's clock, it deletes exactly what has
//! expired (and nothing live), in batches, and running it again (or on another instance at
//! the same time) finds nothing more.

use crate::helpers::{PASSWORD, ResponseExt, TestApp, assert_error};
use reqwest::StatusCode;
use std::sync::Arc;
use std::time::Duration;
use tessera_core::Clock;
use tessera_core::crypto::MasterKey;
use tessera_core::housekeeping::{self, Sweep};
use tessera_core::mail::{Mailer, Message, OutgoingEmail};
use tessera_core::model::OutboxStatus;
use tessera_core::store::{Effects, Store};

backend_tests!(housekeeping_deletes_exactly_what_has_expired);

const MINUTE: i64 = 60;
const DAY: i64 = 24 * 3600;

/// Runs housekeeping as the server's task does, in small batches: what each sweep deleted.
async fn sweep(app: &TestApp, store: &Arc<dyn Store>) -> Vec<(Sweep, u64)> {
    let policy = tessera_core::SecurityPolicy::default();
    housekeeping::run(&**store, &policy, app.clock.now(), 2)
        .await
        .unwrap()
}

fn count(swept: &[(Sweep, u64)], sweep: Sweep) -> u64 {
    swept.iter().find(|(s, _)| *s == sweep).unwrap().1
}

async fn wait_until_sent(app: &TestApp, store: &Arc<dyn Store>) -> usize {
    for _ in 0..400 {
        let outbox = store.list_outbox(true, 1000).await.unwrap();
        let pending = outbox
            .iter()
            .filter(|e| e.status == OutboxStatus::Pending && e.last_error.is_none())
            .count();
        if pending == 0 {
            return outbox
                .iter()
                .filter(|e| e.status == OutboxStatus::Sent)
                .count();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("emails still queued at {}", app.clock.now());
}

async fn housekeeping_deletes_exactly_what_has_expired(app: TestApp) {
    let store = app.store().await;
    let live = app.signed_in("alice@example.com").await;
    let alice: tessera_core::model::UserId = app.user_id(&live).await.parse().unwrap();
    let idle = app.signed_in("erin@example.com").await;
    let Some(_) = app.user_with_2fa("bob@example.com").await else {
        return;
    };
    let challenge = app.two_factor_challenge("bob@example.com").await;
    let carol = app.signed_in("carol@example.com").await;
    assert_eq!(app.setup_2fa(&carol).await.status(), StatusCode::OK);
    for _ in 0..3 {
        app.login("dave@example.com", "not the password").await;
    }
    assert_eq!(
        app.forgot_password("alice@example.com").await.status(),
        StatusCode::ACCEPTED
    );
    let link = app.reset_token("alice@example.com", 1).await;
    // An email no key of this instance opens: it stays queued, whatever its age.
    let t = app.clock.now();
    let stuck = OutgoingEmail {
        to: "stuck@example.com".into(),
        to_name: "Stuck".into(),
        account_name: None,
        at: t,
        ip: None,
        user_agent: None,
        message: Message::PasswordLocked { until: t },
    };
    let sealed = Mailer::new(MasterKey::generate().sealer("outbox")).seal(&stuck, t);
    store
        .record(&Effects::default().and_email(sealed))
        .await
        .unwrap();

    // Nothing has expired yet.
    let swept = sweep(&app, &store).await;
    for kind in [
        Sweep::ExpiredSessions,
        Sweep::IdleSessions,
        Sweep::Challenges,
        Sweep::PendingSetups,
        Sweep::ResetLinks,
        Sweep::SentEmails,
        Sweep::Events,
    ] {
        assert_eq!(count(&swept, kind), 0, "{kind:?}: {swept:?}");
    }

    // 31 minutes on, with one session in use at minute 20.
    app.clock.advance(20 * MINUTE);
    assert_eq!(app.me(&live).await.status(), StatusCode::OK);
    app.clock.advance(11 * MINUTE);
    let swept = sweep(&app, &store).await;
    assert_eq!(count(&swept, Sweep::PendingSetups), 1, "carol's: {swept:?}");
    // Every session but the one in use was idle: erin's, bob's, carol's and alice's first.
    assert!(count(&swept, Sweep::IdleSessions) >= 3, "{swept:?}");
    assert_eq!(app.me(&live).await.status(), StatusCode::OK, "in use: kept");
    let gone = app.me(&idle).await;
    assert_error(gone, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let answer = app.verify(&challenge, "123456").await;
    assert_error(answer, StatusCode::UNAUTHORIZED, "challenge_expired").await;

    // A day and an hour later the reset link is gone, not just expired.
    app.clock.advance(DAY + 3600);
    let swept = sweep(&app, &store).await;
    assert_eq!(count(&swept, Sweep::ResetLinks), 1, "{swept:?}");
    // Bob's challenge, unless the server's minute sweep of unfinished sign-ins ended it.
    assert!(count(&swept, Sweep::Challenges) <= 1, "{swept:?}");
    let used = app.reset_password(&link, "a brand new passphrase 42").await;
    assert_error(used, StatusCode::NOT_FOUND, "reset_token_invalid").await;

    // 30 days after delivery, sent emails go; the one still queued stays.
    let sent = wait_until_sent(&app, &store).await;
    assert!(sent > 0);
    app.clock.advance(30 * DAY);
    let swept = sweep(&app, &store).await;
    assert_eq!(count(&swept, Sweep::SentEmails), sent as u64, "{swept:?}");
    assert!(
        count(&swept, Sweep::StaleThrottles) >= 1,
        "dave's: {swept:?}"
    );
    let outbox = store.list_outbox(true, 1000).await.unwrap();
    assert_eq!(outbox.len(), 1, "{outbox:?}");
    assert_eq!(outbox[0].recipient, "stuck@example.com");

    // After 400 days the audit log is empty.
    let (ok, events, _) = app.admin(&["events", "--email", "alice@example.com"]);
    assert!(ok && !events.trim().is_empty());
    assert!(
        !store
            .user_events(alice, None, 100)
            .await
            .unwrap()
            .is_empty()
    );
    app.clock.advance(400 * DAY);
    let swept = sweep(&app, &store).await;
    assert!(count(&swept, Sweep::Events) > 0, "{swept:?}");
    assert!(
        store
            .user_events(alice, None, 100)
            .await
            .unwrap()
            .is_empty()
    );

    // Two instances at once, and again: nothing left to do.
    let (a, b) = tokio::join!(sweep(&app, &store), sweep(&app, &store));
    for swept in [a, b] {
        assert!(swept.iter().all(|(_, n)| *n == 0), "{swept:?}");
    }
    // The live user still signs in.
    let body = app.login("alice@example.com", PASSWORD).await.body().await;
    assert!(body["status"].is_string(), "{body}");
}
