//! Sign-up, password sign-in, sessions and sign-out: the use cases behind `/signup`,
//! `/login`, `/logout` and every authenticated request, for the API and the pages alike.

use crate::crypto::{Token, TokenHash};
use crate::email::Email;
use crate::mail::{Mailer, Message, OutgoingEmail};
use crate::model::{
    Account, AccountId, AuthSource, EventKind, NewEvent, RequestMeta, Role, Session, SessionId,
    SessionKind, User, UserId,
};
use crate::password::{PasswordError, Passwords};
use crate::store::{Effects, SessionContext, Store, StoreError};
use crate::throttle::{self, RetryAt};
use crate::validate::{self, FieldError};
use crate::{Clock, SecurityPolicy, Timestamp};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use std::sync::Arc;

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
}

/// A new session: the token is shown to the client once and never stored.
pub struct SignedIn {
    pub token: Token,
    pub context: SessionContext,
}

/// The authentication use cases, over a store, a clock and the security policy.
#[derive(Clone)]
pub struct Auth {
    store: Arc<dyn Store>,
    passwords: Passwords,
    clock: Arc<dyn Clock>,
    policy: Arc<SecurityPolicy>,
    mailer: Arc<Mailer>,
}

impl Auth {
    pub fn new(
        store: Arc<dyn Store>,
        passwords: Passwords,
        clock: Arc<dyn Clock>,
        policy: Arc<SecurityPolicy>,
        mailer: Arc<Mailer>,
    ) -> Self {
        Self {
            store,
            passwords,
            clock,
            policy,
            mailer,
        }
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
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

    /// Checks an email and password and opens a session.
    ///
    /// Throttled per email and per IP address (see [`crate::throttle`]). An unknown email
    /// costs one argon2 verification and gets the same answer as a wrong password.
    pub async fn login(
        &self,
        input: LoginInput,
        meta: &RequestMeta,
    ) -> Result<SignedIn, LoginError> {
        if input.email.trim().is_empty() {
            return Err(FieldError::new("email", "email is required").into());
        }
        if input.password.expose_secret().is_empty() {
            return Err(FieldError::new("password", "password is required").into());
        }
        // A malformed address cannot belong to anyone, but is throttled and costs the same.
        let key = Email::parse(&input.email)
            .map(|e| e.normalized().to_owned())
            .unwrap_or_else(|_| {
                input
                    .email
                    .trim()
                    .to_lowercase()
                    .chars()
                    .take(254)
                    .collect()
            });
        let now = self.clock.now();
        let policy = &self.policy;

        let ip_key = meta.ip.clone().unwrap_or_default();
        let ip_state = self.store.read_throttle(IP_SCOPE, &ip_key).await?;
        if let Err(RetryAt(retry_at)) = throttle::ip_check(ip_state, now, policy) {
            return Err(LoginError::TooManyAttempts { retry_at });
        }

        let mut admitted = Ok(());
        self.store
            .update_throttle(PASSWORD_SCOPE, &key, &mut |state| {
                let (next, verdict) = throttle::password_admit(state, now, policy);
                admitted = verdict;
                next
            })
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
                self.store
                    .update_throttle(PASSWORD_SCOPE, &key, &mut throttle::password_success)
                    .await?;
                let context = self.open_session(found.user, meta, now).await?;
                Ok(context)
            }
            found => {
                self.record_failure(&key, found.map(|f| f.user), meta, now)
                    .await?;
                Err(LoginError::InvalidCredentials)
            }
        }
    }

    async fn record_failure(
        &self,
        key: &str,
        user: Option<User>,
        meta: &RequestMeta,
        now: Timestamp,
    ) -> Result<(), Internal> {
        let policy = &self.policy;
        let mut locked_now = false;
        self.store
            .update_throttle(PASSWORD_SCOPE, key, &mut |state| {
                let (next, locked) = throttle::password_failure(state, now, policy);
                locked_now = locked;
                next
            })
            .await?;
        let ip_key = meta.ip.clone().unwrap_or_default();
        self.store
            .update_throttle(IP_SCOPE, &ip_key, &mut |state| {
                throttle::ip_failure(state, now, policy)
            })
            .await?;
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
        let mut effects = Effects::event(failed);
        if let (true, Some(user)) = (locked_now, &user) {
            let until = now.plus_secs(policy.password_lockout_secs);
            let account = self.store.get_account(user.account_id).await?;
            let email = OutgoingEmail::to_user(
                user,
                account.as_ref().map(|a| a.name.as_str()),
                meta,
                now,
                Message::PasswordLocked { until },
            );
            effects = effects
                .and_event(
                    NewEvent::for_user(user, EventKind::PasswordLocked, meta, now)
                        .with_detail(json!({"locked_until": until.to_rfc3339()})),
                )
                .and_email(self.mailer.seal(&email, now));
            tracing::warn!(user_id = %user.id, until = %until, "password sign-in locked after repeated failures");
        }
        self.store.record(&effects).await?;
        Ok(())
    }

    /// Opens a session for a user who has just proved who they are (sign-up, sign-in).
    pub async fn open_session(
        &self,
        user: User,
        meta: &RequestMeta,
        now: Timestamp,
    ) -> Result<SignedIn, Internal> {
        let account = self
            .store
            .get_account(user.account_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("user {} has no account", user.id)))?;
        let token = Token::generate();
        let session = Session {
            id: SessionId::new(),
            user_id: user.id,
            kind: SessionKind::Full,
            created_at: now,
            expires_at: now.plus_secs(self.policy.session_lifetime_secs),
            ip: meta.ip.clone(),
            user_agent: meta.user_agent.clone(),
        };
        let event = NewEvent::for_user(&user, EventKind::SignIn, meta, now)
            .with_detail(json!({"method": "password"}));
        self.store
            .create_session(&session, &token.hash(), &Effects::event(event))
            .await?;
        Ok(SignedIn {
            token,
            context: SessionContext {
                session,
                user,
                account,
            },
        })
    }

    /// The live session a token belongs to.
    pub async fn authenticate(&self, token: &TokenHash) -> Result<SessionContext, SessionError> {
        self.store
            .find_session(token, self.clock.now())
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
