//! Security keys and passkeys (SPEC §10) through the API, answered by a software
//! authenticator that is not ours (`webauthn-authenticator-rs`'s `SoftToken`, claiming user
//! verification): registering, the second step, passkey sign-in, and what is refused — a
//! counter that does not rise, someone else's key, an answer to another challenge, a removed
//! key, one answer raced twice, malformed answers.

mod refusals;

use crate::helpers::{PASSWORD, ResponseExt, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera_core::Clock;
use webauthn_authenticator_rs::AuthenticatorBackend;
use webauthn_authenticator_rs::softtoken::SoftToken;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

backend_tests!(
    a_first_key_turns_two_factor_on_and_answers_the_second_step,
    a_passkey_signs_in_alone_and_satisfies_the_team_requirement,
    removing_the_last_key_turns_two_factor_off,
    a_key_confirms_it_is_you_for_a_sensitive_action,
    an_authenticator_app_is_added_beside_a_key,
);

/// A security key: a software authenticator (ours to copy, to play a cloned key).
pub struct Key {
    token: SoftToken,
    origin: Url,
    /// The credential it registered, base64url, and the user handle it was made for.
    pub credential_id: Option<String>,
    pub user_handle: Option<String>,
}

impl Key {
    /// A key for the app's origin (browsers, and so the relying party, call the loopback
    /// address `localhost`).
    pub fn new(app: &TestApp) -> Self {
        let (token, _ca) = SoftToken::new(true).unwrap();
        let origin = app.base.replace("127.0.0.1", "localhost");
        Self {
            token,
            origin: Url::parse(&origin).unwrap(),
            credential_id: None,
            user_handle: None,
        }
    }

    /// The same key, cloned: its counter where this one's is now.
    pub fn clone_key(&self) -> Self {
        let token = SoftToken::from_cbor(&self.token.to_cbor().unwrap()).unwrap();
        Self {
            token,
            origin: self.origin.clone(),
            credential_id: self.credential_id.clone(),
            user_handle: self.user_handle.clone(),
        }
    }

    /// `navigator.credentials.create` with these options (`{"publicKey": …}`): the JSON of
    /// the new credential.
    pub fn create(&mut self, options: &Value) -> Value {
        self.user_handle = options["publicKey"]["user"]["id"]
            .as_str()
            .map(str::to_owned);
        let options: CreationChallengeResponse = serde_json::from_value(options.clone()).unwrap();
        let credential = self
            .token
            .perform_register(self.origin.clone(), options.public_key, 60_000)
            .unwrap();
        let credential = serde_json::to_value(credential).unwrap();
        self.credential_id = credential["rawId"].as_str().map(str::to_owned);
        credential
    }

    /// `navigator.credentials.get` with these options: the assertion's JSON.
    pub fn get(&mut self, options: &Value) -> Value {
        let options: RequestChallengeResponse = serde_json::from_value(options.clone()).unwrap();
        let assertion = self
            .token
            .perform_auth(self.origin.clone(), options.public_key, 60_000)
            .unwrap();
        serde_json::to_value(assertion).unwrap()
    }

    /// A discoverable credential's answer to options that list none: the authenticator
    /// picks its credential for the site and returns its user handle (this software token
    /// keeps no resident keys, so the test points it at its credential).
    pub fn get_discoverable(&mut self, options: &Value) -> Value {
        let mut options = options.clone();
        let id = self.credential_id.clone().unwrap();
        options["publicKey"]["allowCredentials"] = json!([{"type": "public-key", "id": id}]);
        let mut assertion = self.get(&options);
        assertion["response"]["userHandle"] = json!(self.user_handle.clone().unwrap());
        assertion
    }
}

impl TestApp {
    /// Registers `key` for the session's user, named `name`: the finish's answer.
    pub async fn register_key(&self, token: &str, key: &mut Key, name: &str) -> Value {
        let started = self
            .post("/api/v1/me/webauthn/register/start", json!({}), Some(token))
            .await;
        assert_eq!(started.status(), StatusCode::OK);
        let options = started.body().await["options"].clone();
        let credential = key.create(&options);
        let finished = self
            .post(
                "/api/v1/me/webauthn/register/finish",
                json!({ "name": name, "credential": credential }),
                Some(token),
            )
            .await;
        assert_eq!(finished.status(), StatusCode::CREATED);
        finished.body().await
    }

    /// A user signed in with one key registered: the session token and the key.
    pub async fn user_with_key(&self, email: &str) -> (String, Key) {
        let token = self.signed_in(email).await;
        let mut key = Key::new(self);
        self.register_key(&token, &mut key, "My YubiKey").await;
        (token, key)
    }

    /// The password step of a user with a key: the `two_factor_required` answer.
    pub async fn key_challenge(&self, email: &str) -> Value {
        let body = self.login(email, PASSWORD).await.body().await;
        assert_eq!(body["status"], "two_factor_required", "{body}");
        body
    }

    /// `POST /login/verify` with a key's assertion.
    pub async fn verify_key(&self, challenge: &Value, assertion: &Value) -> reqwest::Response {
        self.post(
            "/api/v1/login/verify",
            json!({ "challenge_token": challenge["challenge_token"], "webauthn": assertion }),
            None,
        )
        .await
    }

    /// The user's keys (`GET /me/webauthn`).
    pub async fn security_keys(&self, token: &str) -> Vec<Value> {
        let response = self.get("/api/v1/me/webauthn", Some(token)).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.body().await.as_array().unwrap().clone()
    }

    /// The kinds of the user's events, newest first.
    pub async fn event_kinds(&self, token: &str) -> Vec<String> {
        let body = self.events(token, "limit=100").await.body().await;
        body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_owned())
            .collect()
    }
}

async fn a_first_key_turns_two_factor_on_and_answers_the_second_step(app: TestApp) {
    let token = app.signed_in("key@example.com").await;
    let mut key = Key::new(&app);
    let first = app.register_key(&token, &mut key, "My YubiKey").await;
    assert_eq!(first["name"], "My YubiKey");
    assert_eq!(first["recovery_codes"].as_array().unwrap().len(), 10);
    assert_eq!(first["paper_key"].as_str().unwrap().len(), 64);
    let me = app.me_body(&token).await;
    assert_eq!(me["two_factor"]["enabled"], true, "{me}");
    let keys = app.security_keys(&token).await;
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["last_used_at"], Value::Null);
    // A second key is no first factor: no new codes.
    let mut spare = Key::new(&app);
    let second = app.register_key(&token, &mut spare, "Spare key").await;
    assert!(second.get("recovery_codes").is_none(), "{second}");
    assert_eq!(
        app.emails_of_kind("key@example.com", "two_factor_enabled")
            .await,
        1
    );

    let challenge = app.key_challenge("key@example.com").await;
    assert_eq!(challenge["methods"], json!(["webauthn", "recovery_code"]));
    let options = &challenge["webauthn_options"];
    assert_eq!(options["publicKey"]["userVerification"], "required");
    assert_eq!(options["publicKey"]["rpId"], "localhost");
    assert_eq!(
        options["publicKey"]["allowCredentials"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let assertion = key.get(options);
    let response = app.verify_key(&challenge, &assertion).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.body().await;
    assert_eq!(body["status"], "authenticated");
    assert_eq!(body["method_used"], "webauthn");
    let signed_in = body["session_token"].as_str().unwrap();
    let keys = app.security_keys(signed_in).await;
    assert!(keys[0]["last_used_at"].is_string(), "{keys:?}");
    assert!(keys[1]["last_used_at"].is_null(), "{keys:?}");
    // The challenge is spent.
    let again = app.verify_key(&challenge, &key.get(options)).await;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    let kinds = app.event_kinds(signed_in).await;
    for kind in ["security_key_added", "two_factor_enabled", "sign_in"] {
        assert!(kinds.contains(&kind.to_owned()), "{kind} in {kinds:?}");
    }
}

async fn a_passkey_signs_in_alone_and_satisfies_the_team_requirement(app: TestApp) {
    let (token, mut key) = app.user_with_key("passkey@example.com").await;
    let policy = app
        .set_2fa_policy(&token, json!({ "required": true }))
        .await;
    assert_eq!(policy.status(), StatusCode::OK);

    let started = app
        .post("/api/v1/login/passkey/start", json!({}), None)
        .await;
    assert_eq!(started.status(), StatusCode::OK);
    let started = started.body().await;
    let options = &started["options"];
    assert_eq!(options["publicKey"]["userVerification"], "required");
    assert!(
        options["publicKey"]
            .get("allowCredentials")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty),
        "no credential listed: {options}"
    );
    let assertion = key.get_discoverable(options);
    let response = app
        .post(
            "/api/v1/login/passkey/finish",
            json!({ "challenge_token": started["challenge_token"], "credential": assertion }),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.body().await;
    assert_eq!(body["status"], "authenticated", "{body}");
    assert_eq!(body["method_used"], "passkey");
    let session = body["session_token"].as_str().unwrap();
    let me = app.me_body(session).await;
    assert_eq!(me["enforcement"]["status"], "compliant", "{me}");
    // A full session: it may do what a restricted one may not.
    assert_eq!(app.devices(session).await.status(), StatusCode::OK);
    // Each start serves one finish.
    let again = app
        .post(
            "/api/v1/login/passkey/finish",
            json!({ "challenge_token": started["challenge_token"], "credential": key.get_discoverable(options) }),
            None,
        )
        .await;
    crate::helpers::assert_error(again, StatusCode::UNAUTHORIZED, "challenge_expired").await;
}

async fn a_key_confirms_it_is_you_for_a_sensitive_action(app: TestApp) {
    let (token, mut key) = app.user_with_key("stepup@example.com").await;
    app.clock.advance(16 * 60);
    let start = "/api/v1/me/webauthn/register/start";
    let refused = app.post(start, json!({}), Some(&token)).await;
    crate::helpers::assert_error(refused, StatusCode::FORBIDDEN, "reauthentication_required").await;
    let options = app
        .post("/api/v1/me/reauthenticate/options", json!({}), Some(&token))
        .await
        .body()
        .await["webauthn_options"]
        .clone();
    assert_eq!(options["publicKey"]["userVerification"], "required");
    let assertion = key.get(&options);
    let body = json!({ "password": PASSWORD, "webauthn": assertion });
    let response = app.reauthenticate(&token, body.clone()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.body().await["method_used"], "webauthn");
    assert_eq!(app.post(start, json!({}), Some(&token)).await.status(), 200);
    // The options answer once.
    let again = app.reauthenticate(&token, body).await;
    crate::helpers::assert_error(again, StatusCode::UNAUTHORIZED, "invalid_code").await;
}

async fn removing_the_last_key_turns_two_factor_off(app: TestApp) {
    let (token, _key) = app.user_with_key("last@example.com").await;
    let keys = app.security_keys(&token).await;
    let id = keys[0]["id"].as_str().unwrap();
    let removed = app
        .delete(&format!("/api/v1/me/webauthn/{id}"), Some(&token))
        .await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    let me = app.me_body(&token).await;
    assert_eq!(me["two_factor"]["enabled"], false, "{me}");
    assert_eq!(me["two_factor"]["recovery_codes_remaining"], 0);
    assert_eq!(
        app.emails_of_kind("last@example.com", "two_factor_disabled")
            .await,
        1
    );
    let kinds = app.event_kinds(&token).await;
    for kind in ["security_key_removed", "two_factor_disabled"] {
        assert!(kinds.contains(&kind.to_owned()), "{kind} in {kinds:?}");
    }
    // Unknown and malformed ids are 404.
    for id in [id, "not-an-id"] {
        let again = app
            .delete(&format!("/api/v1/me/webauthn/{id}"), Some(&token))
            .await;
        assert_eq!(again.status(), StatusCode::NOT_FOUND);
    }
}

/// 2FA on through a key: an authenticator app is one more factor. Its activation keeps the
/// recovery codes (none new), and either factor answers the second step.
async fn an_authenticator_app_is_added_beside_a_key(app: TestApp) {
    let (token, mut key) = app.user_with_key("both@example.com").await;
    let before = app.me_body(&token).await["two_factor"]["recovery_codes_remaining"].clone();
    let setup = app.setup_2fa(&token).await;
    assert_eq!(setup.status(), StatusCode::OK);
    let setup = setup.body().await;
    let secret = setup["secret"].as_str().unwrap().to_owned();
    let Some(code) = crate::otp::oathtool(&secret, app.clock.now()) else {
        return;
    };
    let activated = app.activate_2fa(&token, &code).await;
    assert_eq!(activated.status(), StatusCode::OK);
    let activated = activated.body().await;
    assert_eq!(activated["recovery_codes"], json!([]), "{activated}");
    let me = app.me_body(&token).await;
    assert_eq!(me["two_factor"]["recovery_codes_remaining"], before, "{me}");
    let kinds = app.event_kinds(&token).await;
    assert!(
        kinds.contains(&"authenticator_added".to_owned()),
        "{kinds:?}"
    );
    // Now set up: a second setup is refused.
    crate::helpers::assert_error(
        app.setup_2fa(&token).await,
        StatusCode::CONFLICT,
        "already_enabled",
    )
    .await;
    app.clock.advance(30);

    // The second step offers both, and takes either.
    let challenge = app.key_challenge("both@example.com").await;
    let methods = challenge["methods"].to_string();
    assert!(
        methods.contains("totp") && methods.contains("webauthn"),
        "{methods}"
    );
    let code = crate::otp::oathtool(&secret, app.clock.now()).unwrap();
    let token_of = challenge["challenge_token"].as_str().unwrap();
    assert_eq!(app.verify(token_of, &code).await.status(), StatusCode::OK);
    let challenge = app.key_challenge("both@example.com").await;
    let assertion = key.get(&challenge["webauthn_options"]);
    assert_eq!(
        app.verify_key(&challenge, &assertion).await.status(),
        StatusCode::OK
    );
}
