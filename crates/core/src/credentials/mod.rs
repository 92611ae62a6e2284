//! A password's life after sign-up (SPEC §8): changing it while signed in, and the emailed
//! link that resets a forgotten one.
//!
//! ## Changing (`POST /me/password`)
//! A full session within its step-up window (SPEC §9, a sensitive action) gives the current password, checked under the same per-email lock as
//! sign-in ([`Ctx::recheck_password`]: 10 wrong ones lock for 15 min), and a new one that
//! passes the policy with the user's email, name and team ([`validate::new_password`]).
//! One transaction sets it, ends every *other* session of the user, retires their reset
//! links, records `password_changed` and emails the user.
//!
//! ## Reset links (`POST /password/forgot`, `POST /password/reset`)
//! - Asking: always the same answer, whether or not the email is a user's. For a user, a
//!   256-bit token is made, stored only as its SHA-256, valid 1 h, and emailed as
//!   `{public_url}/password/reset/{token}`; event `password_reset_requested`. At most 3
//!   links per user in any hour (a rolling window over the times of their links, run under
//!   the user's row lock: [`crate::throttle::send_window`]); past it nothing is sent and the
//!   answer is still the same. At most 20 requests per client address an hour
//!   ([`Scope::ResetIp`], a fixed window from the first): past it, `TooManyRequests`,
//!   which says nothing about the email. Both kinds of address cost the same throttle write
//!   and user lookup; a user's costs one transaction more (storing the link), and no
//!   argon2 runs on either path.
//! - A link is `live` → `used` (once, by the transaction that resets the password, so two
//!   racing requests change it once; a change of password retires the live links too) or
//!   `expired` (1 h after it was made). A user deleted meanwhile takes their links along:
//!   the link is then unknown.
//! - Using it: the new password passes the policy with the user's context; one transaction
//!   marks the link used, sets the password, ends **every** session of the user, lifts the
//!   password lock of their email ([`Scope::Password`]), records `password_reset` and emails
//!   the user. It never touches the second factor or the recognized devices: the next
//!   sign-in still asks for the code (or the emailed device code).

mod port;

pub use port::{NewResetLink, PasswordStore, ResetLink};

use crate::Timestamp;
use crate::crypto::Token;
use crate::ctx::{Ctx, Internal, internal_from};
use crate::email::Email;
use crate::mail::{Message, PasswordChangedVia};
use crate::model::{EventKind, NewEvent, RequestMeta, User};
use crate::principal::{FullSession, Recent};
use crate::sign_in::RecheckError;
use crate::store::Effects;
use crate::throttle::send_window::admit_send;
use crate::throttle::{RetryAt, Scope, ip_key};
use crate::validate::{self, FieldError, PasswordContext};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ChangePasswordError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// The current password is wrong.
    #[error("invalid password")]
    InvalidCredentials,
    #[error("too many attempts")]
    TooManyAttempts { retry_at: Timestamp },
    /// The session ended while the password was being changed.
    #[error("not signed in")]
    SessionEnded,
    #[error(transparent)]
    Internal(#[from] Internal),
}

#[derive(Debug, thiserror::Error)]
pub enum ForgotError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// Too many requests from this address.
    #[error("too many requests")]
    TooManyRequests { retry_at: Timestamp },
    #[error(transparent)]
    Internal(#[from] Internal),
}

#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// No such link (mistyped, cut short, or its user was deleted).
    #[error("this reset link is not valid")]
    UnknownLink,
    #[error("this reset link was already used")]
    UsedLink,
    #[error("this reset link has expired")]
    ExpiredLink,
    #[error(transparent)]
    Internal(#[from] Internal),
}

internal_from!(ChangePasswordError, ForgotError, ResetError);

/// A policy refusal of a new password, under the field the request names it by.
fn new_password_field(e: FieldError) -> FieldError {
    FieldError::new("new_password", e.message)
}

/// Changing and resetting passwords. Cheap to clone.
#[derive(Clone)]
pub struct PasswordLifecycle(pub(crate) Arc<Ctx>);

impl PasswordLifecycle {
    /// Changes the signed-in user's password; every other session of theirs ends.
    pub async fn change(
        &self,
        me: &Recent<FullSession>,
        current: &SecretString,
        new: &SecretString,
        meta: &RequestMeta,
    ) -> Result<(), ChangePasswordError> {
        let ctx = &self.0;
        if current.expose_secret().is_empty() {
            return Err(FieldError::new("current_password", "password is required").into());
        }
        let (user, account) = (me.user(), me.account());
        let context = PasswordContext {
            email: user.email.as_str(),
            name: &user.name,
            team: &account.name,
        };
        validate::new_password(&ctx.policy, new.expose_secret(), &context)
            .map_err(new_password_field)?;
        ctx.recheck_password(user, current, meta, EventKind::SignInFailed)
            .await
            .map_err(|e| match e {
                RecheckError::Invalid(e) => FieldError::new("current_password", e.message).into(),
                RecheckError::InvalidCredentials => ChangePasswordError::InvalidCredentials,
                RecheckError::TooManyAttempts { retry_at } => {
                    ChangePasswordError::TooManyAttempts { retry_at }
                }
                RecheckError::Internal(e) => e.into(),
            })?;
        let hash = ctx.passwords.hash(new).await?;
        let now = ctx.now();
        let event = me.event(EventKind::PasswordChanged, meta, now);
        let message = Message::PasswordChanged {
            via: PasswordChangedVia::Settings,
        };
        let email = ctx.email_in(user, account, meta, now, message);
        let effects = Effects::event(event)
            .and_email(email)
            .and(me.restarted(now));
        if ctx
            .store
            .change_password(user.id, me.session().id, now, &hash, &effects)
            .await?
        {
            Ok(())
        } else {
            Err(ChangePasswordError::SessionEnded)
        }
    }

    /// Emails a reset link if `email` is a user's; answers the same either way.
    pub async fn forgot(&self, email: &str, meta: &RequestMeta) -> Result<(), ForgotError> {
        let ctx = &self.0;
        let email = Email::parse(email).map_err(|e| FieldError::new("email", e.0))?;
        let now = ctx.now();
        let window = ctx.policy.reset_ip_window();
        let mut admitted = Ok(());
        ctx.store
            .update_throttle(Scope::ResetIp, &ip_key(meta), &mut |state| {
                let (next, verdict) = crate::throttle::window_admit(state, now, &window);
                admitted = verdict;
                (next, Effects::default())
            })
            .await
            .map_err(Internal::from)?;
        if let Err(RetryAt(retry_at)) = admitted {
            return Err(ForgotError::TooManyRequests { retry_at });
        }
        // The answer must not tell whether the email has a user, not even by its timing:
        // looking the user up and storing their link happen after it, off the request.
        let this = self.clone();
        let meta = meta.clone();
        tokio::spawn(async move {
            if let Err(e) = this.send_link_if_known(&email, &meta, now).await {
                tracing::error!(error = %e, "a password reset link could not be made");
            }
        });
        Ok(())
    }

    async fn send_link_if_known(
        &self,
        email: &Email,
        meta: &RequestMeta,
        now: Timestamp,
    ) -> Result<(), Internal> {
        match self.0.store.find_user_by_email(email.normalized()).await? {
            Some(found) => {
                let message = |token, expires_at| Message::PasswordResetLink { token, expires_at };
                self.0.send_reset_link(found.user, meta, now, message).await
            }
            None => Ok(()),
        }
    }
}

impl Ctx {
    /// Makes, stores and emails a reset link for `user` (the email says why: `message` of
    /// the token and its expiry), within their send window.
    pub(crate) async fn send_reset_link(
        &self,
        user: User,
        meta: &RequestMeta,
        now: Timestamp,
        message: impl FnOnce(String, Timestamp) -> Message,
    ) -> Result<(), Internal> {
        let ctx = self;
        let account = ctx.account_of(&user).await?;
        let token = Token::generate();
        let expires_at = now.plus_secs(ctx.policy.reset_link_lifetime_secs);
        let message = message(token.expose().to_owned(), expires_at);
        let email = ctx.email_in(&user, &account, meta, now, message);
        let event = NewEvent::for_user(&user, EventKind::PasswordResetRequested, meta, now)
            .with_detail(json!({ "expires_at": expires_at.to_rfc3339() }));
        let window = ctx.policy.reset_link_sends();
        let link = NewResetLink {
            user: user.id,
            token: &token.hash(),
            created_at: now,
            expires_at,
        };
        let sent = ctx
            .store
            .create_reset_link(
                link,
                &mut |sent| admit_send(sent, now, &window),
                &Effects::event(event).and_email(email),
            )
            .await?;
        if let Err(RetryAt(next)) = sent {
            tracing::info!(user = %user.id, next = %next, "reset link not sent: the user's hourly limit is reached");
        }
        Ok(())
    }
}

impl PasswordLifecycle {
    /// The user a reset link is for, if it can still be used (the reset page).
    pub async fn link_user(&self, token: &str) -> Result<User, ResetError> {
        Ok(self.live_link(token).await?.user)
    }

    async fn live_link(&self, token: &str) -> Result<ResetLink, ResetError> {
        if token.is_empty() {
            return Err(ResetError::UnknownLink);
        }
        let ctx = &self.0;
        let link = ctx
            .store
            .find_reset_link(&Token::from_client(token).hash())
            .await?
            .ok_or(ResetError::UnknownLink)?;
        if link.used_at.is_some() {
            Err(ResetError::UsedLink)
        } else if link.expires_at <= ctx.now() {
            Err(ResetError::ExpiredLink)
        } else {
            Ok(link)
        }
    }

    /// Sets a new password with a reset link: every session of the user ends and their
    /// password lock is lifted; their second factor stays as it was.
    pub async fn reset(
        &self,
        token: &str,
        new: &SecretString,
        meta: &RequestMeta,
    ) -> Result<(), ResetError> {
        let ctx = &self.0;
        let ResetLink { user, account, .. } = self.live_link(token).await?;
        let context = PasswordContext {
            email: user.email.as_str(),
            name: &user.name,
            team: &account.name,
        };
        validate::new_password(&ctx.policy, new.expose_secret(), &context)
            .map_err(new_password_field)?;
        let hash = ctx.passwords.hash(new).await?;
        let now = ctx.now();
        let event = NewEvent::for_user(&user, EventKind::PasswordReset, meta, now);
        let message = Message::PasswordChanged {
            via: PasswordChangedVia::ResetLink,
        };
        let email = ctx.email_in(&user, &account, meta, now, message);
        let effects = Effects::event(event).and_email(email);
        let lifted = [(Scope::Password, user.email.normalized().to_owned())];
        if ctx
            .store
            .reset_password(
                &Token::from_client(token).hash(),
                user.id,
                now,
                &hash,
                &lifted,
                &effects,
            )
            .await?
        {
            Ok(())
        } else {
            // Used by a concurrent request, lapsed while hashing, or its user was deleted.
            Err(self
                .live_link(token)
                .await
                .err()
                .unwrap_or(ResetError::UsedLink))
        }
    }
}
