//! Invitations: sent, listed, revoked, expired, refused, accepted once.

use crate::helpers::{PASSWORD, ResponseExt, TestApp, assert_error, assert_page};
use reqwest::StatusCode;
use serde_json::{Value, json};

backend_tests!(
    an_invited_member_sets_a_password_and_signs_in,
    invitations_are_listed_revoked_and_expire_after_seven_days,
    bad_invitations_get_clear_errors,
    one_invitation_is_accepted_once_under_a_race,
);

/// The emails of a list of users or invitations, in order.
fn emails(list: &Value) -> Vec<&Value> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|u| &u["email"])
        .collect()
}

async fn an_invited_member_sets_a_password_and_signs_in(app: TestApp) {
    let owner = app.signed_in("owner@example.com").await;
    let response = app.invite(&owner, "Grace@Example.com", "member").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let invitation = response.body().await;
    assert_eq!(invitation["email"], "Grace@Example.com");
    assert_eq!(invitation["role"], "member");
    assert_eq!(invitation["status"], "pending");
    assert!(invitation["expires_at"].as_str().is_some());

    let mail = app.mail_to("Grace@Example.com", 1).await;
    assert_eq!(
        mail[0].subject,
        "Ada Lovelace invited you to Acme on Tessera"
    );
    let token = app.invitation_token("Grace@Example.com", 1).await;
    assert_eq!(token.len(), 43, "a 256-bit token");

    // The link's page shows the invitation.
    let page = app.invitation_page(&token).await;
    assert_eq!(page.status(), 200);
    let html = page.html().await;
    assert!(
        html.contains("Acme") && html.contains("Grace@Example.com"),
        "{html}"
    );

    let weak = app.accept_invitation(&token, "short").await;
    assert_error(weak, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
    let response = app
        .accept_invitation_as(&token, PASSWORD, "Grace B. Hopper")
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body = response.body().await;
    assert_eq!(body["user"]["role"], "member");
    assert_eq!(body["user"]["name"], "Grace B. Hopper");
    assert_eq!(body["user"]["two_factor_enabled"], false);

    let member = app.signed_in_again("Grace@Example.com").await;
    let me = app.me(&member).await.body().await;
    assert_eq!(me["account"]["name"], "Acme");
    assert_eq!(me["user"]["role"], "member");

    // Used once: the link now says so, and no longer lists.
    let again = app.accept_invitation(&token, PASSWORD).await;
    assert_error(again, StatusCode::GONE, "invitation_used").await;
    let page = app.invitation_page(&token).await;
    assert_page(page, StatusCode::GONE, "already been used").await;
    let open = app.invitations(&owner).await.body().await;
    assert_eq!(open, json!([]));
    let users = app.users(&owner).await.body().await;
    assert_eq!(emails(&users), ["owner@example.com", "Grace@Example.com"]);
}

async fn invitations_are_listed_revoked_and_expire_after_seven_days(app: TestApp) {
    let owner = app.signed_in("owner@example.com").await;
    let first = app
        .invite(&owner, "a@example.com", "admin")
        .await
        .body()
        .await;
    app.invite(&owner, "b@example.com", "member").await;
    let open = app.invitations(&owner).await.body().await;
    assert_eq!(
        emails(&open),
        ["b@example.com", "a@example.com"],
        "newest first"
    );

    // Revoked: the link stops working, and a new invitation may be sent.
    let id = first["id"].as_str().unwrap();
    let revoked = app.revoke_invitation(&owner, id).await;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let again = app.revoke_invitation(&owner, id).await;
    assert_error(again, StatusCode::NOT_FOUND, "not_found").await;
    let token = app.invitation_token("a@example.com", 1).await;
    let accept = app.accept_invitation(&token, PASSWORD).await;
    assert_error(accept, StatusCode::GONE, "invitation_revoked").await;
    let invited = app.invite(&owner, "a@example.com", "admin").await;
    assert_eq!(invited.status(), 201);

    // Seven days later every link has lapsed; inviting again works.
    app.clock.advance(7 * 24 * 3600);
    let owner = app.signed_in_again("owner@example.com").await;
    let token = app.invitation_token("b@example.com", 1).await;
    let accept = app.accept_invitation(&token, PASSWORD).await;
    assert_error(accept, StatusCode::GONE, "invitation_expired").await;
    let page = app.invitation_page(&token).await;
    assert!(page.html().await.contains("expired"));
    let open = app.invitations(&owner).await.body().await;
    assert_eq!(open, json!([]));
    let invited = app.invite(&owner, "b@example.com", "member").await;
    assert_eq!(invited.status(), 201);
    let token = app.invitation_token("b@example.com", 2).await;
    let accept = app.accept_invitation(&token, PASSWORD).await;
    assert_eq!(accept.status(), StatusCode::CREATED);
}

async fn bad_invitations_get_clear_errors(app: TestApp) {
    let owner = app.signed_in("owner@example.com").await;
    let invited = app.invite(&owner, "dup@example.com", "member").await;
    assert_eq!(invited.status(), 201);
    let dup = app.invite(&owner, "DUP@example.com", "admin").await;
    assert_error(dup, StatusCode::CONFLICT, "invitation_exists").await;
    // Another team may invite the same person: invitations do not cross accounts.
    let rival = app.signed_in("rival@example.com").await;
    let invited = app.invite(&rival, "dup@example.com", "member").await;
    assert_eq!(invited.status(), 201);
    // Someone else's account holds this email already: the answer is the same as for a new
    // address (it must not tell which emails are registered); the link fails when used.
    app.signed_up("taken@example.com").await;
    let taken = app.invite(&owner, "taken@example.com", "member").await;
    assert_eq!(taken.status(), 201);
    let token = app.invitation_token("taken@example.com", 1).await;
    let accept = app.accept_invitation(&token, PASSWORD).await;
    assert_error(accept, StatusCode::CONFLICT, "email_taken").await;
    // A member of the inviting team is no secret to its manager.
    let member = app.invite(&owner, "owner@example.com", "member").await;
    assert_error(member, StatusCode::CONFLICT, "already_member").await;

    for (email, role, field) in [
        ("new@example.com", "owner", "role"),
        ("new@example.com", "superuser", "role"),
        ("not an email", "member", "email"),
    ] {
        let body = assert_error(
            app.invite(&owner, email, role).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
        )
        .await;
        assert_eq!(body["error"]["field"], field);
    }
    let no_name = json!({"email": "n@example.com", "name": " ", "role": "member"});
    let no_name = app.invite_with(&owner, no_name).await;
    assert_error(
        no_name,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    )
    .await;
    nothing_unknown_is_found(&app, &owner).await;
}

/// Unknown invitations and users, and users of another account, are not found.
async fn nothing_unknown_is_found(app: &TestApp, owner: &str) {
    let not_found = async |response| {
        assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    };
    for id in ["01900000-0000-7000-8000-000000000000", "nope"] {
        not_found(app.revoke_invitation(owner, id).await).await;
        not_found(app.delete_user(owner, id).await).await;
    }
    let unknown = "01900000-0000-7000-8000-000000000000";
    not_found(app.reset_2fa(owner, unknown).await).await;
    not_found(app.accept_invitation("no-such-token", PASSWORD).await).await;
    let page = app.invitation_page("no-such-token").await;
    assert_eq!(page.status(), 404);

    // A user of another account is not found, not forbidden: ids do not leak across teams.
    let other = app.signed_in("other@example.com").await;
    let owner_id = app.me(owner).await.body().await["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    not_found(app.delete_user(&other, &owner_id).await).await;
}

async fn one_invitation_is_accepted_once_under_a_race(app: TestApp) {
    let owner = app.signed_in("owner@example.com").await;
    let invited = app.invite(&owner, "race@example.com", "member").await;
    assert_eq!(invited.status(), 201);
    let token = app.invitation_token("race@example.com", 1).await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (api, token) = (app.api(), token.clone());
            let password = format!("{PASSWORD} {i}");
            tokio::spawn(async move { api.accept_invitation(&token, &password).await.status() })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::GONE)
    );
    let users = app.users(&owner).await.body().await;
    assert_eq!(users.as_array().unwrap().len(), 2);
}
