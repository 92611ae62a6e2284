//! The invitee's side of an invitation: `/invitations/{token}` shows it, with a form to choose
//! a name and a password; accepting it signs the new user in.

use super::csrf::{Csrf, CsrfForm};
use super::error::PageError;
use super::ui::{Moment, page, signed_in_here};
use crate::extract::ClientMeta;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tessera_core::team::{InvitationError, OpenInvitation};

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
    /// The invitee signs in with the team's SSO: no password form.
    sso: bool,
    errors: AcceptErrors,
}

#[derive(Default)]
struct AcceptErrors {
    name: Option<String>,
    password: Option<String>,
    general: Option<String>,
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
        sso: open.invitation.auth_source == tessera_core::model::AuthSource::Sso,
        errors,
    };
    page(status, &template, csrf)
}

pub async fn invitation(
    State(state): State<AppState>,
    Path(token): Path<String>,
    csrf: Csrf,
) -> Response {
    match state.core.invitations.find(&token).await {
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
        Err(e) => PageError::from(e).into_response(),
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
        .core
        .invitations
        .accept(&form.token, &password, Some(&form.name), &meta)
        .await
    {
        Ok(registered) => match state.core.sessions.open_registered(registered, &meta).await {
            Ok(session) => signed_in_here(&state, &session, &meta).await,
            Err(e) => PageError::internal("a team page failed", e).into_response(),
        },
        Err(InvitationError::Invalid(field)) => {
            match state.core.invitations.find(&form.token).await {
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
                Err(e) => PageError::from(e).into_response(),
            }
        }
        Err(e) => PageError::from(e).into_response(),
    }
}
