//! A security key's assertion, given at the second step (`POST /login/verify`
//! `{challenge_token, webauthn}`).

use super::{Ceremony, CeremonyKey, KeyUse, passkey_of, read_json};
use crate::Timestamp;
use crate::ctx::{Ctx, Internal};
use crate::factors::{Checked, Method, Proof, SecondFactor};
use crate::model::{ChallengeKind, RequestMeta};
use crate::second_step::ChallengeContext;
use async_trait::async_trait;
use webauthn_rs::prelude::{PasskeyAuthentication, PublicKeyCredential, WebauthnError};

pub(crate) struct SecurityKey;

#[async_trait]
impl SecondFactor for SecurityKey {
    fn method(&self) -> Method {
        Method::WebAuthn
    }

    fn answers(&self, kind: ChallengeKind) -> bool {
        kind == ChallengeKind::TwoFactor
    }

    fn read(&self, _ctx: &Ctx, answer: &str) -> Option<String> {
        read_json::<PublicKeyCredential>("webauthn", answer)
            .ok()
            .map(|_| answer.to_owned())
    }

    /// Verifies the assertion against the challenge's ceremony and the user's own key; a key
    /// of someone else's, a removed one, or an answer to another challenge is no proof (the
    /// attempt counts). The counter is checked here against the key as it was when the
    /// challenge opened, and by the store's spend against the key as it is.
    async fn check(
        &self,
        ctx: &Ctx,
        challenge: &ChallengeContext,
        answer: &str,
        _meta: &RequestMeta,
        now: Timestamp,
    ) -> Result<Checked, Internal> {
        let Some(rp) = ctx.webauthn.as_ref() else {
            return Ok(Checked::default());
        };
        let Ok(assertion) = read_json::<PublicKeyCredential>("webauthn", answer) else {
            return Ok(Checked::default());
        };
        let key = CeremonyKey::SecondStep(challenge.challenge.id);
        let Some(state) = ctx.store.get_ceremony(&key, now).await? else {
            return Ok(Checked::default());
        };
        let ceremony = Ceremony::<PasskeyAuthentication>::from_json(&state)?;
        let Some(stored) = ctx
            .store
            .find_security_key(assertion.get_credential_id())
            .await?
            .filter(|k| k.user_id == challenge.user.id)
        else {
            return Ok(Checked::default());
        };
        match rp
            .webauthn
            .finish_passkey_authentication(&assertion, &ceremony.state)
        {
            Ok(result) => {
                let mut passkey = passkey_of(&stored)?;
                passkey.update_credential(&result);
                let credential = serde_json::to_string(&passkey)
                    .map_err(|e| crate::store::StoreError::Corrupt(format!("security key: {e}")))?;
                Ok(Checked {
                    proof: Some(Proof::SecurityKey(KeyUse {
                        key: stored.id,
                        user: stored.user_id,
                        counter: result.counter(),
                        credential,
                        now,
                    })),
                    ..Checked::default()
                })
            }
            Err(WebauthnError::CredentialPossibleCompromise) => Ok(Checked {
                counter_refused: Some(stored.id),
                ..Checked::default()
            }),
            Err(e) => {
                tracing::info!(user_id = %challenge.user.id, error = %e, "security key assertion refused");
                Ok(Checked::default())
            }
        }
    }
}
