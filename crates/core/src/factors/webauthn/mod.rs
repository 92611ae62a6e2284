//! Security keys and passkeys (WebAuthn, SPEC §10), through `webauthn-rs`: no CBOR or
//! signature is read here.
//!
//! ## A key's life
//! - **Registration** is two requests: start keeps the ceremony's state server-side
//!   ([`CeremonyKey::Register`], one per user, 10 minutes, restarting replaces it) and
//!   answers the browser's `PublicKeyCredentialCreationOptions`; finish takes that state
//!   (once: of two racing finishes one gets it), has webauthn-rs verify the attestation, and
//!   stores the credential under a name. Every key is registered with user verification
//!   (a PIN or biometrics on the authenticator) and as a discoverable credential where the
//!   authenticator can, so that any key can also sign in alone (a passkey).
//! - **The first factor** (no TOTP, no key yet) turns 2FA on: recovery codes and a paper key
//!   come with it, shown once, as TOTP activation does. **Removing the last factor** turns
//!   2FA off, as `POST /me/2fa/disable` does (same event and email, refused while the team
//!   requires 2FA). Adding and removing keys are sensitive actions ([`Recent`]).
//! - **An assertion** (the second step, [`SecurityKey`]; a passkey sign-in, [`passkey`]) is
//!   verified against the ceremony's state, then accepted by the store only if the
//!   signature counter rises above the stored one (or both are 0: authenticators without a
//!   counter), in the transaction that consumes the challenge and opens the session. A counter
//!   that does not rise is refused and audited (`security_key_counter_refused`): it is the
//!   sign of a cloned key.
//!
//! The relying party is the host of `TESSERA_PUBLIC_URL` ([`RelyingParty`]); browsers refuse
//! IP addresses, so a loopback address is served as `localhost`.

mod answer;
pub mod passkey;
mod port;

pub(crate) use answer::SecurityKey;
pub use passkey::{PasskeyError, PasskeyStart, Passkeys};
pub use port::{
    CeremonyKey, FirstFactor, KeyAdded, KeyRemoved, KeyUse, SecurityKeyStore, StoredKey,
};

use super::{FactorKind, Factors, may_turn_off, recovery};
use crate::Timestamp;
use crate::codes::{CodePurpose, generate_paper_key};
use crate::ctx::{Ctx, Internal, internal_from};
use crate::mail::{DisabledVia, Message};
use crate::model::{EventKind, RequestMeta, SecurityKeyId, User};
use crate::principal::{AnySession, FullSession, Recent};
use crate::store::{Effects, StoreError};
use crate::validate::{self, FieldError};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use webauthn_rs::prelude::{
    Passkey, PasskeyAuthentication, PasskeyRegistration, RegisterPublicKeyCredential, Url, Uuid,
    Webauthn, WebauthnBuilder,
};

/// The largest credential or assertion JSON read (a real one is a few KiB).
pub const MAX_CREDENTIAL_JSON: usize = 32 * 1024;

/// Who the browser signs for: the host of the public URL, and its origin.
#[derive(Clone)]
pub struct RelyingParty {
    webauthn: Arc<Webauthn>,
    id: String,
    origin: Url,
}

impl std::fmt::Debug for RelyingParty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelyingParty")
            .field("id", &self.id)
            .field("origin", &self.origin.as_str())
            .finish()
    }
}

impl RelyingParty {
    /// The relying party of a deployment reached at `public_url`, named `name` in the
    /// browser's prompt. An IP address other than loopback cannot be one (browsers refuse
    /// it): `Err` says why.
    pub fn from_public_url(public_url: &str, name: &str) -> Result<Self, String> {
        let mut origin =
            Url::parse(public_url).map_err(|e| format!("{public_url:?} is not a URL: {e}"))?;
        let loopback = match origin.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            _ => false,
        };
        if loopback {
            // The same server, under the one name browsers accept for a local address.
            origin
                .set_host(Some("localhost"))
                .map_err(|e| format!("{public_url:?}: {e}"))?;
        }
        origin.set_path("");
        origin.set_query(None);
        let id = origin
            .domain()
            .ok_or_else(|| {
                format!(
                    "security keys need TESSERA_PUBLIC_URL with a domain name, not {public_url:?}"
                )
            })?
            .to_owned();
        let webauthn = WebauthnBuilder::new(&id, &origin)
            .map_err(|e| format!("relying party {id:?}: {e}"))?
            .rp_name(name)
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| format!("relying party {id:?}: {e}"))?;
        Ok(Self {
            webauthn: Arc::new(webauthn),
            id,
            origin,
        })
    }

    /// The relying-party id (a host name).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The origin the browser's pages are served from.
    pub fn origin(&self) -> &Url {
        &self.origin
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecurityKeyError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// No relying party (the public URL is an IP address).
    #[error("security keys are not available on this server (its public URL needs a domain name)")]
    Unavailable,
    #[error("no registration is pending (or it expired): start again")]
    NoPendingRegistration,
    /// The authenticator's answer did not verify (wrong challenge or origin, no user
    /// verification, a bad signature).
    #[error("the security key's answer was not accepted")]
    Rejected,
    #[error("this security key is registered already")]
    Duplicate,
    #[error("not found")]
    NotFound,
    /// Removing the last factor would turn 2FA off, which the team forbids.
    #[error("your team requires two-factor authentication")]
    RequiredByAccount,
    #[error(transparent)]
    Internal(#[from] Internal),
}

internal_from!(SecurityKeyError);

/// A registered key, as its owner sees it.
#[derive(Clone, Debug)]
pub struct KeySummary {
    pub id: SecurityKeyId,
    pub name: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

impl From<&StoredKey> for KeySummary {
    fn from(key: &StoredKey) -> Self {
        Self {
            id: key.id,
            name: key.name.clone(),
            created_at: key.created_at,
            last_used_at: key.last_used_at,
        }
    }
}

/// What a registration's start answers: the browser's creation options.
pub struct RegistrationStart {
    /// `{"publicKey": PublicKeyCredentialCreationOptions}` in the JSON form of
    /// `PublicKeyCredential.parseCreationOptionsFromJSON`.
    pub options: Value,
    pub expires_at: Timestamp,
}

/// A key just registered; with the first factor, the recovery codes and paper key (shown
/// this once).
pub struct KeyRegistered {
    pub key: KeySummary,
    pub recovery_codes: Option<Vec<String>>,
    pub paper_key: Option<String>,
}

/// A ceremony's state as kept, with the options the browser was given (a page may show them
/// again).
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Ceremony<S> {
    pub(crate) state: S,
    pub(crate) options: Value,
}

impl<S: serde::Serialize + serde::de::DeserializeOwned> Ceremony<S> {
    pub(crate) fn to_json(&self) -> Result<String, Internal> {
        serde_json::to_string(self)
            .map_err(|e| StoreError::Corrupt(format!("ceremony state: {e}")).into())
    }

    pub(crate) fn from_json(text: &str) -> Result<Self, Internal> {
        serde_json::from_str(text)
            .map_err(|e| StoreError::Corrupt(format!("ceremony state: {e}")).into())
    }
}

/// The WebAuthn user handle of a user: their id's 16 bytes.
pub(crate) fn user_handle(user: &User) -> Uuid {
    Uuid::parse_str(&user.id.to_string()).unwrap_or_default()
}

/// A stored credential's webauthn-rs record.
pub(crate) fn passkey_of(key: &StoredKey) -> Result<Passkey, Internal> {
    serde_json::from_str(&key.credential)
        .map_err(|e| StoreError::Corrupt(format!("security key {}: {e}", key.id)).into())
}

/// Reads a credential or assertion as `PublicKeyCredential.toJSON()` gives it (unknown
/// members ignored); `Err` names `field` with what is wrong.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
    field: &'static str,
    text: &str,
) -> Result<T, FieldError> {
    if text.len() > MAX_CREDENTIAL_JSON {
        return Err(FieldError::new(field, "is too large"));
    }
    serde_json::from_str(text).map_err(|_| {
        FieldError::new(
            field,
            "must be the JSON of a PublicKeyCredential (as its toJSON() gives it)",
        )
    })
}

impl Ctx {
    pub(crate) fn relying_party(&self) -> Result<&RelyingParty, SecurityKeyError> {
        self.webauthn.as_ref().ok_or(SecurityKeyError::Unavailable)
    }

    /// The user's keys as webauthn-rs knows them.
    pub(crate) async fn passkeys_of(&self, user: &User) -> Result<Vec<Passkey>, Internal> {
        self.store
            .security_keys(user.id)
            .await?
            .iter()
            .map(passkey_of)
            .collect()
    }
}

impl Factors {
    /// Starts registering a security key or passkey (a sensitive action): the browser's
    /// creation options; the state waits server-side for [`Factors::finish_key_registration`].
    pub async fn start_key_registration(
        &self,
        me: &Recent<AnySession>,
    ) -> Result<RegistrationStart, SecurityKeyError> {
        let ctx = &self.0;
        let rp = ctx.relying_party()?;
        let user = me.user();
        let exclude = ctx
            .passkeys_of(user)
            .await?
            .iter()
            .map(|p| p.cred_id().clone())
            .collect();
        let (options, state) = rp
            .webauthn
            .start_passkey_registration(
                user_handle(user),
                user.email.as_str(),
                &user.name,
                Some(exclude),
            )
            .map_err(|e| {
                tracing::error!(error = %e, "cannot start a security key registration");
                SecurityKeyError::Rejected
            })?;
        let mut options = serde_json::to_value(&options)
            .map_err(|e| StoreError::Corrupt(format!("creation options: {e}")))?;
        // A discoverable credential where the authenticator can make one: it may then sign in
        // without a password (a passkey). Not required: a security key without room for one
        // still works as a second factor.
        if let Some(selection) = options
            .pointer_mut("/publicKey/authenticatorSelection")
            .and_then(Value::as_object_mut)
        {
            selection.insert("residentKey".to_owned(), json!("preferred"));
        }
        let now = ctx.now();
        let expires_at = now.plus_secs(ctx.policy.challenge_lifetime_secs);
        let ceremony = Ceremony::<PasskeyRegistration> {
            state,
            options: options.clone(),
        };
        ctx.store
            .put_ceremony(
                &CeremonyKey::Register(user.id),
                Some(user.id),
                &ceremony.to_json()?,
                expires_at,
            )
            .await?;
        Ok(RegistrationStart {
            options,
            expires_at,
        })
    }

    /// Finishes a registration with the authenticator's answer (`credential`, the JSON of
    /// `PublicKeyCredential.toJSON()`), naming the key.
    pub async fn finish_key_registration(
        &self,
        me: &Recent<AnySession>,
        name: &str,
        credential: &str,
        meta: &RequestMeta,
    ) -> Result<KeyRegistered, SecurityKeyError> {
        let ctx = &self.0;
        let rp = ctx.relying_party()?;
        let user = me.user();
        let name = validate::name("name", name)?;
        if name.chars().count() > 64 {
            return Err(FieldError::new("name", "must be at most 64 characters").into());
        }
        let credential: RegisterPublicKeyCredential = read_json("credential", credential)?;
        let now = ctx.now();
        let state = ctx
            .store
            .take_ceremony(&CeremonyKey::Register(user.id), now)
            .await?
            .ok_or(SecurityKeyError::NoPendingRegistration)?;
        let ceremony = Ceremony::<PasskeyRegistration>::from_json(&state)?;
        let passkey = rp
            .webauthn
            .finish_passkey_registration(&credential, &ceremony.state)
            .map_err(|e| {
                tracing::info!(user_id = %user.id, error = %e, "security key registration refused");
                SecurityKeyError::Rejected
            })?;
        let key = StoredKey {
            id: SecurityKeyId::new(),
            user_id: user.id,
            credential_id: passkey.cred_id().to_vec(),
            name,
            credential: serde_json::to_string(&passkey)
                .map_err(|e| StoreError::Corrupt(format!("security key: {e}")))?,
            sign_count: 0,
            created_at: now,
            last_used_at: None,
        };
        let added = me
            .event(EventKind::SecurityKeyAdded, meta, now)
            .with_detail(json!({ "key_id": key.id.to_string(), "name": key.name }));
        let mut effects = Effects::event(added).and(me.restarted(now));
        let first = !ctx.two_factor_on(user.id).await?;
        let (mut recovery_codes, mut paper_key, mut backup) = (None, None, None);
        if first {
            let codes = ctx.policy.recovery_code_format.generate_set();
            let key_text = generate_paper_key();
            backup = Some(FirstFactor {
                recovery_code_hashes: recovery::hashes(ctx, user, &codes),
                paper_key_hash: ctx.code_hash(CodePurpose::PaperKey, user.id, &key_text),
            });
            let enabled = me
                .event(EventKind::TwoFactorEnabled, meta, now)
                .with_detail(json!({ "factor": "webauthn" }));
            effects = effects.and(
                ctx.notify(enabled, user, meta, Message::TwoFactorEnabled)
                    .await?,
            );
            recovery_codes = Some(codes);
            paper_key = Some(key_text);
        }
        match ctx
            .store
            .add_security_key(&key, backup.as_ref(), &effects)
            .await?
        {
            KeyAdded::Added => Ok(KeyRegistered {
                key: KeySummary::from(&key),
                recovery_codes,
                paper_key,
            }),
            KeyAdded::Duplicate => Err(SecurityKeyError::Duplicate),
        }
    }

    /// Whether one has an authenticator app (2FA may be on through keys alone).
    pub async fn has_authenticator_app(&self, me: &AnySession) -> Result<bool, Internal> {
        Ok(self
            .0
            .store
            .active_factors(me.user().id)
            .await?
            .contains(&FactorKind::Totp))
    }

    /// One's security keys, oldest first, with when each was last used.
    pub async fn security_keys(&self, me: &AnySession) -> Result<Vec<KeySummary>, Internal> {
        Ok(self
            .0
            .store
            .security_keys(me.user().id)
            .await?
            .iter()
            .map(KeySummary::from)
            .collect())
    }

    /// Removes one of one's keys (a sensitive action). Removing the last factor turns 2FA
    /// off, as [`Factors::disable`] does.
    pub async fn remove_security_key(
        &self,
        me: &Recent<FullSession>,
        id: SecurityKeyId,
        meta: &RequestMeta,
    ) -> Result<(), SecurityKeyError> {
        let ctx = &self.0;
        let user = me.user();
        let keys = ctx.store.security_keys(user.id).await?;
        let key = keys
            .iter()
            .find(|k| k.id == id)
            .ok_or(SecurityKeyError::NotFound)?;
        let totp_on = ctx
            .store
            .active_factors(user.id)
            .await?
            .contains(&FactorKind::Totp);
        let last = keys.len() == 1 && !totp_on;
        if last && may_turn_off(me).is_err() {
            return Err(SecurityKeyError::RequiredByAccount);
        }
        let now = ctx.now();
        let removed = me
            .event(EventKind::SecurityKeyRemoved, meta, now)
            .with_detail(json!({ "key_id": key.id.to_string(), "name": key.name }));
        let effects = Effects::event(removed.clone()).and(me.restarted(now));
        let off = me
            .event(EventKind::TwoFactorDisabled, meta, now)
            .with_detail(json!({ "via": "security_key_removed" }));
        let via = DisabledVia::Password;
        let last_effects = Effects::event(removed)
            .and(
                ctx.notify(off, user, meta, Message::TwoFactorDisabled { via })
                    .await?,
            )
            .and(me.restarted(now));
        match ctx
            .store
            .remove_security_key(user.id, id, &effects, &last_effects)
            .await?
        {
            KeyRemoved::NotFound => Err(SecurityKeyError::NotFound),
            KeyRemoved::Removed | KeyRemoved::TwoFactorOff => Ok(()),
        }
    }
}

impl Ctx {
    /// The security-key half of a login challenge for a user with keys: the browser's request
    /// options, the state kept with the challenge (and dying with it). `None` without keys
    /// (or without a relying party).
    pub(crate) async fn second_step_options(
        &self,
        user: &User,
        challenge: crate::model::ChallengeId,
        expires_at: Timestamp,
    ) -> Result<Option<Value>, Internal> {
        self.assertion_options(user, &CeremonyKey::SecondStep(challenge), expires_at)
            .await
    }

    /// Request options for the user's keys, the state kept under `key` until `expires_at`.
    pub(crate) async fn assertion_options(
        &self,
        user: &User,
        key: &CeremonyKey,
        expires_at: Timestamp,
    ) -> Result<Option<Value>, Internal> {
        let Some(rp) = self.webauthn.as_ref() else {
            return Ok(None);
        };
        let passkeys = self.passkeys_of(user).await?;
        if passkeys.is_empty() {
            return Ok(None);
        }
        let (options, state) = match rp.webauthn.start_passkey_authentication(&passkeys) {
            Ok(started) => started,
            Err(e) => {
                tracing::error!(user_id = %user.id, error = %e, "cannot start a security key assertion");
                return Ok(None);
            }
        };
        let options = serde_json::to_value(&options)
            .map_err(|e| StoreError::Corrupt(format!("request options: {e}")))?;
        let ceremony = Ceremony::<PasskeyAuthentication> {
            state,
            options: options.clone(),
        };
        self.store
            .put_ceremony(key, Some(user.id), &ceremony.to_json()?, expires_at)
            .await?;
        Ok(Some(options))
    }
}
