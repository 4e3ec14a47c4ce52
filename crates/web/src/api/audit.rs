//! The audit trail for administrators, and the patient's record access report.

use axum::Json;
use axum::extract::{Query, State};
use serde::Serialize;
use stillpoint_app::audit;
use utoipa::ToSchema;

use crate::AppState;
use crate::audit_view::{AuditEventBody, AuditQuery, search_events};
use crate::error::{Problem, WebError};
use crate::viewer::SignedIn;

/// Searches the audit trail, newest first (at most 500 events). Program administrators see only
/// events about patients of their sites.
#[utoipa::path(get, path = "/api/v1/audit-events", tag = "audit",
    security(("bearer" = []), ("session_cookie" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "Matching events", body = [AuditEventBody]),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A filter is malformed; the problem names it", body = Problem, content_type = "application/problem+json")
    ))]
pub async fn search_audit_events(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Vec<AuditEventBody>>, WebError> {
    let events = search_events(&state, &signed_in, &query).await?;
    Ok(Json(events.iter().map(AuditEventBody::from).collect()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecordAccessBody {
    /// RFC 3339 instant in UTC.
    recorded_at: String,
    /// The name of the person who accessed the record, when their account still exists.
    name: Option<String>,
    role: Option<String>,
    action: String,
    outcome: String,
    break_glass: bool,
}

/// Lists who accessed the signed-in patient's record, newest first.
#[utoipa::path(get, path = "/api/v1/me/record-access", tag = "audit",
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "Accesses by others", body = [RecordAccessBody]),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a patient's account", body = Problem, content_type = "application/problem+json")
    ))]
pub async fn record_access(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Json<Vec<RecordAccessBody>>, WebError> {
    let context = signed_in.viewer.audit_context();
    let report = audit::record_access_report(
        state.store.as_ref(),
        state.clock.as_ref(),
        &context,
        &signed_in.account,
    )
    .await?;

    Ok(Json(
        report
            .into_iter()
            .map(|access| RecordAccessBody {
                recorded_at: access.event.event.recorded_at.to_string(),
                name: access.actor_name,
                role: access
                    .event
                    .event
                    .actor_role
                    .map(|role| role.code().to_owned()),
                action: access.event.event.action.code().to_owned(),
                outcome: access.event.event.outcome.code().to_owned(),
                break_glass: access.event.event.break_glass,
            })
            .collect(),
    ))
}
