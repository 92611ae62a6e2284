//! The steps many tests share, each checking that it went as it should: sign up and in,
//! turn 2FA on, answer a second step, join a team, lock a password out.

use super::{PASSWORD, ResponseExt, TestApp};
use crate::otp::oathtool;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera_core::Clock;

/// A user's second factor, as activation showed it.
pub struct SecondFactor {
    /// The TOTP key, base32.
    pub secret: String,
    pub recovery_codes: Vec<String>,
    pub paper_key: String,
}

/// An account with an owner, an admin and a member, each signed in; the owner and the admin
/// with 2FA on (what their recovery powers need, SPEC §9 / review F6).
pub struct Team {
    pub owner: String,
    pub owner_id: String,
    pub owner_2fa: SecondFactor,
    pub admin: String,
    pub admin_id: String,
    pub admin_2fa: SecondFactor,
    pub member: String,
    pub member_id: String,
}

/// The strings of a JSON array.
pub fn strings(array: &Value) -> Vec<String> {
    array
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

impl TestApp {
    /// Signs up Ada Lovelace at `email`, owner of a new account "Acme" (in `verify` mode,
    /// through the link emailed to her): the answer's body, with `user` and `account`.
    pub async fn signed_up(&self, email: &str) -> Value {
        let links_before = self.signup_links_sent(email).await;
        let response = self
            .signup(
                &json!({"account_name": "Acme", "name": "Ada Lovelace", "email": email,
                             "password": PASSWORD}),
            )
            .await;
        if response.status() == StatusCode::ACCEPTED {
            let token = self.signup_token(email, links_before + 1).await;
            let response = self.confirm_signup(&json!({ "token": token })).await;
            assert_eq!(response.status(), StatusCode::CREATED);
            return response.body().await;
        }
        assert_eq!(response.status(), StatusCode::CREATED);
        response.body().await
    }

    /// Signs up `email` and signs in: the session token.
    pub async fn signed_in(&self, email: &str) -> String {
        self.signed_up(email).await;
        self.signed_in_again(email).await
    }

    /// Signs in an existing user (with the emailed code, the first time): the session token.
    pub async fn signed_in_again(&self, email: &str) -> String {
        let response = self.login(email, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = response.body().await;
        if body["status"] == "device_verification_required" {
            body = self.verify_device(email, &body).await;
        }
        body["session_token"].as_str().unwrap().to_owned()
    }

    /// Answers a device challenge with the code emailed for it (the next device code to
    /// `email` this helper has not answered yet), and keeps the device token: the sign-in's
    /// answer.
    pub async fn verify_device(&self, email: &str, challenge: &Value) -> Value {
        let code = self.next_device_code(email).await;
        let response = self
            .verify(challenge["challenge_token"].as_str().unwrap(), &code)
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let body = response.body().await;
        assert_eq!(body["method_used"], "email_code", "{body}");
        let device = body["device_token"].as_str().unwrap().to_owned();
        self.known_devices
            .lock()
            .unwrap()
            .insert(email.to_owned(), device);
        body
    }

    /// The `/me` of the session, which must be valid.
    pub async fn me_body(&self, token: &str) -> Value {
        let response = self.me(token).await;
        assert_eq!(response.status(), 200);
        response.body().await
    }

    /// The id of the session's user.
    pub async fn user_id(&self, token: &str) -> String {
        let me = self.me_body(token).await;
        me["user"]["id"].as_str().unwrap().to_owned()
    }

    /// Ten wrong passwords: locks the user's password sign-in (and emails them).
    pub async fn lock_out(&self, email: &str) {
        for _ in 0..10 {
            assert_eq!(self.login(email, "wrong password").await.status(), 401);
        }
        assert_eq!(self.login(email, PASSWORD).await.status(), 429);
    }

    /// Turns 2FA on for the session's user (`None` without oathtool, outside CI). The clock
    /// is moved past the activation step so the next code is fresh.
    pub async fn enable_2fa(&self, token: &str) -> Option<SecondFactor> {
        let response = self.setup_2fa(token).await;
        assert_eq!(response.status(), StatusCode::OK);
        let setup = response.body().await;
        let secret = setup["secret"].as_str().unwrap().to_owned();
        let code = oathtool(&secret, self.clock.now())?;
        let response = self.activate_2fa(token, &code).await;
        assert_eq!(response.status(), StatusCode::OK);
        let recovery_codes = strings(&response.body().await["recovery_codes"]);
        self.clock.advance(30);
        Some(SecondFactor {
            secret,
            recovery_codes,
            paper_key: setup["paper_key"].as_str().unwrap().to_owned(),
        })
    }

    /// A new user with 2FA on: the session token and the second factor.
    pub async fn user_with_2fa(&self, email: &str) -> Option<(String, SecondFactor)> {
        let token = self.signed_in(email).await;
        let factor = self.enable_2fa(&token).await?;
        Some((token, factor))
    }

    /// Re-authenticates the session (password, and a fresh TOTP code of `factor` if given):
    /// its step-up window starts now. The clock moves past the code's step.
    pub async fn reauthenticated(&self, token: &str, factor: Option<&SecondFactor>) {
        let mut body = json!({ "password": PASSWORD });
        if let Some(factor) = factor {
            body["code"] = json!(self.totp(factor));
        }
        let response = self.reauthenticate(token, body).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{}",
            response.body().await
        );
        self.clock.advance(30);
    }

    /// The TOTP code of `factor` now.
    pub fn totp(&self, factor: &SecondFactor) -> String {
        self.totp_at(factor, 0)
    }

    /// The TOTP code of `factor` `offset` seconds from now.
    pub fn totp_at(&self, factor: &SecondFactor, offset: i64) -> String {
        oathtool(&factor.secret, self.clock.now().plus_secs(offset)).unwrap()
    }

    /// Signs in a user with 2FA with the password: the challenge token of the second step.
    pub async fn two_factor_challenge(&self, email: &str) -> String {
        let body = self.login(email, PASSWORD).await.body().await;
        assert_eq!(body["status"], "two_factor_required", "{body}");
        body["challenge_token"].as_str().unwrap().to_owned()
    }

    /// Signs in a user with 2FA: password, then a fresh TOTP code of `factor` (the clock
    /// moves past its step). The session token.
    pub async fn signed_in_with_code(&self, email: &str, factor: &SecondFactor) -> String {
        let challenge = self.two_factor_challenge(email).await;
        let response = self.verify(&challenge, &self.totp(factor)).await;
        assert_eq!(response.status(), StatusCode::OK);
        self.clock.advance(30);
        let body = response.body().await;
        body["session_token"].as_str().unwrap().to_owned()
    }

    /// Invites `email` into the owner's account with `role`, accepts, signs in:
    /// (user id, session token).
    pub async fn join(&self, owner: &str, email: &str, role: &str) -> (String, String) {
        let sent = self.invitations_sent(email).await;
        assert_eq!(self.invite(owner, email, role).await.status(), 201);
        let token = self.invitation_token(email, sent + 1).await;
        let response = self.accept_invitation(&token, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let id = response.body().await["user"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        (id, self.signed_in_again(email).await)
    }

    /// Signs up `email` as a team's owner with 2FA on (oathtool is needed): the session
    /// token, whose sign-in counts as a fresh authentication.
    pub async fn owner_with_2fa(&self, email: &str) -> String {
        let (token, _) = self
            .user_with_2fa(email)
            .await
            .expect("oathtool: a team's owner needs 2FA for the team's recovery powers");
        token
    }

    /// owner@, admin@ and member@example.com in one account, each signed in; the owner and
    /// the admin with 2FA on (oathtool is needed).
    pub async fn team(&self) -> Team {
        let (owner, owner_2fa) = self
            .user_with_2fa("owner@example.com")
            .await
            .expect("oathtool: a team's owner needs 2FA for the team's recovery powers");
        let owner_id = self.user_id(&owner).await;
        let (admin_id, admin) = self.join(&owner, "admin@example.com", "admin").await;
        let admin_2fa = self.enable_2fa(&admin).await.expect("oathtool");
        let (member_id, member) = self.join(&owner, "member@example.com", "member").await;
        Team {
            owner,
            owner_id,
            owner_2fa,
            admin,
            admin_id,
            admin_2fa,
            member,
            member_id,
        }
    }

    /// Whether an email of this kind is in the outbox, sent or not.
    pub async fn emailed(&self, kind: &str) -> bool {
        let outbox = self.store().await.list_outbox(true, 100).await.unwrap();
        outbox.iter().any(|e| e.kind == kind)
    }
}
