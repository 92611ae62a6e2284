//! Step-up ("sudo mode", SPEC §9): sensitive actions need a recent authentication of the
//! session; `POST /me/reauthenticate`; the old `{password}` bodies; the admins' own 2FA for
//! the team's recovery powers (review F6); the `/reauthenticate` page.

mod admins;
mod pages;
mod reauthenticate;
mod sensitive;

use crate::helpers::{SecondFactor, TestApp};
use reqwest::{Response, StatusCode};

/// Past the 15-minute window.
const STALE: i64 = 16 * 60;

async fn assert_stale(response: Response, what: &str) {
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "{what}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "reauthentication_required", "{what}");
}

/// The life of one sensitive action `act` (called with 0, 1, … so each call may differ):
/// refused 16 minutes after the last authentication; allowed (`ok`) after a re-authentication
/// of `token` (with a code of `factor` when given); allowed again 10 minutes later and 10
/// minutes after that, since the action itself restarts the window; refused once more 16
/// minutes after the last one.
async fn check_sensitive(
    app: &TestApp,
    what: &str,
    token: &str,
    factor: Option<&SecondFactor>,
    ok: StatusCode,
    act: impl AsyncFn(usize) -> Response,
) {
    app.clock.advance(STALE);
    assert_stale(act(0).await, what).await;
    app.reauthenticated(token, factor).await;
    assert_eq!(act(1).await.status(), ok, "{what}: just re-authenticated");
    app.clock.advance(10 * 60);
    assert_eq!(act(2).await.status(), ok, "{what}: within the window");
    app.clock.advance(10 * 60);
    assert_eq!(
        act(3).await.status(),
        ok,
        "{what}: 20 minutes after the re-authentication, the last action restarted it"
    );
    app.clock.advance(STALE);
    assert_stale(act(4).await, what).await;
}
