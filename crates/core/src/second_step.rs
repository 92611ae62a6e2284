//! The second step of sign-in: a login challenge opened after the right password, answered
//! with a TOTP code or a recovery code (`POST /login/verify`), or, for a user without 2FA on
//! an unrecognized device, with the code emailed to them (see [`crate::device`]).
//!
//! ## The challenge (SPEC §3)
//! Lives 10 minutes; each wrong code counts; the 5th wrong code kills it and the password
//! must be given again. Each answer is one transaction: it counts the attempt, passes the
//! per-user lock and, for a right code, spends the code, consumes the challenge and opens
//! the session. So a challenge, a TOTP step and a recovery code each serve exactly one
//! sign-in however many requests race, no guess is looked at beyond the limits, and a
//! sign-in costs one durable write. The code itself is checked before that transaction
//! (reading the secret and computing the candidates), but only the transaction decides, and
//! the work before it is the same for a right code and a wrong one, so its time tells
//! nothing about a guess the limits would refuse.
//!
//! ## The per-user lock
//! Across challenges, 10 consecutive wrong codes lock the user's second step for 15 minutes
//! (a [`crate::throttle::Lockout`] keyed by user) and email them; a right code resets it.

use crate::Timestamp;
use crate::auth::{Auth, Internal, PendingChallenge, SignedIn};
use crate::crypto::{Token, TokenHash};
use crate::mail::Message;
use crate::model::{
    Account, Challenge, ChallengeId, ChallengeKind, EventKind, NewEvent, RequestMeta, SessionKind,
    User,
};
use crate::store::{
    Attempted, ChallengeAttempt, ChallengeContext, Completing, Effects, LockGate, SecondStepProof,
    SessionContext, StoreError,
};
use crate::throttle::{self, RetryAt};
use crate::totp::{TotpCode, TotpSecret, matching_step};
use crate::validate::FieldError;
use serde_json::json;

pub const SECOND_STEP_SCOPE: &str = "second_step";

#[derive(Debug, thiserror::Error)]
pub enum SecondStepError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("this sign-in has expired; enter your password again")]
    ChallengeExpired,
    #[error("that code is not valid")]
    InvalidCode {
        attempts_remaining: i64,
        /// A TOTP code that was right but already used (a replay): the user should wait
        /// for the next one.
        already_used: bool,
    },
    #[error("too many attempts")]
    TooManyAttempts { retry_at: Timestamp },
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl From<StoreError> for SecondStepError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.into())
    }
}

/// How the second step was passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Totp,
    RecoveryCode,
    EmailCode,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::RecoveryCode => "recovery_code",
            Self::EmailCode => "email_code",
        }
    }
}

pub struct SecondStepDone {
    pub signed_in: SignedIn,
    pub method: Method,
    /// Unused recovery codes left, when one was just used.
    pub recovery_codes_remaining: Option<i64>,
    /// After an email code: the token of the device now recognized, shown once.
    pub device_token: Option<Token>,
}

enum Typed {
    Totp(TotpCode),
    Recovery(String),
    Email(TotpCode),
}

impl Auth {
    pub(crate) async fn open_challenge(
        &self,
        user: &User,
        now: Timestamp,
    ) -> Result<PendingChallenge, Internal> {
        let token = Token::generate();
        let challenge = Challenge {
            id: ChallengeId::new(),
            user_id: user.id,
            kind: ChallengeKind::TwoFactor,
            attempts: 0,
            created_at: now,
            expires_at: now.plus_secs(self.policy.challenge_lifetime_secs),
            last_sent_at: None,
        };
        self.store
            .create_challenge(&challenge, &token.hash())
            .await?;
        Ok(PendingChallenge { token, challenge })
    }

    /// Decrypts a user's sealed TOTP secret.
    pub(crate) fn open_secret(&self, user: &User, sealed: &[u8]) -> Result<TotpSecret, Internal> {
        let bytes = self
            .totp_sealer
            .open(sealed, user.id.to_string().as_bytes())?;
        Ok(TotpSecret::from_bytes(bytes))
    }

    /// Seals a TOTP secret for storage, bound to its user.
    pub(crate) fn seal_secret(&self, user: &User, secret: &TotpSecret) -> Vec<u8> {
        self.totp_sealer
            .seal(secret.bytes(), user.id.to_string().as_bytes())
    }

    /// Answers a login challenge with a code: a TOTP code (6 digits) or a recovery code.
    pub async fn verify_second_step(
        &self,
        challenge_token: &str,
        code: &str,
        meta: &RequestMeta,
    ) -> Result<SecondStepDone, SecondStepError> {
        let now = self.now();
        let policy = &self.policy;
        // The challenge, its user, their account and factor: one read.
        let ChallengeContext {
            challenge,
            user,
            account,
            factor,
        } = self
            .store
            .find_challenge_context(&Token::from_client(challenge_token).hash(), now)
            .await?
            .ok_or(SecondStepError::ChallengeExpired)?;
        let max_attempts = match challenge.kind {
            ChallengeKind::TwoFactor => policy.challenge_max_attempts,
            ChallengeKind::Device => policy.email_code_max_attempts,
        };
        if challenge.attempts >= max_attempts {
            return Err(SecondStepError::ChallengeExpired);
        }
        let typed = match challenge.kind {
            ChallengeKind::TwoFactor => TotpCode::parse(code)
                .map(Typed::Totp)
                .or_else(|| {
                    policy
                        .recovery_code_format
                        .normalize(code)
                        .map(Typed::Recovery)
                })
                .ok_or_else(|| {
                    FieldError::new(
                        "code",
                        "enter the 6-digit code from your authenticator app, or a recovery code",
                    )
                })?,
            ChallengeKind::Device => TotpCode::parse(code)
                .map(Typed::Email)
                .ok_or_else(|| FieldError::new("code", "enter the 6-digit code from the email"))?,
        };
        let key = user.id.to_string();
        let mut device_token = None;
        let mut already_used = false;
        let (proof, method) = match typed {
            Typed::Totp(code) => {
                let step = match factor {
                    Some(f) => {
                        let secret = self.open_secret(&user, &f.secret_sealed)?;
                        let matched = matching_step(&secret, &code, now);
                        already_used = matched.is_some_and(|step| step <= f.last_step);
                        matched.filter(|step| *step > f.last_step)
                    }
                    None => None,
                };
                (
                    step.map(|step| SecondStepProof::Totp { step }),
                    Method::Totp,
                )
            }
            Typed::Recovery(normalized) => {
                let hash = self.codes.hash("recovery", user.id, &normalized);
                (
                    Some(SecondStepProof::RecoveryCode { hash }),
                    Method::RecoveryCode,
                )
            }
            Typed::Email(code) => {
                let token = Token::generate();
                let proof = SecondStepProof::EmailCode {
                    hash: self.codes.hash("device", user.id, code.as_str()),
                    device: self.new_device(&user, meta, now),
                    token: token.hash(),
                };
                device_token = Some(token);
                (Some(proof), Method::EmailCode)
            }
        };
        // What a success writes is made ready first, for a right code and a wrong one alike:
        // the work (and time) before the transaction must not tell them apart, since only the
        // transaction counts the attempt and passes the lock.
        let prepared = self
            .prepare(&user, account, proof, method, meta, now)
            .await?;
        let lockout = policy.second_step_lockout();
        let mut refused = None;
        let mut admit = |state| {
            let (next, verdict) = throttle::admit(state, now, &lockout);
            refused = verdict.err();
            (next, refused.is_none())
        };
        let outcome = self
            .store
            .attempt_second_step(
                ChallengeAttempt {
                    challenge: challenge.id,
                    max_attempts,
                    now,
                },
                &mut LockGate {
                    scope: SECOND_STEP_SCOPE,
                    key: &key,
                    admit: &mut admit,
                    success: throttle::success,
                },
                prepared.completing(),
            )
            .await?;
        let attempts = match outcome {
            Attempted::Done => {
                return Ok(SecondStepDone {
                    signed_in: SignedIn {
                        token: prepared.token,
                        context: prepared.context,
                    },
                    method,
                    recovery_codes_remaining: prepared.remaining,
                    device_token,
                });
            }
            Attempted::ChallengeGone => return Err(SecondStepError::ChallengeExpired),
            Attempted::Locked => {
                let RetryAt(retry_at) = refused.unwrap_or(RetryAt(now));
                return Err(SecondStepError::TooManyAttempts { retry_at });
            }
            Attempted::Rejected { attempts } => {
                // A right TOTP code whose step a concurrent request took first is a replay.
                already_used |= method == Method::Totp && prepared.proof.is_some();
                attempts
            }
        };

        let effects = self.second_step_failure(&user, method, meta, now).await?;
        let locked = self
            .lockout_failure(SECOND_STEP_SCOPE, &key, lockout, now, effects)
            .await?;
        if locked {
            tracing::warn!(user_id = %user.id, "second step locked after repeated failures");
        }
        Err(SecondStepError::InvalidCode {
            attempts_remaining: (max_attempts - attempts).max(0),
            already_used,
        })
    }

    /// What a wrong code records, and what its lock would add (event and email).
    async fn second_step_failure(
        &self,
        user: &User,
        method: Method,
        meta: &RequestMeta,
        now: Timestamp,
    ) -> Result<(Effects, Effects), Internal> {
        let failed = Effects::event(
            NewEvent::for_user(user, EventKind::TwoFactorFailed, meta, now)
                .with_detail(json!({ "method": method.as_str() })),
        );
        let until = now.plus_secs(self.policy.second_step_lockout_secs);
        let on_lock = Effects::event(
            NewEvent::for_user(user, EventKind::SecondStepLocked, meta, now)
                .with_detail(json!({ "locked_until": until.to_rfc3339() })),
        )
        .and_email(
            self.email_to(user, meta, now, Message::SecondStepLocked { until })
                .await?,
        );
        Ok((failed, on_lock))
    }

    /// The session, events and emails a right proof would write, and the token to give;
    /// made whether or not there is a proof.
    async fn prepare(
        &self,
        user: &User,
        account: Account,
        proof: Option<SecondStepProof>,
        method: Method,
        meta: &RequestMeta,
        now: Timestamp,
    ) -> Result<Prepared, Internal> {
        let token = Token::generate();
        // An email code is the step of users without 2FA: the account's policy may restrict
        // the session to setting it up.
        let mut context = SessionContext {
            session: self.new_session(user, meta, now, SessionKind::Full),
            user: user.clone(),
            account,
            two_factor_enabled: method != Method::EmailCode,
        };
        let mut detail = json!({ "method": method.as_str() });
        if context.setup_only(now) {
            context.session.kind = SessionKind::SetupOnly;
            detail["restricted"] = json!("two_factor_setup_required");
        }
        let mut effects = Effects::event(
            NewEvent::for_user(user, EventKind::SignIn, meta, now).with_detail(detail),
        );
        if let Some(SecondStepProof::EmailCode { device, .. }) = &proof {
            effects = effects.and_event(
                NewEvent::for_user(user, EventKind::DeviceVerified, meta, now).with_detail(
                    json!({ "device_id": device.id, "user_agent": device.user_agent }),
                ),
            );
        }
        let mut remaining = None;
        if method == Method::RecoveryCode {
            let left = self
                .store
                .two_factor_status(user.id, now)
                .await?
                .recovery_codes_remaining
                .saturating_sub(1)
                .max(0);
            remaining = Some(left);
            effects = effects
                .and_event(
                    NewEvent::for_user(user, EventKind::RecoveryCodeUsed, meta, now)
                        .with_detail(json!({ "remaining": left })),
                )
                .and_email(
                    self.email_to(
                        user,
                        meta,
                        now,
                        Message::RecoveryCodeUsed {
                            remaining: u32::try_from(left).unwrap_or(0),
                        },
                    )
                    .await?,
                );
        }
        Ok(Prepared {
            hash: token.hash(),
            token,
            context,
            proof,
            effects,
            remaining,
        })
    }
}

/// A success, ready to be written.
struct Prepared {
    token: Token,
    hash: TokenHash,
    context: SessionContext,
    /// `None`: no code matched, so the transaction only counts the attempt.
    proof: Option<SecondStepProof>,
    effects: Effects,
    remaining: Option<i64>,
}

impl Prepared {
    fn completing(&self) -> Option<Completing<'_>> {
        self.proof.as_ref().map(|proof| Completing {
            proof,
            session: &self.context.session,
            token: &self.hash,
            effects: &self.effects,
        })
    }
}
