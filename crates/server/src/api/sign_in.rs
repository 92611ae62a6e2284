//! Sign-in and sign-out: `POST /login`, `POST /logout`. The code asked for after the password
//! is in [`super::second_step`]; sign-up in [`super::sign_up`].

use super::schema::UserBody;
use crate::error::{AppError, ErrorBody, Json, login_error};
use crate::extract::{AnySession, ClientMeta};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tessera_core::Timestamp;
use tessera_core::sessions::{SignInMethod, SignedIn};
use tessera_core::sign_in::{LoginError, LoginInput, LoginOutcome};
use tessera_core::team::enforcement::Enforcement;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
    /// The `device_token` of an earlier sign-in from this client: a recognized device skips
    /// the email code (users without 2FA), a trusted one the second step (users with 2FA,
    /// until its `trusted_until`, while the account allows it).
    pub device_token: Option<String>,
}

/// The outcome of a sign-in step, by `status`.
// Built once per request and serialized at once: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
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
        /// After `POST /login/verify`: `totp`, `webauthn`, `recovery_code` or `email_code`;
        /// after `POST /login` from a trusted device: `trusted_device`; after
        /// `POST /login/passkey/finish`: `passkey`.
        #[serde(skip_serializing_if = "Option::is_none")]
        method_used: Option<&'static str>,
        /// After signing in with a recovery code: how many are left.
        #[serde(skip_serializing_if = "Option::is_none")]
        recovery_codes_remaining: Option<i64>,
        /// After an email code, or a second step from a device not used before: the token
        /// that makes this device recognized for 30 days (send it as `device_token` with
        /// later sign-ins, from the same User-Agent).
        #[serde(skip_serializing_if = "Option::is_none")]
        device_token: Option<String>,
        /// After `remember_device: true` (if the account allows it): until when sign-ins
        /// from this device skip the second step.
        #[serde(skip_serializing_if = "Option::is_none")]
        trusted_until: Option<String>,
    },
    /// Signed in, but the account requires 2FA and the user has none (and no grace period
    /// is left): this session may only call `GET /me`, `POST /me/2fa/setup`,
    /// `POST /me/2fa/activate` and `POST /logout` until 2FA is on; then it is a full session.
    TwoFactorSetupRequired {
        session_token: String,
        expires_at: String,
        user: UserBody,
        /// After `POST /login/verify`, as for `authenticated`.
        #[serde(skip_serializing_if = "Option::is_none")]
        method_used: Option<&'static str>,
        /// After an email code, as for `authenticated`.
        #[serde(skip_serializing_if = "Option::is_none")]
        device_token: Option<String>,
    },
    /// The password was right and the user has 2FA: answer the challenge with
    /// `POST /login/verify`.
    TwoFactorRequired {
        challenge_token: String,
        /// What the user has, of `totp`, `webauthn` and `recovery_code`.
        methods: Vec<&'static str>,
        /// With `webauthn`: `{"publicKey": PublicKeyCredentialRequestOptions}` for
        /// `navigator.credentials.get`; answer with `POST /login/verify`
        /// `{challenge_token, webauthn}`.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Option<Object>)]
        webauthn_options: Option<serde_json::Value>,
        expires_at: String,
    },
    /// The password was right, the user has no 2FA, and this device is not recognized: a
    /// 6-digit code was emailed; answer with `POST /login/verify`, or ask for another with
    /// `POST /login/resend` from `resend_available_at` on.
    DeviceVerificationRequired {
        challenge_token: String,
        /// `["email_code"]`.
        methods: Vec<&'static str>,
        expires_at: String,
        resend_available_at: String,
    },
}

impl LoginResponse {
    /// What a new session is, at `now`: full (with the grace-period deadline while one runs)
    /// or restricted to 2FA setup.
    pub(super) fn signed_in(signed_in: &SignedIn, now: Timestamp) -> Self {
        let context = signed_in.context();
        let session_token = signed_in.token().expose().to_owned();
        let expires_at = context.session.expires_at.to_rfc3339();
        let user = UserBody::new(&context.user, context.two_factor_enabled);
        match context.enforcement(now) {
            Enforcement::SetupRequired => Self::TwoFactorSetupRequired {
                session_token,
                expires_at,
                user,
                method_used: None,
                device_token: None,
            },
            grace => Self::Authenticated {
                session_token,
                expires_at,
                user,
                two_factor_setup: (grace == Enforcement::Grace).then(|| {
                    json!({
                        "required": true,
                        "deadline": context.account.grace_period_until.map(Timestamp::to_rfc3339),
                    })
                }),
                method_used: (signed_in.method() == SignInMethod::TrustedDevice)
                    .then(|| signed_in.method().as_str()),
                recovery_codes_remaining: None,
                device_token: None,
                trusted_until: None,
            },
        }
    }
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
        device_token: body.device_token,
    };
    match state.core.sign_in.login(input, &meta).await {
        Ok(LoginOutcome::SignedIn(signed_in)) => {
            state.metrics.sign_in("success");
            Ok(Json(LoginResponse::signed_in(&signed_in, state.core.now())))
        }
        Ok(LoginOutcome::SecondStep(pending)) => {
            state.metrics.sign_in("second_step");
            Ok(Json(LoginResponse::TwoFactorRequired {
                challenge_token: pending.token.expose().to_owned(),
                methods: pending.methods.iter().map(|m| m.as_str()).collect(),
                webauthn_options: pending.webauthn_options,
                expires_at: pending.challenge.expires_at.to_rfc3339(),
            }))
        }
        Ok(LoginOutcome::DeviceVerification(pending)) => {
            state.metrics.sign_in("device_verification");
            let resend = state.core.policy().email_code_resend_secs;
            Ok(Json(LoginResponse::DeviceVerificationRequired {
                challenge_token: pending.token.expose().to_owned(),
                methods: vec!["email_code"],
                expires_at: pending.challenge.expires_at.to_rfc3339(),
                resend_available_at: pending.challenge.created_at.plus_secs(resend).to_rfc3339(),
            }))
        }
        Err(e) => {
            state.metrics.sign_in(match &e {
                LoginError::InvalidCredentials => "invalid_credentials",
                LoginError::TooManyAttempts { .. } => "throttled",
                LoginError::Invalid(_) => "invalid_request",
                LoginError::Internal(_) => "error",
            });
            Err(login_error(e, state.core.now()))
        }
    }
}

/// Ends the current session.
#[utoipa::path(post, path = "/logout", tag = "auth", security(("session" = [])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorBody),
    ))]
pub async fn logout(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    AnySession(context): AnySession,
) -> Result<StatusCode, AppError> {
    state.core.sessions.logout(&context, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}
