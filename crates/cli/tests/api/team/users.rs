//! Managing the users of a team through the API: who may do what, deleting users, an
//! admin's reset of a user's 2FA, the account's audit log, and the team's emails through a
//! real SMTP server.

use crate::helpers::{PASSWORD, ResponseExt, Team, TestApp, assert_error};
use crate::smtp::SmtpSink;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

backend_tests!(
    every_role_may_do_what_the_spec_allows_and_nothing_else,
    a_deleted_user_is_gone_and_comes_back_fresh_when_invited_again,
    an_admin_reset_voids_the_factors_and_ends_the_sessions,
    the_account_log_lists_team_events_newest_first_in_pages,
    team_emails_arrive_through_smtp,
);

async fn assert_forbidden(response: Response) -> Value {
    assert_error(response, StatusCode::FORBIDDEN, "forbidden").await
}

async fn every_role_may_do_what_the_spec_allows_and_nothing_else(app: TestApp) {
    let t = app.team().await;
    // Reads and account-wide changes: owner and admin yes, member no.
    for (who, token) in [
        ("owner", &t.owner),
        ("admin", &t.admin),
        ("member", &t.member),
    ] {
        let allowed = who != "member";
        let reads = [
            ("account", app.account(token).await),
            ("users", app.users(token).await),
            ("invitations", app.invitations(token).await),
            ("events", app.account_events(token, "").await),
        ];
        for (what, response) in reads {
            if allowed {
                assert_eq!(response.status(), 200, "{who} GET {what}");
            } else {
                assert_forbidden(response).await;
            }
        }
        let policy = app.set_2fa_policy(token, json!({"required": false})).await;
        let invitee = format!("{who}-invitee@example.com");
        let invited = app.invite(token, &invitee, "member").await;
        if allowed {
            assert_eq!(policy.status(), 200, "{who} sets the policy");
            assert_eq!(invited.status(), 201, "{who} invites");
        } else {
            assert_forbidden(policy).await;
            assert_forbidden(invited).await;
        }
    }
    // Revoking an invitation: a member may not.
    let open = app.invitations(&t.owner).await.body().await;
    let invitation = open[0]["id"].as_str().unwrap();
    assert_forbidden(app.revoke_invitation(&t.member, invitation).await).await;
    let revoked = app.revoke_invitation(&t.admin, invitation).await;
    assert_eq!(revoked.status(), 204);
    who_may_act_on_whom(&app, &t).await;
}

/// Resets and deletions, by role of the actor and of the target.
async fn who_may_act_on_whom(app: &TestApp, t: &Team) {
    // (actor, target, allowed). Resets of the member answer `not_enabled` when allowed, as
    // the member has no 2FA: the permission check comes first. (The admin has 2FA: the
    // owner's reset of them ends their session, so it comes last.)
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
        if allowed && target == &t.admin_id {
            continue;
        }
        let response = app.reset_2fa(token, target).await;
        if allowed {
            assert_error(response, StatusCode::CONFLICT, "not_enabled").await;
        } else {
            let body = assert_forbidden(response).await;
            assert!(body["error"]["message"].as_str().is_some(), "{who}");
            assert_forbidden(app.delete_user(token, target).await).await;
        }
    }
    // The allowed deletions, last: the admin deletes the member, the owner the admin.
    let deleted = app.delete_user(&t.admin, &t.member_id).await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(app.reset_2fa(&t.owner, &t.admin_id).await.status(), 200);
    let deleted = app.delete_user(&t.owner, &t.admin_id).await;
    assert_eq!(deleted.status(), 204);
    let users = app.users(&t.owner).await.body().await;
    assert_eq!(users.as_array().unwrap().len(), 1);
}

async fn a_deleted_user_is_gone_and_comes_back_fresh_when_invited_again(app: TestApp) {
    let owner = app.owner_with_2fa("owner@example.com").await;
    let (id, member) = app.join(&owner, "lost@example.com", "member").await;
    let Some(_) = app.enable_2fa(&member).await else {
        return;
    };
    // Locked out too: deletion forgets that as well.
    app.lock_out("lost@example.com").await;

    assert_eq!(app.delete_user(&owner, &id).await.status(), 204);
    let response = app.me(&member).await;
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert_error(
        app.login("lost@example.com", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    let again = app.delete_user(&owner, &id).await;
    assert_error(again, StatusCode::NOT_FOUND, "not_found").await;

    // Mailgun's path back: invited again, a fresh user with no 2FA.
    let (new_id, token) = app.join(&owner, "lost@example.com", "member").await;
    assert_ne!(new_id, id);
    let me = app.me(&token).await.body().await;
    assert_eq!(me["two_factor"]["enabled"], false);
    assert_eq!(me["two_factor"]["recovery_codes_remaining"], 0);
}

async fn an_admin_reset_voids_the_factors_and_ends_the_sessions(app: TestApp) {
    let t = app.team().await;
    let Some(factor) = app.enable_2fa(&t.member).await else {
        return;
    };
    let response = app.reset_2fa(&t.admin, &t.member_id).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.body().await;
    assert_eq!(body["user"]["two_factor_enabled"], false);
    let response = app.me(&t.member).await;
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
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
    let body = app.login("member@example.com", PASSWORD).await.body().await;
    assert_eq!(body["status"], "authenticated");
    let token = body["session_token"].as_str().unwrap();
    let me = app.me(token).await.body().await;
    assert_eq!(me["two_factor"]["enabled"], false);
    assert_eq!(me["two_factor"]["recovery_codes_remaining"], 0);
    let recover = app.recover("member@example.com", &factor.paper_key).await;
    assert_error(recover, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let store = app.store().await;
    let user = store
        .find_user_by_email("member@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(store.get_totp_factor(user.user.id).await.unwrap().is_none());
    assert!(!factor.secret.is_empty() && factor.recovery_codes.len() == 10);

    let again = app.reset_2fa(&t.owner, &t.member_id).await;
    assert_error(again, StatusCode::CONFLICT, "not_enabled").await;
}

async fn the_account_log_lists_team_events_newest_first_in_pages(app: TestApp) {
    let t = app.team().await;
    let policy = json!({"required": true, "grace_period_until": "2099-01-01"});
    app.set_2fa_policy(&t.owner, policy).await;
    let deleted = app.delete_user(&t.admin, &t.member_id).await;
    assert_eq!(deleted.status(), 204);
    // Another account's events never show.
    app.signed_in("stranger@example.com").await;

    let page = app.account_events(&t.owner, "limit=2").await.body().await;
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
    let query = format!("before={before}&limit=100");
    let rest = app.account_events(&t.owner, &query).await.body().await;
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

    let bad = app.account_events(&t.owner, "limit=0").await;
    assert_error(bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
}

const RESET_SUBJECT: &str = "Your Tessera two-factor authentication was reset";

async fn team_emails_arrive_through_smtp(app: TestApp) {
    let Some(sink) = SmtpSink::start().await else {
        return;
    };
    let mut app = app;
    app.use_smtp(&sink).await;
    let owner = app.owner_with_2fa("owner@example.com").await;
    let invited = app.invite(&owner, "member@example.com", "member").await;
    assert_eq!(invited.status(), 201);
    let invitation = app
        .mail_containing("member@example.com", "/invitations/")
        .await;
    assert_eq!(
        invitation.subject,
        "Ada Lovelace invited you to Acme on Tessera"
    );
    let token = app.invitation_token("member@example.com", 1).await;
    let accepted = app.accept_invitation(&token, PASSWORD).await;
    assert_eq!(accepted.status(), StatusCode::CREATED);
    let member = app.signed_in_again("member@example.com").await;
    let Some(_) = app.enable_2fa(&member).await else {
        return;
    };
    let policy = json!({"required": true, "grace_period_until": "2099-01-01"});
    assert_eq!(app.set_2fa_policy(&owner, policy).await.status(), 200);
    for to in ["member@example.com", "owner@example.com"] {
        let required = app
            .mail_containing(to, "now requires two-factor authentication")
            .await;
        assert_eq!(
            required.subject,
            "Acme now requires two-factor authentication"
        );
    }
    let member_id = app.user_id(&member).await;
    assert_eq!(app.reset_2fa(&owner, &member_id).await.status(), 200);
    let reset = app
        .mail_containing(
            "member@example.com",
            "Ada Lovelace, an administrator of Acme",
        )
        .await;
    assert_eq!(reset.subject, RESET_SUBJECT);
    support_turns_2fa_off_and_the_member_is_emailed(&app).await;
    assert!(
        sink.received().len() >= 8,
        "everything went through the SMTP server"
    );
}

/// The operator's path: support turns it off after checking who they are.
async fn support_turns_2fa_off_and_the_member_is_emailed(app: &TestApp) {
    let member = app.signed_in_again("member@example.com").await;
    let Some(_) = app.enable_2fa(&member).await else {
        return;
    };
    let (ok, _, err) = app.admin_disable_2fa("member@example.com", "ticket 81, ID checked");
    assert!(ok, "{err}");
    let by_support = app
        .mail_containing("member@example.com", "Tessera support")
        .await;
    assert_eq!(by_support.subject, RESET_SUBJECT);
}
