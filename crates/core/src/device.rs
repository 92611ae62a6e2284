//! Email codes for unrecognized devices (Mailtrap; SPEC §2, §3), the devices a user has
//! verified, and the user's own sessions.
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
//! (sign-ins and resends together, counted in the store under the user's row lock). Turning 2FA on ends the open device challenge. The code is answered at `POST /login/verify` like any
//! second step: the challenge is consumed, the device stored and the session opened in one
//! transaction, so a code signs in once however many requests race.

use crate::Timestamp;
use crate::auth::{Auth, Internal, PendingChallenge};
use crate::crypto::Token;
use crate::mail::Message;
use crate::model::{
    Challenge, ChallengeId, ChallengeKind, Device, DeviceId, EventKind, NewEvent, RequestMeta,
    Session, SessionId, User,
};
use crate::store::{CodeSent, Effects, SessionContext, StoreError};
use crate::throttle::RetryAt;
use rand::Rng;
use rand::rngs::OsRng;
use serde_json::json;

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

impl From<StoreError> for ResendError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.into())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl From<StoreError> for DeviceError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.into())
    }
}

/// Six random digits.
fn generate_code() -> String {
    format!("{:06}", OsRng.gen_range(0..1_000_000u32))
}

impl Auth {
    /// Whether `token` names a device of `user` still recognized for this request's browser.
    pub(crate) async fn recognized_device(
        &self,
        user: &User,
        token: Option<&str>,
        meta: &RequestMeta,
        now: Timestamp,
    ) -> Result<bool, Internal> {
        let Some(token) = token.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(false);
        };
        let hash = Token::from_client(token).hash();
        let device = self
            .store
            .use_device(user.id, &hash, meta.user_agent.as_deref(), now)
            .await?;
        Ok(device.is_some())
    }

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
        };
        let email = self
            .email_to(
                user,
                meta,
                now,
                Message::DeviceCode {
                    code: code.clone(),
                    expires_at: challenge.expires_at,
                },
            )
            .await?;
        let sent = self
            .store
            .create_device_challenge(
                &challenge,
                &token.hash(),
                &self.codes.hash("device", user.id, &code),
                self.policy.email_code_sends(),
                &Effects::default().and_email(email),
            )
            .await?;
        match sent {
            CodeSent::Limited(retry_at) => Ok(Err(RetryAt(retry_at))),
            // A new challenge is always live; nothing else can refuse it.
            CodeSent::Sent | CodeSent::NotNow => Ok(Ok(PendingChallenge { token, challenge })),
        }
    }

    /// Emails a new code for a device challenge (the old one stops working); returns when
    /// the next resend will be allowed.
    pub async fn resend_device_code(
        &self,
        challenge_token: &str,
        meta: &RequestMeta,
    ) -> Result<Timestamp, ResendError> {
        let now = self.now();
        let policy = &self.policy;
        let challenge = self
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
        let user = self
            .store
            .get_user(challenge.user_id)
            .await?
            .ok_or(ResendError::ChallengeExpired)?;
        if self.store.get_totp_factor(user.id).await?.is_some() {
            // 2FA went on meanwhile: the authenticator replaces the email step.
            return Err(ResendError::ChallengeExpired);
        }
        let code = generate_code();
        // Each code gets its full lifetime.
        let expires_at = now.plus_secs(policy.email_code_lifetime_secs);
        let email = self
            .email_to(
                &user,
                meta,
                now,
                Message::DeviceCode {
                    code: code.clone(),
                    expires_at,
                },
            )
            .await?;
        let sent = self
            .store
            .resend_device_code(
                user.id,
                challenge.id,
                &self.codes.hash("device", user.id, &code),
                now,
                now.plus_secs(-policy.email_code_resend_secs),
                expires_at,
                policy.email_code_sends(),
                &Effects::default().and_email(email),
            )
            .await?;
        match sent {
            CodeSent::Sent => Ok(now.plus_secs(policy.email_code_resend_secs)),
            CodeSent::Limited(retry_at) => Err(ResendError::TooManyAttempts { retry_at }),
            // A concurrent resend won, or the challenge ended meanwhile: this one sent nothing.
            CodeSent::NotNow => Err(ResendError::TooManyAttempts {
                retry_at: now.plus_secs(policy.email_code_resend_secs),
            }),
        }
    }

    /// Seconds until a new code may be asked for on this device challenge (0: now, or the
    /// challenge is gone).
    pub async fn resend_wait(&self, challenge_token: &str) -> Result<i64, Internal> {
        let now = self.now();
        let challenge = self
            .store
            .find_challenge(&Token::from_client(challenge_token).hash(), now)
            .await?;
        Ok(challenge
            .filter(|c| c.kind == ChallengeKind::Device)
            .and_then(|c| c.last_sent_at)
            .map_or(0, |sent| {
                now.secs_until(sent.plus_secs(self.policy.email_code_resend_secs))
            }))
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
        }
    }

    /// Recognizes the browser that just created the user's password (sign-up, an accepted
    /// invitation, which the emailed link already proved) so that signing in from it again
    /// needs no emailed code: the device's token, shown once.
    pub async fn remember_device(
        &self,
        user: &User,
        meta: &RequestMeta,
    ) -> Result<Token, Internal> {
        let device = self.new_device(user, meta, self.now());
        let token = Token::generate();
        self.store.add_device(&device, &token.hash()).await?;
        Ok(token)
    }

    /// The user's recognized devices, most recently used first.
    pub async fn devices(&self, user: &User) -> Result<Vec<Device>, Internal> {
        Ok(self.store.list_devices(user.id, self.now()).await?)
    }

    /// Forgets a device: the next sign-in from it needs an email code again.
    pub async fn remove_device(
        &self,
        context: &SessionContext,
        device: DeviceId,
        meta: &RequestMeta,
    ) -> Result<(), DeviceError> {
        let event = NewEvent::for_user(&context.user, EventKind::DeviceRemoved, meta, self.now())
            .with_detail(json!({ "device_id": device }));
        if self
            .store
            .delete_device(context.user.id, device, &Effects::event(event))
            .await?
        {
            Ok(())
        } else {
            Err(DeviceError::NotFound)
        }
    }

    /// The user's live sessions, newest first.
    pub async fn sessions(&self, user: &User) -> Result<Vec<Session>, Internal> {
        Ok(self.store.list_sessions(user.id, self.now()).await?)
    }

    /// Ends one of the user's sessions (possibly the current one).
    pub async fn revoke_session(
        &self,
        context: &SessionContext,
        session: SessionId,
        meta: &RequestMeta,
    ) -> Result<(), DeviceError> {
        let event = NewEvent::for_user(&context.user, EventKind::SessionRevoked, meta, self.now())
            .with_detail(json!({ "session_id": session }));
        if self
            .store
            .end_user_session(context.user.id, session, &Effects::event(event))
            .await?
        {
            Ok(())
        } else {
            Err(DeviceError::NotFound)
        }
    }

    /// Signs out everywhere else: every session of the user but this one ends.
    pub async fn revoke_other_sessions(
        &self,
        context: &SessionContext,
        meta: &RequestMeta,
    ) -> Result<u64, Internal> {
        let event = NewEvent::for_user(&context.user, EventKind::SessionRevoked, meta, self.now())
            .with_detail(json!({ "all_but": context.session.id }));
        Ok(self
            .store
            .end_other_sessions(context.user.id, context.session.id, &Effects::event(event))
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::generate_code;

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
