//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): the application sends the
//! browser to `/oauth2/logout`; Tessera ends its session and the tokens issued on it, then
//! sends the browser back to a `post_logout_redirect_uri` registered for the application.

use super::{OidcInternal, OidcProvider};
use crate::model::{EventKind, RequestMeta};
use crate::principal::AnySession;
use crate::store::Effects;
use serde_json::{Value, json};

impl OidcProvider {
    /// Where the browser goes back to after logout: `uri` (with `state`) if it is registered
    /// for the client named by `client_id` or by the hint's audience; `None` otherwise.
    pub async fn logout_target(
        &self,
        client_id: Option<&str>,
        hint: Option<&Value>,
        uri: &str,
        state: Option<&str>,
    ) -> Result<Option<String>, OidcInternal> {
        let from_hint = hint.and_then(|h| h["aud"].as_str());
        let Some(client_id) = client_id.filter(|c| !c.is_empty()).or(from_hint) else {
            return Ok(None);
        };
        if from_hint.is_some_and(|aud| aud != client_id) {
            return Ok(None);
        }
        let Some(client) = self.ctx.store.find_client(client_id).await? else {
            return Ok(None);
        };
        if !client.post_logout_redirect_uris.iter().any(|u| u == uri) {
            return Ok(None);
        }
        Ok(Some(match state.filter(|s| !s.is_empty()) {
            None => uri.to_owned(),
            Some(state) => {
                let query = serde_urlencoded::to_string([("state", state)]).unwrap_or_default();
                let separator = if uri.contains('?') { '&' } else { '?' };
                format!("{uri}{separator}{query}")
            }
        }))
    }

    /// Revokes every token issued on the session (audited); the caller ends the session.
    pub async fn revoke_session_tokens(
        &self,
        session: &AnySession,
        client_id: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<u64, OidcInternal> {
        let event = self.event(
            session.user(),
            EventKind::OidcLogout,
            meta,
            json!({ "client_id": client_id }),
        );
        Ok(self
            .ctx
            .store
            .revoke_session_tokens(session.session().id, self.ctx.now(), &Effects::event(event))
            .await?)
    }
}
