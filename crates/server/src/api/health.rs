//! `GET /health`: the process answers and the database does too.

use crate::error::{AppError, Json};
use crate::state::AppState;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct HealthBody {
    /// Always `ok` when the answer is 200.
    pub status: &'static str,
}

/// Checks the service and its database.
#[utoipa::path(get, path = "/health", tag = "ops",
    responses(
        (status = 200, body = HealthBody),
        (status = 503, description = "The database does not answer", body = crate::error::ErrorBody),
    ))]
pub async fn health(State(state): State<AppState>) -> Result<Json<HealthBody>, AppError> {
    state.core.ping().await.map_err(|e| {
        tracing::error!(error = %e, "health check: the database does not answer");
        AppError::Unavailable
    })?;
    Ok(Json(HealthBody { status: "ok" }))
}
