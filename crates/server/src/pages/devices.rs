//! `/settings/devices`: the browsers that skip the email code, and the active sessions, each
//! of which the user may end (or all but this one).

use super::account::page;
use super::csrf::{Csrf, CsrfForm};
use super::{Empty, Moment, Nav, PageUser, message_page};
use crate::app::AppState;
use crate::extract::ClientMeta;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tessera_core::device::DeviceError;
use tessera_core::model::{DeviceId, SessionId};
use tessera_core::store::SessionContext;

struct DeviceRow {
    id: String,
    browser: String,
    ip: String,
    verified: Moment,
    last_used: Moment,
    expires: Moment,
}

struct SessionRow {
    id: String,
    browser: String,
    ip: String,
    started: Moment,
    current: bool,
}

#[derive(Template)]
#[template(path = "devices.html")]
struct DevicesPage {
    csrf: String,
    nav: Nav,
    devices: Vec<DeviceRow>,
    sessions: Vec<SessionRow>,
    notice: Option<&'static str>,
    device_days: i64,
}

#[derive(Deserialize)]
pub struct Notice {
    notice: Option<String>,
}

fn unknown(text: Option<String>) -> String {
    text.filter(|t| !t.is_empty())
        .unwrap_or_else(|| "Unknown".to_owned())
}

fn failed(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "the devices page failed");
    message_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Please try again in a moment.",
    )
}

pub async fn show(
    State(state): State<AppState>,
    PageUser(context): PageUser,
    Query(query): Query<Notice>,
    csrf: Csrf,
) -> Response {
    let (devices, sessions) = match tokio::try_join!(
        state.auth.devices(&context.user),
        state.auth.sessions(&context.user)
    ) {
        Ok(found) => found,
        Err(e) => return failed(e),
    };
    let template = DevicesPage {
        csrf: csrf.field.clone(),
        nav: Nav::new(&context, &csrf, state.auth.now()),
        devices: devices
            .into_iter()
            .map(|d| DeviceRow {
                id: d.id.to_string(),
                browser: unknown(d.user_agent),
                ip: unknown(d.ip),
                verified: d.created_at.into(),
                last_used: d.last_used_at.into(),
                expires: d.expires_at.into(),
            })
            .collect(),
        sessions: sessions
            .into_iter()
            .map(|s| SessionRow {
                current: s.id == context.session.id,
                id: s.id.to_string(),
                browser: unknown(s.user_agent),
                ip: unknown(s.ip),
                started: s.created_at.into(),
            })
            .collect(),
        notice: match query.notice.as_deref() {
            Some("forgotten") => {
                Some("Device forgotten: signing in from it needs an email code again.")
            }
            Some("ended") => Some("Session signed out."),
            Some("others") => Some("Signed out everywhere else."),
            _ => None,
        },
        device_days: state.auth.policy.device_lifetime_secs / 86_400,
    };
    page(StatusCode::OK, &template, csrf)
}

/// Back to the list with a notice, or a page that says the thing was already gone.
fn outcome(result: Result<(), DeviceError>, notice: &str) -> Response {
    match result {
        Ok(()) => Redirect::to(&format!("/settings/devices?notice={notice}")).into_response(),
        Err(DeviceError::NotFound) => message_page(
            StatusCode::NOT_FOUND,
            "Already gone",
            "That device or session no longer exists.",
        ),
        Err(e) => failed(e),
    }
}

async fn act(
    state: &AppState,
    context: &SessionContext,
    meta: &tessera_core::model::RequestMeta,
    target: Target,
) -> Result<(), DeviceError> {
    match target {
        Target::Device(id) => state.auth.remove_device(context, id, meta).await,
        Target::Session(id) => state.auth.revoke_session(context, id, meta).await,
    }
}

enum Target {
    Device(DeviceId),
    Session(SessionId),
}

pub async fn forget_device(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    PageUser(context): PageUser,
    Path(id): Path<String>,
    _: CsrfForm<Empty>,
) -> Response {
    let result = match id.parse() {
        Ok(id) => act(&state, &context, &meta, Target::Device(id)).await,
        Err(_) => Err(DeviceError::NotFound),
    };
    outcome(result, "forgotten")
}

pub async fn end_session(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    PageUser(context): PageUser,
    Path(id): Path<String>,
    _: CsrfForm<Empty>,
) -> Response {
    let result = match id.parse() {
        Ok(id) => act(&state, &context, &meta, Target::Session(id)).await,
        Err(_) => Err(DeviceError::NotFound),
    };
    outcome(result, "ended")
}

pub async fn end_other_sessions(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    PageUser(context): PageUser,
    _: CsrfForm<Empty>,
) -> Response {
    let result = state
        .auth
        .revoke_other_sessions(&context, &meta)
        .await
        .map(|_| ())
        .map_err(DeviceError::from);
    outcome(result, "others")
}
