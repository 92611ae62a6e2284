//! The account's 2FA policy as it applies to one user in one session (SPEC §2, Mailtrap and
//! SparkPost; §12 for SSO users: exempt only in a session opened through the team's identity
//! provider, while the team's `sso_two_factor` is `exempt`; an SSO user who signed in with a
//! password is like anyone else).

use crate::Timestamp;
use crate::model::{Account, AuthSource, SsoTwoFactor, User};
use serde::Serialize;

/// Where a user stands against their account's 2FA requirement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Enforcement {
    /// The account does not require 2FA.
    NotRequired,
    /// Required, and the user has it.
    Compliant,
    /// Required, the user has none yet, and the grace period still runs.
    Grace,
    /// Required, the user has none, and no grace is left: set it up before anything else.
    SetupRequired,
    /// Required, but the user signs in with SSO and the team's `sso_two_factor` is `exempt`:
    /// the identity provider owns 2FA.
    Exempt,
}

pub fn enforcement(
    account: &Account,
    user: &User,
    session_via_sso: bool,
    two_factor_enabled: bool,
    now: Timestamp,
) -> Enforcement {
    if !account.two_factor_required {
        Enforcement::NotRequired
    } else if user.auth_source == AuthSource::Sso
        && session_via_sso
        && account.sso_two_factor == SsoTwoFactor::Exempt
    {
        Enforcement::Exempt
    } else if two_factor_enabled {
        Enforcement::Compliant
    } else if account.grace_period_until.is_some_and(|until| now < until) {
        Enforcement::Grace
    } else {
        Enforcement::SetupRequired
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::email::Email;
    use crate::model::{AccountId, Role, UserId};

    fn account(required: bool, grace: Option<i64>) -> Account {
        Account {
            id: AccountId::new(),
            name: "A".into(),
            two_factor_required: required,
            grace_period_until: grace.map(Timestamp::from_unix),
            trusted_devices: crate::model::TrustedDevices::Allowed,
            sso_two_factor: crate::model::SsoTwoFactor::Exempt,
            created_at: Timestamp::from_unix(0),
        }
    }

    fn user(source: AuthSource) -> User {
        User {
            id: UserId::new(),
            account_id: AccountId::new(),
            email: Email::parse("u@example.com").unwrap(),
            name: "U".into(),
            role: Role::Member,
            auth_source: source,
            created_at: Timestamp::from_unix(0),
        }
    }

    #[test]
    fn each_status_at_its_edge() {
        let now = Timestamp::from_unix(1000);
        let pw = user(AuthSource::Password);
        let e = |a: &Account, u: &User, on: bool| enforcement(a, u, true, on, now);
        assert_eq!(
            e(&account(false, None), &pw, false),
            Enforcement::NotRequired
        );
        assert_eq!(e(&account(true, None), &pw, true), Enforcement::Compliant);
        assert_eq!(
            e(&account(true, None), &pw, false),
            Enforcement::SetupRequired
        );
        assert_eq!(
            e(&account(true, Some(1001)), &pw, false),
            Enforcement::Grace
        );
        // The grace period ends at its instant.
        assert_eq!(
            e(&account(true, Some(1000)), &pw, false),
            Enforcement::SetupRequired
        );
        assert_eq!(
            e(&account(true, None), &user(AuthSource::Sso), false),
            Enforcement::Exempt
        );
        // Without the exemption (SparkPost's `disable_sso`), an SSO user is like any other.
        let mut strict = account(true, None);
        strict.sso_two_factor = SsoTwoFactor::DisableSso;
        let sso = user(AuthSource::Sso);
        assert_eq!(e(&strict, &sso, false), Enforcement::SetupRequired);
        assert_eq!(e(&strict, &sso, true), Enforcement::Compliant);
        // An SSO user who signed in with a password (a reset link) is not exempt.
        assert_eq!(
            enforcement(&account(true, None), &sso, false, false, now),
            Enforcement::SetupRequired
        );
    }
}
