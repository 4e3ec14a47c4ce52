//! Liveness and readiness probes.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct ProbeStatus {
    /// `ok`, `ready` or `not_ready`.
    status: &'static str,
    /// Why the server is not ready, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// Whether the process is up. Does not touch the database.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is running", body = ProbeStatus)))]
pub async fn healthz() -> Json<ProbeStatus> {
    Json(ProbeStatus {
        status: "ok",
        reason: None,
    })
}

/// Whether the server can serve requests: the database answers and its schema is current.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = ProbeStatus),
        (status = 503, description = "The database is unreachable or its schema is not current", body = ProbeStatus)
    ))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let not_ready = |reason: String| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(ProbeStatus {
                status: "not_ready",
                reason: Some(reason),
            }),
        )
            .into_response()
    };

    if let Err(error) = state.store.ping().await {
        tracing::warn!(error = %error, "readiness check: database unreachable");
        return not_ready("the database is unreachable".to_owned());
    }
    match state.store.schema_status().await {
        Ok(status) if status.is_current() => Json(ProbeStatus {
            status: "ready",
            reason: None,
        })
        .into_response(),
        Ok(status) => not_ready(format!(
            "the database schema is not current (applied {:?}, expected {:?}); run `stillpoint migrate`",
            status.applied, status.known
        )),
        Err(error) => {
            tracing::warn!(error = %error, "readiness check: schema status unavailable");
            not_ready("the database schema could not be read".to_owned())
        }
    }
}
