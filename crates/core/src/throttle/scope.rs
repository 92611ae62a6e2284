//! What each throttle counts, and under which key.

use crate::codes::CodeHasher;
use crate::email::Email;
use crate::model::{RequestMeta, User};
use std::net::{IpAddr, Ipv6Addr};

/// A throttle (the `scope` column of the throttle table): one state machine per key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Password sign-in and password re-checks, per normalized email (a [`super::Lockout`]).
    Password,
    /// Failed sign-ins and recovery attempts per client address (a [`super::Window`]).
    Ip,
    /// Wrong second-step codes per user, across challenges (a [`super::Lockout`]).
    SecondStep,
    /// Wrong paper keys on the recovery page, per normalized email (a [`super::Lockout`]).
    Recovery,
    /// Invitation emails sent by an account, per account id (a [`super::Window`]).
    InvitationsSent,
    /// Invitation emails sent to one address, from any account, per normalized email (a
    /// [`super::Window`]).
    InvitationsReceived,
    /// Reset-link requests per client address (a [`super::Window`]; SPEC §8: 20 an hour).
    ResetIp,
    /// Sign-up requests per client address (a [`super::Window`], SPEC §8).
    SignupIp,
    /// Refused requests audited per session (a [`super::Window`] of one a minute), so a
    /// client retrying a refused call cannot flood the audit log.
    AccessDenied,
}

impl Scope {
    /// The stored name (rows depend on it: never change one).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Ip => "ip",
            Self::SecondStep => "second_step",
            Self::Recovery => "recovery",
            Self::InvitationsSent => "invitations_sent",
            Self::InvitationsReceived => "invitations_received",
            Self::ResetIp => "reset_ip",
            Self::SignupIp => "signup_ip",
            Self::AccessDenied => "access_denied",
        }
    }

    /// The throttles that belong to a user, with their keys: what the operator's unlock
    /// lifts, and what deleting the user forgets (so a user invited again starts clean).
    pub fn of_user(user: &User) -> [(Scope, String); 3] {
        let email = user.email.normalized().to_owned();
        [
            (Self::Password, email.clone()),
            (Self::SecondStep, user.id.to_string()),
            (Self::Recovery, email),
        ]
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The throttle key of the client's address: an IPv4 address as it is, an IPv6 address by
/// its /64 prefix (SPEC §8), the block one subscriber gets, so that an attacker with one
/// /64 does not get 2^64 budgets. Anything else (no address) is kept as given.
pub(crate) fn ip_key(meta: &RequestMeta) -> String {
    let ip = meta.ip.as_deref().unwrap_or_default();
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                format!("{}/64", Ipv6Addr::from(prefix))
            }
        },
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => ip.to_owned(),
    }
}

/// What an email typed at sign-in (or on the recovery page) is throttled, looked up and
/// audited under: its normalized form if it is an address, or else a keyed hash of it
/// (SPEC §8): a non-address is often a password typed into the wrong field, so it must
/// never be stored or logged as typed. The hash costs the same, matches no user (it has no
/// `@`), and the same typing always gives the same key, so it is still throttled.
pub(crate) fn email_key(input: &str, codes: &CodeHasher) -> String {
    Email::parse(input).map_or_else(
        |_| codes.identifier(input.trim()),
        |e| e.normalized().to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;

    fn key_of(ip: &str) -> String {
        ip_key(&RequestMeta {
            ip: Some(ip.to_owned()),
            user_agent: None,
        })
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_prefix() {
        assert_eq!(key_of("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_eq!(key_of("2001:db8:1:2:ffff::1"), key_of("2001:db8:1:2::9"));
        assert_ne!(key_of("2001:db8:1:2::1"), key_of("2001:db8:1:3::1"));
        assert_eq!(key_of("203.0.113.7"), "203.0.113.7");
        assert_ne!(key_of("203.0.113.7"), key_of("203.0.113.8"));
        assert_eq!(key_of("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(ip_key(&RequestMeta::default()), "");
    }

    #[test]
    fn a_typed_non_address_is_kept_only_as_a_keyed_hash() {
        let codes = CodeHasher::new(MasterKey::generate().derive("codes"));
        let typed = "Tr0ub4dor&3-secret";
        let key = email_key(typed, &codes);
        assert!(!key.to_lowercase().contains("tr0ub4dor"), "{key}");
        assert!(!key.contains('@'));
        assert_eq!(key, email_key(&format!(" {typed} "), &codes));
        assert_ne!(key, email_key("Tr0ub4dor&4-secret", &codes));
        let other = CodeHasher::new(MasterKey::generate().derive("codes"));
        assert_ne!(key, email_key(typed, &other));
        assert_eq!(email_key(" Ann@Example.COM ", &codes), "ann@example.com");
    }
}
