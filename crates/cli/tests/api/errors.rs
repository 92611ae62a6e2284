//! Bad input answers a clear JSON error with a stable code, never a 500, and loses nothing.

use crate::helpers::{PASSWORD, ResponseExt, TestApp, assert_error, assert_page};
use reqwest::StatusCode;
use serde_json::json;

backend_tests!(
    malformed_json_is_a_400,
    wrongly_typed_or_missing_fields_are_422,
    a_body_that_is_not_json_is_415,
    an_oversized_body_is_413,
    unknown_routes_are_404_json,
    wrong_methods_are_405,
    bad_query_parameters_are_422,
    hostile_strings_are_stored_and_shown_verbatim,
    control_characters_and_huge_values_are_refused_cleanly,
);

async fn malformed_json_is_a_400(app: TestApp) {
    for body in [
        "{",
        "{\"email\": }",
        "{\"email\": \"a\" \"password\": \"b\"}",
        "\u{0}",
    ] {
        let response = app
            .client
            .post(app.url("/api/v1/login"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::BAD_REQUEST, "malformed_json").await;
    }
}

async fn wrongly_typed_or_missing_fields_are_422(app: TestApp) {
    let cases = [
        ("/api/v1/login", json!({"email": "a@example.com"})),
        ("/api/v1/login", json!({"email": 5, "password": "x"})),
        (
            "/api/v1/login",
            json!({"email": "a@example.com", "password": null}),
        ),
        ("/api/v1/login", json!([1, 2])),
        ("/api/v1/login", json!({"email": "", "password": "x"})),
        (
            "/api/v1/login",
            json!({"email": "a@example.com", "password": ""}),
        ),
        (
            "/api/v1/signup",
            json!({"account_name": "A", "name": "B", "email": "c@d.e"}),
        ),
        (
            "/api/v1/signup",
            json!({"account_name": "A", "name": "B", "email": "c@d.e", "password": PASSWORD,
                   "role": "admin"}),
        ),
    ];
    for (path, body) in cases {
        let response = app.post(path, body.clone(), None).await;
        assert_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
        )
        .await;
    }
}

async fn a_body_that_is_not_json_is_415(app: TestApp) {
    let response = app
        .client
        .post(app.url("/api/v1/signup"))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_error(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let response = app
        .client
        .post(app.url("/api/v1/login"))
        .send()
        .await
        .unwrap();
    assert_error(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
}

async fn an_oversized_body_is_413(app: TestApp) {
    let huge = json!({"email": "a@example.com", "password": "x".repeat(100 * 1024)});
    let response = app.login_with(&huge, &[]).await;
    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
}

async fn unknown_routes_are_404_json(app: TestApp) {
    for path in ["/api/v1/nope", "/api/v2/me", "/api/v1/me/nothing"] {
        let response = app.get(path, None).await;
        assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    }
    // Outside the API, a page.
    let response = app.get("/no-such-page", None).await;
    assert_page(response, StatusCode::NOT_FOUND, "Page not found").await;
}

async fn wrong_methods_are_405(app: TestApp) {
    let response = app.get("/api/v1/login", None).await;
    assert_error(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
    let response = app
        .client
        .delete(app.url("/api/v1/me"))
        .send()
        .await
        .unwrap();
    assert_error(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
}

async fn bad_query_parameters_are_422(app: TestApp) {
    let token = app.signed_in("query@example.com").await;
    for query in ["limit=0", "limit=101", "limit=ten", "before=x", "unknown=1"] {
        let response = app.events(&token, query).await;
        assert_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
        )
        .await;
    }
}

async fn hostile_strings_are_stored_and_shown_verbatim(app: TestApp) {
    let name = "Robert'); DROP TABLE users;-- <script>alert(1)</script> 🦀";
    let response = app
        .signup(
            &json!({"account_name": name, "name": name, "email": "bobby@example.com",
                        "password": "pässwörd with ünïcode"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let response = app
        .login("bobby@example.com", "pässwörd with ünïcode")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = app
        .verify_device("bobby@example.com", &response.body().await)
        .await;
    assert_eq!(body["user"]["name"], name);
}

async fn control_characters_and_huge_values_are_refused_cleanly(app: TestApp) {
    // PostgreSQL refuses NUL in text and long index keys: neither may become a 500.
    for email in ["a\u{0}b@example.com", "\u{0}", &"x".repeat(10_000)] {
        let response = app.login(email, "some password").await;
        assert_error(response, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
        let response = app.recover(email, &"k".repeat(64)).await;
        assert_error(response, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    let response = app.verify(&"\u{0}".repeat(1000), "123456").await;
    assert_error(response, StatusCode::UNAUTHORIZED, "challenge_expired").await;
}
