//! `POST /signup`, `POST /login`, `POST /logout`.

use super::schema::{AccountBody, UserBody};
use crate::app::AppState;
use crate::error::{AppError, ErrorBody, Json, login_error};
use crate::extract::{AnySession, ClientMeta};
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tessera_core::auth::{LoginError, LoginInput, SignupInput};
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
    /// 8 to 256 characters.
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct SignupResponse {
    pub user: UserBody,
    pub account: AccountBody,
}

/// Creates an account (team) and its owner.
#[utoipa::path(post, path = "/signup", tag = "auth", request_body = SignupRequest,
    responses(
        (status = 201, body = SignupResponse),
        (status = 409, description = "`email_taken`", body = ErrorBody),
        (status = 422, description = "`validation_error`", body = ErrorBody),
    ))]
pub async fn signup(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    Json(body): Json<SignupRequest>,
) -> Result<(StatusCode, Json<SignupResponse>), AppError> {
    let (user, account) = state
        .auth
        .signup(
            SignupInput {
                account_name: body.account_name,
                name: body.name,
                email: body.email,
                password: body.password.into(),
            },
            &meta,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(SignupResponse {
            user: UserBody::from(&user),
            account: AccountBody::from(&account),
        }),
    ))
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// The outcome of a sign-in step, by `status`.
#[derive(Serialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum LoginResponse {
    /// Signed in: use `session_token` as `Authorization: Bearer …`.
    Authenticated {
        session_token: String,
        expires_at: String,
        user: UserBody,
        /// `null`, or `{"required": true, "deadline": …}` while a 2FA grace period runs.
        #[schema(value_type = Option<Object>)]
        two_factor_setup: Option<serde_json::Value>,
    },
}

/// Signs in with email and password.
///
/// A wrong password and an unknown email get the same answer. 10 consecutive failures for
/// one email lock its password sign-in for 15 minutes; 50 failures from one address in 10
/// minutes are refused too; both answer 429 with `Retry-After`.
#[utoipa::path(post, path = "/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, body = LoginResponse),
        (status = 401, description = "`invalid_credentials`", body = ErrorBody),
        (status = 422, description = "`validation_error`", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`, with `Retry-After`", body = ErrorBody),
    ))]
pub async fn login(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    Json(body): Json<LoginRequest>,
) -> Result<Json<LoginResponse>, AppError> {
    let input = LoginInput {
        email: body.email,
        password: body.password.into(),
    };
    match state.auth.login(input, &meta).await {
        Ok(signed_in) => {
            state.metrics.sign_in("success");
            let context = signed_in.context;
            Ok(Json(LoginResponse::Authenticated {
                session_token: signed_in.token.expose().to_owned(),
                expires_at: context.session.expires_at.to_rfc3339(),
                user: UserBody::from(&context.user),
                two_factor_setup: None,
            }))
        }
        Err(e) => {
            state.metrics.sign_in(match &e {
                LoginError::InvalidCredentials => "invalid_credentials",
                LoginError::TooManyAttempts { .. } => "throttled",
                LoginError::Invalid(_) => "invalid_request",
                LoginError::Internal(_) => "error",
            });
            Err(login_error(e, state.auth.now()))
        }
    }
}

/// Ends the current session.
#[utoipa::path(post, path = "/logout", tag = "auth", security(("session" = [])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
    ))]
pub async fn logout(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    AnySession(context): AnySession,
) -> Result<StatusCode, AppError> {
    state.auth.logout(&context, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}
