//! The team's recovery powers need the admin's own 2FA (review F6), unless the deployment
//! turns that off (`TESSERA_ADMIN_REQUIRES_2FA=false`).

use crate::helpers::{ResponseExt, TestApp, assert_error};
use reqwest::StatusCode;
use serde_json::json;

backend_tests!(
    an_owner_without_2fa_cannot_use_the_recovery_powers,
    the_deployment_may_let_admins_without_2fa_use_them,
);

/// What an owner without 2FA tries, and what it should answer when refused.
async fn recovery_powers(app: &TestApp, owner: &str, member: &str, expect: Option<&str>) {
    let attempts = [
        (
            "policy",
            app.set_2fa_policy(owner, json!({"required": false})).await,
        ),
        (
            "invite an admin",
            app.invite(owner, "boss@example.com", "admin").await,
        ),
        ("reset", app.reset_2fa(owner, member).await),
        ("delete", app.delete_user(owner, member).await),
    ];
    for (what, response) in attempts {
        match expect {
            Some(code) => {
                let body = assert_error(response, StatusCode::FORBIDDEN, code).await;
                assert!(
                    body["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("two-factor"),
                    "{what}: {body}"
                );
            }
            None => assert!(
                response.status().is_success(),
                "{what}: {}",
                response.status()
            ),
        }
    }
}

async fn an_owner_without_2fa_cannot_use_the_recovery_powers(app: TestApp) {
    let owner = app.signed_in("owner@example.com").await;
    let (member_id, member) = app.join(&owner, "member@example.com", "member").await;
    app.enable_2fa(&member).await.expect("oathtool");
    recovery_powers(&app, &owner, &member_id, Some("admin_two_factor_required")).await;
    // Inviting a member and reading the team stay open.
    let invited = app.invite(&owner, "grace@example.com", "member").await;
    assert_eq!(invited.status(), StatusCode::CREATED);
    assert_eq!(app.users(&owner).await.status(), StatusCode::OK);
    let audited = app.account_events(&owner, "limit=100").await.body().await["events"].clone();
    assert!(
        audited
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "access_denied"
                && e["detail"]["reason"] == "admin_two_factor_required")
    );
    // With 2FA on, the same owner may.
    app.enable_2fa(&owner).await.expect("oathtool");
    recovery_powers(&app, &owner, &member_id, None).await;
}

async fn the_deployment_may_let_admins_without_2fa_use_them(app: TestApp) {
    let mut app = app;
    app.reconfigure(|c| c.security.admin_requires_two_factor = false)
        .await;
    let owner = app.signed_in("owner@example.com").await;
    let (member_id, member) = app.join(&owner, "member@example.com", "member").await;
    app.enable_2fa(&member).await.expect("oathtool");
    recovery_powers(&app, &owner, &member_id, None).await;
    // The step-up window still applies.
    app.clock.advance(super::STALE);
    let stale = app.set_2fa_policy(&owner, json!({"required": true})).await;
    super::assert_stale(stale, "policy").await;
}
