//! Running a team (SPEC §2 and §4, "Account administration"): the account's 2FA policy
//! ([`policy`]), invitations ([`invitations`]), deleting users, resetting their 2FA, and the
//! account's audit log.
//!
//! Who may do what is carried by types ([`crate::principal`]): only a [`Manager`] reaches
//! these use cases, and an action on another user needs that user as a [`Managed`], which
//! only [`Team::managed`] hands out, after [`crate::principal::may_act_on`]. Members manage
//! only themselves (`/me`). The powers that amount to account recovery (deleting a user,
//! resetting their 2FA, inviting an admin, the 2FA policy) need a [`RecoveryAdmin`]: a
//! manager within the step-up window, with 2FA on themselves (SPEC §9, review F6); all but
//! inviting an admin are also open to an API key with the grant for them ([`Acting`]).

mod acting;
pub mod enforcement;
pub mod invitations;
mod policy;
mod port;

pub use acting::Acting;
pub use invitations::{InvitationError, Invitations, InviteInput, Inviter, OpenInvitation};
pub use policy::PolicyInput;
pub use port::{TeamStore, TeamUser};

use crate::audit::Refused;
use crate::ctx::{Ctx, Internal, internal_from};
use crate::mail::{Message, ResetBy};
use crate::model::{EventKind, NewEvent, RequestMeta, SecurityEvent, UserId};
use crate::principal::grant::{EventsRead, UsersRead, UsersWrite};
use crate::principal::{Forbidden, Managed, Manager, Principal, Reads, RecoveryAdmin};
use crate::store::Effects;
use crate::throttle::Scope;
use crate::validate::FieldError;
use serde_json::json;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TeamError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// The caller may not do this, or not to this user.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// No such user or invitation in the caller's account.
    #[error("not found")]
    NotFound,
    /// The email belongs to a member of this team already.
    #[error("this person is already a member of the team")]
    AlreadyMember,
    #[error("this email already has an open invitation")]
    InvitationExists,
    #[error("two-factor authentication is not on for this user")]
    NotEnabled,
    /// Too many invitation emails today, from this account or to this address (SPEC §8).
    #[error("too many invitations; try again later")]
    TooManyInvitations { wait_secs: i64 },
    #[error(transparent)]
    Internal(#[from] Internal),
}

internal_from!(TeamError);

/// The team's use cases, for its managers (and keys with the grant for one). Cheap to clone.
#[derive(Clone)]
pub struct Team(pub(crate) Arc<Ctx>);

impl Ctx {
    /// The manager, for a power that amounts to account recovery (SPEC §9, review F6): with
    /// 2FA on themselves (unless `admin_requires_two_factor` is off), then within the
    /// step-up window. The 2FA is asked first: re-authenticating would not help without it.
    pub(crate) fn recovery_admin(&self, manager: Manager) -> Result<RecoveryAdmin, Forbidden> {
        if self.policy.admin_requires_two_factor && !manager.two_factor_enabled() {
            return Err(Forbidden::AdminTwoFactorRequired);
        }
        Ok(RecoveryAdmin::new(self.recent(manager)?))
    }
}

impl Team {
    /// The manager, if they may reset another user's 2FA, delete a user, invite an admin or
    /// change the team's 2FA policy now ([`RecoveryAdmin`]).
    pub fn recovery_admin(&self, manager: Manager) -> Result<RecoveryAdmin, Forbidden> {
        self.0.recovery_admin(manager)
    }

    /// A user of the account whom the one acting (the admin, or the key's creator) may act
    /// on now. A refusal (oneself, the owner) is audited, as any refused request
    /// ([`Ctx::audit_refused`]).
    pub async fn managed<'a>(
        &self,
        who: impl Into<Acting<'a, UsersWrite>>,
        id: UserId,
        meta: &RequestMeta,
    ) -> Result<Managed, TeamError> {
        let who = who.into();
        let user = self
            .0
            .store
            .get_user(id)
            .await?
            .filter(|u| u.account_id == who.account().id)
            .ok_or(TeamError::NotFound)?;
        match Managed::new(who.user(), user) {
            Ok(managed) => Ok(managed),
            Err(why) => {
                let refused = match who {
                    Acting::Admin(admin) => Refused::Session(admin.any()),
                    Acting::Key(key) => Refused::Key(key),
                };
                let detail = json!({ "target_id": id });
                self.0.audit_refused(refused, why, detail, meta).await;
                Err(why.into())
            }
        }
    }

    /// The account's users: for its managers, and keys granted `users:read`.
    pub async fn members(&self, who: &impl Reads<UsersRead>) -> Result<Vec<TeamUser>, TeamError> {
        Ok(self.0.store.team_members(who.account_read().id).await?)
    }

    /// Deletes a user: their sessions, factors and devices go with them; their events stay.
    /// Inviting the same email again gives a fresh user, without 2FA (Mailgun's reset path).
    pub async fn delete_user<'a>(
        &self,
        who: impl Into<Acting<'a, UsersWrite>>,
        target: Managed,
        meta: &RequestMeta,
    ) -> Result<(), TeamError> {
        let who = who.into();
        let now = self.0.now();
        let user = target.into_user();
        let detail = json!({
            "target_id": user.id,
            "target_email": user.email.as_str(),
            "target_role": user.role,
        });
        let effects = Effects::event(who.event(EventKind::UserDeleted, meta, now, detail))
            .and(who.restarted(now));
        let throttles = Scope::of_user(&user);
        if self
            .0
            .store
            .delete_user(user.id, &throttles, now, &effects)
            .await?
        {
            Ok(())
        } else {
            Err(TeamError::NotFound)
        }
    }

    /// An admin's reset of a user's 2FA (SparkPost): every factor, the recovery codes and
    /// paper key are void, the user's sessions end, and they are emailed (by a key: as by
    /// its creator). If the account requires 2FA, they set it up again at their next sign-in.
    pub async fn reset_two_factor<'a>(
        &self,
        who: impl Into<Acting<'a, UsersWrite>>,
        target: Managed,
        meta: &RequestMeta,
    ) -> Result<(), TeamError> {
        let who = who.into();
        let ctx = &self.0;
        let now = ctx.now();
        let user = target.into_user();
        let account = who.account();
        let detail = who.detail(json!({
            "by": "admin",
            "admin_id": who.user().id,
            "admin_email": who.user().email.as_str(),
        }));
        let event =
            NewEvent::for_user(&user, EventKind::TwoFactorReset, meta, now).with_detail(detail);
        let message = Message::TwoFactorReset {
            by: ResetBy::Admin {
                name: who.user().name.clone(),
            },
            required: account.two_factor_required,
        };
        let effects = Effects::event(event)
            .and_email(ctx.email_in(&user, account, meta, now, message))
            .and(who.restarted(now));
        if ctx
            .store
            .disable_two_factor(user.id, true, &effects)
            .await?
        {
            Ok(())
        } else {
            Err(TeamError::NotEnabled)
        }
    }

    /// The account's audit log, newest first, older than event `before` when given.
    /// For its managers, and keys granted `events:read`.
    pub async fn account_events(
        &self,
        who: &impl Reads<EventsRead>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<SecurityEvent>, TeamError> {
        Ok(self
            .0
            .store
            .account_events(who.account_read().id, before, limit)
            .await?)
    }
}
