//! Signing in with SSO: provisioning, linking, the link found again, and every refusal of
//! SPEC §12 as a page in words (never a 500).

use super::{connected, session_cookie, team_event_kinds};
use crate::helpers::{ResponseExt, TestApp, assert_error, assert_page};
use reqwest::StatusCode;
use serde_json::json;

backend_tests!(
    a_first_sso_sign_in_provisions_a_member,
    a_first_sso_sign_in_links_the_teams_user_and_the_next_finds_the_link,
    someone_new_is_refused_without_provisioning,
    a_wrong_state_is_refused,
    a_callback_from_another_browser_is_refused,
    a_replayed_callback_is_refused,
    racing_callbacks_sign_in_once,
    a_token_for_another_audience_is_refused,
    an_unverified_email_is_refused,
    a_domain_not_allowed_is_refused,
    an_unreachable_provider_is_a_page_with_words,
    an_email_without_sso_is_told_so,
    the_api_starts_the_same_flow,
    an_sso_invitation_creates_the_user_at_the_first_sso_sign_in,
    sign_ins_started_and_never_finished_are_limited_per_address,
    an_sso_user_confirms_it_is_them_by_signing_in_again,
);

async fn a_first_sso_sign_in_provisions_a_member(app: TestApp) {
    let Some(c) = connected(&app, true, "exempt").await else {
        return;
    };
    let b = app.browser();
    let response = b.sso(&app, "grace@acme.test", "grace").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.location(), "/", "signed in on the home page");
    let token = session_cookie(&response);
    let me = app.me_body(&token).await;
    assert_eq!(me["user"]["email"], "grace@acme.test");
    assert_eq!(me["user"]["role"], "member");
    assert_eq!(me["user"]["auth_source"], "sso");
    assert_eq!(me["user"]["name"], "Grace Hopper");
    let (status, home) = b.get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(home.contains("Grace Hopper"), "{home}");
    // No password: the password form cannot sign her in.
    assert_eq!(
        app.login("grace@acme.test", "anything at all")
            .await
            .status(),
        401
    );
    let kinds = team_event_kinds(&app, &c.owner).await;
    assert!(kinds.contains(&"sso_provisioned".to_owned()), "{kinds:?}");
    let sign_in = app.events(&token, "").await.body().await;
    let methods: Vec<_> = sign_in["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "sign_in")
        .map(|e| e["detail"]["method"].clone())
        .collect();
    assert_eq!(methods, [json!("sso")]);
}

async fn a_first_sso_sign_in_links_the_teams_user_and_the_next_finds_the_link(app: TestApp) {
    let Some(c) = connected(&app, false, "exempt").await else {
        return;
    };
    let (ada_id, _) = app.join(&c.owner, "ada@acme.test", "member").await;
    let first = app.browser().sso(&app, "ada@acme.test", "ada").await;
    assert_eq!(first.location(), "/");
    let token = session_cookie(&first);
    assert_eq!(app.user_id(&token).await, ada_id, "the team's user, linked");
    let linked = |kinds: &Vec<String>| kinds.iter().filter(|k| *k == "sso_linked").count();
    assert_eq!(linked(&team_event_kinds(&app, &c.owner).await), 1);
    // The second sign-in finds the link (the email typed may even differ in case).
    let second = app.browser().sso(&app, "ADA@acme.test", "ada").await;
    assert_eq!(second.location(), "/");
    assert_eq!(app.user_id(&session_cookie(&second)).await, ada_id);
    assert_eq!(linked(&team_event_kinds(&app, &c.owner).await), 1);
    // Linking keeps her password and auth source.
    let me = app.me_body(&token).await;
    assert_eq!(me["user"]["auth_source"], "password");
    assert_eq!(
        app.login("ada@acme.test", crate::helpers::PASSWORD)
            .await
            .status(),
        200
    );
}

async fn someone_new_is_refused_without_provisioning(app: TestApp) {
    let Some(c) = connected(&app, false, "exempt").await else {
        return;
    };
    let response = app.browser().sso(&app, "grace@acme.test", "grace").await;
    assert_page(
        response,
        StatusCode::FORBIDDEN,
        "ask an admin to invite you",
    )
    .await;
    let users = app.users(&c.owner).await.body().await;
    assert_eq!(users.as_array().unwrap().len(), 1, "nobody was created");
    let kinds = team_event_kinds(&app, &c.owner).await;
    assert_eq!(kinds[0], "sso_sign_in_failed");
}

async fn a_wrong_state_is_refused(app: TestApp) {
    let Some(_c) = connected(&app, true, "exempt").await else {
        return;
    };
    let b = app.browser();
    let callback = b.at_provider(&app, "grace@acme.test", "grace").await;
    let url = reqwest::Url::parse(&callback).unwrap();
    let code = url
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let forged = app.url(&format!("/login/sso/callback?code={code}&state=forged"));
    let response = b.visit(&forged).await;
    assert_page(
        response,
        StatusCode::BAD_REQUEST,
        "not valid or was already used",
    )
    .await;
    let response = b.visit(&app.url("/login/sso/callback")).await;
    assert_page(response, StatusCode::BAD_REQUEST, "not valid").await;
}

async fn a_callback_from_another_browser_is_refused(app: TestApp) {
    let Some(_c) = connected(&app, true, "exempt").await else {
        return;
    };
    // Someone else's callback link (login CSRF): the state is not this browser's.
    let callback = app
        .browser()
        .at_provider(&app, "grace@acme.test", "grace")
        .await;
    let response = app.browser().visit(&callback).await;
    assert_page(response, StatusCode::BAD_REQUEST, "not valid").await;
}

async fn a_replayed_callback_is_refused(app: TestApp) {
    let Some(_c) = connected(&app, true, "exempt").await else {
        return;
    };
    let b = app.browser();
    let callback = b.at_provider(&app, "grace@acme.test", "grace").await;
    let first = b.visit(&callback).await;
    assert_eq!(first.location(), "/");
    // The same browser, the same callback again (its state cookie was cleared, so send it as
    // it was): the pending sign-in is gone.
    let state = reqwest::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let replay = app
        .browser()
        .client
        .get(&callback)
        .header("cookie", format!("tessera_sso_state={state}"))
        .send()
        .await
        .unwrap();
    assert_page(replay, StatusCode::BAD_REQUEST, "already used").await;
}

async fn racing_callbacks_sign_in_once(app: TestApp) {
    let Some(_c) = connected(&app, true, "exempt").await else {
        return;
    };
    let b = app.browser();
    let callback = b.at_provider(&app, "grace@acme.test", "grace").await;
    let state = reqwest::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let racers = (0..6).map(|_| {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let (callback, state) = (callback.clone(), state.clone());
        tokio::spawn(async move {
            client
                .get(&callback)
                .header("cookie", format!("tessera_sso_state={state}"))
                .send()
                .await
                .unwrap()
                .status()
        })
    });
    let mut statuses = Vec::new();
    for racer in racers {
        statuses.push(racer.await.unwrap());
    }
    let signed_in = statuses
        .iter()
        .filter(|s| **s == StatusCode::SEE_OTHER)
        .count();
    assert_eq!(signed_in, 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::SEE_OTHER || *s == StatusCode::BAD_REQUEST),
        "{statuses:?}"
    );
}

async fn a_token_for_another_audience_is_refused(app: TestApp) {
    let Some(c) = connected(&app, true, "exempt").await else {
        return;
    };
    let response = app
        .browser()
        .sso(&app, "audience@acme.test", "audience")
        .await;
    let page = assert_page(response, StatusCode::UNAUTHORIZED, "could not be trusted").await;
    assert!(page.contains("audience"), "{page}");
    let users = app.users(&c.owner).await.body().await;
    assert_eq!(users.as_array().unwrap().len(), 1, "nobody was created");
}

async fn an_unverified_email_is_refused(app: TestApp) {
    let Some(c) = connected(&app, true, "exempt").await else {
        return;
    };
    let response = app
        .browser()
        .sso(&app, "mallory@acme.test", "mallory")
        .await;
    assert_page(
        response,
        StatusCode::FORBIDDEN,
        "has not verified your email",
    )
    .await;
    let users = app.users(&c.owner).await.body().await;
    assert_eq!(users.as_array().unwrap().len(), 1);
}

async fn a_domain_not_allowed_is_refused(app: TestApp) {
    let Some(c) = connected(&app, true, "exempt").await else {
        return;
    };
    // The team is chosen by the email typed; the provider vouches for another domain.
    let response = app.browser().sso(&app, "eve@acme.test", "eve").await;
    assert_page(
        response,
        StatusCode::FORBIDDEN,
        "not one this team signs in with",
    )
    .await;
    let users = app.users(&c.owner).await.body().await;
    assert_eq!(users.as_array().unwrap().len(), 1);
}

async fn an_unreachable_provider_is_a_page_with_words(app: TestApp) {
    let Some(mut c) = connected(&app, true, "exempt").await else {
        return;
    };
    let b = app.browser();
    let callback = b.at_provider(&app, "grace@acme.test", "grace").await;
    c.idp.stop().await;
    // Down between the redirect and the return: the code cannot be exchanged.
    let response = b.visit(&callback).await;
    assert_page(response, StatusCode::BAD_GATEWAY, "cannot be reached").await;
    // Down before: the sign-in cannot start.
    let response = b.open("/login/sso?email=grace%40acme.test").await;
    let page = assert_page(response, StatusCode::BAD_GATEWAY, "cannot be reached").await;
    assert!(page.contains("Sign in with SSO"), "the sign-in page again");
    let response = app
        .post(
            "/api/v1/login/sso",
            json!({"email": "grace@acme.test"}),
            None,
        )
        .await;
    assert_error(
        response,
        StatusCode::BAD_GATEWAY,
        "sso_provider_unreachable",
    )
    .await;
}

async fn an_email_without_sso_is_told_so(app: TestApp) {
    let Some(_c) = connected(&app, true, "exempt").await else {
        return;
    };
    let response = app
        .browser()
        .open("/login/sso?email=someone%40example.com")
        .await;
    assert_page(response, StatusCode::NOT_FOUND, "not set up for this email").await;
    let response = app.browser().open("/login/sso?email=not-an-email").await;
    assert_page(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "Enter your work email",
    )
    .await;
    let response = app
        .post(
            "/api/v1/login/sso",
            json!({"email": "someone@example.com"}),
            None,
        )
        .await;
    assert_error(response, StatusCode::NOT_FOUND, "sso_not_configured").await;
    let response = app
        .post("/api/v1/login/sso", json!({"email": "nope"}), None)
        .await;
    assert_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    )
    .await;
}

async fn the_api_starts_the_same_flow(app: TestApp) {
    let Some(c) = connected(&app, true, "exempt").await else {
        return;
    };
    let response = app
        .post(
            "/api/v1/login/sso",
            json!({"email": "grace@acme.test"}),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let url = response.body().await["authorization_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let parsed = reqwest::Url::parse(&url).unwrap();
    assert!(url.starts_with(&c.idp.issuer), "{url}");
    let query: std::collections::HashMap<_, _> = parsed.query_pairs().into_owned().collect();
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], super::CLIENT_ID);
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["redirect_uri"], app.url("/login/sso/callback"));
    assert!(query["state"].len() >= 40 && query["nonce"].len() >= 16);
    assert!(query["scope"].contains("openid") && query["scope"].contains("email"));
    // The person's browser follows it; the callback signs that browser in (no state cookie
    // is needed for a flow an API client started).
    let b = app.browser();
    let authorize = b.visit(&url).await;
    let interaction = super::next_url(&authorize);
    b.visit(&interaction).await;
    let submitted = b
        .client
        .post(&interaction)
        .form(&[("prompt", "login"), ("login", "grace"), ("password", "any")])
        .send()
        .await
        .unwrap();
    let resumed = b.visit(&super::next_url(&submitted)).await;
    let done = b.visit(&super::next_url(&resumed)).await;
    assert_eq!(done.location(), "/");
    let me = app.me_body(&session_cookie(&done)).await;
    assert_eq!(me["user"]["email"], "grace@acme.test");
}

async fn an_sso_invitation_creates_the_user_at_the_first_sso_sign_in(app: TestApp) {
    // No just-in-time provisioning: only the invitation lets Grace in.
    let Some(c) = connected(&app, false, "exempt").await else {
        return;
    };
    let invite = |email: &str, sso: bool| {
        app.invite_with(
            &c.owner,
            json!({"email": email, "name": "Rear Admiral Hopper", "role": "member", "sso": sso}),
        )
    };
    let response = invite("grace@acme.test", true).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let invitation = response.body().await;
    assert_eq!(invitation["auth_source"], "sso");
    // Only for an address SSO serves.
    let error = assert_error(
        invite("grace@elsewhere.test", true).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    )
    .await;
    assert_eq!(error["error"]["field"], "sso");
    // The link offers SSO; no password can be chosen with it.
    let token = app.invitation_token("grace@acme.test", 1).await;
    let page = app.browser().open(&format!("/invitations/{token}")).await;
    assert_page(page, StatusCode::OK, "Sign in with SSO").await;
    let response = app
        .post(
            "/api/v1/invitations/accept",
            json!({"token": token, "password": "quartz lantern meadow violet"}),
            None,
        )
        .await;
    assert_error(response, StatusCode::CONFLICT, "invitation_sso").await;
    // The first SSO sign-in creates her as invited, and uses the invitation up.
    let response = app.browser().sso(&app, "grace@acme.test", "grace").await;
    assert_eq!(response.location(), "/");
    let me = app.me_body(&session_cookie(&response)).await;
    assert_eq!(me["user"]["name"], "Rear Admiral Hopper");
    assert_eq!(me["user"]["auth_source"], "sso");
    let open = app.invitations(&c.owner).await.body().await;
    assert_eq!(open.as_array().unwrap().len(), 0, "{open}");
    let kinds = team_event_kinds(&app, &c.owner).await;
    assert!(
        kinds.contains(&"invitation_accepted".to_owned()),
        "{kinds:?}"
    );
    // The next sign-in finds the link.
    let again = app.browser().sso(&app, "grace@acme.test", "grace").await;
    assert_eq!(again.location(), "/");
}

async fn sign_ins_started_and_never_finished_are_limited_per_address(app: TestApp) {
    let Some(_c) = connected(&app, true, "exempt").await else {
        return;
    };
    let start = || {
        app.post(
            "/api/v1/login/sso",
            json!({"email": "grace@acme.test"}),
            None,
        )
    };
    // A finished sign-in gives its start back.
    let finished = app.browser().sso(&app, "grace@acme.test", "grace").await;
    assert_eq!(finished.location(), "/");
    for _ in 0..50 {
        assert_eq!(start().await.status(), StatusCode::OK);
    }
    let response = start().await;
    assert!(response.headers().contains_key("retry-after"));
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    let page = app
        .browser()
        .open("/login/sso?email=grace%40acme.test")
        .await;
    assert_page(page, StatusCode::TOO_MANY_REQUESTS, "Too many attempts").await;
}

async fn an_sso_user_confirms_it_is_them_by_signing_in_again(app: TestApp) {
    let Some(_c) = connected(&app, true, "exempt").await else {
        return;
    };
    let b = app.browser();
    let first = b.sso(&app, "grace@acme.test", "grace").await;
    let token = session_cookie(&first);
    // Past the step-up window: a sensitive action asks her to confirm, and she has no
    // password.
    app.clock.advance(16 * 60);
    let response = app.setup_2fa(&token).await;
    assert_error(response, StatusCode::FORBIDDEN, "reauthentication_required").await;
    let page = b.open("/reauthenticate?return_to=/settings/security").await;
    assert_page(page, StatusCode::OK, "Sign in again with SSO").await;
    // Signing in again through the provider is a fresh authentication.
    let again = b.sso(&app, "grace@acme.test", "grace").await;
    assert_eq!(again.location(), "/");
    let fresh = session_cookie(&again);
    assert_eq!(app.setup_2fa(&fresh).await.status(), StatusCode::OK);
}
