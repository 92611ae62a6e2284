//! The team pages: `/account/settings` (Require 2FA, grace-period date, trusted devices) and
//! `/account/users` (users with their 2FA status, invite, delete, reset 2FA, open invitations). The invitee's
//! side is in [`super::invitations`].
//!
//! The powers that amount to account recovery (the policy, deleting a user, resetting 2FA,
//! inviting an admin, the trusted-devices policy) need a recent authentication and the manager's own 2FA (SPEC §9,
//! review F6): outside the step-up window they send the browser to `/reauthenticate` and
//! back to the page of the form, filled in as it was sent (`?draft=1&…`: nothing secret).

use super::csrf::{Csrf, CsrfForm};
use super::error::PageError;
use super::step_up::{recovery_refused, to_reauthenticate};
use super::ui::{Moment, Nav, page};
use super::{Empty, PageManager};
use crate::extract::ClientMeta;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tessera_core::model::{InvitationId, RequestMeta, TrustedDevices, UserId};
use tessera_core::principal::{Forbidden, Manager, RecoveryAdmin};
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
    /// The policy in force (the form may show a draft).
    status_required: bool,
    /// Why saving was refused, when it is not the date's fault.
    alert: Option<String>,
    /// The step-up window (SPEC §9), in minutes.
    window_minutes: i64,
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
    (notice, error, alert): (Option<&'static str>, Option<String>, Option<String>),
    draft: Option<&PolicyForm>,
) -> Response {
    let account = manager.account();
    let grace_date = account
        .grace_period_until
        .map(|t| t.to_date())
        .unwrap_or_default();
    let template = SettingsPage {
        csrf: csrf.field.clone(),
        nav: Nav::new(manager, &csrf),
        account_name: account.name.clone(),
        status_required: account.two_factor_required,
        required: draft.map_or(account.two_factor_required, |d| d.required.is_some()),
        grace_period_until: account.grace_period_until.map(Moment::from),
        grace_date: draft.map_or(grace_date, |d| d.grace_period_until.clone()),
        notice,
        error,
        alert,
        window_minutes: state.core.sessions.reauth_window_secs() / 60,
        trusted_devices: account.trusted_devices == TrustedDevices::Allowed,
        trust_days: state.core.policy().trusted_device_secs / 86_400,
    };
    page(status, &template, csrf)
}

/// `/account/settings`, or with `?draft=1&required=on&grace_period_until=…` the form as it
/// was sent before a re-authentication.
#[derive(Deserialize)]
pub struct SettingsQuery {
    notice: Option<String>,
    draft: Option<String>,
    #[serde(flatten)]
    form: PolicyForm,
}

pub async fn settings(
    State(state): State<AppState>,
    PageManager(manager): PageManager,
    Query(query): Query<SettingsQuery>,
    csrf: Csrf,
) -> Response {
    let notice = notice(query.notice.as_deref());
    let draft = query.draft.is_some().then_some(&query.form);
    let said = (notice, None, None);
    settings_page(&state, &manager, csrf, StatusCode::OK, said, draft)
}

#[derive(Deserialize, serde::Serialize)]
pub struct PolicyForm {
    /// A checkbox: present when ticked.
    #[serde(skip_serializing_if = "Option::is_none")]
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
    let admin = match state.core.team.recovery_admin(manager.clone()) {
        Ok(admin) => admin,
        Err(why) => {
            let draft = serde_urlencoded::to_string(&form).unwrap_or_default();
            return match recovery_refused(why, &format!("/account/settings?draft=1&{draft}")) {
                Ok(reauthenticate) => reauthenticate,
                Err(refused) => {
                    refused
                        .or_form(async |status, message| {
                            let said = (None, None, Some(message));
                            settings_page(&state, &manager, csrf, status, said, Some(&form))
                        })
                        .await
                }
            };
        }
    };
    let required = form.required.is_some();
    let input = PolicyInput {
        required,
        // A date left in the form while switching the requirement off is not an error.
        grace_period_until: required.then_some(form.grace_period_until.as_str()),
    };
    match state
        .core
        .team
        .set_two_factor_policy(&admin, input, &meta)
        .await
    {
        Ok(_) => Redirect::to("/account/settings?notice=saved").into_response(),
        Err(e) => {
            PageError::from(e)
                .or_form(async |status, message| {
                    let said = (None, Some(message), None);
                    settings_page(&state, &manager, csrf, status, said, Some(&form))
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
    let admin = match state.core.team.recovery_admin(manager.clone()) {
        Ok(admin) => admin,
        Err(why) => {
            // A checkbox: going back to the page shows it as it is; the person ticks it again.
            return match recovery_refused(why, "/account/settings") {
                Ok(reauthenticate) => reauthenticate,
                Err(refused) => {
                    refused
                        .or_form(async |status, message| {
                            let said = (None, None, Some(message));
                            settings_page(&state, &manager, csrf, status, said, None)
                        })
                        .await
                }
            };
        }
    };
    let policy = if form.allowed.is_some() {
        TrustedDevices::Allowed
    } else {
        TrustedDevices::Forbidden
    };
    match state
        .core
        .team
        .set_trusted_devices_policy(&admin, policy, &meta)
        .await
    {
        Ok(_) => Redirect::to("/account/settings?notice=trust_saved").into_response(),
        Err(e) => {
            PageError::from(e)
                .or_form(async |status, message| {
                    let said = (None, None, Some(message));
                    settings_page(&state, &manager, csrf, status, said, None)
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

#[derive(Deserialize, serde::Serialize, Default)]
pub struct InviteForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    /// A checkbox: present when ticked (the invitee signs in with SSO).
    #[serde(skip_serializing_if = "Option::is_none")]
    sso: Option<String>,
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

/// `/account/users`, or with `?draft=1&email=…&name=…&role=…` the invitation form as it was
/// sent before a re-authentication.
#[derive(Deserialize)]
pub struct UsersQuery {
    notice: Option<String>,
    draft: Option<String>,
    #[serde(flatten)]
    form: InviteForm,
}

pub async fn users(
    State(state): State<AppState>,
    PageManager(manager): PageManager,
    Query(query): Query<UsersQuery>,
    csrf: Csrf,
) -> Response {
    let notice = notice(query.notice.as_deref());
    let form = match query.draft {
        Some(_) => query.form,
        None => InviteForm {
            role: "member".to_owned(),
            ..InviteForm::default()
        },
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
        sso: form.sso.is_some(),
    };
    let outcome = state
        .core
        .team
        .invite(&manager, input, &meta)
        .await
        .map(|_| ());
    if let Err(TeamError::Forbidden(Forbidden::ReauthenticationRequired)) = outcome {
        let draft = serde_urlencoded::to_string(&form).unwrap_or_default();
        return to_reauthenticate(&format!("/account/users?draft=1&{draft}"));
    }
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

/// Runs an admin's action on one user, then shows the list again with its outcome.
async fn on_user(
    state: &AppState,
    admin: &RecoveryAdmin,
    csrf: Csrf,
    id: &str,
    meta: &RequestMeta,
    action: impl AsyncFnOnce(tessera_core::principal::Managed) -> Result<(), TeamError>,
    done: &str,
) -> Response {
    let outcome = match id.parse::<UserId>() {
        Ok(id) => match state.core.team.managed(admin, id, meta).await {
            Ok(target) => action(target).await,
            Err(e) => Err(e),
        },
        Err(_) => Err(TeamError::NotFound),
    };
    back_to_users(state, admin, csrf, outcome, done, InviteForm::default()).await
}

pub async fn delete_user(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    PageManager(manager): PageManager,
    Path(id): Path<String>,
    CsrfForm { csrf, .. }: CsrfForm<Empty>,
) -> Response {
    let admin = match state.core.team.recovery_admin(manager.clone()) {
        Ok(admin) => admin,
        Err(why) => return refused_on_users(&state, &manager, csrf, why).await,
    };
    let action = async |target| state.core.team.delete_user(&admin, target, &meta).await;
    on_user(&state, &admin, csrf, &id, &meta, action, "deleted").await
}

/// A recovery power refused: re-authenticate and come back, or the list with the reason.
async fn refused_on_users(
    state: &AppState,
    manager: &Manager,
    csrf: Csrf,
    why: Forbidden,
) -> Response {
    match recovery_refused(why, "/account/users") {
        Ok(reauthenticate) => reauthenticate,
        Err(refused) => {
            refused
                .or_form(async |status, message| {
                    let form = InviteForm::default();
                    users_page(state, manager, csrf, status, None, Some(message), form).await
                })
                .await
        }
    }
}

pub async fn reset_two_factor(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    PageManager(manager): PageManager,
    Path(id): Path<String>,
    CsrfForm { csrf, .. }: CsrfForm<Empty>,
) -> Response {
    let admin = match state.core.team.recovery_admin(manager.clone()) {
        Ok(admin) => admin,
        Err(why) => return refused_on_users(&state, &manager, csrf, why).await,
    };
    let action = async |target| {
        state
            .core
            .team
            .reset_two_factor(&admin, target, &meta)
            .await
    };
    on_user(&state, &admin, csrf, &id, &meta, action, "reset").await
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
