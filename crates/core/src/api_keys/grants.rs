//! Grants (SPEC §11): what a key may do. Tessera's own name parts of its account API; the
//! operator adds the app's own (`TESSERA_API_GRANTS`, e.g. `messages:send,metrics:read`),
//! which Tessera does not interpret: the app reads them from the gate's `X-Tessera-Grants`.
//!
//! Least privilege, twice over: a key holds only the grants it was given, and a manager can
//! give only grants of things they may do themselves ([`may_hold`]). A key is also worth no
//! more than its creator is now: a grant its creator could no longer give (an admin made a
//! member, or without the 2FA the recovery powers need) stops working
//! ([`super::ApiKeyContext::effective_grants`]).

use crate::model::{Role, User};

/// Tessera's own grants, each with what it allows.
pub const TESSERA_GRANTS: &[(&str, &str)] = &[
    ("account:read", "read the account and its 2FA policy"),
    ("users:read", "list the account's users"),
    ("users:write", "delete users and reset their 2FA"),
    ("invitations:write", "invite people to the team"),
    ("events:read", "read the account's audit log"),
    (
        "policy:write",
        "change the team's 2FA and trusted-device policies",
    ),
];

/// The grants that amount to account recovery, which need a manager with 2FA on
/// (`TESSERA_ADMIN_REQUIRES_2FA`) to give or to hold.
const RECOVERY_GRANTS: &[&str] = &["users:write", "policy:write"];

/// The longest grant name.
const MAX_NAME: usize = 64;

/// Whether `name` can be a grant: `word:word`, lowercase letters, digits, `_`, `-` and `.`.
pub fn valid_name(name: &str) -> bool {
    let Some((scope, action)) = name.split_once(':') else {
        return false;
    };
    let part = |p: &str| {
        !p.is_empty()
            && p.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.')
            })
    };
    name.len() <= MAX_NAME && part(scope) && part(action)
}

/// The grants of this deployment: Tessera's, then the operator's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GrantCatalog {
    app: Vec<String>,
}

impl GrantCatalog {
    /// With the operator's grants (`TESSERA_API_GRANTS`); an invalid name, or one of
    /// Tessera's own, is refused with the reason.
    pub fn new(app: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut names: Vec<String> = Vec::new();
        for name in app {
            let name = name.trim().to_owned();
            if name.is_empty() || names.contains(&name) {
                continue;
            }
            if !valid_name(&name) {
                return Err(format!(
                    "{name:?} is not a grant name: use scope:action, in lowercase letters, \
                     digits, '_', '-' and '.'"
                ));
            }
            if TESSERA_GRANTS.iter().any(|(own, _)| *own == name) {
                return Err(format!("{name:?} is one of Tessera's own grants already"));
            }
            names.push(name);
        }
        Ok(Self { app: names })
    }

    /// The operator's grants, as declared.
    pub fn app_grants(&self) -> &[String] {
        &self.app
    }

    /// Every grant, Tessera's first.
    pub fn all(&self) -> impl Iterator<Item = &str> {
        TESSERA_GRANTS
            .iter()
            .map(|(name, _)| *name)
            .chain(self.app.iter().map(String::as_str))
    }

    pub fn knows(&self, name: &str) -> bool {
        self.all().any(|known| known == name)
    }
}

/// Whether `user` may do what `grant` allows, and so may give it to a key (and a key they
/// created may use it): managers Tessera's grants (the recovery ones only with 2FA on, when
/// the deployment requires it of admins), every user of the team the app's.
pub fn may_hold(
    user: &User,
    two_factor_enabled: bool,
    admin_requires_two_factor: bool,
    grant: &str,
) -> bool {
    let own = TESSERA_GRANTS.iter().any(|(name, _)| *name == grant);
    if !own {
        return true;
    }
    let manager = matches!(user.role, Role::Owner | Role::Admin);
    let recovery = RECOVERY_GRANTS.contains(&grant);
    manager && (!recovery || two_factor_enabled || !admin_requires_two_factor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;
    use crate::email::Email;
    use crate::model::{AccountId, AuthSource, UserId};

    fn user(role: Role) -> User {
        User {
            id: UserId::new(),
            account_id: AccountId::new(),
            email: Email::parse("u@example.com").unwrap(),
            name: "U".into(),
            role,
            auth_source: AuthSource::Password,
            created_at: Timestamp::from_unix(0),
        }
    }

    #[test]
    fn grant_names_are_scope_colon_action() {
        for good in ["messages:send", "metrics:read", "a:b", "app.v2:do-it_now"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in [
            "",
            "messages",
            ":send",
            "messages:",
            "Messages:send",
            "a:b:c",
            "a b:c",
        ] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        assert!(!valid_name(&format!("a:{}", "b".repeat(63))));
    }

    #[test]
    fn the_catalog_adds_the_operators_grants_after_tesseras() {
        let c =
            GrantCatalog::new(["messages:send".into(), " metrics:read".into(), "".into()]).unwrap();
        assert_eq!(c.app_grants(), ["messages:send", "metrics:read"]);
        assert!(c.knows("users:read") && c.knows("metrics:read"));
        assert!(!c.knows("metrics:write"));
        assert_eq!(c.all().count(), TESSERA_GRANTS.len() + 2);
        assert!(GrantCatalog::new(["users:read".into()]).is_err());
        assert!(GrantCatalog::new(["Bad Name".into()]).is_err());
    }

    #[test]
    fn who_may_hold_which_grant() {
        // (role, 2FA on, admins need 2FA, grant, allowed)
        let table = [
            (Role::Owner, false, true, "users:read", true),
            (Role::Admin, false, true, "invitations:write", true),
            (Role::Admin, false, true, "users:write", false),
            (Role::Admin, false, true, "policy:write", false),
            (Role::Admin, true, true, "users:write", true),
            (Role::Owner, false, false, "policy:write", true),
            (Role::Member, true, true, "account:read", false),
            (Role::Member, true, true, "users:read", false),
            (Role::Member, false, true, "messages:send", true),
            (Role::Admin, false, true, "messages:send", true),
        ];
        for (role, on, required, grant, allowed) in table {
            assert_eq!(
                may_hold(&user(role), on, required, grant),
                allowed,
                "{role} 2fa={on} required={required} {grant}"
            );
        }
    }
}
