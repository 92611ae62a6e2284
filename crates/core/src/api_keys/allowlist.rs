//! Where a key may be used from (SPEC §11): addresses and CIDR blocks, IPv4 and IPv6. An
//! IPv4-mapped IPv6 address (`::ffff:203.0.113.7`) counts as the IPv4 address it carries, on
//! either side: in a rule and as the client's address. An empty list means anywhere.
//!
//! Rules are stored in their canonical text (the block's first address, and `/len` unless it
//! names one address), so a list reads back as it is matched.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Rules a key may hold at most.
pub const MAX_RULES: usize = 100;

/// One address or block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpRule {
    network: IpAddr,
    len: u8,
}

/// An address as rules see it: a mapped IPv6 address as its IPv4 one.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

impl IpRule {
    /// `203.0.113.7`, `10.0.0.0/8`, `2001:db8::/32`, `::ffff:10.0.0.0/104`. Host bits after
    /// the prefix are cleared (`10.1.2.3/8` is `10.0.0.0/8`).
    pub fn parse(input: &str) -> Result<Self, String> {
        let text = input.trim();
        let (address, len) = match text.split_once('/') {
            Some((address, len)) => {
                let len: u8 = len
                    .parse()
                    .ok()
                    .filter(|_| !len.starts_with('+'))
                    .ok_or_else(|| format!("{text:?}: the prefix length is not a number"))?;
                (address, Some(len))
            }
            None => (text, None),
        };
        let address: IpAddr = address
            .parse()
            .map_err(|_| format!("{text:?} is not an IPv4 or IPv6 address or CIDR block"))?;
        let (network, len) = match (address, len) {
            (IpAddr::V4(v4), len) => {
                let len = len.unwrap_or(32);
                if len > 32 {
                    return Err(format!("{text:?}: an IPv4 prefix is at most /32"));
                }
                (IpAddr::V4(v4), len)
            }
            (IpAddr::V6(v6), len) => {
                let len = len.unwrap_or(128);
                if len > 128 {
                    return Err(format!("{text:?}: an IPv6 prefix is at most /128"));
                }
                match v6.to_ipv4_mapped() {
                    Some(v4) if len >= 96 => (IpAddr::V4(v4), len - 96),
                    Some(_) => {
                        return Err(format!(
                            "{text:?}: an IPv4-mapped block must be /96 or longer"
                        ));
                    }
                    None => (IpAddr::V6(v6), len),
                }
            }
        };
        Ok(Self {
            network: mask(network, len),
            len,
        })
    }

    /// Whether `ip` is in the block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical_ip(ip);
        match (self.network, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                mask(ip, self.len) == self.network
            }
            _ => false,
        }
    }
}

fn mask(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let kept = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(bits & kept))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let kept = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(bits & kept))
        }
    }
}

impl std::fmt::Display for IpRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let full = match self.network {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        if self.len == full {
            write!(f, "{}", self.network)
        } else {
            write!(f, "{}/{}", self.network, self.len)
        }
    }
}

/// Whether a key with these rules may be used from `ip` (the client's address, if known).
/// No rules: from anywhere. Rules and no address: nowhere.
pub fn permits(rules: &[IpRule], ip: Option<&str>) -> bool {
    if rules.is_empty() {
        return true;
    }
    ip.and_then(|ip| ip.parse::<IpAddr>().ok())
        .is_some_and(|ip| rules.iter().any(|rule| rule.contains(ip)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> IpRule {
        IpRule::parse(text).unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn rules_read_back_in_canonical_form() {
        for (typed, canonical) in [
            ("203.0.113.7", "203.0.113.7"),
            (" 203.0.113.7/32 ", "203.0.113.7"),
            ("10.1.2.3/8", "10.0.0.0/8"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("2001:DB8::1", "2001:db8::1"),
            ("2001:db8:1:2::/64", "2001:db8:1:2::/64"),
            ("::/0", "::/0"),
            ("::ffff:203.0.113.7", "203.0.113.7"),
            ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
        ] {
            assert_eq!(rule(typed).to_string(), canonical, "{typed}");
        }
    }

    #[test]
    fn bad_rules_are_refused() {
        for bad in [
            "",
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0.0/-1",
            "10.0.0.0/+8",
            "10.0.0.0/8/8",
            "::ffff:1.2.3.4/200",
            "::ffff:1.2.3.4/95",
            "2001:db8::/129",
            "10.0.0.256",
            "example.com",
            "1.2.3.4 5.6.7.8",
        ] {
            assert!(IpRule::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn blocks_contain_their_addresses_and_mapped_addresses_count_as_ipv4() {
        let v4 = rule("192.0.2.0/24");
        assert!(v4.contains(ip("192.0.2.0")));
        assert!(v4.contains(ip("192.0.2.255")));
        assert!(!v4.contains(ip("192.0.3.0")));
        assert!(v4.contains(ip("::ffff:192.0.2.9")), "mapped client");
        assert!(!v4.contains(ip("2001:db8::1")));
        let one = rule("198.51.100.7");
        assert!(one.contains(ip("198.51.100.7")));
        assert!(!one.contains(ip("198.51.100.8")));
        let v6 = rule("2001:db8:aa::/48");
        assert!(v6.contains(ip("2001:db8:aa:ffff::1")));
        assert!(!v6.contains(ip("2001:db8:ab::1")));
        assert!(!v6.contains(ip("192.0.2.1")));
        let mapped = rule("::ffff:203.0.113.0/120");
        assert!(mapped.contains(ip("203.0.113.200")), "mapped rule");
        assert!(rule("0.0.0.0/0").contains(ip("8.8.8.8")));
        assert!(!rule("0.0.0.0/0").contains(ip("::1")));
        assert!(rule("::/0").contains(ip("::1")));
    }

    #[test]
    fn an_empty_list_permits_anywhere_and_a_list_needs_an_address() {
        assert!(permits(&[], None));
        assert!(permits(&[], Some("192.0.2.1")));
        let rules = [rule("192.0.2.0/24"), rule("2001:db8::/32")];
        assert!(permits(&rules, Some("192.0.2.1")));
        assert!(permits(&rules, Some("2001:db8::5")));
        assert!(!permits(&rules, Some("198.51.100.1")));
        assert!(!permits(&rules, None));
        assert!(!permits(&rules, Some("not an address")));
    }
}
