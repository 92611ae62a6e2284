//! The team pages as a browser without JavaScript uses them: the owner's settings and user
//! list, the invitee's link, the forced-setup page of a restricted user, the activity logs.

use crate::helpers::{PASSWORD, TestApp};
use crate::pages::{
    browser, csrf_field, enable_on_page, get_page, location, page_sign_in, post_form,
};
use crate::team::{invitation_token, join};
use reqwest::{Client, StatusCode};

backend_tests!(
    an_owner_runs_the_team_from_the_pages,
    a_restricted_user_can_only_set_up_2fa_on_the_pages,
    activity_pages_show_the_users_and_the_teams_events,
    team_forms_without_their_csrf_token_are_refused,
);

/// A browser signed in through the sign-in page.
async fn signed_in_browser(app: &TestApp, email: &str) -> Client {
    let b = browser();
    let response = page_sign_in(&b, app, email, PASSWORD).await;
    assert_eq!(location(&response), "/", "signed in");
    b
}

async fn an_owner_runs_the_team_from_the_pages(app: TestApp) {
    app.signup("owner@example.com").await;
    let owner = signed_in_browser(&app, "owner@example.com").await;
    let (_, home) = get_page(&owner, &app, "/").await;
    assert!(
        home.contains("href=\"/account/users\""),
        "managers see the team link"
    );

    // Require 2FA with a grace period.
    let (status, html) = get_page(&owner, &app, "/account/settings").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<span class=\"badge\" id=\"policy-status\">Optional</span>"));
    assert!(html.contains("<label for=\"grace_period_until\">"));
    let response = post_form(
        &owner,
        &app,
        "/account/settings",
        &[
            ("csrf", &csrf_field(&html)),
            ("required", "on"),
            ("grace_period_until", "1999-12-31"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("must be in the future"),
        "shown next to the field"
    );
    assert!(html.contains("Optional"), "nothing changed");
    let response = post_form(
        &owner,
        &app,
        "/account/settings",
        &[
            ("csrf", &csrf_field(&html)),
            ("required", "on"),
            ("grace_period_until", "2099-01-01"),
        ],
    )
    .await;
    assert_eq!(location(&response), "/account/settings?notice=saved");
    let (_, html) = get_page(&owner, &app, "/account/settings?notice=saved").await;
    assert!(html.contains("id=\"policy-status\">Required</span>"));
    assert!(html.contains("value=\"2099-01-01\""));
    assert!(html.contains("Saved."));

    // Invite a member.
    let (_, html) = get_page(&owner, &app, "/account/users").await;
    assert!(html.contains("owner@example.com"));
    let response = post_form(
        &owner,
        &app,
        "/account/users/invite",
        &[
            ("csrf", &csrf_field(&html)),
            ("email", "grace@example.com"),
            ("name", "Grace Hopper"),
            ("role", "member"),
        ],
    )
    .await;
    assert_eq!(location(&response), "/account/users?notice=invited");
    let (_, html) = get_page(&owner, &app, "/account/users").await;
    assert!(html.contains("Open invitations") && html.contains("grace@example.com"));
    let again = post_form(
        &owner,
        &app,
        "/account/users/invite",
        &[
            ("csrf", &csrf_field(&html)),
            ("email", "grace@example.com"),
            ("name", "Grace Hopper"),
            ("role", "member"),
        ],
    )
    .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert!(
        again
            .text()
            .await
            .unwrap()
            .contains("already has an open invitation")
    );

    // The invitee follows the link, chooses a password, and is signed in.
    let token = invitation_token(&app, "grace@example.com", 1).await;
    let invitee = browser();
    let (status, html) = get_page(&invitee, &app, &format!("/invitations/{token}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Join Acme") && html.contains("<strong>member</strong>"));
    let short = post_form(
        &invitee,
        &app,
        "/invitations/accept",
        &[
            ("csrf", &csrf_field(&html)),
            ("token", &token),
            ("name", "Grace Hopper"),
            ("password", "short"),
        ],
    )
    .await;
    assert_eq!(short.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = short.text().await.unwrap();
    assert!(
        html.contains("id=\"password-error\""),
        "the error is next to the field"
    );
    let response = post_form(
        &invitee,
        &app,
        "/invitations/accept",
        &[
            ("csrf", &csrf_field(&html)),
            ("token", &token),
            ("name", "Grace Hopper"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(location(&response), "/");
    let (status, home) = get_page(&invitee, &app, "/").await;
    assert_eq!(status, StatusCode::OK, "grace period: a full session");
    assert!(home.contains("Welcome, Grace"));
    assert!(
        !home.contains("href=\"/account/users\""),
        "members see no team link"
    );
    let (status, _) = get_page(&invitee, &app, "/account/users").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, security) = get_page(&invitee, &app, "/settings/security").await;
    assert!(
        security.contains("Acme requires two-factor authentication. Set it up before 2099-01-01")
    );

    // The member turns 2FA on; the owner resets it, then deletes the member.
    let Some(_) = enable_on_page(&app, &invitee).await else {
        return;
    };
    let (_, html) = get_page(&owner, &app, "/account/users").await;
    assert!(html.contains("Reset 2FA"));
    let member_id = html
        .split("/account/users/")
        .skip(1)
        .find_map(|s| s.split_once("/reset-2fa").map(|(id, _)| id))
        .filter(|id| id.len() == 36)
        .expect("a reset form");
    let response = post_form(
        &owner,
        &app,
        &format!("/account/users/{member_id}/reset-2fa"),
        &[("csrf", &csrf_field(&html))],
    )
    .await;
    assert_eq!(location(&response), "/account/users?notice=reset");
    let (status, _) = get_page(&invitee, &app, "/").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "the member's session ended");
    let (_, html) = get_page(&owner, &app, "/account/users?notice=reset").await;
    assert!(html.contains("Two-factor authentication reset."));
    let response = post_form(
        &owner,
        &app,
        &format!("/account/users/{member_id}/delete"),
        &[("csrf", &csrf_field(&html))],
    )
    .await;
    assert_eq!(location(&response), "/account/users?notice=deleted");
    let (_, html) = get_page(&owner, &app, "/account/users?notice=deleted").await;
    assert!(!html.contains("grace@example.com"));
    assert!(html.contains("User deleted."));
}

async fn a_restricted_user_can_only_set_up_2fa_on_the_pages(app: TestApp) {
    let owner = app.signed_in("owner@example.com").await;
    join(&app, &owner, "member@example.com", "member").await;
    let response = app
        .put(
            "/api/v1/account/two-factor-policy",
            serde_json::json!({"required": true}),
            Some(&owner),
        )
        .await;
    assert_eq!(response.status(), 200);

    let b = signed_in_browser(&app, "member@example.com").await;
    for path in [
        "/",
        "/settings/activity",
        "/account/users",
        "/account/settings",
    ] {
        let response = b.get(app.url(path)).send().await.unwrap();
        assert_eq!(location(&response), "/settings/security", "{path}");
    }
    let (status, html) = get_page(&b, &app, "/settings/security").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Acme requires two-factor authentication. Set it up to continue"));
    assert!(
        !html.contains("href=\"/settings/activity\""),
        "nowhere else to go"
    );
    let Some(_) = enable_on_page(&app, &b).await else {
        return;
    };
    let (status, home) = get_page(&b, &app, "/").await;
    assert_eq!(status, StatusCode::OK, "a full session once 2FA is on");
    assert!(home.contains("Welcome"));
}

async fn activity_pages_show_the_users_and_the_teams_events(app: TestApp) {
    let owner = app.signed_in("owner@example.com").await;
    join(&app, &owner, "member@example.com", "member").await;
    let member = signed_in_browser(&app, "member@example.com").await;
    let (status, html) = get_page(&member, &app, "/settings/activity").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<h1>Your activity</h1>"));
    assert!(html.contains("Joined the team") && html.contains("Signed in"));
    assert!(
        !html.contains("User invited"),
        "only the member's own events"
    );
    let (status, _) = get_page(&member, &app, "/account/activity").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let b = signed_in_browser(&app, "owner@example.com").await;
    let (status, html) = get_page(&b, &app, "/account/activity").await;
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
    let (_, html) = get_page(&b, &app, "/account/activity").await;
    let start = html
        .find("href=\"/account/activity?before=")
        .expect("a link")
        + 6;
    let link = html[start..].split('"').next().unwrap().to_owned();
    let (status, older) = get_page(&b, &app, &link).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        older.contains("Account created"),
        "the oldest event is on a later page"
    );
}

async fn team_forms_without_their_csrf_token_are_refused(app: TestApp) {
    app.signup("owner@example.com").await;
    let b = signed_in_browser(&app, "owner@example.com").await;
    for (path, fields) in [
        ("/account/settings", vec![("required", "on")]),
        (
            "/account/users/invite",
            vec![("email", "x@example.com"), ("name", "X"), ("role", "admin")],
        ),
        (
            "/invitations/accept",
            vec![("token", "t"), ("password", PASSWORD)],
        ),
    ] {
        let response = post_form(&b, &app, path, &fields).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("This form has expired")
        );
    }
    let (_, html) = get_page(&b, &app, "/account/settings").await;
    assert!(html.contains("Optional"), "nothing changed");
}
