//! The shapes more than one part of the API answers with: a user, an account and its 2FA
//! policy. A shape only one part uses is defined next to its handlers.

use serde::Serialize;
use tessera_core::Timestamp;
use tessera_core::model::{Account, User};
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct UserBody {
    pub id: String,
    pub account_id: String,
    pub email: String,
    pub name: String,
    /// `owner`, `admin` or `member`.
    pub role: String,
    /// `password` or `sso`.
    pub auth_source: String,
    pub two_factor_enabled: bool,
    pub created_at: String,
}

impl UserBody {
    pub fn new(u: &User, two_factor_enabled: bool) -> Self {
        Self {
            id: u.id.to_string(),
            account_id: u.account_id.to_string(),
            email: u.email.as_str().to_owned(),
            name: u.name.clone(),
            role: u.role.to_string(),
            auth_source: u.auth_source.to_string(),
            two_factor_enabled,
            created_at: u.created_at.to_rfc3339(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TwoFactorPolicyBody {
    /// `optional` or `required`.
    pub status: &'static str,
    pub grace_period_until: Option<String>,
}

impl From<&Account> for TwoFactorPolicyBody {
    fn from(a: &Account) -> Self {
        Self {
            status: if a.two_factor_required {
                "required"
            } else {
                "optional"
            },
            grace_period_until: a.grace_period_until.map(Timestamp::to_rfc3339),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AccountBody {
    pub id: String,
    pub name: String,
    pub two_factor_policy: TwoFactorPolicyBody,
    /// `allowed` (default) or `forbidden`: whether "Don't ask again on this device" lets a
    /// device skip the second step.
    #[schema(example = "allowed")]
    pub trusted_devices: &'static str,
}

impl From<&Account> for AccountBody {
    fn from(a: &Account) -> Self {
        Self {
            id: a.id.to_string(),
            name: a.name.clone(),
            two_factor_policy: TwoFactorPolicyBody::from(a),
            trusted_devices: a.trusted_devices.as_str(),
        }
    }
}

/// The account's trusted-devices policy.
#[derive(Serialize, ToSchema)]
pub struct TrustedDevicesPolicyBody {
    /// `allowed` or `forbidden`.
    #[schema(example = "forbidden")]
    pub trusted_devices: &'static str,
}
