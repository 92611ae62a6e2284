//! The operator's actions (`tessera admin`, SPEC §7): the "contact support" path of the
//! seeds. Each is audited; the user is told by email where it changes their security.

use crate::auth::{Auth, Internal, PASSWORD_SCOPE};
use crate::mail::{Message, ResetBy};
use crate::model::{EventKind, NewEvent, RequestMeta, User};
use crate::second_step::SECOND_STEP_SCOPE;
use crate::store::{Effects, StoreError};
use crate::two_factor::RECOVERY_SCOPE;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("no user has the email {0}")]
    UnknownUser(String),
    #[error("{0} does not have two-factor authentication on")]
    NotEnabled(String),
    #[error("a reason is required (it goes into the audit log)")]
    ReasonRequired,
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl From<StoreError> for OperatorError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.into())
    }
}

/// How operator actions appear in the audit log.
fn operator_meta() -> RequestMeta {
    RequestMeta {
        ip: None,
        user_agent: Some("tessera admin".to_owned()),
    }
}

impl Auth {
    async fn user_by_email(&self, email: &str) -> Result<User, OperatorError> {
        let key = crate::auth::email_key(email);
        self.store
            .find_user_by_email(&key)
            .await?
            .map(|found| found.user)
            .ok_or_else(|| OperatorError::UnknownUser(email.trim().to_owned()))
    }

    /// Turns a user's 2FA off after the operator has checked who they are: secret, recovery
    /// codes and paper key are void, their sessions end, the reason is audited, and they are
    /// emailed.
    pub async fn operator_disable_two_factor(
        &self,
        email: &str,
        reason: &str,
    ) -> Result<User, OperatorError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(OperatorError::ReasonRequired);
        }
        let user = self.user_by_email(email).await?;
        let now = self.now();
        let meta = operator_meta();
        let required = self
            .store
            .get_account(user.account_id)
            .await?
            .is_some_and(|a| a.two_factor_required);
        let effects = Effects::event(
            NewEvent::for_user(&user, EventKind::TwoFactorReset, &meta, now)
                .with_detail(json!({ "by": "operator", "reason": reason })),
        )
        .and_email(
            self.email_to(
                &user,
                &meta,
                now,
                Message::TwoFactorReset {
                    by: ResetBy::Operator,
                    required,
                },
            )
            .await?,
        );
        if self
            .store
            .disable_two_factor(user.id, true, &effects)
            .await?
        {
            Ok(user)
        } else {
            Err(OperatorError::NotEnabled(user.email.as_str().to_owned()))
        }
    }

    /// Lifts every sign-in lock of a user: password, second step, recovery page.
    pub async fn operator_unlock(&self, email: &str) -> Result<(User, bool), OperatorError> {
        let user = self.user_by_email(email).await?;
        let mut cleared = false;
        for (scope, key) in [
            (PASSWORD_SCOPE, user.email.normalized().to_owned()),
            (SECOND_STEP_SCOPE, user.id.to_string()),
            (RECOVERY_SCOPE, user.email.normalized().to_owned()),
        ] {
            cleared |= self.store.clear_throttle(scope, &key).await?;
        }
        if cleared {
            let event =
                NewEvent::for_user(&user, EventKind::Unlocked, &operator_meta(), self.now())
                    .with_detail(json!({ "by": "operator" }));
            self.store.record(&Effects::event(event)).await?;
        }
        Ok((user, cleared))
    }

    /// A user's audit log, newest first (for `tessera admin events`).
    pub async fn operator_events(
        &self,
        email: &str,
        limit: i64,
    ) -> Result<Vec<crate::model::SecurityEvent>, OperatorError> {
        let user = self.user_by_email(email).await?;
        Ok(self.store.user_events(user.id, None, limit).await?)
    }
}
