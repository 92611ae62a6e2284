//! Setting up TOTP (SPEC §2): a pending secret with its paper key, shown once and pending 30
//! minutes (restarting replaces it), activated by a first code from the app, which turns 2FA
//! on and issues the recovery codes. Any session may do this, a restricted one included;
//! starting it is a sensitive action (SPEC §9, F9: a stolen session alone cannot bind the
//! thief's authenticator), activating the started setup is not.

use super::{Activation, Enrollment, TotpCode, TotpSecret, matching_step};
use crate::Timestamp;
use crate::codes::{CodePurpose, generate_paper_key};
use crate::factors::{Factors, TwoFactorError, recovery};
use crate::mail::Message;
use crate::model::{EventKind, RequestMeta};
use crate::principal::{AnySession, Recent};
use crate::store::Effects;
use crate::validate::FieldError;

/// What the user sees while setting up: everything needed to add the key to an app, and the
/// paper key, shown this once.
pub struct Setup {
    pub secret: TotpSecret,
    pub otpauth_uri: String,
    pub paper_key: String,
    pub expires_at: Timestamp,
}

impl Factors {
    /// Starts a TOTP setup, replacing a pending one; nothing is active until confirmed. A
    /// user whose 2FA is on through security keys may add an authenticator app too.
    pub async fn start_setup(
        &self,
        me: &Recent<AnySession>,
        meta: &RequestMeta,
    ) -> Result<Setup, TwoFactorError> {
        let ctx = &self.0;
        let user = me.user();
        if ctx.store.get_totp_factor(user.id).await?.is_some() {
            return Err(TwoFactorError::AlreadyEnabled);
        }
        let now = ctx.now();
        let secret = TotpSecret::generate();
        let paper_key = generate_paper_key();
        let enrollment = Enrollment {
            secret_sealed: ctx.seal_secret(user, &secret),
            paper_key_hash: ctx.code_hash(CodePurpose::PaperKey, user.id, &paper_key),
            created_at: now,
            expires_at: now.plus_secs(ctx.policy.pending_setup_secs),
        };
        let event = me.event(EventKind::TwoFactorSetupStarted, meta, now);
        let effects = Effects::event(event).and(me.restarted(now));
        ctx.store
            .put_enrollment(user.id, &enrollment, &effects)
            .await?;
        Ok(Setup {
            otpauth_uri: secret.otpauth_uri(&ctx.issuer, user.email.as_str()),
            secret,
            paper_key,
            expires_at: enrollment.expires_at,
        })
    }

    /// Confirms the pending setup with a code from the app: 2FA is on, and the recovery codes
    /// (returned, shown once) replace any old ones. For a user whose 2FA was on already
    /// (security keys), the app is one more factor: their recovery codes stay, none are
    /// returned.
    pub async fn activate(
        &self,
        me: &AnySession,
        code: &str,
        meta: &RequestMeta,
    ) -> Result<Vec<String>, TwoFactorError> {
        let ctx = &self.0;
        let user = me.user();
        let code = TotpCode::parse(code)
            .ok_or_else(|| FieldError::new("code", "enter the 6-digit code from your app"))?;
        let now = ctx.now();
        let Some(enrollment) = ctx.store.get_enrollment(user.id, now).await? else {
            return Err(if ctx.two_factor_on(user.id).await? {
                TwoFactorError::AlreadyEnabled
            } else {
                TwoFactorError::NoPendingSetup
            });
        };
        let secret = ctx.open_secret(user, &enrollment.secret_sealed)?;
        let step = matching_step(&secret, &code, now).ok_or(TwoFactorError::InvalidCode)?;
        let effects;
        let codes = if ctx.two_factor_on(user.id).await? {
            // One more factor, as a security key added after the first is: recorded, 2FA
            // unchanged.
            effects = Effects::event(me.event(EventKind::AuthenticatorAdded, meta, now));
            Vec::new()
        } else {
            let event = me.event(EventKind::TwoFactorEnabled, meta, now);
            effects = ctx
                .notify(event, user, meta, Message::TwoFactorEnabled)
                .await?;
            ctx.policy.recovery_code_format.generate_set()
        };
        let hashes = recovery::hashes(ctx, user, &codes);
        let activation = ctx
            .store
            .activate_totp(
                user.id,
                &enrollment.secret_sealed,
                now,
                step,
                &hashes,
                &effects,
            )
            .await?;
        match activation {
            Activation::Activated => Ok(codes),
            Activation::NoPendingSetup => Err(TwoFactorError::NoPendingSetup),
            Activation::AlreadyEnabled => Err(TwoFactorError::AlreadyEnabled),
        }
    }
}
