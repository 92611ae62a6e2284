//! Tessera as an OpenID Connect provider (SPEC §13): apps (relying parties) sign their users
//! in through Tessera with the authorization code flow.
//!
//! - [`clients`]: relying parties, registered by the operator or by a team's owner; secrets
//!   shown once and stored as SHA-256; redirect URIs matched exactly.
//! - [`authorize`]: `/oauth2/authorize`. An unknown client or an unregistered redirect URI is
//!   never redirected to; every other refusal is the standard error redirect with `state`.
//!   The browser signs in on Tessera's own pages first, sets up 2FA first when its team
//!   requires it (a setup-only session gets no code), and re-authenticates for
//!   `prompt=login` and `max_age` (the step-up window of SPEC §9).
//! - [`token`]: `/oauth2/token`, `/oauth2/userinfo`. Codes and tokens are 256 random bits,
//!   stored as SHA-256.
//! - [`signing`]: the keys ID tokens are signed with, sealed under the master key.
//!
//! ## A grant's life (one family per authorization code)
//! - code: issued at authorize, valid [`CODE_SECS`] (60 s), single use; a conditional
//!   `UPDATE … WHERE used_at IS NULL` spends it, so of two concurrent exchanges one wins. A
//!   code used again revokes every token its first use issued.
//! - access token: opaque, [`ACCESS_SECS`] (10 min).
//! - refresh token: [`REFRESH_SECS`] (12 h, a session's lifetime), and only while the
//!   Tessera session it was issued on exists (signing out, "sign out everywhere", a changed
//!   or reset password end it); spent at each use and replaced (rotation); one used twice
//!   revokes the whole family.
//! - RP-initiated logout ends the Tessera session and revokes the tokens issued on it.

pub mod authorize;
pub mod clients;
mod logout;
mod port;
pub mod signing;
pub mod token;

pub use port::{ClientRow, CodeRow, Grant, NewTokens, OidcStore, SigningKeyRow, Spent, TokenRow};

use crate::ctx::{Ctx, Internal};
use crate::model::{Account, EventKind, NewEvent, RequestMeta, User};
use crate::sessions::SignInMethod;
use crate::store::Effects;
use crate::{Timestamp, factors::Method};
use serde_json::{Value, json};
use signing::{Signer, SigningAlg, SigningError};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// An authorization code is valid 60 s.
pub const CODE_SECS: i64 = 60;
/// An access token is valid 10 min.
pub const ACCESS_SECS: i64 = 600;
/// A refresh token is valid 12 h from its issue (each use issues a new one).
pub const REFRESH_SECS: i64 = 12 * 3600;

/// The scopes Tessera knows.
pub const SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// How a session was authenticated, as the `amr` values of RFC 8176 (SPEC §13). The one
/// place that maps sign-in methods to them.
pub fn amr(method: Option<SignInMethod>) -> Vec<&'static str> {
    match method {
        Some(SignInMethod::SecondStep(Method::Totp | Method::RecoveryCode)) => {
            vec!["pwd", "otp", "mfa"]
        }
        Some(SignInMethod::SecondStep(Method::WebAuthn)) => vec!["pwd", "hwk", "mfa"],
        // A key that verified its user (PIN or biometrics): two factors without a password.
        Some(SignInMethod::Passkey) => vec!["hwk", "mfa"],
        // The team's provider authenticated the person; how, it does not say.
        Some(SignInMethod::Sso) => vec!["sso"],
        // An emailed code recognizes a device of a user without 2FA.
        Some(SignInMethod::SecondStep(Method::EmailCode)) => vec!["pwd", "otp"],
        Some(SignInMethod::Password | SignInMethod::Invitation | SignInMethod::TrustedDevice)
        | None => vec!["pwd"],
    }
}

/// The `acr` of a set of `amr` values: `"2"` with more than one factor, `"1"` otherwise.
pub fn acr(amr: &[&str]) -> &'static str {
    if amr.contains(&"mfa") { "2" } else { "1" }
}

/// The OpenID Connect provider's use cases. Cheap to clone.
#[derive(Clone)]
pub struct OidcProvider {
    ctx: Arc<Ctx>,
    /// Opened signing keys by `kid`: opening an RSA key costs more than signing with it.
    signers: Arc<RwLock<HashMap<String, Arc<Signer>>>>,
}

impl OidcProvider {
    pub(crate) fn new(ctx: Arc<Ctx>) -> Self {
        Self {
            ctx,
            signers: Arc::default(),
        }
    }

    /// The issuer identifier: the public URL.
    pub fn issuer_url(&self) -> &str {
        &self.ctx.public_url
    }

    /// The discovery document (`/.well-known/openid-configuration`).
    pub fn discovery(&self) -> Value {
        let issuer = self.issuer_url();
        json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/oauth2/authorize"),
            "token_endpoint": format!("{issuer}/oauth2/token"),
            "userinfo_endpoint": format!("{issuer}/oauth2/userinfo"),
            "jwks_uri": format!("{issuer}/oauth2/jwks"),
            "end_session_endpoint": format!("{issuer}/oauth2/logout"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "token_endpoint_auth_methods_supported":
                ["client_secret_basic", "client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": SCOPES,
            "claims_supported": [
                "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "amr", "acr",
                "at_hash", "email", "email_verified", "name", "tessera_account", "tessera_role"
            ],
            "prompt_values_supported": ["none", "login", "consent"],
            "authorization_response_iss_parameter_supported": true,
            "claims_parameter_supported": false,
            "request_parameter_supported": false,
        })
    }

    /// The keys still published, making the current ones first if there are none.
    async fn published_keys(&self) -> Result<Vec<SigningKeyRow>, OidcInternal> {
        let since = self.ctx.now().plus_secs(-signing::ID_TOKEN_SECS);
        let keys = self.ctx.store.signing_keys(since).await?;
        let missing: Vec<SigningAlg> = SigningAlg::ALL
            .into_iter()
            .filter(|alg| {
                !keys
                    .iter()
                    .any(|k| k.alg == alg.as_str() && k.retired_at.is_none())
            })
            .collect();
        if missing.is_empty() {
            return Ok(keys);
        }
        for alg in missing {
            // Another instance may add its own first: the store keeps one.
            self.add_key(alg, false, &Effects::default()).await?;
        }
        Ok(self.ctx.store.signing_keys(since).await?)
    }

    async fn add_key(
        &self,
        alg: SigningAlg,
        rotate: bool,
        effects: &Effects,
    ) -> Result<(), OidcInternal> {
        let sealer = self.ctx.signing_sealer.clone();
        let now = self.ctx.now();
        let row = tokio::task::spawn_blocking(move || signing::generate(alg, &sealer, now))
            .await
            .map_err(|e| OidcInternal::Signing(SigningError::Generate(e.to_string())))??;
        self.ctx
            .store
            .add_signing_key(&row, rotate, effects)
            .await?;
        Ok(())
    }

    /// The JWKS document (`/oauth2/jwks`).
    pub async fn jwks(&self) -> Result<Value, OidcInternal> {
        Ok(signing::jwks(&self.published_keys().await?))
    }

    /// The current signer of `alg`.
    async fn signer(&self, alg: SigningAlg) -> Result<Arc<Signer>, OidcInternal> {
        let keys = self.published_keys().await?;
        let row = keys
            .iter()
            .find(|k| k.alg == alg.as_str() && k.retired_at.is_none())
            .ok_or_else(|| OidcInternal::Signing(SigningError::Stored("no current key".into())))?;
        if let Some(signer) = self
            .signers
            .read()
            .ok()
            .and_then(|cache| cache.get(&row.id).cloned())
        {
            return Ok(signer);
        }
        let signer = Arc::new(Signer::open(row, &self.ctx.signing_sealer)?);
        if let Ok(mut cache) = self.signers.write() {
            cache.insert(row.id.clone(), Arc::clone(&signer));
        }
        Ok(signer)
    }

    /// The claims of an ID token we signed (expired or not): an `id_token_hint`.
    pub async fn check_id_token_hint(&self, token: &str) -> Result<Option<Value>, OidcInternal> {
        // Retired keys are no longer listed once their tokens expired: look further back.
        let keys = self.ctx.store.signing_keys(Timestamp::from_unix(0)).await?;
        Ok(signing::verify_ignoring_expiry(
            token,
            &keys,
            self.issuer_url(),
        ))
    }

    /// `tessera admin rotate-signing-key`: new current keys; the old ones stay published
    /// until their tokens expire.
    pub(crate) async fn rotate_keys(&self) -> Result<Vec<String>, OidcInternal> {
        for alg in SigningAlg::ALL {
            let event = NewEvent {
                account_id: None,
                user_id: None,
                email: None,
                kind: EventKind::OidcSigningKeyRotated,
                meta: crate::operator::operator_meta(),
                detail: json!({ "alg": alg.as_str() }),
                at: self.ctx.now(),
            };
            self.add_key(alg, true, &Effects::event(event)).await?;
        }
        let keys = self.published_keys().await?;
        Ok(keys
            .into_iter()
            .filter(|k| k.retired_at.is_none())
            .map(|k| format!("{} {}", k.alg, k.id))
            .collect())
    }

    /// The claims about `user` that `scope` opens, in ID tokens and at userinfo.
    fn user_claims(
        &self,
        user: &User,
        account: &Account,
        scope: &str,
    ) -> serde_json::Map<String, Value> {
        let mut claims = serde_json::Map::new();
        claims.insert("sub".into(), json!(user.id.to_string()));
        let scopes: Vec<&str> = scope.split(' ').collect();
        if scopes.contains(&"email") {
            claims.insert("email".into(), json!(user.email.as_str()));
            // Every address is proved: by the sign-up link, the invitation, or the operator.
            claims.insert("email_verified".into(), json!(true));
        }
        if scopes.contains(&"profile") {
            claims.insert("name".into(), json!(user.name));
        }
        claims.insert("tessera_account".into(), json!(account.id.to_string()));
        claims.insert("tessera_account_name".into(), json!(account.name));
        claims.insert("tessera_role".into(), json!(user.role.as_str()));
        claims
    }

    fn event(&self, user: &User, kind: EventKind, meta: &RequestMeta, detail: Value) -> NewEvent {
        NewEvent::for_user(user, kind, meta, self.ctx.now()).with_detail(detail)
    }
}

/// The server failed (database, a key): a 500, logged, never shown.
#[derive(Debug, thiserror::Error)]
pub enum OidcInternal {
    #[error(transparent)]
    Internal(#[from] Internal),
    #[error(transparent)]
    Signing(#[from] SigningError),
}

impl From<crate::store::StoreError> for OidcInternal {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Internal(e.into())
    }
}

impl OidcInternal {
    /// Whether the database is only unavailable for now (503).
    pub fn is_unavailable(&self) -> bool {
        crate::store::is_unavailable(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amr_tells_how_the_session_was_authenticated() {
        assert_eq!(amr(None), ["pwd"]);
        assert_eq!(amr(Some(SignInMethod::Password)), ["pwd"]);
        assert_eq!(amr(Some(SignInMethod::TrustedDevice)), ["pwd"]);
        assert_eq!(
            amr(Some(SignInMethod::SecondStep(Method::Totp))),
            ["pwd", "otp", "mfa"]
        );
        assert_eq!(
            amr(Some(SignInMethod::SecondStep(Method::EmailCode))),
            ["pwd", "otp"]
        );
        assert_eq!(
            amr(Some(SignInMethod::SecondStep(Method::WebAuthn))),
            ["pwd", "hwk", "mfa"]
        );
        assert_eq!(amr(Some(SignInMethod::Passkey)), ["hwk", "mfa"]);
        assert_eq!(amr(Some(SignInMethod::Sso)), ["sso"]);
        for method in [
            SignInMethod::Password,
            SignInMethod::Invitation,
            SignInMethod::TrustedDevice,
            SignInMethod::Passkey,
            SignInMethod::Sso,
            SignInMethod::SecondStep(Method::Totp),
            SignInMethod::SecondStep(Method::WebAuthn),
            SignInMethod::SecondStep(Method::RecoveryCode),
            SignInMethod::SecondStep(Method::EmailCode),
        ] {
            assert_eq!(
                SignInMethod::parse(method.as_str()),
                Some(method),
                "{method:?}"
            );
        }
        assert_eq!(acr(&["pwd", "otp", "mfa"]), "2");
        assert_eq!(acr(&["pwd"]), "1");
    }
}
