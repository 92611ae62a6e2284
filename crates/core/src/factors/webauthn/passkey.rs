//! Passkey sign-in (SPEC §10): a discoverable credential, with user verification, signs in
//! without a password, and satisfies the team's 2FA requirement (the key is a factor, the
//! verification on it another).
//!
//! Start keeps the ceremony's state under the hash of a token the client holds (10 minutes);
//! finish takes it (once: of two racing finishes one gets it), finds the key by the
//! credential id and the user by the user handle the authenticator returned (both must
//! match), has webauthn-rs verify the assertion with user verification, and accepts it only
//! if the key's counter rises, in the transaction that opens the session. Failures count
//! against the client address as wrong passwords do (50 in 10 minutes, then 429).

use super::{Ceremony, CeremonyKey, KeyUse, RelyingParty, passkey_of, read_json};
use crate::Timestamp;
use crate::crypto::Token;
use crate::ctx::{Ctx, Internal, internal_from};
use crate::model::{EventKind, NewEvent, RequestMeta, SecurityKeyId, User};
use crate::sessions::{SignInMethod, SignedIn};
use crate::store::{Effects, StoreError};
use crate::throttle::RetryAt;
use crate::validate::FieldError;
use serde_json::{Value, json};
use std::sync::Arc;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, PublicKeyCredential, WebauthnError,
};

#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("passkeys are not available on this server (its public URL needs a domain name)")]
    Unavailable,
    /// The ceremony expired, or was used already.
    #[error("this sign-in has expired; start again")]
    ChallengeExpired,
    /// Not a key of ours, not its user, or an answer that does not verify.
    #[error("that passkey was not accepted")]
    Rejected,
    #[error("too many attempts")]
    TooManyAttempts { retry_at: Timestamp },
    #[error(transparent)]
    Internal(#[from] Internal),
}

internal_from!(PasskeyError);

/// A passkey sign-in begun: the browser's request options and the token that finishes it.
pub struct PasskeyStart {
    pub token: Token,
    /// `{"publicKey": PublicKeyCredentialRequestOptions}` with no credentials listed: the
    /// authenticator offers the ones it holds for this site.
    pub options: Value,
    pub expires_at: Timestamp,
}

/// Passkey sign-in. Cheap to clone.
#[derive(Clone)]
pub struct Passkeys(pub(crate) Arc<Ctx>);

impl Passkeys {
    /// Starts a passkey sign-in. Anyone may, so each start (a stored ceremony) counts against
    /// the client's address like a failed sign-in; a sign-in that succeeds gives it back.
    pub async fn start(&self, meta: &RequestMeta) -> Result<PasskeyStart, PasskeyError> {
        let ctx = &self.0;
        let rp = rp(ctx)?;
        if let Err(RetryAt(retry_at)) = ctx.ip_admit(meta, ctx.now()).await? {
            return Err(PasskeyError::TooManyAttempts { retry_at });
        }
        let (mut options, state) =
            rp.webauthn
                .start_discoverable_authentication()
                .map_err(|e| {
                    tracing::error!(error = %e, "cannot start a passkey sign-in");
                    PasskeyError::Rejected
                })?;
        // A button asks for a passkey now; conditional mediation (autofill) is the page's
        // choice to make.
        options.mediation = None;
        let options = serde_json::to_value(&options)
            .map_err(|e| StoreError::Corrupt(format!("request options: {e}")))?;
        let now = ctx.now();
        let expires_at = now.plus_secs(ctx.policy.challenge_lifetime_secs);
        let token = Token::generate();
        let ceremony = Ceremony::<DiscoverableAuthentication> {
            state,
            options: options.clone(),
        };
        ctx.store
            .put_ceremony(
                &CeremonyKey::Passkey(token.hash()),
                None,
                &ceremony.to_json()?,
                expires_at,
            )
            .await?;
        Ok(PasskeyStart {
            token,
            options,
            expires_at,
        })
    }

    /// Signs in with the authenticator's assertion (`credential`, the JSON of
    /// `PublicKeyCredential.toJSON()`) to the ceremony behind `token`.
    pub async fn finish(
        &self,
        token: &str,
        credential: &str,
        meta: &RequestMeta,
    ) -> Result<SignedIn, PasskeyError> {
        let ctx = &self.0;
        let rp = rp(ctx)?;
        let assertion: PublicKeyCredential = read_json("credential", credential)?;
        let now = ctx.now();
        let key = CeremonyKey::Passkey(Token::from_client(token).hash());
        // Its start was counted against the address; a token that opens no ceremony counts
        // by itself.
        let Some(state) = ctx.store.take_ceremony(&key, now).await? else {
            if let Err(RetryAt(retry_at)) = ctx.ip_admit(meta, now).await? {
                return Err(PasskeyError::TooManyAttempts { retry_at });
            }
            return Err(PasskeyError::ChallengeExpired);
        };
        let ceremony = Ceremony::<DiscoverableAuthentication>::from_json(&state)?;
        let Ok((handle, credential_id)) =
            rp.webauthn.identify_discoverable_authentication(&assertion)
        else {
            return Err(PasskeyError::Rejected);
        };
        let stored = ctx.store.find_security_key(credential_id).await?;
        let user = match &stored {
            Some(k) => ctx.store.get_user(k.user_id).await?,
            None => None,
        };
        let (Some(stored), Some(user)) = (stored, user) else {
            return Err(PasskeyError::Rejected);
        };
        if super::user_handle(&user) != handle {
            // A user handle that is not the key's user: refused, and told to its owner.
            self.refused(&user, stored.id, "user_handle", meta, now)
                .await?;
            return Err(PasskeyError::Rejected);
        }
        let mut passkey = passkey_of(&stored)?;
        let result = match rp.webauthn.finish_discoverable_authentication(
            &assertion,
            ceremony.state,
            &[DiscoverableKey::from(&passkey)],
        ) {
            Ok(result) => result,
            Err(WebauthnError::CredentialPossibleCompromise) => {
                self.counter_refused(&user, stored.id, meta, now).await?;
                return Err(PasskeyError::Rejected);
            }
            Err(e) => {
                tracing::info!(user_id = %user.id, error = %e, "passkey sign-in refused");
                self.refused(&user, stored.id, "assertion", meta, now)
                    .await?;
                return Err(PasskeyError::Rejected);
            }
        };
        passkey.update_credential(&result);
        let used = KeyUse {
            key: stored.id,
            user: user.id,
            counter: result.counter(),
            credential: serde_json::to_string(&passkey)
                .map_err(|e| StoreError::Corrupt(format!("security key: {e}")))?,
            now,
        };
        let account = ctx.account_of(&user).await?;
        let opening = ctx.opening(
            user.clone(),
            account,
            true,
            SignInMethod::Passkey,
            meta,
            now,
        );
        let hash = opening.token.hash();
        if !ctx
            .store
            .sign_in_with_key(&used, (&opening.context.session, &hash), &opening.effects)
            .await?
        {
            self.counter_refused(&user, stored.id, meta, now).await?;
            return Err(PasskeyError::Rejected);
        }
        ctx.ip_refund(meta).await?;
        Ok(opening.signed_in())
    }

    async fn refused(
        &self,
        user: &User,
        key: SecurityKeyId,
        reason: &str,
        meta: &RequestMeta,
        now: Timestamp,
    ) -> Result<(), Internal> {
        let event = NewEvent::for_user(user, EventKind::PasskeySignInFailed, meta, now)
            .with_detail(json!({ "key_id": key.to_string(), "reason": reason }));
        self.0.store.record(&Effects::event(event)).await?;
        Ok(())
    }

    async fn counter_refused(
        &self,
        user: &User,
        key: SecurityKeyId,
        meta: &RequestMeta,
        now: Timestamp,
    ) -> Result<(), Internal> {
        let event = NewEvent::for_user(user, EventKind::SecurityKeyCounterRefused, meta, now)
            .with_detail(json!({ "key_id": key.to_string(), "method": "passkey" }));
        self.0.store.record(&Effects::event(event)).await?;
        Ok(())
    }
}

fn rp(ctx: &Ctx) -> Result<&RelyingParty, PasskeyError> {
    ctx.webauthn.as_ref().ok_or(PasskeyError::Unavailable)
}
