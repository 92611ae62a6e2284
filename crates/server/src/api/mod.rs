//! The JSON API under `/api/v1` (SPEC §4), and its OpenAPI document, generated from the
//! handlers themselves so it cannot miss one.

mod activity;
mod api_keys;
mod devices;
mod gate;
mod health;
mod invitations;
mod me;
mod oidc_clients;
mod passwords;
mod reauthenticate;
mod schema;
mod second_step;
mod sign_in;
mod sign_up;
mod sso;
mod team;
mod two_factor;
mod webauthn;

use crate::error::{AppError, ErrorBody};
use crate::state::AppState;
use axum::Router;
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::Arc;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tessera API",
        description = "Password sign-in and two-factor authentication for team accounts. \
                       Every error answers `{\"error\": {\"code\", \"message\"}}`."
    ),
    servers((url = "/api/v1")),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Sign-up, sign-in and sign-out"),
        (name = "me", description = "The signed-in user"),
        (name = "two-factor", description = "Authenticator app, security keys and passkeys, recovery codes, paper key"),
        (name = "account", description = "Account administration: owner and admins only (some endpoints also for API keys with the grant)"),
        (name = "gate", description = "Forward authentication for a reverse proxy in front of an app"),
        (name = "ops", description = "Health")
    )
)]
struct ApiDoc;

/// Declares the `Authorization: Bearer <session_token>` scheme the handlers refer to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        // `Authorization: Bearer tsk_…` (SPEC §11); an operation names the grant it needs.
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// What any operation may answer besides its own statuses (review D12): `503` when the
/// database cannot be reached or cannot write for now (or the request ran past its
/// deadline); with a session, `401` without a live one; with a request body, `413` (over
/// 64 KiB), `408` (not sent within the header timeout), `400` (not JSON, or broken off),
/// `415` (not `application/json`) and `422` (JSON of the wrong shape).
struct Outages;

impl Modify for Outages {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                let mut add = |status: &str, description: &str| {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| error(description).into());
                };
                add(
                    "503",
                    "`unavailable`: the database cannot be reached or cannot write for now, or \
                     `timeout`: the request ran past 30 s; both with `Retry-After`",
                );
                let secured = operation
                    .security
                    .as_ref()
                    .is_some_and(|requirements| !requirements.is_empty());
                if secured {
                    add(
                        "401",
                        "`unauthenticated`: no session, or not a live one; `session_expired`: \
                         past its lifetime or idle timeout",
                    );
                }
                if operation.request_body.is_some() {
                    add("413", "`payload_too_large`: the body is over 64 KiB");
                    add(
                        "408",
                        "`request_timeout`: the body did not arrive within the header timeout",
                    );
                    add(
                        "400",
                        "`malformed_json`: the body is not JSON; `bad_request`: it broke off",
                    );
                    add(
                        "415",
                        "`unsupported_media_type`: the body is not `application/json`",
                    );
                    add(
                        "422",
                        "`validation_error`: a field is missing, of the wrong type, or not valid",
                    );
                }
            }
        }
    }
}

/// An id from the path: one that does not parse names nothing, so it is `404`.
fn path_id<T: std::str::FromStr>(text: &str) -> Result<T, AppError> {
    text.parse().map_err(|_| AppError::NotFound)
}

pub fn router() -> Router<AppState> {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(sign_up::signup))
        .routes(routes!(sign_up::confirm))
        .routes(routes!(sign_in::login))
        .routes(routes!(sso::start))
        .routes(routes!(sso::settings, sso::configure))
        .routes(routes!(second_step::verify))
        .routes(routes!(second_step::resend))
        .routes(routes!(sign_in::logout))
        .routes(routes!(devices::devices))
        .routes(routes!(devices::remove_device))
        .routes(routes!(devices::stop_trusting_device))
        .routes(routes!(devices::sessions, devices::revoke_other_sessions))
        .routes(routes!(devices::revoke_session))
        .routes(routes!(two_factor::setup))
        .routes(routes!(two_factor::activate))
        .routes(routes!(two_factor::disable))
        .routes(routes!(two_factor::regenerate))
        .routes(routes!(two_factor::recover))
        .routes(routes!(webauthn::register_start))
        .routes(routes!(webauthn::register_finish))
        .routes(routes!(webauthn::list))
        .routes(routes!(webauthn::remove))
        .routes(routes!(webauthn::passkey_start))
        .routes(routes!(webauthn::passkey_finish))
        .routes(routes!(me::me))
        .routes(routes!(reauthenticate::reauthenticate))
        .routes(routes!(reauthenticate::options))
        .routes(routes!(passwords::change))
        .routes(routes!(passwords::forgot))
        .routes(routes!(passwords::reset))
        .routes(routes!(activity::mine))
        .routes(routes!(team::account))
        .routes(routes!(team::set_policy))
        .routes(routes!(team::set_trusted_devices_policy))
        .routes(routes!(team::users))
        .routes(routes!(team::delete_user))
        .routes(routes!(team::reset_two_factor))
        .routes(routes!(team::invite, team::invitations))
        .routes(routes!(team::revoke_invitation))
        .routes(routes!(activity::team))
        .routes(routes!(api_keys::list, api_keys::create))
        .routes(routes!(api_keys::change, api_keys::revoke))
        .routes(routes!(gate::gate))
        .routes(routes!(oidc_clients::list, oidc_clients::add))
        .routes(routes!(oidc_clients::remove))
        .routes(routes!(invitations::accept))
        .routes(routes!(health::health))
        .routes(routes!(health::ready))
        .split_for_parts();
    // Over the operations the routes brought.
    Outages.modify(&mut doc);
    let doc = Arc::new(doc);
    router
        // Any path under the gate: a proxy may add the original path (documented at `/gate`).
        .route("/gate/", get(gate::gate))
        .route("/gate/{*rest}", get(gate::gate))
        .route(
            "/openapi.json",
            get(move || {
                let doc = Arc::clone(&doc);
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .fallback(|| async { AppError::NotFound.into_response() })
}
