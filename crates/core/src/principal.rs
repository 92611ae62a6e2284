//! Who is calling, as types: what a use case takes decides who may call it.
//!
//! - [`AnySession`]: a live session, restricted or not. Only [`crate::sessions::Sessions`]
//!   builds one (from a token), so holding one proves the caller signed in. It may read `/me`,
//!   set up 2FA, and sign out.
//! - [`FullSession`]: a session that may do everything its user may, built only by
//!   [`AnySession::full`], which refuses a session the account's 2FA policy restricts to
//!   setting up 2FA (SPEC §4). Decided at each request, not stored: a session opened before
//!   2FA became required is restricted from then on, and full again once the user turns 2FA
//!   on.
//! - [`Manager`]: the owner or an admin, in a full session; built only by [`Manager::new`].
//!   Only a manager reaches the team's use cases ([`crate::team`]).
//! - [`Managed`]: a user of the account whom the one acting (a recovery admin, or the creator
//!   of a key granted `users:write`) may act on ([`may_act_on`]); handed out only by
//!   [`crate::team::Team::managed`].
//! - [`Recent`]: any of the above whose session authenticated within the step-up window
//!   (SPEC §9, "sudo mode": 15 min, `TESSERA_REAUTH_MINUTES`), built only by
//!   [`crate::sessions::Sessions::recent`] against the clock (or by a use case that has just
//!   checked the password itself, for the old `{password}` bodies). Every sensitive action
//!   takes one, and restarts the window in its own transaction ([`Recent::restarted`]).
//! - [`RecoveryAdmin`]: a recent [`Manager`] who may use the powers that amount to account
//!   recovery (reset another user's 2FA, delete a user, invite an admin, change the team's
//!   2FA policy): by default only with 2FA on themselves (`TESSERA_ADMIN_REQUIRES_2FA`);
//!   built only by [`crate::team::Team::recovery_admin`].
//! - [`ApiKeyPrincipal`]: an API key (SPEC §11), built only by
//!   [`crate::api_keys::ApiKeys::authenticate`]; never a session, untouched by 2FA. It acts
//!   only through [`Granted`]: the key holding one [`Grant`], checked by
//!   [`crate::api_keys::ApiKeys::granted`]. A use case that a key may call takes
//!   `&impl Reads<G>`, which a [`Manager`] and a `Granted<G>` both are; a recovery power open
//!   to keys takes a [`crate::team::Acting<G>`]: a [`RecoveryAdmin`] or a `Granted<G>`. A key
//!   holds a recovery grant (`users:write`, `policy:write`) only while its creator, read with
//!   the key at each use, is a manager who passes the recovery admin's 2FA rule
//!   ([`crate::api_keys::grants::may_hold`]); it needs no step-up, having no session (its
//!   creation needed one).

use crate::Timestamp;
use crate::api_keys::{ApiKey, ApiKeyContext};
use crate::model::{Account, EventKind, NewEvent, RequestMeta, Role, Session, User};
use crate::store::{Effects, StepUp};
use crate::team::enforcement::{Enforcement, enforcement};

/// A live session with whom it belongs to, as the store reads it.
#[derive(Clone, Debug)]
pub struct SessionContext {
    pub session: Session,
    pub user: User,
    pub account: Account,
    /// Whether the user has 2FA on (any active second factor), as of this request.
    pub two_factor_enabled: bool,
}

impl SessionContext {
    /// Where the user stands against the account's 2FA policy at `now`.
    pub fn enforcement(&self, now: Timestamp) -> Enforcement {
        enforcement(
            &self.account,
            &self.user,
            self.session.method == Some(crate::sessions::SignInMethod::Sso),
            self.two_factor_enabled,
            now,
        )
    }

    /// Whether the session may, at `now`, do nothing but set up 2FA.
    pub fn setup_only(&self, now: Timestamp) -> bool {
        self.enforcement(now) == Enforcement::SetupRequired
    }
}

/// Why a principal was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forbidden {
    /// The session may only set up 2FA (SPEC §4).
    SetupRequired,
    /// A member, where only the owner and admins may act.
    NotAManager,
    /// One's own user, where the personal settings are the way.
    Yourself,
    /// The account owner, whom nobody deletes or resets.
    TheOwner,
    /// A sensitive action, and the session has not authenticated within the step-up window
    /// (SPEC §9).
    ReauthenticationRequired,
    /// A power that amounts to account recovery, and the manager has no 2FA themselves
    /// (`TESSERA_ADMIN_REQUIRES_2FA`).
    AdminTwoFactorRequired,
    /// Something only a person in a session may do, asked with an API key (SPEC §11).
    ApiKey,
}

impl Forbidden {
    /// A stable name for the audit log.
    pub fn code(self) -> &'static str {
        match self {
            Self::SetupRequired => "setup_required",
            Self::NotAManager => "not_a_manager",
            Self::Yourself => "yourself",
            Self::TheOwner => "the_owner",
            Self::ReauthenticationRequired => "reauthentication_required",
            Self::AdminTwoFactorRequired => "admin_two_factor_required",
            Self::ApiKey => "api_key",
        }
    }

    /// What the refused caller is told.
    pub fn reason(self) -> &'static str {
        match self {
            Self::SetupRequired => "set up two-factor authentication first",
            Self::NotAManager => "only the account owner and admins can do this",
            Self::Yourself => {
                "you cannot do this to your own user here; use your security settings"
            }
            Self::TheOwner => "nobody can delete the account owner or reset their 2FA",
            Self::ReauthenticationRequired => {
                "confirm it is you: enter your password (and a code, with 2FA on) again"
            }
            Self::AdminTwoFactorRequired => {
                "turn on two-factor authentication for your own user first: administrators \
                 need it to delete users, reset 2FA, invite admins or change the team's policy"
            }
            Self::ApiKey => {
                "an API key cannot do this: an owner or admin must, signed in (inviting an \
                 admin is one of the powers that amount to account recovery)"
            }
        }
    }
}

impl std::fmt::Display for Forbidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for Forbidden {}

/// A live session, restricted or not.
#[derive(Clone, Debug)]
pub struct AnySession {
    context: SessionContext,
    /// When the request was authenticated: every rule of this request uses this time.
    now: Timestamp,
}

impl AnySession {
    pub(crate) fn new(context: SessionContext, now: Timestamp) -> Self {
        Self { context, now }
    }

    /// The session, if the account's policy lets it do more than set up 2FA.
    pub fn full(self) -> Result<FullSession, Forbidden> {
        if self.context.setup_only(self.now) {
            Err(Forbidden::SetupRequired)
        } else {
            Ok(FullSession(self))
        }
    }

    pub fn user(&self) -> &User {
        &self.context.user
    }

    pub fn account(&self) -> &Account {
        &self.context.account
    }

    pub fn session(&self) -> &Session {
        &self.context.session
    }

    /// Where the user stands against the account's 2FA policy.
    pub fn enforcement(&self) -> Enforcement {
        self.context.enforcement(self.now)
    }

    /// Whether the session may only set up 2FA.
    pub fn setup_only(&self) -> bool {
        self.context.setup_only(self.now)
    }

    /// An event of this user's, at `now`.
    pub(crate) fn event(&self, kind: EventKind, meta: &RequestMeta, now: Timestamp) -> NewEvent {
        NewEvent::for_user(self.user(), kind, meta, now)
    }
}

/// A session that may do everything its user may.
#[derive(Clone, Debug)]
pub struct FullSession(AnySession);

impl std::ops::Deref for FullSession {
    type Target = AnySession;
    fn deref(&self) -> &AnySession {
        &self.0
    }
}

/// The owner or an admin of an account, signed in with a full session.
#[derive(Clone, Debug)]
pub struct Manager(FullSession);

impl std::ops::Deref for Manager {
    type Target = FullSession;
    fn deref(&self) -> &FullSession {
        &self.0
    }
}

impl Manager {
    /// `NotAManager` for a member.
    pub fn new(session: FullSession) -> Result<Self, Forbidden> {
        match session.user().role {
            Role::Owner | Role::Admin => Ok(Self(session)),
            Role::Member => Err(Forbidden::NotAManager),
        }
    }
}

/// What every principal is: a session, seen through it.
pub trait Principal {
    fn any(&self) -> &AnySession;
}

impl Principal for AnySession {
    fn any(&self) -> &AnySession {
        self
    }
}

impl Principal for FullSession {
    fn any(&self) -> &AnySession {
        &self.0
    }
}

impl Principal for Manager {
    fn any(&self) -> &AnySession {
        self.0.any()
    }
}

impl AnySession {
    /// Whether the session authenticated within the last `window_secs` (SPEC §9).
    pub fn authenticated_within(&self, window_secs: i64) -> bool {
        self.now < self.session().reauthenticated_at.plus_secs(window_secs)
    }

    /// Whether the user has 2FA on, as of this request.
    pub fn two_factor_enabled(&self) -> bool {
        self.context.two_factor_enabled
    }
}

/// A principal whose session authenticated within the step-up window: what a sensitive
/// action takes (SPEC §9). Reusable by any later sensitive action (security keys, API keys,
/// SSO settings, OIDC clients): take a `&Recent<…>` and add [`Recent::restarted`] to the
/// action's effects.
#[derive(Clone, Debug)]
pub struct Recent<P>(P);

impl<P: Principal> Recent<P> {
    /// Only after checking the window ([`crate::sessions::Sessions::recent`]) or the
    /// password itself.
    pub(crate) fn new(principal: P) -> Self {
        Self(principal)
    }

    /// The restart of this session's window at `now`, to be written with the action.
    pub(crate) fn restarted(&self, now: Timestamp) -> Effects {
        Effects {
            step_up: Some(StepUp {
                session: self.0.any().session().id,
                at: now,
            }),
            ..Effects::default()
        }
    }
}

impl<P> std::ops::Deref for Recent<P> {
    type Target = P;
    fn deref(&self) -> &P {
        &self.0
    }
}

/// A recent manager who may use the powers that amount to account recovery (F6).
#[derive(Clone, Debug)]
pub struct RecoveryAdmin(Recent<Manager>);

impl RecoveryAdmin {
    /// Only after checking the manager's own 2FA ([`crate::team::Team::recovery_admin`]).
    pub(crate) fn new(manager: Recent<Manager>) -> Self {
        Self(manager)
    }
}

impl std::ops::Deref for RecoveryAdmin {
    type Target = Recent<Manager>;
    fn deref(&self) -> &Recent<Manager> {
        &self.0
    }
}

/// An authenticated API key, with the grants it may use now (those it was given that its
/// creator could still give).
#[derive(Clone, Debug)]
pub struct ApiKeyPrincipal {
    context: ApiKeyContext,
    grants: Vec<String>,
}

impl ApiKeyPrincipal {
    /// Only after the key's hash, revocation, expiry and allowlist were checked.
    pub(crate) fn new(context: ApiKeyContext, grants: Vec<String>) -> Self {
        Self { context, grants }
    }

    pub fn key(&self) -> &ApiKey {
        &self.context.key
    }

    pub(crate) fn context(&self) -> &ApiKeyContext {
        &self.context
    }

    /// Who created the key: it acts within what they may do.
    pub fn creator(&self) -> &User {
        &self.context.creator
    }

    pub fn account(&self) -> &Account {
        &self.context.account
    }

    /// The grants the key may use now.
    pub fn grants(&self) -> &[String] {
        &self.grants
    }

    pub fn holds(&self, grant: &str) -> bool {
        self.grants.iter().any(|g| g == grant)
    }
}

/// One of Tessera's grants, as a type: what a use case open to keys requires.
pub trait Grant {
    const NAME: &'static str;
}

/// Tessera's grants that its account API checks.
pub mod grant {
    macro_rules! grants {
        ($($(#[$doc:meta])* $name:ident => $text:literal),+ $(,)?) => {$(
            $(#[$doc])*
            #[derive(Clone, Copy, Debug)]
            pub struct $name;
            impl super::Grant for $name {
                const NAME: &'static str = $text;
            }
        )+};
    }

    grants! {
        /// `GET /account`.
        AccountRead => "account:read",
        /// `GET /account/users`.
        UsersRead => "users:read",
        /// `GET /account/events`.
        EventsRead => "events:read",
        /// `POST`, `GET` and `DELETE /account/invitations` (members only: inviting an admin
        /// is a recovery power).
        InvitationsWrite => "invitations:write",
        /// `DELETE /account/users/{id}` and `POST /account/users/{id}/two-factor/reset`: a
        /// recovery power, within what the key's creator may do ([`super::may_act_on`]).
        UsersWrite => "users:write",
        /// `PUT /account/two-factor-policy` and `PUT /account/trusted-devices-policy` (not the
        /// SSO settings, which hold a secret: people only).
        PolicyWrite => "policy:write",
    }
}

/// An API key that holds grant `G`.
#[derive(Clone, Debug)]
pub struct Granted<G> {
    key: ApiKeyPrincipal,
    grant: std::marker::PhantomData<G>,
}

impl<G: Grant> Granted<G> {
    /// Only after checking [`ApiKeyPrincipal::holds`] (see
    /// [`crate::api_keys::ApiKeys::granted`]).
    pub(crate) fn new(key: ApiKeyPrincipal) -> Self {
        Self {
            key,
            grant: std::marker::PhantomData,
        }
    }
}

impl<G> std::ops::Deref for Granted<G> {
    type Target = ApiKeyPrincipal;
    fn deref(&self) -> &ApiKeyPrincipal {
        &self.key
    }
}

/// Who may read what grant `G` covers in an account: one of its managers, or a key holding
/// `G`.
pub trait Reads<G: Grant> {
    /// The account read.
    fn account_read(&self) -> &Account;
}

impl<G: Grant> Reads<G> for Manager {
    fn account_read(&self) -> &Account {
        self.any().account()
    }
}

impl<G: Grant> Reads<G> for Granted<G> {
    fn account_read(&self) -> &Account {
        self.key.account()
    }
}

/// Whether `actor` may delete `target` or reset their 2FA. Pure, so every pair is tested.
pub fn may_act_on(actor: &User, target: &User) -> Result<(), Forbidden> {
    if actor.id == target.id {
        Err(Forbidden::Yourself)
    } else if target.role == Role::Owner {
        Err(Forbidden::TheOwner)
    } else if matches!(actor.role, Role::Owner | Role::Admin) {
        Ok(())
    } else {
        Err(Forbidden::NotAManager)
    }
}

/// A user of the actor's account whom the actor may act on: a recovery admin, or the
/// creator of a key granted `users:write`.
pub struct Managed {
    user: User,
}

impl Managed {
    /// Only after [`may_act_on`] by the person acting (see [`crate::team::Team::managed`]).
    pub(crate) fn new(actor: &User, user: User) -> Result<Self, Forbidden> {
        may_act_on(actor, &user)?;
        Ok(Self { user })
    }

    pub fn user(&self) -> &User {
        &self.user
    }

    pub(crate) fn into_user(self) -> User {
        self.user
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::email::Email;
    use crate::model::{AccountId, AuthSource, UserId};

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
            assert_eq!(may_act_on(&me, &me), Err(Forbidden::Yourself), "{role}");
        }
    }

    fn session(role: Role, required: bool) -> AnySession {
        let user = user(role);
        let now = Timestamp::from_unix(1_800_000_000);
        let context = SessionContext {
            session: Session {
                id: crate::model::SessionId::new(),
                user_id: user.id,
                kind: crate::model::SessionKind::Full,
                created_at: now,
                expires_at: now.plus_secs(60),
                last_seen_at: now,
                reauthenticated_at: now,
                ip: None,
                user_agent: None,
                method: None,
            },
            account: Account {
                id: user.account_id,
                name: "Acme".into(),
                two_factor_required: required,
                grace_period_until: None,
                trusted_devices: crate::model::TrustedDevices::Allowed,
                sso_two_factor: crate::model::SsoTwoFactor::Exempt,
                created_at: now,
            },
            user,
            two_factor_enabled: false,
        };
        AnySession::new(context, now)
    }

    #[test]
    fn a_session_is_recent_for_the_window_after_its_last_authentication() {
        let mut s = session(Role::Owner, false);
        let at = s.now;
        assert!(s.authenticated_within(900));
        s.now = at.plus_secs(899);
        assert!(s.authenticated_within(900));
        s.now = at.plus_secs(900);
        assert!(!s.authenticated_within(900));
        s.context.session.reauthenticated_at = at.plus_secs(600);
        assert!(s.authenticated_within(900), "restarted");
    }

    #[test]
    fn a_restricted_session_is_never_full_nor_a_manager() {
        assert_eq!(
            session(Role::Owner, true).full().err(),
            Some(Forbidden::SetupRequired)
        );
        let full = session(Role::Owner, false).full().unwrap();
        assert!(Manager::new(full).is_ok());
        let member = session(Role::Member, false).full().unwrap();
        assert_eq!(Manager::new(member).err(), Some(Forbidden::NotAManager));
    }
}
