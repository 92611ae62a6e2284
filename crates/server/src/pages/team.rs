//! The team pages: `/account/settings` (Require 2FA, grace-period date, trusted devices) and
//! `/account/users`
//! (users with their 2FA status, invite, delete, reset 2FA, open invitations). The invitee's
//! side is in [`super::invitations`].

use super::csrf::{Csrf, CsrfForm};
use super::error::PageError;
use super::ui::{Moment, Nav, Notice, page};
use super::{Empty, PageManager};
use crate::extract::ClientMeta;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tessera_core::model::{InvitationId, TrustedDevices, UserId};
use tessera_core::principal::Manager;
use tessera_core::team::{InviteInput, PolicyInput, TeamError};

/// The fixed notices a redirect may ask for: nothing typed by anyone is echoed.
fn notice(key: Option<&str>) -> Option<&'static str> {
    Some(match key? {
        "saved" => "Saved.",
        "trust_saved" => "Saved: trusted devices policy updated.",
        "invited" => "Invitation sent.",
        "revoked" => "Invitation withdrawn: its link no longer works.",
        "deleted" => "User deleted.",
        "reset" => "Two-factor authentication reset. The user was signed out and emailed.",
        _ => return None,
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
    /// Devices may skip the second step ("Don't ask again on this device").
    trusted_devices: bool,
    trust_days: i64,
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
        nav: Nav::new(manager, &csrf),
        account_name: account.name.clone(),
        required: account.two_factor_required,
        grace_period_until: account.grace_period_until.map(Moment::from),
        grace_date: account
            .grace_period_until
            .map(|t| t.to_date())
            .unwrap_or_default(),
        trusted_devices: account.trusted_devices == TrustedDevices::Allowed,
        trust_days: state.core.policy().trusted_device_secs / 86_400,
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
        .core
        .team
        .set_two_factor_policy(&manager, input, &meta)
        .await
    {
        Ok(_) => Redirect::to("/account/settings?notice=saved").into_response(),
        Err(e) => {
            PageError::from(e)
                .or_form(async |status, message| {
                    settings_page(&state, &manager, csrf, status, None, Some(message))
                })
                .await
        }
    }
}

#[derive(Deserialize)]
pub struct TrustedDevicesForm {
    /// A checkbox: present when ticked (devices may be trusted).
    allowed: Option<String>,
}

pub async fn save_trusted_devices(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    PageManager(manager): PageManager,
    CsrfForm { form, csrf }: CsrfForm<TrustedDevicesForm>,
) -> Response {
    let policy = if form.allowed.is_some() {
        TrustedDevices::Allowed
    } else {
        TrustedDevices::Forbidden
    };
    match state
        .core
        .team
        .set_trusted_devices_policy(&manager, policy, &meta)
        .await
    {
        Ok(_) => Redirect::to("/account/settings?notice=trust_saved").into_response(),
        Err(e) => {
            PageError::from(e)
                .or_form(async |status, message| {
                    settings_page(&state, &manager, csrf, status, None, Some(message))
                })
                .await
        }
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
        state.core.team.members(manager),
        state.core.team.open_invitations(manager)
    ) {
        Ok(found) => found,
        Err(e) => return PageError::internal("a team page failed", e).into_response(),
    };
    let me = manager.user();
    let template = UsersPage {
        csrf: csrf.field.clone(),
        nav: Nav::new(manager, &csrf),
        account_name: manager.account().name.clone(),
        invitation_days: state.core.policy().invitation_lifetime_secs / 86_400,
        users: members
            .into_iter()
            .map(|m| UserRow {
                id: m.user.id.to_string(),
                manageable: tessera_core::principal::may_act_on(me, &m.user).is_ok(),
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
    let outcome = state
        .core
        .team
        .invite(&manager, input, &meta)
        .await
        .map(|_| ());
    back_to_users(&state, &manager, csrf, outcome, "invited", form).await
}

/// After an action on the users page: the list with the notice `done`, or the list again with
/// why the action was refused (and the invitation form as it was sent).
async fn back_to_users(
    state: &AppState,
    manager: &Manager,
    csrf: Csrf,
    outcome: Result<(), TeamError>,
    done: &str,
    form: InviteForm,
) -> Response {
    match outcome {
        Ok(()) => Redirect::to(&format!("/account/users?notice={done}")).into_response(),
        Err(e) => {
            PageError::from(e)
                .or_form(async |status, message| {
                    users_page(state, manager, csrf, status, None, Some(message), form).await
                })
                .await
        }
    }
}

/// Runs an action on one user, then shows the list again with its outcome.
async fn on_user(
    state: &AppState,
    manager: &Manager,
    csrf: Csrf,
    id: &str,
    action: impl AsyncFnOnce(tessera_core::principal::Managed) -> Result<(), TeamError>,
    done: &str,
) -> Response {
    let outcome = match id.parse::<UserId>() {
        Ok(id) => match state.core.team.managed(manager, id).await {
            Ok(target) => action(target).await,
            Err(e) => Err(e),
        },
        Err(_) => Err(TeamError::NotFound),
    };
    back_to_users(state, manager, csrf, outcome, done, InviteForm::default()).await
}

pub async fn delete_user(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    PageManager(manager): PageManager,
    Path(id): Path<String>,
    CsrfForm { csrf, .. }: CsrfForm<Empty>,
) -> Response {
    let action = async |target| state.core.team.delete_user(&manager, target, &meta).await;
    on_user(&state, &manager, csrf, &id, action, "deleted").await
}

pub async fn reset_two_factor(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    PageManager(manager): PageManager,
    Path(id): Path<String>,
    CsrfForm { csrf, .. }: CsrfForm<Empty>,
) -> Response {
    let action = async |target| {
        state
            .core
            .team
            .reset_two_factor(&manager, target, &meta)
            .await
    };
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
        Ok(id) => state.core.team.revoke_invitation(&manager, id, &meta).await,
        Err(_) => Err(TeamError::NotFound),
    };
    let form = InviteForm::default();
    back_to_users(&state, &manager, csrf, outcome, "revoked", form).await
}
