//! Relying parties (SPEC §13): registered by the operator (`tessera admin oidc-clients`, for
//! every team's users) or by a team's owner (`/account/oidc-clients`, step-up, for the team's
//! users only). A confidential client's secret is 256 random bits, shown once and stored as
//! its SHA-256; a public client has none and must use PKCE. Redirect URIs are absolute
//! `https://` (or `http://` for development) URLs without a fragment, matched exactly.

use super::signing::SigningAlg;
use super::{ClientRow, OidcInternal, OidcProvider};
use crate::crypto::{Token, random_bytes, secure_eq};
use crate::model::{AccountId, EventKind, NewEvent, RequestMeta, Role};
use crate::principal::{Manager, Recent};
use crate::store::Effects;
use crate::validate::{self, FieldError};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

/// At most this many redirect URIs per client.
const MAX_URIS: usize = 10;

/// What registering a client takes.
#[derive(Clone, Debug, Default)]
pub struct NewClient {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// A public client (a single-page or native app): no secret, PKCE required.
    pub public: bool,
    /// `RS256` (default) or `ES256`.
    pub id_token_alg: Option<String>,
}

/// A client just registered, with its secret (shown this once).
pub struct Registered {
    pub client: ClientRow,
    pub secret: Option<Token>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Invalid(#[from] FieldError),
    #[error("no such client")]
    NotFound,
    #[error("only the account owner can manage the team's OIDC clients")]
    OwnerOnly,
    #[error(transparent)]
    Internal(#[from] OidcInternal),
}

impl From<crate::store::StoreError> for ClientError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Internal(e.into())
    }
}

/// One redirect URI, as registered: an absolute http(s) URL with a host and no fragment.
fn redirect_uri(field: &'static str, uri: &str) -> Result<String, FieldError> {
    let uri = uri.trim();
    let rest = uri
        .strip_prefix("https://")
        .or_else(|| uri.strip_prefix("http://"))
        .ok_or_else(|| FieldError::new(field, "must be an absolute https:// or http:// URL"))?;
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    if host.is_empty() || host.contains('@') {
        return Err(FieldError::new(field, "must name a host (and no user)"));
    }
    if uri.contains('#') {
        return Err(FieldError::new(field, "must not have a fragment"));
    }
    if uri.len() > 2000 || uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(FieldError::new(field, "is not a valid URL"));
    }
    Ok(uri.to_owned())
}

fn uris(
    field: &'static str,
    input: &[String],
    at_least_one: bool,
) -> Result<Vec<String>, FieldError> {
    if at_least_one && input.is_empty() {
        return Err(FieldError::new(field, "at least one is required"));
    }
    if input.len() > MAX_URIS {
        return Err(FieldError::new(field, "at most 10"));
    }
    let mut out: Vec<String> = Vec::new();
    for uri in input {
        let uri = redirect_uri(field, uri)?;
        if !out.contains(&uri) {
            out.push(uri);
        }
    }
    Ok(out)
}

/// The SHA-256 of a client secret.
fn secret_hash(secret: &str) -> Vec<u8> {
    Token::from_client(secret).hash().as_bytes().to_vec()
}

/// Whether `secret` is `client`'s (constant time).
pub(crate) fn secret_matches(client: &ClientRow, secret: &str) -> bool {
    client
        .secret_hash
        .as_deref()
        .is_some_and(|hash| secure_eq(hash, &secret_hash(secret)))
}

impl OidcProvider {
    /// A client ready to be stored, and its secret.
    fn new_client(
        &self,
        account: Option<AccountId>,
        new: &NewClient,
    ) -> Result<Registered, ClientError> {
        let name = validate::name("name", &new.name)?;
        let redirect_uris = uris("redirect_uris", &new.redirect_uris, true)?;
        let post_logout_redirect_uris = uris(
            "post_logout_redirect_uris",
            &new.post_logout_redirect_uris,
            false,
        )?;
        let alg = match new.id_token_alg.as_deref() {
            None | Some("") => SigningAlg::Rs256,
            Some(text) => SigningAlg::parse(text)
                .ok_or_else(|| FieldError::new("id_token_alg", "must be RS256 or ES256"))?,
        };
        let secret = (!new.public).then(Token::generate);
        Ok(Registered {
            client: ClientRow {
                id: format!("tsc_{}", URL_SAFE_NO_PAD.encode(random_bytes::<15>())),
                account_id: account,
                name,
                secret_hash: secret.as_ref().map(|s| secret_hash(s.expose())),
                redirect_uris,
                post_logout_redirect_uris,
                id_token_alg: alg.as_str().to_owned(),
                created_at: self.ctx.now(),
            },
            secret,
        })
    }

    fn client_event(&self, kind: EventKind, client: &ClientRow, meta: &RequestMeta) -> NewEvent {
        NewEvent {
            account_id: client.account_id,
            user_id: None,
            email: None,
            kind,
            meta: meta.clone(),
            detail: json!({ "client_id": client.id, "name": client.name }),
            at: self.ctx.now(),
        }
    }

    /// `tessera admin oidc-clients add`: a client for every team's users.
    pub(crate) async fn add_operator_client(
        &self,
        new: &NewClient,
    ) -> Result<Registered, ClientError> {
        let registered = self.new_client(None, new)?;
        let meta = crate::operator::operator_meta();
        let event = self.client_event(EventKind::OidcClientCreated, &registered.client, &meta);
        self.ctx
            .store
            .create_client(&registered.client, &Effects::event(event))
            .await?;
        Ok(registered)
    }

    /// `tessera admin oidc-clients list`: the operator's clients.
    pub(crate) async fn operator_clients(&self) -> Result<Vec<ClientRow>, ClientError> {
        Ok(self.ctx.store.list_clients(None).await?)
    }

    /// `tessera admin oidc-clients remove`: one of the operator's clients, with its tokens.
    pub(crate) async fn remove_operator_client(&self, id: &str) -> Result<(), ClientError> {
        let client = self
            .ctx
            .store
            .find_client(id)
            .await?
            .filter(|c| c.account_id.is_none())
            .ok_or(ClientError::NotFound)?;
        let meta = crate::operator::operator_meta();
        let event = self.client_event(EventKind::OidcClientRemoved, &client, &meta);
        if self
            .ctx
            .store
            .remove_client(id, None, &Effects::event(event))
            .await?
        {
            Ok(())
        } else {
            Err(ClientError::NotFound)
        }
    }

    /// The owner, or [`ClientError::OwnerOnly`].
    fn owner(&self, manager: &Manager) -> Result<AccountId, ClientError> {
        match manager.user().role {
            Role::Owner => Ok(manager.account().id),
            Role::Admin | Role::Member => Err(ClientError::OwnerOnly),
        }
    }

    /// A team's clients.
    pub async fn team_clients(&self, manager: &Manager) -> Result<Vec<ClientRow>, ClientError> {
        let account = self.owner(manager)?;
        Ok(self.ctx.store.list_clients(Some(account)).await?)
    }

    /// The owner registers a client for the team's users (a sensitive action, SPEC §9).
    pub async fn add_team_client(
        &self,
        owner: &Recent<Manager>,
        new: &NewClient,
        meta: &RequestMeta,
    ) -> Result<Registered, ClientError> {
        let account = self.owner(owner)?;
        let registered = self.new_client(Some(account), new)?;
        let mut event = self.client_event(EventKind::OidcClientCreated, &registered.client, meta);
        event.user_id = Some(owner.user().id);
        event.email = Some(owner.user().email.as_str().to_owned());
        let effects = Effects::event(event).and(owner.restarted(self.ctx.now()));
        self.ctx
            .store
            .create_client(&registered.client, &effects)
            .await?;
        Ok(registered)
    }

    /// The owner removes one of the team's clients, with its tokens.
    pub async fn remove_team_client(
        &self,
        owner: &Recent<Manager>,
        id: &str,
        meta: &RequestMeta,
    ) -> Result<(), ClientError> {
        let account = self.owner(owner)?;
        let client = self
            .ctx
            .store
            .find_client(id)
            .await?
            .filter(|c| c.account_id == Some(account))
            .ok_or(ClientError::NotFound)?;
        let mut event = self.client_event(EventKind::OidcClientRemoved, &client, meta);
        event.user_id = Some(owner.user().id);
        event.email = Some(owner.user().email.as_str().to_owned());
        let effects = Effects::event(event).and(owner.restarted(self.ctx.now()));
        if self
            .ctx
            .store
            .remove_client(id, Some(account), &effects)
            .await?
        {
            Ok(())
        } else {
            Err(ClientError::NotFound)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_are_absolute_http_urls_without_fragments() {
        for good in [
            "https://app.example.com/callback",
            "http://127.0.0.1:8080/auth?x=1",
        ] {
            assert_eq!(redirect_uri("r", good).unwrap(), good);
        }
        for bad in [
            "/callback",
            "javascript:alert(1)",
            "https://",
            "https://app.example.com/cb#x",
            "https://user@app.example.com/",
            "https://app.example.com/a b",
        ] {
            assert!(redirect_uri("r", bad).is_err(), "{bad}");
        }
    }
}
