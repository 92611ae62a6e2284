//! Invitations (SPEC §2): a manager invites someone by email (a link valid 7 days), may
//! withdraw it, and the invitee accepts it once, choosing their password. At most one open
//! invitation per email and account, and (SPEC §8) at most 50 invitation emails per account
//! and 3 per recipient a day, withdrawn ones included: each is counted (atomically, under the
//! throttle's row lock) before it is written, and given back if it was not.

use super::{Team, TeamError};
use crate::Timestamp;
use crate::audit::Refused;
use crate::crypto::Token;
use crate::ctx::{Ctx, Internal, internal_from};
use crate::email::Email;
use crate::mail::{Message, OutgoingEmail};
use crate::model::{
    Account, AuthSource, EventKind, Invitation, InvitationId, InvitationStatus, NewEvent,
    RequestMeta, Role, User, UserId,
};
use crate::principal::grant::InvitationsWrite;
use crate::principal::{Forbidden, Granted, Manager, Principal, Reads};
use crate::sessions::SignInMethod;
use crate::sign_in::Registered;
use crate::store::{Effects, StoreError, Unique};
use crate::throttle::{RetryAt, Scope};
use crate::validate::{self, FieldError, PasswordContext};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use std::sync::Arc;

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
    /// The invitee signs in with the team's SSO: no password is chosen here.
    #[error("this invitation is for single sign-on: sign in with SSO with your work email")]
    UseSso,
    #[error(transparent)]
    Internal(#[from] Internal),
}

internal_from!(InvitationError);

/// A new invitation, as a manager fills it in.
pub struct InviteInput {
    pub email: String,
    pub name: String,
    pub role: String,
    /// The invitee will sign in with the team's SSO (their first SSO sign-in creates the
    /// user), rather than choose a password.
    pub sso: bool,
}

/// The role an invitation may give: never a second owner.
fn invited_role(input: &str) -> Result<Role, FieldError> {
    match input.trim().parse::<Role>() {
        Ok(role @ (Role::Admin | Role::Member)) => Ok(role),
        _ => Err(FieldError::new("role", "must be admin or member")),
    }
}

/// An invitation found by its link, with the account it leads to.
pub struct OpenInvitation {
    pub invitation: Invitation,
    pub account: Account,
}

/// Who invites: a manager in a session, or an API key granted `invitations:write`, which
/// invites members only (inviting an admin is a power that amounts to account recovery).
#[derive(Clone, Copy)]
pub enum Inviter<'a> {
    Manager(&'a Manager),
    Key(&'a Granted<InvitationsWrite>),
}

impl<'a> From<&'a Manager> for Inviter<'a> {
    fn from(manager: &'a Manager) -> Self {
        Self::Manager(manager)
    }
}

impl<'a> From<&'a Granted<InvitationsWrite>> for Inviter<'a> {
    fn from(key: &'a Granted<InvitationsWrite>) -> Self {
        Self::Key(key)
    }
}

impl Inviter<'_> {
    /// The person acting: the manager, or the key's creator.
    fn user(&self) -> &User {
        match self {
            Self::Manager(manager) => manager.user(),
            Self::Key(key) => key.creator(),
        }
    }

    fn account(&self) -> &Account {
        match self {
            Self::Manager(manager) => manager.account(),
            Self::Key(key) => key.account(),
        }
    }

    /// An event of theirs, naming the key when one acted.
    fn event(
        &self,
        kind: EventKind,
        meta: &RequestMeta,
        now: Timestamp,
        mut detail: serde_json::Value,
    ) -> NewEvent {
        if let Self::Key(key) = self {
            detail["api_key_id"] = json!(key.key().id);
        }
        NewEvent::for_user(self.user(), kind, meta, now).with_detail(detail)
    }
}

impl Team {
    /// Invites someone to the account; the link goes to them by email and is valid for
    /// `invitation_lifetime_secs`. Inviting an admin is a power that amounts to account
    /// recovery ([`crate::principal::RecoveryAdmin`]); inviting a member is not.
    pub async fn invite<'a>(
        &self,
        who: impl Into<Inviter<'a>>,
        input: InviteInput,
        meta: &RequestMeta,
    ) -> Result<Invitation, TeamError> {
        let ctx = &self.0;
        let who = who.into();
        let email = Email::parse(&input.email).map_err(|e| FieldError::new("email", e.0))?;
        let name = validate::name("name", &input.name)?;
        let role = invited_role(&input.role)?;
        let auth_source = if input.sso {
            ctx.sso_domain_of(who.account().id, &email).await?;
            AuthSource::Sso
        } else {
            AuthSource::Password
        };
        // Inviting an admin is a recovery power: refused, it is audited as any refusal.
        let admin = match (role, who) {
            (Role::Admin, Inviter::Manager(manager)) => match ctx.recovery_admin(manager.clone()) {
                Ok(admin) => Some(admin),
                Err(why) => {
                    let detail = json!({ "invited_role": "admin" });
                    ctx.audit_refused(Refused::Session(manager.any()), why, detail, meta)
                        .await;
                    return Err(why.into());
                }
            },
            (Role::Admin, Inviter::Key(key)) => {
                let detail = json!({ "invited_role": "admin" });
                ctx.audit_refused(Refused::Key(key), Forbidden::ApiKey, detail, meta)
                    .await;
                return Err(Forbidden::ApiKey.into());
            }
            _ => None,
        };
        let now = ctx.now();
        let invitation = Invitation {
            id: InvitationId::new(),
            account_id: who.account().id,
            email,
            name,
            role,
            invited_by: Some(who.user().id),
            auth_source,
            status: InvitationStatus::Pending,
            created_at: now,
            expires_at: now.plus_secs(ctx.policy.invitation_lifetime_secs),
        };
        let token = Token::generate();
        let email = OutgoingEmail {
            to: invitation.email.as_str().to_owned(),
            to_name: invitation.name.clone(),
            account_name: Some(who.account().name.clone()),
            at: now,
            ip: meta.ip.clone(),
            user_agent: meta.user_agent.clone(),
            message: Message::Invitation {
                inviter: who.user().name.clone(),
                role: role.to_string(),
                token: token.expose().to_owned(),
                expires_at: invitation.expires_at,
                sso: auth_source == AuthSource::Sso,
            },
        };
        let detail = json!({
            "invitation_id": invitation.id,
            "invitee": invitation.email.as_str(),
            "role": role,
            "auth_source": auth_source,
        });
        let event = who.event(EventKind::UserInvited, meta, now, detail);
        let mut effects = Effects::event(event).and_email(ctx.mailer.seal(&email, now));
        if let Some(admin) = admin {
            effects = effects.and(admin.restarted(now));
        }
        let counted = ctx.count_invitation(&invitation, now).await?;
        let created = ctx
            .store
            .create_invitation(&invitation, &token.hash(), &effects)
            .await;
        if created.is_err() {
            ctx.uncount_invitation(&counted).await?;
        }
        match created {
            Ok(()) => Ok(invitation),
            Err(StoreError::Conflict(Unique::Email)) => Err(TeamError::AlreadyMember),
            Err(StoreError::Conflict(Unique::OpenInvitation)) => Err(TeamError::InvitationExists),
            Err(e) => Err(e.into()),
        }
    }

    /// The invitations still open: for managers, and keys granted `invitations:write`.
    pub async fn open_invitations(
        &self,
        who: &impl Reads<InvitationsWrite>,
    ) -> Result<Vec<Invitation>, TeamError> {
        Ok(self
            .0
            .store
            .open_invitations(who.account_read().id, self.0.now())
            .await?)
    }

    /// Withdraws an open invitation: its link stops working.
    pub async fn revoke_invitation<'a>(
        &self,
        who: impl Into<Inviter<'a>>,
        id: InvitationId,
        meta: &RequestMeta,
    ) -> Result<(), TeamError> {
        let who = who.into();
        let now = self.0.now();
        let detail = json!({ "invitation_id": id });
        let effects = Effects::event(who.event(EventKind::InvitationRevoked, meta, now, detail));
        if self
            .0
            .store
            .revoke_invitation(who.account().id, id, now, &effects)
            .await?
        {
            Ok(())
        } else {
            Err(TeamError::NotFound)
        }
    }
}

/// Following an invitation link: for the invitee, who has no session yet. Cheap to clone.
#[derive(Clone)]
pub struct Invitations(pub(crate) Arc<Ctx>);

impl Invitations {
    /// The invitation behind a link, if it can still be accepted.
    pub async fn find(&self, token: &str) -> Result<OpenInvitation, InvitationError> {
        let ctx = &self.0;
        let invitation = ctx
            .store
            .find_invitation(&Token::from_client(token.trim()).hash())
            .await?
            .ok_or(InvitationError::NotFound)?;
        match invitation.status_at(ctx.now()) {
            InvitationStatus::Pending => {}
            InvitationStatus::Accepted => return Err(InvitationError::Used),
            InvitationStatus::Expired => return Err(InvitationError::Expired),
            InvitationStatus::Revoked => return Err(InvitationError::Revoked),
        }
        let account = ctx
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
    pub async fn accept(
        &self,
        token: &str,
        password: &SecretString,
        name: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<Registered, InvitationError> {
        let ctx = &self.0;
        let OpenInvitation {
            invitation,
            account,
        } = self.find(token).await?;
        if invitation.auth_source == AuthSource::Sso {
            return Err(InvitationError::UseSso);
        }
        let name = match name.map(str::trim).filter(|n| !n.is_empty()) {
            Some(name) => validate::name("name", name)?,
            None => invitation.name.clone(),
        };
        let context = PasswordContext {
            email: invitation.email.as_str(),
            name: &name,
            team: &account.name,
        };
        validate::new_password(&ctx.policy, password.expose_secret(), &context)?;
        let hash = ctx.passwords.hash(password).await?;
        let now = ctx.now();
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
        match ctx
            .store
            .accept_invitation(invitation.id, now, &user, &hash, &effects)
            .await
        {
            Ok(true) => Ok(Registered::new(user, account, SignInMethod::Invitation)),
            // Lost a race with another use of the link, or it lapsed while hashing.
            Ok(false) => Err(self
                .find(token)
                .await
                .err()
                .unwrap_or(InvitationError::Used)),
            Err(StoreError::Conflict(_)) => Err(InvitationError::EmailTaken),
            Err(e) => Err(e.into()),
        }
    }
}

impl Ctx {
    /// For an SSO invitation: the team must have SSO, for the invitee's email domain.
    async fn sso_domain_of(
        &self,
        account: crate::model::AccountId,
        email: &Email,
    ) -> Result<(), TeamError> {
        let connection = self.store.sso_connection(account).await?;
        let domain = email.normalized().rsplit_once('@').map(|(_, d)| d);
        match connection {
            None => Err(FieldError::new("sso", "the team has no single sign-on set up").into()),
            Some(c) if !domain.is_some_and(|d| c.email_domains.iter().any(|a| a == d)) => {
                Err(FieldError::new(
                    "sso",
                    "this email's domain is not one the team signs in with through SSO",
                )
                .into())
            }
            Some(_) => Ok(()),
        }
    }

    /// Counts an invitation email against the account's and the recipient's daily windows;
    /// the keys counted, for [`Ctx::uncount_invitation`].
    async fn count_invitation(
        &self,
        invitation: &Invitation,
        now: crate::Timestamp,
    ) -> Result<[(Scope, String); 2], TeamError> {
        let (per_account, per_recipient) = self.policy.invitation_windows();
        let sent = (Scope::InvitationsSent, invitation.account_id.to_string());
        let received = (
            Scope::InvitationsReceived,
            invitation.email.normalized().to_owned(),
        );
        if let Err(RetryAt(at)) = self.window_admit(sent.0, &sent.1, per_account, now).await? {
            return Err(TeamError::TooManyInvitations {
                wait_secs: now.secs_until(at),
            });
        }
        let admitted = self
            .window_admit(received.0, &received.1, per_recipient, now)
            .await?;
        if let Err(RetryAt(at)) = admitted {
            self.window_refund(sent.0, &sent.1).await?;
            return Err(TeamError::TooManyInvitations {
                wait_secs: now.secs_until(at),
            });
        }
        Ok([sent, received])
    }

    async fn uncount_invitation(&self, counted: &[(Scope, String); 2]) -> Result<(), Internal> {
        for (scope, key) in counted {
            self.window_refund(*scope, key).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invitations_never_make_an_owner() {
        assert_eq!(invited_role("admin"), Ok(Role::Admin));
        assert_eq!(invited_role(" member "), Ok(Role::Member));
        assert!(invited_role("owner").is_err());
        assert!(invited_role("root").is_err());
        assert!(invited_role("").is_err());
    }
}
