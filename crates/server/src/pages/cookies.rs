//! Reading the `Cookie` header and writing `Set-Cookie` values: always `HttpOnly`,
//! `SameSite=Lax`, `Path=/`, and `Secure` when served over TLS.

use axum::http::HeaderMap;
use axum::http::header;

pub const SESSION: &str = "tessera_session";
pub const CSRF: &str = "tessera_csrf";
/// The login challenge between password and code (never in a URL).
pub const CHALLENGE: &str = "tessera_challenge";
/// A device verified by an email code (SPEC §3), for 30 days.
pub const DEVICE: &str = "tessera_device";

/// The value of cookie `name`, if the request carries it.
pub fn get(headers: &HeaderMap, name: &str) -> Option<String> {
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
pub fn set(name: &str, value: &str, max_age: Option<i64>, secure: bool) -> String {
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        cookie.push_str("; Secure");
    }
    cookie
}

/// A `Set-Cookie` value that removes the cookie.
pub fn clear(name: &str, secure: bool) -> String {
    set(name, "", Some(0), secure)
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
        assert_eq!(get(&h, SESSION).as_deref(), Some("abc"));
        assert_eq!(get(&h, CSRF).as_deref(), Some("xyz"));
        assert_eq!(get(&h, "missing"), None);
    }

    #[test]
    fn cookies_are_http_only_and_lax() {
        assert_eq!(
            set(SESSION, "t", Some(60), true),
            "tessera_session=t; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
        );
        assert_eq!(
            clear(CSRF, false),
            "tessera_csrf=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"
        );
    }
}
