//! Health, metrics, the OpenAPI document and the headers every answer carries.

use crate::helpers::{ResponseExt, TestApp, assert_error};
use reqwest::StatusCode;

backend_tests!(
    health_checks_the_database,
    metrics_count_requests_and_sign_ins,
    the_openapi_document_covers_every_endpoint,
    answers_carry_security_headers,
);

async fn health_checks_the_database(app: TestApp) {
    let response = app.health().await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.body().await,
        serde_json::json!({"status": "ok", "database": "ok"})
    );
    let response = app.get("/api/v1/health/ready", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.body().await,
        serde_json::json!({"status": "ready"})
    );
}

async fn metrics_count_requests_and_sign_ins(app: TestApp) {
    // The first sign-in verifies the device by email; the second is recognized.
    app.signed_in("metrics@example.com").await;
    app.signed_in_again("metrics@example.com").await;
    app.login("metrics@example.com", "wrong password").await;
    let response = app.metrics().await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    assert!(text.contains(
        "tessera_http_requests_total{method=\"POST\",route=\"/api/v1/login\",status=\"200\"} 2"
    ));
    assert!(text.contains(
        "tessera_http_requests_total{method=\"POST\",route=\"/api/v1/signup\",status=\"201\"} 1"
    ));
    assert!(text.contains("tessera_sign_ins_total{outcome=\"success\"} 1"));
    assert!(text.contains("tessera_sign_ins_total{outcome=\"device_verification\"} 1"));
    assert!(text.contains("tessera_sign_ins_total{outcome=\"invalid_credentials\"} 1"));
    assert!(
        text.contains("tessera_http_request_duration_seconds_count{route=\"/api/v1/login\"} 3")
    );
}

async fn the_openapi_document_covers_every_endpoint(app: TestApp) {
    let doc = app.openapi().await.body().await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(doc["servers"][0]["url"], "/api/v1");
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/signup", "post"),
        ("/login", "post"),
        ("/logout", "post"),
        ("/me", "get"),
        ("/me/events", "get"),
        ("/health", "get"),
        ("/health/ready", "get"),
        ("/login/verify", "post"),
        ("/me/2fa/setup", "post"),
        ("/me/2fa/activate", "post"),
        ("/me/2fa/disable", "post"),
        ("/me/2fa/recovery-codes", "post"),
        ("/recover", "post"),
        ("/account", "get"),
        ("/account/two-factor-policy", "put"),
        ("/account/users", "get"),
        ("/account/users/{id}", "delete"),
        ("/account/users/{id}/two-factor/reset", "post"),
        ("/account/invitations", "get"),
        ("/account/invitations", "post"),
        ("/account/invitations/{id}", "delete"),
        ("/account/events", "get"),
        ("/invitations/accept", "post"),
        ("/signup/confirm", "post"),
        ("/login/resend", "post"),
        ("/me/devices", "get"),
        ("/me/devices/{id}", "delete"),
        ("/me/sessions", "get"),
        ("/me/sessions", "delete"),
        ("/me/sessions/{id}", "delete"),
        ("/me/password", "post"),
        ("/me/reauthenticate", "post"),
        ("/password/forgot", "post"),
        ("/password/reset", "post"),
        ("/me/devices/{id}/trust", "delete"),
        ("/account/trusted-devices-policy", "put"),
        ("/account/oidc-clients", "get"),
        ("/account/oidc-clients", "post"),
        ("/account/oidc-clients/{id}", "delete"),
        ("/account/api-keys", "get"),
        ("/account/api-keys", "post"),
        ("/account/api-keys/{id}", "put"),
        ("/account/api-keys/{id}", "delete"),
        ("/gate", "get"),
        ("/me/webauthn/register/start", "post"),
        ("/me/webauthn/register/finish", "post"),
        ("/me/webauthn", "get"),
        ("/me/webauthn/{id}", "delete"),
        ("/login/passkey/start", "post"),
        ("/login/passkey/finish", "post"),
        ("/me/reauthenticate/options", "post"),
        ("/login/sso", "post"),
        ("/account/sso", "get"),
        ("/account/sso", "put"),
    ] {
        assert!(
            paths[path][method].is_object(),
            "{method} {path} is documented"
        );
        // And it is really served.
        let response = app
            .client
            .request(
                method.to_uppercase().parse().unwrap(),
                app.url(&format!("/api/v1{path}")),
            )
            .send()
            .await
            .unwrap();
        assert_ne!(response.status(), StatusCode::NOT_FOUND, "{method} {path}");
        assert_ne!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
    }
    assert_eq!(paths.len(), 48, "every documented path is listed above");
    // Every operation may answer 503 (a database outage), and one with a body 413.
    for (path, operation) in paths {
        for (method, operation) in operation.as_object().unwrap() {
            assert!(
                operation["responses"]["503"].is_object(),
                "{method} {path} documents 503"
            );
        }
    }
    assert!(paths["/login"]["post"]["responses"]["413"].is_object());
    assert!(doc["components"]["securitySchemes"]["session"].is_object());
    assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
}

async fn answers_carry_security_headers(app: TestApp) {
    for path in ["/api/v1/health", "/login", "/api/v1/nope"] {
        let response = app.get(path, None).await;
        let h = response.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
    }
    let response = app.get("/api/v1/me", None).await;
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}
