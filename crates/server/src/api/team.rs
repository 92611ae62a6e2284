//! Account administration (SPEC §4): the 2FA policy, users and invitations (the account's
//! audit log is in [`super::activity`]). Every handler takes a manager's session (members
//! get `403 forbidden` before any handler runs), or an API key with the grant for it
//! ([`Caller`], SPEC §11). The powers that amount to account recovery take a
//! [`RecoveryAdminSession`] (SPEC §9, review F6): within the step-up window, with 2FA on;
//! or a key granted `users:write` or `policy:write`, acting as its creator.

use super::path_id as id;
use super::schema::{AccountBody, TrustedDevicesPolicyBody, TwoFactorPolicyBody, UserBody};
use crate::error::{AppError, ErrorBody, Json};
use crate::extract::{ClientMeta, RecoveryAdminSession};
use crate::key_auth::Caller;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tessera_core::Timestamp;
use tessera_core::model::{Invitation, InvitationId, TrustedDevices, UserId};
use tessera_core::principal::Reads;
use tessera_core::principal::grant::{
    AccountRead, InvitationsWrite, PolicyWrite, UsersRead, UsersWrite,
};
use tessera_core::team::{InviteInput, PolicyInput};
use tessera_core::validate::FieldError;
use utoipa::ToSchema;

/// The account and its 2FA policy. Also for API keys granted `account:read`.
#[utoipa::path(get, path = "/account", tag = "account",
    security(("session" = []), ("api_key" = ["account:read"])),
    responses(
        (status = 200, body = AccountBody),
        (status = 401, description = "`unauthenticated`, `session_expired`, `invalid_api_key` or `api_key_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden` (members), `two_factor_setup_required`, `insufficient_grant` or `ip_not_allowed`", body = ErrorBody),
    ))]
pub async fn account(caller: Caller<AccountRead>) -> Json<AccountBody> {
    Json(AccountBody::from(caller.account_read()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyRequest {
    /// Whether every user of the account must use 2FA (users who sign in with SSO excepted).
    pub required: bool,
    /// Until when users without 2FA may still skip it: a date (`2026-12-01`, meaning the
    /// start of that day, UTC) or an RFC 3339 time; in the future; only with `required`.
    #[schema(example = "2026-12-01")]
    pub grace_period_until: Option<String>,
}

/// Requires 2FA for everyone in the account, or makes it optional again.
///
/// Turning the requirement on emails every user. Users without 2FA may go on during the grace
/// period; after it (or at once, without one) they must set it up at their next request.
/// Turning it off changes no user's 2FA.
///
/// Also for API keys granted `policy:write`, acting as their creator (who must still be the
/// owner or an admin, with 2FA while `TESSERA_ADMIN_REQUIRES_2FA` is on); no step-up.
#[utoipa::path(put, path = "/account/two-factor-policy", tag = "account",
    security(("session" = []), ("api_key" = ["policy:write"])), request_body = PolicyRequest,
    responses(
        (status = 200, body = TwoFactorPolicyBody),
        (status = 401, description = "`unauthenticated`, `session_expired`, `invalid_api_key` or `api_key_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden` (members), `two_factor_setup_required`, `admin_two_factor_required` (the caller has no 2FA and `TESSERA_ADMIN_REQUIRES_2FA` is on), `reauthentication_required` (no authentication of this session in the last 15 minutes: `POST /me/reauthenticate`), `insufficient_grant` (also when the key's creator may no longer give it) or `ip_not_allowed`", body = ErrorBody),
        (status = 422, description = "`validation_error`: a bad or past date", body = ErrorBody),
    ))]
pub async fn set_policy(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    caller: Caller<PolicyWrite, RecoveryAdminSession>,
    Json(body): Json<PolicyRequest>,
) -> Result<Json<TwoFactorPolicyBody>, AppError> {
    let input = PolicyInput {
        required: body.required,
        grace_period_until: body.grace_period_until.as_deref(),
    };
    let account = state
        .core
        .team
        .set_two_factor_policy(caller.acting(), input, &meta)
        .await?;
    Ok(Json(TwoFactorPolicyBody::from(&account)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrustedDevicesPolicyRequest {
    /// `allowed` or `forbidden`.
    #[schema(example = "forbidden")]
    pub trusted_devices: String,
}

/// Allows or forbids "Don't ask again on this device" for the account's users.
///
/// Checked at every sign-in: `forbidden` makes every device ask for the second step again at
/// once, and ends their trust (allowing it again later revives none).
///
/// Also for API keys granted `policy:write`, acting as their creator; no step-up.
#[utoipa::path(put, path = "/account/trusted-devices-policy", tag = "account",
    security(("session" = []), ("api_key" = ["policy:write"])), request_body = TrustedDevicesPolicyRequest,
    responses(
        (status = 200, body = TrustedDevicesPolicyBody),
        (status = 401, description = "`unauthenticated`, `session_expired`, `invalid_api_key` or `api_key_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`, `two_factor_setup_required`, `admin_two_factor_required` (the caller has no 2FA and `TESSERA_ADMIN_REQUIRES_2FA` is on), `reauthentication_required` (no authentication of this session in the last 15 minutes: `POST /me/reauthenticate`), `insufficient_grant` (also when the key's creator may no longer give it) or `ip_not_allowed`", body = ErrorBody),
        (status = 422, description = "`validation_error`: neither `allowed` nor `forbidden`", body = ErrorBody),
    ))]
pub async fn set_trusted_devices_policy(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    caller: Caller<PolicyWrite, RecoveryAdminSession>,
    Json(body): Json<TrustedDevicesPolicyRequest>,
) -> Result<Json<TrustedDevicesPolicyBody>, AppError> {
    let policy: TrustedDevices = body
        .trusted_devices
        .parse()
        .map_err(|_| FieldError::new("trusted_devices", "must be \"allowed\" or \"forbidden\""))?;
    let account = state
        .core
        .team
        .set_trusted_devices_policy(caller.acting(), policy, &meta)
        .await?;
    Ok(Json(TrustedDevicesPolicyBody {
        trusted_devices: account.trusted_devices.as_str(),
    }))
}

/// The users of the account, in order of joining, with their 2FA status. Also for API keys
/// granted `users:read`.
#[utoipa::path(get, path = "/account/users", tag = "account",
    security(("session" = []), ("api_key" = ["users:read"])),
    responses(
        (status = 200, body = Vec<UserBody>),
        (status = 401, description = "`unauthenticated`, `session_expired`, `invalid_api_key` or `api_key_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`, `insufficient_grant` or `ip_not_allowed`", body = ErrorBody),
    ))]
pub async fn users(
    State(state): State<AppState>,
    caller: Caller<UsersRead>,
) -> Result<Json<Vec<UserBody>>, AppError> {
    let members = state.core.team.members(&caller).await?;
    Ok(Json(
        members
            .iter()
            .map(|m| UserBody::new(&m.user, m.two_factor_enabled))
            .collect(),
    ))
}

/// Deletes a user: their sessions, factors and devices go with them; their events stay.
/// Inviting the same email again gives a fresh user without 2FA.
///
/// Also for API keys granted `users:write`, acting as their creator: never on the owner nor
/// on the creator themselves, and only while the creator is the owner or an admin (with 2FA
/// while `TESSERA_ADMIN_REQUIRES_2FA` is on); no step-up.
#[utoipa::path(delete, path = "/account/users/{id}", tag = "account",
    security(("session" = []), ("api_key" = ["users:write"])), params(("id" = String, Path, description = "User id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "`unauthenticated`, `session_expired`, `invalid_api_key` or `api_key_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden` (members, yourself or the owner; for a key, its creator or the owner), `two_factor_setup_required`, `admin_two_factor_required` (the caller has no 2FA and `TESSERA_ADMIN_REQUIRES_2FA` is on), `reauthentication_required` (no authentication of this session in the last 15 minutes: `POST /me/reauthenticate`), `insufficient_grant` (also when the key's creator may no longer give it) or `ip_not_allowed`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`conflict`: a concurrent change (the caller deleted by another admin meanwhile) got in the way; nothing was changed", body = ErrorBody),
    ))]
pub async fn delete_user(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    caller: Caller<UsersWrite, RecoveryAdminSession>,
    Path(user): Path<String>,
) -> Result<StatusCode, AppError> {
    let who = caller.acting();
    let target = state
        .core
        .team
        .managed(who, id::<UserId>(&user)?, &meta)
        .await?;
    state.core.team.delete_user(who, target, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct ResetResponse {
    pub user: UserBody,
}

/// Resets a user's 2FA: their secret, recovery codes and paper key stop working, their
/// sessions end, and they are emailed. If the account requires 2FA, they set it up again at
/// their next sign-in.
///
/// Also for API keys granted `users:write`, acting as their creator (as for deleting a user;
/// the email names the creator); no step-up.
#[utoipa::path(post, path = "/account/users/{id}/two-factor/reset", tag = "account",
    security(("session" = []), ("api_key" = ["users:write"])), params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, body = ResetResponse),
        (status = 401, description = "`unauthenticated`, `session_expired`, `invalid_api_key` or `api_key_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden` (members, yourself or the owner; for a key, its creator or the owner), `two_factor_setup_required`, `admin_two_factor_required` (the caller has no 2FA and `TESSERA_ADMIN_REQUIRES_2FA` is on), `reauthentication_required` (no authentication of this session in the last 15 minutes: `POST /me/reauthenticate`), `insufficient_grant` (also when the key's creator may no longer give it) or `ip_not_allowed`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`not_enabled`: the user has no 2FA", body = ErrorBody),
    ))]
pub async fn reset_two_factor(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    caller: Caller<UsersWrite, RecoveryAdminSession>,
    Path(user): Path<String>,
) -> Result<Json<ResetResponse>, AppError> {
    let who = caller.acting();
    let target = state
        .core
        .team
        .managed(who, id::<UserId>(&user)?, &meta)
        .await?;
    let user = UserBody::new(target.user(), false);
    state.core.team.reset_two_factor(who, target, &meta).await?;
    Ok(Json(ResetResponse { user }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationRequest {
    #[schema(example = "grace@example.com")]
    pub email: String,
    #[schema(example = "Grace Hopper")]
    pub name: String,
    /// `admin` or `member`.
    #[schema(example = "member")]
    pub role: String,
    /// The invitee signs in with the team's SSO (their first SSO sign-in creates the user,
    /// even without `jit_provisioning`) instead of choosing a password. The team must have SSO
    /// for the email's domain.
    #[serde(default)]
    pub sso: bool,
}

/// Invites someone: they get an email with a link valid 7 days, where they choose a password.
///
/// Also for API keys granted `invitations:write`, which invite members only (`403 forbidden`
/// for an admin).
#[utoipa::path(post, path = "/account/invitations", tag = "account",
    security(("session" = []), ("api_key" = ["invitations:write"])), request_body = InvitationRequest,
    responses(
        (status = 201, body = InvitationBody),
        (status = 403, description = "`forbidden` (members, or a key inviting an admin; the last two only when inviting an admin), `insufficient_grant`, `ip_not_allowed`, `two_factor_setup_required`, `admin_two_factor_required` (the caller has no 2FA and `TESSERA_ADMIN_REQUIRES_2FA` is on) or `reauthentication_required` (no authentication of this session in the last 15 minutes: `POST /me/reauthenticate`)", body = ErrorBody),
        (status = 409, description = "`already_member` (a member of this team has the email) or `invitation_exists`", body = ErrorBody),
        (status = 422, description = "`validation_error`", body = ErrorBody),
    ))]
pub async fn invite(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    caller: Caller<InvitationsWrite>,
    Json(body): Json<InvitationRequest>,
) -> Result<(StatusCode, Json<InvitationBody>), AppError> {
    let input = InviteInput {
        email: body.email,
        name: body.name,
        role: body.role,
        sso: body.sso,
    };
    let invitation = state
        .core
        .team
        .invite(caller.inviter(), input, &meta)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(InvitationBody::new(&invitation, state.core.now())),
    ))
}

/// The invitations not yet accepted, revoked or expired, newest first.
#[utoipa::path(get, path = "/account/invitations", tag = "account",
    security(("session" = []), ("api_key" = ["invitations:write"])),
    responses(
        (status = 200, body = Vec<InvitationBody>),
        (status = 403, description = "`forbidden`, `insufficient_grant` or `ip_not_allowed`", body = ErrorBody),
    ))]
pub async fn invitations(
    State(state): State<AppState>,
    caller: Caller<InvitationsWrite>,
) -> Result<Json<Vec<InvitationBody>>, AppError> {
    let now = state.core.now();
    let open = state.core.team.open_invitations(&caller).await?;
    Ok(Json(
        open.iter().map(|i| InvitationBody::new(i, now)).collect(),
    ))
}

/// Withdraws an invitation: its link stops working.
#[utoipa::path(delete, path = "/account/invitations/{id}", tag = "account",
    security(("session" = []), ("api_key" = ["invitations:write"])), params(("id" = String, Path, description = "Invitation id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "`forbidden`, `insufficient_grant` or `ip_not_allowed`", body = ErrorBody),
        (status = 404, description = "`not_found`: no open invitation by that id", body = ErrorBody),
    ))]
pub async fn revoke_invitation(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    caller: Caller<InvitationsWrite>,
    Path(invitation): Path<String>,
) -> Result<StatusCode, AppError> {
    let invitation = id::<InvitationId>(&invitation)?;
    state
        .core
        .team
        .revoke_invitation(caller.inviter(), invitation, &meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
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
    /// `password` (chosen with the link) or `sso` (the first SSO sign-in creates the user).
    pub auth_source: String,
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
            auth_source: i.auth_source.to_string(),
            created_at: i.created_at.to_rfc3339(),
            expires_at: i.expires_at.to_rfc3339(),
        }
    }
}
