//! Sign-up (SPEC §8): `POST /signup`, whose answer depends on the deployment's mode, and
//! `POST /signup/confirm`, which follows the emailed link.

use super::schema::{AccountBody, UserBody};
use crate::error::{AppError, ErrorBody, Json, signup_error};
use crate::extract::ClientMeta;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tessera_core::sign_in::SignupInput;
use tessera_core::sign_up::Requested;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    #[schema(example = "Acme")]
    pub account_name: String,
    #[schema(example = "Ada Lovelace")]
    pub name: String,
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// 12 to 128 characters, not easy to guess.
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct SignupResponse {
    pub user: UserBody,
    pub account: AccountBody,
}

#[derive(Serialize, ToSchema)]
pub struct ConfirmationSent {
    /// `confirmation_sent`, whether or not the email already has a user.
    #[schema(example = "confirmation_sent")]
    pub status: &'static str,
}

/// Asks for a team account and its owner. `verify` mode (the default): `202`, the same
/// answer whatever the email; the link to follow is emailed. `open`: `201`, created at once.
/// `closed`: `403 signup_closed`.
#[utoipa::path(post, path = "/signup", tag = "auth", request_body = SignupRequest,
    responses(
        (status = 201, description = "`open` mode", body = SignupResponse),
        (status = 202, description = "`verify` mode", body = ConfirmationSent),
        (status = 403, description = "`signup_closed`", body = ErrorBody),
        (status = 409, description = "`email_taken` (`open` mode only)", body = ErrorBody),
        (status = 422, description = "`validation_error`", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: 10 an hour per address", body = ErrorBody),
    ))]
pub async fn signup(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    Json(body): Json<SignupRequest>,
) -> Result<Response, AppError> {
    let input = SignupInput {
        account_name: body.account_name,
        name: body.name,
        email: body.email,
        password: body.password.into(),
    };
    match state.core.sign_up.request(input, &meta).await {
        Ok(Requested::Created(registered)) => Ok((
            StatusCode::CREATED,
            Json(SignupResponse {
                user: UserBody::new(registered.user(), false),
                account: AccountBody::from(registered.account()),
            }),
        )
            .into_response()),
        Ok(Requested::ConfirmationSent) => Ok((
            StatusCode::ACCEPTED,
            Json(ConfirmationSent {
                status: "confirmation_sent",
            }),
        )
            .into_response()),
        Err(e) => Err(signup_error(e, state.core.now())),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    /// The token from the link (`/signup/confirm/{token}`).
    pub token: String,
    /// Only for a team the operator created: the owner's new password.
    pub password: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ConfirmResponse {
    pub user: UserBody,
    pub account: AccountBody,
    pub session_token: String,
    pub expires_at: String,
    /// Send it as `device_token` with later sign-ins: this client is recognized.
    pub device_token: String,
}

/// Follows a sign-up link: creates the team and its owner (once), signs them in and
/// recognizes this client.
#[utoipa::path(post, path = "/signup/confirm", tag = "auth", request_body = ConfirmRequest,
    responses(
        (status = 201, body = ConfirmResponse),
        (status = 404, description = "`signup_link_unknown`", body = ErrorBody),
        (status = 409, description = "`email_taken`: a user got the email meanwhile", body = ErrorBody),
        (status = 410, description = "`signup_link_used` or `signup_link_expired`", body = ErrorBody),
        (status = 422, description = "`validation_error` (the password of an operator's link)", body = ErrorBody),
    ))]
pub async fn confirm(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    Json(body): Json<ConfirmRequest>,
) -> Result<(StatusCode, Json<ConfirmResponse>), AppError> {
    let password = body.password.map(Into::into);
    let registered = state
        .core
        .sign_up
        .confirm(&body.token, password.as_ref(), &meta)
        .await?;
    let account = AccountBody::from(registered.account());
    let done = state
        .core
        .sessions
        .open_registered(registered, &meta)
        .await?;
    let device = state.core.devices.remember(&done, &meta).await?;
    let session = &done.context().session;
    Ok((
        StatusCode::CREATED,
        Json(ConfirmResponse {
            user: UserBody::new(&done.context().user, false),
            account,
            session_token: done.token().expose().to_owned(),
            expires_at: session.expires_at.to_rfc3339(),
            device_token: device.expose().to_owned(),
        }),
    ))
}
