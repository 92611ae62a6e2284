//! The identity provider adapter (SPEC §12): the core's [`IdentityProvider`] port spoken in
//! OpenID Connect with the `openidconnect` crate over reqwest (rustls). Discovery, the
//! authorization URL (code flow, PKCE S256, `state`, `nonce`), the code exchange and every
//! check of the ID token (signature against the provider's JWKS, `iss`, `aud`, `exp`,
//! `nonce`) are the crate's; nothing here reads a JWT by hand.
//!
//! Every call has a timeout ([`CALL_TIMEOUT`]) and follows no redirects, so a provider that is
//! down or slow is an error in words, never a hang.

use async_trait::async_trait;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, TokenResponse,
};
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;
use tessera_core::sso::{
    AuthorizationRequest, IdentityProvider, ProviderClient, ProviderError, VerifiedIdentity,
};

/// The most any one call to a provider may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// OpenID Connect over HTTP, with `{public_url}/login/sso/callback` as the redirect URI.
pub struct OidcProvider {
    http: openidconnect::reqwest::Client,
    redirect_uri: RedirectUrl,
}

impl OidcProvider {
    pub fn new(public_url: &str) -> anyhow::Result<Self> {
        let http = openidconnect::reqwest::Client::builder()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .connect_timeout(CALL_TIMEOUT / 2)
            .timeout(CALL_TIMEOUT)
            .build()?;
        let redirect_uri = RedirectUrl::new(format!(
            "{}/login/sso/callback",
            public_url.trim_end_matches('/')
        ))?;
        Ok(Self { http, redirect_uri })
    }

    async fn metadata(&self, issuer: &str) -> Result<CoreProviderMetadata, ProviderError> {
        let url = IssuerUrl::new(issuer.to_owned())
            .map_err(|_| ProviderError::Unreachable("the issuer is not a URL".into()))?;
        let discovery = CoreProviderMetadata::discover_async(url, &self.http);
        match tokio::time::timeout(CALL_TIMEOUT, discovery).await {
            Err(_) => Err(ProviderError::Unreachable(format!(
                "{issuer} did not answer within {} seconds",
                CALL_TIMEOUT.as_secs()
            ))),
            Ok(Ok(metadata)) => Ok(metadata),
            Ok(Err(openidconnect::DiscoveryError::Request(e))) => {
                tracing::warn!(issuer, error = %e, "identity provider unreachable");
                Err(ProviderError::Unreachable(format!(
                    "{issuer} could not be reached"
                )))
            }
            Ok(Err(e)) => {
                tracing::warn!(issuer, error = %e, "identity provider discovery failed");
                Err(ProviderError::Unreachable(format!(
                    "{issuer}/.well-known/openid-configuration is not a usable OpenID Connect \
                     discovery document"
                )))
            }
        }
    }

    async fn client(
        &self,
        client: &ProviderClient<'_>,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        ProviderError,
    > {
        let metadata = self.metadata(client.issuer).await?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(client.client_id.to_owned()),
            Some(ClientSecret::new(
                client.client_secret.expose_secret().to_owned(),
            )),
        )
        .set_redirect_uri(self.redirect_uri.clone()))
    }
}

#[async_trait]
impl IdentityProvider for OidcProvider {
    async fn discover(&self, issuer: &str) -> Result<(), ProviderError> {
        self.metadata(issuer).await.map(|_| ())
    }

    async fn authorization(
        &self,
        client: &ProviderClient<'_>,
        state: &str,
    ) -> Result<AuthorizationRequest, ProviderError> {
        let oidc = self.client(client).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = state.to_owned();
        let (url, _, nonce) = oidc
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state),
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".to_owned()))
            .add_scope(Scope::new("profile".to_owned()))
            .set_pkce_challenge(challenge)
            .url();
        Ok(AuthorizationRequest {
            url: url.to_string(),
            nonce: SecretString::from(nonce.secret().to_owned()),
            pkce_verifier: SecretString::from(verifier.secret().to_owned()),
        })
    }

    async fn exchange(
        &self,
        client: &ProviderClient<'_>,
        code: &str,
        pkce_verifier: &SecretString,
        nonce: &SecretString,
    ) -> Result<VerifiedIdentity, ProviderError> {
        let oidc = self.client(client).await?;
        let request = oidc
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|_| ProviderError::Unreachable("the provider names no token endpoint".into()))?
            .set_pkce_verifier(PkceCodeVerifier::new(
                pkce_verifier.expose_secret().to_owned(),
            ));
        let response =
            match tokio::time::timeout(CALL_TIMEOUT, request.request_async(&self.http)).await {
                Err(_) => {
                    return Err(ProviderError::Unreachable(
                        "its token endpoint did not answer in time".into(),
                    ));
                }
                Ok(Ok(response)) => response,
                Ok(Err(RequestTokenError::ServerResponse(e))) => {
                    return Err(ProviderError::Rejected(format!(
                        "the code exchange was refused ({})",
                        e.error()
                    )));
                }
                Ok(Err(RequestTokenError::Request(e))) => {
                    tracing::warn!(error = %e, "identity provider token endpoint unreachable");
                    return Err(ProviderError::Unreachable(
                        "its token endpoint could not be reached".into(),
                    ));
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "identity provider token answer unusable");
                    return Err(ProviderError::Rejected(
                        "its token endpoint gave an answer Tessera cannot use".into(),
                    ));
                }
            };
        let id_token = response
            .id_token()
            .ok_or_else(|| ProviderError::InvalidToken("the provider sent no ID token".into()))?;
        let claims = id_token
            .claims(
                &oidc.id_token_verifier(),
                &Nonce::new(nonce.expose_secret().to_owned()),
            )
            .map_err(|e| {
                tracing::warn!(error = %e, "an ID token failed its checks");
                ProviderError::InvalidToken(format!("the ID token failed a check ({e})"))
            })?;
        Ok(VerifiedIdentity {
            subject: claims.subject().as_str().to_owned(),
            email: claims.email().map(|e| e.as_str().to_owned()),
            email_verified: claims.email_verified() == Some(true),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_owned()),
        })
    }
}
