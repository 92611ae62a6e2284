//! Running a team (SPEC §2 and §4, "Account administration"): the account's 2FA policy,
//! invitations, deleting users, resetting their 2FA, and the account's audit log.
//!
//! Who may do what is decided here, once, and carried by types:
//! - only a [`Manager`] (the owner or an admin, whose session is not restricted to 2FA
//!   setup) can call these use cases, and [`Manager::new`] is the only way to get one;
//! - an action on another user needs that user as a [`Managed`], which only
//!   [`Auth::managed`] hands out, after [`may_act_on`]: nobody acts on themselves through
//!   these (their own settings are the way), and nobody acts on the owner.
//!
//! Members manage only themselves (`/me`), so they never get a `Manager`.

use crate::Timestamp;
use crate::auth::{Auth, Internal, PASSWORD_SCOPE};
use crate::crypto::Token;
use crate::email::Email;
use crate::mail::{Message, OutgoingEmail, ResetBy};
use crate::model::{
    Account, Invitation, InvitationId, InvitationStatus, NewEvent, RequestMeta, Role,
    SecurityEvent, User, UserId,
};
use crate::model::{AuthSource, EventKind};
use crate::second_step::SECOND_STEP_SCOPE;
use crate::store::{Effects, Member, SessionContext, StoreError};
use crate::two_factor::RECOVERY_SCOPE;
use crate::validate::{self, FieldError};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum TeamError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// The caller's role does not allow this, or not on this user.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The session may only set up 2FA.
    #[error("set up two-factor authentication first")]
    SetupRequired,
    /// No such user or invitation in the caller's account.
    #[error("not found")]
    NotFound,
    #[error("a user with this email already exists")]
    EmailTaken,
    #[error("this email already has an open invitation")]
    InvitationExists,
    #[error("two-factor authentication is not on for this user")]
    NotEnabled,
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl From<StoreError> for TeamError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.into())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InvitationError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("this invitation link is not valid")]
    NotFound,
    #[error("this invitation has already been used")]
    Used,
    #[error("this invitation has expired; ask for a new one")]
    Expired,
    #[error("this invitation was withdrawn")]
    Revoked,
    #[error("a user with this email already exists")]
    EmailTaken,
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl From<StoreError> for InvitationError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.into())
    }
}

impl From<crate::password::PasswordError> for InvitationError {
    fn from(e: crate::password::PasswordError) -> Self {
        Self::Internal(e.into())
    }
}

/// The owner or an admin of an account, signed in with a session that may do everything.
pub struct Manager {
    context: SessionContext,
}

impl Manager {
    /// `Forbidden` for a member, `SetupRequired` for a session restricted to 2FA setup.
    pub fn new(context: SessionContext, now: Timestamp) -> Result<Self, TeamError> {
        if context.setup_only(now) {
            return Err(TeamError::SetupRequired);
        }
        match context.user.role {
            Role::Owner | Role::Admin => Ok(Self { context }),
            Role::Member => Err(TeamError::Forbidden(
                "only the account owner and admins can do this",
            )),
        }
    }

    pub fn user(&self) -> &User {
        &self.context.user
    }

    pub fn context(&self) -> &SessionContext {
        &self.context
    }

    pub fn account(&self) -> &Account {
        &self.context.account
    }

    fn event(&self, kind: EventKind, meta: &RequestMeta, now: Timestamp) -> NewEvent {
        NewEvent::for_user(self.user(), kind, meta, now)
    }
}

/// Whether `actor` may delete `target` or reset their 2FA. Pure, so every pair is tested.
pub fn may_act_on(actor: &User, target: &User) -> Result<(), &'static str> {
    if actor.id == target.id {
        Err("you cannot do this to your own user here; use your security settings")
    } else if target.role == Role::Owner {
        Err("nobody can delete the account owner or reset their 2FA")
    } else if matches!(actor.role, Role::Owner | Role::Admin) {
        Ok(())
    } else {
        Err("only the account owner and admins can do this")
    }
}

/// A user of the manager's account whom the manager may act on.
pub struct Managed {
    user: User,
}

impl Managed {
    pub fn user(&self) -> &User {
        &self.user
    }
}

/// A new invitation, as a manager fills it in.
pub struct InviteInput {
    pub email: String,
    pub name: String,
    pub role: String,
}

/// The role an invitation may give: never a second owner.
fn invited_role(input: &str) -> Result<Role, FieldError> {
    match input.trim().parse::<Role>() {
        Ok(role @ (Role::Admin | Role::Member)) => Ok(role),
        _ => Err(FieldError::new("role", "must be admin or member")),
    }
}

/// The policy as a manager sets it.
pub struct PolicyInput<'a> {
    pub required: bool,
    /// A date (`2026-12-01`, meaning the start of that day, UTC) or an RFC 3339 time.
    pub grace_period_until: Option<&'a str>,
}

/// An invitation found by its link, with the account it leads to.
pub struct OpenInvitation {
    pub invitation: Invitation,
    pub account: Account,
}

impl Auth {
    /// Seals an email for a user of an account whose name is already known.
    fn email_in(
        &self,
        user: &User,
        account: &Account,
        meta: &RequestMeta,
        now: Timestamp,
        message: Message,
    ) -> crate::mail::SealedEmail {
        let email = OutgoingEmail::to_user(user, Some(&account.name), meta, now, message);
        self.mailer.seal(&email, now)
    }

    /// A user of the manager's account the manager may act on.
    pub async fn managed(&self, manager: &Manager, id: UserId) -> Result<Managed, TeamError> {
        let user = self
            .store
            .get_user(id)
            .await?
            .filter(|u| u.account_id == manager.account().id)
            .ok_or(TeamError::NotFound)?;
        may_act_on(manager.user(), &user).map_err(TeamError::Forbidden)?;
        Ok(Managed { user })
    }

    pub async fn team_members(&self, manager: &Manager) -> Result<Vec<Member>, TeamError> {
        Ok(self.store.team_members(manager.account().id).await?)
    }

    /// Sets whether the account requires 2FA, and until when users may still skip it.
    /// Turning the requirement on emails every user; turning it off changes no one's 2FA.
    pub async fn set_two_factor_policy(
        &self,
        manager: &Manager,
        input: PolicyInput<'_>,
        meta: &RequestMeta,
    ) -> Result<Account, TeamError> {
        let now = self.now();
        let grace = match input.grace_period_until.map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(Timestamp::parse_deadline(text).ok_or_else(|| {
                FieldError::new(
                    "grace_period_until",
                    "must be a date (YYYY-MM-DD) or an RFC 3339 time",
                )
            })?),
        };
        if let Some(until) = grace {
            if !input.required {
                return Err(FieldError::new(
                    "grace_period_until",
                    "a grace period only applies when 2FA is required",
                )
                .into());
            }
            if until <= now {
                return Err(FieldError::new("grace_period_until", "must be in the future").into());
            }
        }
        let account = manager.account();
        let effects = Effects::event(
            manager
                .event(EventKind::TwoFactorPolicyChanged, meta, now)
                .with_detail(json!({
                    "required": input.required,
                    "grace_period_until": grace.map(Timestamp::to_rfc3339),
                })),
        );
        let mut turned_on = Effects::default();
        if input.required {
            for member in self.store.team_members(account.id).await? {
                let message = Message::TwoFactorRequired {
                    by: manager.user().name.clone(),
                    deadline: grace,
                };
                turned_on =
                    turned_on.and_email(self.email_in(&member.user, account, meta, now, message));
            }
        }
        self.store
            .set_two_factor_policy(account.id, input.required, grace, &effects, &turned_on)
            .await?
            .ok_or(TeamError::NotFound)
    }

    /// Invites someone to the account; the link goes to them by email and is valid for
    /// `invitation_lifetime_secs`.
    pub async fn invite(
        &self,
        manager: &Manager,
        input: InviteInput,
        meta: &RequestMeta,
    ) -> Result<Invitation, TeamError> {
        let email = Email::parse(&input.email).map_err(|e| FieldError::new("email", e.0))?;
        let name = validate::name("name", &input.name)?;
        let role = invited_role(&input.role)?;
        let now = self.now();
        let invitation = Invitation {
            id: InvitationId::new(),
            account_id: manager.account().id,
            email,
            name,
            role,
            invited_by: Some(manager.user().id),
            status: InvitationStatus::Pending,
            created_at: now,
            expires_at: now.plus_secs(self.policy.invitation_lifetime_secs),
        };
        let token = Token::generate();
        let email = OutgoingEmail {
            to: invitation.email.as_str().to_owned(),
            to_name: invitation.name.clone(),
            account_name: Some(manager.account().name.clone()),
            at: now,
            ip: meta.ip.clone(),
            user_agent: meta.user_agent.clone(),
            message: Message::Invitation {
                inviter: manager.user().name.clone(),
                role: role.to_string(),
                token: token.expose().to_owned(),
                expires_at: invitation.expires_at,
            },
        };
        let effects = Effects::event(
            manager
                .event(EventKind::UserInvited, meta, now)
                .with_detail(json!({
                    "invitation_id": invitation.id,
                    "invitee": invitation.email.as_str(),
                    "role": role,
                })),
        )
        .and_email(self.mailer.seal(&email, now));
        match self
            .store
            .create_invitation(&invitation, &token.hash(), &effects)
            .await
        {
            Ok(()) => Ok(invitation),
            Err(StoreError::Conflict("email")) => Err(TeamError::EmailTaken),
            Err(StoreError::Conflict(_)) => Err(TeamError::InvitationExists),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn open_invitations(&self, manager: &Manager) -> Result<Vec<Invitation>, TeamError> {
        Ok(self
            .store
            .open_invitations(manager.account().id, self.now())
            .await?)
    }

    /// Withdraws an open invitation: its link stops working.
    pub async fn revoke_invitation(
        &self,
        manager: &Manager,
        id: InvitationId,
        meta: &RequestMeta,
    ) -> Result<(), TeamError> {
        let now = self.now();
        let effects = Effects::event(
            manager
                .event(EventKind::InvitationRevoked, meta, now)
                .with_detail(json!({ "invitation_id": id })),
        );
        if self
            .store
            .revoke_invitation(manager.account().id, id, now, &effects)
            .await?
        {
            Ok(())
        } else {
            Err(TeamError::NotFound)
        }
    }

    /// The invitation behind a link, if it can still be accepted.
    pub async fn invitation(&self, token: &str) -> Result<OpenInvitation, InvitationError> {
        let invitation = self
            .store
            .find_invitation(&Token::from_client(token.trim()).hash())
            .await?
            .ok_or(InvitationError::NotFound)?;
        match invitation.status_at(self.now()) {
            InvitationStatus::Pending => {}
            InvitationStatus::Accepted => return Err(InvitationError::Used),
            InvitationStatus::Expired => return Err(InvitationError::Expired),
            InvitationStatus::Revoked => return Err(InvitationError::Revoked),
        }
        let account = self
            .store
            .get_account(invitation.account_id)
            .await?
            .ok_or(InvitationError::NotFound)?;
        Ok(OpenInvitation {
            invitation,
            account,
        })
    }

    /// Accepts an invitation: creates the user with the role invited and the password given
    /// (and the name, when they change it). Once only: a second use, even concurrent, fails.
    pub async fn accept_invitation(
        &self,
        token: &str,
        password: &SecretString,
        name: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<User, InvitationError> {
        let OpenInvitation {
            invitation,
            account,
        } = self.invitation(token).await?;
        let name = match name.map(str::trim).filter(|n| !n.is_empty()) {
            Some(name) => validate::name("name", name)?,
            None => invitation.name.clone(),
        };
        validate::new_password(
            &self.policy,
            password.expose_secret(),
            invitation.email.normalized(),
        )?;
        let hash = self.passwords.hash(password).await?;
        let now = self.now();
        let user = User {
            id: UserId::new(),
            account_id: account.id,
            email: invitation.email.clone(),
            name,
            role: invitation.role,
            auth_source: AuthSource::Password,
            created_at: now,
        };
        let effects = Effects::event(
            NewEvent::for_user(&user, EventKind::InvitationAccepted, meta, now)
                .with_detail(json!({ "invitation_id": invitation.id, "role": user.role })),
        );
        match self
            .store
            .accept_invitation(invitation.id, now, &user, &hash, &effects)
            .await
        {
            Ok(true) => Ok(user),
            // Lost a race with another use of the link, or it lapsed while hashing.
            Ok(false) => Err(self
                .invitation(token)
                .await
                .err()
                .unwrap_or(InvitationError::Used)),
            Err(StoreError::Conflict(_)) => Err(InvitationError::EmailTaken),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a user: their sessions, factors and devices go with them; their events stay.
    /// Inviting the same email again gives a fresh user, without 2FA (Mailgun's reset path).
    pub async fn delete_user(
        &self,
        manager: &Manager,
        target: Managed,
        meta: &RequestMeta,
    ) -> Result<(), TeamError> {
        let now = self.now();
        let user = target.user;
        let effects = Effects::event(
            manager
                .event(EventKind::UserDeleted, meta, now)
                .with_detail(json!({
                    "target_id": user.id,
                    "target_email": user.email.as_str(),
                    "target_role": user.role,
                })),
        );
        let email = user.email.normalized().to_owned();
        let throttles = [
            (PASSWORD_SCOPE, email.clone()),
            (RECOVERY_SCOPE, email),
            (SECOND_STEP_SCOPE, user.id.to_string()),
        ];
        if self
            .store
            .delete_user(user.id, &throttles, now, &effects)
            .await?
        {
            Ok(())
        } else {
            Err(TeamError::NotFound)
        }
    }

    /// An admin's reset of a user's 2FA (SparkPost): secret, recovery codes and paper key
    /// are void, the user's sessions end, and they are emailed. If the account requires 2FA,
    /// they set it up again at their next sign-in.
    pub async fn reset_two_factor(
        &self,
        manager: &Manager,
        target: Managed,
        meta: &RequestMeta,
    ) -> Result<(), TeamError> {
        let now = self.now();
        let user = target.user;
        let account = manager.account();
        let effects = Effects::event(
            NewEvent::for_user(&user, EventKind::TwoFactorReset, meta, now).with_detail(json!({
                "by": "admin",
                "admin_id": manager.user().id,
                "admin_email": manager.user().email.as_str(),
            })),
        )
        .and_email(self.email_in(
            &user,
            account,
            meta,
            now,
            Message::TwoFactorReset {
                by: ResetBy::Admin {
                    name: manager.user().name.clone(),
                },
                required: account.two_factor_required,
            },
        ));
        if self
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
    pub async fn account_events(
        &self,
        manager: &Manager,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<SecurityEvent>, TeamError> {
        Ok(self
            .store
            .account_events(manager.account().id, before, limit)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AccountId;

    fn user(role: Role) -> User {
        User {
            id: UserId::new(),
            account_id: AccountId::new(),
            email: Email::parse("u@example.com").unwrap(),
            name: "U".into(),
            role,
            auth_source: AuthSource::Password,
            created_at: Timestamp::from_unix(0),
        }
    }

    #[test]
    fn who_may_act_on_whom() {
        use Role::{Admin, Member, Owner};
        // (actor, target, allowed)
        let table = [
            (Owner, Admin, true),
            (Owner, Member, true),
            (Admin, Admin, true),
            (Admin, Member, true),
            (Admin, Owner, false),
            (Member, Member, false),
            (Member, Admin, false),
            (Member, Owner, false),
        ];
        for (actor, target, allowed) in table {
            let verdict = may_act_on(&user(actor), &user(target));
            assert_eq!(verdict.is_ok(), allowed, "{actor} on {target}: {verdict:?}");
        }
        for role in [Owner, Admin, Member] {
            let me = user(role);
            assert!(may_act_on(&me, &me).is_err(), "{role} on themselves");
        }
    }

    #[test]
    fn invitations_never_make_an_owner() {
        assert_eq!(invited_role("admin"), Ok(Role::Admin));
        assert_eq!(invited_role(" member "), Ok(Role::Member));
        assert!(invited_role("owner").is_err());
        assert!(invited_role("root").is_err());
        assert!(invited_role("").is_err());
    }
}
