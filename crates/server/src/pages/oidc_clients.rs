//! `/account/oidc-clients`: the owner registers and removes the team's applications that
//! sign its users in with Tessera (SPEC §13). Both are sensitive actions: outside the step-up
//! window the owner confirms it is them first (SPEC §9).

use super::csrf::{Csrf, CsrfForm};
use super::error::PageError;
use super::step_up::recent;
use super::ui::{Nav, page};
use super::{Empty, PageManager};
use crate::extract::ClientMeta;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tessera_core::oidc_provider::clients::{ClientError, NewClient, Registered};
use tessera_core::principal::Manager;

const BACK: &str = "/account/oidc-clients";

struct ClientRow {
    name: String,
    client_id: String,
    kind: &'static str,
    redirect_uris: String,
}

struct Created {
    name: String,
    client_id: String,
    secret: Option<String>,
}

#[derive(Template)]
#[template(path = "oidc_clients.html")]
struct ClientsPage {
    nav: Nav,
    csrf: String,
    issuer: String,
    clients: Vec<ClientRow>,
    created: Option<Created>,
    alert: Option<String>,
    name: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    window_minutes: i64,
}

#[derive(Deserialize, Default)]
pub struct ClientForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    redirect_uris: String,
    #[serde(default)]
    post_logout_redirect_uris: String,
    public: Option<String>,
}

async fn render(
    state: &AppState,
    manager: &Manager,
    csrf: Csrf,
    status: StatusCode,
    said: (Option<Created>, Option<String>),
    form: &ClientForm,
) -> Response {
    let clients = match state.core.oidc.team_clients(manager).await {
        Ok(clients) => clients,
        Err(ClientError::OwnerOnly) => {
            return PageError::refused(
                StatusCode::FORBIDDEN,
                "Only the team's owner manages the applications that sign in with Tessera.",
            )
            .into_response();
        }
        Err(e) => {
            return PageError::internal("cannot list the team's OIDC clients", e).into_response();
        }
    };
    let template = ClientsPage {
        nav: Nav::new(manager, &csrf),
        csrf: csrf.field.clone(),
        issuer: state.core.oidc.issuer_url().to_owned(),
        clients: clients
            .iter()
            .map(|c| ClientRow {
                name: c.name.clone(),
                client_id: c.id.clone(),
                kind: if c.secret_hash.is_some() {
                    "confidential"
                } else {
                    "public"
                },
                redirect_uris: c.redirect_uris.join(" "),
            })
            .collect(),
        created: said.0,
        alert: said.1,
        name: form.name.clone(),
        redirect_uris: form.redirect_uris.clone(),
        post_logout_redirect_uris: form.post_logout_redirect_uris.clone(),
        window_minutes: state.core.sessions.reauth_window_secs() / 60,
    };
    page(status, &template, csrf)
}

pub async fn show(
    State(state): State<AppState>,
    PageManager(manager): PageManager,
    csrf: Csrf,
) -> Response {
    render(
        &state,
        &manager,
        csrf,
        StatusCode::OK,
        (None, None),
        &ClientForm::default(),
    )
    .await
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

pub async fn add(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    PageManager(manager): PageManager,
    CsrfForm { form, csrf }: CsrfForm<ClientForm>,
) -> Response {
    let owner = match recent(&state, manager.clone(), BACK) {
        Ok(owner) => owner,
        Err(reauthenticate) => return reauthenticate.into_response(),
    };
    let new = NewClient {
        name: form.name.clone(),
        redirect_uris: lines(&form.redirect_uris),
        post_logout_redirect_uris: lines(&form.post_logout_redirect_uris),
        public: form.public.is_some(),
        id_token_alg: None,
    };
    match state.core.oidc.add_team_client(&owner, &new, &meta).await {
        Ok(Registered { client, secret }) => {
            let created = Created {
                name: client.name,
                client_id: client.id,
                secret: secret.map(|s| s.expose().to_owned()),
            };
            let said = (Some(created), None);
            render(
                &state,
                &manager,
                csrf,
                StatusCode::CREATED,
                said,
                &ClientForm::default(),
            )
            .await
        }
        Err(ClientError::Invalid(e)) => {
            let said = (
                None,
                Some(format!("{}: {}.", e.field.replace('_', " "), e.message)),
            );
            render(
                &state,
                &manager,
                csrf,
                StatusCode::UNPROCESSABLE_ENTITY,
                said,
                &form,
            )
            .await
        }
        Err(ClientError::OwnerOnly | ClientError::NotFound) => {
            render(
                &state,
                &manager,
                csrf,
                StatusCode::FORBIDDEN,
                (None, None),
                &form,
            )
            .await
        }
        Err(e @ ClientError::Internal(_)) => {
            PageError::internal("cannot register an OIDC client", e).into_response()
        }
    }
}

pub async fn remove(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    PageManager(manager): PageManager,
    Path(id): Path<String>,
    CsrfForm { csrf, .. }: CsrfForm<Empty>,
) -> Response {
    let owner = match recent(&state, manager.clone(), BACK) {
        Ok(owner) => owner,
        Err(reauthenticate) => return reauthenticate.into_response(),
    };
    match state.core.oidc.remove_team_client(&owner, &id, &meta).await {
        Ok(()) => Redirect::to(BACK).into_response(),
        Err(ClientError::NotFound) => {
            let said = (
                None,
                Some("That application is not registered (any more).".to_owned()),
            );
            render(
                &state,
                &manager,
                csrf,
                StatusCode::NOT_FOUND,
                said,
                &ClientForm::default(),
            )
            .await
        }
        Err(ClientError::OwnerOnly | ClientError::Invalid(_)) => {
            render(
                &state,
                &manager,
                csrf,
                StatusCode::FORBIDDEN,
                (None, None),
                &ClientForm::default(),
            )
            .await
        }
        Err(e @ ClientError::Internal(_)) => {
            PageError::internal("cannot remove an OIDC client", e).into_response()
        }
    }
}
