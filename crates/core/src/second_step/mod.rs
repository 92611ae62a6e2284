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
    Expired, LockGate,
};

use crate::Timestamp;
use crate::crypto::{Token, TokenHash};
use crate::ctx::{Ctx, Internal, internal_from};
use crate::factors::{Checked, METHODS, Method, OnSuccess, Proof, SecondFactor};
use crate::mail::Message;
use crate::model::{
    Account, Challenge, ChallengeId, ChallengeKind, EventKind, NewEvent, RequestMeta, User,
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

/// What a field error says to type, per kind of challenge.
fn expected(kind: ChallengeKind) -> &'static str {
    match kind {
        ChallengeKind::TwoFactor => {
            "enter the 6-digit code from your authenticator app, or a recovery code"
        }
        ChallengeKind::Device => "enter the 6-digit code from the email",
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
        Ok(PendingChallenge { token, challenge })
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
    /// Answers a login challenge with a code: whichever of the [`METHODS`] for this kind of
    /// challenge reads it. With `remember_device`, a factor's success trusts the device.
    pub async fn verify(
        &self,
        challenge_token: &str,
        answer: &str,
        remember_device: bool,
        meta: &RequestMeta,
    ) -> Result<SecondStepDone, SecondStepError> {
        let ctx = &self.0;
        let now = ctx.now();
        // The challenge, its user, their account and factors: one read.
        let context = ctx
            .store
            .find_challenge_context(&Token::from_client(challenge_token).hash(), now)
            .await?
            .ok_or(SecondStepError::ChallengeExpired)?;
        let kind = context.challenge.kind;
        let max_attempts = ctx.max_attempts(kind);
        if context.challenge.attempts >= max_attempts {
            return Err(SecondStepError::ChallengeExpired);
        }
        let (method, read) = METHODS
            .iter()
            .filter(|m| m.answers(kind))
            .find_map(|m| m.read(ctx, answer).map(|read| (*m, read)))
            .ok_or_else(|| FieldError::new("code", expected(kind)))?;
        let checked = method.check(ctx, &context, &read, meta, now)?;
        // What a success writes is made ready first, for a right code and a wrong one alike:
        // the work (and time) before the transaction must not tell them apart, since only the
        // transaction counts the attempt and passes the lock.
        let prepared = prepare(ctx, method, context, checked, remember_device, meta, now).await?;
        let lockout = ctx.policy.second_step_lockout();
        let mut refused = None;
        let mut admit = |state| {
            let (next, verdict) = throttle::admit(state, now, &lockout);
            refused = verdict.err();
            (next, refused.is_none())
        };
        let (user, account) = (
            &prepared.opening.context.user,
            &prepared.opening.context.account,
        );
        let key = user.id.to_string();
        let attempt = ChallengeAttempt {
            challenge: prepared.challenge,
            max_attempts,
            now,
        };
        let mut lock = LockGate {
            scope: Scope::SecondStep,
            key: &key,
            admit: &mut admit,
            success: throttle::success,
        };
        let outcome = ctx
            .store
            .attempt_second_step(attempt, &mut lock, prepared.completing())
            .await?;
        let attempts = match outcome {
            Attempted::Done => return Ok(prepared.done(method.method())),
            Attempted::ChallengeGone => return Err(SecondStepError::ChallengeExpired),
            Attempted::Locked => {
                let RetryAt(retry_at) = refused.unwrap_or(RetryAt(now));
                return Err(SecondStepError::TooManyAttempts { retry_at });
            }
            Attempted::Rejected { attempts } => attempts,
        };
        // A right TOTP code whose step a concurrent request took first is a replay.
        let already_used =
            prepared.already_used || (method.method() == Method::Totp && prepared.proof.is_some());
        let failure = Failure {
            method: method.method(),
            replayed: already_used,
            // This wrong code killed a sign-in that had the right password.
            unfinished: kind == ChallengeKind::TwoFactor && attempts >= max_attempts,
        };
        let effects = failure_effects(ctx, user, account, failure, meta, now);
        if ctx
            .lockout_failure(Scope::SecondStep, &key, lockout, now, effects)
            .await?
        {
            tracing::warn!(user_id = %user.id, "second step locked after repeated failures");
        }
        Err(SecondStepError::InvalidCode {
            attempts_remaining: (max_attempts - attempts).max(0),
            already_used,
        })
    }
}

/// What a wrong code was.
struct Failure {
    method: Method,
    /// A right TOTP code, already used (F11: told apart, and the user alerted).
    replayed: bool,
    /// It was the challenge's last allowed attempt.
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
    let method = failure.method.as_str();
    let mut failed = if failure.replayed {
        Effects::event(
            NewEvent::for_user(user, EventKind::TotpReplayRefused, meta, now)
                .with_detail(json!({ "method": method, "reason": "replayed" })),
        )
        .and_alert(ctx.alert(user, account, meta, (now, now), Message::CodeReplayed))
    } else {
        Effects::event(
            NewEvent::for_user(user, EventKind::TwoFactorFailed, meta, now)
                .with_detail(json!({ "method": method })),
        )
    };
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

/// The session, events and emails a right proof would write, and the token to give; made
/// whether or not there is a proof.
async fn prepare(
    ctx: &Ctx,
    method: &dyn SecondFactor,
    context: ChallengeContext,
    checked: Checked,
    remember_device: bool,
    meta: &RequestMeta,
    now: Timestamp,
) -> Result<Prepared, Internal> {
    let ChallengeContext {
        challenge,
        user,
        account,
        ..
    } = context;
    let OnSuccess {
        effects,
        recovery_codes_remaining,
    } = method
        .on_success(ctx, &user, &account, checked.proof.as_ref(), meta, now)
        .await?;
    let kind = method.method();
    // An email code is the step of users without 2FA: the account's policy may restrict
    // the session to setting it up.
    let mut opening = ctx.opening(
        user,
        account,
        kind.proves_two_factor(),
        SignInMethod::SecondStep(kind),
        meta,
        now,
    );
    opening.effects = std::mem::take(&mut opening.effects).and(effects);
    let mut device_token = checked.device_token;
    let device = if kind.proves_two_factor() {
        let (write, token, effects) =
            ctx.second_step_device(&opening, &challenge, remember_device, meta, now);
        opening.effects = std::mem::take(&mut opening.effects).and(effects);
        device_token = token.or(device_token);
        write
    } else {
        None
    };
    Ok(Prepared {
        hash: opening.token.hash(),
        opening,
        challenge: challenge.id,
        proof: checked.proof,
        already_used: checked.already_used,
        device_token,
        device,
        recovery_codes_remaining,
    })
}

/// A success, ready to be written.
struct Prepared {
    opening: Opening,
    hash: TokenHash,
    challenge: ChallengeId,
    /// `None`: no code matched, so the transaction only counts the attempt.
    proof: Option<Proof>,
    already_used: bool,
    device_token: Option<Token>,
    /// Users with 2FA: what the step does to its device.
    device: Option<DeviceWrite>,
    recovery_codes_remaining: Option<i64>,
}

impl Prepared {
    fn completing(&self) -> Option<Completing<'_>> {
        self.proof.as_ref().map(|proof| Completing {
            proof,
            session: &self.opening.context.session,
            token: &self.hash,
            device: self.device.as_ref(),
            effects: &self.opening.effects,
        })
    }

    fn done(self, method: Method) -> SecondStepDone {
        let trusted_until = match &self.device {
            Some(DeviceWrite::New { device, .. }) => device.trusted_until,
            Some(DeviceWrite::Trust { until, .. }) => Some(*until),
            None => None,
        };
        SecondStepDone {
            signed_in: self.opening.signed_in(),
            method,
            recovery_codes_remaining: self.recovery_codes_remaining,
            device_token: self.device_token,
            trusted_until,
        }
    }
}
