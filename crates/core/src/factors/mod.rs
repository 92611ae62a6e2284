//! Second factors (SPEC §2): what "2FA on" means, the kinds of answer a second step takes,
//! and managing one's own factors.
//!
//! **2FA is on when the user has any active second factor** ([`FactorKind`]); that is asked in
//! one place ([`Ctx::two_factor_on`], and in SQL the `active_factors` view). Recovery codes
//! and the paper key back the factors up; they are not factors themselves.
//!
//! **A second step is answered by one of the [`Method`]s**, each a [`SecondFactor`] listed
//! once in [`METHODS`]: it says which challenges it answers, reads the answer, and turns a
//! right one into a [`Proof`] that the store spends atomically. A new kind of factor is a
//! module here, a variant of [`FactorKind`], [`Method`] and [`Proof`], and a line in
//! [`METHODS`].
//!
//! Rooms: [`totp`] (RFC 6238, setup and activation), [`webauthn`] (security keys and
//! passkeys), [`recovery`] (recovery codes), [`paper_key`] (the recovery page); turning 2FA
//! off and new recovery codes are here.

pub mod paper_key;
mod port;
pub mod recovery;
pub mod totp;
pub mod webauthn;

pub use port::FactorStore;

use crate::Timestamp;
use crate::crypto::{Token, TokenHash};
use crate::ctx::{Ctx, Internal, internal_from};
use crate::mail::{DisabledVia, Message};
use crate::model::{Account, ChallengeKind, Device, EventKind, RequestMeta, User, UserId};
use crate::principal::{AnySession, FullSession, Recent};
use crate::second_step::ChallengeContext;
use crate::sign_in::RecheckError;
use crate::store::Effects;
use crate::validate::FieldError;
use async_trait::async_trait;
use secrecy::SecretString;
use serde_json::json;
use std::sync::Arc;

/// A kind of active second factor: any one of them means 2FA is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FactorKind {
    /// An authenticator app (RFC 6238).
    Totp,
    /// One or more security keys or passkeys (SPEC §10).
    WebAuthn,
}

impl FactorKind {
    /// The stored name (the `kind` column of the `active_factors` view).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::WebAuthn => "webauthn",
        }
    }

    pub fn parse(stored: &str) -> Option<Self> {
        match stored {
            "totp" => Some(Self::Totp),
            "webauthn" => Some(Self::WebAuthn),
            _ => None,
        }
    }
}

/// What a second step was answered with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Totp,
    /// A security key's assertion (WebAuthn).
    WebAuthn,
    RecoveryCode,
    /// The code emailed for an unrecognized device (users without 2FA).
    EmailCode,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::WebAuthn => "webauthn",
            Self::RecoveryCode => "recovery_code",
            Self::EmailCode => "email_code",
        }
    }

    /// Whether passing it shows the user has 2FA on (an emailed code is the step of users
    /// without).
    pub fn proves_two_factor(self) -> bool {
        !matches!(self, Self::EmailCode)
    }
}

/// A right answer, ready for the store to spend in the second step's transaction with a
/// `WHERE` that refuses the second of two racing attempts.
#[derive(Clone, Debug)]
pub enum Proof {
    /// A TOTP code of this step, accepted only above the last accepted step.
    Totp { step: i64 },
    /// A security key's assertion, accepted only if its counter rises.
    SecurityKey(webauthn::KeyUse),
    /// A recovery code (its hash), accepted only if unused.
    RecoveryCode { hash: Vec<u8> },
    /// An emailed code (its hash), accepted only if it is the challenge's latest code; the
    /// device it verifies is recognized from then on, by `token`.
    EmailCode {
        hash: Vec<u8>,
        device: Device,
        token: TokenHash,
    },
}

/// What a method made of an answer.
#[derive(Default)]
pub(crate) struct Checked {
    /// `None`: not right, so the attempt is only counted.
    pub(crate) proof: Option<Proof>,
    /// Right, but already spent (a replayed TOTP step): the user should wait for the next.
    pub(crate) already_used: bool,
    /// A security key's answer whose signature counter did not rise (a cloned key?).
    pub(crate) counter_refused: Option<crate::model::SecurityKeyId>,
    /// A device recognized from now on, if this succeeds: its token, shown once.
    pub(crate) device_token: Option<Token>,
}

/// What a success writes besides the session.
#[derive(Default)]
pub(crate) struct OnSuccess {
    pub(crate) effects: Effects,
    /// Unused recovery codes left, when one was just used.
    pub(crate) recovery_codes_remaining: Option<i64>,
}

/// One way to answer a login challenge.
#[async_trait]
pub(crate) trait SecondFactor: Sync {
    fn method(&self) -> Method;
    /// Whether it answers challenges of this kind.
    fn answers(&self, kind: ChallengeKind) -> bool;
    /// The answer in its normal form, if it has this method's shape.
    fn read(&self, ctx: &Ctx, answer: &str) -> Option<String>;
    /// Checks a read answer against what the challenge's user has.
    async fn check(
        &self,
        ctx: &Ctx,
        challenge: &ChallengeContext,
        answer: &str,
        meta: &RequestMeta,
        now: Timestamp,
    ) -> Result<Checked, Internal>;
    /// What a success adds to the sign-in event; made before the attempt, right or wrong.
    async fn on_success(
        &self,
        _ctx: &Ctx,
        _user: &User,
        _account: &Account,
        _proof: Option<&Proof>,
        _meta: &RequestMeta,
        _now: Timestamp,
    ) -> Result<OnSuccess, Internal> {
        Ok(OnSuccess::default())
    }
}

/// Every way a challenge can be answered, in the order an answer is tried.
pub(crate) const METHODS: &[&dyn SecondFactor] = &[
    &totp::Authenticator,
    &webauthn::SecurityKey,
    &recovery::RecoveryCode,
    &crate::devices::EmailCode,
];

/// A user's second factors at a glance.
#[derive(Clone, Debug, Default)]
pub struct TwoFactorStatus {
    /// When the earliest active factor was turned on; `None`: 2FA is off.
    pub enabled_at: Option<Timestamp>,
    pub recovery_codes_remaining: i64,
    /// When the pending setup lapses, if one is pending.
    pub pending_until: Option<Timestamp>,
}

impl TwoFactorStatus {
    pub fn is_on(&self) -> bool {
        self.enabled_at.is_some()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TwoFactorError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("two-factor authentication is already on")]
    AlreadyEnabled,
    #[error("two-factor authentication is not on")]
    NotEnabled,
    #[error("no setup is pending (or it expired): start again")]
    NoPendingSetup,
    #[error("that code is not valid")]
    InvalidCode,
    #[error("invalid password")]
    InvalidCredentials,
    /// The account requires 2FA: it stays on (an admin may reset it).
    #[error("your team requires two-factor authentication")]
    RequiredByAccount,
    #[error("too many attempts")]
    TooManyAttempts { retry_at: Timestamp },
    #[error(transparent)]
    Internal(#[from] Internal),
}

internal_from!(TwoFactorError);

impl From<RecheckError> for TwoFactorError {
    fn from(e: RecheckError) -> Self {
        match e {
            RecheckError::Invalid(e) => Self::Invalid(e),
            RecheckError::InvalidCredentials => Self::InvalidCredentials,
            RecheckError::TooManyAttempts { retry_at } => Self::TooManyAttempts { retry_at },
            RecheckError::Internal(e) => Self::Internal(e),
        }
    }
}

impl Ctx {
    /// Whether the user has 2FA on: any active second factor.
    pub(crate) async fn two_factor_on(&self, user: UserId) -> Result<bool, Internal> {
        Ok(!self.store.active_factors(user).await?.is_empty())
    }
}

/// One's own second factors. Cheap to clone.
#[derive(Clone)]
pub struct Factors(pub(crate) Arc<Ctx>);

impl Factors {
    pub async fn status(&self, me: &AnySession) -> Result<TwoFactorStatus, Internal> {
        Ok(self
            .0
            .store
            .two_factor_status(me.user().id, self.0.now())
            .await?)
    }

    /// Turns 2FA off (a sensitive action): every factor, recovery code and the paper key
    /// stop working. Turning it off again is not an error.
    pub async fn disable(
        &self,
        me: &Recent<FullSession>,
        meta: &RequestMeta,
    ) -> Result<(), TwoFactorError> {
        let ctx = &self.0;
        let user = me.user();
        may_turn_off(me)?;
        let now = ctx.now();
        let event = me
            .event(EventKind::TwoFactorDisabled, meta, now)
            .with_detail(json!({ "via": "password" }));
        let via = DisabledVia::Password;
        let effects = ctx
            .notify(event, user, meta, Message::TwoFactorDisabled { via })
            .await?
            .and(me.restarted(now));
        ctx.store
            .disable_two_factor(user.id, false, &effects)
            .await?;
        Ok(())
    }

    /// [`Factors::disable`] with the password (the old `{password}` body): the password
    /// counts as a re-authentication.
    pub async fn disable_with_password(
        &self,
        me: &FullSession,
        password: &SecretString,
        meta: &RequestMeta,
    ) -> Result<(), TwoFactorError> {
        may_turn_off(me)?;
        let me = self.0.recent_by_password(me, password, meta).await?;
        self.disable(&me, meta).await
    }

    /// New recovery codes (a sensitive action); the old set stops working.
    pub async fn regenerate_codes(
        &self,
        me: &Recent<FullSession>,
        meta: &RequestMeta,
    ) -> Result<Vec<String>, TwoFactorError> {
        let ctx = &self.0;
        let user = me.user();
        let now = ctx.now();
        let codes = ctx.policy.recovery_code_format.generate_set();
        let event = me.event(EventKind::RecoveryCodesRegenerated, meta, now);
        let effects = ctx
            .notify(event, user, meta, Message::RecoveryCodesRegenerated)
            .await?
            .and(me.restarted(now));
        let hashes = recovery::hashes(ctx, user, &codes);
        if ctx
            .store
            .replace_recovery_codes(user.id, &hashes, now, &effects)
            .await?
        {
            Ok(codes)
        } else {
            Err(TwoFactorError::NotEnabled)
        }
    }

    /// [`Factors::regenerate_codes`] with the password (the old `{password}` body): the
    /// password counts as a re-authentication.
    pub async fn regenerate_codes_with_password(
        &self,
        me: &FullSession,
        password: &SecretString,
        meta: &RequestMeta,
    ) -> Result<Vec<String>, TwoFactorError> {
        let me = self.0.recent_by_password(me, password, meta).await?;
        self.regenerate_codes(&me, meta).await
    }
}

/// Whether the user may turn their own 2FA off: not while the account requires it (as GitHub
/// and SparkPost do: required means nobody turns it off alone).
fn may_turn_off(me: &FullSession) -> Result<(), TwoFactorError> {
    let exempt = me.enforcement() == crate::team::enforcement::Enforcement::Exempt;
    if me.account().two_factor_required && !exempt {
        Err(TwoFactorError::RequiredByAccount)
    } else {
        Ok(())
    }
}
