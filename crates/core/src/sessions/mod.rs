//! Sessions (SPEC §3): the one way every sign-in ends ([`Ctx::open_session`]), finding the
//! session behind a token ([`Sessions::authenticate`], the only maker of an
//! [`AnySession`]), signing out, and a user's own list of sessions.
//!
//! A session lives at most 12 h (`session_lifetime_secs`) from the sign-in, and ends after
//! 30 min without a request (`session_idle_secs`, SPEC §8); its token is random, shown once,
//! and stored as its SHA-256.
//!
//! ## Activity
//! Finding a session is a pure read that returns its last activity; [`live`] decides. The
//! last activity is written only when it is at least [`TOUCH_EVERY_SECS`] old, by one
//! conditional `UPDATE … WHERE last_seen_at <= now - 60`, so a session's requests write at
//! most once a minute (and concurrent ones once). A session past either limit answers
//! [`SessionError::Expired`]; a token that matches no session answers
//! [`SessionError::Unauthenticated`]. Telling the two apart reveals nothing to someone
//! without the token: only its holder can reach a session row. What a session may do is decided at each request from the
//! account's 2FA policy ([`crate::principal`]); `kind` only records what it was opened as.
//!
//! ## At most [`MAX_SESSIONS_PER_USER`] (review D13)
//! Opening a session ends the user's oldest ones beyond 100, in the same transaction, under
//! the user's row lock, so concurrent sign-ins cannot pass the cap. The list is paged.

mod port;
mod step_up;

pub use port::{SessionCursor, SessionStore};
pub use step_up::{ReauthError, ReauthInput, Reauthenticated};

/// Sessions a user may hold at once; a new one ends the oldest.
pub const MAX_SESSIONS_PER_USER: i64 = 100;

use crate::Timestamp;
use crate::crypto::{Token, TokenHash};
use crate::ctx::{Ctx, Internal, internal_from};
use crate::factors::{Method, TwoFactorStatus};
use crate::model::{
    Account, EventKind, NewEvent, RequestMeta, Session, SessionId, SessionKind, User,
};
use crate::principal::{AnySession, FullSession, SessionContext};
use crate::store::Effects;
use serde_json::json;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("not signed in")]
    Unauthenticated,
    #[error("the session has expired")]
    Expired,
    #[error(transparent)]
    Internal(#[from] Internal),
}

#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Internal(#[from] Internal),
}

internal_from!(SessionError, RevokeError);

/// How a user proved who they are, as the sign-in event records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignInMethod {
    /// Email and password, with no second step due.
    Password,
    /// A password just chosen through an emailed invitation link.
    Invitation,
    /// A second step, passed with this factor.
    SecondStep(Method),
    /// The password, from a device trusted to skip the second step (SPEC §9).
    TrustedDevice,
    /// A passkey alone (SPEC §10): a key with user verification, no password (`amr`: `hwk`
    /// and `user`).
    Passkey,
    /// The team's identity provider (SPEC §12), with no second step due.
    Sso,
}

impl SignInMethod {
    /// The method `as_str` names, if any.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "password" => Self::Password,
            "invitation" => Self::Invitation,
            "trusted_device" => Self::TrustedDevice,
            "totp" => Self::SecondStep(Method::Totp),
            "recovery_code" => Self::SecondStep(Method::RecoveryCode),
            "email_code" => Self::SecondStep(Method::EmailCode),
            "webauthn" => Self::SecondStep(Method::WebAuthn),
            "passkey" => Self::Passkey,
            "sso" => Self::Sso,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Invitation => "invitation",
            Self::SecondStep(method) => method.as_str(),
            Self::TrustedDevice => "trusted_device",
            Self::Passkey => "passkey",
            Self::Sso => "sso",
        }
    }
}

/// A new session: the token is shown to the client once and never stored. Made only here,
/// so holding one proves a sign-in just happened.
pub struct SignedIn {
    token: Token,
    context: SessionContext,
    method: SignInMethod,
}

impl SignedIn {
    /// How the user proved who they are.
    pub fn method(&self) -> SignInMethod {
        self.method
    }

    pub fn token(&self) -> &Token {
        &self.token
    }

    pub fn context(&self) -> &SessionContext {
        &self.context
    }
}

/// A session ready to be written, with the sign-in event that goes with it.
pub(crate) struct Opening {
    pub(crate) token: Token,
    pub(crate) context: SessionContext,
    pub(crate) method: SignInMethod,
    pub(crate) effects: Effects,
}

impl Opening {
    pub(crate) fn signed_in(self) -> SignedIn {
        SignedIn {
            token: self.token,
            context: self.context,
            method: self.method,
        }
    }
}

impl Ctx {
    /// A session for `user`, who just proved who they are with `method`, ready to be written
    /// (by [`Ctx::open_session`], or inside a second step's transaction). If the account
    /// requires 2FA and no grace is left, the session may only set it up (SPEC §4).
    pub(crate) fn opening(
        &self,
        user: User,
        account: Account,
        two_factor_enabled: bool,
        method: SignInMethod,
        meta: &RequestMeta,
        now: Timestamp,
    ) -> Opening {
        let mut context = SessionContext {
            session: Session {
                id: SessionId::new(),
                user_id: user.id,
                kind: SessionKind::Full,
                created_at: now,
                expires_at: now.plus_secs(self.policy.session_lifetime_secs),
                last_seen_at: now,
                reauthenticated_at: now,
                ip: meta.ip.clone(),
                user_agent: meta.user_agent.clone(),
                method: Some(method),
            },
            user,
            account,
            two_factor_enabled,
        };
        let mut detail = json!({ "method": method.as_str() });
        if context.setup_only(now) {
            context.session.kind = SessionKind::SetupOnly;
            detail["restricted"] = json!("two_factor_setup_required");
        }
        let event =
            NewEvent::for_user(&context.user, EventKind::SignIn, meta, now).with_detail(detail);
        Opening {
            token: Token::generate(),
            context,
            method,
            effects: Effects::event(event),
        }
    }

    /// Opens a session for a user without 2FA who has just proved who they are.
    pub(crate) async fn open_session(
        &self,
        user: User,
        account: Account,
        method: SignInMethod,
        meta: &RequestMeta,
        now: Timestamp,
    ) -> Result<SignedIn, Internal> {
        let opening = self.opening(user, account, false, method, meta, now);
        self.store
            .create_session(
                &opening.context.session,
                &opening.token.hash(),
                &opening.effects,
            )
            .await?;
        Ok(opening.signed_in())
    }
}

/// The last activity of a session is written when it is at least this old (seconds).
pub const TOUCH_EVERY_SECS: i64 = 60;

/// What a found session is at `now`.
#[derive(Debug, PartialEq, Eq)]
pub enum Liveness {
    /// Live, and its last activity is recent enough not to be written again.
    Live,
    /// Live, and its activity is due to be written.
    TouchDue,
    /// Past its absolute lifetime or its idle timeout.
    Expired,
}

/// The session rule, a pure function of the stored times (SPEC §8).
pub fn live(session: &Session, idle_secs: i64, now: Timestamp) -> Liveness {
    if now >= session.expires_at || now >= session.last_seen_at.plus_secs(idle_secs) {
        Liveness::Expired
    } else if now >= session.last_seen_at.plus_secs(TOUCH_EVERY_SECS) {
        Liveness::TouchDue
    } else {
        Liveness::Live
    }
}

impl Ctx {
    /// Applies [`live`] to a found session, writing its activity when due.
    async fn admit_session(&self, session: &Session, now: Timestamp) -> Result<(), SessionError> {
        match live(session, self.policy.session_idle_secs, now) {
            Liveness::Expired => Err(SessionError::Expired),
            Liveness::Live => Ok(()),
            Liveness::TouchDue => {
                let due = now.plus_secs(-TOUCH_EVERY_SECS);
                self.store.touch_session(session.id, now, due).await?;
                Ok(())
            }
        }
    }
}

/// Sessions. Cheap to clone.
#[derive(Clone)]
pub struct Sessions(pub(crate) Arc<Ctx>);

impl Sessions {
    /// The live session a token belongs to.
    pub async fn authenticate(&self, token: &TokenHash) -> Result<AnySession, SessionError> {
        let now = self.0.now();
        let context = self
            .0
            .store
            .find_session(token)
            .await?
            .ok_or(SessionError::Unauthenticated)?;
        self.0.admit_session(&context.session, now).await?;
        Ok(AnySession::new(context, now))
    }

    /// [`Sessions::authenticate`] with the user's 2FA status, read together (`GET /me`).
    pub async fn authenticate_with_status(
        &self,
        token: &TokenHash,
    ) -> Result<(AnySession, TwoFactorStatus), SessionError> {
        let now = self.0.now();
        let (context, status) = self
            .0
            .store
            .find_session_with_status(token, now)
            .await?
            .ok_or(SessionError::Unauthenticated)?;
        self.0.admit_session(&context.session, now).await?;
        Ok((AnySession::new(context, now), status))
    }

    /// Signs in a user who has just chosen their password (sign-up, an accepted invitation).
    pub async fn open_registered(
        &self,
        registered: crate::sign_in::Registered,
        meta: &RequestMeta,
    ) -> Result<SignedIn, Internal> {
        let (user, method) = registered.into_parts();
        // Read again: the policy may have changed while the password was being hashed.
        let account = self.0.account_of(&user).await?;
        self.0
            .open_session(user, account, method, meta, self.0.now())
            .await
    }

    /// Ends the session; signing out twice is not an error.
    pub async fn logout(&self, me: &AnySession, meta: &RequestMeta) -> Result<(), SessionError> {
        let event = me.event(EventKind::SignOut, meta, self.0.now());
        self.0
            .store
            .end_session(me.session().id, &Effects::event(event))
            .await?;
        Ok(())
    }

    /// A page of the user's live sessions, newest first: at most `limit` after `after`, and
    /// where the next page starts if there is one.
    pub async fn list(
        &self,
        me: &FullSession,
        after: Option<SessionCursor>,
        limit: i64,
    ) -> Result<(Vec<Session>, Option<SessionCursor>), Internal> {
        let now = self.0.now();
        let idle_since = now.plus_secs(-self.0.policy.session_idle_secs);
        let mut sessions = self
            .0
            .store
            .list_sessions(me.user().id, now, idle_since, after, limit + 1)
            .await?;
        let more = i64::try_from(sessions.len()).is_ok_and(|n| n > limit);
        sessions.truncate(usize::try_from(limit).unwrap_or(0));
        let next = more
            .then(|| sessions.last().map(SessionCursor::of))
            .flatten();
        Ok((sessions, next))
    }

    /// Ends one of the user's sessions (possibly the current one).
    pub async fn revoke(
        &self,
        me: &FullSession,
        session: SessionId,
        meta: &RequestMeta,
    ) -> Result<(), RevokeError> {
        let event = me
            .event(EventKind::SessionRevoked, meta, self.0.now())
            .with_detail(json!({ "session_id": session }));
        if self
            .0
            .store
            .end_user_session(me.user().id, session, &Effects::event(event))
            .await?
        {
            Ok(())
        } else {
            Err(RevokeError::NotFound)
        }
    }

    /// Signs out everywhere else: every session of the user but this one ends.
    pub async fn revoke_others(
        &self,
        me: &FullSession,
        meta: &RequestMeta,
    ) -> Result<u64, Internal> {
        let event = me
            .event(EventKind::SessionRevoked, meta, self.0.now())
            .with_detail(json!({ "all_but": me.session().id }));
        Ok(self
            .0
            .store
            .end_other_sessions(me.user().id, me.session().id, &Effects::event(event))
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SessionKind, UserId};

    #[test]
    fn a_session_lives_until_its_idle_or_absolute_limit() {
        let t0 = Timestamp::from_unix(1_800_000_000);
        let mut s = Session {
            id: SessionId::new(),
            user_id: UserId::new(),
            kind: SessionKind::Full,
            created_at: t0,
            expires_at: t0.plus_secs(12 * 3600),
            last_seen_at: t0,
            reauthenticated_at: t0,
            ip: None,
            user_agent: None,
            method: None,
        };
        let idle = 1800;
        assert_eq!(live(&s, idle, t0.plus_secs(59)), Liveness::Live);
        assert_eq!(live(&s, idle, t0.plus_secs(60)), Liveness::TouchDue);
        assert_eq!(live(&s, idle, t0.plus_secs(1799)), Liveness::TouchDue);
        assert_eq!(live(&s, idle, t0.plus_secs(1800)), Liveness::Expired);
        s.last_seen_at = t0.plus_secs(12 * 3600 - 10);
        assert_eq!(live(&s, idle, t0.plus_secs(12 * 3600 - 1)), Liveness::Live);
        assert_eq!(live(&s, idle, t0.plus_secs(12 * 3600)), Liveness::Expired);
    }
}
