//! Questionnaire responses and safety alerts.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use stillpoint_app::measures::{self, Submission};
use stillpoint_app::ports::{SafetyAlert, StoredResponse};
use stillpoint_app::safety;
use stillpoint_domain::measures::safety::{AlertLevel, AlertOutcome, AlertStep};
use stillpoint_domain::{AlertId, InvalidValue, Language, PatientId};
use utoipa::ToSchema;

use super::ApiJson;
use crate::AppState;
use crate::error::{Problem, WebError};
use crate::viewer::SignedIn;

/// A response to submit.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResponseRequest {
    /// The instrument's id, such as `phq-9`.
    instrument: String,
    /// Item id to the chosen option's value, such as `{"1": 0, "9": 1}`.
    answers: BTreeMap<String, u8>,
    /// An id the client generates once per form (a UUID is fine). Repeating a submission with
    /// the same id stores it once and returns the same result.
    client_id: String,
    /// The measurement-plan occasion answered, such as `baseline`.
    #[serde(default)]
    occasion: Option<String>,
    /// The language the form was shown in; defaults to `en`.
    #[serde(default)]
    language: Option<String>,
}

/// One scale's score.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScoreBody {
    scale: String,
    raw: Option<f64>,
    reported: Option<f64>,
    band: Option<String>,
    incomplete: bool,
    /// The reason the scale has no score, when its missing-item rule did not allow one.
    problem: Option<String>,
}

/// A stored response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResponseBody {
    id: String,
    client_id: String,
    patient_id: String,
    instrument: String,
    instrument_version: u32,
    occasion: Option<String>,
    answers: BTreeMap<String, u8>,
    submitted_at: String,
    scores: Vec<ScoreBody>,
    /// The alert the response raised, if any.
    alert_id: Option<String>,
    /// `low`, `moderate` or `high` when the response raised an alert.
    #[serde(skip_serializing_if = "Option::is_none")]
    alert_level: Option<&'static str>,
    /// Whether this submission repeated one already stored.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    duplicate: bool,
}

impl From<StoredResponse> for ResponseBody {
    fn from(response: StoredResponse) -> Self {
        Self {
            id: response.id.to_string(),
            client_id: response.client_id,
            patient_id: response.patient.to_string(),
            instrument: response.instrument,
            instrument_version: response.instrument_version,
            occasion: response.occasion,
            answers: response.answers,
            submitted_at: response.submitted_at.to_string(),
            scores: response
                .scores
                .into_iter()
                .map(|score| ScoreBody {
                    scale: score.scale,
                    raw: score.raw,
                    reported: score.reported,
                    band: score.band,
                    incomplete: score.incomplete,
                    problem: score.problem,
                })
                .collect(),
            alert_id: response.alert.map(|id| id.to_string()),
            alert_level: None,
            duplicate: false,
        }
    }
}

fn patient_id(text: &str) -> Result<PatientId, WebError> {
    text.parse().map_err(|_| WebError::NotFound)
}

/// Submits a questionnaire response for a patient.
#[utoipa::path(post, path = "/api/v1/patients/{patient_id}/responses", tag = "measures",
    security(("bearer" = []), ("session_cookie" = [])),
    params(("patient_id" = String, Path, description = "The patient's UUID")),
    request_body = ResponseRequest,
    responses(
        (status = 201, description = "Stored with its scores and any alert, in one durable transaction", body = ResponseBody),
        (status = 200, description = "Already stored under this client_id; the stored response is returned", body = ResponseBody),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not the patient nor a clinician in their care", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An unknown item, an answer outside its options, a missing required item, or an instrument without a licence; the detail names it", body = Problem, content_type = "application/problem+json")
    ))]
pub async fn submit_response(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(patient): Path<String>,
    ApiJson(request): ApiJson<ResponseRequest>,
) -> Result<(StatusCode, Json<ResponseBody>), WebError> {
    let patient = patient_id(&patient)?;
    let language = match request.language.as_deref() {
        Some(tag) => Language::parse(tag)?,
        None => Language::english(),
    };
    let result = measures::submit(
        state.store.as_ref(),
        state.clock.as_ref(),
        &state.measures,
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        Submission {
            patient,
            instrument: request.instrument,
            answers: request.answers,
            client_id: request.client_id,
            occasion: request.occasion,
            language,
        },
    )
    .await?;
    let status = if result.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let mut body = ResponseBody::from(result.response);
    body.alert_level = result.alert_level.map(AlertLevel::code);
    body.duplicate = result.duplicate;
    Ok((status, Json(body)))
}

/// Lists a patient's responses, oldest first.
#[utoipa::path(get, path = "/api/v1/patients/{patient_id}/responses", tag = "measures",
    security(("bearer" = []), ("session_cookie" = [])),
    params(("patient_id" = String, Path, description = "The patient's UUID")),
    responses(
        (status = 200, description = "The responses with their scores", body = [ResponseBody]),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The patient is not in the caller's care", body = Problem, content_type = "application/problem+json")
    ))]
pub async fn list_responses(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(patient): Path<String>,
) -> Result<Json<Vec<ResponseBody>>, WebError> {
    let patient = patient_id(&patient)?;
    let responses = measures::responses_of(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        patient,
    )
    .await?;
    // Only alert reviewers and the patient learn which responses raised an alert.
    let own = signed_in.account.has_role(stillpoint_domain::Role::Patient)
        && stillpoint_app::patients::own_record_id(state.store.as_ref(), &signed_in.account)
            .await?
            == Some(patient);
    let reviews_alerts =
        measures::alert_sites(&signed_in.account).is_none_or(|sites| !sites.is_empty());
    Ok(Json(
        responses
            .into_iter()
            .map(|response| {
                let mut body = ResponseBody::from(response);
                if !own && !reviews_alerts {
                    body.alert_id = None;
                }
                body
            })
            .collect(),
    ))
}

/// One step of an alert's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertEventBody {
    at: String,
    actor_id: Option<String>,
    step: String,
    detail: String,
}

/// A safety alert.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertBody {
    id: String,
    patient_id: String,
    site_id: String,
    response_id: Option<String>,
    /// `response`, `help_request`, or `unsaved_form` (a rejected form whose answers fired a
    /// rule; the form itself is not stored).
    source: String,
    level: &'static str,
    rules: Vec<String>,
    /// `raised`, `acknowledged`, `actioned` or `resolved`.
    state: &'static str,
    /// `care_team`, `backup_clinician` or `program_administrators`.
    escalation: &'static str,
    raised_at: String,
    deadline: String,
    outcome: Option<&'static str>,
    events: Vec<AlertEventBody>,
}

impl From<SafetyAlert> for AlertBody {
    fn from(alert: SafetyAlert) -> Self {
        Self {
            id: alert.id.to_string(),
            patient_id: alert.patient.to_string(),
            site_id: alert.site.to_string(),
            response_id: alert.response.map(|id| id.to_string()),
            source: alert.source,
            level: alert.level.code(),
            rules: alert.rules,
            state: alert.state.code(),
            escalation: alert.escalation.code(),
            raised_at: alert.raised_at.to_string(),
            deadline: alert.deadline.to_string(),
            outcome: alert.outcome.map(AlertOutcome::code),
            events: alert
                .events
                .into_iter()
                .map(|event| AlertEventBody {
                    at: event.at.to_string(),
                    actor_id: event.actor.map(|id| id.to_string()),
                    step: event.step,
                    detail: event.detail,
                })
                .collect(),
        }
    }
}

/// Lists the alerts of the sites where the caller is a clinician or program administrator,
/// open ones first.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "measures",
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The alerts with their history", body = [AlertBody]),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a clinician or program administrator", body = Problem, content_type = "application/problem+json")
    ))]
pub async fn list_alerts(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Json<Vec<AlertBody>>, WebError> {
    let alerts = safety::inbox(state.store.as_ref(), &signed_in.account, false).await?;
    Ok(Json(alerts.into_iter().map(AlertBody::from).collect()))
}

/// A lifecycle step on an alert.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertStepRequest {
    /// `acknowledge`, `action` or `resolve`.
    step: String,
    /// For `action`: `patient_contacted`, `safety_plan`, `urgent_care` or `other`.
    #[serde(default)]
    outcome: Option<String>,
    /// What was done; required for the outcome `other`.
    #[serde(default)]
    note: String,
}

/// Parses a lifecycle step from its code, outcome and note.
pub fn parse_step(
    step: &str,
    outcome: Option<&str>,
    note: String,
) -> Result<AlertStep, InvalidValue> {
    match step {
        "acknowledge" => Ok(AlertStep::Acknowledge),
        "action" => {
            let outcome = outcome.ok_or_else(|| {
                InvalidValue::new(
                    "outcome",
                    "choose what was done: patient_contacted, safety_plan, urgent_care or other",
                )
            })?;
            Ok(AlertStep::Action {
                outcome: AlertOutcome::parse(outcome)?,
                note,
            })
        }
        "resolve" => Ok(AlertStep::Resolve { note }),
        other => Err(InvalidValue::new(
            "step",
            format!("'{other}' is not a step; use acknowledge, action or resolve"),
        )),
    }
}

/// Takes the next lifecycle step on an alert.
#[utoipa::path(post, path = "/api/v1/alerts/{alert_id}/steps", tag = "measures",
    security(("bearer" = []), ("session_cookie" = [])),
    params(("alert_id" = String, Path, description = "The alert's UUID")),
    request_body = AlertStepRequest,
    responses(
        (status = 200, description = "The alert after the step", body = AlertBody),
        (status = 403, description = "Not a reviewer at the alert's site", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No alert has this id", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The step does not follow from the alert's state, or lacks its outcome or note", body = Problem, content_type = "application/problem+json")
    ))]
pub async fn take_alert_step(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(alert): Path<String>,
    ApiJson(request): ApiJson<AlertStepRequest>,
) -> Result<Json<AlertBody>, WebError> {
    let alert: AlertId = alert.parse().map_err(|_| WebError::NotFound)?;
    let step = parse_step(&request.step, request.outcome.as_deref(), request.note)?;
    let alert = safety::take_step(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        alert,
        step,
    )
    .await?;
    Ok(Json(AlertBody::from(alert)))
}
