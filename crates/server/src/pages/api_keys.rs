//! `/account/api-keys` (SPEC §11): the account's API keys for its owner and admins: the
//! list (prefix, grants, allowed addresses, last use), a form to create one with grant
//! checkboxes and an address list, the new key shown once, and revoking. Creating and
//! revoking are sensitive: outside the step-up window the browser goes to
//! `/reauthenticate` and back here.

use super::PageManager;
use super::csrf::{Csrf, CsrfForm};
use super::error::PageError;
use super::step_up::recent;
use super::ui::{Moment, Nav, page};
use crate::extract::ClientMeta;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use tessera_core::api_keys::{ApiKey, ApiKeyError, NewApiKey, TESSERA_GRANTS};
use tessera_core::model::ApiKeyId;
use tessera_core::principal::Manager;

const BACK: &str = "/account/api-keys";

struct KeyRow {
    id: String,
    label: String,
    prefix: String,
    grants: String,
    allowed_ips: String,
    last_used: Option<Moment>,
    last_used_ip: Option<String>,
    expires_at: Option<Moment>,
}

impl From<ApiKey> for KeyRow {
    fn from(k: ApiKey) -> Self {
        Self {
            id: k.id.to_string(),
            label: k.label,
            prefix: k.prefix,
            grants: k.grants.join(", "),
            allowed_ips: k
                .allowed_ips
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            last_used: k.last_used_at.map(Moment::from),
            last_used_ip: k.last_used_ip,
            expires_at: k.expires_at.map(Moment::from),
        }
    }
}

struct GrantBox {
    name: String,
    about: &'static str,
    checked: bool,
}

struct Created {
    label: String,
    key: String,
}

#[derive(Template)]
#[template(path = "api_keys.html")]
struct KeysPage {
    csrf: String,
    nav: Nav,
    account_name: String,
    keys: Vec<KeyRow>,
    grants: Vec<GrantBox>,
    created: Option<Created>,
    notice: Option<&'static str>,
    error: Option<String>,
    form_label: String,
    form_ips: String,
    form_expires: String,
}

/// The create form as sent: `grants` repeats, so it is read as pairs.
#[derive(Default)]
struct KeyForm {
    label: String,
    grants: Vec<String>,
    allowed_ips: String,
    expires_at: String,
}

impl KeyForm {
    fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let mut form = Self::default();
        for (name, value) in pairs {
            match name.as_str() {
                "label" => form.label = value,
                "grants" => form.grants.push(value),
                "allowed_ips" => form.allowed_ips = value,
                "expires_at" => form.expires_at = value,
                _ => {}
            }
        }
        form
    }

    /// The typed list, one address or block per line or between commas.
    fn ips(&self) -> Vec<String> {
        self.allowed_ips
            .split([',', '\n', '\r'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

async fn keys_page(
    state: &AppState,
    manager: &Manager,
    csrf: Csrf,
    status: StatusCode,
    (notice, error, created): (Option<&'static str>, Option<String>, Option<Created>),
    form: &KeyForm,
) -> Response {
    let keys = match state.core.api_keys.list(manager).await {
        Ok(keys) => keys,
        Err(e) => return PageError::internal("the API keys page failed", e).into_response(),
    };
    let grants = state
        .core
        .api_keys
        .grants_of(manager)
        .into_iter()
        .map(|name| GrantBox {
            about: TESSERA_GRANTS
                .iter()
                .find(|(own, _)| *own == name)
                .map_or("for the app", |(_, about)| about),
            checked: form.grants.contains(&name),
            name,
        })
        .collect();
    let template = KeysPage {
        csrf: csrf.field.clone(),
        nav: Nav::new(manager, &csrf),
        account_name: manager.account().name.clone(),
        keys: keys.into_iter().map(KeyRow::from).collect(),
        grants,
        created,
        notice,
        error,
        form_label: form.label.clone(),
        form_ips: form.allowed_ips.clone(),
        form_expires: form.expires_at.clone(),
    };
    page(status, &template, csrf)
}

#[derive(serde::Deserialize)]
pub struct KeysQuery {
    notice: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    PageManager(manager): PageManager,
    Query(query): Query<KeysQuery>,
    csrf: Csrf,
) -> Response {
    let notice = match query.notice.as_deref() {
        Some("revoked") => Some("Key revoked: it no longer works."),
        _ => None,
    };
    let said = (notice, None, None);
    keys_page(
        &state,
        &manager,
        csrf,
        StatusCode::OK,
        said,
        &KeyForm::default(),
    )
    .await
}

pub async fn create(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    PageManager(manager): PageManager,
    CsrfForm { form, csrf }: CsrfForm<Vec<(String, String)>>,
) -> Response {
    let form = KeyForm::from_pairs(form);
    let recent = match recent(&state, manager.clone(), BACK) {
        Ok(recent) => recent,
        Err(reauthenticate) => return reauthenticate.into_response(),
    };
    let ips = form.ips();
    let input = NewApiKey {
        label: &form.label,
        grants: &form.grants,
        allowed_ips: &ips,
        expires_at: Some(form.expires_at.as_str()),
    };
    match state.core.api_keys.create(&recent, input, &meta).await {
        Ok(created) => {
            let shown = Created {
                label: created.key.label.clone(),
                key: created.secret.expose().to_owned(),
            };
            let said = (None, None, Some(shown));
            let empty = KeyForm::default();
            keys_page(&state, &manager, csrf, StatusCode::CREATED, said, &empty).await
        }
        Err(e) => {
            refused(e)
                .or_form(async |status, message| {
                    let said = (None, Some(message), None);
                    keys_page(&state, &manager, csrf, status, said, &form).await
                })
                .await
        }
    }
}

pub async fn revoke(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    PageManager(manager): PageManager,
    Path(id): Path<String>,
    CsrfForm { csrf, .. }: CsrfForm<super::Empty>,
) -> Response {
    let recent = match recent(&state, manager.clone(), BACK) {
        Ok(recent) => recent,
        Err(reauthenticate) => return reauthenticate.into_response(),
    };
    let Ok(id) = id.parse::<ApiKeyId>() else {
        return PageError::NOT_FOUND.into_response();
    };
    match state.core.api_keys.revoke(&recent, id, &meta).await {
        Ok(()) => Redirect::to("/account/api-keys?notice=revoked").into_response(),
        Err(e) => {
            refused(e)
                .or_form(async |status, message| {
                    let said = (None, Some(message), None);
                    let empty = KeyForm::default();
                    keys_page(&state, &manager, csrf, status, said, &empty).await
                })
                .await
        }
    }
}

/// A refusal in words.
fn refused(e: ApiKeyError) -> PageError {
    match e {
        ApiKeyError::Invalid(field) => PageError::refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            super::ui::capitalize(&format!(
                "{}: {}",
                match field.field {
                    "label" => "Label",
                    "grants" => "Grants",
                    "allowed_ips" => "Allowed addresses",
                    "expires_at" => "Expires on",
                    other => other,
                },
                field.message
            )),
        ),
        ApiKeyError::GrantNotHeld(grant) => PageError::refused(
            StatusCode::FORBIDDEN,
            format!("You cannot give the grant {grant}: you may not do what it allows yourself."),
        ),
        ApiKeyError::NotFound => PageError::refused(
            StatusCode::NOT_FOUND,
            "That key does not exist or was revoked already.",
        ),
        ApiKeyError::Forbidden(why) => {
            PageError::refused(StatusCode::FORBIDDEN, super::ui::capitalize(why.reason()))
        }
        ApiKeyError::Internal(e) => PageError::internal_on_form("an API key page failed", e),
    }
}
