//! `POST /invitations/accept`: the invitee's side of an invitation.

use super::schema::UserBody;
use crate::error::{AppError, ErrorBody, Json};
use crate::extract::ClientMeta;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptRequest {
    /// The token from the invitation link (`/invitations/{token}`).
    pub token: String,
    /// The new user's password.
    pub password: String,
    /// Replaces the name the inviter typed.
    pub name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AcceptResponse {
    pub user: UserBody,
}

/// Accepts an invitation: creates the user with the role they were invited with. They then
/// sign in with `POST /login` (where the account's 2FA policy applies).
#[utoipa::path(post, path = "/invitations/accept", tag = "auth", request_body = AcceptRequest,
    responses(
        (status = 201, body = AcceptResponse),
        (status = 404, description = "`not_found`: no invitation has this token", body = ErrorBody),
        (status = 409, description = "`email_taken`, or `invitation_sso`: the invitee signs in with the team's SSO (`POST /login/sso`), which creates the user", body = ErrorBody),
        (status = 410, description = "`invitation_used`, `invitation_expired` or `invitation_revoked`", body = ErrorBody),
        (status = 422, description = "`validation_error`", body = ErrorBody),
    ))]
pub async fn accept(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    Json(body): Json<AcceptRequest>,
) -> Result<(StatusCode, Json<AcceptResponse>), AppError> {
    let registered = state
        .core
        .invitations
        .accept(
            &body.token,
            &body.password.into(),
            body.name.as_deref(),
            &meta,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(AcceptResponse {
            user: UserBody::new(registered.user(), false),
        }),
    ))
}
