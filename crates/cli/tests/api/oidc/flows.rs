//! What a relying party gets: discovery, the code flow through Tessera's sign-in with TOTP,
//! a validated ID token, userinfo, refresh, RP-initiated logout, signing-key rotation.

use super::*;
use crate::helpers::assert_page;

backend_tests!(
    discovery_names_every_endpoint_of_this_issuer,
    authlib_signs_a_user_in_with_totp_and_pkce,
    a_public_client_gets_es256_id_tokens_with_client_secret_post_elsewhere,
    prompt_login_asks_a_signed_in_user_to_authenticate_again,
    rp_initiated_logout_ends_the_session_and_its_tokens,
    signing_out_everywhere_ends_the_apps_refresh_tokens,
    a_rotated_signing_key_stays_published_until_its_tokens_expire,
    signing_keys_are_re_encrypted_by_a_master_key_rotation,
    the_admin_command_lists_and_removes_clients,
    a_passkey_sign_in_goes_back_to_the_app_with_hwk,
);

async fn discovery_names_every_endpoint_of_this_issuer(app: TestApp) {
    let response = app.get("/.well-known/openid-configuration", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let doc = response.body().await;
    assert_eq!(doc["issuer"], app.base.as_str());
    for (key, path) in [
        ("authorization_endpoint", "/oauth2/authorize"),
        ("token_endpoint", "/oauth2/token"),
        ("userinfo_endpoint", "/oauth2/userinfo"),
        ("jwks_uri", "/oauth2/jwks"),
        ("end_session_endpoint", "/oauth2/logout"),
    ] {
        assert_eq!(doc[key], app.url(path), "{key}");
    }
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    let jwks = app.get("/oauth2/jwks", None).await.body().await;
    let algs: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["alg"].as_str().unwrap())
        .collect();
    assert_eq!(algs.len(), 2, "{jwks}");
    assert!(algs.contains(&"RS256") && algs.contains(&"ES256"));
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("d").is_none())
    );
}

async fn authlib_signs_a_user_in_with_totp_and_pkce(app: TestApp) {
    let Some((token, factor)) = app.user_with_2fa("ada@example.com").await else {
        return;
    };
    let user_id = app.user_id(&token).await;
    let Some(rp) = Rp::new(&app, register(&app, "Wiki", &[])) else {
        return;
    };
    assert_ne!(rp.client.secret, "-", "a confidential client has a secret");
    let started = rp.start(&[]).await;
    let browser = app.browser();
    let url = started["url"].as_str().unwrap();
    let callback = sign_in_through_tessera(&app, &browser, url, "ada@example.com", &factor).await;
    assert!(callback.starts_with(REDIRECT_URI), "{callback}");
    assert_eq!(
        query_param(&callback, "state").as_deref(),
        started["state"].as_str()
    );
    assert_eq!(
        query_param(&callback, "iss").as_deref(),
        Some(app.base.as_str())
    );

    let done = rp.finish(&started, &callback, now(&app)).await;
    assert!(done.get("error").is_none(), "{done}");
    let claims = &done["claims"];
    assert_eq!(claims["sub"], user_id.as_str());
    assert_eq!(claims["email"], "ada@example.com");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["name"], "Ada Lovelace");
    assert_eq!(claims["tessera_role"], "owner");
    assert!(
        claims["tessera_account"]
            .as_str()
            .is_some_and(|a| !a.is_empty())
    );
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    assert_eq!(claims["acr"], "2");
    assert_eq!(claims["nonce"], started["nonce"]);
    assert!(claims["auth_time"].as_i64().unwrap() <= now(&app));
    assert_eq!(done["alg"], "RS256");
    assert_eq!(
        done["tamper_rejected"], true,
        "authlib rejects a tampered ID token"
    );
    assert_eq!(done["userinfo_status"], 200);
    assert_eq!(done["userinfo"]["sub"], user_id.as_str());
    assert_eq!(done["userinfo"]["email"], "ada@example.com");
    assert_eq!(done["token"]["expires_in"], 600);

    // Refresh: a new pair; the old refresh token is spent.
    let first = done["token"]["refresh_token"].as_str().unwrap();
    let refreshed = rp.refresh(first).await;
    let second = refreshed["token"]["refresh_token"]
        .as_str()
        .expect("rotated");
    assert_ne!(first, second);
    let access = refreshed["token"]["access_token"].as_str().unwrap();
    let userinfo = app.get("/oauth2/userinfo", Some(access)).await;
    assert_eq!(userinfo.status(), StatusCode::OK);
    // Reusing the spent one revokes the whole family, the newest tokens too.
    let reused = rp.refresh(first).await;
    assert_eq!(reused["error"], "invalid_grant", "{reused}");
    assert_eq!(rp.refresh(second).await["error"], "invalid_grant");
    let userinfo = app.get("/oauth2/userinfo", Some(access)).await;
    assert_eq!(userinfo.status(), StatusCode::UNAUTHORIZED);
    assert!(
        userinfo.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );

    // Everything is in the user's audit log.
    let events = app.events(&token, "").await.body().await;
    let kinds = crate::helpers::strings(&serde_json::json!(
        events["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].clone())
            .collect::<Vec<_>>()
    ));
    for kind in [
        "oidc_authorized",
        "oidc_token_issued",
        "oidc_refresh_reused",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
}

async fn a_public_client_gets_es256_id_tokens_with_client_secret_post_elsewhere(app: TestApp) {
    let Some((_, factor)) = app.user_with_2fa("ada@example.com").await else {
        return;
    };
    let public = register(&app, "SPA", &["--public", "--id-token-alg", "ES256"]);
    assert_eq!(public.secret, "-", "a public client has no secret");
    let Some(rp) = Rp::new(&app, public) else {
        return;
    };
    let started = rp.start(&[]).await;
    let browser = app.browser();
    let url = started["url"].as_str().unwrap();
    let callback = sign_in_through_tessera(&app, &browser, url, "ada@example.com", &factor).await;
    let done = rp.finish(&started, &callback, now(&app)).await;
    assert_eq!(done["alg"], "ES256", "{done}");
    assert_eq!(done["tamper_rejected"], true);

    // A confidential client authenticating in the form body, for a browser already signed in.
    let Some(post) = Rp::new(&app, register(&app, "Wiki", &[])) else {
        return;
    };
    let post = post.with_post_auth();
    let started = post.start(&[]).await;
    let callback = redirected(&browser, started["url"].as_str().unwrap()).await;
    assert!(
        callback.starts_with(REDIRECT_URI),
        "signed in already: {callback}"
    );
    let done = post.finish(&started, &callback, now(&app)).await;
    assert_eq!(done["claims"]["email"], "ada@example.com", "{done}");
}

async fn prompt_login_asks_a_signed_in_user_to_authenticate_again(app: TestApp) {
    let Some((_, factor)) = app.user_with_2fa("ada@example.com").await else {
        return;
    };
    let Some(rp) = Rp::new(&app, register(&app, "Wiki", &[])) else {
        return;
    };
    let browser = app.browser();
    let started = rp.start(&[]).await;
    sign_in_through_tessera(
        &app,
        &browser,
        started["url"].as_str().unwrap(),
        "ada@example.com",
        &factor,
    )
    .await;
    for extra in ["prompt=login", "max_age=60"] {
        app.clock.advance(120);
        let started = rp.start(&[extra]).await;
        let reauth = redirected(&browser, started["url"].as_str().unwrap()).await;
        assert!(
            reauth.starts_with("/reauthenticate?return_to="),
            "{extra}: {reauth}"
        );
        let (_, html) = browser.get(&reauth).await;
        let return_to = html
            .split("name=\"return_to\" value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .replace("&amp;", "&")
            .replace("&#38;", "&");
        let code = app.totp(&factor);
        app.clock.advance(30);
        let fields = [
            ("password", PASSWORD),
            ("code", code.as_str()),
            ("return_to", return_to.as_str()),
        ];
        let response = browser.submit(&html, "/reauthenticate", &fields).await;
        let callback = continue_page(&app, &browser, response).await;
        let done = rp.finish(&started, &callback, now(&app)).await;
        let auth_time = done["claims"]["auth_time"].as_i64().unwrap();
        assert!(now(&app) - auth_time <= 30, "{extra}: a fresh auth_time");
    }
    // prompt=none never shows a page: without a session, the application hears why.
    let started = rp.start(&["prompt=none"]).await;
    let elsewhere = app.browser();
    let callback = redirected(&elsewhere, started["url"].as_str().unwrap()).await;
    assert_eq!(
        query_param(&callback, "error").as_deref(),
        Some("login_required")
    );
    assert_eq!(
        query_param(&callback, "state").as_deref(),
        started["state"].as_str()
    );
    // login_hint fills in the email on the sign-in page.
    let started = rp.start(&["login_hint=ada@example.com"]).await;
    let login = redirected(&elsewhere, started["url"].as_str().unwrap()).await;
    assert_eq!(login, "/login?email=ada%40example.com");
    let (_, html) = elsewhere.get(&login).await;
    assert!(html.contains("value=\"ada@example.com\""), "{html}");
}

async fn rp_initiated_logout_ends_the_session_and_its_tokens(app: TestApp) {
    let Some((_, factor)) = app.user_with_2fa("ada@example.com").await else {
        return;
    };
    let Some(rp) = Rp::new(&app, register(&app, "Wiki", &[])) else {
        return;
    };
    let browser = app.browser();
    let started = rp.start(&[]).await;
    let url = started["url"].as_str().unwrap();
    let callback = sign_in_through_tessera(&app, &browser, url, "ada@example.com", &factor).await;
    let done = rp.finish(&started, &callback, now(&app)).await;
    let access = done["token"]["access_token"].as_str().unwrap();
    let id_token = done["token"]["id_token"].as_str().unwrap();

    // An unregistered return address is not followed.
    let query = |uri: &str| {
        format!(
            "/oauth2/logout?id_token_hint={id_token}&post_logout_redirect_uri={}&state=bye",
            uri.replace(':', "%3A").replace('/', "%2F")
        )
    };
    let (status, _) = browser.get(&query("https://evil.example/")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // That ended the session already; sign in again and log out properly.
    let started = rp.start(&[]).await;
    let url = started["url"].as_str().unwrap();
    let callback = sign_in_through_tessera(&app, &browser, url, "ada@example.com", &factor).await;
    let done = rp.finish(&started, &callback, now(&app)).await;
    let access2 = done["token"]["access_token"].as_str().unwrap().to_owned();
    let id_token = done["token"]["id_token"].as_str().unwrap().to_owned();
    let logout = format!(
        "/oauth2/logout?id_token_hint={id_token}&post_logout_redirect_uri={}&state=bye",
        LOGGED_OUT_URI.replace(':', "%3A").replace('/', "%2F")
    );
    let response = browser.open(&logout).await;
    assert_eq!(response.location(), format!("{LOGGED_OUT_URI}?state=bye"));
    for token in [access, access2.as_str()] {
        let userinfo = app.get("/oauth2/userinfo", Some(token)).await;
        assert_eq!(userinfo.status(), StatusCode::UNAUTHORIZED, "revoked");
    }
    let (_, _) = browser.get("/").await;
    assert_eq!(
        browser.open("/").await.location(),
        "/login",
        "signed out of Tessera"
    );

    // Without an ID token of the user, a link alone asks first.
    let other = app.browser();
    let started = rp.start(&[]).await;
    sign_in_through_tessera(
        &app,
        &other,
        started["url"].as_str().unwrap(),
        "ada@example.com",
        &factor,
    )
    .await;
    let response = other.open("/oauth2/logout").await;
    let html = assert_page(response, StatusCode::OK, "Sign out of Tessera?").await;
    let response = other
        .submit(
            &html,
            "/oauth2/logout",
            &[
                ("client_id", ""),
                ("post_logout_redirect_uri", ""),
                ("state", ""),
            ],
        )
        .await;
    assert_page(response, StatusCode::OK, "You are signed out of Tessera.").await;
}

async fn a_rotated_signing_key_stays_published_until_its_tokens_expire(app: TestApp) {
    let before = kids(&app.get("/oauth2/jwks", None).await.body().await);
    let (ok, out, err) = app.admin(&["rotate-signing-key"]);
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 2, "{out}");
    let during = kids(&app.get("/oauth2/jwks", None).await.body().await);
    assert_eq!(during.len(), 4, "old and new keys: {during:?}");
    assert!(before.iter().all(|k| during.contains(k)));
    // The operator's clock is the wall clock; the app's moves well past the ID-token
    // lifetime after it.
    app.clock.advance(3600);
    let after = kids(&app.get("/oauth2/jwks", None).await.body().await);
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(
        before.iter().all(|k| !after.contains(k)),
        "the old keys are gone"
    );
}

async fn the_admin_command_lists_and_removes_clients(app: TestApp) {
    let client = register(&app, "Wiki", &[]);
    assert!(client.id.starts_with("tsc_"));
    let (ok, out, _) = app.admin(&["oidc-clients", "list"]);
    assert!(ok);
    assert!(out.contains(&client.id) && out.contains("Wiki") && out.contains(REDIRECT_URI));
    assert!(!out.contains(&client.secret), "the secret is shown once");
    let (ok, _, err) = app.admin(&[
        "oidc-clients",
        "add",
        "--name",
        "Bad",
        "--redirect-uri",
        "/relative",
    ]);
    assert!(!ok);
    assert!(err.contains("redirect_uris"), "{err}");
    let (ok, _, _) = app.admin(&["oidc-clients", "remove", &client.id]);
    assert!(ok);
    let (ok, _, err) = app.admin(&["oidc-clients", "remove", &client.id]);
    assert!(!ok, "{err}");
    let url = format!(
        "/oauth2/authorize?client_id={}&redirect_uri={}&response_type=code&scope=openid",
        client.id, REDIRECT_URI
    );
    let (status, html) = app.browser().get(&url).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("No application is registered"), "{html}");
}

fn kids(jwks: &Value) -> Vec<String> {
    let mut kids: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    kids.sort();
    kids
}

async fn signing_keys_are_re_encrypted_by_a_master_key_rotation(mut app: TestApp) {
    let Some((_, factor)) = app.user_with_2fa("ada@example.com").await else {
        return;
    };
    // Registered before: the admin command holds the old key only.
    let client = register(&app, "Wiki", &[]);
    let before = kids(&app.get("/oauth2/jwks", None).await.body().await);
    app.stop().await;
    let new = app.new_key_file("new.key");
    let out = app
        .tessera()
        .args(["admin", "rotate-master-key", "--new-key-file"])
        .arg(&new)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let source = tessera_server::config::MasterKeySource::File {
        path: new,
        generate: false,
    };
    app.reconfigure(move |c| c.master_key = source).await;
    // The same keys, and their private halves open under the new master key alone.
    assert_eq!(
        kids(&app.get("/oauth2/jwks", None).await.body().await),
        before
    );
    let Some(rp) = Rp::new(&app, client) else {
        return;
    };
    let started = rp.start(&[]).await;
    let browser = app.browser();
    let url = started["url"].as_str().unwrap();
    let callback = sign_in_through_tessera(&app, &browser, url, "ada@example.com", &factor).await;
    let done = rp.finish(&started, &callback, now(&app)).await;
    assert_eq!(done["claims"]["email"], "ada@example.com", "{done}");
}

async fn signing_out_everywhere_ends_the_apps_refresh_tokens(app: TestApp) {
    let Some((token, factor)) = app.user_with_2fa("ada@example.com").await else {
        return;
    };
    let Some(rp) = Rp::new(&app, register(&app, "Wiki", &[])) else {
        return;
    };
    let started = rp.start(&[]).await;
    let browser = app.browser();
    let url = started["url"].as_str().unwrap();
    let callback = sign_in_through_tessera(&app, &browser, url, "ada@example.com", &factor).await;
    let done = rp.finish(&started, &callback, now(&app)).await;
    let refreshed = rp
        .refresh(done["token"]["refresh_token"].as_str().unwrap())
        .await;
    let refresh = refreshed["token"]["refresh_token"]
        .as_str()
        .expect("refreshed");
    // From the API session: every other session ends, the browser's among them.
    let response = app.end_other_sessions(&token).await;
    assert!(response.status().is_success());
    let refused = rp.refresh(refresh).await;
    assert_eq!(refused["error"], "invalid_grant", "{refused}");
}

/// Signing in with a passkey on Tessera's page also goes back to the application's
/// authorization request, and the ID token says how: `hwk` and `mfa`, no password.
async fn a_passkey_sign_in_goes_back_to_the_app_with_hwk(app: TestApp) {
    let (_, mut key) = app.user_with_key("pia@example.com").await;
    let Some(rp) = Rp::new(&app, register(&app, "Wiki", &[])) else {
        return;
    };
    let started = rp.start(&[]).await;
    let browser = app.browser();
    let login = redirected(&browser, started["url"].as_str().unwrap()).await;
    assert!(login.starts_with("/login"), "{login}");
    let (_, html) = browser.get(&login).await;
    let response = browser.submit(&html, "/login/passkey", &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    let attribute = |name: &str| {
        html.split(&format!("{name}=\""))
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .replace("&#34;", "\"")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    let options: Value = serde_json::from_str(&attribute("data-options")).unwrap();
    let challenge = html
        .split("name=\"challenge_token\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let assertion = key.get_discoverable(&options).to_string();
    let response = browser
        .submit(
            &html,
            "/login/passkey/finish",
            &[("challenge_token", &challenge), ("credential", &assertion)],
        )
        .await;
    let callback = continue_page(&app, &browser, response).await;
    assert!(callback.starts_with(REDIRECT_URI), "{callback}");
    let done = rp.finish(&started, &callback, now(&app)).await;
    assert!(done.get("error").is_none(), "{done}");
    assert_eq!(done["claims"]["email"], "pia@example.com");
    assert_eq!(done["claims"]["amr"], serde_json::json!(["hwk", "mfa"]));
    assert_eq!(done["claims"]["acr"], "2");
}
