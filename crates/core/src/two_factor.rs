//! Managing one's own second factors (SPEC §2): TOTP setup with a paper key, activation with
//! recovery codes, turning 2FA off and regenerating codes with the password, and the recovery
//! page (email + paper key turns 2FA off).

use crate::Timestamp;
use crate::auth::{Auth, Internal, PASSWORD_SCOPE, email_key};
use crate::codes::{generate_paper_key, normalize_paper_key};
use crate::mail::{DisabledVia, Message};
use crate::model::{AuthSource, EventKind, NewEvent, RequestMeta, User};
use crate::store::{Activation, Effects, Enrollment, StoreError, TwoFactorStatus};
use crate::throttle::RetryAt;
use crate::totp::{TotpCode, TotpSecret, matching_step};
use crate::validate::FieldError;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

pub const RECOVERY_SCOPE: &str = "recovery";

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

impl From<StoreError> for TwoFactorError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.into())
    }
}

/// What the user sees while setting up: everything needed to add the key to an app, and the
/// paper key, shown this once.
pub struct Setup {
    pub secret: TotpSecret,
    pub otpauth_uri: String,
    pub paper_key: String,
    pub expires_at: Timestamp,
}

impl Auth {
    pub async fn two_factor_status(&self, user: &User) -> Result<TwoFactorStatus, Internal> {
        Ok(self.store.two_factor_status(user.id, self.now()).await?)
    }

    /// Starts a TOTP setup, replacing a pending one; nothing is active until confirmed.
    pub async fn start_setup(
        &self,
        user: &User,
        meta: &RequestMeta,
    ) -> Result<Setup, TwoFactorError> {
        if self.store.get_totp_factor(user.id).await?.is_some() {
            return Err(TwoFactorError::AlreadyEnabled);
        }
        let now = self.now();
        let secret = TotpSecret::generate();
        let paper_key = generate_paper_key();
        let enrollment = Enrollment {
            secret_sealed: self.seal_secret(user, &secret),
            paper_key_hash: self.codes.hash("paper", user.id, &paper_key),
            created_at: now,
            expires_at: now.plus_secs(self.policy.pending_setup_secs),
        };
        let event = NewEvent::for_user(user, EventKind::TwoFactorSetupStarted, meta, now);
        self.store
            .put_enrollment(user.id, &enrollment, &Effects::event(event))
            .await?;
        Ok(Setup {
            otpauth_uri: secret.otpauth_uri(&self.issuer, user.email.as_str()),
            secret,
            paper_key,
            expires_at: enrollment.expires_at,
        })
    }

    /// Confirms the pending setup with a code from the app: 2FA is on, and the recovery codes
    /// (returned, shown once) replace any old ones.
    pub async fn activate(
        &self,
        user: &User,
        code: &str,
        meta: &RequestMeta,
    ) -> Result<Vec<String>, TwoFactorError> {
        let code = TotpCode::parse(code)
            .ok_or_else(|| FieldError::new("code", "enter the 6-digit code from your app"))?;
        let now = self.now();
        let Some(enrollment) = self.store.get_enrollment(user.id, now).await? else {
            return Err(if self.store.get_totp_factor(user.id).await?.is_some() {
                TwoFactorError::AlreadyEnabled
            } else {
                TwoFactorError::NoPendingSetup
            });
        };
        let secret = self.open_secret(user, &enrollment.secret_sealed)?;
        let step = matching_step(&secret, &code, now).ok_or(TwoFactorError::InvalidCode)?;
        let codes = self.policy.recovery_code_format.generate_set();
        let hashes = self.recovery_hashes(user, &codes);
        let effects = Effects::event(NewEvent::for_user(
            user,
            EventKind::TwoFactorEnabled,
            meta,
            now,
        ))
        .and_email(
            self.email_to(user, meta, now, Message::TwoFactorEnabled)
                .await?,
        );
        match self
            .store
            .activate_two_factor(
                user.id,
                &enrollment.secret_sealed,
                now,
                step,
                &hashes,
                &effects,
            )
            .await?
        {
            Activation::Activated => Ok(codes),
            Activation::NoPendingSetup => Err(TwoFactorError::NoPendingSetup),
            Activation::AlreadyEnabled => Err(TwoFactorError::AlreadyEnabled),
        }
    }

    /// Turns 2FA off after checking the password: the secret, every recovery code and the
    /// paper key stop working. Turning it off again is not an error.
    pub async fn disable(
        &self,
        user: &User,
        password: &SecretString,
        meta: &RequestMeta,
    ) -> Result<(), TwoFactorError> {
        let account = self.store.get_account(user.account_id).await?;
        if account.is_some_and(|a| a.two_factor_required) && user.auth_source != AuthSource::Sso {
            // As GitHub and SparkPost do: required means nobody turns it off alone.
            return Err(TwoFactorError::RequiredByAccount);
        }
        self.check_password(user, password, meta).await?;
        let now = self.now();
        let effects = Effects::event(
            NewEvent::for_user(user, EventKind::TwoFactorDisabled, meta, now)
                .with_detail(json!({ "via": "password" })),
        )
        .and_email(
            self.email_to(
                user,
                meta,
                now,
                Message::TwoFactorDisabled {
                    via: DisabledVia::Password,
                },
            )
            .await?,
        );
        self.store
            .disable_two_factor(user.id, false, &effects)
            .await?;
        Ok(())
    }

    /// New recovery codes after checking the password; the old set stops working.
    pub async fn regenerate_codes(
        &self,
        user: &User,
        password: &SecretString,
        meta: &RequestMeta,
    ) -> Result<Vec<String>, TwoFactorError> {
        self.check_password(user, password, meta).await?;
        let now = self.now();
        let codes = self.policy.recovery_code_format.generate_set();
        let effects = Effects::event(NewEvent::for_user(
            user,
            EventKind::RecoveryCodesRegenerated,
            meta,
            now,
        ))
        .and_email(
            self.email_to(user, meta, now, Message::RecoveryCodesRegenerated)
                .await?,
        );
        if self
            .store
            .replace_recovery_codes(user.id, &self.recovery_hashes(user, &codes), now, &effects)
            .await?
        {
            Ok(codes)
        } else {
            Err(TwoFactorError::NotEnabled)
        }
    }

    /// The recovery page: the right email and paper key turn 2FA off, so the user can sign in
    /// with email and password. Throttled per email and per IP address; every wrong answer is
    /// the same whether or not the email exists.
    pub async fn recover(
        &self,
        email: &str,
        paper_key: &str,
        meta: &RequestMeta,
    ) -> Result<(), TwoFactorError> {
        if email.trim().is_empty() {
            return Err(FieldError::new("email", "email is required").into());
        }
        if paper_key.trim().is_empty() {
            return Err(FieldError::new("paper_key", "paper key is required").into());
        }
        let key = email_key(email);
        let now = self.now();
        let policy = &self.policy;
        if let Err(RetryAt(retry_at)) = self.ip_admit(meta, now).await? {
            return Err(TwoFactorError::TooManyAttempts { retry_at });
        }
        if let Err(RetryAt(retry_at)) = self
            .lockout_admit(RECOVERY_SCOPE, &key, policy.recovery_lockout(), now)
            .await?
        {
            return Err(TwoFactorError::TooManyAttempts { retry_at });
        }
        let user = self.store.find_user_by_email(&key).await?.map(|f| f.user);
        let recovered = match (&user, normalize_paper_key(paper_key)) {
            (Some(user), Some(normalized)) => {
                let effects = Effects::event(
                    NewEvent::for_user(user, EventKind::TwoFactorDisabled, meta, now)
                        .with_detail(json!({ "via": "paper_key" })),
                )
                .and_email(
                    self.email_to(
                        user,
                        meta,
                        now,
                        Message::TwoFactorDisabled {
                            via: DisabledVia::PaperKey,
                        },
                    )
                    .await?,
                );
                let hash = self.codes.hash("paper", user.id, &normalized);
                self.store
                    .disable_with_paper_key(user.id, &hash, &effects)
                    .await?
            }
            _ => false,
        };
        if recovered {
            self.lockout_success(RECOVERY_SCOPE, &key).await?;
            self.ip_refund(meta).await?;
            return Ok(());
        }
        let failed = user.as_ref().map_or_else(Effects::default, |user| {
            Effects::event(NewEvent::for_user(
                user,
                EventKind::RecoveryFailed,
                meta,
                now,
            ))
        });
        self.lockout_failure(
            RECOVERY_SCOPE,
            &key,
            policy.recovery_lockout(),
            now,
            (failed, Effects::default()),
        )
        .await?;

        Err(TwoFactorError::InvalidCredentials)
    }

    fn recovery_hashes(&self, user: &User, codes: &[String]) -> Vec<Vec<u8>> {
        codes
            .iter()
            .filter_map(|c| self.policy.recovery_code_format.normalize(c))
            .map(|n| self.codes.hash("recovery", user.id, &n))
            .collect()
    }

    /// Re-checks the signed-in user's password (for disabling 2FA and regenerating codes),
    /// under the same lock as password sign-in.
    async fn check_password(
        &self,
        user: &User,
        password: &SecretString,
        meta: &RequestMeta,
    ) -> Result<(), TwoFactorError> {
        if password.expose_secret().is_empty() {
            return Err(FieldError::new("password", "password is required").into());
        }
        let key = user.email.normalized().to_owned();
        let now = self.now();
        if let Err(RetryAt(retry_at)) = self
            .lockout_admit(PASSWORD_SCOPE, &key, self.policy.password_lockout(), now)
            .await?
        {
            return Err(TwoFactorError::TooManyAttempts { retry_at });
        }
        let stored = self.store.find_user_by_email(&key).await?;
        let hash = stored.as_ref().and_then(|s| s.password_hash.as_deref());
        if self
            .passwords
            .verify(password, hash)
            .await
            .map_err(Internal::from)?
        {
            self.lockout_success(PASSWORD_SCOPE, &key).await?;
            Ok(())
        } else {
            self.record_failure(&key, Some(user.clone()), meta, now)
                .await?;
            Err(TwoFactorError::InvalidCredentials)
        }
    }
}
