//! Patients in the caller's care, and one patient's record under the care-team rules.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use stillpoint_app::AppError;
use stillpoint_app::care::{self, PatientRecord};
use stillpoint_app::enrolment::{self, EnrolmentView};
use stillpoint_domain::care_team::RecordAccess;
use stillpoint_domain::enrolment::{ExclusionFlag, Screening, Transition};
use stillpoint_domain::{Icd10Code, InvalidValue, PatientId};
use utoipa::ToSchema;

use super::ApiJson;
use crate::AppState;
use crate::error::{Problem, WebError};
use crate::viewer::SignedIn;

/// A line of the patient list.
#[derive(Debug, Serialize, ToSchema)]
pub struct PatientSummaryBody {
    id: String,
    given_name: String,
    family_name: String,
    /// ISO 8601 date.
    birth_date: String,
    site_id: String,
}

/// A chronic condition coded in ICD-10-CM.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConditionBody {
    code: String,
    display: String,
}

/// A patient's record. A caregiver gets the name and `shared_scopes` only.
#[derive(Debug, Serialize, ToSchema)]
pub struct PatientBody {
    id: String,
    given_name: String,
    family_name: String,
    /// `own`, `care_team`, `break_glass` or `caregiver`: why the caller may see the record.
    access: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    birth_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    site_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    language: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_zone: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    conditions: Vec<ConditionBody>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cohorts: Vec<String>,
    /// For a caregiver: the parts of the program the patient shares.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    shared_scopes: Vec<String>,
}

impl From<PatientRecord> for PatientBody {
    fn from(record: PatientRecord) -> Self {
        let patient = record.patient;
        let clinical = record.access.sees_clinical_record();
        let (access, shared_scopes) = match &record.access {
            RecordAccess::Own => ("own", Vec::new()),
            RecordAccess::CareTeam => ("care_team", Vec::new()),
            RecordAccess::BreakGlass => ("break_glass", Vec::new()),
            RecordAccess::Caregiver(scopes) => (
                "caregiver",
                scopes.iter().map(|scope| scope.code().to_owned()).collect(),
            ),
            RecordAccess::Denied => ("denied", Vec::new()),
        };
        let if_clinical = |value: String| clinical.then_some(value);
        Self {
            id: patient.id.to_string(),
            access,
            birth_date: if_clinical(patient.birth_date.to_string()),
            site_id: if_clinical(patient.site_id.to_string()),
            language: if_clinical(patient.language.to_string()),
            time_zone: if_clinical(patient.time_zone.to_string()),
            conditions: if clinical {
                patient
                    .conditions
                    .iter()
                    .map(|condition| ConditionBody {
                        code: condition.code.to_string(),
                        display: condition.display.clone(),
                    })
                    .collect()
            } else {
                Vec::new()
            },
            cohorts: record
                .cohorts
                .into_iter()
                .map(|cohort| cohort.name)
                .collect(),
            shared_scopes,
            given_name: patient.given_name,
            family_name: patient.family_name,
        }
    }
}

/// Patients in the caller's care: at the sites where they are a clinician or program
/// administrator, and in the cohorts they facilitate.
#[utoipa::path(get, path = "/api/v1/patients", tag = "patients",
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "Patients, by family and given name", body = [PatientSummaryBody]),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a facilitator, clinician or program administrator", body = Problem, content_type = "application/problem+json")
    ))]
pub async fn list_patients(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Json<Vec<PatientSummaryBody>>, WebError> {
    let patients = care::list_patients(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
    )
    .await?;
    Ok(Json(
        patients
            .into_iter()
            .map(|patient| PatientSummaryBody {
                id: patient.id.to_string(),
                given_name: patient.given_name,
                family_name: patient.family_name,
                birth_date: patient.birth_date.to_string(),
                site_id: patient.site_id.to_string(),
            })
            .collect(),
    ))
}

/// One patient's record, as far as the caller may see it. Every request is audited.
#[utoipa::path(get, path = "/api/v1/patients/{patient_id}", tag = "patients",
    security(("bearer" = []), ("session_cookie" = [])),
    params(("patient_id" = String, Path, description = "The patient's UUID")),
    responses(
        (status = 200, description = "The record", body = PatientBody),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The patient is not in the caller's care", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No patient has this id", body = Problem, content_type = "application/problem+json")
    ))]
pub async fn get_patient(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(patient_id): Path<String>,
) -> Result<Json<PatientBody>, WebError> {
    let patient_id: PatientId = patient_id.parse().map_err(|_| WebError::NotFound)?;
    let record = care::open_record(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        patient_id,
    )
    .await?;
    Ok(Json(PatientBody::from(record)))
}

/// A move along the enrolment pathway.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EnrolmentRequest {
    /// One of `start_screening`, `complete_screening`, `record_consent`,
    /// `complete_orientation`, `enrol`, `offer_place`, `start`, `complete`, `mark_lapsed`,
    /// `return`, `withdraw`.
    action: String,
    /// For `enrol`: the cohort.
    #[serde(default)]
    cohort_id: Option<String>,
    /// For `withdraw`: why; for `complete_screening`: why the patient is not eligible, if not.
    #[serde(default)]
    reason: Option<String>,
    /// For `complete_screening`.
    #[serde(default)]
    screening: Option<ScreeningBody>,
}

/// Screening findings.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ScreeningBody {
    /// ICD-10-CM codes of the chronic conditions.
    conditions: Vec<String>,
    /// The patient's rating of their overall symptom burden, 0 to 10.
    symptom_burden: u8,
    interested_in_non_drug_coping: bool,
    /// Any of `active_suicidality`, `psychosis`, `other_urgent_need`; any flag routes the
    /// patient to a higher level of care.
    #[serde(default)]
    exclusion_flags: Vec<String>,
}

/// One recorded move.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnrolmentMoveBody {
    from_state: String,
    to_state: String,
    /// The account that made the move; absent for a move the system made, such as a lapse.
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// RFC 3339 instant in UTC.
    at: String,
}

/// A patient's position on the enrolment pathway.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnrolmentBody {
    /// `referred`, `screening`, `eligible`, `not_eligible`, `higher_level_of_care`,
    /// `consented`, `oriented`, `enrolled`, `waitlisted`, `active`, `completed`, `withdrawn`,
    /// `lapsed` or `returned`.
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cohort_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    exclusion_flags: Vec<&'static str>,
    history: Vec<EnrolmentMoveBody>,
}

impl From<EnrolmentView> for EnrolmentBody {
    fn from(view: EnrolmentView) -> Self {
        Self {
            state: view.state.code(),
            cohort_id: view.state.cohort().map(|cohort| cohort.to_string()),
            reason: view.state.reason().map(str::to_owned),
            exclusion_flags: view
                .state
                .exclusion_flags()
                .iter()
                .map(|flag| flag.code())
                .collect(),
            history: view
                .history
                .into_iter()
                .map(|entry| EnrolmentMoveBody {
                    from_state: entry.from_state,
                    to_state: entry.to_state,
                    account_id: entry.actor.map(|actor| actor.to_string()),
                    reason: entry.reason,
                    at: entry.at.to_string(),
                })
                .collect(),
        }
    }
}

/// The patient's position on the enrolment pathway, with its history.
#[utoipa::path(get, path = "/api/v1/patients/{patient_id}/enrolment", tag = "patients",
    security(("bearer" = []), ("session_cookie" = [])),
    params(("patient_id" = String, Path, description = "The patient's UUID")),
    responses(
        (status = 200, description = "The enrolment", body = EnrolmentBody),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not in the patient's care team", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No patient has this id", body = Problem, content_type = "application/problem+json")
    ))]
pub async fn get_enrolment(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(patient_id): Path<String>,
) -> Result<Json<EnrolmentBody>, WebError> {
    let patient_id: PatientId = patient_id.parse().map_err(|_| WebError::NotFound)?;
    let view = enrolment::view(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        patient_id,
    )
    .await?;
    Ok(Json(EnrolmentBody::from(view)))
}

/// Moves the patient along the enrolment pathway. Every move is audited with its actor.
#[utoipa::path(post, path = "/api/v1/patients/{patient_id}/enrolment", tag = "patients",
    security(("bearer" = []), ("session_cookie" = [])),
    params(("patient_id" = String, Path, description = "The patient's UUID")),
    request_body = EnrolmentRequest,
    responses(
        (status = 200, description = "The enrolment after the move", body = EnrolmentBody),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not in the patient's care team", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No patient has this id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The move is not allowed from the current state, which the message names", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid details, such as missing consent, an unknown cohort or a symptom burden outside 0 to 10", body = Problem, content_type = "application/problem+json")
    ))]
pub async fn move_enrolment(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(patient_id): Path<String>,
    ApiJson(request): ApiJson<EnrolmentRequest>,
) -> Result<Json<EnrolmentBody>, WebError> {
    let patient_id: PatientId = patient_id.parse().map_err(|_| WebError::NotFound)?;
    let transition = transition_from(request).map_err(AppError::from)?;
    let context = signed_in.viewer.audit_context();
    enrolment::advance(
        state.store.as_ref(),
        state.clock.as_ref(),
        &context,
        &state.consents,
        &signed_in.account,
        patient_id,
        transition,
    )
    .await?;
    let view = enrolment::view(
        state.store.as_ref(),
        state.clock.as_ref(),
        &context,
        &signed_in.account,
        patient_id,
    )
    .await?;
    Ok(Json(EnrolmentBody::from(view)))
}

fn transition_from(request: EnrolmentRequest) -> Result<Transition, InvalidValue> {
    let transition = match request.action.as_str() {
        "start_screening" => Transition::StartScreening,
        "complete_screening" => {
            let body = request.screening.ok_or_else(|| {
                InvalidValue::new(
                    "screening",
                    "send the screening findings with complete_screening",
                )
            })?;
            let conditions = body
                .conditions
                .iter()
                .map(|code| Icd10Code::parse(code))
                .collect::<Result<Vec<_>, _>>()?;
            let flags = ExclusionFlag::parse_list(&body.exclusion_flags.join(","))?;
            Transition::CompleteScreening {
                screening: Screening {
                    conditions,
                    symptom_burden: body.symptom_burden,
                    interested_in_non_drug_coping: body.interested_in_non_drug_coping,
                    exclusion_flags: flags,
                },
                not_eligible_reason: request.reason,
            }
        }
        "record_consent" => Transition::RecordConsent,
        "complete_orientation" => Transition::CompleteOrientation,
        "enrol" => {
            let cohort = request
                .cohort_id
                .as_deref()
                .and_then(|text| text.parse().ok())
                .ok_or_else(|| {
                    InvalidValue::new("cohort_id", "send the id of the cohort to enrol in")
                })?;
            Transition::Enrol {
                cohort,
                enrolled: 0,
                capacity: 0,
            }
        }
        "offer_place" => Transition::OfferPlace,
        "start" => Transition::Start,
        "complete" => Transition::Complete,
        "mark_lapsed" => Transition::MarkLapsed,
        "return" => Transition::Return,
        "withdraw" => Transition::Withdraw {
            reason: request.reason.unwrap_or_default(),
        },
        other => {
            return Err(InvalidValue::new(
                "action",
                format!("'{other}' is not a step of the pathway; see the documented actions"),
            ));
        }
    };
    Ok(transition)
}
