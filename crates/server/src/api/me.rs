//! `GET /me`. The user's own devices, sessions, 2FA and events are in [`super::devices`],
//! [`super::two_factor`] and [`super::activity`].

use super::schema::{AccountBody, UserBody};
use crate::error::{AppError, ErrorBody, Json};
use crate::extract::AnySessionWithStatus;
use serde::Serialize;
use tessera_core::Timestamp;
use tessera_core::team::enforcement::Enforcement;
use utoipa::ToSchema;

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
pub struct MeResponse {
    pub user: UserBody,
    pub account: AccountBody,
    pub two_factor: TwoFactorBody,
    pub enforcement: EnforcementBody,
}

/// The signed-in user, their account, their 2FA state and where they stand against the
/// account's 2FA policy.
#[utoipa::path(get, path = "/me", tag = "me", security(("session" = [])),
    responses(
        (status = 200, body = MeResponse),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorBody),
    ))]
pub async fn me(
    AnySessionWithStatus(context, status): AnySessionWithStatus,
) -> Result<Json<MeResponse>, AppError> {
    let (user, account) = (context.user(), context.account());
    let enabled = status.is_on();
    Ok(Json(MeResponse {
        user: UserBody::new(user, enabled),
        account: AccountBody::from(account),
        two_factor: TwoFactorBody {
            enabled,
            enabled_at: status.enabled_at.map(Timestamp::to_rfc3339),
            recovery_codes_remaining: status.recovery_codes_remaining,
            pending_setup: status.pending_until.is_some(),
        },
        enforcement: EnforcementBody {
            required: account.two_factor_required,
            grace_period_until: account.grace_period_until.map(Timestamp::to_rfc3339),
            status: context.enforcement(),
        },
    }))
}
