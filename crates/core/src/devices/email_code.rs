//! The code emailed for an unrecognized device: opening the challenge that sends it, and
//! answering it at the second step.

use super::CodeSent;
use crate::Timestamp;
use crate::codes::CodePurpose;
use crate::crypto::Token;
use crate::ctx::{Ctx, Internal};
use crate::factors::totp::TotpCode;
use crate::factors::{Checked, Method, OnSuccess, Proof, SecondFactor};
use crate::mail::Message;
use crate::model::{
    Account, Challenge, ChallengeId, ChallengeKind, EventKind, NewEvent, RequestMeta, User,
};
use crate::second_step::ChallengeContext;
use crate::sign_in::PendingChallenge;
use crate::store::Effects;
use crate::throttle::RetryAt;
use crate::throttle::send_window::admit_send;
use async_trait::async_trait;
use rand::Rng;
use rand::rngs::OsRng;
use serde_json::json;

/// Six random digits.
pub(super) fn generate_code() -> String {
    format!("{:06}", OsRng.gen_range(0..1_000_000u32))
}

/// A code's hash, as stored with its challenge.
pub(super) fn hash(ctx: &Ctx, user: &User, code: &str) -> Vec<u8> {
    ctx.code_hash(CodePurpose::Device, user.id, code)
}

impl Ctx {
    /// Opens a device challenge and emails its code, or refuses when the user has had their
    /// codes for this hour.
    pub(crate) async fn open_device_challenge(
        &self,
        user: &User,
        meta: &RequestMeta,
        now: Timestamp,
    ) -> Result<Result<PendingChallenge, RetryAt>, Internal> {
        let token = Token::generate();
        let code = generate_code();
        let challenge = Challenge {
            id: ChallengeId::new(),
            user_id: user.id,
            kind: ChallengeKind::Device,
            attempts: 0,
            created_at: now,
            expires_at: now.plus_secs(self.policy.email_code_lifetime_secs),
            last_sent_at: Some(now),
            meta: meta.clone(),
            device_id: None,
        };
        let message = Message::DeviceCode {
            code: code.clone(),
            expires_at: challenge.expires_at,
        };
        let email = self.email_to(user, meta, now, message).await?;
        let window = self.policy.email_code_sends();
        let sent = self
            .store
            .create_device_challenge(
                &challenge,
                &token.hash(),
                &hash(self, user, &code),
                &mut |sent| admit_send(sent, now, &window),
                &Effects::default().and_email(email),
            )
            .await?;
        match sent {
            CodeSent::Limited(retry_at) => Ok(Err(RetryAt(retry_at))),
            // A new challenge is always live; nothing else can refuse it.
            CodeSent::Sent | CodeSent::NotNow => Ok(Ok(PendingChallenge {
                token,
                challenge,
                methods: vec![Method::EmailCode],
                webauthn_options: None,
            })),
        }
    }
}

/// The emailed code, typed at the second step of a device challenge.
pub(crate) struct EmailCode;

#[async_trait]
impl SecondFactor for EmailCode {
    fn method(&self) -> Method {
        Method::EmailCode
    }

    fn answers(&self, kind: ChallengeKind) -> bool {
        kind == ChallengeKind::Device
    }

    fn read(&self, _ctx: &Ctx, answer: &str) -> Option<String> {
        TotpCode::parse(answer).map(|code| code.as_str().to_owned())
    }

    /// Whether it is the challenge's latest code is for the store's spend to say; the device
    /// it would verify is made ready here.
    async fn check(
        &self,
        ctx: &Ctx,
        challenge: &ChallengeContext,
        answer: &str,
        meta: &RequestMeta,
        now: Timestamp,
    ) -> Result<Checked, Internal> {
        let token = Token::generate();
        let user = &challenge.user;
        let proof = Proof::EmailCode {
            hash: hash(ctx, user, answer),
            device: ctx.new_device(user, meta, now),
            token: token.hash(),
        };
        Ok(Checked {
            proof: Some(proof),
            already_used: false,
            device_token: Some(token),
            counter_refused: None,
        })
    }

    /// The device's verification, recorded beside the sign-in.
    async fn on_success(
        &self,
        _ctx: &Ctx,
        user: &User,
        _account: &Account,
        proof: Option<&Proof>,
        meta: &RequestMeta,
        now: Timestamp,
    ) -> Result<OnSuccess, Internal> {
        let mut effects = Effects::default();
        if let Some(Proof::EmailCode { device, .. }) = proof {
            effects = effects.and_event(
                NewEvent::for_user(user, EventKind::DeviceVerified, meta, now).with_detail(
                    json!({ "device_id": device.id, "user_agent": device.user_agent }),
                ),
            );
        }
        Ok(OnSuccess {
            effects,
            recovery_codes_remaining: None,
        })
    }
}
