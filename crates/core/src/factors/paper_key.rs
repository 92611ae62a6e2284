//! The recovery page (SPEC §2): the right email and paper key turn 2FA off, so the user can
//! sign in with email and password. Throttled per email (5 wrong keys lock it for an hour)
//! and per client address; every wrong answer is the same whether or not the email exists.

use super::{Factors, TwoFactorError};
use crate::codes::{CodePurpose, normalize_paper_key};
use crate::mail::{DisabledVia, Message};
use crate::model::{EventKind, NewEvent, RequestMeta};
use crate::store::Effects;
use crate::throttle::{RetryAt, Scope, email_key};
use crate::validate::FieldError;
use serde_json::json;

impl Factors {
    /// Turns 2FA off for the user with this email if the paper key is theirs.
    pub async fn recover(
        &self,
        email: &str,
        paper_key: &str,
        meta: &RequestMeta,
    ) -> Result<(), TwoFactorError> {
        let ctx = &self.0;
        if email.trim().is_empty() {
            return Err(FieldError::new("email", "email is required").into());
        }
        if paper_key.trim().is_empty() {
            return Err(FieldError::new("paper_key", "paper key is required").into());
        }
        let key = email_key(email);
        let now = ctx.now();
        let lockout = ctx.policy.recovery_lockout();
        if let Err(RetryAt(retry_at)) = ctx.ip_admit(meta, now).await? {
            return Err(TwoFactorError::TooManyAttempts { retry_at });
        }
        if let Err(RetryAt(retry_at)) = ctx
            .lockout_admit(Scope::Recovery, &key, lockout, now)
            .await?
        {
            return Err(TwoFactorError::TooManyAttempts { retry_at });
        }
        let user = ctx.store.find_user_by_email(&key).await?.map(|f| f.user);
        let recovered = match (&user, normalize_paper_key(paper_key)) {
            (Some(user), Some(normalized)) => {
                let event = NewEvent::for_user(user, EventKind::TwoFactorDisabled, meta, now)
                    .with_detail(json!({ "via": "paper_key" }));
                let via = DisabledVia::PaperKey;
                let effects = ctx
                    .notify(event, user, meta, Message::TwoFactorDisabled { via })
                    .await?;
                let hash = ctx.code_hash(CodePurpose::PaperKey, user.id, &normalized);
                ctx.store
                    .disable_with_paper_key(user.id, &hash, &effects)
                    .await?
            }
            _ => false,
        };
        if recovered {
            ctx.lockout_success(Scope::Recovery, &key).await?;
            ctx.ip_refund(meta).await?;
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
        ctx.lockout_failure(
            Scope::Recovery,
            &key,
            lockout,
            now,
            (failed, Effects::default()),
        )
        .await?;
        Err(TwoFactorError::InvalidCredentials)
    }
}
