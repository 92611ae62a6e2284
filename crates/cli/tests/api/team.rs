//! Running a team through the API: invitations, who may do what, deleting users, an admin's
//! reset of a user's 2FA, and the account's audit log.

use crate::helpers::{PASSWORD, TestApp, assert_error};
use reqwest::StatusCode;
use serde_json::{Value, json};

backend_tests!(
    an_invited_member_sets_a_password_and_signs_in,
    invitations_are_listed_revoked_and_expire_after_seven_days,
    bad_invitations_get_clear_errors,
    every_role_may_do_what_the_spec_allows_and_nothing_else,
    a_deleted_user_is_gone_and_comes_back_fresh_when_invited_again,
    an_admin_reset_voids_the_factors_and_ends_the_sessions,
    the_account_log_lists_team_events_newest_first_in_pages,
    one_invitation_is_accepted_once_under_a_race,
);

/// The token of the newest invitation emailed to `to` (read from the link in the email).
pub async fn invitation_token(app: &TestApp, to: &str, nth: usize) -> String {
    let mail = app.mail_to(to, nth).await;
    let text = &mail[nth - 1].text;
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
    let sent = app.mail_to(email, 0).await.len();
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

    let member = app.signed_in_again("grace@example.com").await;
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

async fn every_role_may_do_what_the_spec_allows_and_nothing_else(app: TestApp) {
    let t = team(&app).await;
    // Reads and account-wide changes: owner and admin yes, member no.
    for (who, token) in [
        ("owner", &t.owner),
        ("admin", &t.admin),
        ("member", &t.member),
    ] {
        let allowed = who != "member";
        for path in [
            "/api/v1/account",
            "/api/v1/account/users",
            "/api/v1/account/invitations",
            "/api/v1/account/events",
        ] {
            let response = app.get(path, Some(token)).await;
            if allowed {
                assert_eq!(response.status(), 200, "{who} GET {path}");
            } else {
                assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
            }
        }
        let policy = app
            .put(
                "/api/v1/account/two-factor-policy",
                json!({"required": false}),
                Some(token),
            )
            .await;
        let invited = invite(&app, token, &format!("{who}-invitee@example.com"), "member").await;
        if allowed {
            assert_eq!(policy.status(), 200, "{who} sets the policy");
            assert_eq!(invited.status(), 201, "{who} invites");
        } else {
            assert_error(policy, StatusCode::FORBIDDEN, "forbidden").await;
            assert_error(invited, StatusCode::FORBIDDEN, "forbidden").await;
        }
    }
    // Revoking an invitation: a member may not.
    let open: Value = app
        .get("/api/v1/account/invitations", Some(&t.owner))
        .await
        .json()
        .await
        .unwrap();
    let invitation = format!(
        "/api/v1/account/invitations/{}",
        open[0]["id"].as_str().unwrap()
    );
    assert_error(
        app.delete(&invitation, Some(&t.member)).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_eq!(app.delete(&invitation, Some(&t.admin)).await.status(), 204);

    // Acting on users: (actor, target, allowed). Resets answer `not_enabled` when allowed,
    // as nobody here has 2FA: the permission check comes first.
    let reset = |id: &str| format!("/api/v1/account/users/{id}/two-factor/reset");
    let cases = [
        ("member", &t.member, &t.admin_id, false),
        ("member", &t.member, &t.owner_id, false),
        ("member", &t.member, &t.member_id, false),
        ("admin", &t.admin, &t.owner_id, false),
        ("admin", &t.admin, &t.admin_id, false),
        ("owner", &t.owner, &t.owner_id, false),
        ("admin", &t.admin, &t.member_id, true),
        ("owner", &t.owner, &t.admin_id, true),
    ];
    for (who, token, target, allowed) in cases {
        let response = app.post(&reset(target), json!({}), Some(token)).await;
        if allowed {
            assert_error(response, StatusCode::CONFLICT, "not_enabled").await;
        } else {
            let body = assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
            assert!(body["error"]["message"].as_str().is_some(), "{who}");
        }
        if !allowed {
            let path = format!("/api/v1/account/users/{target}");
            assert_error(
                app.delete(&path, Some(token)).await,
                StatusCode::FORBIDDEN,
                "forbidden",
            )
            .await;
        }
    }
    // The allowed deletions, last: the admin deletes the member, the owner the admin.
    let member = format!("/api/v1/account/users/{}", t.member_id);
    assert_eq!(app.delete(&member, Some(&t.admin)).await.status(), 204);
    let admin = format!("/api/v1/account/users/{}", t.admin_id);
    assert_eq!(app.delete(&admin, Some(&t.owner)).await.status(), 204);
    let users: Value = app
        .get("/api/v1/account/users", Some(&t.owner))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(users.as_array().unwrap().len(), 1);
}

async fn a_deleted_user_is_gone_and_comes_back_fresh_when_invited_again(app: TestApp) {
    let owner = app.signed_in("owner@example.com").await;
    let (id, member) = join(&app, &owner, "lost@example.com", "member").await;
    let Some(_) = crate::two_factor::enable_2fa(&app, &member).await else {
        return;
    };
    // Locked out too: deletion forgets that as well.
    app.lock_out("lost@example.com").await;

    let path = format!("/api/v1/account/users/{id}");
    assert_eq!(app.delete(&path, Some(&owner)).await.status(), 204);
    assert_error(
        app.get("/api/v1/me", Some(&member)).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    assert_error(
        app.login("lost@example.com", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    assert_error(
        app.delete(&path, Some(&owner)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    // Mailgun's path back: invited again, a fresh user with no 2FA.
    let (new_id, token) = join(&app, &owner, "lost@example.com", "member").await;
    assert_ne!(new_id, id);
    let me: Value = app
        .get("/api/v1/me", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["two_factor"]["enabled"], false);
    assert_eq!(me["two_factor"]["recovery_codes_remaining"], 0);
}

async fn an_admin_reset_voids_the_factors_and_ends_the_sessions(app: TestApp) {
    let t = team(&app).await;
    let Some((secret, codes, paper_key)) = crate::two_factor::enable_2fa(&app, &t.member).await
    else {
        return;
    };
    let path = format!("/api/v1/account/users/{}/two-factor/reset", t.member_id);
    let response = app.post(&path, json!({}), Some(&t.admin)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["two_factor_enabled"], false);
    assert_error(
        app.get("/api/v1/me", Some(&t.member)).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let mail = app.mail_to("member@example.com", 3).await;
    let reset = mail.last().unwrap();
    assert_eq!(
        reset.subject,
        "Your Tessera two-factor authentication was reset"
    );
    assert!(
        reset
            .text
            .contains("Grace Hopper, an administrator of Acme"),
        "{}",
        reset.text
    );

    // Password only now; the old secret, codes and paper key are void.
    let body: Value = app
        .login("member@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "authenticated");
    let token = body["session_token"].as_str().unwrap();
    let me: Value = app
        .get("/api/v1/me", Some(token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["two_factor"]["enabled"], false);
    assert_eq!(me["two_factor"]["recovery_codes_remaining"], 0);
    let recover = app
        .post(
            "/api/v1/recover",
            json!({"email": "member@example.com", "paper_key": paper_key}),
            None,
        )
        .await;
    assert_error(recover, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let store = app.store().await;
    let user = store
        .find_user_by_email("member@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(store.get_totp_factor(user.user.id).await.unwrap().is_none());
    assert!(!secret.is_empty() && codes.len() == 10);

    let again = app.post(&path, json!({}), Some(&t.owner)).await;
    assert_error(again, StatusCode::CONFLICT, "not_enabled").await;
}

async fn the_account_log_lists_team_events_newest_first_in_pages(app: TestApp) {
    let t = team(&app).await;
    app.put(
        "/api/v1/account/two-factor-policy",
        json!({"required": true, "grace_period_until": "2099-01-01"}),
        Some(&t.owner),
    )
    .await;
    let path = format!("/api/v1/account/users/{}", t.member_id);
    assert_eq!(app.delete(&path, Some(&t.admin)).await.status(), 204);
    // Another account's events never show.
    app.signed_in("stranger@example.com").await;

    let page: Value = app
        .get("/api/v1/account/events?limit=2", Some(&t.owner))
        .await
        .json()
        .await
        .unwrap();
    let kinds: Vec<_> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["kind"])
        .collect();
    assert_eq!(kinds, ["user_deleted", "two_factor_policy_changed"]);
    let deleted = &page["events"][0];
    assert_eq!(deleted["email"], "admin@example.com");
    assert_eq!(deleted["detail"]["target_email"], "member@example.com");
    let before = page["next_before"].as_i64().unwrap();
    let rest: Value = app
        .get(
            &format!("/api/v1/account/events?before={before}&limit=100"),
            Some(&t.owner),
        )
        .await
        .json()
        .await
        .unwrap();
    let kinds: Vec<_> = rest["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"invitation_accepted"), "{kinds:?}");
    assert!(kinds.contains(&"user_invited"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"signup"));
    assert!(rest["next_before"].is_null());
    let all = [
        page["events"].as_array().unwrap().clone(),
        rest["events"].as_array().unwrap().clone(),
    ]
    .concat();
    assert!(all.iter().all(|e| e["email"] != "stranger@example.com"));
    let ids: Vec<_> = all.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");

    let bad = app
        .get("/api/v1/account/events?limit=0", Some(&t.owner))
        .await;
    assert_error(bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
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
