//! Where a browser may be sent back after signing in (`return_to`, SPEC §11): a path of
//! Tessera itself, or an absolute URL on the public URL's origin or one of
//! `TESSERA_ALLOWED_RETURN_ORIGINS`. Anything else is dropped, so neither `/login` nor the
//! gate is an open redirect.

use url::Url;

/// The origins `return_to` may lead to.
#[derive(Clone, Debug)]
pub struct ReturnOrigins {
    allowed: Vec<String>,
}

impl ReturnOrigins {
    /// The public URL's origin and `others` (already `scheme://host[:port]`).
    pub fn new(public_url: &str, others: &[String]) -> Self {
        let mut allowed: Vec<String> = Url::parse(public_url)
            .map(|u| u.origin().ascii_serialization())
            .into_iter()
            .collect();
        allowed.extend(others.iter().cloned());
        Self { allowed }
    }

    /// Whether `origin` (`scheme://host[:port]`) is one a browser may be sent back to.
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.allowed.iter().any(|o| o == origin)
    }

    /// `target` if it may be followed: a local path, or an absolute http(s) URL of an
    /// allowed origin without credentials in it.
    pub fn check(&self, target: &str) -> Option<String> {
        if target.is_empty()
            || target.contains('\\')
            || target.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return None;
        }
        if target.starts_with('/') {
            // `//host` is another host to a browser.
            return (!target.starts_with("//")).then(|| target.to_owned());
        }
        let url = Url::parse(target).ok()?;
        let ok = matches!(url.scheme(), "http" | "https")
            && url.username().is_empty()
            && url.password().is_none()
            && self.allows_origin(&url.origin().ascii_serialization());
        ok.then(|| url.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_and_allowed_origins_are_followed() {
        let r = ReturnOrigins::new(
            "https://auth.example.com",
            &["https://app.example.com".to_owned()],
        );
        for good in [
            "/settings/security",
            "/account/api-keys?x=1",
            "https://auth.example.com/",
            "https://app.example.com/reports?id=7#top",
        ] {
            assert!(r.check(good).is_some(), "{good}");
        }
        for bad in [
            "",
            "//evil.example",
            "/\\evil.example",
            "https://evil.example/",
            "https://app.example.com.evil.example/",
            "https://user:pw@app.example.com/",
            "http://app.example.com/",
            "https://app.example.com:8443/",
            "javascript:alert(1)",
            "data:text/html,hi",
            "https://app.example.com/ x",
            "https://app.example.com/\u{7}",
            "app.example.com/reports",
        ] {
            assert_eq!(r.check(bad), None, "{bad:?}");
        }
    }
}
