//! The shapes the API answers with.

use serde::Serialize;
use tessera_core::Timestamp;
use tessera_core::model::{Account, SecurityEvent, User};
use tessera_core::policy::Enforcement;
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

#[derive(Serialize, ToSchema)]
pub struct AccountBody {
    pub id: String,
    pub name: String,
    pub two_factor_policy: TwoFactorPolicyBody,
}

impl From<&Account> for AccountBody {
    fn from(a: &Account) -> Self {
        Self {
            id: a.id.to_string(),
            name: a.name.clone(),
            two_factor_policy: TwoFactorPolicyBody {
                status: if a.two_factor_required {
                    "required"
                } else {
                    "optional"
                },
                grace_period_until: a.grace_period_until.map(Timestamp::to_rfc3339),
            },
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TwoFactorBody {
    pub enabled: bool,
    pub enabled_at: Option<String>,
    pub recovery_codes_remaining: i64,
    pub pending_setup: bool,
}

#[derive(Serialize, ToSchema)]
pub struct EnforcementBody {
    pub required: bool,
    pub grace_period_until: Option<String>,
    #[schema(value_type = String, example = "not_required")]
    /// `not_required`, `compliant`, `grace`, `setup_required` or `exempt`.
    pub status: Enforcement,
}

#[derive(Serialize, ToSchema)]
pub struct EventBody {
    pub id: i64,
    /// What happened: `signup`, `sign_in`, `sign_in_failed`, `password_locked`, `sign_out`, …
    pub kind: String,
    pub email: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    pub created_at: String,
}

impl From<SecurityEvent> for EventBody {
    fn from(e: SecurityEvent) -> Self {
        Self {
            id: e.id,
            kind: e.kind.to_string(),
            email: e.email,
            ip: e.ip,
            user_agent: e.user_agent,
            detail: e.detail,
            created_at: e.created_at.to_rfc3339(),
        }
    }
}
