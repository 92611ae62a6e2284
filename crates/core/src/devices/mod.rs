//! Email codes for unrecognized devices (Mailtrap; SPEC §2, §3), the devices a user has
//! verified.
//!
//! ## Recognition
//! A device is recognized for a user while its token (cookie `tessera_device`, or
//! `device_token` in the API) belongs to a device of that user, its lifetime (30 days) has
//! not lapsed, and the request's User-Agent is the one it was verified with: a new browser,
//! or a new version of it, is a new device. Users with 2FA skip this step; nothing else
//! turns it off.
//!
//! ## The device challenge
//! After the right password from an unrecognized device, a challenge of kind `device` is
//! opened and a 6-digit code emailed (valid 10 min, 5 wrong attempts); it replaces any
//! device challenge the user had open. A resend replaces the code (valid 10 min from then),
//! at the earliest 30 s after the last one; each user gets at most 5 codes in any hour
//! (sign-ins and resends together: [`crate::throttle::send_window`], run under the user's
//! row lock). Turning 2FA on ends the open device challenge. The code is answered at `POST /login/verify` like any
//! second step: the challenge is consumed, the device stored and the session opened in one
//! transaction, so a code signs in once however many requests race.

mod email_code;
mod port;
mod trust;

pub(crate) use email_code::EmailCode;
pub use port::{CodeSent, DeviceStore};

use crate::Timestamp;
use crate::crypto::Token;
use crate::ctx::{Ctx, Internal, internal_from};
use crate::mail::Message;
use crate::model::{ChallengeKind, Device, DeviceId, EventKind, RequestMeta, User};
use crate::principal::FullSession;
use crate::sessions::SignedIn;
use crate::store::Effects;
use crate::throttle::send_window::admit_send;
use serde_json::json;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ResendError {
    #[error("this sign-in has expired; enter your password again")]
    ChallengeExpired,
    /// Too soon after the last code, or too many codes this hour.
    #[error("too many attempts")]
    TooManyAttempts { retry_at: Timestamp },
    #[error(transparent)]
    Internal(#[from] Internal),
}

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Internal(#[from] Internal),
}

internal_from!(ResendError, DeviceError);

/// Devices and emailed codes. Cheap to clone.
#[derive(Clone)]
pub struct Devices(pub(crate) Arc<Ctx>);

impl Devices {
    /// Emails a new code for a device challenge (the old one stops working); returns when
    /// the next resend will be allowed.
    pub async fn resend_code(
        &self,
        challenge_token: &str,
        meta: &RequestMeta,
    ) -> Result<Timestamp, ResendError> {
        let ctx = &self.0;
        let now = ctx.now();
        let policy = &ctx.policy;
        let challenge = ctx
            .store
            .find_challenge(&Token::from_client(challenge_token).hash(), now)
            .await?
            .filter(|c| c.kind == ChallengeKind::Device)
            .filter(|c| c.attempts < policy.email_code_max_attempts)
            .ok_or(ResendError::ChallengeExpired)?;
        let wait_until = challenge
            .last_sent_at
            .unwrap_or(challenge.created_at)
            .plus_secs(policy.email_code_resend_secs);
        if now < wait_until {
            return Err(ResendError::TooManyAttempts {
                retry_at: wait_until,
            });
        }
        let user = ctx
            .store
            .get_user(challenge.user_id)
            .await?
            .ok_or(ResendError::ChallengeExpired)?;
        if ctx.two_factor_on(user.id).await? {
            // 2FA went on meanwhile: the authenticator replaces the email step.
            return Err(ResendError::ChallengeExpired);
        }
        let code = email_code::generate_code();
        // Each code gets its full lifetime.
        let expires_at = now.plus_secs(policy.email_code_lifetime_secs);
        let message = Message::DeviceCode {
            code: code.clone(),
            expires_at,
        };
        let email = ctx.email_to(&user, meta, now, message).await?;
        let window = policy.email_code_sends();
        let sent = ctx
            .store
            .resend_device_code(
                user.id,
                challenge.id,
                &email_code::hash(ctx, &user, &code),
                now,
                now.plus_secs(-policy.email_code_resend_secs),
                expires_at,
                &mut |sent| admit_send(sent, now, &window),
                &Effects::default().and_email(email),
            )
            .await?;
        let next = now.plus_secs(policy.email_code_resend_secs);
        match sent {
            CodeSent::Sent => Ok(next),
            CodeSent::Limited(retry_at) => Err(ResendError::TooManyAttempts { retry_at }),
            // A concurrent resend won, or the challenge ended meanwhile: this one sent nothing.
            CodeSent::NotNow => Err(ResendError::TooManyAttempts { retry_at: next }),
        }
    }

    /// Seconds until a new code may be asked for on this device challenge (0: now, or the
    /// challenge is gone).
    pub async fn resend_wait(&self, challenge_token: &str) -> Result<i64, Internal> {
        let ctx = &self.0;
        let now = ctx.now();
        let challenge = ctx
            .store
            .find_challenge(&Token::from_client(challenge_token).hash(), now)
            .await?;
        Ok(challenge
            .filter(|c| c.kind == ChallengeKind::Device)
            .and_then(|c| c.last_sent_at)
            .map_or(0, |sent| {
                now.secs_until(sent.plus_secs(ctx.policy.email_code_resend_secs))
            }))
    }

    /// Recognizes the browser that just created the user's password and signed in (sign-up,
    /// an accepted invitation, which the emailed link already proved) so that signing in from
    /// it again needs no emailed code: the device's token, shown once.
    pub async fn remember(
        &self,
        signed_in: &SignedIn,
        meta: &RequestMeta,
    ) -> Result<Token, Internal> {
        let ctx = &self.0;
        let device = ctx.new_device(&signed_in.context().user, meta, ctx.now());
        let token = Token::generate();
        ctx.store.add_device(&device, &token.hash()).await?;
        Ok(token)
    }

    /// The user's recognized devices, most recently used first; `trusted_until` only where
    /// the device skips the second step now (so never while the account forbids it).
    pub async fn list(&self, me: &FullSession) -> Result<Vec<Device>, Internal> {
        let now = self.0.now();
        let policy = me.account().trusted_devices;
        let mut devices = self.0.store.list_devices(me.user().id, now).await?;
        for device in &mut devices {
            if !device.trusted_at(now, policy) {
                device.trusted_until = None;
            }
        }
        Ok(devices)
    }

    /// Forgets a device: the next sign-in from it needs an email code again.
    pub async fn remove(
        &self,
        me: &FullSession,
        device: DeviceId,
        meta: &RequestMeta,
    ) -> Result<(), DeviceError> {
        let event = me
            .event(EventKind::DeviceRemoved, meta, self.0.now())
            .with_detail(json!({ "device_id": device }));
        if self
            .0
            .store
            .delete_device(me.user().id, device, &Effects::event(event))
            .await?
        {
            Ok(())
        } else {
            Err(DeviceError::NotFound)
        }
    }
}

impl Ctx {
    /// Whether `token` names a device of `user` still recognized for this request's browser.
    pub(crate) async fn recognized_device(
        &self,
        user: &User,
        token: Option<&str>,
        meta: &RequestMeta,
        now: Timestamp,
    ) -> Result<bool, Internal> {
        Ok(self.known_device(user, token, meta, now).await?.is_some())
    }

    /// The device a verified email code makes recognized: bound to this browser.
    pub(crate) fn new_device(&self, user: &User, meta: &RequestMeta, now: Timestamp) -> Device {
        Device {
            id: DeviceId::new(),
            user_id: user.id,
            user_agent: meta.user_agent.clone(),
            ip: meta.ip.clone(),
            created_at: now,
            last_used_at: now,
            expires_at: now.plus_secs(self.policy.device_lifetime_secs),
            trusted_until: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::email_code::generate_code;

    #[test]
    fn codes_are_six_digits_and_vary() {
        let codes: Vec<String> = (0..50).map(|_| generate_code()).collect();
        assert!(
            codes
                .iter()
                .all(|c| c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()))
        );
        let distinct: std::collections::HashSet<_> = codes.iter().collect();
        assert!(distinct.len() > 40);
    }
}
