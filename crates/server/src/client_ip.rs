//! The client's address (SPEC §11): the connection's peer, or, when the peer is one of
//! `TESSERA_TRUSTED_PROXIES`, the nearest address in `X-Forwarded-For` that is not a trusted
//! proxy. Each proxy appends the address it got the request from, so the header is read from
//! the right: entries left of the first untrusted one could have been typed by the client.
//! Throttles, the audit log and key allowlists all use this one value.

use axum::http::HeaderMap;
use std::net::IpAddr;
use tessera_core::api_keys::IpRule;
use tessera_core::api_keys::allowlist::canonical_ip;

/// The client's address, as text (a mapped IPv6 address as its IPv4 one).
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpRule]) -> Option<String> {
    let trusts = |ip: IpAddr| trusted.iter().any(|rule| rule.contains(ip));
    let mut client = canonical_ip(peer?);
    if !trusts(client) {
        return Some(client.to_string());
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            // A malformed entry: nothing left of it can be believed.
            break;
        };
        client = canonical_ip(ip);
        if !trusts(client) {
            break;
        }
    }
    Some(client.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn rules(list: &[&str]) -> Vec<IpRule> {
        list.iter().map(|r| IpRule::parse(r).unwrap()).collect()
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_peer() {
        let h = headers(&["203.0.113.9"]);
        assert_eq!(client_ip(ip("192.0.2.1"), &h, &[]).unwrap(), "192.0.2.1");
        let trusted = rules(&["10.0.0.0/8"]);
        assert_eq!(
            client_ip(ip("192.0.2.1"), &h, &trusted).unwrap(),
            "192.0.2.1"
        );
        assert_eq!(
            client_ip(ip("10.1.1.1"), &h, &trusted).unwrap(),
            "203.0.113.9"
        );
        assert_eq!(client_ip(None, &h, &trusted), None);
    }

    #[test]
    fn the_nearest_untrusted_hop_is_the_client() {
        let trusted = rules(&["10.0.0.0/8", "::1"]);
        // The client typed a fake first entry; the proxies appended the real ones.
        let h = headers(&["1.1.1.1, 198.51.100.7", "10.0.0.5"]);
        assert_eq!(client_ip(ip("::1"), &h, &trusted).unwrap(), "198.51.100.7");
        // Every hop trusted: the leftmost.
        let h = headers(&["10.0.0.9, 10.0.0.5"]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted).unwrap(), "10.0.0.9");
        // A malformed hop stops the walk at the last good one.
        let h = headers(&["198.51.100.7, garbage, 10.0.0.5"]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted).unwrap(), "10.0.0.5");
        // No header: the proxy itself.
        assert_eq!(
            client_ip(ip("10.0.0.1"), &HeaderMap::new(), &trusted).unwrap(),
            "10.0.0.1"
        );
        // Mapped addresses count as IPv4 on both sides.
        let h = headers(&["::ffff:203.0.113.4"]);
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.1"), &h, &trusted).unwrap(),
            "203.0.113.4"
        );
    }
}
