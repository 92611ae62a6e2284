//! Bounded sessions (review D13): a user holds at most 100 sessions, the oldest ending when a
//! new one opens, and `GET /me/sessions` comes in pages (`limit` 1–100, a cursor in the
//! `Link` header, a stable order).

use crate::helpers::{ResponseExt, TestApp, assert_error};
use reqwest::StatusCode;

backend_tests!(a_user_holds_at_most_100_sessions_listed_in_pages);

async fn a_user_holds_at_most_100_sessions_listed_in_pages(mut app: TestApp) {
    // Cheap password hashing: this test signs in 105 times.
    app.reconfigure(|c| {
        c.security.argon2_memory_kib = 64;
        c.security.argon2_iterations = 1;
    })
    .await;
    let email = "busy@example.com";
    let first = app.signed_in(email).await;
    let mut latest = first.clone();
    for _ in 0..104 {
        latest = app.signed_in_again(email).await;
    }
    assert_eq!(
        app.me(&first).await.status(),
        StatusCode::UNAUTHORIZED,
        "the oldest ended"
    );
    let response = app.sessions(&latest).await;
    assert!(
        response.headers().get("link").is_none(),
        "one page by default"
    );
    let all = response.body().await;
    let all: Vec<String> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(all.len(), 100);

    // Pages of 30 follow the `Link` header: the same sessions, in the same order.
    let mut paged = Vec::new();
    let mut next = Some("/api/v1/me/sessions?limit=30".to_owned());
    let mut pages = 0;
    while let Some(path) = next.take() {
        let response = app.get(&path, Some(&latest)).await;
        assert_eq!(response.status(), StatusCode::OK);
        next = response.headers().get("link").map(|l| {
            let l = l.to_str().unwrap();
            assert!(l.ends_with(">; rel=\"next\""), "{l}");
            l[1..l.find('>').unwrap()].to_owned()
        });
        let page = response.body().await;
        paged.extend(
            page.as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_str().unwrap().to_owned()),
        );
        pages += 1;
    }
    assert_eq!(pages, 4);
    assert_eq!(paged, all);

    // The page lists 50 at a time, with a link to the next 50.
    let b = app.browser_signed_in(email).await;
    let (status, first) = b.get("/settings/devices").await;
    assert_eq!(status, StatusCode::OK);
    let listed = |html: &str| html.matches("/end\">").count();
    assert_eq!(listed(&first), 50);
    let start = first
        .find("<a href=\"/settings/devices?after=")
        .expect("a More link");
    let href = &first[start + 9..];
    let href = &href[..href.find('"').unwrap()];
    assert!(first[start..].contains(">More sessions</a>"));
    let (status, second) = b.get(&href.replace("&amp;", "&")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed(&second), 50);
    assert!(!second.contains("More sessions"), "the last page");

    for bad in ["limit=0", "limit=101", "after=nonsense"] {
        let response = app
            .get(&format!("/api/v1/me/sessions?{bad}"), Some(&latest))
            .await;
        assert_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
        )
        .await;
    }
}
