//! The second step of sign-in: a login challenge opened after the right password, answered
//! with a TOTP code or a recovery code (`POST /login/verify`), or, for a user without 2FA on
//! an unrecognized device, with the code emailed to them (see [`crate::devices`]). Which
//! answers a challenge takes is for the [`crate::factors::METHODS`] to say.
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
//! A re-authentication with a code (step-up, [`crate::sessions`]) goes through the same
//! transaction ([`Ctx::answer`]) on a challenge of its own, finishing by restarting its
//! session's step-up window instead of opening a session.
//!
//! ## The per-user lock
//! Across challenges, 10 consecutive wrong codes lock the user's second step for 15 minutes
//! (a [`crate::throttle::Lockout`] keyed by user) and email them; a right code resets it.
//!
//! ## The device (SPEC §9)
//! A second step passed with a factor (users with 2FA) records the device it came from: a
//! device not known before becomes known (its token is answered once, as after an email
//! code), which is a *new sign-in* and alerts the user; with `remember_device` it is trusted
//! ([`crate::devices`]). Alerts for sign-ins left unfinished, and for replayed codes, are in
//! [`unfinished`] and here.

mod port;
mod unfinished;

pub use port::{
    Attempted, ChallengeAttempt, ChallengeContext, ChallengeStore, Completing, DeviceWrite,
    Expired, LockGate, Seen,
};

use crate::Timestamp;
use crate::crypto::{Token, TokenHash};
use crate::ctx::{Ctx, Internal, internal_from};
use crate::factors::webauthn::CeremonyKey;
use crate::factors::{FactorKind, METHODS, Method, OnSuccess, Proof};
use crate::mail::Message;
use crate::model::{
    Account, Challenge, ChallengeId, ChallengeKind, EventKind, NewEvent, RequestMeta, Session, User,
};
use crate::sessions::{Opening, SignInMethod, SignedIn};
use crate::sign_in::PendingChallenge;
use crate::store::Effects;
use crate::throttle::{self, RetryAt, Scope};
use crate::validate::FieldError;
use serde_json::json;
use std::sync::Arc;

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

internal_from!(SecondStepError);

pub struct SecondStepDone {
    pub signed_in: SignedIn,
    pub method: Method,
    /// Unused recovery codes left, when one was just used.
    pub recovery_codes_remaining: Option<i64>,
    /// After an email code, or a factor from a device not known before: the token of the
    /// device now recognized, shown once.
    pub device_token: Option<Token>,
    /// Until when this device now skips the second step, if `remember_device` was granted.
    pub trusted_until: Option<Timestamp>,
}

/// What a field error says to type, per kind of challenge (and method asked for).
fn expected(kind: ChallengeKind, only: Option<Method>) -> &'static str {
    match (kind, only) {
        (_, Some(Method::Totp)) => "enter the 6-digit code from your authenticator app",
        (_, Some(Method::RecoveryCode)) => "enter one of your recovery codes",
        (_, Some(Method::WebAuthn)) => {
            "must be your security key's answer: the JSON of a PublicKeyCredential"
        }
        (ChallengeKind::TwoFactor, _) => {
            "enter the 6-digit code from your authenticator app, or a recovery code"
        }
        (ChallengeKind::Device, _) => "enter the 6-digit code from the email",
    }
}

impl Ctx {
    /// Opens a challenge for a user with 2FA who gave the right password, from `device` if
    /// it is one of theirs.
    pub(crate) async fn open_challenge(
        &self,
        user: &User,
        device: Option<crate::model::DeviceId>,
        meta: &RequestMeta,
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
            meta: meta.clone(),
            device_id: device,
        };
        self.store
            .create_challenge(&challenge, &token.hash())
            .await?;
        let factors = self.store.active_factors(user.id).await?;
        let webauthn_options = if factors.contains(&FactorKind::WebAuthn) {
            self.second_step_options(user, challenge.id, challenge.expires_at)
                .await?
        } else {
            None
        };
        let mut methods = Vec::new();
        if factors.contains(&FactorKind::Totp) {
            methods.push(Method::Totp);
        }
        if webauthn_options.is_some() {
            methods.push(Method::WebAuthn);
        }
        methods.push(Method::RecoveryCode);
        Ok(PendingChallenge {
            token,
            challenge,
            methods,
            webauthn_options,
        })
    }

    fn max_attempts(&self, kind: ChallengeKind) -> i64 {
        match kind {
            ChallengeKind::TwoFactor => self.policy.challenge_max_attempts,
            ChallengeKind::Device => self.policy.email_code_max_attempts,
        }
    }
}

/// Answering login challenges. Cheap to clone.
#[derive(Clone)]
pub struct SecondStep(pub(crate) Arc<Ctx>);

impl SecondStep {
    /// The security-key request options of a live challenge, if its user has keys (the
    /// second-step page shows them to its script).
    pub async fn webauthn_options(
        &self,
        challenge_token: &str,
    ) -> Result<Option<serde_json::Value>, Internal> {
        let ctx = &self.0;
        let now = ctx.now();
        let token = Token::from_client(challenge_token).hash();
        let Some(challenge) = ctx.store.find_challenge(&token, now).await? else {
            return Ok(None);
        };
        let key = CeremonyKey::SecondStep(challenge.id);
        let Some(state) = ctx.store.get_ceremony(&key, now).await? else {
            return Ok(None);
        };
        let ceremony = crate::factors::webauthn::Ceremony::<serde_json::Value>::from_json(&state)?;
        Ok(Some(ceremony.options))
    }

    /// Answers a login challenge with a code: whichever of the [`METHODS`] for this kind of
    /// challenge reads it. With `remember_device`, a factor's success trusts the device.
    pub async fn verify(
        &self,
        challenge_token: &str,
        answer: &str,
        remember_device: bool,
        meta: &RequestMeta,
    ) -> Result<SecondStepDone, SecondStepError> {
        self.verify_as(challenge_token, answer, None, remember_device, meta)
            .await
    }

    /// [`SecondStep::verify`] with a security key's assertion (the JSON of
    /// `PublicKeyCredential.toJSON()`).
    pub async fn verify_security_key(
        &self,
        challenge_token: &str,
        assertion: &str,
        remember_device: bool,
        meta: &RequestMeta,
    ) -> Result<SecondStepDone, SecondStepError> {
        let only = Some(Method::WebAuthn);
        self.verify_as(challenge_token, assertion, only, remember_device, meta)
            .await
    }

    async fn verify_as(
        &self,
        challenge_token: &str,
        answer: &str,
        only: Option<Method>,
        remember_device: bool,
        meta: &RequestMeta,
    ) -> Result<SecondStepDone, SecondStepError> {
        let token = Token::from_client(challenge_token).hash();
        let (signing_in, method) = self
            .0
            .answer(&token, answer, only, meta, |ctx, answered| {
                let (user, account) = (answered.user, answered.account);
                // An email code is the step of users without 2FA: the account's policy may
                // restrict the session to setting it up.
                let mut opening = ctx.opening(
                    user,
                    account,
                    answered.method.proves_two_factor(),
                    SignInMethod::SecondStep(answered.method),
                    meta,
                    answered.now,
                );
                opening.effects = std::mem::take(&mut opening.effects).and(answered.effects);
                // A factor (users with 2FA) records the device it came from.
                let mut device_token = answered.device_token;
                let device = if answered.method.proves_two_factor() {
                    let (write, token, effects) = ctx.second_step_device(
                        &opening,
                        &answered.challenge,
                        remember_device,
                        meta,
                        answered.now,
                    );
                    opening.effects = std::mem::take(&mut opening.effects).and(effects);
                    device_token = token.or(device_token);
                    write
                } else {
                    None
                };
                SigningIn {
                    hash: opening.token.hash(),
                    opening,
                    device_token,
                    device,
                    recovery_codes_remaining: answered.recovery_codes_remaining,
                }
            })
            .await?;
        let trusted_until = match &signing_in.device {
            Some(DeviceWrite::New { device, .. }) => device.trusted_until,
            Some(DeviceWrite::Trust { until, .. }) => Some(*until),
            None => None,
        };
        Ok(SecondStepDone {
            signed_in: signing_in.opening.signed_in(),
            method,
            recovery_codes_remaining: signing_in.recovery_codes_remaining,
            device_token: signing_in.device_token,
            trusted_until,
        })
    }
}

/// A session about to be opened by a right answer.
struct SigningIn {
    opening: Opening,
    hash: TokenHash,
    device_token: Option<Token>,
    /// Users with 2FA: what the step does to its device.
    device: Option<DeviceWrite>,
    recovery_codes_remaining: Option<i64>,
}

impl Finish for SigningIn {
    const SIGN_IN: bool = true;

    fn session(&self) -> Option<(&Session, &TokenHash)> {
        Some((&self.opening.context.session, &self.hash))
    }

    fn device(&self) -> Option<&DeviceWrite> {
        self.device.as_ref()
    }

    fn effects(&self) -> &Effects {
        &self.opening.effects
    }

    fn failed(user: &User, method: Method, meta: &RequestMeta, now: Timestamp) -> NewEvent {
        NewEvent::for_user(user, EventKind::TwoFactorFailed, meta, now)
            .with_detail(json!({ "method": method.as_str() }))
    }
}

/// What a right answer completes: a sign-in (a new session) or a re-authentication (of a
/// session that exists).
pub(crate) trait Finish {
    /// A sign-in, whose challenge dying unanswered is an *unfinished sign-in* (SPEC §9).
    const SIGN_IN: bool;
    /// The session to open, with its token's hash.
    fn session(&self) -> Option<(&Session, &TokenHash)>;
    /// What the step does to the device it came from.
    fn device(&self) -> Option<&DeviceWrite> {
        None
    }
    /// What a success writes besides.
    fn effects(&self) -> &Effects;
    /// The event a wrong answer records.
    fn failed(user: &User, method: Method, meta: &RequestMeta, now: Timestamp) -> NewEvent;
}

/// What a method made of an answer and what its success adds, for [`Ctx::answer`]'s
/// caller to finish.
pub(crate) struct Answer {
    pub(crate) challenge: Challenge,
    pub(crate) user: User,
    pub(crate) account: Account,
    pub(crate) method: Method,
    pub(crate) effects: Effects,
    pub(crate) device_token: Option<Token>,
    pub(crate) recovery_codes_remaining: Option<i64>,
    pub(crate) now: Timestamp,
}

impl Ctx {
    /// Answers the challenge behind `token` with one of the [`METHODS`] (only `only`, when
    /// given): counts the attempt, passes the per-user lock, and for a right code spends it
    /// and writes what `finish` makes of the success, all in one transaction. The one place
    /// the second step's rules run, for sign-in and re-authentication alike.
    pub(crate) async fn answer<F: Finish>(
        &self,
        token: &TokenHash,
        answer: &str,
        only: Option<Method>,
        meta: &RequestMeta,
        finish: impl FnOnce(&Ctx, Answer) -> F,
    ) -> Result<(F, Method), SecondStepError> {
        let ctx = self;
        let now = ctx.now();
        // The challenge, its user, their account and factors: one read.
        let context = ctx
            .store
            .find_challenge_context(token, now)
            .await?
            .ok_or(SecondStepError::ChallengeExpired)?;
        let kind = context.challenge.kind;
        let max_attempts = ctx.max_attempts(kind);
        if context.challenge.attempts >= max_attempts {
            return Err(SecondStepError::ChallengeExpired);
        }
        let (method, read) = METHODS
            .iter()
            .filter(|m| m.answers(kind) && only.is_none_or(|only| m.method() == only))
            .find_map(|m| m.read(ctx, answer).map(|read| (*m, read)))
            .ok_or_else(|| {
                let field = if only == Some(Method::WebAuthn) {
                    "webauthn"
                } else {
                    "code"
                };
                FieldError::new(field, expected(kind, only))
            })?;
        let checked = method.check(ctx, &context, &read, meta, now).await?;
        // What a success writes is made ready first, for a right code and a wrong one alike:
        // the work (and time) before the transaction must not tell them apart, since only the
        // transaction counts the attempt and passes the lock.
        let ChallengeContext {
            challenge,
            user,
            account,
            seen,
            ..
        } = context;
        let OnSuccess {
            effects,
            recovery_codes_remaining,
        } = method
            .on_success(ctx, &user, &account, checked.proof.as_ref(), meta, now)
            .await?;
        let failed = F::failed(&user, method.method(), meta, now);
        let key = user.id.to_string();
        // What a wrong answer writes is decided after the transaction (a replay, the last
        // attempt), by whom it concerns.
        let (failing_user, failing_account) = (user.clone(), account.clone());
        let challenge_id = challenge.id;
        let finished = finish(
            ctx,
            Answer {
                challenge,
                user,
                account,
                method: method.method(),
                effects,
                device_token: checked.device_token,
                recovery_codes_remaining,
                now,
            },
        );
        let lockout = ctx.policy.second_step_lockout();
        let mut refused = None;
        let mut admit = |state| {
            let (next, verdict) = throttle::admit(state, now, &lockout);
            refused = verdict.err();
            (next, refused.is_none())
        };
        let attempt = ChallengeAttempt {
            challenge: challenge_id,
            max_attempts,
            now,
            seen,
        };
        let mut lock = LockGate {
            scope: Scope::SecondStep,
            key: &key,
            admit: &mut admit,
            success: throttle::success,
        };
        let completing = checked.proof.as_ref().map(|proof| Completing {
            proof,
            session: finished.session(),
            device: finished.device(),
            effects: finished.effects(),
        });
        let outcome = ctx
            .store
            .attempt_second_step(attempt, &mut lock, completing)
            .await?;
        let attempts = match outcome {
            Attempted::Done => return Ok((finished, method.method())),
            Attempted::ChallengeGone => return Err(SecondStepError::ChallengeExpired),
            Attempted::Locked => {
                let RetryAt(retry_at) = refused.unwrap_or(RetryAt(now));
                return Err(SecondStepError::TooManyAttempts { retry_at });
            }
            Attempted::Rejected { attempts } => attempts,
        };
        // A right TOTP code whose step a concurrent request took first is a replay.
        let already_used =
            checked.already_used || (method.method() == Method::Totp && checked.proof.is_some());
        // A right assertion whose counter the store found not rising (a concurrent use, or a
        // cloned key) is refused as one whose counter webauthn-rs found not rising.
        let counter_refused = checked.counter_refused.or(match &checked.proof {
            Some(Proof::SecurityKey(used)) => Some(used.key),
            _ => None,
        });
        let failure = Failure {
            failed,
            method: method.method(),
            replayed: already_used,
            counter_refused,
            // This wrong code killed a sign-in that had the right password.
            unfinished: F::SIGN_IN && kind == ChallengeKind::TwoFactor && attempts >= max_attempts,
        };
        let failure = failure_effects(ctx, &failing_user, &failing_account, failure, meta, now);
        if ctx
            .lockout_failure(Scope::SecondStep, &key, lockout, now, failure)
            .await?
        {
            tracing::warn!(user_id = %key, "second step locked after repeated failures");
        }
        Err(SecondStepError::InvalidCode {
            attempts_remaining: (max_attempts - attempts).max(0),
            already_used,
        })
    }
}

/// What a wrong code was.
struct Failure {
    /// The event of a wrong code, as the caller of [`Ctx::answer`] names it.
    failed: NewEvent,
    method: Method,
    /// A right TOTP code, already used (F11: told apart, and the user alerted).
    replayed: bool,
    /// A security key whose signature counter did not rise.
    counter_refused: Option<crate::model::SecurityKeyId>,
    /// It was a sign-in challenge's last allowed attempt.
    unfinished: bool,
}

/// What a wrong code records, and what its lock would add (event and email).
fn failure_effects(
    ctx: &Ctx,
    user: &User,
    account: &Account,
    failure: Failure,
    meta: &RequestMeta,
    now: Timestamp,
) -> (Effects, Effects) {
    let mut failed = if failure.replayed {
        Effects::event(
            NewEvent::for_user(user, EventKind::TotpReplayRefused, meta, now)
                .with_detail(json!({ "method": failure.method.as_str(), "reason": "replayed" })),
        )
        .and_alert(ctx.alert(user, account, meta, (now, now), Message::CodeReplayed))
    } else {
        Effects::event(failure.failed)
    };
    if let Some(key) = failure.counter_refused {
        tracing::warn!(user_id = %user.id, key_id = %key, "security key counter did not rise");
        failed = failed.and_event(
            NewEvent::for_user(user, EventKind::SecurityKeyCounterRefused, meta, now)
                .with_detail(json!({ "key_id": key.to_string(), "method": "second_step" })),
        );
    }
    if failure.unfinished {
        let started = (now, now);
        let reason = "too_many_wrong_codes";
        failed = failed.and(ctx.unfinished_effects(user, account, meta, started, reason));
    }
    let until = now.plus_secs(ctx.policy.second_step_lockout_secs);
    let event = NewEvent::for_user(user, EventKind::SecondStepLocked, meta, now)
        .with_detail(json!({ "locked_until": until.to_rfc3339() }));
    let email = ctx.email_in(
        user,
        account,
        meta,
        now,
        Message::SecondStepLocked { until },
    );
    (failed, Effects::event(event).and_email(email))
}
