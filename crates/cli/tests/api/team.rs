//! Running a team through the API: invitations, who may do what, deleting users, an admin's
//! reset of a user's 2FA, and the account's audit log.

use crate::helpers::{PASSWORD, TestApp, assert_error};
use reqwest::StatusCode;
use serde_json::{Value, json};

backend_tests!(
    an_invited_member_sets_a_password_and_signs_in,
    invitations_are_listed_revoked_and_expire_after_seven_days,
    bad_invitations_get_clear_errors,
    one_invitation_is_accepted_once_under_a_race,
);

/// The token of the `nth` invitation emailed to `to` (read from the link in the email).
pub async fn invitation_token(app: &TestApp, to: &str, nth: usize) -> String {
    let mut invitations = Vec::new();
    for _ in 0..600 {
        invitations = app
            .mail_to(to, 0)
            .await
            .into_iter()
            .filter(|m| m.text.contains("/invitations/"))
            .collect();
        if invitations.len() >= nth {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let text = &invitations[nth - 1].text;
    let start = text.find("/invitations/").expect("a link") + "/invitations/".len();
    text[start..]
        .split(|c: char| c.is_whitespace() || c == '>')
        .next()
        .unwrap()
        .to_owned()
}

pub async fn invite(app: &TestApp, token: &str, email: &str, role: &str) -> reqwest::Response {
    app.post(
        "/api/v1/account/invitations",
        json!({"email": email, "name": "Grace Hopper", "role": role}),
        Some(token),
    )
    .await
}

/// Invites `email` into the owner's account with `role`, accepts, signs in:
/// (user id, session token).
pub async fn join(app: &TestApp, owner: &str, email: &str, role: &str) -> (String, String) {
    let sent = app
        .mail_to(email, 0)
        .await
        .iter()
        .filter(|m| m.text.contains("/invitations/"))
        .count();
    assert_eq!(invite(app, owner, email, role).await.status(), 201);
    let token = invitation_token(app, email, sent + 1).await;
    let response = app
        .post(
            "/api/v1/invitations/accept",
            json!({"token": token, "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    let id = body["user"]["id"].as_str().unwrap().to_owned();
    (id, app.signed_in_again(email).await)
}

/// An account with an owner, an admin and a member, each signed in.
pub struct Team {
    pub owner: String,
    pub owner_id: String,
    pub admin: String,
    pub admin_id: String,
    pub member: String,
    pub member_id: String,
}

pub async fn team(app: &TestApp) -> Team {
    let owner = app.signed_in("owner@example.com").await;
    let me: Value = app
        .get("/api/v1/me", Some(&owner))
        .await
        .json()
        .await
        .unwrap();
    let (admin_id, admin) = join(app, &owner, "admin@example.com", "admin").await;
    let (member_id, member) = join(app, &owner, "member@example.com", "member").await;
    Team {
        owner_id: me["user"]["id"].as_str().unwrap().to_owned(),
        owner,
        admin,
        admin_id,
        member,
        member_id,
    }
}

async fn an_invited_member_sets_a_password_and_signs_in(app: TestApp) {
    let owner = app.signed_in("owner@example.com").await;
    let response = invite(&app, &owner, "Grace@Example.com", "member").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let invitation: Value = response.json().await.unwrap();
    assert_eq!(invitation["email"], "Grace@Example.com");
    assert_eq!(invitation["role"], "member");
    assert_eq!(invitation["status"], "pending");
    assert!(invitation["expires_at"].as_str().is_some());

    let mail = app.mail_to("Grace@Example.com", 1).await;
    assert_eq!(
        mail[0].subject,
        "Ada Lovelace invited you to Acme on Tessera"
    );
    let token = invitation_token(&app, "Grace@Example.com", 1).await;
    assert_eq!(token.len(), 43, "a 256-bit token");

    // The link's page shows the invitation.
    let page = app.get(&format!("/invitations/{token}"), None).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Acme") && html.contains("Grace@Example.com"),
        "{html}"
    );

    let weak = app
        .post(
            "/api/v1/invitations/accept",
            json!({"token": token, "password": "short"}),
            None,
        )
        .await;
    assert_error(weak, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
    let response = app
        .post(
            "/api/v1/invitations/accept",
            json!({"token": token, "password": PASSWORD, "name": "Grace B. Hopper"}),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["role"], "member");
    assert_eq!(body["user"]["name"], "Grace B. Hopper");
    assert_eq!(body["user"]["two_factor_enabled"], false);

    let member = app.signed_in_again("Grace@Example.com").await;
    let me: Value = app
        .get("/api/v1/me", Some(&member))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["account"]["name"], "Acme");
    assert_eq!(me["user"]["role"], "member");

    // Used once: the link now says so, and no longer lists.
    let again = app
        .post(
            "/api/v1/invitations/accept",
            json!({"token": token, "password": PASSWORD}),
            None,
        )
        .await;
    assert_error(again, StatusCode::GONE, "invitation_used").await;
    let page = app.get(&format!("/invitations/{token}"), None).await;
    assert_eq!(page.status(), StatusCode::GONE);
    assert!(page.text().await.unwrap().contains("already been used"));
    let open: Value = app
        .get("/api/v1/account/invitations", Some(&owner))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(open, json!([]));
    let users: Value = app
        .get("/api/v1/account/users", Some(&owner))
        .await
        .json()
        .await
        .unwrap();
    let emails: Vec<_> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| &u["email"])
        .collect();
    assert_eq!(emails, ["owner@example.com", "Grace@Example.com"]);
}

async fn invitations_are_listed_revoked_and_expire_after_seven_days(app: TestApp) {
    let owner = app.signed_in("owner@example.com").await;
    let first: Value = invite(&app, &owner, "a@example.com", "admin")
        .await
        .json()
        .await
        .unwrap();
    invite(&app, &owner, "b@example.com", "member").await;
    let open: Value = app
        .get("/api/v1/account/invitations", Some(&owner))
        .await
        .json()
        .await
        .unwrap();
    let emails: Vec<_> = open
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["email"])
        .collect();
    assert_eq!(emails, ["b@example.com", "a@example.com"], "newest first");

    // Revoked: the link stops working, and a new invitation may be sent.
    let id = first["id"].as_str().unwrap();
    let revoked = app
        .delete(&format!("/api/v1/account/invitations/{id}"), Some(&owner))
        .await;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let again = app
        .delete(&format!("/api/v1/account/invitations/{id}"), Some(&owner))
        .await;
    assert_error(again, StatusCode::NOT_FOUND, "not_found").await;
    let token = invitation_token(&app, "a@example.com", 1).await;
    let accept = app
        .post(
            "/api/v1/invitations/accept",
            json!({"token": token, "password": PASSWORD}),
            None,
        )
        .await;
    assert_error(accept, StatusCode::GONE, "invitation_revoked").await;
    assert_eq!(
        invite(&app, &owner, "a@example.com", "admin")
            .await
            .status(),
        201
    );

    // Seven days later every link has lapsed; inviting again works.
    app.clock.advance(7 * 24 * 3600);
    let owner = app.signed_in_again("owner@example.com").await;
    let token = invitation_token(&app, "b@example.com", 1).await;
    let accept = app
        .post(
            "/api/v1/invitations/accept",
            json!({"token": token, "password": PASSWORD}),
            None,
        )
        .await;
    assert_error(accept, StatusCode::GONE, "invitation_expired").await;
    let page = app.get(&format!("/invitations/{token}"), None).await;
    assert!(page.text().await.unwrap().contains("expired"));
    let open: Value = app
        .get("/api/v1/account/invitations", Some(&owner))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(open, json!([]));
    assert_eq!(
        invite(&app, &owner, "b@example.com", "member")
            .await
            .status(),
        201
    );
    let token = invitation_token(&app, "b@example.com", 2).await;
    let accept = app
        .post(
            "/api/v1/invitations/accept",
            json!({"token": token, "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(accept.status(), StatusCode::CREATED);
}

async fn bad_invitations_get_clear_errors(app: TestApp) {
    let owner = app.signed_in("owner@example.com").await;
    assert_eq!(
        invite(&app, &owner, "dup@example.com", "member")
            .await
            .status(),
        201
    );
    let dup = invite(&app, &owner, "DUP@example.com", "admin").await;
    assert_error(dup, StatusCode::CONFLICT, "invitation_exists").await;
    // Another team may invite the same person: invitations do not cross accounts.
    let rival = app.signed_in("rival@example.com").await;
    assert_eq!(
        invite(&app, &rival, "dup@example.com", "member")
            .await
            .status(),
        201
    );
    // Someone else's account holds this email already.
    app.signup("taken@example.com").await;
    let taken = invite(&app, &owner, "taken@example.com", "member").await;
    assert_error(taken, StatusCode::CONFLICT, "email_taken").await;

    for (email, role, field) in [
        ("new@example.com", "owner", "role"),
        ("new@example.com", "superuser", "role"),
        ("not an email", "member", "email"),
    ] {
        let body = assert_error(
            invite(&app, &owner, email, role).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
        )
        .await;
        assert_eq!(body["error"]["field"], field);
    }
    let no_name = app
        .post(
            "/api/v1/account/invitations",
            json!({"email": "n@example.com", "name": " ", "role": "member"}),
            Some(&owner),
        )
        .await;
    assert_error(
        no_name,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    )
    .await;

    for path in [
        "/api/v1/account/invitations/01900000-0000-7000-8000-000000000000",
        "/api/v1/account/invitations/nope",
        "/api/v1/account/users/01900000-0000-7000-8000-000000000000",
        "/api/v1/account/users/nope",
    ] {
        assert_error(
            app.delete(path, Some(&owner)).await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    }
    let reset = app
        .post(
            "/api/v1/account/users/01900000-0000-7000-8000-000000000000/two-factor/reset",
            json!({}),
            Some(&owner),
        )
        .await;
    assert_error(reset, StatusCode::NOT_FOUND, "not_found").await;
    let unknown = app
        .post(
            "/api/v1/invitations/accept",
            json!({"token": "no-such-token", "password": PASSWORD}),
            None,
        )
        .await;
    assert_error(unknown, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(
        app.get("/invitations/no-such-token", None).await.status(),
        404
    );

    // A user of another account is not found, not forbidden: ids do not leak across teams.
    let other = app.signed_in("other@example.com").await;
    let me: Value = app
        .get("/api/v1/me", Some(&owner))
        .await
        .json()
        .await
        .unwrap();
    let path = format!(
        "/api/v1/account/users/{}",
        me["user"]["id"].as_str().unwrap()
    );
    assert_error(
        app.delete(&path, Some(&other)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

async fn one_invitation_is_accepted_once_under_a_race(app: TestApp) {
    let owner = app.signed_in("owner@example.com").await;
    assert_eq!(
        invite(&app, &owner, "race@example.com", "member")
            .await
            .status(),
        201
    );
    let token = invitation_token(&app, "race@example.com", 1).await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let client = app.client.clone();
            let url = app.url("/api/v1/invitations/accept");
            let body = json!({"token": token, "password": format!("{PASSWORD} {i}")});
            tokio::spawn(async move { client.post(url).json(&body).send().await.unwrap().status() })
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
    let users: Value = app
        .get("/api/v1/account/users", Some(&owner))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(users.as_array().unwrap().len(), 2);
}
