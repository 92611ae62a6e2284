//! `/settings/devices`: the browsers that skip the email code, and the active sessions, each
//! of which the user may end (or all but this one).

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

struct DeviceRow {
    id: String,
    browser: String,
    agent: String,
    ip: String,
    verified: Moment,
    last_used: Moment,
    expires: Moment,
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
            Some("others") => Some("Signed out everywhere else."),
            _ => None,
        },
        device_days: state.core.policy().device_lifetime_secs / 86_400,
    };
    page(StatusCode::OK, &template, csrf)
}

/// What a person calls the browser a `User-Agent` names: "Chrome 131 on Windows".
fn browser_name(agent: Option<&str>) -> String {
    let Some(agent) = agent.filter(|a| !a.trim().is_empty()) else {
        return "Unknown browser".to_owned();
    };
    let version = |marker: &str| {
        agent.split(marker).nth(1).map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap_or_default()
                .to_owned()
        })
    };
    // Most specific first: Edge and Opera say "Chrome" too, and Chrome says "Safari".
    let browsers = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("HeadlessChrome/", "Headless Chrome"),
        ("Chromium/", "Chromium"),
        ("Chrome/", "Chrome"),
        ("CriOS/", "Chrome"),
        ("Version/", "Safari"),
    ];
    let browser = browsers
        .iter()
        .find_map(|(marker, name)| {
            version(marker).map(|v| {
                if v.is_empty() {
                    (*name).to_owned()
                } else {
                    format!("{name} {v}")
                }
            })
        })
        .unwrap_or_else(|| {
            // A tool such as curl/8.5.0: its name as it gives it.
            let first = agent.split_whitespace().next().unwrap_or(agent);
            first.split('/').next().unwrap_or(first).to_owned()
        });
    let systems = [
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Android", "Android"),
        ("CrOS", "ChromeOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    ];
    match systems.iter().find(|(marker, _)| agent.contains(marker)) {
        Some((_, system)) => format!("{browser} on {system}"),
        None => browser,
    }
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
        Target::Session(id) => Ok(state.core.sessions.revoke(context, id, meta).await?),
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
    let result = act(&state, &context, &meta, &id, Target::Device).await;
    outcome(result, "forgotten")
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

#[cfg(test)]
mod tests {
    use super::browser_name;

    #[test]
    fn browsers_are_named_as_people_know_them() {
        let cases = [
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/131.0.0.0 Safari/537.36",
                "Chrome 131 on Windows",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
                "Edge 131 on Windows",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 (KHTML, like \
                 Gecko) Version/18.1 Safari/605.1.15",
                "Safari 18 on macOS",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 \
                 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
                "Safari 18 on iOS",
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
                "Firefox 133 on Linux",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/131.0.0.0 Mobile Safari/537.36",
                "Chrome 131 on Android",
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 HeadlessChrome/156.0.0.0 Safari/537.36",
                "Headless Chrome 156 on Linux",
            ),
            ("curl/8.5.0", "curl"),
            ("   ", "Unknown browser"),
        ];
        for (agent, name) in cases {
            assert_eq!(browser_name(Some(agent)), name, "{agent}");
        }
        assert_eq!(browser_name(None), "Unknown browser");
    }
}
