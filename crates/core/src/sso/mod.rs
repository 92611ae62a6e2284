//! Single sign-on through the team's identity provider (SPEC §12), with OpenID Connect's
//! authorization code flow, PKCE (S256), `state` and `nonce`.
//!
//! ## A sign-in
//! 1. [`Sso::start`]: the email's domain selects the team's connection; a pending sign-in is
//!    stored (the `state` only as its SHA-256; nonce and PKCE verifier sealed under the
//!    master key), valid [`PENDING_LIFETIME_SECS`], and the person is sent to the provider.
//! 2. [`Sso::finish`]: the pending sign-in is taken by its `state` in one statement (single
//!    use: a replayed or forged callback finds nothing), the code is exchanged and the ID
//!    token checked by the provider adapter (signature, `iss`, `aud`, `exp`, `nonce`), and
//!    `email_verified` is required.
//! 3. The user is found by `(issuer, sub)`; on first use, by the verified email in one of the
//!    team's domains: a user of the team is linked (keeping their password and auth source),
//!    or, with `jit_provisioning`, a member is created with auth source `sso` and no password.
//! 4. What follows is what follows a password: a user with 2FA on answers the second step;
//!    otherwise a session opens, restricted to setting up 2FA when the team's requirement
//!    applies ([`crate::team::enforcement`]: SSO users are exempt only in `exempt` mode).
//!    The provider having authenticated the person, no emailed device code is asked.
//!
//! ## 2FA and SSO
//! `exempt` (default): SSO users are outside the team's 2FA requirement. `disable_sso`:
//! while the team requires 2FA, SSO sign-in is refused (at start and at the callback); when
//! the requirement turns on, each SSO user is emailed a link to choose a password
//! ([`crate::team::Team::set_two_factor_policy`]).

mod port;
mod settings;

pub use port::{
    AuthorizationRequest, IdentityProvider, PendingSsoLogin, ProviderClient, ProviderError,
    SsoConnection, SsoIdentity, SsoStore, VerifiedIdentity,
};
pub use settings::{SsoSettings, SsoSettingsInput};

use crate::Timestamp;
use crate::crypto::Token;
use crate::ctx::{Ctx, Internal, internal_from};
use crate::email::Email;
use crate::model::{
    Account, AuthSource, EventKind, NewEvent, RequestMeta, Role, SsoTwoFactor, User, UserId,
};
use crate::sessions::SignInMethod;
use crate::sign_in::LoginOutcome;
use crate::store::{Effects, StoreError, Unique};
use crate::throttle::RetryAt;
use crate::validate::FieldError;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use std::sync::Arc;

/// How long a person has to come back from the provider (seconds).
pub const PENDING_LIFETIME_SECS: i64 = 600;

#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("single sign-on is not set up for this email's domain; sign in with your password")]
    NotConfigured,
    /// Too many sign-ins started from this address without finishing (the per-IP window of
    /// password sign-in, SPEC §3).
    #[error("too many sign-in attempts from your address; try again later")]
    TooManyAttempts { wait_secs: i64 },
    #[error(
        "your team requires two-factor authentication, so single sign-on is off: sign in with \
         your password (check your email for a link to choose one) and set up 2FA"
    )]
    DisabledByTwoFactor,
    #[error("this sign-in link is not valid or was already used; start signing in with SSO again")]
    InvalidState,
    #[error("this sign-in took too long; start signing in with SSO again")]
    Expired,
    #[error("your identity provider cannot be reached right now ({0}); try again later")]
    ProviderUnreachable(String),
    #[error("your identity provider refused the sign-in: {0}")]
    ProviderRejected(String),
    #[error("the identity provider's answer could not be trusted: {0}")]
    InvalidToken(String),
    #[error("your identity provider has not verified your email address, so Tessera cannot use it")]
    EmailNotVerified,
    #[error("your email's domain is not one this team signs in with through SSO")]
    DomainNotAllowed,
    #[error(
        "there is no user with this email in the team, and the team does not create users at \
         their first sign-in: ask an admin to invite you"
    )]
    NoUser,
    #[error(transparent)]
    Internal(#[from] Internal),
}

internal_from!(SsoError);

impl SsoError {
    /// A stable name for the API and the audit log.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "validation_error",
            Self::NotConfigured => "sso_not_configured",
            Self::TooManyAttempts { .. } => "too_many_attempts",
            Self::DisabledByTwoFactor => "sso_disabled",
            Self::InvalidState => "sso_invalid_state",
            Self::Expired => "sso_expired",
            Self::ProviderUnreachable(_) => "sso_provider_unreachable",
            Self::ProviderRejected(_) => "sso_provider_error",
            Self::InvalidToken(_) => "sso_invalid_token",
            Self::EmailNotVerified => "sso_email_unverified",
            Self::DomainNotAllowed => "sso_domain_not_allowed",
            Self::NoUser => "sso_no_user",
            Self::Internal(_) => "internal_error",
        }
    }
}

impl From<ProviderError> for SsoError {
    fn from(e: ProviderError) -> Self {
        match e {
            ProviderError::Unreachable(why) => Self::ProviderUnreachable(why),
            ProviderError::Rejected(why) => Self::ProviderRejected(why),
            ProviderError::InvalidToken(why) => Self::InvalidToken(why),
        }
    }
}

/// A sign-in sent to the provider: the browser goes to `url`; a page keeps `state` in a
/// cookie until the callback.
pub struct Started {
    pub url: String,
    pub state: Token,
}

/// What came back to `/login/sso/callback`.
pub struct Callback<'a> {
    pub state: &'a str,
    pub code: Option<&'a str>,
    /// The provider's `error` (and `error_description`), when it did not sign the person in.
    pub error: Option<&'a str>,
    /// The state a page's browser kept in its cookie.
    pub browser_state: Option<&'a str>,
}

/// Single sign-on. Cheap to clone.
#[derive(Clone)]
pub struct Sso(pub(crate) Arc<Ctx>);

/// The nonce and PKCE verifier of a pending sign-in, as sealed.
#[derive(serde::Serialize, serde::Deserialize)]
struct Secrets {
    nonce: String,
    verifier: String,
}

impl Sso {
    /// Starts a sign-in for `email`: answers the provider's URL to send the person to.
    /// `browser_bound` for a page (the state then must come back in its cookie).
    pub async fn start(
        &self,
        email: &str,
        browser_bound: bool,
        meta: &RequestMeta,
    ) -> Result<Started, SsoError> {
        let ctx = &self.0;
        let email = Email::parse(email).map_err(|e| FieldError::new("email", e.0))?;
        // Each start stores a pending sign-in and calls the provider: counted against the
        // address like a failed sign-in, and given back when the sign-in finishes.
        let now = ctx.now();
        if let Err(RetryAt(retry_at)) = ctx.ip_admit(meta, now).await? {
            return Err(SsoError::TooManyAttempts {
                wait_secs: now.secs_until(retry_at).max(1),
            });
        }
        let domain = email
            .normalized()
            .rsplit_once('@')
            .map(|(_, d)| d.to_owned())
            .unwrap_or_default();
        let (connection, account) = ctx
            .store
            .sso_connection_for_domain(&domain)
            .await?
            .ok_or(SsoError::NotConfigured)?;
        refuse_while_required(&account)?;
        let secret = ctx.client_secret(&connection)?;
        let state = Token::generate();
        let client = ProviderClient {
            issuer: &connection.issuer,
            client_id: &connection.client_id,
            client_secret: &secret,
        };
        let request = ctx
            .identity_provider
            .authorization(&client, state.expose())
            .await?;
        let id = uuid::Uuid::now_v7().to_string();
        let secrets = serde_json::to_vec(&Secrets {
            nonce: request.nonce.expose_secret().to_owned(),
            verifier: request.pkce_verifier.expose_secret().to_owned(),
        })
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let pending = PendingSsoLogin {
            secrets_sealed: ctx.sso_sealer.seal(&secrets, id.as_bytes()),
            id,
            state: state.hash(),
            account_id: account.id,
            issuer: connection.issuer.clone(),
            browser_bound,
            created_at: now,
            expires_at: now.plus_secs(PENDING_LIFETIME_SECS),
        };
        ctx.store.create_sso_login(&pending).await?;
        tracing::debug!(account = %account.id, "SSO sign-in sent to the provider");
        Ok(Started {
            url: request.url,
            state,
        })
    }

    /// Finishes a sign-in that came back from the provider: a session, or the second step.
    pub async fn finish(
        &self,
        callback: Callback<'_>,
        meta: &RequestMeta,
    ) -> Result<LoginOutcome, SsoError> {
        let ctx = &self.0;
        let pending = ctx
            .store
            .take_sso_login(&Token::from_client(callback.state).hash())
            .await?
            .ok_or(SsoError::InvalidState)?;
        let now = ctx.now();
        let cookie_matches = callback.browser_state.is_some_and(|kept| {
            crate::crypto::secure_eq(kept.as_bytes(), callback.state.as_bytes())
        });
        if pending.browser_bound && !cookie_matches {
            return Err(SsoError::InvalidState);
        }
        if now >= pending.expires_at {
            return Err(SsoError::Expired);
        }
        let account = ctx
            .store
            .get_account(pending.account_id)
            .await?
            .ok_or(SsoError::NotConfigured)?;
        match self
            .complete(&pending, &account, &callback, meta, now)
            .await
        {
            Ok(outcome) => {
                ctx.ip_refund(meta).await?;
                Ok(outcome)
            }
            Err(error) => {
                if !matches!(error, SsoError::Internal(_)) {
                    self.record_failure(&account, &error, meta, now).await?;
                }
                Err(error)
            }
        }
    }

    async fn complete(
        &self,
        pending: &PendingSsoLogin,
        account: &Account,
        callback: &Callback<'_>,
        meta: &RequestMeta,
        now: Timestamp,
    ) -> Result<LoginOutcome, SsoError> {
        let ctx = &self.0;
        if let Some(error) = callback.error {
            return Err(SsoError::ProviderRejected(
                error.chars().take(200).collect(),
            ));
        }
        let code = callback
            .code
            .filter(|c| !c.is_empty())
            .ok_or(SsoError::InvalidState)?;
        let connection = ctx
            .store
            .sso_connection(account.id)
            .await?
            .filter(|c| c.issuer == pending.issuer)
            .ok_or(SsoError::NotConfigured)?;
        refuse_while_required(account)?;
        let secrets: Secrets = serde_json::from_slice(
            &ctx.sso_sealer
                .open(&pending.secrets_sealed, pending.id.as_bytes())
                .map_err(Internal::from)?,
        )
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let secret = ctx.client_secret(&connection)?;
        let client = ProviderClient {
            issuer: &connection.issuer,
            client_id: &connection.client_id,
            client_secret: &secret,
        };
        let identity = ctx
            .identity_provider
            .exchange(
                &client,
                code,
                &SecretString::from(secrets.verifier),
                &SecretString::from(secrets.nonce),
            )
            .await?;
        let user = self
            .user_for(&connection, account, &identity, meta, now)
            .await?;
        ctx.after_sso(user, account.clone(), meta, now).await
    }

    /// The user `identity` is, linking or creating them on first use.
    async fn user_for(
        &self,
        connection: &SsoConnection,
        account: &Account,
        identity: &VerifiedIdentity,
        meta: &RequestMeta,
        now: Timestamp,
    ) -> Result<User, SsoError> {
        let ctx = &self.0;
        if let Some(user) = ctx
            .store
            .find_sso_identity(&connection.issuer, &identity.subject)
            .await?
        {
            return if user.account_id == account.id {
                Ok(user)
            } else {
                Err(SsoError::NoUser)
            };
        }
        // First use: only a verified address of one of the team's domains.
        let email = identity
            .email
            .as_deref()
            .filter(|_| identity.email_verified)
            .ok_or(SsoError::EmailNotVerified)?;
        let email = Email::parse(email).map_err(|_| SsoError::EmailNotVerified)?;
        let domain = email.normalized().rsplit_once('@').map(|(_, d)| d);
        if !domain.is_some_and(|d| connection.email_domains.iter().any(|a| a == d)) {
            return Err(SsoError::DomainNotAllowed);
        }
        let link = |user_id: UserId| SsoIdentity {
            issuer: connection.issuer.clone(),
            subject: identity.subject.clone(),
            user_id,
            created_at: now,
        };
        let detail = json!({ "issuer": connection.issuer });
        match ctx.store.find_user_by_email(email.normalized()).await? {
            Some(found) if found.user.account_id == account.id => {
                let user = found.user;
                let event =
                    NewEvent::for_user(&user, EventKind::SsoLinked, meta, now).with_detail(detail);
                if ctx
                    .store
                    .link_sso_identity(&link(user.id), &Effects::event(event))
                    .await?
                {
                    return Ok(user);
                }
                // A concurrent first sign-in linked it: the link decides.
                self.linked_user(connection, identity, account).await
            }
            Some(_) => Err(SsoError::NoUser),
            None => {
                let invited = ctx
                    .store
                    .open_invitations(account.id, now)
                    .await?
                    .into_iter()
                    .find(|i| i.auth_source == AuthSource::Sso && i.email == email);
                if invited.is_none() && !connection.jit_provisioning {
                    return Err(SsoError::NoUser);
                }
                let (name, role) = match &invited {
                    Some(invitation) => (invitation.name.clone(), invitation.role),
                    None => (
                        identity
                            .name
                            .as_deref()
                            .and_then(|n| crate::validate::name("name", n).ok())
                            .unwrap_or_else(|| {
                                email.as_str().split('@').next().unwrap_or("").to_owned()
                            }),
                        Role::Member,
                    ),
                };
                let user = User {
                    id: UserId::new(),
                    account_id: account.id,
                    email,
                    name,
                    role,
                    auth_source: AuthSource::Sso,
                    created_at: now,
                };
                let created = match invited {
                    Some(invitation) => {
                        let event =
                            NewEvent::for_user(&user, EventKind::InvitationAccepted, meta, now)
                                .with_detail(json!({
                                    "invitation_id": invitation.id,
                                    "role": user.role,
                                    "issuer": connection.issuer,
                                }));
                        ctx.store
                            .accept_sso_invitation(
                                invitation.id,
                                now,
                                &user,
                                &link(user.id),
                                &Effects::event(event),
                            )
                            .await
                            .map(|accepted| accepted.then_some(()))
                    }
                    None => {
                        let event = NewEvent::for_user(&user, EventKind::SsoProvisioned, meta, now)
                            .with_detail(detail);
                        ctx.store
                            .provision_sso_user(&user, &link(user.id), &Effects::event(event))
                            .await
                            .map(Some)
                    }
                };
                match created {
                    Ok(Some(())) => Ok(user),
                    // The invitation was accepted or withdrawn meanwhile.
                    Ok(None) => self.linked_user(connection, identity, account).await,
                    Err(StoreError::Conflict(Unique::Email | Unique::SsoIdentity)) => {
                        self.linked_user(connection, identity, account).await
                    }
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    /// After losing a race to link: the user the winner linked, if it is of this team.
    async fn linked_user(
        &self,
        connection: &SsoConnection,
        identity: &VerifiedIdentity,
        account: &Account,
    ) -> Result<User, SsoError> {
        self.0
            .store
            .find_sso_identity(&connection.issuer, &identity.subject)
            .await?
            .filter(|u| u.account_id == account.id)
            .ok_or(SsoError::NoUser)
    }

    async fn record_failure(
        &self,
        account: &Account,
        error: &SsoError,
        meta: &RequestMeta,
        now: Timestamp,
    ) -> Result<(), Internal> {
        let event = NewEvent {
            account_id: Some(account.id),
            user_id: None,
            email: None,
            kind: EventKind::SsoSignInFailed,
            meta: meta.clone(),
            detail: json!({ "reason": error.code() }),
            at: now,
        };
        self.0.store.record(&Effects::event(event)).await?;
        Ok(())
    }
}

/// `disable_sso` while the team requires 2FA: SSO is off.
fn refuse_while_required(account: &Account) -> Result<(), SsoError> {
    if account.two_factor_required && account.sso_two_factor == SsoTwoFactor::DisableSso {
        Err(SsoError::DisabledByTwoFactor)
    } else {
        Ok(())
    }
}

impl Ctx {
    fn client_secret(&self, connection: &SsoConnection) -> Result<SecretString, Internal> {
        let plain = self.sso_sealer.open(
            &connection.client_secret_sealed,
            connection.account_id.to_string().as_bytes(),
        )?;
        Ok(SecretString::from(
            String::from_utf8_lossy(&plain).into_owned(),
        ))
    }

    /// What follows a sign-in through the provider: as after a password, but without the
    /// emailed device code (the provider authenticated the person).
    async fn after_sso(
        &self,
        user: User,
        account: Account,
        meta: &RequestMeta,
        now: Timestamp,
    ) -> Result<LoginOutcome, SsoError> {
        if self.two_factor_on(user.id).await? {
            self.end_unfinished(Some(user.id), now).await?;
            let pending = self.open_challenge(&user, None, meta, now).await?;
            return Ok(LoginOutcome::SecondStep(pending));
        }
        let signed_in = self
            .open_session(user, account, SignInMethod::Sso, meta, now)
            .await?;
        Ok(LoginOutcome::SignedIn(Box::new(signed_in)))
    }
}
