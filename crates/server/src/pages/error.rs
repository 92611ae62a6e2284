//! [`PageError`]: how a page answers when it cannot do what was asked. It is the one place
//! where core errors become pages, and the one way a form is shown again with what went
//! wrong.
//!
//! There are three kinds of answer:
//! - [`PageError::Refused`]: something the user can put right. The handler shows its form
//!   again with the message above it, through [`PageError::or_form`]. How a refusal is worded
//!   depends on the page, so a page that needs its own words builds it with
//!   [`PageError::refused`], [`PageError::too_many`] or [`PageError::internal_on_form`].
//! - [`PageError::Message`]: a page of its own with a heading and one message (403, 404,
//!   409, 410), for an address or a link that cannot be used.
//! - [`PageError::Internal`]: our own failure. It is logged with its cause, and the user sees
//!   the "Something went wrong" page (500), or the "Temporarily unavailable" page (503 with
//!   `Retry-After`) when the database cannot be reached or cannot write for now.
//!
//! Pages word some core errors the same way wherever they happen ([`TeamError`],
//! [`InvitationError`], [`DeviceError`]). Those errors convert here with `From`.

use super::ui::{capitalize, message_page, minutes};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tessera_core::devices::DeviceError;
use tessera_core::sessions::RevokeError;
use tessera_core::sign_up::ConfirmError;
use tessera_core::team::{InvitationError, TeamError};

/// What a form says when we failed.
pub const TRY_AGAIN: &str = "Something went wrong. Please try again.";

/// What a form says when the database is unavailable for now.
pub const UNAVAILABLE: &str =
    "Tessera is temporarily unavailable. Nothing was changed; please try again in a moment.";

#[derive(Debug)]
pub enum PageError {
    /// Shown above the form again: the user may correct it and send it again.
    Refused { status: StatusCode, message: String },
    /// A page of its own, with a heading and one message.
    Message {
        status: StatusCode,
        title: &'static str,
        message: &'static str,
    },
    /// Our failure: logged with `context` and its cause, answered with the 500 page, or the
    /// 503 page when the database is only `unavailable` for now.
    Internal {
        context: &'static str,
        cause: String,
        unavailable: bool,
    },
}

impl PageError {
    /// Only the owner and admins may see the team pages.
    pub const MANAGERS_ONLY: Self = Self::Message {
        status: StatusCode::FORBIDDEN,
        title: "Only for the team's owner and admins",
        message: "Ask the owner or an admin of your team to make this change.",
    };

    /// An address with no page.
    pub const NOT_FOUND: Self = Self::Message {
        status: StatusCode::NOT_FOUND,
        title: "Page not found",
        message: "There is nothing at this address.",
    };

    pub fn refused(status: StatusCode, message: impl Into<String>) -> Self {
        Self::Refused {
            status,
            message: message.into(),
        }
    }

    /// Throttled: `text`, then how long to wait ("… in 4 minutes.").
    pub fn too_many(text: &str, wait_secs: i64) -> Self {
        Self::refused(
            StatusCode::TOO_MANY_REQUESTS,
            format!("{text} {}.", minutes(wait_secs)),
        )
    }

    /// Our failure, answered with the "Something went wrong" page (or "Temporarily
    /// unavailable", see [`PageError::Internal`]).
    pub fn internal(context: &'static str, cause: impl std::error::Error + 'static) -> Self {
        Self::Internal {
            context,
            cause: cause.to_string(),
            unavailable: tessera_core::store::is_unavailable(&cause),
        }
    }

    /// Our failure, on a page that reports every failure above its form. The form asks the
    /// user to try again. Whoever calls this has logged the cause.
    pub fn try_again() -> Self {
        Self::refused(StatusCode::INTERNAL_SERVER_ERROR, TRY_AGAIN)
    }

    /// [`PageError::try_again`], logging `cause` with `context`; when the database is only
    /// unavailable for now, the form says so with a 503.
    pub fn internal_on_form(
        context: &'static str,
        cause: impl std::error::Error + 'static,
    ) -> Self {
        if tessera_core::store::is_unavailable(&cause) {
            tracing::warn!(error = %cause, "{context}: the database is unavailable");
            return Self::refused(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE);
        }
        tracing::error!(error = %cause, "{context}");
        Self::try_again()
    }

    /// For a refusal, the form again, built by `form` from the status and the message. For
    /// any other error, that error's own page.
    pub async fn or_form(self, form: impl AsyncFnOnce(StatusCode, String) -> Response) -> Response {
        match self {
            Self::Refused { status, message } => form(status, message).await,
            other => other.into_response(),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            // A refusal where no form is shown again: it gets a page of its own.
            Self::Refused { status, message } => {
                message_page(status, "That did not work", &message)
            }
            Self::Message {
                status,
                title,
                message,
            } => message_page(status, title, message),
            Self::Internal {
                context,
                cause,
                unavailable: true,
            } => {
                tracing::warn!(error = %cause, "{context}: the database is unavailable");
                unavailable_page()
            }
            Self::Internal { context, cause, .. } => {
                tracing::error!(error = %cause, "{context}");
                message_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "Please try again in a moment.",
                )
            }
        }
    }
}

/// The page of a `503`: the database cannot be reached or cannot write for now.
pub fn unavailable_page() -> Response {
    let mut page = message_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        "Tessera cannot reach its database right now. Nothing was changed; please try again \
         in a moment.",
    );
    page.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from(crate::error::RETRY_UNAVAILABLE_SECS),
    );
    page
}

/// The team pages show a refused action above the form, on the users or settings page.
impl From<TeamError> for PageError {
    fn from(e: TeamError) -> Self {
        let (status, message) = match e {
            TeamError::Invalid(f) => (StatusCode::UNPROCESSABLE_ENTITY, f.message),
            TeamError::Forbidden(why) => (StatusCode::FORBIDDEN, capitalize(why.reason())),
            TeamError::NotFound => (
                StatusCode::NOT_FOUND,
                "That user or invitation no longer exists.".to_owned(),
            ),
            TeamError::AlreadyMember => (
                StatusCode::CONFLICT,
                "This person is already a member of the team.".to_owned(),
            ),
            TeamError::InvitationExists => (
                StatusCode::CONFLICT,
                "This email already has an open invitation. Withdraw it to send a new one."
                    .to_owned(),
            ),
            TeamError::NotEnabled => (
                StatusCode::CONFLICT,
                "This user does not have two-factor authentication on.".to_owned(),
            ),
            TeamError::TooManyInvitations { wait_secs } => {
                return Self::too_many("Too many invitations for now. Try again in", wait_secs);
            }
            e @ TeamError::Internal(_) => return Self::internal("a team page failed", e),
        };
        Self::Refused { status, message }
    }
}

/// An invitation link that cannot be used, explained on a page of its own. (A field the
/// invitee got wrong is shown on the invitation's form by its page.)
impl From<InvitationError> for PageError {
    fn from(e: InvitationError) -> Self {
        let (status, title, message) = match e {
            InvitationError::NotFound => (
                StatusCode::NOT_FOUND,
                "This invitation link is not valid",
                "Check that you opened the whole link from the email, or ask for a new invitation.",
            ),
            InvitationError::Used => (
                StatusCode::GONE,
                "This invitation has already been used",
                "Sign in with the email and password chosen when it was accepted.",
            ),
            InvitationError::Expired => (
                StatusCode::GONE,
                "This invitation has expired",
                "Ask the person who invited you to send a new one.",
            ),
            InvitationError::Revoked => (
                StatusCode::GONE,
                "This invitation was withdrawn",
                "Ask the team's owner or an admin if you should still join.",
            ),
            InvitationError::EmailTaken => (
                StatusCode::CONFLICT,
                "You already have a user",
                "A user with this email exists already: sign in instead.",
            ),
            InvitationError::UseSso => (
                StatusCode::CONFLICT,
                "Sign in with SSO",
                "This invitation is for single sign-on: use \"Sign in with SSO\" on the sign-in \
                 page with your work email.",
            ),
            other => return Self::internal("a team page failed", other),
        };
        Self::Message {
            status,
            title,
            message,
        }
    }
}

/// A device or session that is already gone.
const ALREADY_GONE: PageError = PageError::Message {
    status: StatusCode::NOT_FOUND,
    title: "Already gone",
    message: "That device or session no longer exists.",
};

/// A device that is already gone, or a failure of ours.
impl From<DeviceError> for PageError {
    fn from(e: DeviceError) -> Self {
        match e {
            DeviceError::NotFound => ALREADY_GONE,
            e @ DeviceError::Internal(_) => Self::internal("the devices page failed", e),
        }
    }
}

/// A session that is already gone, or a failure of ours.
impl From<RevokeError> for PageError {
    fn from(e: RevokeError) -> Self {
        match e {
            RevokeError::NotFound => ALREADY_GONE,
            e @ RevokeError::Internal(_) => Self::internal("the devices page failed", e),
        }
    }
}

/// A sign-up link that cannot be followed, explained on a page of its own.
impl From<ConfirmError> for PageError {
    fn from(e: ConfirmError) -> Self {
        let (status, title, message) = match e {
            ConfirmError::NotFound => (
                StatusCode::NOT_FOUND,
                "This sign-up link is not valid",
                "Check that you opened the whole link from the email, or sign up again.",
            ),
            ConfirmError::Used => (
                StatusCode::GONE,
                "This sign-up link has already been used",
                "Your team exists: sign in with your email and password.",
            ),
            ConfirmError::Expired => (
                StatusCode::GONE,
                "This sign-up link has expired",
                "Sign up again to get a new link.",
            ),
            ConfirmError::EmailTaken => (
                StatusCode::CONFLICT,
                "You already have an account",
                "A user with this email exists already: sign in, or reset your password.",
            ),
            other => return Self::internal("a sign-up page failed", other),
        };
        Self::Message {
            status,
            title,
            message,
        }
    }
}
