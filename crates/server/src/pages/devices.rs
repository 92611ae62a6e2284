//! `/settings/devices`: the browsers that skip the email code (and those trusted to skip the
//! second step, which the user may stop), and the active sessions, each of which the user
//! may end (or all but this one).

use super::csrf::{Csrf, CsrfForm};
use super::error::PageError;
use super::ui::{Moment, Nav, page};
use super::{Empty, PageUser};
use crate::extract::ClientMeta;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::str::FromStr;
use tessera_core::devices::DeviceError;
use tessera_core::model::{DeviceId, RequestMeta, SessionId};
use tessera_core::principal::FullSession;
use tessera_core::sessions::SessionCursor;
use tessera_core::user_agent::browser_name;

struct DeviceRow {
    id: String,
    browser: String,
    agent: String,
    ip: String,
    verified: Moment,
    last_used: Moment,
    expires: Moment,
    /// Until when it skips the second step, if it does.
    trusted: Option<Moment>,
}

struct SessionRow {
    id: String,
    browser: String,
    agent: String,
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
    /// The next page of sessions, when there is one.
    more: Option<String>,
    notice: Option<&'static str>,
    device_days: i64,
}

/// Sessions listed per page.
const SESSIONS_PER_PAGE: i64 = 50;

/// `?notice=` after an action, `?after=` for the next page of sessions.
#[derive(Deserialize)]
pub struct DevicesQuery {
    notice: Option<String>,
    after: Option<String>,
}

fn unknown(text: Option<String>) -> String {
    text.filter(|t| !t.is_empty())
        .unwrap_or_else(|| "Unknown".to_owned())
}

pub async fn show(
    State(state): State<AppState>,
    PageUser(context): PageUser,
    Query(query): Query<DevicesQuery>,
    csrf: Csrf,
) -> Response {
    let after = query.after.as_deref().and_then(SessionCursor::decode);
    let (devices, (sessions, next)) = match tokio::try_join!(
        state.core.devices.list(&context),
        state.core.sessions.list(&context, after, SESSIONS_PER_PAGE)
    ) {
        Ok(found) => found,
        Err(e) => return PageError::internal("the devices page failed", e).into_response(),
    };
    let template = DevicesPage {
        csrf: csrf.field.clone(),
        nav: Nav::new(&context, &csrf),
        devices: devices
            .into_iter()
            .map(|d| DeviceRow {
                id: d.id.to_string(),
                browser: browser_name(d.user_agent.as_deref()),
                agent: unknown(d.user_agent),
                ip: unknown(d.ip),
                verified: d.created_at.into(),
                last_used: d.last_used_at.into(),
                expires: d.expires_at.into(),
                trusted: d.trusted_until.map(Moment::from),
            })
            .collect(),
        sessions: sessions
            .into_iter()
            .map(|s| SessionRow {
                current: s.id == context.session().id,
                id: s.id.to_string(),
                browser: browser_name(s.user_agent.as_deref()),
                agent: unknown(s.user_agent),
                ip: unknown(s.ip),
                started: s.created_at.into(),
            })
            .collect(),
        more: next.map(|n| format!("/settings/devices?after={}#sessions", n.encode())),
        notice: match query.notice.as_deref() {
            Some("forgotten") => {
                Some("Device forgotten: signing in from it needs an email code again.")
            }
            Some("ended") => Some("Session signed out."),
            Some("untrusted") => {
                Some("That device asks for the second step again at its next sign-in.")
            }
            Some("others") => Some("Signed out everywhere else."),
            _ => None,
        },
        device_days: state.core.policy().device_lifetime_secs / 86_400,
    };
    page(StatusCode::OK, &template, csrf)
}

/// Back to the list with a notice, or a page that says the thing was already gone.
fn outcome(result: Result<(), PageError>, notice: &str) -> Response {
    match result {
        Ok(()) => Redirect::to(&format!("/settings/devices?notice={notice}")).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Forgets one device or ends one session, named by the id in the path (an id that does not
/// parse names nothing).
async fn act<T: FromStr>(
    state: &AppState,
    context: &FullSession,
    meta: &RequestMeta,
    id: &str,
    target: fn(T) -> Target,
) -> Result<(), PageError> {
    let Ok(id) = id.parse() else {
        return Err(DeviceError::NotFound.into());
    };
    match target(id) {
        Target::Device(id) => Ok(state.core.devices.remove(context, id, meta).await?),
        Target::Trust(id) => Ok(state.core.devices.stop_trusting(context, id, meta).await?),
        Target::Session(id) => Ok(state.core.sessions.revoke(context, id, meta).await?),
    }
}

enum Target {
    Device(DeviceId),
    /// A device's trust (SPEC §9).
    Trust(DeviceId),
    Session(SessionId),
}

pub async fn forget_device(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    PageUser(context): PageUser,
    Path(id): Path<String>,
    _: CsrfForm<Empty>,
) -> Response {
    let result = act(&state, &context, &meta, &id, Target::Device).await;
    outcome(result, "forgotten")
}

pub async fn stop_trusting_device(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    PageUser(context): PageUser,
    Path(id): Path<String>,
    _: CsrfForm<Empty>,
) -> Response {
    let result = act(&state, &context, &meta, &id, Target::Trust).await;
    outcome(result, "untrusted")
}

pub async fn end_session(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    PageUser(context): PageUser,
    Path(id): Path<String>,
    _: CsrfForm<Empty>,
) -> Response {
    let result = act(&state, &context, &meta, &id, Target::Session).await;
    outcome(result, "ended")
}

pub async fn end_other_sessions(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    PageUser(context): PageUser,
    _: CsrfForm<Empty>,
) -> Response {
    let result = state
        .core
        .sessions
        .revoke_others(&context, &meta)
        .await
        .map(|_| ())
        .map_err(|e| PageError::internal("the devices page failed", e));
    outcome(result, "others")
}
