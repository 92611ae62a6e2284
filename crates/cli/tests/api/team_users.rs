//! Managing the users of a team through the API: who may do what, deleting users, an
//! admin's reset of a user's 2FA, the account's audit log, and the team's emails through a
//! real SMTP server.

use crate::helpers::{PASSWORD, TestApp, assert_error};
use crate::smtp::SmtpSink;
use crate::team::{invite, join, team};
use reqwest::StatusCode;
use serde_json::{Value, json};

backend_tests!(
    every_role_may_do_what_the_spec_allows_and_nothing_else,
    a_deleted_user_is_gone_and_comes_back_fresh_when_invited_again,
    an_admin_reset_voids_the_factors_and_ends_the_sessions,
    the_account_log_lists_team_events_newest_first_in_pages,
    team_emails_arrive_through_smtp,
);

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
    let reset = app
        .mail_containing("member@example.com", "an administrator of Acme")
        .await;
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

async fn team_emails_arrive_through_smtp(app: TestApp) {
    let Some(sink) = SmtpSink::start().await else {
        return;
    };
    let mut app = app;
    app.use_smtp(&sink).await;
    let owner = app.signed_in("owner@example.com").await;
    assert_eq!(
        invite(&app, &owner, "member@example.com", "member")
            .await
            .status(),
        201
    );
    let invitation = app
        .mail_containing("member@example.com", "/invitations/")
        .await;
    assert_eq!(
        invitation.subject,
        "Ada Lovelace invited you to Acme on Tessera"
    );
    let token = crate::team::invitation_token(&app, "member@example.com", 1).await;
    let accepted = app
        .post(
            "/api/v1/invitations/accept",
            json!({"token": token, "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(accepted.status(), StatusCode::CREATED);
    let member = app.signed_in_again("member@example.com").await;
    let Some(_) = crate::two_factor::enable_2fa(&app, &member).await else {
        return;
    };

    let policy = app
        .put(
            "/api/v1/account/two-factor-policy",
            json!({"required": true, "grace_period_until": "2099-01-01"}),
            Some(&owner),
        )
        .await;
    assert_eq!(policy.status(), 200);
    for to in ["member@example.com", "owner@example.com"] {
        let required = app
            .mail_containing(to, "now requires two-factor authentication")
            .await;
        assert_eq!(
            required.subject,
            "Acme now requires two-factor authentication"
        );
    }

    let me: Value = app
        .get("/api/v1/me", Some(&member))
        .await
        .json()
        .await
        .unwrap();
    let path = format!(
        "/api/v1/account/users/{}/two-factor/reset",
        me["user"]["id"].as_str().unwrap()
    );
    assert_eq!(app.post(&path, json!({}), Some(&owner)).await.status(), 200);
    let reset = app
        .mail_containing(
            "member@example.com",
            "Ada Lovelace, an administrator of Acme",
        )
        .await;
    assert_eq!(
        reset.subject,
        "Your Tessera two-factor authentication was reset"
    );

    // The operator's path: support turns it off after checking who they are.
    let member = app.signed_in_again("member@example.com").await;
    let Some(_) = crate::two_factor::enable_2fa(&app, &member).await else {
        return;
    };
    let (ok, _, err) = crate::cli::admin(
        &app,
        &[
            "disable-2fa",
            "--email",
            "member@example.com",
            "--reason",
            "ticket 81, ID checked",
        ],
    );
    assert!(ok, "{err}");
    let by_support = app
        .mail_containing("member@example.com", "Tessera support")
        .await;
    assert_eq!(
        by_support.subject,
        "Your Tessera two-factor authentication was reset"
    );
    assert!(
        sink.received().len() >= 8,
        "everything went through the SMTP server"
    );
}
