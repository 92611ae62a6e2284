//! `/settings/activity` (one's own security events) and `/account/activity` (the team's, for
//! the owner and admins): the audit log, newest first, a page at a time.

use super::csrf::Csrf;
use super::error::PageError;
use super::ui::{Moment, Nav, page};
use super::{PageManager, PageUser};
use crate::state::AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tessera_core::model::{EventKind, SecurityEvent};

/// Events per page.
const PAGE: i64 = 25;

/// One line of the log, for people.
pub(super) struct EventRow {
    pub when: Moment,
    pub what: &'static str,
    /// Who acted (their email at the time).
    pub who: String,
    /// Whom or what it concerned, when that is someone else.
    pub about: String,
    pub from: String,
}

fn describe(kind: EventKind) -> &'static str {
    use EventKind::*;
    match kind {
        Signup => "Account created",
        SignIn => "Signed in",
        SignInFailed => "Failed sign-in attempt",
        PasswordLocked => "Password sign-in locked after failed attempts",
        SignOut => "Signed out",
        TwoFactorSetupStarted => "Two-factor setup started",
        TwoFactorEnabled => "Two-factor authentication turned on",
        TwoFactorDisabled => "Two-factor authentication turned off",
        TwoFactorFailed => "Wrong two-factor code",
        SecondStepLocked => "Two-factor step locked after wrong codes",
        RecoveryCodeUsed => "Signed in with a recovery code",
        RecoveryCodesRegenerated => "New recovery codes generated",
        RecoveryFailed => "Failed recovery attempt",
        TwoFactorReset => "Two-factor authentication reset",
        Unlocked => "Sign-in unlocked by support",
        TwoFactorPolicyChanged => "Team two-factor policy changed",
        UserInvited => "User invited",
        InvitationRevoked => "Invitation withdrawn",
        InvitationAccepted => "Joined the team",
        UserDeleted => "User deleted",
        DeviceVerified => "New device verified by email",
        DeviceRemoved => "Recognized device removed",
        SessionRevoked => "Session signed out",
        PasswordChanged => "Password changed",
        PasswordResetRequested => "Password reset link sent",
        PasswordReset => "Password reset with an emailed link",
        SignupRequested => "Sign-up requested with this email",
        AccessDenied => "Refused: not allowed for this session or role",
        DeviceTrusted => "Device trusted to skip the second step",
        DeviceTrustEnded => "Device no longer skips the second step",
        TrustedDevicesPolicyChanged => "Team trusted-devices policy changed",
        NewDeviceSignIn => "Signed in from a new device",
        SignInUnfinished => "Sign-in with the right password left unfinished",
        TotpReplayRefused => "Already used two-factor code refused",
        Reauthenticated => "Confirmed it was them (password and code again)",
        ReauthenticationFailed => "Failed attempt to confirm it was them",
        ApiKeyCreated => "API key created",
        ApiKeyChanged => "API key changed",
        ApiKeyRevoked => "API key revoked",
        ApiKeyRefused => "API key refused",
        SecurityKeyAdded => "Security key added",
        AuthenticatorAdded => "Authenticator app added (two-factor authentication was on already)",
        SecurityKeyRemoved => "Security key removed",
        SecurityKeyCounterRefused => {
            "Security key refused: its signature counter did not rise (a cloned key?)"
        }
        PasskeySignInFailed => "Failed sign-in with a passkey",
        SsoSettingsChanged => "Team single sign-on settings changed",
        SsoLinked => "Single sign-on identity linked",
        SsoProvisioned => "Joined the team through single sign-on",
        SsoSignInFailed => "Refused single sign-on",
        OidcClientCreated => "Application registered for signing in with Tessera",
        OidcClientRemoved => "Application removed from signing in with Tessera",
        OidcAuthorized => "Signed in to an application",
        OidcTokenIssued => "Application received tokens",
        OidcCodeReused => "Refused: an application's sign-in code used twice (tokens revoked)",
        OidcRefreshReused => "Refused: an application's refresh token used twice (tokens revoked)",
        OidcSigningKeyRotated => "ID-token signing keys rotated",
        OidcLogout => "Signed out by an application",
    }
}

impl From<SecurityEvent> for EventRow {
    fn from(e: SecurityEvent) -> Self {
        let detail = |key: &str| {
            e.detail
                .get(key)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let about = match e.kind {
            EventKind::UserInvited => detail("invitee"),
            EventKind::UserDeleted => detail("target_email"),
            EventKind::TwoFactorReset => detail("admin_email")
                .map(|admin| format!("by {admin}"))
                .or_else(|| detail("reason").map(|r| format!("by support: {r}"))),
            EventKind::TwoFactorPolicyChanged => Some(
                match (
                    e.detail.get("required").and_then(|v| v.as_bool()),
                    detail("grace_period_until"),
                ) {
                    (Some(true), Some(until)) => format!("Required, grace period until {until}"),
                    (Some(true), None) => "Required".to_owned(),
                    _ => "Optional".to_owned(),
                },
            ),
            EventKind::TrustedDevicesPolicyChanged => detail("trusted_devices").map(|p| {
                if p == "allowed" {
                    "Allowed"
                } else {
                    "Forbidden"
                }
                .to_owned()
            }),
            EventKind::ApiKeyCreated | EventKind::ApiKeyChanged | EventKind::ApiKeyRevoked => {
                detail("label")
            }
            EventKind::ApiKeyRefused => detail("reason"),
            _ => None,
        };
        Self {
            when: e.created_at.into(),
            what: describe(e.kind),
            who: e.email.unwrap_or_default(),
            about: about.unwrap_or_default(),
            from: e.ip.unwrap_or_else(|| "—".to_owned()),
        }
    }
}

#[derive(Template)]
#[template(path = "activity.html")]
struct ActivityPage {
    nav: Nav,
    heading: &'static str,
    team: bool,
    events: Vec<EventRow>,
    /// The link to older events, when there are more.
    older: Option<String>,
}

#[derive(Deserialize)]
pub struct Before {
    before: Option<i64>,
}

fn show(nav: Nav, csrf: Csrf, team: bool, events: Vec<SecurityEvent>, path: &str) -> Response {
    let full = i64::try_from(events.len()).is_ok_and(|n| n == PAGE);
    let older = full
        .then(|| events.last().map(|e| format!("{path}?before={}", e.id)))
        .flatten();
    let template = ActivityPage {
        nav,
        heading: if team {
            "Team activity"
        } else {
            "Your activity"
        },
        team,
        events: events.into_iter().map(EventRow::from).collect(),
        older,
    };
    page(StatusCode::OK, &template, csrf)
}

fn unavailable(e: impl std::error::Error + 'static) -> Response {
    PageError::internal("cannot read the activity log", e).into_response()
}

pub async fn mine(
    State(state): State<AppState>,
    PageUser(context): PageUser,
    Query(query): Query<Before>,
    csrf: Csrf,
) -> Response {
    match state
        .core
        .audit
        .my_events(&context, query.before, PAGE)
        .await
    {
        Ok(events) => {
            let nav = Nav::new(&context, &csrf);
            show(nav, csrf, false, events, "/settings/activity")
        }
        Err(e) => unavailable(e),
    }
}

pub async fn team(
    State(state): State<AppState>,
    PageManager(manager): PageManager,
    Query(query): Query<Before>,
    csrf: Csrf,
) -> Response {
    match state
        .core
        .team
        .account_events(&manager, query.before, PAGE)
        .await
    {
        Ok(events) => {
            let nav = Nav::new(&manager, &csrf);
            show(nav, csrf, true, events, "/account/activity")
        }
        Err(e) => unavailable(e),
    }
}
