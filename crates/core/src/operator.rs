//! The operator's actions (`tessera admin`, SPEC §7): the "contact support" path of the
//! seeds. Each is audited; the user is told by email where it changes their security.

use crate::ctx::{Ctx, Internal, internal_from};
use crate::mail::{Message, ResetBy};
use crate::model::{EventKind, NewEvent, RequestMeta, SecurityEvent, User};
use crate::sign_up::TeamLinkError;
use crate::store::Effects;
use crate::throttle::Scope;
use serde_json::json;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("no user has the email {0}")]
    UnknownUser(String),
    #[error("{0} does not have two-factor authentication on")]
    NotEnabled(String),
    #[error("a reason is required (it goes into the audit log)")]
    ReasonRequired,
    #[error("{0}")]
    Invalid(#[from] crate::validate::FieldError),
    #[error("a user with the email {0} already exists")]
    EmailTaken(String),
    #[error(transparent)]
    Internal(#[from] Internal),
}

internal_from!(OperatorError);

/// How operator actions appear in the audit log.
pub(crate) fn operator_meta() -> RequestMeta {
    RequestMeta {
        ip: None,
        user_agent: Some("tessera admin".to_owned()),
    }
}

/// The operator's use cases. Cheap to clone.
#[derive(Clone)]
pub struct Operator(Arc<Ctx>);

impl Operator {
    pub fn new(deps: crate::Deps) -> Self {
        Self(Arc::new(Ctx::new(deps)))
    }

    async fn user_by_email(&self, email: &str) -> Result<User, OperatorError> {
        let key = self.0.email_key(email);
        self.0
            .store
            .find_user_by_email(&key)
            .await?
            .map(|found| found.user)
            .ok_or_else(|| OperatorError::UnknownUser(email.trim().to_owned()))
    }

    /// Turns a user's 2FA off after the operator has checked who they are: secret, recovery
    /// codes and paper key are void, their sessions end, the reason is audited, and they are
    /// emailed.
    pub async fn disable_two_factor(
        &self,
        email: &str,
        reason: &str,
    ) -> Result<User, OperatorError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(OperatorError::ReasonRequired);
        }
        let user = self.user_by_email(email).await?;
        let ctx = &self.0;
        let now = ctx.now();
        let meta = operator_meta();
        let account = ctx.account_of(&user).await?;
        let event = NewEvent::for_user(&user, EventKind::TwoFactorReset, &meta, now)
            .with_detail(json!({ "by": "operator", "reason": reason }));
        let message = Message::TwoFactorReset {
            by: ResetBy::Operator,
            required: account.two_factor_required,
        };
        let effects =
            Effects::event(event).and_email(ctx.email_in(&user, &account, &meta, now, message));
        if ctx
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
    pub async fn unlock(&self, email: &str) -> Result<(User, bool), OperatorError> {
        let user = self.user_by_email(email).await?;
        let mut cleared = false;
        for (scope, key) in Scope::of_user(&user) {
            cleared |= self.0.store.clear_throttle(scope, &key).await?;
        }
        if cleared {
            let event =
                NewEvent::for_user(&user, EventKind::Unlocked, &operator_meta(), self.0.now())
                    .with_detail(json!({ "by": "operator" }));
            self.0.store.record(&Effects::event(event)).await?;
        }
        Ok((user, cleared))
    }

    /// Creates a team for its owner (SPEC §8, closed sign-up): the owner is emailed a link
    /// to choose their password, valid as long as an invitation; the team and its owner exist
    /// once they have. Returns when the link expires.
    pub async fn create_account(
        &self,
        name: &str,
        owner_email: &str,
        owner_name: &str,
    ) -> Result<crate::Timestamp, OperatorError> {
        match self
            .0
            .team_link(name, owner_email, owner_name, &operator_meta())
            .await
        {
            Ok(expires_at) => Ok(expires_at),
            Err(TeamLinkError::Invalid(e)) => Err(e.into()),
            Err(TeamLinkError::EmailTaken) => {
                Err(OperatorError::EmailTaken(owner_email.trim().to_owned()))
            }
            Err(TeamLinkError::Internal(e)) => Err(e.into()),
        }
    }

    /// A user's audit log, newest first (for `tessera admin events`).
    pub async fn events(
        &self,
        email: &str,
        limit: i64,
    ) -> Result<Vec<SecurityEvent>, OperatorError> {
        let user = self.user_by_email(email).await?;
        Ok(self.0.store.user_events(user.id, None, limit).await?)
    }
}

/// The operator's side of the OpenID Connect provider (SPEC §13).
impl Operator {
    fn oidc(&self) -> crate::oidc_provider::OidcProvider {
        crate::oidc_provider::OidcProvider::new(Arc::clone(&self.0))
    }

    /// `tessera admin oidc-clients add`.
    pub async fn add_oidc_client(
        &self,
        new: &crate::oidc_provider::clients::NewClient,
    ) -> Result<crate::oidc_provider::clients::Registered, crate::oidc_provider::clients::ClientError>
    {
        self.oidc().add_operator_client(new).await
    }

    /// `tessera admin oidc-clients list`.
    pub async fn oidc_clients(
        &self,
    ) -> Result<Vec<crate::oidc_provider::ClientRow>, crate::oidc_provider::clients::ClientError>
    {
        self.oidc().operator_clients().await
    }

    /// `tessera admin oidc-clients remove`.
    pub async fn remove_oidc_client(
        &self,
        id: &str,
    ) -> Result<(), crate::oidc_provider::clients::ClientError> {
        self.oidc().remove_operator_client(id).await
    }

    /// `tessera admin rotate-signing-key`: the new current keys, as `ALG KID` lines.
    pub async fn rotate_signing_key(
        &self,
    ) -> Result<Vec<String>, crate::oidc_provider::OidcInternal> {
        self.oidc().rotate_keys().await
    }
}
