//! The team pages: the owner's settings and user list, the invitee's link, the forced-setup
//! page of a restricted user, the activity logs.

use crate::helpers::{PASSWORD, PageBrowser, ResponseExt, TestApp, assert_page};
use reqwest::StatusCode;
use serde_json::json;

backend_tests!(
    an_owner_runs_the_team_from_the_pages,
    a_restricted_user_can_only_set_up_2fa_on_the_pages,
    activity_pages_show_the_users_and_the_teams_events,
    team_forms_without_their_csrf_token_are_refused,
    an_owner_forbids_trusted_devices_on_the_settings_page,
);

async fn an_owner_runs_the_team_from_the_pages(app: TestApp) {
    app.signed_up("owner@example.com").await;
    let owner = app.browser_signed_in("owner@example.com").await;
    let (_, home) = owner.get("/").await;
    assert!(
        home.contains("href=\"/account/users\""),
        "managers see the team link"
    );
    requires_2fa_with_a_grace_period(&owner).await;
    invites_a_member(&owner).await;
    let invitee = the_invitee_joins(&app).await;

    // The member turns 2FA on; the owner resets it, then deletes the member.
    let Some(_) = invitee.enable_2fa(&app).await else {
        return;
    };
    resets_the_members_2fa_and_deletes_them(&owner, &invitee).await;
}

async fn requires_2fa_with_a_grace_period(owner: &PageBrowser) {
    let (status, html) = owner.get("/account/settings").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<span class=\"badge\" id=\"policy-status\">Optional</span>"));
    assert!(html.contains("<label for=\"grace_period_until\">"));
    let past = [("required", "on"), ("grace_period_until", "1999-12-31")];
    let response = owner.submit(&html, "/account/settings", &past).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.html().await;
    assert!(
        html.contains("must be in the future"),
        "shown next to the field"
    );
    assert!(html.contains("Optional"), "nothing changed");
    let future = [("required", "on"), ("grace_period_until", "2099-01-01")];
    let response = owner.submit(&html, "/account/settings", &future).await;
    assert_eq!(response.location(), "/account/settings?notice=saved");
    let (_, html) = owner.get("/account/settings?notice=saved").await;
    assert!(html.contains("id=\"policy-status\">Required</span>"));
    assert!(html.contains("value=\"2099-01-01\""));
    assert!(html.contains("Saved."));
}

async fn invites_a_member(owner: &PageBrowser) {
    let (_, html) = owner.get("/account/users").await;
    assert!(html.contains("owner@example.com"));
    let grace = [
        ("email", "grace@example.com"),
        ("name", "Grace Hopper"),
        ("role", "member"),
    ];
    let response = owner.submit(&html, "/account/users/invite", &grace).await;
    assert_eq!(response.location(), "/account/users?notice=invited");
    let (_, html) = owner.get("/account/users").await;
    assert!(html.contains("Open invitations") && html.contains("grace@example.com"));
    let again = owner.submit(&html, "/account/users/invite", &grace).await;
    assert_page(
        again,
        StatusCode::CONFLICT,
        "already has an open invitation",
    )
    .await;
}

/// The invitee follows the link, chooses a password, and is signed in: their browser.
async fn the_invitee_joins(app: &TestApp) -> PageBrowser {
    let token = app.invitation_token("grace@example.com", 1).await;
    let invitee = app.browser();
    let (status, html) = invitee.get(&format!("/invitations/{token}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Join Acme") && html.contains("<strong>member</strong>"));
    let accept = |password| {
        [
            ("token", token.as_str()),
            ("name", "Grace Hopper"),
            ("password", password),
        ]
    };
    let short = invitee
        .submit(&html, "/invitations/accept", &accept("short"))
        .await;
    assert_eq!(short.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = short.html().await;
    assert!(
        html.contains("id=\"password-error\""),
        "the error is next to the field"
    );
    let response = invitee
        .submit(&html, "/invitations/accept", &accept(PASSWORD))
        .await;
    assert_eq!(response.location(), "/");
    let (status, home) = invitee.get("/").await;
    assert_eq!(status, StatusCode::OK, "grace period: a full session");
    assert!(home.contains("Welcome, Grace"));
    assert!(
        !home.contains("href=\"/account/users\""),
        "members see no team link"
    );
    let (status, _) = invitee.get("/account/users").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, security) = invitee.get("/settings/security").await;
    assert!(
        security.contains("Acme requires two-factor authentication. Set it up before 2099-01-01")
    );
    invitee
}

async fn resets_the_members_2fa_and_deletes_them(owner: &PageBrowser, member: &PageBrowser) {
    let (_, html) = owner.get("/account/users").await;
    assert!(html.contains("Reset 2FA"));
    let member_id = html
        .split("/account/users/")
        .skip(1)
        .find_map(|s| s.split_once("/reset-2fa").map(|(id, _)| id))
        .filter(|id| id.len() == 36)
        .expect("a reset form");
    let reset = format!("/account/users/{member_id}/reset-2fa");
    let response = owner.submit(&html, &reset, &[]).await;
    assert_eq!(response.location(), "/account/users?notice=reset");
    let (status, _) = member.get("/").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "the member's session ended");
    let (_, html) = owner.get("/account/users?notice=reset").await;
    assert!(html.contains("Two-factor authentication reset."));
    let delete = format!("/account/users/{member_id}/delete");
    let response = owner.submit(&html, &delete, &[]).await;
    assert_eq!(response.location(), "/account/users?notice=deleted");
    let (_, html) = owner.get("/account/users?notice=deleted").await;
    assert!(!html.contains("grace@example.com"));
    assert!(html.contains("User deleted."));
}

async fn a_restricted_user_can_only_set_up_2fa_on_the_pages(app: TestApp) {
    let owner = app.signed_in("owner@example.com").await;
    app.join(&owner, "member@example.com", "member").await;
    let response = app.set_2fa_policy(&owner, json!({"required": true})).await;
    assert_eq!(response.status(), 200);

    let b = app.browser_signed_in("member@example.com").await;
    for path in [
        "/",
        "/settings/activity",
        "/account/users",
        "/account/settings",
    ] {
        let response = b.open(path).await;
        assert_eq!(response.location(), "/settings/security", "{path}");
    }
    let (status, html) = b.get("/settings/security").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Acme requires two-factor authentication. Set it up to continue"));
    assert!(
        !html.contains("href=\"/settings/activity\""),
        "nowhere else to go"
    );
    let Some(_) = b.enable_2fa(&app).await else {
        return;
    };
    let (status, home) = b.get("/").await;
    assert_eq!(status, StatusCode::OK, "a full session once 2FA is on");
    assert!(home.contains("Welcome"));
}

async fn activity_pages_show_the_users_and_the_teams_events(app: TestApp) {
    let owner = app.signed_in("owner@example.com").await;
    app.join(&owner, "member@example.com", "member").await;
    let member = app.browser_signed_in("member@example.com").await;
    let (status, html) = member.get("/settings/activity").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<h1>Your activity</h1>"));
    assert!(html.contains("Joined the team") && html.contains("Signed in"));
    assert!(
        !html.contains("User invited"),
        "only the member's own events"
    );
    let (status, _) = member.get("/account/activity").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let b = app.browser_signed_in("owner@example.com").await;
    let (status, html) = b.get("/account/activity").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<h1>Team activity</h1>"));
    assert!(html.contains("User invited") && html.contains("member@example.com"));
    let invited = html.find("User invited").unwrap();
    let joined = html.find("Joined the team").unwrap();
    assert!(joined < invited, "newest first");
    // One page is 25 events: more sign-ins make an "Older events" link that works.
    for _ in 0..25 {
        app.signed_in_again("owner@example.com").await;
    }
    let (_, html) = b.get("/account/activity").await;
    let start = html
        .find("href=\"/account/activity?before=")
        .expect("a link")
        + 6;
    let link = html[start..].split('"').next().unwrap().to_owned();
    let (status, older) = b.get(&link).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        older.contains("Account created"),
        "the oldest event is on a later page"
    );
}

async fn team_forms_without_their_csrf_token_are_refused(app: TestApp) {
    app.signed_up("owner@example.com").await;
    let b = app.browser_signed_in("owner@example.com").await;
    for (path, fields) in [
        ("/account/settings", vec![("required", "on")]),
        ("/account/settings/trusted-devices", vec![]),
        (
            "/account/users/invite",
            vec![("email", "x@example.com"), ("name", "X"), ("role", "admin")],
        ),
        (
            "/invitations/accept",
            vec![("token", "t"), ("password", PASSWORD)],
        ),
    ] {
        let response = b.post_form(path, &fields).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(response.html().await.contains("This form has expired"));
    }
    let (_, html) = b.get("/account/settings").await;
    assert!(html.contains("Optional"), "nothing changed");
    assert!(
        html.contains("id=\"trust-status\">Allowed</span>"),
        "nothing changed"
    );
}

async fn an_owner_forbids_trusted_devices_on_the_settings_page(app: TestApp) {
    let owner_token = app.signed_in("owner@example.com").await;
    let owner = app.browser_signed_in("owner@example.com").await;
    let (_, html) = owner.get("/account/settings").await;
    assert!(html.contains("id=\"trust-status\">Allowed</span>"));
    assert!(html.contains("Let users skip the second step on devices they trust"));
    // The box unticked: forbidden.
    let response = owner
        .submit(&html, "/account/settings/trusted-devices", &[])
        .await;
    assert_eq!(response.location(), "/account/settings?notice=trust_saved");
    let (_, html) = owner.get("/account/settings?notice=trust_saved").await;
    assert!(html.contains("id=\"trust-status\">Forbidden</span>"));
    assert!(html.contains("trusted devices policy updated"));
    let account = app.account(&owner_token).await.body().await;
    assert_eq!(account["trusted_devices"], "forbidden");
    // Ticked again: allowed; both changes are in the team's activity.
    let allowed = [("allowed", "on")];
    let response = owner
        .submit(&html, "/account/settings/trusted-devices", &allowed)
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let account = app.account(&owner_token).await.body().await;
    assert_eq!(account["trusted_devices"], "allowed");
    let (_, html) = owner.get("/account/activity").await;
    assert!(html.contains("Team trusted-devices policy changed"));
    assert!(html.contains("Forbidden") && html.contains("Allowed"));
}
