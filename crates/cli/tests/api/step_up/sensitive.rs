//! Each sensitive action that exists today (SPEC §9), refused without a recent
//! authentication, allowed with one, restarting the window, and refused again after it.

use super::{STALE, assert_stale, check_sensitive};
use crate::helpers::{PASSWORD, ResponseExt, TestApp};
use reqwest::StatusCode;
use serde_json::json;

backend_tests!(
    ones_own_sensitive_actions_need_a_recent_authentication,
    turning_2fa_off_needs_a_recent_authentication_and_restarts_it,
    the_teams_recovery_powers_need_a_recent_authentication,
    a_sign_in_counts_as_an_authentication_and_reading_never_needs_one,
);

const OTHER_PASSWORD: &str = "purple monkey dishwasher";

async fn ones_own_sensitive_actions_need_a_recent_authentication(app: TestApp) {
    let Some((ada, factor)) = app.user_with_2fa("ada@example.com").await else {
        return;
    };
    check_sensitive(
        &app,
        "new recovery codes",
        &ada,
        Some(&factor),
        StatusCode::OK,
        async |_| app.regenerate_stepped_up(&ada).await,
    )
    .await;
    check_sensitive(
        &app,
        "change password",
        &ada,
        Some(&factor),
        StatusCode::NO_CONTENT,
        async |i| {
            // Back and forth, so each change knows the current password.
            let (current, new) = match i {
                1 | 3 => (PASSWORD, OTHER_PASSWORD),
                _ => (OTHER_PASSWORD, PASSWORD),
            };
            app.change_password(&ada, current, new).await
        },
    )
    .await;
    // Starting a setup binds an authenticator (review F9): a user without 2FA re-authenticates
    // with the password alone.
    let bob = app.signed_in("bob@example.com").await;
    check_sensitive(
        &app,
        "start 2FA setup",
        &bob,
        None,
        StatusCode::OK,
        async |_| app.setup_2fa(&bob).await,
    )
    .await;
}

async fn turning_2fa_off_needs_a_recent_authentication_and_restarts_it(app: TestApp) {
    let Some((ada, factor)) = app.user_with_2fa("ada@example.com").await else {
        return;
    };
    app.clock.advance(STALE);
    assert_stale(app.disable_2fa_stepped_up(&ada).await, "disable").await;
    assert!(app.me_body(&ada).await["two_factor"]["enabled"] == true);
    app.reauthenticated(&ada, Some(&factor)).await;
    app.clock.advance(10 * 60);
    assert_eq!(app.regenerate_stepped_up(&ada).await.status(), 200);
    app.clock.advance(10 * 60);
    let off = app.disable_2fa_stepped_up(&ada).await;
    assert_eq!(off.status(), 200, "allowed: restarted by the codes");
    assert!(app.me_body(&ada).await["two_factor"]["enabled"] == false);
    // Turning it off restarted the window too: setting up again is allowed 10 minutes later.
    app.clock.advance(10 * 60);
    assert_eq!(app.setup_2fa(&ada).await.status(), 200);
    app.clock.advance(STALE);
    assert_stale(app.disable_2fa_stepped_up(&ada).await, "disable, later").await;
}

async fn the_teams_recovery_powers_need_a_recent_authentication(app: TestApp) {
    let t = app.team().await;
    // Targets made beforehand, one per allowed action: three members to delete, three with
    // 2FA whose 2FA is reset.
    let mut members = Vec::new();
    let mut with_2fa = Vec::new();
    for i in 0..3 {
        let (id, _) = app
            .join(&t.owner, &format!("m{i}@example.com"), "member")
            .await;
        members.push(id);
        let (id, token) = app
            .join(&t.owner, &format!("f{i}@example.com"), "member")
            .await;
        app.enable_2fa(&token).await.expect("oathtool");
        with_2fa.push(id);
    }
    let (owner, factor) = (&t.owner, Some(&t.owner_2fa));
    check_sensitive(
        &app,
        "2FA policy",
        owner,
        factor,
        StatusCode::OK,
        async |i| {
            app.set_2fa_policy(owner, json!({ "required": i % 2 == 1 }))
                .await
        },
    )
    .await;
    check_sensitive(
        &app,
        "invite an admin",
        owner,
        factor,
        StatusCode::CREATED,
        async |i| {
            app.invite(owner, &format!("admin{i}@example.com"), "admin")
                .await
        },
    )
    .await;
    check_sensitive(
        &app,
        "delete a user",
        owner,
        factor,
        StatusCode::NO_CONTENT,
        async |i| app.delete_user(owner, &members[i.clamp(1, 3) - 1]).await,
    )
    .await;
    check_sensitive(
        &app,
        "reset a user's 2FA",
        owner,
        factor,
        StatusCode::OK,
        async |i| app.reset_2fa(owner, &with_2fa[i.clamp(1, 3) - 1]).await,
    )
    .await;
    // Inviting a member is not sensitive; nor is reading the team.
    app.clock.advance(STALE);
    let invited = app.invite(owner, "member2@example.com", "member").await;
    assert_eq!(invited.status(), StatusCode::CREATED);
    assert_eq!(app.users(owner).await.status(), StatusCode::OK);
    // An admin is held to the same window.
    let admin = app
        .signed_in_with_code("admin@example.com", &t.admin_2fa)
        .await;
    app.clock.advance(STALE);
    let refused = app.set_2fa_policy(&admin, json!({"required": false})).await;
    assert_stale(refused, "an admin's policy change").await;
}

async fn a_sign_in_counts_as_an_authentication_and_reading_never_needs_one(app: TestApp) {
    let Some((ada, factor)) = app.user_with_2fa("ada@example.com").await else {
        return;
    };
    // The sign-in (password and code) opened a window of its own.
    app.clock.advance(STALE);
    assert_stale(app.regenerate_stepped_up(&ada).await, "stale").await;
    let fresh = app.signed_in_with_code("ada@example.com", &factor).await;
    assert_eq!(app.regenerate_stepped_up(&fresh).await.status(), 200);
    // The window is the session's: the older session is still refused.
    assert_stale(app.regenerate_stepped_up(&ada).await, "the other session").await;
    // Reading is never refused for it.
    for path in ["/api/v1/me", "/api/v1/me/events", "/api/v1/me/sessions"] {
        assert_eq!(app.get(path, Some(&ada)).await.status(), 200, "{path}");
    }
    let events = app.events(&fresh, "limit=100").await.body().await["events"].clone();
    let denied = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "access_denied")
        .expect("a refusal is audited");
    assert_eq!(denied["detail"]["reason"], "reauthentication_required");
}
