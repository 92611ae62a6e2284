//! Sign-up and password sign-in (`/signup`, `/login`): who may come in, and which step comes
//! next after the right password — a session, a second factor ([`crate::second_step`]), or a
//! code emailed for an unrecognized device ([`crate::devices`]).
//!
//! Password sign-in is throttled per email and per client address ([`crate::throttle`]); an
//! unknown email costs one argon2 verification and gets the answer of a wrong password.

mod port;

pub use port::{AccountStore, AccountSummary, UserWithPassword};

use crate::Timestamp;
use crate::ctx::{Ctx, Internal, internal_from};
use crate::email::Email;
use crate::mail::Message;
use crate::model::{
    Account, AccountId, AuthSource, Challenge, EventKind, NewEvent, RequestMeta, Role,
    TrustedDevices, User, UserId,
};
use crate::sessions::{SignInMethod, SignedIn};
use crate::store::{Effects, StoreError, Unique};
use crate::throttle::{RetryAt, Scope};
use crate::validate::{self, FieldError, PasswordContext};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum SignupError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error(transparent)]
    Internal(#[from] Internal),
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// Wrong password, unknown email or no password at all: one answer for all three.
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("too many attempts")]
    TooManyAttempts { retry_at: Timestamp },
    #[error(transparent)]
    Internal(#[from] Internal),
}

/// A password re-check (before turning 2FA off, or new recovery codes) failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RecheckError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("invalid password")]
    InvalidCredentials,
    #[error("too many attempts")]
    TooManyAttempts { retry_at: Timestamp },
    #[error(transparent)]
    Internal(#[from] Internal),
}

internal_from!(SignupError, LoginError, RecheckError);

pub struct SignupInput {
    pub account_name: String,
    pub name: String,
    pub email: String,
    pub password: SecretString,
}

pub struct LoginInput {
    pub email: String,
    pub password: SecretString,
    /// The token of a device verified before (cookie `tessera_device`, or `device_token`).
    pub device_token: Option<String>,
}

/// A user who has just chosen their password (sign-up, an accepted invitation link): they
/// may be signed in at once ([`crate::sessions::Sessions::open_registered`]).
pub struct Registered {
    user: User,
    account: Account,
    method: SignInMethod,
}

impl Registered {
    pub(crate) fn new(user: User, account: Account, method: SignInMethod) -> Self {
        Self {
            user,
            account,
            method,
        }
    }

    pub fn user(&self) -> &User {
        &self.user
    }

    pub fn account(&self) -> &Account {
        &self.account
    }

    pub(crate) fn into_parts(self) -> (User, SignInMethod) {
        (self.user, self.method)
    }
}

/// A login waiting for its second step: the token is shown to the client once.
pub struct PendingChallenge {
    pub token: crate::crypto::Token,
    pub challenge: Challenge,
    /// What the challenge takes, of what the user has (`totp`, `webauthn`, `recovery_code`;
    /// `email_code` for a device).
    pub methods: Vec<crate::factors::Method>,
    /// With `webauthn`: the browser's request options
    /// (`{"publicKey": PublicKeyCredentialRequestOptions}`).
    pub webauthn_options: Option<serde_json::Value>,
}

/// Where a correct password leads.
pub enum LoginOutcome {
    SignedIn(Box<SignedIn>),
    /// The user has 2FA: a code is needed (`POST /login/verify`).
    SecondStep(PendingChallenge),
    /// The user has no 2FA and the device is not recognized: a code was emailed, to be
    /// given at `POST /login/verify`.
    DeviceVerification(PendingChallenge),
}

/// Sign-up and sign-in. Cheap to clone.
#[derive(Clone)]
pub struct SignIn(pub(crate) Arc<Ctx>);

impl SignIn {
    /// Creates an account and its owner.
    pub async fn signup(
        &self,
        input: SignupInput,
        meta: &RequestMeta,
    ) -> Result<Registered, SignupError> {
        let ctx = &self.0;
        let account_name = validate::name("account_name", &input.account_name)?;
        let name = validate::name("name", &input.name)?;
        let email = Email::parse(&input.email).map_err(|e| FieldError::new("email", e.0))?;
        let context = PasswordContext {
            email: email.as_str(),
            name: &name,
            team: &account_name,
        };
        validate::new_password(&ctx.policy, input.password.expose_secret(), &context)?;
        let now = ctx.now();
        let account = Account {
            id: AccountId::new(),
            name: account_name,
            two_factor_required: false,
            grace_period_until: None,
            trusted_devices: TrustedDevices::Allowed,
            sso_two_factor: crate::model::SsoTwoFactor::Exempt,
            created_at: now,
        };
        let owner = User {
            id: UserId::new(),
            account_id: account.id,
            email,
            name,
            role: Role::Owner,
            auth_source: AuthSource::Password,
            created_at: now,
        };
        let hash = ctx.passwords.hash(&input.password).await?;
        let event = NewEvent::for_user(&owner, EventKind::Signup, meta, now);
        match ctx
            .store
            .create_account_with_owner(&account, &owner, &hash, &Effects::event(event))
            .await
        {
            Ok(()) => Ok(Registered::new(owner, account, SignInMethod::Password)),
            Err(StoreError::Conflict(Unique::Email)) => Err(SignupError::EmailTaken),
            Err(e) => Err(e.into()),
        }
    }

    /// Checks an email and password and opens a session, or the step that must come next:
    /// a second factor (users with 2FA), or a code emailed to them (users without 2FA on a
    /// device not recognized).
    pub async fn login(
        &self,
        input: LoginInput,
        meta: &RequestMeta,
    ) -> Result<LoginOutcome, LoginError> {
        let ctx = &self.0;
        if input.email.trim().is_empty() {
            return Err(FieldError::new("email", "email is required").into());
        }
        if input.password.expose_secret().is_empty() {
            return Err(FieldError::new("password", "password is required").into());
        }
        // A malformed address cannot belong to anyone, but is throttled and costs the same.
        let key = ctx.email_key(&input.email);
        let now = ctx.now();
        if let Err(RetryAt(retry_at)) = ctx.ip_admit(meta, now).await? {
            return Err(LoginError::TooManyAttempts { retry_at });
        }
        let lockout = ctx.policy.password_lockout();
        if let Err(RetryAt(retry_at)) = ctx
            .lockout_admit(Scope::Password, &key, lockout, now)
            .await?
        {
            return Err(LoginError::TooManyAttempts { retry_at });
        }

        let found = ctx.store.find_user_by_email(&key).await?;
        let stored_hash = found.as_ref().and_then(|f| f.password_hash.as_deref());
        let matched = ctx.passwords.verify(&input.password, stored_hash).await?;
        let now = ctx.now();
        match found {
            Some(found) if matched => {
                ctx.lockout_success(Scope::Password, &key).await?;
                ctx.ip_refund(meta).await?;
                self.next_step(found.user, input.device_token.as_deref(), meta, now)
                    .await
            }
            found => {
                let failed = EventKind::SignInFailed;
                ctx.record_password_failure(&key, found.map(|f| f.user), meta, now, failed)
                    .await?;
                Err(LoginError::InvalidCredentials)
            }
        }
    }

    /// What follows the right password.
    async fn next_step(
        &self,
        user: User,
        device_token: Option<&str>,
        meta: &RequestMeta,
        now: Timestamp,
    ) -> Result<LoginOutcome, LoginError> {
        let ctx = &self.0;
        if ctx.two_factor_on(user.id).await? {
            let device = ctx.known_device(&user, device_token, meta, now).await?;
            let account = ctx.account_of(&user).await?;
            if let Some(device) = device
                .as_ref()
                .filter(|d| d.trusted_at(now, account.trusted_devices))
            {
                let signed_in = ctx
                    .trusted_sign_in(user, account, device, meta, now)
                    .await?;
                return Ok(LoginOutcome::SignedIn(Box::new(signed_in)));
            }
            // Earlier sign-ins of this user left unfinished are told about first.
            ctx.end_unfinished(Some(user.id), now).await?;
            let device = device.map(|d| d.id);
            let pending = ctx.open_challenge(&user, device, meta, now).await?;
            return Ok(LoginOutcome::SecondStep(pending));
        }
        if !ctx
            .recognized_device(&user, device_token, meta, now)
            .await?
        {
            return match ctx.open_device_challenge(&user, meta, now).await? {
                Ok(pending) => Ok(LoginOutcome::DeviceVerification(pending)),
                Err(RetryAt(retry_at)) => Err(LoginError::TooManyAttempts { retry_at }),
            };
        }
        let account = ctx.account_of(&user).await?;
        let signed_in = ctx
            .open_session(user, account, SignInMethod::Password, meta, now)
            .await?;
        Ok(LoginOutcome::SignedIn(Box::new(signed_in)))
    }
}

impl Ctx {
    /// The account a user belongs to (every user has one).
    pub(crate) async fn account_of(&self, user: &User) -> Result<Account, Internal> {
        Ok(self
            .store
            .get_account(user.account_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("user {} has no account", user.id)))?)
    }

    /// Counts a wrong password for `key`, records it as a `failed` event, and when this
    /// failure locks password sign-in, records and emails that too.
    pub(crate) async fn record_password_failure(
        &self,
        key: &str,
        user: Option<User>,
        meta: &RequestMeta,
        now: Timestamp,
        failed: EventKind,
    ) -> Result<(), Internal> {
        let failed = match &user {
            Some(user) => NewEvent::for_user(user, failed, meta, now),
            None => NewEvent {
                account_id: None,
                user_id: None,
                email: Some(key.to_owned()),
                kind: failed,
                meta: meta.clone(),
                detail: json!({}),
                at: now,
            },
        }
        .with_detail(json!({"reason": "invalid_credentials"}));
        let until = now.plus_secs(self.policy.password_lockout_secs);
        let on_lock = match &user {
            Some(user) => {
                let event = NewEvent::for_user(user, EventKind::PasswordLocked, meta, now)
                    .with_detail(json!({"locked_until": until.to_rfc3339()}));
                self.notify(event, user, meta, Message::PasswordLocked { until })
                    .await?
            }
            None => Effects::default(),
        };
        let lockout = self.policy.password_lockout();
        let effects = (Effects::event(failed), on_lock);
        if self
            .lockout_failure(Scope::Password, key, lockout, now, effects)
            .await?
        {
            tracing::warn!(key = %key, until = %until, "password sign-in locked after repeated failures");
        }
        Ok(())
    }

    /// Re-checks a signed-in user's password (a re-authentication, a change of password),
    /// under the same lock as password sign-in; a wrong one is recorded as a `failed` event.
    pub(crate) async fn recheck_password(
        &self,
        user: &User,
        password: &SecretString,
        meta: &RequestMeta,
        failed: EventKind,
    ) -> Result<(), RecheckError> {
        if password.expose_secret().is_empty() {
            return Err(FieldError::new("password", "password is required").into());
        }
        let key = user.email.normalized().to_owned();
        let now = self.now();
        let lockout = self.policy.password_lockout();
        if let Err(RetryAt(retry_at)) = self
            .lockout_admit(Scope::Password, &key, lockout, now)
            .await?
        {
            return Err(RecheckError::TooManyAttempts { retry_at });
        }
        let stored = self.store.find_user_by_email(&key).await?;
        let hash = stored.as_ref().and_then(|s| s.password_hash.as_deref());
        if self.passwords.verify(password, hash).await? {
            self.lockout_success(Scope::Password, &key).await?;
            Ok(())
        } else {
            self.record_password_failure(&key, Some(user.clone()), meta, now, failed)
                .await?;
            Err(RecheckError::InvalidCredentials)
        }
    }
}
