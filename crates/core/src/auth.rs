//! Sign-up, password sign-in, sessions and sign-out: the use cases behind `/signup`,
//! `/login`, `/logout` and every authenticated request, for the API and the pages alike.

use crate::codes::CodeHasher;
use crate::crypto::{Sealer, Token, TokenHash};
use crate::email::Email;
use crate::mail::{Mailer, Message, OutgoingEmail};
use crate::model::{
    Account, AccountId, AuthSource, Challenge, EventKind, NewEvent, RequestMeta, Role, Session,
    SessionId, SessionKind, User, UserId,
};
use crate::password::{PasswordError, Passwords};
use crate::store::{Effects, SessionContext, Store, StoreError, TwoFactorStatus};
use crate::throttle::{self, Lockout, RetryAt};
use crate::validate::{self, FieldError};
use crate::{Clock, SecurityPolicy, Timestamp};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use std::sync::Arc;

/// The throttle key of the client's address.
fn ip_key(meta: &RequestMeta) -> String {
    meta.ip.clone().unwrap_or_default()
}

/// What an email typed at sign-in is throttled (and looked up) under: its normalized form,
/// or, for something that is no address, a cleaned, bounded version of it (no control
/// characters, at most 254 of them), which costs the same and matches no user.
pub(crate) fn email_key(input: &str) -> String {
    Email::parse(input).map_or_else(
        |_| {
            input
                .trim()
                .to_lowercase()
                .chars()
                .filter(|c| !c.is_control())
                .take(254)
                .collect()
        },
        |e| e.normalized().to_owned(),
    )
}

/// Throttle scopes (the `scope` column of the throttle table).
pub const PASSWORD_SCOPE: &str = "password";
pub const IP_SCOPE: &str = "ip";

/// The server failed (database, hashing): a 500, logged, never shown.
#[derive(Debug, thiserror::Error)]
pub enum Internal {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error("a stored secret cannot be decrypted (is this the right master key?): {0}")]
    Sealed(#[from] crate::crypto::Unsealable),
}

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

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("not signed in")]
    Unauthenticated,
    #[error(transparent)]
    Internal(#[from] Internal),
}

macro_rules! internal_from {
    ($($err:ty),+) => {$(
        impl From<StoreError> for $err {
            fn from(e: StoreError) -> Self { Self::Internal(e.into()) }
        }
        impl From<PasswordError> for $err {
            fn from(e: PasswordError) -> Self { Self::Internal(e.into()) }
        }
    )+};
}
internal_from!(SignupError, LoginError, SessionError);

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

/// A new session: the token is shown to the client once and never stored.
pub struct SignedIn {
    pub token: Token,
    pub context: SessionContext,
}

/// A login waiting for its second step: the token is shown to the client once.
pub struct PendingChallenge {
    pub token: Token,
    pub challenge: Challenge,
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

/// What the authentication use cases work with.
pub struct Deps {
    pub store: Arc<dyn Store>,
    pub passwords: Passwords,
    pub clock: Arc<dyn Clock>,
    pub policy: SecurityPolicy,
    /// Seals queued emails.
    pub mailer: Mailer,
    /// Seals TOTP secrets at rest.
    pub totp_sealer: Sealer,
    /// Hashes recovery codes and paper keys.
    pub codes: CodeHasher,
    /// The name authenticator apps show (`TESSERA_ISSUER`).
    pub issuer: String,
}

/// The authentication use cases (sign-up, sign-in, second factors, sessions). Cheap to clone.
#[derive(Clone)]
pub struct Auth(Arc<Deps>);

impl std::ops::Deref for Auth {
    type Target = Deps;
    fn deref(&self) -> &Deps {
        &self.0
    }
}

impl Auth {
    pub fn new(deps: Deps) -> Self {
        Self(Arc::new(deps))
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Counts an attempt against a consecutive-failure lock before its secret is checked.
    pub(crate) async fn lockout_admit(
        &self,
        scope: &str,
        key: &str,
        lockout: Lockout,
        now: Timestamp,
    ) -> Result<Result<(), RetryAt>, Internal> {
        let mut admitted = Ok(());
        self.store
            .update_throttle(scope, key, &mut |state| {
                let (next, verdict) = throttle::admit(state, now, &lockout);
                admitted = verdict;
                (next, Effects::default())
            })
            .await?;
        Ok(admitted)
    }

    /// Counts an attempt from the client's address before it is checked (SPEC §3: failed
    /// sign-ins per IP); a success gives it back with [`Auth::ip_refund`].
    pub(crate) async fn ip_admit(
        &self,
        meta: &RequestMeta,
        now: Timestamp,
    ) -> Result<Result<(), RetryAt>, Internal> {
        let policy = &self.policy;
        let mut admitted = Ok(());
        self.store
            .update_throttle(IP_SCOPE, &ip_key(meta), &mut |state| {
                let (next, verdict) = throttle::window_admit(state, now, &policy.ip_window());
                admitted = verdict;
                (next, Effects::default())
            })
            .await?;
        Ok(admitted)
    }

    pub(crate) async fn ip_refund(&self, meta: &RequestMeta) -> Result<(), Internal> {
        self.store
            .update_throttle(IP_SCOPE, &ip_key(meta), &mut |state| {
                (throttle::window_refund(state), Effects::default())
            })
            .await?;
        Ok(())
    }

    /// Records a failure with its `effects`; `true` when this one locked, in which case
    /// `on_lock` (the lock's event and email) is written too, all in the transaction that
    /// counts the failure.
    pub(crate) async fn lockout_failure(
        &self,
        scope: &str,
        key: &str,
        lockout: Lockout,
        now: Timestamp,
        (effects, on_lock): (Effects, Effects),
    ) -> Result<bool, Internal> {
        let mut locked_now = false;
        self.store
            .update_throttle(scope, key, &mut |state| {
                let (next, locked) = throttle::failure(state, now, &lockout);
                locked_now = locked;
                let written = if locked {
                    effects.clone().and(on_lock.clone())
                } else {
                    effects.clone()
                };
                (next, written)
            })
            .await?;
        Ok(locked_now)
    }

    pub(crate) async fn lockout_success(&self, scope: &str, key: &str) -> Result<(), Internal> {
        self.store
            .update_throttle(scope, key, &mut |state| {
                (throttle::success(state), Effects::default())
            })
            .await?;
        Ok(())
    }

    /// An email for `user` about `message`, sealed for the outbox.
    pub(crate) async fn email_to(
        &self,
        user: &User,
        meta: &RequestMeta,
        now: Timestamp,
        message: Message,
    ) -> Result<crate::mail::SealedEmail, Internal> {
        let account = self.store.get_account(user.account_id).await?;
        let email = OutgoingEmail::to_user(
            user,
            account.as_ref().map(|a| a.name.as_str()),
            meta,
            now,
            message,
        );
        Ok(self.mailer.seal(&email, now))
    }

    /// Creates an account and its owner.
    pub async fn signup(
        &self,
        input: SignupInput,
        meta: &RequestMeta,
    ) -> Result<(User, Account), SignupError> {
        let account_name = validate::name("account_name", &input.account_name)?;
        let name = validate::name("name", &input.name)?;
        let email = Email::parse(&input.email).map_err(|e| FieldError::new("email", e.0))?;
        validate::new_password(
            &self.policy,
            input.password.expose_secret(),
            email.normalized(),
        )?;
        let now = self.clock.now();
        let account = Account {
            id: AccountId::new(),
            name: account_name,
            two_factor_required: false,
            grace_period_until: None,
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
        let hash = self.passwords.hash(&input.password).await?;
        let event = NewEvent::for_user(&owner, EventKind::Signup, meta, now);
        match self
            .store
            .create_account_with_owner(&account, &owner, &hash, &Effects::event(event))
            .await
        {
            Ok(()) => Ok((owner, account)),
            Err(StoreError::Conflict(_)) => Err(SignupError::EmailTaken),
            Err(e) => Err(e.into()),
        }
    }

    /// Checks an email and password and opens a session, or the step that must come next:
    /// a code from the authenticator app (users with 2FA), or one emailed to them (users
    /// without 2FA on a device not recognized, see [`crate::device`]).
    ///
    /// Throttled per email and per IP address (see [`crate::throttle`]). An unknown email
    /// costs one argon2 verification and gets the same answer as a wrong password.
    pub async fn login(
        &self,
        input: LoginInput,
        meta: &RequestMeta,
    ) -> Result<LoginOutcome, LoginError> {
        if input.email.trim().is_empty() {
            return Err(FieldError::new("email", "email is required").into());
        }
        if input.password.expose_secret().is_empty() {
            return Err(FieldError::new("password", "password is required").into());
        }
        // A malformed address cannot belong to anyone, but is throttled and costs the same.
        let key = email_key(&input.email);
        let now = self.clock.now();
        let policy = &self.policy;

        if let Err(RetryAt(retry_at)) = self.ip_admit(meta, now).await? {
            return Err(LoginError::TooManyAttempts { retry_at });
        }

        let admitted = self
            .lockout_admit(PASSWORD_SCOPE, &key, policy.password_lockout(), now)
            .await?;
        if let Err(RetryAt(retry_at)) = admitted {
            return Err(LoginError::TooManyAttempts { retry_at });
        }

        let found = self.store.find_user_by_email(&key).await?;
        let stored_hash = found.as_ref().and_then(|f| f.password_hash.as_deref());
        let matched = self.passwords.verify(&input.password, stored_hash).await?;
        let now = self.clock.now();

        match found {
            Some(found) if matched => {
                self.lockout_success(PASSWORD_SCOPE, &key).await?;
                self.ip_refund(meta).await?;
                if self.store.get_totp_factor(found.user.id).await?.is_some() {
                    let pending = self.open_challenge(&found.user, now).await?;
                    return Ok(LoginOutcome::SecondStep(pending));
                }
                let device = input.device_token.as_deref();
                if !self
                    .recognized_device(&found.user, device, meta, now)
                    .await?
                {
                    return match self.open_device_challenge(&found.user, meta, now).await? {
                        Ok(pending) => Ok(LoginOutcome::DeviceVerification(pending)),
                        Err(RetryAt(retry_at)) => Err(LoginError::TooManyAttempts { retry_at }),
                    };
                }
                let signed_in = self.open_session(found.user, meta, now, "password").await?;
                Ok(LoginOutcome::SignedIn(Box::new(signed_in)))
            }
            found => {
                self.record_failure(&key, found.map(|f| f.user), meta, now)
                    .await?;
                Err(LoginError::InvalidCredentials)
            }
        }
    }

    /// Counts a wrong password for `key`, records it, and when this failure locks password
    /// sign-in, records and emails that too.
    pub(crate) async fn record_failure(
        &self,
        key: &str,
        user: Option<User>,
        meta: &RequestMeta,
        now: Timestamp,
    ) -> Result<(), Internal> {
        let policy = &self.policy;
        let failed = match &user {
            Some(user) => NewEvent::for_user(user, EventKind::SignInFailed, meta, now),
            None => NewEvent {
                account_id: None,
                user_id: None,
                email: Some(key.to_owned()),
                kind: EventKind::SignInFailed,
                meta: meta.clone(),
                detail: json!({}),
                at: now,
            },
        }
        .with_detail(json!({"reason": "invalid_credentials"}));
        let until = now.plus_secs(policy.password_lockout_secs);
        let on_lock = match &user {
            Some(user) => Effects::event(
                NewEvent::for_user(user, EventKind::PasswordLocked, meta, now)
                    .with_detail(json!({"locked_until": until.to_rfc3339()})),
            )
            .and_email(
                self.email_to(user, meta, now, Message::PasswordLocked { until })
                    .await?,
            ),
            None => Effects::default(),
        };
        let locked = self
            .lockout_failure(
                PASSWORD_SCOPE,
                key,
                policy.password_lockout(),
                now,
                (Effects::event(failed), on_lock),
            )
            .await?;
        if locked {
            tracing::warn!(key = %key, until = %until, "password sign-in locked after repeated failures");
        }
        Ok(())
    }

    /// Opens a session for a user without 2FA who has just proved who they are (sign-up,
    /// sign-in); `method` is recorded with the sign-in event. If the account requires 2FA
    /// and no grace is left, the session may only set it up (SPEC §4).
    pub async fn open_session(
        &self,
        user: User,
        meta: &RequestMeta,
        now: Timestamp,
        method: &str,
    ) -> Result<SignedIn, Internal> {
        let account = self
            .store
            .get_account(user.account_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("user {} has no account", user.id)))?;
        let token = Token::generate();
        let mut context = SessionContext {
            session: self.new_session(&user, meta, now, SessionKind::Full),
            user,
            account,
            two_factor_enabled: false,
        };
        let mut detail = json!({ "method": method });
        if context.setup_only(now) {
            context.session.kind = SessionKind::SetupOnly;
            detail["restricted"] = json!("two_factor_setup_required");
        }
        let event =
            NewEvent::for_user(&context.user, EventKind::SignIn, meta, now).with_detail(detail);
        self.store
            .create_session(&context.session, &token.hash(), &Effects::event(event))
            .await?;
        Ok(SignedIn { token, context })
    }

    /// A session for `user`, starting now. `kind` records what it was opened as; what it may
    /// do is decided on each request ([`SessionContext::setup_only`]).
    pub(crate) fn new_session(
        &self,
        user: &User,
        meta: &RequestMeta,
        now: Timestamp,
        kind: SessionKind,
    ) -> Session {
        Session {
            id: SessionId::new(),
            user_id: user.id,
            kind,
            created_at: now,
            expires_at: now.plus_secs(self.policy.session_lifetime_secs),
            ip: meta.ip.clone(),
            user_agent: meta.user_agent.clone(),
        }
    }

    /// The live session a token belongs to.
    pub async fn authenticate(&self, token: &TokenHash) -> Result<SessionContext, SessionError> {
        self.store
            .find_session(token, self.clock.now())
            .await?
            .ok_or(SessionError::Unauthenticated)
    }

    /// [`Auth::authenticate`] with the user's 2FA status, read together (`GET /me`).
    pub async fn authenticate_with_status(
        &self,
        token: &TokenHash,
    ) -> Result<(SessionContext, TwoFactorStatus), SessionError> {
        self.store
            .find_session_with_status(token, self.clock.now())
            .await?
            .ok_or(SessionError::Unauthenticated)
    }

    /// Ends the session; signing out twice is not an error.
    pub async fn logout(
        &self,
        context: &SessionContext,
        meta: &RequestMeta,
    ) -> Result<(), SessionError> {
        let event = NewEvent::for_user(&context.user, EventKind::SignOut, meta, self.clock.now());
        self.store
            .end_session(context.session.id, &Effects::event(event))
            .await?;
        Ok(())
    }
}
