//! The team pages: `/account/settings` (Require 2FA, grace-period date), `/account/users`
//! (users with their 2FA status, invite, delete, reset 2FA, open invitations), and the
//! invitee's `/invitations/{token}`.

use super::account::{capitalize, page, signed_in_here};
use super::csrf::{Csrf, CsrfForm};
use super::{Empty, Moment, Nav, PageManager, message_page};
use crate::extract::ClientMeta;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tessera_core::model::{InvitationId, UserId};
use tessera_core::team::{
    InvitationError, InviteInput, Manager, OpenInvitation, PolicyInput, TeamError,
};

#[derive(Deserialize)]
pub struct Notice {
    notice: Option<String>,
}

/// The fixed notices a redirect may ask for: nothing typed by anyone is echoed.
fn notice(key: Option<&str>) -> Option<&'static str> {
    Some(match key? {
        "saved" => "Saved.",
        "invited" => "Invitation sent.",
        "revoked" => "Invitation withdrawn: its link no longer works.",
        "deleted" => "User deleted.",
        "reset" => "Two-factor authentication reset. The user was signed out and emailed.",
        _ => return None,
    })
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "a team page failed");
    message_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Please try again in a moment.",
    )
}

/// A refusal, in words for the page, with its status; `None` for a server failure.
fn refusal(e: &TeamError) -> Option<(StatusCode, String)> {
    Some(match e {
        TeamError::Invalid(f) => (StatusCode::UNPROCESSABLE_ENTITY, f.message.clone()),
        TeamError::Forbidden(why) => (StatusCode::FORBIDDEN, capitalize(why)),
        TeamError::SetupRequired => (
            StatusCode::FORBIDDEN,
            "Set up two-factor authentication first.".to_owned(),
        ),
        TeamError::NotFound => (
            StatusCode::NOT_FOUND,
            "That user or invitation no longer exists.".to_owned(),
        ),
        TeamError::EmailTaken => (
            StatusCode::CONFLICT,
            "Someone already has a user with this email.".to_owned(),
        ),
        TeamError::InvitationExists => (
            StatusCode::CONFLICT,
            "This email already has an open invitation. Withdraw it to send a new one.".to_owned(),
        ),
        TeamError::NotEnabled => (
            StatusCode::CONFLICT,
            "This user does not have two-factor authentication on.".to_owned(),
        ),
        TeamError::Internal(_) => return None,
    })
}

// ----- /account/settings -----

#[derive(Template)]
#[template(path = "team_settings.html")]
struct SettingsPage {
    csrf: String,
    nav: Nav,
    account_name: String,
    required: bool,
    grace_period_until: Option<Moment>,
    /// The date field's value.
    grace_date: String,
    notice: Option<&'static str>,
    error: Option<String>,
}

fn settings_page(
    state: &AppState,
    manager: &Manager,
    csrf: Csrf,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<String>,
) -> Response {
    let account = manager.account();
    let template = SettingsPage {
        csrf: csrf.field.clone(),
        nav: Nav::new(manager.context(), &csrf, state.auth.now()),
        account_name: account.name.clone(),
        required: account.two_factor_required,
        grace_period_until: account.grace_period_until.map(Moment::from),
        grace_date: account
            .grace_period_until
            .map(|t| t.to_date())
            .unwrap_or_default(),
        notice,
        error,
    };
    page(status, &template, csrf)
}

pub async fn settings(
    State(state): State<AppState>,
    PageManager(manager): PageManager,
    Query(query): Query<Notice>,
    csrf: Csrf,
) -> Response {
    let notice = notice(query.notice.as_deref());
    settings_page(&state, &manager, csrf, StatusCode::OK, notice, None)
}

#[derive(Deserialize)]
pub struct PolicyForm {
    /// A checkbox: present when ticked.
    required: Option<String>,
    #[serde(default)]
    grace_period_until: String,
}

pub async fn save_settings(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    PageManager(manager): PageManager,
    CsrfForm { form, csrf }: CsrfForm<PolicyForm>,
) -> Response {
    let required = form.required.is_some();
    let input = PolicyInput {
        required,
        // A date left in the form while switching the requirement off is not an error.
        grace_period_until: required.then_some(form.grace_period_until.as_str()),
    };
    match state
        .auth
        .set_two_factor_policy(&manager, input, &meta)
        .await
    {
        Ok(_) => Redirect::to("/account/settings?notice=saved").into_response(),
        Err(e) => match refusal(&e) {
            Some((status, message)) => {
                settings_page(&state, &manager, csrf, status, None, Some(message))
            }
            None => internal(e),
        },
    }
}

// ----- /account/users -----

struct UserRow {
    id: String,
    name: String,
    email: String,
    role: String,
    two_factor: bool,
    /// Whether the viewer may delete them or reset their 2FA.
    manageable: bool,
    is_me: bool,
}

struct InvitationRow {
    id: String,
    name: String,
    email: String,
    role: String,
    expires_at: Moment,
}

#[derive(Template)]
#[template(path = "team_users.html")]
struct UsersPage {
    csrf: String,
    nav: Nav,
    account_name: String,
    users: Vec<UserRow>,
    invitations: Vec<InvitationRow>,
    notice: Option<&'static str>,
    error: Option<String>,
    form: InviteForm,
    invitation_days: i64,
}

#[derive(Deserialize, Default)]
pub struct InviteForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
}

async fn users_page(
    state: &AppState,
    manager: &Manager,
    csrf: Csrf,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<String>,
    form: InviteForm,
) -> Response {
    let (members, open) = match tokio::try_join!(
        state.auth.team_members(manager),
        state.auth.open_invitations(manager)
    ) {
        Ok(found) => found,
        Err(e) => return internal(e),
    };
    let me = manager.user();
    let template = UsersPage {
        csrf: csrf.field.clone(),
        nav: Nav::new(manager.context(), &csrf, state.auth.now()),
        account_name: manager.account().name.clone(),
        invitation_days: state.auth.policy.invitation_lifetime_secs / 86_400,
        users: members
            .into_iter()
            .map(|m| UserRow {
                id: m.user.id.to_string(),
                manageable: tessera_core::team::may_act_on(me, &m.user).is_ok(),
                is_me: m.user.id == me.id,
                name: m.user.name,
                email: m.user.email.as_str().to_owned(),
                role: m.user.role.to_string(),
                two_factor: m.two_factor_enabled,
            })
            .collect(),
        invitations: open
            .into_iter()
            .map(|i| InvitationRow {
                id: i.id.to_string(),
                name: i.name,
                email: i.email.as_str().to_owned(),
                role: i.role.to_string(),
                expires_at: i.expires_at.into(),
            })
            .collect(),
        notice,
        error,
        form,
    };
    page(status, &template, csrf)
}

pub async fn users(
    State(state): State<AppState>,
    PageManager(manager): PageManager,
    Query(query): Query<Notice>,
    csrf: Csrf,
) -> Response {
    let notice = notice(query.notice.as_deref());
    let form = InviteForm {
        role: "member".to_owned(),
        ..InviteForm::default()
    };
    users_page(&state, &manager, csrf, StatusCode::OK, notice, None, form).await
}

pub async fn invite(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    PageManager(manager): PageManager,
    CsrfForm { form, csrf }: CsrfForm<InviteForm>,
) -> Response {
    let input = InviteInput {
        email: form.email.clone(),
        name: form.name.clone(),
        role: form.role.clone(),
    };
    match state.auth.invite(&manager, input, &meta).await {
        Ok(_) => Redirect::to("/account/users?notice=invited").into_response(),
        Err(e) => match refusal(&e) {
            Some((status, message)) => {
                users_page(&state, &manager, csrf, status, None, Some(message), form).await
            }
            None => internal(e),
        },
    }
}

/// Runs an action on one user, then shows the list again with its outcome.
async fn on_user(
    state: &AppState,
    manager: &Manager,
    csrf: Csrf,
    id: &str,
    action: impl AsyncFnOnce(tessera_core::team::Managed) -> Result<(), TeamError>,
    done: &str,
) -> Response {
    let outcome = match id.parse::<UserId>() {
        Ok(id) => match state.auth.managed(manager, id).await {
            Ok(target) => action(target).await,
            Err(e) => Err(e),
        },
        Err(_) => Err(TeamError::NotFound),
    };
    match outcome {
        Ok(()) => Redirect::to(&format!("/account/users?notice={done}")).into_response(),
        Err(e) => match refusal(&e) {
            Some((status, message)) => {
                let form = InviteForm::default();
                users_page(state, manager, csrf, status, None, Some(message), form).await
            }
            None => internal(e),
        },
    }
}

pub async fn delete_user(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    PageManager(manager): PageManager,
    Path(id): Path<String>,
    CsrfForm { csrf, .. }: CsrfForm<Empty>,
) -> Response {
    let action = async |target| state.auth.delete_user(&manager, target, &meta).await;
    on_user(&state, &manager, csrf, &id, action, "deleted").await
}

pub async fn reset_two_factor(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    PageManager(manager): PageManager,
    Path(id): Path<String>,
    CsrfForm { csrf, .. }: CsrfForm<Empty>,
) -> Response {
    let action = async |target| state.auth.reset_two_factor(&manager, target, &meta).await;
    on_user(&state, &manager, csrf, &id, action, "reset").await
}

pub async fn revoke_invitation(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    PageManager(manager): PageManager,
    Path(id): Path<String>,
    CsrfForm { csrf, .. }: CsrfForm<Empty>,
) -> Response {
    let outcome = match id.parse::<InvitationId>() {
        Ok(id) => state.auth.revoke_invitation(&manager, id, &meta).await,
        Err(_) => Err(TeamError::NotFound),
    };
    match outcome {
        Ok(()) => Redirect::to("/account/users?notice=revoked").into_response(),
        Err(e) => match refusal(&e) {
            Some((status, message)) => {
                let form = InviteForm::default();
                users_page(&state, &manager, csrf, status, None, Some(message), form).await
            }
            None => internal(e),
        },
    }
}

// ----- /invitations/{token} -----

#[derive(Template)]
#[template(path = "invitation.html")]
struct InvitationPage {
    csrf: String,
    token: String,
    account_name: String,
    email: String,
    name: String,
    role: String,
    expires_at: Moment,
    errors: AcceptErrors,
}

#[derive(Default)]
struct AcceptErrors {
    name: Option<String>,
    password: Option<String>,
    general: Option<String>,
}

/// A link that cannot be used, explained.
fn invitation_refused(e: InvitationError) -> Response {
    let (status, title, text) = match e {
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
        other => return internal(other),
    };
    message_page(status, title, text)
}

fn invitation_page(
    open: &OpenInvitation,
    token: String,
    csrf: Csrf,
    status: StatusCode,
    name: String,
    errors: AcceptErrors,
) -> Response {
    let template = InvitationPage {
        csrf: csrf.field.clone(),
        token,
        account_name: open.account.name.clone(),
        email: open.invitation.email.as_str().to_owned(),
        name,
        role: open.invitation.role.to_string(),
        expires_at: open.invitation.expires_at.into(),
        errors,
    };
    page(status, &template, csrf)
}

pub async fn invitation(
    State(state): State<AppState>,
    Path(token): Path<String>,
    csrf: Csrf,
) -> Response {
    match state.auth.invitation(&token).await {
        Ok(open) => {
            let name = open.invitation.name.clone();
            invitation_page(
                &open,
                token,
                csrf,
                StatusCode::OK,
                name,
                AcceptErrors::default(),
            )
        }
        Err(e) => invitation_refused(e),
    }
}

#[derive(Deserialize)]
pub struct AcceptForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

/// Accepts, then signs the new user in (the account's 2FA policy applies at once).
pub async fn accept(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    CsrfForm { form, csrf }: CsrfForm<AcceptForm>,
) -> Response {
    let password = form.password.clone().into();
    match state
        .auth
        .accept_invitation(&form.token, &password, Some(&form.name), &meta)
        .await
    {
        Ok(user) => match state
            .auth
            .open_session(user, &meta, state.auth.now(), "invitation")
            .await
        {
            Ok(session) => signed_in_here(&state, &session, &meta).await,
            Err(e) => internal(e),
        },
        Err(InvitationError::Invalid(field)) => match state.auth.invitation(&form.token).await {
            Ok(open) => {
                let mut errors = AcceptErrors::default();
                match field.field {
                    "name" => errors.name = Some(field.message),
                    "password" => errors.password = Some(field.message),
                    _ => errors.general = Some(field.to_string()),
                }
                let status = StatusCode::UNPROCESSABLE_ENTITY;
                invitation_page(&open, form.token, csrf, status, form.name, errors)
            }
            Err(e) => invitation_refused(e),
        },
        Err(e) => invitation_refused(e),
    }
}
