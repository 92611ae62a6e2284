//! The one error type of the HTTP layer: every failure becomes
//! `{"error": {"code", "message"}}` with a fitting status and a stable code.
//! Internal failures are logged with their cause and answer an opaque 500; a database that
//! cannot be reached or cannot write for now (`tessera_core::store::Unavailable`, found in
//! the cause's chain) answers `503 unavailable` with `Retry-After` instead.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tessera_core::Internal;
use tessera_core::Timestamp;
use tessera_core::credentials::{ChangePasswordError, ForgotError, ResetError};
use tessera_core::devices::{DeviceError, ResendError};
use tessera_core::factors::TwoFactorError;
use tessera_core::factors::webauthn::{PasskeyError, SecurityKeyError};
use tessera_core::principal::Forbidden;
use tessera_core::second_step::SecondStepError;
use tessera_core::sessions::{ReauthError, RevokeError, SessionError};
use tessera_core::sign_in::{LoginError, SignupError};
use tessera_core::sign_up::{ConfirmError, SignUpError};
use tessera_core::sso::SsoError;
use tessera_core::store::StoreError;
use tessera_core::team::{InvitationError, TeamError};
use tessera_core::validate::FieldError;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("sign in first")]
    Unauthenticated,
    #[error("the session has expired; sign in again")]
    SessionExpired,
    #[error("set up two-factor authentication first")]
    TwoFactorSetupRequired,
    /// A sensitive action outside the step-up window (SPEC §9).
    #[error(
        "confirm it is you first: POST /me/reauthenticate with your password (and a code, with 2FA on)"
    )]
    ReauthenticationRequired,
    /// A power that amounts to account recovery, by a manager without 2FA.
    #[error(
        "turn on two-factor authentication for your own user first: administrators need it to delete users, reset 2FA, invite admins or change the team's policy"
    )]
    AdminTwoFactorRequired,
    #[error("that code is not valid")]
    InvalidCode { attempts_remaining: Option<i64> },
    #[error("this sign-in has expired; enter your password again")]
    ChallengeExpired,
    #[error("two-factor authentication is already on")]
    AlreadyEnabled,
    #[error("no two-factor setup is pending, or it expired: start again")]
    NoPendingSetup,
    #[error("two-factor authentication is not on")]
    NotEnabled,
    #[error("too many attempts; try again later")]
    TooManyAttempts { retry_after_secs: i64 },
    #[error("{message}")]
    Validation {
        field: Option<&'static str>,
        message: String,
        /// What the field's own message says, without the field's name.
        detail: Option<String>,
    },
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("this email already has an open invitation; revoke it to send a new one")]
    InvitationExists,
    #[error("this person is already a member of the team")]
    AlreadyMember,
    /// An invitation link that was used, withdrawn or has expired.
    #[error("{message}")]
    InvitationGone {
        code: &'static str,
        message: &'static str,
    },
    /// A password reset link that cannot be used (SPEC §8).
    #[error("{message}")]
    ResetLink {
        status: StatusCode,
        code: &'static str,
        message: &'static str,
    },
    #[error("sign-up is closed on this server; ask its operator for a team")]
    SignupClosed,
    /// A sign-up link that is unknown (404), used or expired (410).
    #[error("{message}")]
    SignupLink {
        code: &'static str,
        message: &'static str,
    },
    /// Security keys (SPEC §10): a refusal with a code of its own.
    #[error("{message}")]
    SecurityKey {
        status: StatusCode,
        code: &'static str,
        message: &'static str,
    },
    #[error("{0}")]
    MalformedJson(String),
    #[error("send the request body as application/json")]
    UnsupportedMediaType,
    #[error("the request body is too large")]
    PayloadTooLarge,
    /// The body did not arrive within the header timeout.
    #[error("the request took too long to arrive")]
    RequestTimeout,
    /// The body broke off (the client went away mid-body).
    #[error("{0}")]
    BadRequest(&'static str),
    #[error("no such resource")]
    NotFound,
    #[error("this method is not allowed here")]
    MethodNotAllowed,
    #[error("the service is temporarily unavailable; try again shortly")]
    Unavailable,
    /// A concurrent change (a deletion) got in the way; nothing was changed (review D7).
    #[error(
        "something this request refers to was changed or deleted meanwhile; reload and try again"
    )]
    Conflict,
    /// A stored secret that no master key of this instance opens (SPEC §14): nothing was
    /// counted or changed; the operator is alerted (log, `tessera_decrypt_failures_total`).
    #[error("a stored secret cannot be read by this server right now; try again later")]
    SecretUnavailable(#[source] anyhow::Error),
    #[error("the request took too long; try again")]
    Timeout,
    /// An API key that is malformed, unknown or revoked (SPEC §11).
    #[error("{0}")]
    InvalidApiKey(&'static str),
    #[error("this API key has expired")]
    ApiKeyExpired,
    /// An API key used from outside its allowlist.
    #[error("this API key may not be used from this address")]
    IpNotAllowed,
    /// An API key without the grant, or a manager giving a grant they do not hold.
    #[error("{message}")]
    InsufficientGrant { grant: String, message: String },
    /// Single sign-on refused or failed (SPEC §12), in words; the code says which case.
    #[error("{message}")]
    Sso {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// `Retry-After` of a `503`: a lost database is usually back, or its requests moved to
/// another instance, within a second or two.
pub const RETRY_UNAVAILABLE_SECS: u64 = 1;

/// The body of every error answer.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `invalid_credentials`, `validation_error`, …
    pub code: &'static str,
    /// For people; may change between versions.
    pub message: String,
    /// The offending field, for `validation_error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
    /// What is wrong with each offending field (a password's hint from the strength
    /// estimator, say), for `validation_error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<std::collections::BTreeMap<&'static str, String>>,
    /// Wrong codes this sign-in still allows, for `invalid_code`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts_remaining: Option<i64>,
    /// The grant missing, for `insufficient_grant`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
}

impl AppError {
    /// Our failure: a 500, unless the database is only unavailable for now (a 503).
    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        let error = error.into();
        if error
            .chain()
            .any(|e| e.is::<tessera_core::store::Unavailable>())
        {
            tracing::warn!(
                error = tessera_core::describe_error(error.as_ref()),
                "the database is unavailable"
            );
            return Self::Unavailable;
        }
        Self::Internal(error)
    }

    pub fn too_many(now: Timestamp, retry_at: Timestamp) -> Self {
        Self::TooManyAttempts {
            retry_after_secs: now.secs_until(retry_at).max(1),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidCredentials
            | Self::Unauthenticated
            | Self::SessionExpired
            | Self::InvalidApiKey(_)
            | Self::ApiKeyExpired => StatusCode::UNAUTHORIZED,
            Self::IpNotAllowed | Self::InsufficientGrant { .. } => StatusCode::FORBIDDEN,
            Self::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::TwoFactorSetupRequired
            | Self::ReauthenticationRequired
            | Self::AdminTwoFactorRequired => StatusCode::FORBIDDEN,
            Self::InvalidCode { .. } | Self::ChallengeExpired => StatusCode::UNAUTHORIZED,
            Self::AlreadyEnabled | Self::NoPendingSetup | Self::NotEnabled => StatusCode::CONFLICT,
            Self::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::EmailTaken | Self::InvitationExists | Self::AlreadyMember | Self::Conflict => {
                StatusCode::CONFLICT
            }
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::InvitationGone { .. } => StatusCode::GONE,
            Self::ResetLink { status, .. } | Self::SecurityKey { status, .. } => *status,
            Self::SignupClosed => StatusCode::FORBIDDEN,
            Self::SignupLink { code, .. } if *code == SIGNUP_LINK_UNKNOWN => StatusCode::NOT_FOUND,
            Self::SignupLink { .. } => StatusCode::GONE,
            Self::MalformedJson(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unavailable | Self::Timeout | Self::SecretUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Sso { status, .. } => *status,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidCredentials => "invalid_credentials",
            Self::Unauthenticated => "unauthenticated",
            Self::SessionExpired => "session_expired",
            Self::TooManyAttempts { .. } => "too_many_attempts",
            Self::TwoFactorSetupRequired => "two_factor_setup_required",
            Self::ReauthenticationRequired => "reauthentication_required",
            Self::AdminTwoFactorRequired => "admin_two_factor_required",
            Self::InvalidCode { .. } => "invalid_code",
            Self::ChallengeExpired => "challenge_expired",
            Self::AlreadyEnabled => "already_enabled",
            Self::NoPendingSetup => "no_pending_setup",
            Self::NotEnabled => "not_enabled",
            Self::Validation { .. } => "validation_error",
            Self::EmailTaken => "email_taken",
            Self::Forbidden(_) => "forbidden",
            Self::InvitationExists => "invitation_exists",
            Self::AlreadyMember => "already_member",
            Self::InvitationGone { code, .. } => code,
            Self::ResetLink { code, .. } | Self::SecurityKey { code, .. } => code,
            Self::SignupClosed => "signup_closed",
            Self::SignupLink { code, .. } => code,
            Self::MalformedJson(_) => "malformed_json",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::PayloadTooLarge => "payload_too_large",
            Self::RequestTimeout => "request_timeout",
            Self::BadRequest(_) => "bad_request",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Unavailable | Self::SecretUnavailable(_) => "unavailable",
            Self::Conflict => "conflict",
            Self::Timeout => "timeout",
            Self::InvalidApiKey(_) => "invalid_api_key",
            Self::ApiKeyExpired => "api_key_expired",
            Self::IpNotAllowed => "ip_not_allowed",
            Self::InsufficientGrant { .. } => "insufficient_grant",
            Self::Sso { code, .. } => code,
            Self::Internal(_) => "internal_error",
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let Self::Internal(cause) | Self::SecretUnavailable(cause) = &self {
            tracing::error!(
                error = tessera_core::describe_error(cause.as_ref()),
                "request failed"
            );
        }
        if matches!(
            self,
            Self::Forbidden(_)
                | Self::IpNotAllowed
                | Self::InsufficientGrant { .. }
                | Self::TwoFactorSetupRequired
                | Self::ReauthenticationRequired
                | Self::AdminTwoFactorRequired
        ) {
            // Refusals by a principal's extractor are logged (and audited) with their route
            // there; this also catches the ones a use case makes.
            tracing::warn!(code = self.code(), "access refused");
        }
        let status = self.status();
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.to_string(),
                field: match &self {
                    Self::Validation { field, .. } => *field,
                    _ => None,
                },
                fields: match &self {
                    Self::Validation {
                        field: Some(field),
                        detail: Some(detail),
                        ..
                    } => Some([(*field, detail.clone())].into()),
                    _ => None,
                },
                attempts_remaining: match &self {
                    Self::InvalidCode { attempts_remaining } => *attempts_remaining,
                    _ => None,
                },
                grant: match &self {
                    Self::InsufficientGrant { grant, .. } => Some(grant.clone()),
                    _ => None,
                },
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        match self {
            Self::TooManyAttempts { retry_after_secs } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            Self::SecretUnavailable(_) => {
                // Most likely instances rolling over to a new master key: soon over.
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(30));
            }
            Self::Unavailable | Self::Timeout => {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(RETRY_UNAVAILABLE_SECS),
                );
            }
            Self::Unauthenticated
            | Self::InvalidCredentials
            | Self::SessionExpired
            | Self::InvalidApiKey(_)
            | Self::ApiKeyExpired => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

impl From<FieldError> for AppError {
    fn from(e: FieldError) -> Self {
        Self::Validation {
            field: Some(e.field),
            message: format!("{}: {}", e.field, e.message),
            detail: Some(e.message),
        }
    }
}

impl From<Internal> for AppError {
    fn from(e: Internal) -> Self {
        match e {
            Internal::Sealed(_) => Self::SecretUnavailable(e.into()),
            Internal::Store(StoreError::Raced) => {
                tracing::info!("a request lost a race with a concurrent change");
                Self::Conflict
            }
            _ => Self::internal(e),
        }
    }
}

impl From<SignupError> for AppError {
    fn from(e: SignupError) -> Self {
        match e {
            SignupError::Invalid(e) => e.into(),
            SignupError::EmailTaken => Self::EmailTaken,
            SignupError::Internal(e) => e.into(),
        }
    }
}

impl From<SessionError> for AppError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Unauthenticated => Self::Unauthenticated,
            SessionError::Expired => Self::SessionExpired,
            SessionError::Internal(e) => e.into(),
        }
    }
}

impl From<TeamError> for AppError {
    fn from(e: TeamError) -> Self {
        match e {
            TeamError::Invalid(e) => e.into(),
            TeamError::Forbidden(why) => why.into(),
            TeamError::NotFound => Self::NotFound,
            TeamError::AlreadyMember => Self::AlreadyMember,
            TeamError::InvitationExists => Self::InvitationExists,
            TeamError::NotEnabled => Self::NotEnabled,
            TeamError::TooManyInvitations { wait_secs } => Self::TooManyAttempts {
                retry_after_secs: wait_secs.max(1),
            },
            TeamError::Internal(e) => e.into(),
        }
    }
}

impl From<SsoError> for AppError {
    fn from(e: SsoError) -> Self {
        let status = match &e {
            SsoError::Invalid(_) | SsoError::Internal(_) => {
                return match e {
                    SsoError::Invalid(e) => e.into(),
                    SsoError::Internal(e) => e.into(),
                    _ => Self::NotFound,
                };
            }
            SsoError::TooManyAttempts { wait_secs } => {
                return Self::TooManyAttempts {
                    retry_after_secs: *wait_secs,
                };
            }
            SsoError::NotConfigured => StatusCode::NOT_FOUND,
            SsoError::DisabledByTwoFactor
            | SsoError::EmailNotVerified
            | SsoError::DomainNotAllowed
            | SsoError::NoUser => StatusCode::FORBIDDEN,
            SsoError::InvalidState | SsoError::Expired => StatusCode::BAD_REQUEST,
            SsoError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            SsoError::ProviderUnreachable(_) | SsoError::ProviderRejected(_) => {
                StatusCode::BAD_GATEWAY
            }
        };
        Self::Sso {
            status,
            code: e.code(),
            message: e.to_string(),
        }
    }
}

impl From<Forbidden> for AppError {
    fn from(why: Forbidden) -> Self {
        match why {
            Forbidden::SetupRequired => Self::TwoFactorSetupRequired,
            Forbidden::ReauthenticationRequired => Self::ReauthenticationRequired,
            Forbidden::AdminTwoFactorRequired => Self::AdminTwoFactorRequired,
            why => Self::Forbidden(why.reason()),
        }
    }
}

impl From<InvitationError> for AppError {
    fn from(e: InvitationError) -> Self {
        let gone = |code, message| Self::InvitationGone { code, message };
        match e {
            InvitationError::Invalid(e) => e.into(),
            InvitationError::NotFound => Self::NotFound,
            InvitationError::Used => gone("invitation_used", "this invitation was already used"),
            InvitationError::Expired => gone(
                "invitation_expired",
                "this invitation has expired; ask for a new one",
            ),
            InvitationError::Revoked => gone("invitation_revoked", "this invitation was withdrawn"),
            InvitationError::EmailTaken => Self::EmailTaken,
            InvitationError::UseSso => Self::Sso {
                status: StatusCode::CONFLICT,
                code: "invitation_sso",
                message: e.to_string(),
            },
            InvitationError::Internal(e) => e.into(),
        }
    }
}

/// Second-step errors need the current time to turn a lock into `Retry-After`.
pub fn second_step_error(e: SecondStepError, now: Timestamp) -> AppError {
    match e {
        SecondStepError::Invalid(e) => e.into(),
        SecondStepError::ChallengeExpired => AppError::ChallengeExpired,
        SecondStepError::InvalidCode {
            attempts_remaining, ..
        } => AppError::InvalidCode {
            attempts_remaining: Some(attempts_remaining),
        },
        SecondStepError::TooManyAttempts { retry_at } => AppError::too_many(now, retry_at),
        // The user (and with them the challenge) was deleted while they answered it.
        SecondStepError::Internal(Internal::Store(StoreError::Raced)) => AppError::ChallengeExpired,
        SecondStepError::Internal(e) => e.into(),
    }
}

/// Re-authentication errors, likewise.
pub fn reauth_error(e: ReauthError, now: Timestamp) -> AppError {
    match e {
        ReauthError::Invalid(e) => e.into(),
        ReauthError::InvalidCredentials => AppError::InvalidCredentials,
        ReauthError::InvalidCode => AppError::InvalidCode {
            attempts_remaining: None,
        },
        ReauthError::TooManyAttempts { retry_at } => AppError::too_many(now, retry_at),
        ReauthError::Internal(e) => e.into(),
    }
}

const WEBAUTHN_UNAVAILABLE: AppError = AppError::SecurityKey {
    status: StatusCode::CONFLICT,
    code: "webauthn_unavailable",
    message: "security keys and passkeys need the server's public URL (TESSERA_PUBLIC_URL) to \
              have a domain name; browsers refuse IP addresses",
};

/// Security-key management errors, likewise.
pub fn security_key_error(e: SecurityKeyError) -> AppError {
    match e {
        SecurityKeyError::Invalid(e) => e.into(),
        SecurityKeyError::Unavailable => WEBAUTHN_UNAVAILABLE,
        SecurityKeyError::NoPendingRegistration => AppError::SecurityKey {
            status: StatusCode::CONFLICT,
            code: "no_pending_registration",
            message: "no security key registration is pending, or it expired: start again",
        },
        SecurityKeyError::Rejected => FieldError::new(
            "credential",
            "the security key's answer was not accepted (another challenge, another site, or no \
             user verification): start again",
        )
        .into(),
        SecurityKeyError::Duplicate => AppError::SecurityKey {
            status: StatusCode::CONFLICT,
            code: "already_registered",
            message: "this security key is registered already",
        },
        SecurityKeyError::NotFound => AppError::NotFound,
        SecurityKeyError::RequiredByAccount => AppError::Forbidden(
            "your team requires two-factor authentication: this is your last factor, so it cannot \
             be removed; add another first",
        ),
        SecurityKeyError::Internal(e) => e.into(),
    }
}

/// Passkey sign-in errors, likewise.
pub fn passkey_error(e: PasskeyError, now: Timestamp) -> AppError {
    match e {
        PasskeyError::Invalid(e) => e.into(),
        PasskeyError::Unavailable => WEBAUTHN_UNAVAILABLE,
        PasskeyError::ChallengeExpired => AppError::SecurityKey {
            status: StatusCode::UNAUTHORIZED,
            code: "challenge_expired",
            message: "this passkey sign-in has expired or was used: start again",
        },
        PasskeyError::Rejected => AppError::SecurityKey {
            status: StatusCode::UNAUTHORIZED,
            code: "invalid_credentials",
            message: "that passkey was not accepted",
        },
        PasskeyError::TooManyAttempts { retry_at } => AppError::too_many(now, retry_at),
        PasskeyError::Internal(e) => e.into(),
    }
}

/// 2FA management errors, likewise.
pub fn two_factor_error(e: TwoFactorError, now: Timestamp) -> AppError {
    match e {
        TwoFactorError::Invalid(e) => e.into(),
        TwoFactorError::AlreadyEnabled => AppError::AlreadyEnabled,
        TwoFactorError::NotEnabled => AppError::NotEnabled,
        TwoFactorError::NoPendingSetup => AppError::NoPendingSetup,
        TwoFactorError::InvalidCode => AppError::InvalidCode {
            attempts_remaining: None,
        },
        TwoFactorError::InvalidCredentials => AppError::InvalidCredentials,
        TwoFactorError::RequiredByAccount => AppError::Forbidden(
            "your team requires two-factor authentication, so it cannot be turned off; an admin \
             of the team can reset it",
        ),
        TwoFactorError::TooManyAttempts { retry_at } => AppError::too_many(now, retry_at),
        TwoFactorError::Internal(e) => e.into(),
    }
}

/// Resend errors, likewise.
pub fn resend_error(e: ResendError, now: Timestamp) -> AppError {
    match e {
        ResendError::ChallengeExpired => AppError::ChallengeExpired,
        ResendError::TooManyAttempts { retry_at } => AppError::too_many(now, retry_at),
        ResendError::Internal(e) => e.into(),
    }
}

impl From<DeviceError> for AppError {
    fn from(e: DeviceError) -> Self {
        match e {
            DeviceError::NotFound => Self::NotFound,
            DeviceError::Internal(e) => e.into(),
        }
    }
}

impl From<RevokeError> for AppError {
    fn from(e: RevokeError) -> Self {
        match e {
            RevokeError::NotFound => Self::NotFound,
            RevokeError::Internal(e) => e.into(),
        }
    }
}

/// Login errors need the current time to turn a lock into `Retry-After`.
pub fn login_error(e: LoginError, now: Timestamp) -> AppError {
    match e {
        LoginError::Invalid(e) => e.into(),
        LoginError::InvalidCredentials => AppError::InvalidCredentials,
        LoginError::TooManyAttempts { retry_at } => AppError::too_many(now, retry_at),
        // The user was deleted while signing in: what they would be told a moment later.
        LoginError::Internal(Internal::Store(StoreError::Raced)) => AppError::InvalidCredentials,
        LoginError::Internal(e) => e.into(),
    }
}

/// Change-password errors need the current time to turn a lock into `Retry-After`.
pub fn change_password_error(e: ChangePasswordError, now: Timestamp) -> AppError {
    match e {
        ChangePasswordError::Invalid(e) => e.into(),
        ChangePasswordError::InvalidCredentials => AppError::InvalidCredentials,
        ChangePasswordError::TooManyAttempts { retry_at } => AppError::too_many(now, retry_at),
        ChangePasswordError::SessionEnded => AppError::Unauthenticated,
        ChangePasswordError::Internal(e) => e.into(),
    }
}

/// Reset-link requests, likewise.
pub fn forgot_error(e: ForgotError, now: Timestamp) -> AppError {
    match e {
        ForgotError::Invalid(e) => e.into(),
        ForgotError::TooManyRequests { retry_at } => AppError::too_many(now, retry_at),
        ForgotError::Internal(e) => e.into(),
    }
}

/// A reset link that cannot be used: 404 `reset_token_invalid`, 410 `reset_token_used` or
/// `reset_token_expired`.
pub fn reset_error(e: ResetError) -> AppError {
    let link = |status, code, message| AppError::ResetLink {
        status,
        code,
        message,
    };
    match e {
        ResetError::Invalid(e) => e.into(),
        ResetError::UnknownLink => link(
            StatusCode::NOT_FOUND,
            "reset_token_invalid",
            "this reset link is not valid; ask for a new one",
        ),
        ResetError::UsedLink => link(
            StatusCode::GONE,
            "reset_token_used",
            "this reset link was already used; ask for a new one",
        ),
        ResetError::ExpiredLink => link(
            StatusCode::GONE,
            "reset_token_expired",
            "this reset link has expired; ask for a new one",
        ),
        ResetError::Internal(e) => e.into(),
    }
}

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType,
            StatusCode::UNPROCESSABLE_ENTITY => Self::Validation {
                field: None,
                message: rejection.body_text(),
                detail: None,
            },
            _ => Self::MalformedJson(rejection.body_text()),
        }
    }
}

impl From<QueryRejection> for AppError {
    fn from(rejection: QueryRejection) -> Self {
        Self::Validation {
            field: None,
            message: rejection.body_text(),
            detail: None,
        }
    }
}

/// `axum::Json`, with its rejections answered in the error shape above.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<T>::from_request(req, state).await?;
        Ok(Self(value))
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Query`, with its rejections answered in the error shape above.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

const SIGNUP_LINK_UNKNOWN: &str = "signup_link_unknown";

pub fn signup_error(e: SignUpError, now: Timestamp) -> AppError {
    match e {
        SignUpError::Invalid(e) => e.into(),
        SignUpError::EmailTaken => AppError::EmailTaken,
        SignUpError::Closed => AppError::SignupClosed,
        SignUpError::TooManyAttempts { retry_at } => AppError::too_many(now, retry_at),
        SignUpError::Internal(e) => e.into(),
    }
}

impl From<ConfirmError> for AppError {
    fn from(e: ConfirmError) -> Self {
        let link = |code, message| Self::SignupLink { code, message };
        match e {
            ConfirmError::Invalid(e) => e.into(),
            ConfirmError::NotFound => link(SIGNUP_LINK_UNKNOWN, "this sign-up link is not valid"),
            ConfirmError::Used => link("signup_link_used", "this sign-up link was already used"),
            ConfirmError::Expired => link(
                "signup_link_expired",
                "this sign-up link has expired; sign up again",
            ),
            ConfirmError::EmailTaken => Self::EmailTaken,
            ConfirmError::Internal(e) => e.into(),
        }
    }
}
