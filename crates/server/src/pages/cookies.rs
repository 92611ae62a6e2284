//! Reading the `Cookie` header and writing `Set-Cookie` values: always `HttpOnly`,
//! `SameSite=Lax`, `Path=/`, no `Domain`. Over TLS (an `https://` public URL) every cookie
//! is also `Secure` and named with the `__Host-` prefix (SPEC §8), which browsers accept
//! only from a secure origin, for the whole host, so a sibling subdomain or a
//! man-in-the-middle on plain HTTP cannot plant one.
//!
//! One exception, by the operator's choice: with `TESSERA_COOKIE_DOMAIN` the session cookie
//! is set for that domain, so the gate (SPEC §11) sees it on the app's subdomains. A
//! `__Host-` cookie cannot have a domain, so over TLS it is then named with the `__Secure-`
//! prefix (still `Secure` only).

use axum::http::HeaderMap;
use axum::http::header;

/// The cookies of the control panel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cookie {
    Session,
    Csrf,
    /// The login challenge between password and code (never in a URL).
    Challenge,
    /// A device verified by an email code (SPEC §3), for 30 days.
    Device,
    /// Where to go back after a sign-in that passes through the second step (`return_to`).
    ReturnTo,
    /// The `state` of an SSO sign-in this browser started (SPEC §12): the callback must bring
    /// it back, so a callback link from someone else's sign-in signs nobody in here.
    SsoState,
    /// The way back to an application's authorization request across sign-in (SPEC §13).
    Return,
}

impl Cookie {
    fn base(self) -> &'static str {
        match self {
            Self::Session => "tessera_session",
            Self::Csrf => "tessera_csrf",
            Self::Challenge => "tessera_challenge",
            Self::Device => "tessera_device",
            Self::ReturnTo => "tessera_return_to",
            Self::SsoState => "tessera_sso_state",
            Self::Return => "tessera_return",
        }
    }

    fn prefixed(self) -> &'static str {
        match self {
            Self::Session => "__Host-tessera_session",
            Self::Csrf => "__Host-tessera_csrf",
            Self::Challenge => "__Host-tessera_challenge",
            Self::Device => "__Host-tessera_device",
            Self::ReturnTo => "__Host-tessera_return_to",
            Self::SsoState => "__Host-tessera_sso_state",
            Self::Return => "__Host-tessera_return",
        }
    }
}

/// How this deployment names and flags its cookies.
#[derive(Clone, Debug)]
pub struct Cookies {
    secure: bool,
    /// `TESSERA_COOKIE_DOMAIN`, for the session cookie.
    session_domain: Option<String>,
}

impl Cookies {
    /// `secure` when the public URL is https.
    pub fn new(secure: bool) -> Self {
        Self {
            secure,
            session_domain: None,
        }
    }

    /// The session cookie for `domain` and its subdomains (`TESSERA_COOKIE_DOMAIN`).
    pub fn with_session_domain(self, domain: Option<String>) -> Self {
        Self {
            session_domain: domain,
            ..self
        }
    }

    fn domain(&self, cookie: Cookie) -> Option<&str> {
        match cookie {
            Cookie::Session => self.session_domain.as_deref(),
            _ => None,
        }
    }

    pub fn name(&self, cookie: Cookie) -> &'static str {
        match (self.secure, self.domain(cookie)) {
            (false, _) => cookie.base(),
            (true, None) => cookie.prefixed(),
            (true, Some(_)) => "__Secure-tessera_session",
        }
    }

    /// The value of `cookie`, if the request carries it (under this deployment's name).
    pub fn get(&self, headers: &HeaderMap, cookie: Cookie) -> Option<String> {
        let name = self.name(cookie);
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.trim_matches('"').to_owned())
            .filter(|v| !v.is_empty())
    }

    /// A `Set-Cookie` value; `max_age` in seconds, or a browser-session cookie without one.
    pub fn set(&self, cookie: Cookie, value: &str, max_age: Option<i64>) -> String {
        let mut set = format!(
            "{}={value}; Path=/; HttpOnly; SameSite=Lax",
            self.name(cookie)
        );
        if let Some(domain) = self.domain(cookie) {
            set.push_str(&format!("; Domain={domain}"));
        }
        if let Some(age) = max_age {
            set.push_str(&format!("; Max-Age={age}"));
        }
        if self.secure {
            set.push_str("; Secure");
        }
        set
    }

    /// A `Set-Cookie` value that removes the cookie.
    pub fn clear(&self, cookie: Cookie) -> String {
        self.set(cookie, "", Some(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn finds_a_cookie_among_several() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; tessera_session=abc; tessera_csrf=xyz"),
        );
        let plain = Cookies::new(false);
        assert_eq!(plain.get(&h, Cookie::Session).as_deref(), Some("abc"));
        assert_eq!(plain.get(&h, Cookie::Csrf).as_deref(), Some("xyz"));
        assert_eq!(plain.get(&h, Cookie::Device), None);
        // Over TLS only the prefixed name counts: a planted plain cookie is ignored.
        assert_eq!(Cookies::new(true).get(&h, Cookie::Session), None);
    }

    #[test]
    fn cookies_are_http_only_and_lax() {
        assert_eq!(
            Cookies::new(false).clear(Cookie::Csrf),
            "tessera_csrf=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"
        );
    }

    #[test]
    fn over_tls_cookies_are_host_prefixed_and_secure() {
        let tls = Cookies::new(true);
        assert_eq!(
            tls.set(Cookie::Session, "t", Some(60)),
            "__Host-tessera_session=t; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
        );
        for cookie in [
            Cookie::Session,
            Cookie::Csrf,
            Cookie::Challenge,
            Cookie::Device,
            Cookie::ReturnTo,
        ] {
            let set = tls.set(cookie, "v", None);
            assert!(set.starts_with("__Host-"), "{set}");
            assert!(set.contains("; Secure") && set.contains("Path=/"), "{set}");
            assert!(!set.contains("Domain"), "{set}");
        }
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("__Host-tessera_csrf=xyz"),
        );
        assert_eq!(tls.get(&h, Cookie::Csrf).as_deref(), Some("xyz"));
    }

    #[test]
    fn with_a_cookie_domain_only_the_session_cookie_spans_subdomains() {
        let tls = Cookies::new(true).with_session_domain(Some("example.com".into()));
        assert_eq!(
            tls.set(Cookie::Session, "t", None),
            "__Secure-tessera_session=t; Path=/; HttpOnly; SameSite=Lax; Domain=example.com; \
             Secure"
        );
        assert!(tls.clear(Cookie::Session).contains("Domain=example.com"));
        assert!(tls.set(Cookie::Csrf, "v", None).starts_with("__Host-"));
        assert!(!tls.set(Cookie::Csrf, "v", None).contains("Domain"));
        let plain = Cookies::new(false).with_session_domain(Some("example.com".into()));
        assert!(
            plain
                .set(Cookie::Session, "t", None)
                .starts_with("tessera_session=t;")
        );
    }
}
