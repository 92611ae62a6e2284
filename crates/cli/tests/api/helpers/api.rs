//! [`Api`]: one helper per endpoint of `/api/v1`, named for what it does. Each answers the
//! raw response, so tests still assert status codes and error bodies; [`ResponseExt::body`]
//! reads the JSON of an answer.

use reqwest::{Client, Method, RequestBuilder, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The application's HTTP API as one client sees it. Cheap to clone (see [`super::TestApp::api`]).
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub client: Client,
    /// Device tokens from email-code sign-ins, by email: [`Api::login`] sends them, as a
    /// browser would.
    pub(super) known_devices: Arc<Mutex<HashMap<String, String>>>,
}

/// What tests read from an answer.
pub trait ResponseExt {
    /// The JSON body.
    fn body(self) -> impl Future<Output = Value> + Send;
    /// The text body: a page's HTML, the metrics.
    fn html(self) -> impl Future<Output = String> + Send;
    /// Where a redirect leads.
    fn location(&self) -> &str;
}

impl ResponseExt for Response {
    async fn body(self) -> Value {
        self.json().await.expect("a JSON body")
    }

    async fn html(self) -> String {
        self.text().await.expect("a text body")
    }

    fn location(&self) -> &str {
        self.headers()["location"].to_str().unwrap()
    }
}

/// Extra headers of one request, as `(name, value)`.
pub type Headers<'a> = &'a [(&'a str, &'a str)];

impl Api {
    /// The API of a Tessera listening at `base` (`http://host:port`).
    pub fn at(base: &str) -> Self {
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            base: base.to_owned(),
            ..Self::new(client)
        }
    }

    pub(super) fn new(client: Client) -> Self {
        Self {
            base: String::new(),
            client,
            known_devices: Default::default(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let request = self.client.request(method, self.url(path));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn send(request: RequestBuilder) -> Response {
        request.send().await.unwrap()
    }

    // Any path, for tests about the HTTP layer itself (errors, headers, routing).

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        Self::send(self.request(Method::GET, path, token)).await
    }

    pub async fn post(&self, path: &str, body: Value, token: Option<&str>) -> Response {
        Self::send(self.request(Method::POST, path, token).json(&body)).await
    }

    pub async fn put(&self, path: &str, body: Value, token: Option<&str>) -> Response {
        Self::send(self.request(Method::PUT, path, token).json(&body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Response {
        Self::send(self.request(Method::DELETE, path, token)).await
    }

    async fn post_with(&self, path: &str, body: &Value, headers: Headers<'_>) -> Response {
        let mut request = self.request(Method::POST, path, None).json(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Self::send(request).await
    }

    // Signing up and in.

    /// `POST /signup/confirm`.
    pub async fn confirm_signup(&self, body: &Value) -> Response {
        self.post("/api/v1/signup/confirm", body.clone(), None)
            .await
    }

    /// `POST /signup`.
    pub async fn signup(&self, body: &Value) -> Response {
        self.post("/api/v1/signup", body.clone(), None).await
    }

    /// `POST /login` from this test's "browser": with the device token of an earlier
    /// email-code sign-in of `email`, if there was one.
    pub async fn login(&self, email: &str, password: &str) -> Response {
        let device = self.known_devices.lock().unwrap().get(email).cloned();
        let body = json!({"email": email, "password": password, "device_token": device});
        self.login_with(&body, &[]).await
    }

    /// `POST /login` with the password, from a browser with this User-Agent and device token.
    pub async fn login_as(&self, email: &str, user_agent: &str, device: Option<&str>) -> Response {
        let body = json!({"email": email, "password": super::PASSWORD, "device_token": device});
        self.login_with(&body, &[("user-agent", user_agent)]).await
    }

    /// `POST /login` with any body and headers.
    pub async fn login_with(&self, body: &Value, headers: Headers<'_>) -> Response {
        self.post_with("/api/v1/login", body, headers).await
    }

    /// `POST /login/verify`: answers a sign-in's challenge with a code.
    pub async fn verify(&self, challenge: &str, code: &str) -> Response {
        self.verify_with(&json!({"challenge_token": challenge, "code": code}), &[])
            .await
    }

    /// `POST /login/verify` from a browser with this User-Agent.
    pub async fn verify_as(&self, user_agent: &str, challenge: &str, code: &str) -> Response {
        let body = json!({"challenge_token": challenge, "code": code});
        self.verify_with(&body, &[("user-agent", user_agent)]).await
    }

    /// `POST /login/verify` with any body and headers.
    pub async fn verify_with(&self, body: &Value, headers: Headers<'_>) -> Response {
        self.post_with("/api/v1/login/verify", body, headers).await
    }

    /// `POST /login/resend`: a new emailed code for the challenge.
    pub async fn resend(&self, challenge: &str) -> Response {
        let body = json!({"challenge_token": challenge});
        self.post("/api/v1/login/resend", body, None).await
    }

    /// `POST /recover`: turns 2FA off with the paper key.
    pub async fn recover(&self, email: &str, paper_key: &str) -> Response {
        let body = json!({"email": email, "paper_key": paper_key});
        self.post("/api/v1/recover", body, None).await
    }

    // Passwords (SPEC §8).

    /// `POST /me/password`.
    pub async fn change_password(&self, token: &str, current: &str, new: &str) -> Response {
        let body = json!({"current_password": current, "new_password": new});
        self.post("/api/v1/me/password", body, Some(token)).await
    }

    /// `POST /password/forgot`.
    pub async fn forgot_password(&self, email: &str) -> Response {
        let body = json!({"email": email});
        self.post("/api/v1/password/forgot", body, None).await
    }

    /// `POST /password/reset`.
    pub async fn reset_password(&self, token: &str, new: &str) -> Response {
        let body = json!({"token": token, "new_password": new});
        self.post("/api/v1/password/reset", body, None).await
    }

    /// `POST /logout`.
    pub async fn logout(&self, token: &str) -> Response {
        self.post("/api/v1/logout", json!({}), Some(token)).await
    }

    // The signed-in user.

    /// `GET /me`.
    pub async fn me(&self, token: &str) -> Response {
        self.get("/api/v1/me", Some(token)).await
    }

    /// `GET /me/events?{query}` (no query: `""`).
    pub async fn events(&self, token: &str, query: &str) -> Response {
        self.get(&with_query("/api/v1/me/events", query), Some(token))
            .await
    }

    /// `GET /me/devices`.
    pub async fn devices(&self, token: &str) -> Response {
        self.get("/api/v1/me/devices", Some(token)).await
    }

    /// `DELETE /me/devices/{id}`.
    pub async fn forget_device(&self, token: &str, id: &str) -> Response {
        self.delete(&format!("/api/v1/me/devices/{id}"), Some(token))
            .await
    }

    /// `GET /me/sessions`.
    pub async fn sessions(&self, token: &str) -> Response {
        self.get("/api/v1/me/sessions", Some(token)).await
    }

    /// `DELETE /me/sessions/{id}`.
    pub async fn end_session(&self, token: &str, id: &str) -> Response {
        self.delete(&format!("/api/v1/me/sessions/{id}"), Some(token))
            .await
    }

    /// `DELETE /me/sessions`: signs out everywhere else.
    pub async fn end_other_sessions(&self, token: &str) -> Response {
        self.delete("/api/v1/me/sessions", Some(token)).await
    }

    /// `POST /me/2fa/setup`.
    pub async fn setup_2fa(&self, token: &str) -> Response {
        self.post("/api/v1/me/2fa/setup", json!({}), Some(token))
            .await
    }

    /// `POST /me/2fa/activate`.
    pub async fn activate_2fa(&self, token: &str, code: &str) -> Response {
        let body = json!({"code": code});
        self.post("/api/v1/me/2fa/activate", body, Some(token))
            .await
    }

    /// `POST /me/2fa/disable`.
    pub async fn disable_2fa(&self, token: &str, password: &str) -> Response {
        let body = json!({"password": password});
        self.post("/api/v1/me/2fa/disable", body, Some(token)).await
    }

    /// `POST /me/2fa/disable` with `{}`: within the step-up window.
    pub async fn disable_2fa_stepped_up(&self, token: &str) -> Response {
        self.post("/api/v1/me/2fa/disable", json!({}), Some(token))
            .await
    }

    /// `POST /me/2fa/recovery-codes` with `{}`: within the step-up window.
    pub async fn regenerate_stepped_up(&self, token: &str) -> Response {
        self.post("/api/v1/me/2fa/recovery-codes", json!({}), Some(token))
            .await
    }

    /// `POST /me/reauthenticate` with `body` (`{password, code?, method?}`).
    pub async fn reauthenticate(&self, token: &str, body: Value) -> Response {
        self.post("/api/v1/me/reauthenticate", body, Some(token))
            .await
    }

    /// `POST /me/2fa/recovery-codes`: a new set.
    pub async fn regenerate_recovery_codes(&self, token: &str, password: &str) -> Response {
        let body = json!({"password": password});
        self.post("/api/v1/me/2fa/recovery-codes", body, Some(token))
            .await
    }

    // The account, for its owner and admins.

    /// `GET /account`.
    pub async fn account(&self, token: &str) -> Response {
        self.get("/api/v1/account", Some(token)).await
    }

    /// `PUT /account/two-factor-policy`.
    pub async fn set_2fa_policy(&self, token: &str, policy: Value) -> Response {
        self.put("/api/v1/account/two-factor-policy", policy, Some(token))
            .await
    }

    /// `GET /account/users`.
    pub async fn users(&self, token: &str) -> Response {
        self.get("/api/v1/account/users", Some(token)).await
    }

    /// `DELETE /account/users/{id}`.
    pub async fn delete_user(&self, token: &str, id: &str) -> Response {
        self.delete(&format!("/api/v1/account/users/{id}"), Some(token))
            .await
    }

    /// `POST /account/users/{id}/two-factor/reset`.
    pub async fn reset_2fa(&self, token: &str, user: &str) -> Response {
        let path = format!("/api/v1/account/users/{user}/two-factor/reset");
        self.post(&path, json!({}), Some(token)).await
    }

    /// `GET /account/events?{query}` (no query: `""`).
    pub async fn account_events(&self, token: &str, query: &str) -> Response {
        self.get(&with_query("/api/v1/account/events", query), Some(token))
            .await
    }

    /// `GET /account/invitations`: the open ones.
    pub async fn invitations(&self, token: &str) -> Response {
        self.get("/api/v1/account/invitations", Some(token)).await
    }

    /// `POST /account/invitations` for Grace Hopper at `email`.
    pub async fn invite(&self, token: &str, email: &str, role: &str) -> Response {
        let body = json!({"email": email, "name": "Grace Hopper", "role": role});
        self.invite_with(token, body).await
    }

    /// `POST /account/invitations` with any body.
    pub async fn invite_with(&self, token: &str, body: Value) -> Response {
        self.post("/api/v1/account/invitations", body, Some(token))
            .await
    }

    /// `DELETE /account/invitations/{id}`.
    pub async fn revoke_invitation(&self, token: &str, id: &str) -> Response {
        self.delete(&format!("/api/v1/account/invitations/{id}"), Some(token))
            .await
    }

    /// `POST /invitations/accept` with the invitation's token and a password.
    pub async fn accept_invitation(&self, invitation: &str, password: &str) -> Response {
        let body = json!({"token": invitation, "password": password});
        self.post("/api/v1/invitations/accept", body, None).await
    }

    /// `POST /invitations/accept`, choosing a name too.
    pub async fn accept_invitation_as(
        &self,
        invitation: &str,
        password: &str,
        name: &str,
    ) -> Response {
        let body = json!({"token": invitation, "password": password, "name": name});
        self.post("/api/v1/invitations/accept", body, None).await
    }

    /// `GET /invitations/{token}`: the page an invitation's link opens.
    pub async fn invitation_page(&self, invitation: &str) -> Response {
        self.get(&format!("/invitations/{invitation}"), None).await
    }

    // Operations.

    /// `GET /health`.
    pub async fn health(&self) -> Response {
        self.get("/api/v1/health", None).await
    }

    /// `GET /metrics`.
    pub async fn metrics(&self) -> Response {
        self.get("/metrics", None).await
    }

    /// `GET /openapi.json`.
    pub async fn openapi(&self) -> Response {
        self.get("/api/v1/openapi.json", None).await
    }
}

fn with_query(path: &str, query: &str) -> String {
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    }
}
