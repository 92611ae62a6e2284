//! Keys made, listed, changed, revoked, expired and used by grant; what a manager may give.

use super::{header, well_formed};
use crate::helpers::{ResponseExt, TestApp, assert_error, strings};
use reqwest::StatusCode;
use serde_json::json;
use tessera_core::api_keys::GrantCatalog;

backend_tests!(
    a_key_is_shown_once_in_its_format_and_listed_by_its_prefix,
    keys_work_on_the_account_api_by_grant_and_open_no_session,
    keys_are_changed_and_revoked,
    an_expired_key_is_refused,
    the_operators_grants_come_from_tessera_api_grants,
    a_manager_gives_only_grants_of_what_they_may_do,
    creating_a_key_needs_a_recent_authentication,
    a_key_use_is_recorded_at_most_once_a_minute,
    a_key_invites_members_only_with_its_grant,
);

async fn a_key_is_shown_once_in_its_format_and_listed_by_its_prefix(app: TestApp) {
    let owner = app.signed_in("owner@example.com").await;
    let response = app
        .create_key(
            &owner,
            json!({"label": " Billing sync ", "grants": ["users:read", "account:read", "users:read"],
                   "allowed_ips": ["203.0.113.7/24", "2001:DB8::1"], "expires_at": "2099-01-01"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created = response.body().await;
    let key = created["key"].as_str().unwrap();
    assert!(well_formed(key), "{key}");
    assert_eq!(created["prefix"], key[..8]);
    assert_eq!(created["label"], "Billing sync");
    // In the catalogue's order, without repeats; blocks in their canonical form.
    assert_eq!(strings(&created["grants"]), ["account:read", "users:read"]);
    assert_eq!(
        strings(&created["allowed_ips"]),
        ["203.0.113.0/24", "2001:db8::1"]
    );
    assert_eq!(created["expires_at"], "2099-01-01T00:00:00Z");
    // Two keys are never the same.
    let (other, _) = app.new_key(&owner, &["users:read"], &[]).await;
    assert_ne!(key, other);
    // Listed by prefix, never in full.
    let listed = app.keys(&owner).await;
    assert_eq!(listed.status(), StatusCode::OK);
    let text = listed.text().await.unwrap();
    assert!(!text.contains(key) && !text.contains(&other), "{text}");
    let list: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let first = list
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == created["id"])
        .expect("the first key listed");
    assert_eq!(first["prefix"], key[..8]);
    assert_eq!(first["created_by"], app.user_id(&owner).await);
    assert_eq!(first["last_used_at"], serde_json::Value::Null);
    assert!(first.get("key").is_none());
    // The owner is told; the log says what was made, and never the key.
    assert_eq!(
        app.emails_of_kind("owner@example.com", "api_key_created")
            .await,
        2
    );
    let events = app.account_events(&owner, "").await.body().await;
    let events = events["events"].as_array().unwrap();
    let made = events
        .iter()
        .find(|e| e["kind"] == "api_key_created" && e["detail"]["api_key_id"] == created["id"])
        .expect("an api_key_created event");
    assert_eq!(made["detail"]["prefix"], key[..8]);
    assert!(!events.iter().any(|e| e.to_string().contains(key)));
}

async fn keys_work_on_the_account_api_by_grant_and_open_no_session(app: TestApp) {
    // The owner has 2FA: a key needs no code (SPEC §11).
    let owner = app.owner_with_2fa("owner@example.com").await;
    let (key, _) = app.new_key(&owner, &["users:read"], &[]).await;
    let users = app.users(&key).await;
    assert_eq!(users.status(), StatusCode::OK);
    assert_eq!(users.body().await[0]["email"], "owner@example.com");
    // Without the grant: refused, naming it.
    let body = assert_error(
        app.account(&key).await,
        StatusCode::FORBIDDEN,
        "insufficient_grant",
    )
    .await;
    assert_eq!(body["error"]["grant"], "account:read");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("account:read")
    );
    assert_error(
        app.account_events(&key, "").await,
        StatusCode::FORBIDDEN,
        "insufficient_grant",
    )
    .await;
    // A key is no session: the endpoints of sessions refuse it, keys included.
    for response in [
        app.me(&key).await,
        app.keys(&key).await,
        app.sessions(&key).await,
    ] {
        assert_error(response, StatusCode::UNAUTHORIZED, "invalid_api_key").await;
    }
    let sessions = app.sessions(&owner).await.body().await;
    assert_eq!(sessions.as_array().unwrap().len(), 1, "{sessions}");
    let (all, _) = app
        .new_key(&owner, &["account:read", "events:read"], &[])
        .await;
    assert_eq!(app.account(&all).await.status(), StatusCode::OK);
    let events = app.account_events(&all, "").await;
    assert_eq!(events.status(), StatusCode::OK);
    // The refusal above was audited.
    let log = events.body().await.to_string();
    assert!(log.contains("api_key_refused") && log.contains("insufficient_grant"));
}

async fn keys_are_changed_and_revoked(app: TestApp) {
    let owner = app.signed_in("owner@example.com").await;
    let (key, id) = app.new_key(&owner, &["users:read"], &[]).await;
    let path = format!("/api/v1/account/api-keys/{id}");
    let changed = app
        .put(
            &path,
            json!({"label": "Reports", "grants": ["account:read"], "allowed_ips": ["127.0.0.1"]}),
            Some(&owner),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::OK);
    let changed = changed.body().await;
    assert_eq!(changed["label"], "Reports");
    assert_eq!(strings(&changed["grants"]), ["account:read"]);
    assert_eq!(strings(&changed["allowed_ips"]), ["127.0.0.1"]);
    // The change holds at once.
    assert_eq!(app.account(&key).await.status(), StatusCode::OK);
    assert_error(
        app.users(&key).await,
        StatusCode::FORBIDDEN,
        "insufficient_grant",
    )
    .await;
    assert_eq!(
        app.revoke_key(&owner, &id).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_error(
        app.account(&key).await,
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
    )
    .await;
    assert_error(
        app.revoke_key(&owner, &id).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let again = json!({"label": "x", "grants": ["account:read"]});
    assert_error(
        app.put(&path, again, Some(&owner)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert!(
        app.keys(&owner)
            .await
            .body()
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );
    let events = app
        .account_events(&owner, "")
        .await
        .body()
        .await
        .to_string();
    for kind in ["api_key_changed", "api_key_revoked", "api_key_refused"] {
        assert!(events.contains(kind), "{kind} in {events}");
    }
}

async fn an_expired_key_is_refused(app: TestApp) {
    let owner = app.signed_in("owner@example.com").await;
    let tomorrow =
        tessera_core::Timestamp::from_unix(tessera_core::Clock::now(&*app.clock).unix() + 86_400);
    let response = app
        .create_key(
            &owner,
            json!({"label": "Short", "grants": ["users:read"],
                   "expires_at": tomorrow.to_rfc3339()}),
        )
        .await;
    let key = response.body().await["key"].as_str().unwrap().to_owned();
    assert_eq!(app.users(&key).await.status(), StatusCode::OK);
    app.clock.advance(86_400);
    assert_error(
        app.users(&key).await,
        StatusCode::UNAUTHORIZED,
        "api_key_expired",
    )
    .await;
}

async fn the_operators_grants_come_from_tessera_api_grants(mut app: TestApp) {
    app.reconfigure(|c| {
        c.api_grants =
            GrantCatalog::new(["messages:send".to_owned(), "metrics:read".to_owned()]).unwrap()
    })
    .await;
    let owner = app.signed_in("owner@example.com").await;
    let (key, _) = app.new_key(&owner, &["messages:send"], &[]).await;
    let allowed = app
        .gate(
            "?grant=messages:send",
            &[("authorization", &format!("Bearer {key}"))],
        )
        .await;
    assert_eq!(allowed.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&allowed, "x-tessera-grants"), "messages:send");
    let body = assert_error(
        app.gate(
            "?grant=metrics:read",
            &[("authorization", &format!("Bearer {key}"))],
        )
        .await,
        StatusCode::FORBIDDEN,
        "insufficient_grant",
    )
    .await;
    assert_eq!(body["error"]["grant"], "metrics:read");
    // A grant nobody declared is no grant.
    let unknown = app
        .create_key(&owner, json!({"label": "x", "grants": ["messages:delete"]}))
        .await;
    let body = assert_error(
        unknown,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    )
    .await;
    assert!(
        body.to_string().contains("messages:send"),
        "lists the known ones: {body}"
    );
}

async fn a_manager_gives_only_grants_of_what_they_may_do(app: TestApp) {
    let owner = app.owner_with_2fa("owner@example.com").await;
    // An admin without 2FA may not use the recovery powers, so may not give them.
    let (_, admin) = app.join(&owner, "admin@example.com", "admin").await;
    let (_, member) = app.join(&owner, "member@example.com", "member").await;
    for grant in ["users:write", "policy:write"] {
        let body = assert_error(
            app.create_key(
                &admin,
                json!({"label": "x", "grants": ["users:read", grant]}),
            )
            .await,
            StatusCode::FORBIDDEN,
            "insufficient_grant",
        )
        .await;
        assert_eq!(body["error"]["grant"], grant);
    }
    app.new_key(&admin, &["users:read", "invitations:write"], &[])
        .await;
    // The owner, with 2FA, may give them.
    app.new_key(&owner, &["users:write", "policy:write"], &[])
        .await;
    // A member manages no keys at all.
    assert_error(
        app.create_key(&member, json!({"label": "x", "grants": ["users:read"]}))
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_error(app.keys(&member).await, StatusCode::FORBIDDEN, "forbidden").await;
    // The admin's key is worth no more than the admin: the owner's keys are listed to them
    // but the admin's own grants bound what their key does.
    let listed = app.keys(&admin).await.body().await;
    assert_eq!(listed.as_array().unwrap().len(), 2);
}

async fn creating_a_key_needs_a_recent_authentication(app: TestApp) {
    let owner = app.signed_in("owner@example.com").await;
    let (_, id) = app.new_key(&owner, &["users:read"], &[]).await;
    app.clock.advance(16 * 60);
    let body = json!({"label": "Late", "grants": ["users:read"]});
    assert_error(
        app.create_key(&owner, body).await,
        StatusCode::FORBIDDEN,
        "reauthentication_required",
    )
    .await;
    assert_error(
        app.revoke_key(&owner, &id).await,
        StatusCode::FORBIDDEN,
        "reauthentication_required",
    )
    .await;
    // Listing is no sensitive action.
    assert_eq!(app.keys(&owner).await.status(), StatusCode::OK);
}

async fn a_key_use_is_recorded_at_most_once_a_minute(app: TestApp) {
    let owner = app.signed_in("owner@example.com").await;
    let (key, _) = app.new_key(&owner, &["users:read"], &[]).await;
    let last_use = async || {
        let listed = app.keys(&owner).await.body().await;
        (
            listed[0]["last_used_at"].as_str().map(str::to_owned),
            listed[0]["last_used_ip"].as_str().map(str::to_owned),
        )
    };
    assert_eq!(last_use().await, (None, None));
    assert_eq!(app.users(&key).await.status(), StatusCode::OK);
    let (first, ip) = last_use().await;
    assert!(first.is_some());
    assert_eq!(ip.as_deref(), Some("127.0.0.1"));
    app.clock.advance(30);
    app.users(&key).await;
    assert_eq!(last_use().await.0, first, "not within the minute");
    app.clock.advance(31);
    app.users(&key).await;
    assert_ne!(last_use().await.0, first, "once the minute is over");
}

async fn a_key_invites_members_only_with_its_grant(app: TestApp) {
    let owner = app.signed_in("owner@example.com").await;
    let (key, id) = app.new_key(&owner, &["invitations:write"], &[]).await;
    let invited = app.invite(&key, "grace@example.com", "member").await;
    assert_eq!(invited.status(), StatusCode::CREATED);
    let invitation = invited.body().await["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.emails_of_kind("grace@example.com", "invitation").await,
        1
    );
    let open = app.invitations(&key).await;
    assert_eq!(open.status(), StatusCode::OK);
    assert_eq!(open.body().await.as_array().unwrap().len(), 1);
    // Inviting an admin is a recovery power: never by a key.
    assert_error(
        app.invite(&key, "eve@example.com", "admin").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let (reader, _) = app.new_key(&owner, &["users:read"], &[]).await;
    let body = assert_error(
        app.invite(&reader, "bob@example.com", "member").await,
        StatusCode::FORBIDDEN,
        "insufficient_grant",
    )
    .await;
    assert_eq!(body["error"]["grant"], "invitations:write");
    // The log says which key acted, for whom.
    let events = app.account_events(&owner, "").await.body().await;
    let made = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "user_invited")
        .expect("a user_invited event")
        .clone();
    assert_eq!(made["detail"]["api_key_id"], id);
    assert_eq!(made["email"], "owner@example.com");
    assert_eq!(
        app.revoke_invitation(&key, &invitation).await.status(),
        StatusCode::NO_CONTENT
    );
}
