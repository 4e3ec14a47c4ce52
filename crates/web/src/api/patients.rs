//! Patients in the caller's care, and one patient's record under the care-team rules.

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use stillpoint_app::care::{self, PatientRecord};
use stillpoint_domain::PatientId;
use stillpoint_domain::care_team::RecordAccess;
use utoipa::ToSchema;

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
