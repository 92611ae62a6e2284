//! Step-up ("sudo mode", SPEC §9): a sensitive action needs this session to have
//! authenticated within the last 15 minutes (`reauth_window_secs`, `TESSERA_REAUTH_MINUTES`).
//!
//! ## The window
//! Each session records when its window last started (`reauthenticated_at`):
//! - the sign-in that opened it (password, and the second step when one was due);
//! - a re-authentication ([`Sessions::reauthenticate`]): the password, plus a code from the
//!   authenticator or a recovery code when the user has 2FA;
//! - each sensitive action, written in the action's own transaction ([`Recent::restarted`]
//!   through [`crate::store::Effects`]), so an action that fails restarts nothing.
//!
//! A principal becomes [`Recent`] only here ([`Sessions::recent`]), when `now` is before the
//! window's end; else [`Forbidden::ReauthenticationRequired`].
//!
//! ## Re-authenticating
//! The password is checked as every password re-check is ([`Ctx::recheck_password`]: the
//! sign-in lock of the email, 10 wrong ones lock it for 15 min). The code goes through the
//! second step itself ([`Ctx::answer`]): a challenge of its own, the per-user lock (10 wrong
//! codes lock it for 15 min), TOTP replay refused, a recovery code spent once, all in the
//! transaction that also restarts the window and records `reauthenticated`. Wrong answers are
//! recorded as `reauthentication_failed` (with the reason).

use super::Sessions;
use crate::Timestamp;
use crate::crypto::TokenHash;
use crate::ctx::{Ctx, Internal, internal_from};
use crate::factors::Method;
use crate::factors::webauthn::CeremonyKey;
use crate::model::{EventKind, NewEvent, RequestMeta, Session, User};
use crate::principal::{AnySession, Forbidden, Principal, Recent};
use crate::second_step::{Answer, Finish, SecondStepError};
use crate::sign_in::RecheckError;
use crate::store::{Effects, StepUp};
use crate::validate::FieldError;
use secrecy::SecretString;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ReauthError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("invalid password")]
    InvalidCredentials,
    #[error("that code is not valid")]
    InvalidCode,
    #[error("too many attempts")]
    TooManyAttempts { retry_at: Timestamp },
    #[error(transparent)]
    Internal(#[from] Internal),
}

internal_from!(ReauthError);

impl From<RecheckError> for ReauthError {
    fn from(e: RecheckError) -> Self {
        match e {
            RecheckError::Invalid(e) => Self::Invalid(e),
            RecheckError::InvalidCredentials => Self::InvalidCredentials,
            RecheckError::TooManyAttempts { retry_at } => Self::TooManyAttempts { retry_at },
            RecheckError::Internal(e) => Self::Internal(e),
        }
    }
}

impl From<SecondStepError> for ReauthError {
    fn from(e: SecondStepError) -> Self {
        match e {
            SecondStepError::Invalid(e) => Self::Invalid(e),
            // Its challenge lives for this request only: gone means a concurrent answer.
            SecondStepError::ChallengeExpired | SecondStepError::InvalidCode { .. } => {
                Self::InvalidCode
            }
            SecondStepError::TooManyAttempts { retry_at } => Self::TooManyAttempts { retry_at },
            SecondStepError::Internal(e) => Self::Internal(e),
        }
    }
}

/// A re-authentication, as the user gives it.
pub struct ReauthInput {
    pub password: SecretString,
    /// Required when the user has 2FA: a TOTP code or a recovery code.
    pub code: Option<String>,
    /// `totp` or `recovery_code`: which kind `code` is (read from its shape when absent).
    pub method: Option<String>,
    /// Instead of a code: a security key's assertion (`PublicKeyCredential.toJSON()`) to the
    /// options of [`Sessions::reauthentication_options`].
    pub webauthn: Option<String>,
}

/// A re-authentication that passed: the window now ends at `until`.
pub struct Reauthenticated {
    pub until: Timestamp,
    /// The second factor given with the password; `None`: the password alone (no 2FA).
    pub method: Option<Method>,
    /// Unused recovery codes left, when one was just used.
    pub recovery_codes_remaining: Option<i64>,
}

/// The methods a re-authentication takes with the password (an emailed code is the step of
/// users without 2FA, who re-authenticate with the password alone).
fn method(input: Option<&str>) -> Result<Option<Method>, FieldError> {
    match input.map(str::trim) {
        None | Some("") => Ok(None),
        Some("totp") => Ok(Some(Method::Totp)),
        Some("recovery_code") => Ok(Some(Method::RecoveryCode)),
        Some("webauthn") => Ok(Some(Method::WebAuthn)),
        Some(_) => Err(FieldError::new(
            "method",
            "must be totp, recovery_code or webauthn",
        )),
    }
}

impl Ctx {
    /// The principal, if its session authenticated within the step-up window.
    pub(crate) fn recent<P: Principal>(&self, principal: P) -> Result<Recent<P>, Forbidden> {
        if principal
            .any()
            .authenticated_within(self.policy.reauth_window_secs)
        {
            Ok(Recent::new(principal))
        } else {
            Err(Forbidden::ReauthenticationRequired)
        }
    }

    /// The principal after the old `{password}` bodies (turning 2FA off, new recovery codes,
    /// SPEC §9): the password alone, as those bodies always asked, counts as a
    /// re-authentication for that one action.
    pub(crate) async fn recent_by_password<P: Principal + Clone>(
        &self,
        principal: &P,
        password: &SecretString,
        meta: &RequestMeta,
    ) -> Result<Recent<P>, RecheckError> {
        let user = principal.any().user();
        self.recheck_password(user, password, meta, EventKind::SignInFailed)
            .await?;
        Ok(Recent::new(principal.clone()))
    }
}

/// A re-authentication by a code, about to restart its session's window.
struct Reauthenticating {
    at: Timestamp,
    effects: Effects,
    recovery_codes_remaining: Option<i64>,
}

impl Finish for Reauthenticating {
    const SIGN_IN: bool = false;

    fn session(&self) -> Option<(&Session, &TokenHash)> {
        None
    }

    fn effects(&self) -> &Effects {
        &self.effects
    }

    fn failed(user: &User, method: Method, meta: &RequestMeta, now: Timestamp) -> NewEvent {
        NewEvent::for_user(user, EventKind::ReauthenticationFailed, meta, now)
            .with_detail(json!({ "reason": "invalid_code", "method": method.as_str() }))
    }
}

impl Sessions {
    /// The security-key request options for re-authenticating this session (users with
    /// keys; `None` otherwise), answered with [`ReauthInput::webauthn`]; asking again
    /// replaces them.
    pub async fn reauthentication_options(
        &self,
        me: &AnySession,
    ) -> Result<Option<serde_json::Value>, Internal> {
        let ctx = &self.0;
        let until = ctx.now().plus_secs(ctx.policy.challenge_lifetime_secs);
        let key = CeremonyKey::Reauth(me.session().id);
        ctx.assertion_options(me.user(), &key, until).await
    }

    /// The principal, if its session authenticated within the step-up window (SPEC §9):
    /// what every sensitive action takes.
    pub fn recent<P: Principal>(&self, principal: P) -> Result<Recent<P>, Forbidden> {
        self.0.recent(principal)
    }

    /// The length of the step-up window, in seconds.
    pub fn reauth_window_secs(&self) -> i64 {
        self.0.policy.reauth_window_secs
    }

    /// Proves again who is behind this session: the password, and with 2FA a code. Restarts
    /// the step-up window.
    pub async fn reauthenticate(
        &self,
        me: &AnySession,
        input: ReauthInput,
        meta: &RequestMeta,
    ) -> Result<Reauthenticated, ReauthError> {
        let ctx = &self.0;
        let user = me.user();
        let mut method = method(input.method.as_deref())?;
        let mut code = input.code.as_deref().map(str::trim).unwrap_or_default();
        if let Some(assertion) = input.webauthn.as_deref() {
            code = assertion;
            method = Some(Method::WebAuthn);
        }
        if me.two_factor_enabled() && code.is_empty() {
            return Err(FieldError::new(
                "code",
                "enter the 6-digit code from your authenticator app, or a recovery code",
            )
            .into());
        }
        ctx.recheck_password(
            user,
            &input.password,
            meta,
            EventKind::ReauthenticationFailed,
        )
        .await?;
        let window = ctx.policy.reauth_window_secs;
        // What a success writes: the event, and the window restarting.
        let event = |at, method: &str| Effects {
            step_up: Some(StepUp {
                session: me.session().id,
                at,
            }),
            ..Effects::event(
                me.event(EventKind::Reauthenticated, meta, at)
                    .with_detail(json!({ "method": method })),
            )
        };
        if !me.two_factor_enabled() {
            let now = ctx.now();
            ctx.store.record(&event(now, "password")).await?;
            return Ok(Reauthenticated {
                until: now.plus_secs(window),
                method: None,
                recovery_codes_remaining: None,
            });
        }
        // A challenge of its own, answered at once: ended if it did not pass, so no sign-in
        // looks unfinished.
        let challenge = ctx.open_challenge(user, None, meta, ctx.now()).await?;
        if method == Some(Method::WebAuthn) {
            // The options this session was given: their state answers this challenge (once).
            let now = ctx.now();
            let taken = ctx
                .store
                .take_ceremony(&CeremonyKey::Reauth(me.session().id), now)
                .await?;
            if let Some(state) = taken {
                let key = CeremonyKey::SecondStep(challenge.challenge.id);
                let until = challenge.challenge.expires_at;
                ctx.store
                    .put_ceremony(&key, Some(user.id), &state, until)
                    .await?;
            }
        }
        let answered = ctx
            .answer(
                &challenge.token.hash(),
                code,
                method,
                meta,
                |_, answer: Answer| {
                    let effects = event(answer.now, answer.method.as_str()).and(answer.effects);
                    Reauthenticating {
                        at: answer.now,
                        effects,
                        recovery_codes_remaining: answer.recovery_codes_remaining,
                    }
                },
            )
            .await;
        if answered.is_err() {
            ctx.store
                .end_challenge(challenge.challenge.id, &Effects::default())
                .await?;
        }
        let (done, method) = answered?;
        Ok(Reauthenticated {
            until: done.at.plus_secs(window),
            method: Some(method),
            recovery_codes_remaining: done.recovery_codes_remaining,
        })
    }
}
