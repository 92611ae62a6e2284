//! The recovery page (SPEC §2): the right email and paper key turn 2FA off, so the user can
//! sign in with email and password. Throttled per email (5 wrong keys lock it for an hour)
//! and per client address; every wrong answer is the same whether or not the email exists.

use super::{Factors, TwoFactorError};
use crate::codes::{CodePurpose, normalize_paper_key};
use crate::email::Email;
use crate::mail::{DisabledVia, Message};
use crate::model::{AccountId, AuthSource, EventKind, NewEvent, RequestMeta, Role, User, UserId};
use crate::store::Effects;
use crate::throttle::{RetryAt, Scope};
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
        let key = ctx.email_key(email);
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
        // The same work whether or not the email is a user's and the key well formed (SPEC
        // §8, review F12): an unknown email gets a stand-in user that exists nowhere, a
        // malformed key is hashed as the empty key that no row holds; both paths seal the
        // email (reading the account), hash the key and run the same conditional DELETE in a
        // transaction, which then matches nothing and is rolled back. Only the answer of
        // that DELETE differs, so the time cannot tell which emails exist.
        let target = user.clone().unwrap_or_else(|| stand_in(now));
        let normalized = normalize_paper_key(paper_key).unwrap_or_default();
        let event = NewEvent::for_user(&target, EventKind::TwoFactorDisabled, meta, now)
            .with_detail(json!({ "via": "paper_key" }));
        let via = DisabledVia::PaperKey;
        let effects = ctx
            .notify(event, &target, meta, Message::TwoFactorDisabled { via })
            .await?;
        let hash = ctx.code_hash(CodePurpose::PaperKey, target.id, &normalized);
        let recovered = ctx
            .store
            .disable_with_paper_key(target.id, &hash, &effects)
            .await?;
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

/// A user that exists in no account, for the unknown-email path of [`Factors::recover`].
fn stand_in(now: crate::Timestamp) -> User {
    User {
        id: UserId::new(),
        account_id: AccountId::new(),
        email: Email::parse("nobody@stand-in.invalid").unwrap_or_else(|_| unreachable!()),
        name: String::new(),
        role: Role::Member,
        auth_source: AuthSource::Password,
        created_at: now,
    }
}
