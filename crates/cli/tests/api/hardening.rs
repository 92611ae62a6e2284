//! Session limits and hardening of SPEC §8: the idle timeout, `session_expired`, activity
//! written at most once a minute, `__Host-` cookies over https, `/metrics` behind a token,
//! per-IP limits by IPv6 /64, control and format characters refused in names.

use crate::helpers::{PASSWORD, ResponseExt, TestApp, assert_error};
use reqwest::StatusCode;
use serde_json::json;

backend_tests!(
    an_idle_session_expires_after_30_minutes,
    activity_keeps_a_session_alive,
    an_unknown_token_is_unauthenticated_not_expired,
    activity_is_written_at_most_once_a_minute,
    cookies_are_host_prefixed_over_https,
    metrics_ask_for_the_token_when_one_is_set,
    ipv6_clients_are_counted_by_their_64,
    names_with_format_characters_are_refused,
    invitations_are_limited_per_recipient_and_per_account,
    concurrent_invitations_never_pass_the_recipient_limit,
);

async fn an_idle_session_expires_after_30_minutes(app: TestApp) {
    let token = app.signed_in("idle@example.com").await;
    app.clock.advance(30 * 60 - 1);
    assert_eq!(app.me(&token).await.status(), 200);
    let other = app.signed_in_again("idle@example.com").await;
    app.clock.advance(30 * 60);
    let response = app.me(&other).await;
    assert_error(response, StatusCode::UNAUTHORIZED, "session_expired").await;
    // Expired for every route, not only `/me`.
    let response = app.get("/api/v1/me/events", Some(&other)).await;
    assert_error(response, StatusCode::UNAUTHORIZED, "session_expired").await;
}

async fn activity_keeps_a_session_alive(app: TestApp) {
    let token = app.signed_in("busy@example.com").await;
    for _ in 0..4 {
        app.clock.advance(25 * 60);
        assert_eq!(app.me(&token).await.status(), 200);
    }
    // 100 minutes after sign-in, still alive; 30 minutes of silence end it.
    app.clock.advance(30 * 60);
    let response = app.me(&token).await;
    assert_error(response, StatusCode::UNAUTHORIZED, "session_expired").await;
}

async fn an_unknown_token_is_unauthenticated_not_expired(app: TestApp) {
    let token = app.signed_in("gone@example.com").await;
    assert_eq!(app.logout(&token).await.status(), 204);
    let response = app.me(&token).await;
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

/// The touch is a conditional write: within a minute of the last one, nothing changes.
async fn activity_is_written_at_most_once_a_minute(app: TestApp) {
    let token = app.signed_in("touch@example.com").await;
    let store = app.store().await;
    let hash = tessera_core::crypto::Token::from_client(&token).hash();
    let last_seen = || async {
        let found = store.find_session(&hash).await.unwrap().unwrap();
        found.session.last_seen_at
    };
    let opened = last_seen().await;
    app.clock.advance(59);
    assert_eq!(app.me(&token).await.status(), 200);
    assert_eq!(last_seen().await, opened, "not yet due: a pure read");
    app.clock.advance(1);
    assert_eq!(app.me(&token).await.status(), 200);
    let touched = last_seen().await;
    assert_eq!(touched, opened.plus_secs(60));
    app.clock.advance(30);
    assert_eq!(app.me(&token).await.status(), 200);
    assert_eq!(last_seen().await, touched);
}

async fn cookies_are_host_prefixed_over_https(mut app: TestApp) {
    let b = app.browser();
    let plain = b.open("/login").await.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(plain.starts_with("tessera_csrf="), "{plain}");
    app.reconfigure(|c| c.public_url = Some("https://auth.example.com".into()))
        .await;
    let b = app.browser();
    let response = b.open("/login").await;
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("__Host-tessera_csrf="), "{cookie}");
    assert!(
        cookie.contains("; Secure") && cookie.contains("Path=/"),
        "{cookie}"
    );
    assert!(!cookie.contains("Domain"), "{cookie}");
}

async fn metrics_ask_for_the_token_when_one_is_set(mut app: TestApp) {
    let metrics = |auth: Option<&'static str>| {
        let mut request = app.client.get(app.url("/metrics"));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        request.send()
    };
    assert_eq!(
        metrics(None).await.unwrap().status(),
        200,
        "open by default"
    );
    app.reconfigure(|c| c.metrics_token = Some("m3trics-t0ken".into()))
        .await;
    let metrics = |auth: Option<&'static str>| {
        let mut request = app.client.get(app.url("/metrics"));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        request.send()
    };
    for auth in [None, Some("Bearer wrong"), Some("Basic m3trics-t0ken")] {
        let response = metrics(auth).await.unwrap();
        assert_error(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    let response = metrics(Some("Bearer m3trics-t0ken")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("tessera_http_requests_total")
    );
}

async fn ipv6_clients_are_counted_by_their_64(mut app: TestApp) {
    app.reconfigure(|c| {
        c.trusted_proxies = vec![tessera_core::api_keys::IpRule::parse("127.0.0.1").unwrap()]
    })
    .await;
    let max = tessera_core::SecurityPolicy::default().ip_max_failures;
    let attempt = |i: i64| {
        app.client
            .post(app.url("/api/v1/login"))
            .header("x-forwarded-for", format!("2001:db8:7:7::{i:x}"))
            .json(&json!({"email": format!("spray{i}@example.com"), "password": PASSWORD}))
            .send()
    };
    for i in 0..max {
        assert_eq!(attempt(i + 1).await.unwrap().status(), 401, "attempt {i}");
    }
    let response = attempt(max + 1).await.unwrap();
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    // Another /64 has its own budget.
    let other = app
        .client
        .post(app.url("/api/v1/login"))
        .header("x-forwarded-for", "2001:db8:7:8::1")
        .json(&json!({"email": "spray@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 401);
}

async fn names_with_format_characters_are_refused(app: TestApp) {
    for (field, value) in [
        ("account_name", "Payroll\u{202e}exe.fdp"),
        ("name", "Ada\u{200b}Lovelace"),
    ] {
        let mut body = json!({"account_name": "Acme", "name": "Ada Lovelace",
            "email": "fmt@example.com", "password": PASSWORD});
        body[field] = json!(value);
        let response = app.signup(&body).await;
        let body = assert_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
        )
        .await;
        assert!(body["error"]["fields"].get(field).is_some(), "{body}");
    }
    let token = app.signed_in("owner-fmt@example.com").await;
    let response = app
        .invite_with(
            &token,
            json!({"email": "x@example.com", "name": "\u{feff}Grace", "role": "member"}),
        )
        .await;
    assert_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    )
    .await;
}

/// SPEC §8: 3 invitation emails per recipient and 50 per account a day; withdrawing does
/// not give one back.
async fn invitations_are_limited_per_recipient_and_per_account(app: TestApp) {
    let token = app.signed_in("inviter@example.com").await;
    for round in 0..3 {
        let response = app.invite(&token, "victim@example.com", "member").await;
        assert_eq!(response.status(), 201, "round {round}");
        let id = response.body().await["id"].as_str().unwrap().to_owned();
        assert_eq!(app.revoke_invitation(&token, &id).await.status(), 204);
    }
    let response = app.invite(&token, "victim@example.com", "member").await;
    let retry: i64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 24 * 3600, "{retry}");
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    // A refused invitation was not sent: the account has used 3 of its 50.
    for i in 3..50 {
        let email = format!("person{i}@example.com");
        let response = app.invite(&token, &email, "member").await;
        assert_eq!(response.status(), 201, "invitation {i}");
    }
    let response = app
        .invite(&token, "one-too-many@example.com", "member")
        .await;
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    // A day later both budgets are back.
    app.clock.advance(24 * 3600);
    let token = app.signed_in_again("inviter@example.com").await;
    let response = app.invite(&token, "victim@example.com", "member").await;
    assert_eq!(response.status(), 201);
}

/// Eight accounts invite the same address at once: the per-recipient budget (3 a day,
/// across accounts) is counted under the throttle's row lock, so exactly 3 get through.
async fn concurrent_invitations_never_pass_the_recipient_limit(app: TestApp) {
    const RECIPIENT: &str = "popular@example.com";
    let mut owners = Vec::new();
    for i in 0..8 {
        owners.push(app.signed_in(&format!("owner{i}@example.com")).await);
    }
    let tasks: Vec<_> = owners
        .into_iter()
        .map(|owner| {
            let api = app.api();
            tokio::spawn(async move {
                let response = api.invite(&owner, RECIPIENT, "member").await;
                let status = response.status();
                (status, response.body().await)
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            StatusCode::CREATED => {}
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(body["error"]["code"], "too_many_attempts", "{body}");
            }
            other => panic!("unexpected {other}: {body}"),
        }
        statuses.push(status);
    }
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 3, "{statuses:?}");
    // Exactly 3 invitation emails were queued for the address, and 3 delivered.
    let outbox = app.store().await.list_outbox(true, 1000).await.unwrap();
    let queued = outbox
        .iter()
        .filter(|e| e.kind == "invitation" && e.recipient == RECIPIENT)
        .count();
    assert_eq!(queued, 3);
    assert_eq!(app.mail_to(RECIPIENT, 3).await.len(), 3);
    assert_eq!(app.invitations_sent(RECIPIENT).await, 3);
}
