//! Keys with the recovery grants (SPEC §11): `users:write` deletes users and resets their
//! 2FA, `policy:write` sets the team's 2FA and trusted-device policies; both as their creator
//! may now (never the owner nor the creator, never once the creator could no longer give the
//! grant), with no step-up, audited with the key. What stays people-only stays so.

use crate::helpers::{PASSWORD, ResponseExt, TestApp, assert_error};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

backend_tests!(
    a_key_with_users_write_resets_a_users_2fa_and_deletes_them,
    users_write_acts_only_as_far_as_the_keys_creator_may,
    refusals_to_act_on_the_owner_or_oneself_are_audited,
    a_key_with_policy_write_sets_the_teams_policies,
    keys_still_never_change_sso_nor_invite_an_admin,
    a_revoked_key_is_refused_for_the_recovery_powers,
);

const TRUST_POLICY: &str = "/api/v1/account/trusted-devices-policy";

/// The newest event of `kind` in the account's log.
async fn latest(app: &TestApp, owner: &str, kind: &str) -> Value {
    let events = all_of(app, owner, kind).await;
    events
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no {kind} event in the account's log"))
}

async fn assert_lacks(response: Response, grant: &str) {
    let body = assert_error(response, StatusCode::FORBIDDEN, "insufficient_grant").await;
    assert_eq!(body["error"]["grant"], grant, "{body}");
}

async fn a_key_with_users_write_resets_a_users_2fa_and_deletes_them(app: TestApp) {
    let t = app.team().await;
    let Some(_) = app.enable_2fa(&t.member).await else {
        return;
    };
    let (key, key_id) = app.new_key(&t.owner, &["users:write"], &[]).await;
    // A key has no session, so no step-up window: long after the owner's, it still acts.
    app.clock.advance(20 * 60);

    let reset = app.reset_2fa(&key, &t.member_id).await;
    assert_eq!(reset.status(), StatusCode::OK);
    assert_eq!(reset.body().await["user"]["two_factor_enabled"], false);
    // As after an admin's reset: the sessions end, the email names the key's creator, and
    // the password alone signs in.
    assert_error(
        app.me(&t.member).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    app.mail_containing(
        "member@example.com",
        "Ada Lovelace, an administrator of Acme",
    )
    .await;
    let body = app.login("member@example.com", PASSWORD).await.body().await;
    assert_eq!(body["status"], "authenticated", "{body}");
    let event = latest(&app, &t.owner, "two_factor_reset").await;
    assert_eq!(event["email"], "member@example.com");
    assert_eq!(event["detail"]["admin_email"], "owner@example.com");
    assert_eq!(event["detail"]["api_key_id"], key_id);

    let deleted = app.delete_user(&key, &t.member_id).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let users = app.users(&t.owner).await.body().await;
    assert!(
        users
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["email"] != "member@example.com"),
        "{users}"
    );
    assert_error(
        app.login("member@example.com", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    let event = latest(&app, &t.owner, "user_deleted").await;
    assert_eq!(event["email"], "owner@example.com", "the creator acted");
    assert_eq!(event["detail"]["target_email"], "member@example.com");
    assert_eq!(event["detail"]["api_key_id"], key_id);
}

async fn users_write_acts_only_as_far_as_the_keys_creator_may(mut app: TestApp) {
    let t = app.team().await;
    // Without the grant: refused, naming it.
    let (reader, _) = app
        .new_key(&t.owner, &["users:read", "policy:write"], &[])
        .await;
    assert_lacks(app.reset_2fa(&reader, &t.member_id).await, "users:write").await;
    assert_lacks(app.delete_user(&reader, &t.member_id).await, "users:write").await;
    // The admin's key: never on the owner, never on the admin themselves.
    let (key, _) = app.new_key(&t.admin, &["users:write"], &[]).await;
    for target in [&t.owner_id, &t.admin_id] {
        assert_error(
            app.reset_2fa(&key, target).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
        assert_error(
            app.delete_user(&key, target).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
    }
    // On the member it may (who has no 2FA to reset: the permission came first).
    assert_error(
        app.reset_2fa(&key, &t.member_id).await,
        StatusCode::CONFLICT,
        "not_enabled",
    )
    .await;
    // The admin turns their own 2FA off: admins need it for the recovery powers, so their
    // key does no more than they could.
    let off = app.disable_2fa(&t.admin, PASSWORD).await;
    assert_eq!(off.status(), StatusCode::OK);
    assert_lacks(app.reset_2fa(&key, &t.member_id).await, "users:write").await;
    assert_lacks(app.delete_user(&key, &t.member_id).await, "users:write").await;
    // Where the deployment lets admins without 2FA use them, the key may again.
    app.reconfigure(|c| c.security.admin_requires_two_factor = false)
        .await;
    let deleted = app.delete_user(&key, &t.member_id).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let event = latest(&app, &t.owner, "user_deleted").await;
    assert_eq!(event["email"], "admin@example.com");
}

/// The account's events of `kind`, newest first.
async fn all_of(app: &TestApp, owner: &str, kind: &str) -> Vec<Value> {
    let events = app.account_events(owner, "").await.body().await;
    events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .cloned()
        .collect()
}

async fn refusals_to_act_on_the_owner_or_oneself_are_audited(app: TestApp) {
    let t = app.team().await;
    let (key, key_id) = app.new_key(&t.admin, &["users:write"], &[]).await;
    // Eight refusals at once.
    let racing: Vec<_> = (0..8)
        .map(|_| {
            let (api, key, owner) = (app.api(), key.clone(), t.owner_id.clone());
            tokio::spawn(async move { api.delete_user(&key, &owner).await })
        })
        .collect();
    for refusal in racing {
        assert_error(refusal.await.unwrap(), StatusCode::FORBIDDEN, "forbidden").await;
    }
    // As the key's other refusals: in the creator's name, naming the key, the reason and
    // the user; at most once a minute per key, counted under a row lock, so eight racing
    // refusals are one event.
    let refused = all_of(&app, &t.owner, "api_key_refused").await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["email"], "admin@example.com");
    assert_eq!(refused[0]["detail"]["api_key_id"], key_id);
    assert_eq!(refused[0]["detail"]["reason"], "the_owner");
    assert_eq!(refused[0]["detail"]["target_id"], t.owner_id.as_str());
    // A minute on, the next one is audited: the key's creator themselves.
    app.clock.advance(61);
    assert_error(
        app.reset_2fa(&key, &t.admin_id).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let refused = all_of(&app, &t.owner, "api_key_refused").await;
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert_eq!(refused[0]["detail"]["reason"], "yourself");
    assert_eq!(refused[0]["detail"]["target_id"], t.admin_id.as_str());
    // The admin in their session is refused alike, audited as any refused request of a
    // session (`access_denied`).
    assert!(all_of(&app, &t.owner, "access_denied").await.is_empty());
    assert_error(
        app.reset_2fa(&t.admin, &t.owner_id).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let denied = all_of(&app, &t.owner, "access_denied").await;
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0]["email"], "admin@example.com");
    assert_eq!(denied[0]["detail"]["reason"], "the_owner");
    assert_eq!(denied[0]["detail"]["target_id"], t.owner_id.as_str());
}

async fn a_key_with_policy_write_sets_the_teams_policies(app: TestApp) {
    let owner = app.owner_with_2fa("owner@example.com").await;
    app.join(&owner, "member@example.com", "member").await;
    let (key, key_id) = app.new_key(&owner, &["policy:write"], &[]).await;
    let (other, _) = app.new_key(&owner, &["users:write"], &[]).await;
    let (reader, _) = app.new_key(&owner, &["account:read"], &[]).await;
    app.clock.advance(20 * 60);

    let policy = json!({"required": true, "grace_period_until": "2099-01-01"});
    let response = app.set_2fa_policy(&key, policy).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.body().await["status"], "required");
    // The members are told, in the creator's name, and have the grace period.
    let told = app
        .mail_containing(
            "member@example.com",
            "now requires two-factor authentication",
        )
        .await;
    assert!(told.text.contains("Ada Lovelace"), "{}", told.text);
    let body = app.login("member@example.com", PASSWORD).await.body().await;
    assert_eq!(body["status"], "authenticated", "{body}");
    let member = body["session_token"].as_str().unwrap();
    assert_eq!(app.me_body(member).await["enforcement"]["status"], "grace");
    let event = latest(&app, &owner, "two_factor_policy_changed").await;
    assert_eq!(event["email"], "owner@example.com");
    assert_eq!(event["detail"]["api_key_id"], key_id);

    let forbid = json!({"trusted_devices": "forbidden"});
    let response = app.put(TRUST_POLICY, forbid, Some(&key)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.body().await,
        json!({"trusted_devices": "forbidden"})
    );
    let event = latest(&app, &owner, "trusted_devices_policy_changed").await;
    assert_eq!(event["detail"]["api_key_id"], key_id);

    // Without the grant: refused, naming it, and nothing changes.
    let allow = json!({"trusted_devices": "allowed"});
    assert_lacks(
        app.put(TRUST_POLICY, allow, Some(&other)).await,
        "policy:write",
    )
    .await;
    let off = json!({"required": false});
    assert_lacks(app.set_2fa_policy(&other, off).await, "policy:write").await;
    let account = app.account(&reader).await.body().await;
    assert_eq!(account["two_factor_policy"]["status"], "required");
    assert_eq!(account["trusted_devices"], "forbidden");
}

async fn keys_still_never_change_sso_nor_invite_an_admin(app: TestApp) {
    let owner = app.owner_with_2fa("owner@example.com").await;
    let grants = ["users:write", "policy:write", "invitations:write"];
    let (key, key_id) = app.new_key(&owner, &grants, &[]).await;
    // The SSO settings hold the provider's secret: a person's, signed in (a key is no
    // session there).
    let sso = json!({"issuer": "https://id.example.com", "client_id": "tessera",
                     "client_secret": "s3cret", "email_domains": ["example.com"]});
    let body = assert_error(
        app.put("/api/v1/account/sso", sso, Some(&key)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
    )
    .await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("signed-in session"), "{message}");
    // Inviting an admin stays a person's recovery power, whatever the key holds; refused,
    // it is audited.
    assert_error(
        app.invite(&key, "eve@example.com", "admin").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let refused = all_of(&app, &owner, "api_key_refused").await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["detail"]["api_key_id"], key_id);
    assert_eq!(refused[0]["detail"]["reason"], "api_key");
    assert_eq!(refused[0]["detail"]["invited_role"], "admin");
    // The owner, in a session past its step-up window, is sent to re-authenticate: audited
    // the same way, as the session's refusal.
    app.clock.advance(16 * 60);
    assert_error(
        app.invite(&owner, "eve@example.com", "admin").await,
        StatusCode::FORBIDDEN,
        "reauthentication_required",
    )
    .await;
    let denied = all_of(&app, &owner, "access_denied").await;
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0]["detail"]["reason"], "reauthentication_required");
    assert_eq!(denied[0]["detail"]["invited_role"], "admin");
}

async fn a_revoked_key_is_refused_for_the_recovery_powers(app: TestApp) {
    let owner = app.owner_with_2fa("owner@example.com").await;
    let (member_id, _) = app.join(&owner, "member@example.com", "member").await;
    let (key, id) = app
        .new_key(&owner, &["users:write", "policy:write"], &[])
        .await;
    let allow = json!({"trusted_devices": "allowed"});
    let response = app.put(TRUST_POLICY, allow, Some(&key)).await;
    assert_eq!(response.status(), StatusCode::OK, "the key works");
    assert_eq!(
        app.revoke_key(&owner, &id).await.status(),
        StatusCode::NO_CONTENT
    );
    let forbid = json!({"trusted_devices": "forbidden"});
    for response in [
        app.reset_2fa(&key, &member_id).await,
        app.delete_user(&key, &member_id).await,
        app.set_2fa_policy(&key, json!({"required": true})).await,
        app.put(TRUST_POLICY, forbid, Some(&key)).await,
    ] {
        let body = assert_error(response, StatusCode::UNAUTHORIZED, "invalid_api_key").await;
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("revoked"), "{message}");
    }
    let users = app.users(&owner).await.body().await;
    assert_eq!(users.as_array().unwrap().len(), 2, "no one was deleted");
    let account = app.account(&owner).await.body().await;
    assert_eq!(account["two_factor_policy"]["status"], "optional");
    assert_eq!(account["trusted_devices"], "allowed");
}
