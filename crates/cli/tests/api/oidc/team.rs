//! A team's own applications (`/api/v1/account/oidc-clients`, `/account/oidc-clients`):
//! registered by the owner within the step-up window, for the team's users only.

use super::*;
use crate::helpers::{assert_error, assert_page};
use serde_json::json;

backend_tests!(
    the_owner_registers_a_client_for_the_teams_users_only,
    only_a_recent_owner_manages_the_teams_clients,
    the_owner_registers_and_removes_a_client_on_the_page,
);

async fn the_owner_registers_a_client_for_the_teams_users_only(app: TestApp) {
    let Some((owner, owner_2fa)) = app.user_with_2fa("ada@example.com").await else {
        return;
    };
    let body = json!({"name": "Wiki", "redirect_uris": [REDIRECT_URI], "id_token_alg": "ES256"});
    let response = app
        .post("/api/v1/account/oidc-clients", body, Some(&owner))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created = response.body().await;
    assert_eq!(created["public"], false);
    assert_eq!(created["id_token_alg"], "ES256");
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let id = created["client_id"].as_str().unwrap().to_owned();
    let listed = app
        .get("/api/v1/account/oidc-clients", Some(&owner))
        .await
        .body()
        .await;
    assert_eq!(listed[0]["client_id"], id.as_str());
    assert!(listed[0].get("client_secret").is_none(), "shown once");

    let Some(rp) = Rp::new(
        &app,
        Client {
            id: id.clone(),
            secret,
        },
    ) else {
        return;
    };
    // The team's owner signs in to it.
    let started = rp.start(&[]).await;
    let browser = app.browser();
    let url = started["url"].as_str().unwrap();
    let callback =
        sign_in_through_tessera(&app, &browser, url, "ada@example.com", &owner_2fa).await;
    let done = rp.finish(&started, &callback, now(&app)).await;
    assert_eq!(done["alg"], "ES256", "{done}");
    // A user of another team is refused, back at the application.
    let Some((_, bob_2fa)) = app.user_with_2fa("bob@example.com").await else {
        return;
    };
    let started = rp.start(&[]).await;
    let url = started["url"].as_str().unwrap();
    let callback =
        sign_in_through_tessera(&app, &app.browser(), url, "bob@example.com", &bob_2fa).await;
    assert_eq!(
        query_param(&callback, "error").as_deref(),
        Some("access_denied")
    );

    let response = app
        .delete(&format!("/api/v1/account/oidc-clients/{id}"), Some(&owner))
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = app
        .delete(&format!("/api/v1/account/oidc-clients/{id}"), Some(&owner))
        .await;
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    let events = app.events(&owner, "").await.body().await;
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"oidc_client_created") && kinds.contains(&"oidc_client_removed"),
        "{kinds:?}"
    );
}

async fn only_a_recent_owner_manages_the_teams_clients(app: TestApp) {
    let t = app.team().await;
    let body = json!({"name": "Wiki", "redirect_uris": [REDIRECT_URI]});
    let response = app
        .post("/api/v1/account/oidc-clients", body.clone(), Some(&t.admin))
        .await;
    assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
    let response = app
        .get("/api/v1/account/oidc-clients", Some(&t.member))
        .await;
    assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
    for bad in [
        json!({"name": "", "redirect_uris": [REDIRECT_URI]}),
        json!({"name": "Wiki", "redirect_uris": []}),
        json!({"name": "Wiki", "redirect_uris": ["javascript:alert(1)"]}),
        json!({"name": "Wiki", "redirect_uris": [REDIRECT_URI], "id_token_alg": "HS256"}),
    ] {
        let response = app
            .post("/api/v1/account/oidc-clients", bad.clone(), Some(&t.owner))
            .await;
        assert_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
        )
        .await;
    }
    // Past the step-up window the owner confirms it is them first.
    app.clock.advance(16 * 60);
    let response = app
        .post("/api/v1/account/oidc-clients", body.clone(), Some(&t.owner))
        .await;
    assert_error(response, StatusCode::FORBIDDEN, "reauthentication_required").await;
    app.reauthenticated(&t.owner, Some(&t.owner_2fa)).await;
    let response = app
        .post("/api/v1/account/oidc-clients", body, Some(&t.owner))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

async fn the_owner_registers_and_removes_a_client_on_the_page(app: TestApp) {
    let browser = app.browser_signed_up("ada@example.com").await;
    let (status, html) = browser.get("/account/oidc-clients").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("No application yet."));
    let response = browser
        .submit(
            &html,
            "/account/oidc-clients",
            &[("name", "Wiki"), ("redirect_uris", "nonsense")],
        )
        .await;
    let html = assert_page(response, StatusCode::UNPROCESSABLE_ENTITY, "redirect uris").await;
    let fields = [
        ("name", "Wiki"),
        (
            "redirect_uris",
            "https://wiki.example/cb\n https://wiki.example/cb2 ",
        ),
        ("post_logout_redirect_uris", ""),
    ];
    let response = browser
        .submit(&html, "/account/oidc-clients", &fields)
        .await;
    let html = assert_page(response, StatusCode::CREATED, "Wiki is registered").await;
    let grab = |id: &str| {
        html.split(&format!("id=\"{id}\">"))
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap()
            .to_owned()
    };
    let (client_id, secret) = (grab("client-id"), grab("client-secret"));
    assert!(client_id.starts_with("tsc_") && secret.len() >= 43);
    assert_eq!(grab("issuer"), app.base);
    let (_, html) = browser.get("/account/oidc-clients").await;
    assert!(
        html.contains(&client_id) && !html.contains(&secret),
        "the secret is shown once"
    );
    assert!(html.contains("https://wiki.example/cb https://wiki.example/cb2"));
    let response = browser
        .submit(
            &html,
            &format!("/account/oidc-clients/{client_id}/remove"),
            &[],
        )
        .await;
    assert_eq!(response.location(), "/account/oidc-clients");
    let (_, html) = browser.get("/account/oidc-clients").await;
    assert!(!html.contains(&client_id));
}
