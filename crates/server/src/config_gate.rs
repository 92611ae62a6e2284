//! The settings of SPEC §11, read with the rest of [`crate::config`]: trusted proxies, the
//! app's grants, the session cookie's domain and the origins `return_to` may lead to. Each
//! is checked at start-up, so a typo stops the service with the reason instead of quietly
//! trusting or refusing too much.

use anyhow::{Context, bail};
use serde::Deserialize;
use tessera_core::api_keys::{GrantCatalog, IpRule};

/// A list, as a TOML array or as one comma-separated string (the environment's form).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum StringList {
    Text(String),
    Items(Vec<String>),
}

impl StringList {
    pub(crate) fn items(self) -> Vec<String> {
        let items = match self {
            Self::Text(text) => text.split(',').map(str::to_owned).collect(),
            Self::Items(items) => items,
        };
        items
            .into_iter()
            .map(|i| i.trim().to_owned())
            .filter(|i| !i.is_empty())
            .collect()
    }
}

/// The resolved settings.
pub(crate) struct GateSettings {
    pub trusted_proxies: Vec<IpRule>,
    pub api_grants: GrantCatalog,
    pub cookie_domain: Option<String>,
    pub allowed_return_origins: Vec<String>,
}

pub(crate) fn resolve(
    trust_forwarded_for: Option<bool>,
    trusted_proxies: Option<Vec<String>>,
    api_grants: Option<Vec<String>>,
    cookie_domain: Option<String>,
    allowed_return_origins: Option<Vec<String>>,
) -> anyhow::Result<GateSettings> {
    if trust_forwarded_for == Some(true) {
        // It trusted the header from any peer; naming the proxies is the safe form.
        bail!(
            "TESSERA_TRUST_FORWARDED_FOR is replaced by TESSERA_TRUSTED_PROXIES: list the \
             addresses (or CIDR blocks) of the proxies in front of Tessera"
        );
    }
    let trusted_proxies = trusted_proxies
        .unwrap_or_default()
        .iter()
        .map(|text| IpRule::parse(text).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<_>>()
        .context("TESSERA_TRUSTED_PROXIES must list addresses or CIDR blocks")?;
    let api_grants = GrantCatalog::new(api_grants.unwrap_or_default())
        .map_err(anyhow::Error::msg)
        .context("TESSERA_API_GRANTS")?;
    let cookie_domain = match cookie_domain.map(|d| d.trim().trim_start_matches('.').to_owned()) {
        None => None,
        Some(d) if d.is_empty() => None,
        Some(d) => {
            let ok = d.contains('.')
                && d.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            if !ok {
                bail!("TESSERA_COOKIE_DOMAIN must be a domain name such as example.com, not {d:?}");
            }
            Some(d.to_ascii_lowercase())
        }
    };
    let allowed_return_origins = allowed_return_origins
        .unwrap_or_default()
        .iter()
        .map(|text| origin(text))
        .collect::<anyhow::Result<_>>()?;
    Ok(GateSettings {
        trusted_proxies,
        api_grants,
        cookie_domain,
        allowed_return_origins,
    })
}

/// `scheme://host[:port]`, as browsers serialize an origin, from a URL with no path.
fn origin(text: &str) -> anyhow::Result<String> {
    let url = url::Url::parse(text).with_context(|| {
        format!("TESSERA_ALLOWED_RETURN_ORIGINS: {text:?} is not an origin such as https://app.example.com")
    })?;
    let bare = matches!(url.path(), "" | "/") && url.query().is_none() && url.fragment().is_none();
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() || !bare {
        bail!(
            "TESSERA_ALLOWED_RETURN_ORIGINS: {text:?} is not an origin such as https://app.example.com"
        );
    }
    Ok(url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(text: &str) -> Option<Vec<String>> {
        Some(StringList::Text(text.into()).items())
    }

    #[test]
    fn lists_come_comma_separated_or_as_arrays() {
        assert_eq!(list(" a, b ,,c").unwrap(), ["a", "b", "c"]);
        assert_eq!(
            StringList::Items(vec![" x ".into(), "".into()]).items(),
            ["x"]
        );
    }

    #[test]
    fn settings_are_checked_at_start() {
        let ok = resolve(
            None,
            list("10.0.0.0/8, ::1"),
            list("messages:send,metrics:read"),
            Some(".Example.com".into()),
            list("https://app.example.com/, http://localhost:3000"),
        )
        .unwrap();
        assert_eq!(ok.trusted_proxies.len(), 2);
        assert_eq!(
            ok.api_grants.app_grants(),
            ["messages:send", "metrics:read"]
        );
        assert_eq!(ok.cookie_domain.as_deref(), Some("example.com"));
        assert_eq!(
            ok.allowed_return_origins,
            ["https://app.example.com", "http://localhost:3000"]
        );
        let none = resolve(None, None, None, None, None).unwrap();
        assert!(none.trusted_proxies.is_empty() && none.cookie_domain.is_none());
        assert!(resolve(Some(false), None, None, None, None).is_ok());
        let legacy = resolve(Some(true), None, None, None, None);
        assert!(legacy.is_err(), "the old switch trusted every peer");
        for bad in [
            resolve(None, list("10.0.0.0/33"), None, None, None),
            resolve(None, None, list("Not A Grant"), None, None),
            resolve(None, None, list("users:read"), None, None),
            resolve(None, None, None, Some("exa mple.com".into()), None),
            resolve(None, None, None, Some("localhost".into()), None),
            resolve(None, None, None, None, list("https://app.example.com/path")),
            resolve(None, None, None, None, list("ftp://app.example.com")),
            resolve(None, None, None, None, list("app.example.com")),
        ] {
            assert!(bad.is_err());
        }
    }
}
