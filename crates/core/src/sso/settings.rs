//! The team's SSO settings (`/account/sso`, SPEC §12): read by managers, changed by a
//! [`RecoveryAdmin`] (a power that amounts to account recovery: whoever controls the
//! provider can sign in as any user of the allowed domains), audited. The client secret is
//! sealed under the master key and never shown again; leaving it out of a change keeps it.

use super::{Sso, SsoConnection, SsoError};
use crate::email::Email;
use crate::model::{EventKind, RequestMeta, SsoTwoFactor};
use crate::principal::{Manager, RecoveryAdmin};
use crate::store::{Effects, StoreError, Unique};
use crate::validate::FieldError;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

/// At most this many email domains per team.
const MAX_DOMAINS: usize = 50;

/// The settings as a manager fills them in.
pub struct SsoSettingsInput {
    pub issuer: String,
    pub client_id: String,
    /// `None` (or empty) keeps the stored secret; required the first time.
    pub client_secret: Option<SecretString>,
    pub email_domains: Vec<String>,
    pub jit_provisioning: bool,
    /// `exempt` or `disable_sso`.
    pub sso_two_factor: String,
}

/// The settings as they are shown: never the secret.
#[derive(Clone, Debug)]
pub struct SsoSettings {
    pub issuer: String,
    pub client_id: String,
    pub email_domains: Vec<String>,
    pub jit_provisioning: bool,
    pub sso_two_factor: SsoTwoFactor,
    pub updated_at: crate::Timestamp,
}

impl SsoSettings {
    fn new(connection: SsoConnection, mode: SsoTwoFactor) -> Self {
        Self {
            issuer: connection.issuer,
            client_id: connection.client_id,
            email_domains: connection.email_domains,
            jit_provisioning: connection.jit_provisioning,
            sso_two_factor: mode,
            updated_at: connection.updated_at,
        }
    }
}

/// An issuer URL: https, or http for the machine itself (a provider under test); no query or
/// fragment (OpenID Connect Discovery §2).
pub(crate) fn issuer(input: &str) -> Result<String, FieldError> {
    let field = "issuer";
    let issuer = input.trim();
    let rest = if let Some(rest) = issuer.strip_prefix("https://") {
        rest
    } else if let Some(rest) = issuer.strip_prefix("http://") {
        let host = rest.split(['/', ':']).next().unwrap_or_default();
        if !matches!(host, "localhost" | "127.0.0.1") && !rest.starts_with("[::1]") {
            return Err(FieldError::new(
                field,
                "must be an https:// URL (http:// only for localhost)",
            ));
        }
        rest
    } else {
        return Err(FieldError::new(field, "must be an https:// URL"));
    };
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty()
        || issuer.len() > 500
        || issuer.contains(['?', '#', ' '])
        || issuer.chars().any(|c| c.is_control())
    {
        return Err(FieldError::new(
            field,
            "must be a URL with a host and no query or fragment",
        ));
    }
    Ok(issuer.to_owned())
}

fn client_id(input: &str) -> Result<String, FieldError> {
    let id = input.trim();
    if id.is_empty() || id.len() > 255 || id.chars().any(|c| c.is_control() || c == ' ') {
        return Err(FieldError::new(
            "client_id",
            "must be the client id the provider gave, without spaces (at most 255 characters)",
        ));
    }
    Ok(id.to_owned())
}

/// Lowercase, without repeats; each a domain an address could have.
fn domains(input: &[String]) -> Result<Vec<String>, FieldError> {
    let field = "email_domains";
    let mut domains: Vec<String> = Vec::new();
    for raw in input {
        let domain = raw.trim().trim_start_matches('@').to_lowercase();
        let plausible = Email::parse(&format!("x@{domain}")).is_ok()
            && domain.contains('.')
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '.');
        if !plausible {
            return Err(FieldError::new(
                field,
                format!("{:?} is not an email domain (like example.com)", raw.trim()),
            ));
        }
        if !domains.contains(&domain) {
            domains.push(domain);
        }
    }
    if domains.is_empty() {
        return Err(FieldError::new(field, "give at least one email domain"));
    }
    if domains.len() > MAX_DOMAINS {
        return Err(FieldError::new(
            field,
            format!("at most {MAX_DOMAINS} domains"),
        ));
    }
    Ok(domains)
}

impl Sso {
    /// The team's settings, if SSO is set up.
    pub async fn settings(&self, manager: &Manager) -> Result<Option<SsoSettings>, SsoError> {
        let account = manager.account();
        Ok(self
            .0
            .store
            .sso_connection(account.id)
            .await?
            .map(|c| SsoSettings::new(c, account.sso_two_factor)))
    }

    /// Connects (or reconnects) the team's identity provider, after finding its discovery
    /// document.
    pub async fn configure(
        &self,
        admin: &RecoveryAdmin,
        input: SsoSettingsInput,
        meta: &RequestMeta,
    ) -> Result<SsoSettings, SsoError> {
        let ctx = &self.0;
        let account = admin.account();
        let issuer = issuer(&input.issuer)?;
        let client_id = client_id(&input.client_id)?;
        let email_domains = domains(&input.email_domains)?;
        let mode: SsoTwoFactor = input.sso_two_factor.trim().parse().map_err(|_| {
            FieldError::new("sso_two_factor", "must be \"exempt\" or \"disable_sso\"")
        })?;
        let secret = input
            .client_secret
            .filter(|s| !s.expose_secret().trim().is_empty());
        if secret
            .as_ref()
            .is_some_and(|s| s.expose_secret().len() > 1000)
        {
            return Err(FieldError::new("client_secret", "must be at most 1000 characters").into());
        }
        let existing = ctx.store.sso_connection(account.id).await?;
        let associated = account.id.to_string();
        let sealed = match (&secret, &existing) {
            (Some(secret), _) => ctx.sso_sealer.seal(
                secret.expose_secret().trim().as_bytes(),
                associated.as_bytes(),
            ),
            (None, Some(existing)) => existing.client_secret_sealed.clone(),
            (None, None) => {
                return Err(FieldError::new(
                    "client_secret",
                    "give the client secret the provider issued",
                )
                .into());
            }
        };
        if let Err(e) = ctx.identity_provider.discover(&issuer).await {
            return Err(FieldError::new(
                "issuer",
                format!("Tessera could not use this provider: {e}"),
            )
            .into());
        }
        let now = ctx.now();
        let connection = SsoConnection {
            account_id: account.id,
            issuer,
            client_id,
            client_secret_sealed: sealed,
            email_domains,
            jit_provisioning: input.jit_provisioning,
            updated_at: now,
        };
        let event = admin
            .event(EventKind::SsoSettingsChanged, meta, now)
            .with_detail(json!({
                "issuer": connection.issuer,
                "client_id": connection.client_id,
                "email_domains": connection.email_domains,
                "jit_provisioning": connection.jit_provisioning,
                "sso_two_factor": mode.as_str(),
                "client_secret_changed": secret.is_some(),
                "connected": existing.is_none(),
            }));
        let effects = Effects::event(event).and(admin.restarted(now));
        match ctx
            .store
            .save_sso_connection(&connection, mode, &effects)
            .await
        {
            Ok(()) => Ok(SsoSettings::new(connection, mode)),
            Err(StoreError::Conflict(Unique::SsoDomain)) => Err(FieldError::new(
                "email_domains",
                "one of these domains signs in through another team's provider",
            )
            .into()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_are_https_or_local_http() {
        assert!(issuer("https://id.example.com/realms/acme").is_ok());
        assert!(issuer("http://localhost:8080/").is_ok());
        assert!(issuer("http://127.0.0.1:9/x").is_ok());
        assert!(issuer("http://id.example.com").is_err());
        assert!(issuer("ftp://id.example.com").is_err());
        assert!(issuer("https://").is_err());
        assert!(issuer("https://id.example.com/?x=1").is_err());
    }

    #[test]
    fn domains_are_lowercase_once_and_plausible() {
        let given = ["Example.COM".to_owned(), "@example.com".to_owned()];
        assert_eq!(domains(&given).unwrap(), vec!["example.com"]);
        assert!(domains(&[]).is_err());
        assert!(domains(&["localhost".to_owned()]).is_err());
        assert!(domains(&["a b.com".to_owned()]).is_err());
        assert!(domains(&["x@y.com".to_owned()]).is_err());
    }
}
