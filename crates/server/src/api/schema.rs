//! The shapes the API answers with.

use crate::error::AppError;
use serde::{Deserialize, Serialize};
use tessera_core::Timestamp;
use tessera_core::model::{Account, Invitation, SecurityEvent, User};
use tessera_core::policy::Enforcement;
use utoipa::{IntoParams, ToSchema};

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
}

impl From<&Account> for AccountBody {
    fn from(a: &Account) -> Self {
        Self {
            id: a.id.to_string(),
            name: a.name.clone(),
            two_factor_policy: TwoFactorPolicyBody::from(a),
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
    /// Whom it is about (`null` once that user was deleted).
    pub user_id: Option<String>,
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
            user_id: e.user_id.map(|id| id.to_string()),
            kind: e.kind.to_string(),
            email: e.email,
            ip: e.ip,
            user_agent: e.user_agent,
            detail: e.detail,
            created_at: e.created_at.to_rfc3339(),
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only events older than this id (the `next_before` of the previous page).
    pub before: Option<i64>,
    /// Page size, 1 to 100 (default 50).
    pub limit: Option<i64>,
}

impl EventsQuery {
    pub fn limit(&self) -> Result<i64, AppError> {
        let limit = self.limit.unwrap_or(50);
        if (1..=100).contains(&limit) {
            Ok(limit)
        } else {
            Err(AppError::Validation {
                field: Some("limit"),
                message: "limit must be between 1 and 100".into(),
            })
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct EventsResponse {
    pub events: Vec<EventBody>,
    /// Pass as `before` for the next page; `null` on the last page.
    pub next_before: Option<i64>,
}

impl EventsResponse {
    /// One page of events, asked for with `limit`.
    pub fn page(events: Vec<SecurityEvent>, limit: i64) -> Self {
        let full_page = i64::try_from(events.len()).is_ok_and(|n| n == limit);
        let next_before = full_page.then(|| events.last().map(|e| e.id)).flatten();
        Self {
            events: events.into_iter().map(EventBody::from).collect(),
            next_before,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct InvitationBody {
    pub id: String,
    pub email: String,
    pub name: String,
    /// `admin` or `member`.
    pub role: String,
    /// `pending`, `accepted`, `revoked` or `expired`.
    pub status: String,
    pub created_at: String,
    pub expires_at: String,
}

impl InvitationBody {
    pub fn new(i: &Invitation, now: Timestamp) -> Self {
        Self {
            id: i.id.to_string(),
            email: i.email.as_str().to_owned(),
            name: i.name.clone(),
            role: i.role.to_string(),
            status: i.status_at(now).to_string(),
            created_at: i.created_at.to_rfc3339(),
            expires_at: i.expires_at.to_rfc3339(),
        }
    }
}
