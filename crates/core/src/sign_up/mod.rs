//! Sign-up (SPEC §8, changing §4): who may create a team, and the emailed link that proves the
//! email is theirs. The mode is the deployment's (`TESSERA_SIGNUP`, [`SignupMode`]):
//!
//! - `verify` (default): a request answers "confirmation sent" whatever the email. A new email
//!   gets a link `/signup/confirm/{token}` (256-bit, stored as SHA-256, single use, valid
//!   `signup_lifetime_secs`, 24 h); an email that already has a user gets an email saying so,
//!   offering sign-in and password reset, and nothing is stored. Both paths hash the password
//!   (argon2id), so neither the answer nor its cost tells them apart. A pending sign-up
//!   reserves nothing: no user, no account, so an invitation of the same email still works.
//!   Following the link creates the team and its owner in one transaction, once.
//! - `open`: the team is created at once (SPEC §4; local development and tests).
//! - `closed`: requests are refused; the operator creates teams ([`crate::operator`]): a
//!   pending sign-up without a password, whose link (valid as long as an invitation) lets the
//!   owner choose it.
//!
//! Every request with valid fields counts against its client address before any password is
//! hashed: `signup_max_per_ip` (10) an hour ([`crate::throttle::Scope::SignupIp`]).
//!
//! ## A link's states
//! `pending` → `used` (followed once: the team exists) or `expired` (its time passed). A used
//! or expired link is refused with its reason; an unknown one is not found.

mod port;

pub use port::{PendingSignup, SignupStore};

use crate::Timestamp;
use crate::crypto::Token;
use crate::ctx::{Ctx, Internal, internal_from};
use crate::email::Email;
use crate::mail::{Message, OutgoingEmail};
use crate::model::{
    Account, AccountId, AuthSource, EventKind, NewEvent, RequestMeta, Role, SignupId,
    TrustedDevices, User, UserId,
};
use crate::sessions::SignInMethod;
use crate::sign_in::{Registered, SignIn, SignupError, SignupInput};
use crate::store::{Effects, StoreError, Unique};
use crate::throttle::{RetryAt, Scope};
use crate::validate::{self, FieldError, PasswordContext};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;

/// Who may create a team (`TESSERA_SIGNUP`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignupMode {
    /// Anyone, after following the link emailed to them.
    #[default]
    Verify,
    /// Anyone, at once (local development and tests).
    Open,
    /// Only the operator (`tessera admin create-account`).
    Closed,
}

impl std::str::FromStr for SignupMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "verify" => Ok(Self::Verify),
            "open" => Ok(Self::Open),
            "closed" => Ok(Self::Closed),
            other => Err(format!("must be verify, open or closed, not {other:?}")),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SignUpError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// Only in `open` mode: `verify` never tells.
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("sign-up is closed on this server; ask its operator for a team")]
    Closed,
    #[error("too many sign-ups from this address")]
    TooManyAttempts { retry_at: Timestamp },
    #[error(transparent)]
    Internal(#[from] Internal),
}

#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("this sign-up link is not valid")]
    NotFound,
    #[error("this sign-up link was already used")]
    Used,
    #[error("this sign-up link has expired; sign up again")]
    Expired,
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error(transparent)]
    Internal(#[from] Internal),
}

internal_from!(SignUpError, ConfirmError);

impl From<SignupError> for SignUpError {
    fn from(e: SignupError) -> Self {
        match e {
            SignupError::Invalid(e) => Self::Invalid(e),
            SignupError::EmailTaken => Self::EmailTaken,
            SignupError::Internal(e) => Self::Internal(e),
        }
    }
}

/// What a sign-up request led to.
pub enum Requested {
    /// `open`: the team and its owner exist.
    Created(Registered),
    /// `verify`: an email went out (which one is not told).
    ConfirmationSent,
}

/// A link's sign-up, as its page shows it.
pub struct SignupLink {
    pub account_name: String,
    pub name: String,
    pub email: Email,
    /// A team the operator created: the owner chooses a password at the link.
    pub needs_password: bool,
}

/// The checked fields of a request.
struct Fields {
    account_name: String,
    name: String,
    email: Email,
}

fn checked(ctx: &Ctx, input: &SignupInput) -> Result<Fields, FieldError> {
    let account_name = validate::name("account_name", &input.account_name)?;
    let name = validate::name("name", &input.name)?;
    let email = Email::parse(&input.email).map_err(|e| FieldError::new("email", e.0))?;
    let context = PasswordContext {
        email: email.as_str(),
        name: &name,
        team: &account_name,
    };
    validate::new_password(&ctx.policy, input.password.expose_secret(), &context)?;
    Ok(Fields {
        account_name,
        name,
        email,
    })
}

/// Whether a link can still be followed at `now`.
fn followable(signup: &PendingSignup, now: Timestamp) -> Result<(), ConfirmError> {
    if signup.used_at.is_some() {
        Err(ConfirmError::Used)
    } else if signup.expires_at <= now {
        Err(ConfirmError::Expired)
    } else {
        Ok(())
    }
}

/// Sign-up requests and their links. Cheap to clone.
#[derive(Clone)]
pub struct SignUp(pub(crate) Arc<Ctx>);

impl SignUp {
    pub fn mode(&self) -> SignupMode {
        self.0.signup
    }

    /// A sign-up request, as the mode has it: a team at once (`open`), an email (`verify`),
    /// or a refusal (`closed`).
    pub async fn request(
        &self,
        input: SignupInput,
        meta: &RequestMeta,
    ) -> Result<Requested, SignUpError> {
        let ctx = &self.0;
        if ctx.signup == SignupMode::Closed {
            return Err(SignUpError::Closed);
        }
        let fields = checked(ctx, &input)?;
        let window = ctx.policy.signup_window();
        if let Err(RetryAt(retry_at)) = ctx
            .address_admit(Scope::SignupIp, meta, window, ctx.now())
            .await?
        {
            return Err(SignUpError::TooManyAttempts { retry_at });
        }
        if ctx.signup == SignupMode::Open {
            let registered = SignIn(ctx.clone()).signup(input, meta).await?;
            return Ok(Requested::Created(registered));
        }
        // Hashed whether or not the email is taken: the same work either way.
        let hash = ctx.passwords.hash(&input.password).await?;
        let existing = ctx
            .store
            .find_user_by_email(fields.email.normalized())
            .await?;
        let now = ctx.now();
        match existing {
            Some(found) => {
                let user = found.user;
                let event = NewEvent::for_user(&user, EventKind::SignupRequested, meta, now)
                    .with_detail(json!({ "existing_user": true }));
                let effects = ctx
                    .notify(event, &user, meta, Message::SignupExisting)
                    .await?;
                ctx.store.record(&effects).await?;
            }
            None => {
                let lifetime = ctx.policy.signup_lifetime_secs;
                ctx.store_signup_link(fields, Some(hash), lifetime, meta, now, |token, at| {
                    Message::SignupConfirm {
                        token,
                        expires_at: at,
                    }
                })
                .await?;
            }
        }
        Ok(Requested::ConfirmationSent)
    }

    /// The sign-up behind a link, if it can still be followed.
    pub async fn link(&self, token: &str) -> Result<SignupLink, ConfirmError> {
        let signup = self.open(token).await?;
        Ok(SignupLink {
            needs_password: signup.password_hash.is_none(),
            account_name: signup.account_name,
            name: signup.name,
            email: signup.email,
        })
    }

    async fn open(&self, token: &str) -> Result<PendingSignup, ConfirmError> {
        let ctx = &self.0;
        let signup = ctx
            .store
            .find_signup(&Token::from_client(token.trim()).hash())
            .await?
            .ok_or(ConfirmError::NotFound)?;
        followable(&signup, ctx.now())?;
        Ok(signup)
    }

    /// Follows a link: creates the team and its owner, once, however many requests race.
    /// `password` is what the owner of a team the operator created chooses (others chose
    /// theirs at sign-up, and it is ignored).
    pub async fn confirm(
        &self,
        token: &str,
        password: Option<&SecretString>,
        meta: &RequestMeta,
    ) -> Result<Registered, ConfirmError> {
        let ctx = &self.0;
        let signup = self.open(token).await?;
        let (hash, method, via) = match (&signup.password_hash, password) {
            (Some(hash), _) => (hash.clone(), SignInMethod::Password, "email_link"),
            (None, Some(password)) if !password.expose_secret().is_empty() => {
                let context = PasswordContext {
                    email: signup.email.as_str(),
                    name: &signup.name,
                    team: &signup.account_name,
                };
                validate::new_password(&ctx.policy, password.expose_secret(), &context)?;
                let hash = ctx.passwords.hash(password).await?;
                (hash, SignInMethod::Invitation, "operator")
            }
            (None, _) => return Err(FieldError::new("password", "password is required").into()),
        };
        let now = ctx.now();
        let account = Account {
            id: AccountId::new(),
            name: signup.account_name.clone(),
            two_factor_required: false,
            grace_period_until: None,
            trusted_devices: TrustedDevices::Allowed,
            sso_two_factor: crate::model::SsoTwoFactor::Exempt,
            created_at: now,
        };
        let owner = User {
            id: UserId::new(),
            account_id: account.id,
            email: signup.email.clone(),
            name: signup.name.clone(),
            role: Role::Owner,
            auth_source: AuthSource::Password,
            created_at: now,
        };
        let event = NewEvent::for_user(&owner, EventKind::Signup, meta, now)
            .with_detail(json!({ "via": via }));
        match ctx
            .store
            .confirm_signup(
                signup.id,
                now,
                &account,
                &owner,
                &hash,
                &Effects::event(event),
            )
            .await
        {
            Ok(true) => Ok(Registered::new(owner, account, method)),
            // Lost a race with another use of the link, or it lapsed meanwhile.
            Ok(false) => Err(self.open(token).await.err().unwrap_or(ConfirmError::Used)),
            Err(StoreError::Conflict(Unique::Email)) => Err(ConfirmError::EmailTaken),
            Err(e) => Err(e.into()),
        }
    }
}

/// What the operator's `create-account` may be refused for.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TeamLinkError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("a user with this email already exists")]
    EmailTaken,
    #[error(transparent)]
    Internal(#[from] Internal),
}

internal_from!(TeamLinkError);

impl Ctx {
    /// A team for `owner_email` whose owner chooses a password at the emailed link (the
    /// operator's `create-account`; valid as long as an invitation). Refused if the email
    /// already has a user.
    pub(crate) async fn team_link(
        &self,
        account_name: &str,
        owner_email: &str,
        owner_name: &str,
        meta: &RequestMeta,
    ) -> Result<Timestamp, TeamLinkError> {
        let fields = Fields {
            account_name: validate::name("name", account_name)?,
            name: validate::name("owner_name", owner_name)?,
            email: Email::parse(owner_email).map_err(|e| FieldError::new("owner_email", e.0))?,
        };
        if self
            .store
            .find_user_by_email(fields.email.normalized())
            .await?
            .is_some()
        {
            return Err(TeamLinkError::EmailTaken);
        }
        let lifetime = self.policy.invitation_lifetime_secs;
        let now = self.now();
        let message = |token, expires_at| Message::TeamCreated { token, expires_at };
        Ok(self
            .store_signup_link(fields, None, lifetime, meta, now, message)
            .await?)
    }

    /// Stores a pending sign-up with its audit event and the email holding its link: when
    /// the link expires.
    async fn store_signup_link(
        &self,
        fields: Fields,
        password_hash: Option<String>,
        lifetime_secs: i64,
        meta: &RequestMeta,
        now: Timestamp,
        message: impl FnOnce(String, Timestamp) -> Message,
    ) -> Result<Timestamp, Internal> {
        let signup = PendingSignup {
            id: SignupId::new(),
            account_name: fields.account_name,
            name: fields.name,
            email: fields.email,
            password_hash,
            created_at: now,
            expires_at: now.plus_secs(lifetime_secs),
            used_at: None,
        };
        let token = Token::generate();
        let email = OutgoingEmail {
            to: signup.email.as_str().to_owned(),
            to_name: signup.name.clone(),
            account_name: Some(signup.account_name.clone()),
            at: now,
            ip: meta.ip.clone(),
            user_agent: meta.user_agent.clone(),
            message: message(token.expose().to_owned(), signup.expires_at),
        };
        let event = NewEvent {
            account_id: None,
            user_id: None,
            email: Some(signup.email.normalized().to_owned()),
            kind: EventKind::SignupRequested,
            meta: meta.clone(),
            detail: json!({ "signup_id": signup.id }),
            at: now,
        };
        let effects = Effects::event(event).and_email(self.mailer.seal(&email, now));
        self.store
            .create_signup(&signup, &token.hash(), &effects)
            .await?;
        Ok(signup.expires_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_from_their_names_only() {
        assert_eq!("verify".parse(), Ok(SignupMode::Verify));
        assert_eq!(" open ".parse(), Ok(SignupMode::Open));
        assert_eq!("closed".parse(), Ok(SignupMode::Closed));
        assert!("Open".parse::<SignupMode>().is_err());
        assert!("".parse::<SignupMode>().is_err());
        assert_eq!(SignupMode::default(), SignupMode::Verify);
    }

    #[test]
    fn a_link_is_followed_while_unused_and_unexpired() {
        let at = Timestamp::from_unix(1_000_000);
        let signup = PendingSignup {
            id: SignupId::new(),
            account_name: "Acme".into(),
            name: "Ada".into(),
            email: Email::parse("ada@example.com").unwrap(),
            password_hash: None,
            created_at: at,
            expires_at: at.plus_secs(86_400),
            used_at: None,
        };
        assert!(followable(&signup, at.plus_secs(86_399)).is_ok());
        assert!(matches!(
            followable(&signup, at.plus_secs(86_400)),
            Err(ConfirmError::Expired)
        ));
        let used = PendingSignup {
            used_at: Some(at),
            ..signup
        };
        assert!(matches!(
            followable(&used, at.plus_secs(10)),
            Err(ConfirmError::Used)
        ));
    }
}
