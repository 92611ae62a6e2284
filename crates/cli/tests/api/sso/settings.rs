//! The team's SSO settings (`/account/sso`): managers read them, a recent manager with 2FA
//! changes them, the secret is never shown again and is sealed at rest, every change is
//! audited, and a domain belongs to one team.

use super::{CLIENT_ID, CLIENT_SECRET, Idp, connected, team_event_kinds};
use crate::helpers::{ResponseExt, TestApp, assert_error};
use reqwest::StatusCode;
use serde_json::{Value, json};

backend_tests!(
    settings_are_shown_without_the_secret_and_changes_are_audited,
    changing_settings_needs_a_recent_manager_with_2fa,
    bad_settings_are_refused_in_words,
    a_domain_belongs_to_one_team,
    rotating_the_master_key_re_encrypts_the_client_secret,
);

fn settings(issuer: &str, secret: Option<&str>) -> Value {
    let mut body = json!({
        "issuer": issuer, "client_id": CLIENT_ID, "email_domains": ["acme.test"],
        "jit_provisioning": true, "sso_two_factor": "exempt",
    });
    if let Some(secret) = secret {
        body["client_secret"] = json!(secret);
    }
    body
}

async fn settings_are_shown_without_the_secret_and_changes_are_audited(app: TestApp) {
    let Some(c) = connected(&app, true, "exempt").await else {
        return;
    };
    let response = app.get("/api/v1/account/sso", Some(&c.owner)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(
        !text.contains(CLIENT_SECRET),
        "the secret is never shown: {text}"
    );
    let shown: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(shown["configured"], true);
    assert_eq!(shown["issuer"], c.idp.issuer.as_str());
    assert_eq!(shown["client_secret_set"], true);
    assert_eq!(shown["email_domains"], json!(["acme.test"]));
    assert_eq!(shown["sso_two_factor"], "exempt");
    assert_eq!(shown["redirect_uri"], app.url("/login/sso/callback"));
    // Without a secret, the stored one is kept: SSO still works.
    let mut change = settings(&c.idp.issuer, None);
    change["sso_two_factor"] = json!("disable_sso");
    change["email_domains"] = json!(["ACME.test", "acme.test"]);
    let response = app.put("/api/v1/account/sso", change, Some(&c.owner)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let changed = response.body().await;
    assert_eq!(changed["sso_two_factor"], "disable_sso");
    assert_eq!(changed["email_domains"], json!(["acme.test"]));
    let signed_in = app.browser().sso(&app, "grace@acme.test", "grace").await;
    assert_eq!(signed_in.location(), "/");
    let kinds = team_event_kinds(&app, &c.owner).await;
    assert_eq!(
        kinds
            .iter()
            .filter(|k| *k == "sso_settings_changed")
            .count(),
        2,
        "{kinds:?}"
    );
    let events = app
        .account_events(&c.owner, "limit=100")
        .await
        .text()
        .await
        .unwrap();
    assert!(!events.contains(CLIENT_SECRET), "never in the audit log");
    // Sealed at rest: the database holds no plain secret.
    let dump = app.store().await;
    let connection = dump
        .sso_connection(
            app.me_body(&c.owner).await["account"]["id"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(
        !connection
            .client_secret_sealed
            .windows(CLIENT_SECRET.len())
            .any(|w| w == CLIENT_SECRET.as_bytes())
    );
    // Members may not read them.
    let (_, member) = app.join(&c.owner, "member@acme.test", "member").await;
    let response = app.get("/api/v1/account/sso", Some(&member)).await;
    assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
}

async fn changing_settings_needs_a_recent_manager_with_2fa(app: TestApp) {
    let Some(idp) = Idp::start(&app.base).await else {
        return;
    };
    let owner = app.owner_with_2fa("boss@acme.test").await;
    let (_, admin) = app.join(&owner, "admin@acme.test", "admin").await;
    // Past the step-up window (15 min).
    app.clock.advance(16 * 60);
    let body = settings(&idp.issuer, Some(CLIENT_SECRET));
    let response = app
        .put("/api/v1/account/sso", body.clone(), Some(&owner))
        .await;
    assert_error(response, StatusCode::FORBIDDEN, "reauthentication_required").await;
    // An admin without 2FA of their own may not either.
    let response = app.put("/api/v1/account/sso", body, Some(&admin)).await;
    assert_error(response, StatusCode::FORBIDDEN, "admin_two_factor_required").await;
    let shown = app
        .get("/api/v1/account/sso", Some(&admin))
        .await
        .body()
        .await;
    assert_eq!(shown["configured"], false);
}

async fn bad_settings_are_refused_in_words(app: TestApp) {
    let Some(idp) = Idp::start(&app.base).await else {
        return;
    };
    let owner = app.owner_with_2fa("boss@acme.test").await;
    let put = |body: Value| app.put("/api/v1/account/sso", body, Some(&owner));
    let cases = [
        (settings("http://id.example.com", Some("s")), "issuer"),
        (settings(&idp.issuer, None), "client_secret"),
        (
            {
                let mut b = settings(&idp.issuer, Some("s"));
                b["email_domains"] = json!([]);
                b
            },
            "email_domains",
        ),
        (
            {
                let mut b = settings(&idp.issuer, Some("s"));
                b["email_domains"] = json!(["not a domain"]);
                b
            },
            "email_domains",
        ),
        (
            {
                let mut b = settings(&idp.issuer, Some("s"));
                b["sso_two_factor"] = json!("sometimes");
                b
            },
            "sso_two_factor",
        ),
        (
            {
                let mut b = settings(&idp.issuer, Some("s"));
                b["client_id"] = json!("");
                b
            },
            "client_id",
        ),
    ];
    for (body, field) in cases {
        let error = assert_error(
            put(body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
        )
        .await;
        assert_eq!(error["error"]["field"], field, "{error}");
    }
    // A provider that cannot be reached: refused with words, at once.
    let closed = format!("http://localhost:{}", crate::smtp::free_port());
    let error = assert_error(
        put(settings(&closed, Some("s"))).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    )
    .await;
    assert_eq!(error["error"]["field"], "issuer");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("could not be reached"),
        "{error}"
    );
}

async fn a_domain_belongs_to_one_team(app: TestApp) {
    let Some(c) = connected(&app, true, "exempt").await else {
        return;
    };
    let other = app.owner_with_2fa("boss@other.test").await;
    let response = app
        .put(
            "/api/v1/account/sso",
            settings(&c.idp.issuer, Some(CLIENT_SECRET)),
            Some(&other),
        )
        .await;
    let error = assert_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    )
    .await;
    assert_eq!(error["error"]["field"], "email_domains");
}

async fn rotating_the_master_key_re_encrypts_the_client_secret(mut app: TestApp) {
    let Some(_c) = connected(&app, true, "exempt").await else {
        return;
    };
    let old = app.db.data_dir().join("master.key");
    let new = app.new_key_file("new.key");
    app.stop().await;
    let out = app
        .tessera()
        .env("TESSERA_MASTER_KEY_FILE", &new)
        .env("TESSERA_MASTER_KEY_OLD_FILE", &old)
        .args(["admin", "rotate-master-key", "--new-key-file"])
        .arg(&new)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // With the new key alone, the client secret still opens: a sign-in starts.
    let n = new.clone();
    app.reconfigure(move |c| {
        c.master_key = tessera_server::config::MasterKeySource::File {
            path: n,
            generate: false,
        };
        c.master_key_old = None;
    })
    .await;
    let started = app
        .core()
        .await
        .sso
        .start("grace@acme.test", false, &Default::default())
        .await;
    assert!(started.is_ok(), "{:?}", started.err());
    let metrics = app.metrics().await.text().await.unwrap();
    assert!(
        metrics.contains("tessera_decrypt_failures_total 0"),
        "nothing failed to open"
    );
}
