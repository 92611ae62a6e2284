//! What every room's service shares: storage, the clock, the security numbers, the keys. Built
//! once ([`crate::Tessera::new`]) and private to the crate: a caller gets services, never the
//! store or the keys behind them.

use crate::codes::{CodeHasher, CodePurpose};
use crate::crypto::{Sealer, TokenHash};
use crate::factors::totp::TotpSecret;
use crate::mail::{Alert, Mailer, Message, OutgoingEmail, SealedEmail};
use crate::model::{Account, NewEvent, RequestMeta, User, UserId};
use crate::password::{PasswordError, Passwords};
use crate::store::{Effects, Store, StoreError};
use crate::{Clock, SecurityPolicy, Timestamp};
use std::sync::Arc;

/// The server failed (database, hashing, a key): a 500, logged, never shown.
#[derive(Debug, thiserror::Error)]
pub enum Internal {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error("a stored secret cannot be decrypted (is this the right master key?): {0}")]
    Sealed(#[from] crate::crypto::Unsealable),
}

/// `From` the internal failures for a use case's error enum with an `Internal` variant.
macro_rules! internal_from {
    ($($err:ty),+ $(,)?) => {$(
        impl From<$crate::store::StoreError> for $err {
            fn from(e: $crate::store::StoreError) -> Self { Self::Internal(e.into()) }
        }
        impl From<$crate::password::PasswordError> for $err {
            fn from(e: $crate::password::PasswordError) -> Self { Self::Internal(e.into()) }
        }
    )+};
}
pub(crate) use internal_from;

/// What the services are built from.
pub struct Deps {
    pub store: Arc<dyn Store>,
    pub passwords: Passwords,
    pub clock: Arc<dyn Clock>,
    pub policy: SecurityPolicy,
    /// Seals queued emails.
    pub mailer: Mailer,
    /// Seals TOTP secrets at rest.
    pub totp_sealer: Sealer,
    /// Hashes recovery codes, paper keys and emailed codes.
    pub codes: CodeHasher,
    /// The name authenticator apps show (`TESSERA_ISSUER`).
    pub issuer: String,
    /// Who may create a team (`TESSERA_SIGNUP`, SPEC §8).
    pub signup: crate::sign_up::SignupMode,
    /// The grants API keys may hold: Tessera's and the operator's (`TESSERA_API_GRANTS`).
    pub grants: crate::api_keys::GrantCatalog,
    /// The WebAuthn relying party (SPEC §10); `None` where the public URL cannot be one.
    pub webauthn: Option<crate::factors::webauthn::RelyingParty>,
    /// Seals SSO client secrets and pending SSO sign-ins.
    pub sso_sealer: Sealer,
    /// The teams' identity providers, over HTTP (SPEC §12).
    pub identity_provider: Arc<dyn crate::sso::IdentityProvider>,
    /// Seals the private keys ID tokens are signed with (SPEC §13).
    pub signing_sealer: Sealer,
    /// `TESSERA_PUBLIC_URL`: the OpenID Connect issuer.
    pub public_url: String,
}

/// [`Deps`], shared by every service of one [`crate::Tessera`].
pub(crate) struct Ctx {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) passwords: Passwords,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) policy: SecurityPolicy,
    pub(crate) mailer: Mailer,
    totp_sealer: Sealer,
    codes: CodeHasher,
    pub(crate) issuer: String,
    pub(crate) signup: crate::sign_up::SignupMode,
    pub(crate) grants: crate::api_keys::GrantCatalog,
    pub(crate) webauthn: Option<crate::factors::webauthn::RelyingParty>,
    pub(crate) sso_sealer: Sealer,
    pub(crate) identity_provider: Arc<dyn crate::sso::IdentityProvider>,
    pub(crate) signing_sealer: Arc<Sealer>,
    pub(crate) public_url: String,
}

impl Ctx {
    pub(crate) fn new(deps: Deps) -> Self {
        Self {
            store: deps.store,
            passwords: deps.passwords,
            clock: deps.clock,
            policy: deps.policy,
            mailer: deps.mailer,
            totp_sealer: deps.totp_sealer,
            codes: deps.codes,
            issuer: deps.issuer,
            signup: deps.signup,
            grants: deps.grants,
            webauthn: deps.webauthn,
            sso_sealer: deps.sso_sealer,
            identity_provider: deps.identity_provider,
            signing_sealer: Arc::new(deps.signing_sealer),
            public_url: deps.public_url.trim_end_matches('/').to_owned(),
        }
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// A code's keyed hash, bound to its user and what it is for.
    pub(crate) fn code_hash(
        &self,
        purpose: CodePurpose,
        user: UserId,
        normalized: &str,
    ) -> Vec<u8> {
        self.codes.hash(purpose, user, normalized)
    }

    /// An API key's keyed hash, what it is stored and found by.
    pub(crate) fn api_key_hash(&self, key: &crate::api_keys::ApiKeySecret) -> TokenHash {
        self.codes.api_key(key)
    }

    /// The key an email typed at sign-in or recovery is looked up and throttled under
    /// ([`crate::throttle::email_key`]: a non-address only as a keyed hash).
    pub(crate) fn email_key(&self, input: &str) -> String {
        crate::throttle::email_key(input, &self.codes)
    }

    /// Decrypts a user's sealed TOTP secret.
    pub(crate) fn open_secret(&self, user: &User, sealed: &[u8]) -> Result<TotpSecret, Internal> {
        let bytes = self
            .totp_sealer
            .open(sealed, user.id.to_string().as_bytes())?;
        Ok(TotpSecret::from_bytes(bytes))
    }

    /// Seals a TOTP secret for storage, bound to its user.
    pub(crate) fn seal_secret(&self, user: &User, secret: &TotpSecret) -> Vec<u8> {
        self.totp_sealer
            .seal(secret.bytes(), user.id.to_string().as_bytes())
    }

    /// An email for a user of an account whose name is known, sealed for the outbox.
    pub(crate) fn email_in(
        &self,
        user: &User,
        account: &Account,
        meta: &RequestMeta,
        now: Timestamp,
        message: Message,
    ) -> SealedEmail {
        let email = OutgoingEmail::to_user(user, Some(&account.name), meta, now, message);
        self.mailer.seal(&email, now)
    }

    /// A security alert for `user` about what happened at `at` from `meta`, to go unless one of
    /// its kind went out within the alert interval before `now` ([`Alert`]).
    pub(crate) fn alert(
        &self,
        user: &User,
        account: &Account,
        meta: &RequestMeta,
        (at, now): (Timestamp, Timestamp),
        message: Message,
    ) -> Alert {
        Alert {
            user_id: user.id,
            email: self.email_in(user, account, meta, at, message),
            now,
            quiet_since: now.plus_secs(-self.policy.alert_interval_secs),
        }
    }

    /// An email for `user` about `message`, sealed for the outbox (reads their account's
    /// name).
    pub(crate) async fn email_to(
        &self,
        user: &User,
        meta: &RequestMeta,
        now: Timestamp,
        message: Message,
    ) -> Result<SealedEmail, Internal> {
        let account = self.store.get_account(user.account_id).await?;
        let email = OutgoingEmail::to_user(
            user,
            account.as_ref().map(|a| a.name.as_str()),
            meta,
            now,
            message,
        );
        Ok(self.mailer.seal(&email, now))
    }

    /// The event and the email that tell a user about a change to their own security: what
    /// most changes record.
    pub(crate) async fn notify(
        &self,
        event: NewEvent,
        user: &User,
        meta: &RequestMeta,
        message: Message,
    ) -> Result<Effects, Internal> {
        let email = self.email_to(user, meta, event.at, message).await?;
        Ok(Effects::event(event).and_email(email))
    }
}
