//! Refused access (SPEC §8, review F15): a signed-in principal refused by its role or its
//! restricted session is audited, at most once a minute per session, and told why.

use crate::helpers::{ResponseExt, TestApp, assert_error};
use reqwest::StatusCode;
use serde_json::Value;

backend_tests!(a_refused_member_is_audited_at_most_once_a_minute);

/// The `access_denied` events in a user's own log.
async fn refusals(app: &TestApp, token: &str) -> Vec<Value> {
    let body = app.events(token, "limit=100").await.body().await;
    body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "access_denied")
        .cloned()
        .collect()
}

async fn a_refused_member_is_audited_at_most_once_a_minute(app: TestApp) {
    let team = app.team().await;
    for _ in 0..3 {
        assert_error(
            app.users(&team.member).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
    }
    let audited = refusals(&app, &team.member).await;
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert_eq!(audited[0]["detail"]["route"], "/api/v1/account/users");
    assert_eq!(audited[0]["detail"]["reason"], "not_a_manager");

    app.clock.advance(61);
    assert_error(
        app.users(&team.member).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_eq!(refusals(&app, &team.member).await.len(), 2);
    // A manager's allowed call records nothing of the kind.
    assert_eq!(app.users(&team.owner).await.status(), StatusCode::OK);
    assert!(refusals(&app, &team.owner).await.is_empty());
}
