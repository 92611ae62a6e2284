//! `GET /health` (the process is alive; it also says whether the database answers) and
//! `GET /health/ready` (this instance can serve: its database takes a write and carries this
//! build's migrations). Both answer within [`PROBE_TIMEOUT`], whatever the database does.

use crate::error::{AppError, Json};
use crate::state::AppState;
use axum::extract::State;
use serde::Serialize;
use std::time::Duration;
use utoipa::ToSchema;

/// The longest a probe waits for the database: a load balancer's probe timeout is 2–5 s.
const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);

#[derive(Serialize, ToSchema)]
pub struct HealthBody {
    /// Always `ok`: the process answers.
    pub status: &'static str,
    /// `ok` when the database answers a read, `unavailable` when not.
    #[schema(example = "ok")]
    pub database: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct ReadyBody {
    /// Always `ready` when the answer is 200.
    pub status: &'static str,
}

/// Liveness: the process answers (always 200), and whether its database does.
#[utoipa::path(get, path = "/health", tag = "ops",
    responses(
        (status = 200, description = "The process is alive; `database` says whether the \
            database answers", body = HealthBody),
    ))]
pub async fn health(State(state): State<AppState>) -> Json<HealthBody> {
    let database = match tokio::time::timeout(PROBE_TIMEOUT, state.core.ping()).await {
        Ok(Ok(())) => "ok",
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health: the database does not answer");
            "unavailable"
        }
        Err(_) => {
            tracing::warn!("health: the database did not answer within {PROBE_TIMEOUT:?}");
            "unavailable"
        }
    };
    Json(HealthBody {
        status: "ok",
        database,
    })
}

/// Readiness: the database takes a write now (one committed to a heartbeat row; on SQLite its
/// volume also has room) and carries this build's migrations.
#[utoipa::path(get, path = "/health/ready", tag = "ops",
    responses(
        (status = 200, body = ReadyBody),
        (status = 503, description = "`unavailable`: the database cannot be reached, cannot \
            write (full or read-only volume) or is not migrated for this build; with \
            `Retry-After`", body = crate::error::ErrorBody),
    ))]
pub async fn ready(State(state): State<AppState>) -> Result<Json<ReadyBody>, AppError> {
    match tokio::time::timeout(PROBE_TIMEOUT, state.core.ready()).await {
        Ok(Ok(())) => Ok(Json(ReadyBody { status: "ready" })),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready");
            Err(AppError::Unavailable)
        }
        Err(_) => {
            tracing::warn!("not ready: the database did not take a write within {PROBE_TIMEOUT:?}");
            Err(AppError::Unavailable)
        }
    }
}
