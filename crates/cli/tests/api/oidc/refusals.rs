//! What a relying party is refused, each time with OAuth's standard error: an unregistered
//! redirect URI (shown on a page, never redirected to), a reused code (its tokens revoked), a
//! code exchanged twice at once, an expired code, a wrong PKCE verifier, another client's
//! code, a wrong client secret, and a session the team's 2FA requirement restricts.

use super::*;
use crate::helpers::assert_page;
use serde_json::json;

backend_tests!(
    an_unregistered_redirect_uri_or_client_is_shown_never_redirected_to,
    bad_authorization_requests_go_back_with_the_standard_error_and_state,
    a_reused_code_is_refused_and_revokes_what_it_issued,
    one_code_exchanged_twice_at_once_wins_once,
    expired_code_wrong_verifier_and_another_clients_code_are_refused,
    the_token_endpoint_answers_standard_errors,
    the_teams_2fa_requirement_applies_before_any_code,
);

async fn an_unregistered_redirect_uri_or_client_is_shown_never_redirected_to(app: TestApp) {
    let client = register(&app, "Wiki", &[]);
    let browser = app.browser();
    for (client_id, redirect_uri, says) in [
        (
            client.id.as_str(),
            "https://evil.example/callback",
            "This redirect_uri is not registered",
        ),
        (
            client.id.as_str(),
            "https://app.example/callback/",
            "This redirect_uri is not registered",
        ),
        ("tsc_nobody", REDIRECT_URI, "No application is registered"),
    ] {
        let url = format!(
            "/oauth2/authorize?client_id={client_id}&redirect_uri={}&response_type=code&scope=openid&state=s",
            redirect_uri.replace(':', "%3A").replace('/', "%2F")
        );
        let response = browser.open(&url).await;
        assert!(response.headers().get("location").is_none(), "{url}");
        assert_page(response, StatusCode::BAD_REQUEST, says).await;
    }
}

async fn bad_authorization_requests_go_back_with_the_standard_error_and_state(app: TestApp) {
    let confidential = register(&app, "Wiki", &[]);
    let public = register(&app, "SPA", &["--public"]);
    let browser = app.browser();
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGjSstw-cM";
    for (client, query, error) in [
        (
            &confidential,
            "response_type=token&scope=openid".to_owned(),
            "unsupported_response_type",
        ),
        (&confidential, "scope=openid".to_owned(), "invalid_request"),
        (
            &confidential,
            "response_type=code&scope=email".to_owned(),
            "invalid_scope",
        ),
        (
            &public,
            "response_type=code&scope=openid".to_owned(),
            "invalid_request",
        ),
        (
            &public,
            format!(
                "response_type=code&scope=openid&code_challenge={challenge}&code_challenge_method=plain"
            ),
            "invalid_request",
        ),
        (
            &confidential,
            "response_type=code&scope=openid&prompt=none".to_owned(),
            "login_required",
        ),
        (
            &confidential,
            "response_type=code&scope=openid&max_age=soon".to_owned(),
            "invalid_request",
        ),
    ] {
        let url = app.url(&format!(
            "/oauth2/authorize?client_id={}&redirect_uri={REDIRECT_URI}&state=xyz&{query}",
            client.id
        ));
        let location = redirected(&browser, &url).await;
        assert!(location.starts_with(REDIRECT_URI), "{query}: {location}");
        assert_eq!(
            query_param(&location, "error").as_deref(),
            Some(error),
            "{query}"
        );
        assert_eq!(
            query_param(&location, "state").as_deref(),
            Some("xyz"),
            "{query}"
        );
        assert!(query_param(&location, "code").is_none());
    }
}

/// A user with 2FA signed in through Tessera for `rp`: (the started request, the callback).
async fn code_for(app: &TestApp, rp: &Rp, factor: &SecondFactor) -> (Value, String) {
    let started = rp.start(&[]).await;
    let browser = app.browser();
    let url = started["url"].as_str().unwrap();
    let callback = sign_in_through_tessera(app, &browser, url, "ada@example.com", factor).await;
    (started, callback)
}

async fn a_reused_code_is_refused_and_revokes_what_it_issued(app: TestApp) {
    let Some((token, factor)) = app.user_with_2fa("ada@example.com").await else {
        return;
    };
    let Some(rp) = Rp::new(&app, register(&app, "Wiki", &[])) else {
        return;
    };
    let (started, callback) = code_for(&app, &rp, &factor).await;
    let first = rp.finish(&started, &callback, now(&app)).await;
    let access = first["token"]["access_token"].as_str().unwrap();
    assert_eq!(
        app.get("/oauth2/userinfo", Some(access)).await.status(),
        StatusCode::OK
    );
    let again = rp.finish(&started, &callback, now(&app)).await;
    assert_eq!(again["error"], "invalid_grant", "{again}");
    assert_eq!(
        app.get("/oauth2/userinfo", Some(access)).await.status(),
        StatusCode::UNAUTHORIZED,
        "the first exchange's tokens are revoked"
    );
    let refresh = first["token"]["refresh_token"].as_str().unwrap();
    assert_eq!(rp.refresh(refresh).await["error"], "invalid_grant");
    let events = app.events(&token, "").await.body().await;
    assert!(
        events["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "oidc_code_reused")
    );
}

/// `POST /oauth2/token` exchanging the callback's code with `client`'s secret (basic).
async fn exchange(
    app: &TestApp,
    client: &Client,
    callback: &str,
    verifier: &str,
) -> reqwest::Response {
    let code = query_param(callback, "code").unwrap();
    app.api()
        .client
        .post(app.url("/oauth2/token"))
        .basic_auth(&client.id, Some(&client.secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap()
}

async fn one_code_exchanged_twice_at_once_wins_once(app: TestApp) {
    let Some((_, factor)) = app.user_with_2fa("ada@example.com").await else {
        return;
    };
    let client = register(&app, "Wiki", &[]);
    let Some(rp) = Rp::new(
        &app,
        Client {
            id: client.id.clone(),
            secret: client.secret.clone(),
        },
    ) else {
        return;
    };
    for _ in 0..3 {
        let (started, callback) = code_for(&app, &rp, &factor).await;
        let verifier = started["code_verifier"].as_str().unwrap();
        let (a, b) = tokio::join!(
            exchange(&app, &client, &callback, verifier),
            exchange(&app, &client, &callback, verifier)
        );
        let statuses = [a.status(), b.status()];
        assert_eq!(
            statuses.iter().filter(|s| **s == StatusCode::OK).count(),
            1,
            "exactly one exchange wins: {statuses:?}"
        );
        let loser = if a.status() == StatusCode::OK { b } else { a };
        assert_eq!(loser.status(), StatusCode::BAD_REQUEST);
        assert_eq!(loser.body().await["error"], "invalid_grant");
    }
}

async fn expired_code_wrong_verifier_and_another_clients_code_are_refused(app: TestApp) {
    let Some((_, factor)) = app.user_with_2fa("ada@example.com").await else {
        return;
    };
    let Some(rp) = Rp::new(&app, register(&app, "Wiki", &[])) else {
        return;
    };
    // Expired: codes live 60 s.
    let (started, callback) = code_for(&app, &rp, &factor).await;
    app.clock.advance(61);
    let done = rp.finish(&started, &callback, now(&app)).await;
    assert_eq!(done["error"], "invalid_grant", "{done}");
    // A verifier that is not the one of the challenge.
    let (mut started, callback) = code_for(&app, &rp, &factor).await;
    started["code_verifier"] = json!("x".repeat(64));
    let done = rp.finish(&started, &callback, now(&app)).await;
    assert_eq!(done["error"], "invalid_grant", "{done}");
    // Another client's code (both register the same redirect URI).
    let Some(other) = Rp::new(&app, register(&app, "Other", &[])) else {
        return;
    };
    let (started, callback) = code_for(&app, &rp, &factor).await;
    let done = other.finish(&started, &callback, now(&app)).await;
    assert_eq!(done["error"], "invalid_grant", "{done}");
    // The code is still good for its own client.
    let done = rp.finish(&started, &callback, now(&app)).await;
    assert_eq!(done["claims"]["email"], "ada@example.com", "{done}");
}

async fn the_token_endpoint_answers_standard_errors(app: TestApp) {
    let client = register(&app, "Wiki", &[]);
    let post = |form: Vec<(&'static str, String)>, basic: Option<(&str, &str)>| {
        let mut request = app.api().client.post(app.url("/oauth2/token")).form(&form);
        if let Some((id, secret)) = basic {
            request = request.basic_auth(id, Some(secret));
        }
        request.send()
    };
    let code = |v: &str| {
        vec![
            ("grant_type", v.to_owned()),
            ("code", "nothing".to_owned()),
            ("redirect_uri", REDIRECT_URI.to_owned()),
        ]
    };
    let cases = [
        (
            post(code("authorization_code"), Some((&client.id, "wrong"))).await,
            401,
            "invalid_client",
        ),
        (
            post(code("authorization_code"), Some(("tsc_nobody", "x"))).await,
            401,
            "invalid_client",
        ),
        (
            post(code("authorization_code"), None).await,
            401,
            "invalid_client",
        ),
        (
            post(code("password"), Some((&client.id, &client.secret))).await,
            400,
            "unsupported_grant_type",
        ),
        (
            post(vec![], Some((&client.id, &client.secret))).await,
            400,
            "invalid_request",
        ),
        (
            post(
                code("authorization_code"),
                Some((&client.id, &client.secret)),
            )
            .await,
            400,
            "invalid_grant",
        ),
        (
            post(
                vec![
                    ("grant_type", "refresh_token".into()),
                    ("refresh_token", "nope".into()),
                ],
                Some((&client.id, &client.secret)),
            )
            .await,
            400,
            "invalid_grant",
        ),
    ];
    for (response, status, error) in cases {
        let response = response.unwrap();
        assert_eq!(response.status().as_u16(), status, "{error}");
        let basic = response.headers().get("www-authenticate").cloned();
        let body = response.body().await;
        assert_eq!(body["error"], error, "{body}");
        if let Some(basic) = basic.filter(|_| error == "invalid_client") {
            assert!(basic.to_str().unwrap().starts_with("Basic"));
        }
    }
    let garbage = app
        .api()
        .client
        .post(app.url("/oauth2/token"))
        .body("%%%=&&grant_type")
        .send()
        .await
        .unwrap();
    assert!(garbage.status().is_client_error());
    assert!(garbage.body().await["error"].is_string());
}

async fn the_teams_2fa_requirement_applies_before_any_code(app: TestApp) {
    let owner = app.owner_with_2fa("owner@example.com").await;
    app.join(&owner, "member@example.com", "member").await;
    let response = app.set_2fa_policy(&owner, json!({"required": true})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let Some(rp) = Rp::new(&app, register(&app, "Wiki", &[])) else {
        return;
    };
    let started = rp.start(&[]).await;
    let browser = app.browser();
    let login = redirected(&browser, started["url"].as_str().unwrap()).await;
    assert_eq!(login, "/login");
    let response = browser.sign_in(&app, "member@example.com", PASSWORD).await;
    let next = continue_page(&app, &browser, response).await;
    assert_eq!(next, "/settings/security", "set up 2FA first, no code");
    // Once 2FA is on, the same request gets its code.
    let Some(_) = browser.enable_2fa(&app).await else {
        return;
    };
    let callback = redirected(&browser, started["url"].as_str().unwrap()).await;
    assert!(query_param(&callback, "code").is_some(), "{callback}");
    let done = rp.finish(&started, &callback, now(&app)).await;
    assert_eq!(done["claims"]["tessera_role"], "member", "{done}");
}
