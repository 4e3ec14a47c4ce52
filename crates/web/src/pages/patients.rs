//! The care team's patient list, a patient's record, and break-glass access.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use stillpoint_app::AppError;
use stillpoint_app::care::{self, PatientRecord};
use stillpoint_domain::care_team::{self, RecordAccess};
use stillpoint_domain::{Account, PatientId, Site};

use super::{Layout, render};
use crate::AppState;
use crate::csrf::CheckedForm;
use crate::error::WebError;
use crate::viewer::SignedIn;

/// One row of the patient list.
#[derive(Debug)]
pub struct PatientRow {
    pub id: String,
    pub name: String,
    pub birth_date: String,
    pub site: String,
}

#[derive(Template)]
#[template(path = "patients.html")]
struct PatientsTemplate {
    layout: Layout,
    patients: Vec<PatientRow>,
    /// Whether to offer the referral form: clinicians and program administrators.
    can_refer: bool,
}

#[derive(Template)]
#[template(path = "patient.html")]
struct PatientTemplate {
    layout: Layout,
    name: String,
    /// Whether the whole clinical record is shown, rather than a caregiver's shared parts.
    clinical: bool,
    birth_date: String,
    age: i16,
    site: String,
    language: String,
    time_zone: String,
    conditions: Vec<String>,
    cohorts: Vec<String>,
    shared_parts: Vec<String>,
    break_glass_notice: Option<String>,
    /// Whether to offer the invitation form: a care team member viewing a record without account.
    can_invite: bool,
    /// The consent summary for the care team.
    consent_line: String,
    /// The patient's position on the enrolment pathway, for the care team.
    pathway_line: Option<String>,
    /// The next steps the care team can take from here.
    pathway: PathwayActions,
    /// The reason the last pathway step was rejected.
    pathway_error: Option<String>,
    patient_id: String,
}

#[derive(Template)]
#[template(path = "break_glass.html")]
struct BreakGlassTemplate {
    layout: Layout,
    patient_id: String,
    reason: String,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct BreakGlassForm {
    #[serde(default)]
    reason: String,
}

pub async fn list(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, WebError> {
    let patients = care::list_patients(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
    )
    .await?;
    let sites = stillpoint_app::sites::all_sites(state.store.as_ref()).await?;

    let rows = patients
        .into_iter()
        .map(|patient| PatientRow {
            id: patient.id.to_string(),
            name: format!("{} {}", patient.given_name, patient.family_name),
            birth_date: patient.birth_date.to_string(),
            site: site_name(&sites, patient.site_id),
        })
        .collect();
    render(&PatientsTemplate {
        layout: Layout::new(&state, &signed_in.viewer, "/patients"),
        patients: rows,
        can_refer: !stillpoint_app::referrals::referring_sites(&signed_in.account).is_empty(),
    })
}

pub async fn show(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(patient_id): Path<String>,
) -> Result<Response, WebError> {
    let patient_id = parse_patient_id(&patient_id)?;
    let outcome = care::open_record(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        patient_id,
    )
    .await;
    match outcome {
        Ok(record) => render_record(&state, &signed_in, record, None).await,
        Err(AppError::Forbidden) if care_team::may_break_glass(&signed_in.account) => {
            render_break_glass(&state, &signed_in, patient_id, "", None)
        }
        Err(error) => Err(error.into()),
    }
}

pub async fn open_break_glass(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(patient_id): Path<String>,
    CheckedForm(form): CheckedForm<BreakGlassForm>,
) -> Result<Response, WebError> {
    let patient_id = parse_patient_id(&patient_id)?;
    let outcome = care::break_glass(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        patient_id,
        &form.reason,
    )
    .await;
    match outcome {
        Ok(_) => Ok(Redirect::to(&format!("/patients/{patient_id}")).into_response()),
        Err(AppError::Invalid(invalid)) => {
            let mut response = render_break_glass(
                &state,
                &signed_in,
                patient_id,
                &form.reason,
                Some(invalid.problem),
            )?;
            *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(response)
        }
        Err(error) => Err(error.into()),
    }
}

/// Parses a patient id from a path; a malformed one is treated as an unknown patient.
pub fn parse_patient_id(text: &str) -> Result<PatientId, WebError> {
    text.parse().map_err(|_| WebError::NotFound)
}

/// Renders a patient's record, with the problem of a rejected pathway step when given.
pub(super) async fn render_record(
    state: &AppState,
    signed_in: &SignedIn,
    record: PatientRecord,
    pathway_error: Option<String>,
) -> Result<Response, WebError> {
    let sites = stillpoint_app::sites::all_sites(state.store.as_ref()).await?;
    let layout = Layout::new(state, &signed_in.viewer, "/patients");
    let tr = &layout.tr;
    let patient = &record.patient;
    let today = state
        .clock
        .now()
        .to_zoned_datetime(signed_in.account.time_zone.time_zone())
        .date();

    let break_glass_notice = if record.access == RecordAccess::BreakGlass {
        break_glass_until(state, &signed_in.account, patient.id)
            .await?
            .map(|until| tr.t_with("patient-break-glass-notice", "until", &until))
    } else {
        None
    };
    let missing = stillpoint_app::consent::missing_consents(
        state.store.as_ref(),
        &state.consents,
        patient.id,
    )
    .await?;
    let consent_line = if missing.is_empty() {
        tr.t("patient-consent-complete")
    } else {
        let titles: Vec<String> = missing
            .iter()
            .filter_map(|id| {
                let language = stillpoint_domain::Language::parse(tr.tag()).ok()?;
                state
                    .consents
                    .document(id, &language)
                    .map(|document| document.title.clone())
            })
            .collect();
        tr.t_with("patient-consent-missing", "documents", &titles.join(", "))
    };
    let mut actions = PathwayActions::default();
    let pathway_line = if record.access == RecordAccess::CareTeam {
        // `open_record` checked the care team's access and audited this view already.
        let pathway =
            stillpoint_app::enrolment::current_state(state.store.as_ref(), patient.id).await?;
        actions =
            pathway_actions(state, tr, &pathway, patient.site_id, !missing.is_empty()).await?;
        let mut line = tr.t(&format!("enrolment-state-{}", pathway.code()));
        if let Some(reason) = pathway.reason() {
            line.push_str(": ");
            line.push_str(reason);
        }
        Some(line)
    } else {
        None
    };
    let shared_parts = match &record.access {
        RecordAccess::Caregiver(scopes) => scopes
            .iter()
            .map(|scope| tr.t(&format!("caregiver-scope-{}", scope.code())))
            .collect(),
        _ => Vec::new(),
    };
    let template = PatientTemplate {
        name: format!("{} {}", patient.given_name, patient.family_name),
        clinical: record.access.sees_clinical_record(),
        birth_date: patient.birth_date.to_string(),
        age: patient.age_on(today),
        site: site_name(&sites, patient.site_id),
        language: state
            .catalogs
            .format(patient.language.as_str(), "language-name", None),
        time_zone: patient.time_zone.to_string(),
        conditions: patient
            .conditions
            .iter()
            .map(|condition| format!("{} ({})", condition.display, condition.code))
            .collect(),
        cohorts: record
            .cohorts
            .iter()
            .map(|cohort| cohort.name.clone())
            .collect(),
        shared_parts,
        break_glass_notice,
        can_invite: record.access == RecordAccess::CareTeam && patient.account_id.is_none(),
        consent_line,
        pathway_line,
        pathway: actions,
        patient_id: patient.id.to_string(),
        layout,
        pathway_error: pathway_error.clone(),
    };
    let mut response = render(&template)?;
    if pathway_error.is_some() {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(response)
}

/// Returns the local time at which the viewer's break-glass access to `patient` ends.
async fn break_glass_until(
    state: &AppState,
    account: &Account,
    patient: PatientId,
) -> Result<Option<String>, WebError> {
    let Some(grant) =
        care::active_break_glass(state.store.as_ref(), state.clock.as_ref(), account, patient)
            .await?
    else {
        return Ok(None);
    };
    let until = grant
        .expires_at
        .to_zoned_datetime(account.time_zone.time_zone())
        .strftime("%H:%M")
        .to_string();
    Ok(Some(until))
}

fn render_break_glass(
    state: &AppState,
    signed_in: &SignedIn,
    patient_id: PatientId,
    reason: &str,
    error: Option<String>,
) -> Result<Response, WebError> {
    let mut response = render(&BreakGlassTemplate {
        layout: Layout::new(state, &signed_in.viewer, "/patients"),
        patient_id: patient_id.to_string(),
        reason: reason.to_owned(),
        error,
    })?;
    *response.status_mut() = StatusCode::FORBIDDEN;
    Ok(response)
}

fn site_name(sites: &[Site], id: stillpoint_domain::SiteId) -> String {
    sites
        .iter()
        .find(|site| site.id == id)
        .map_or_else(String::new, |site| site.name.clone())
}

#[derive(Debug, Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    email: String,
}

/// Invites a patient in the viewer's care to create the sign-in account of their record.
pub async fn invite(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(patient_id): Path<String>,
    CheckedForm(form): CheckedForm<InviteForm>,
) -> Result<Response, WebError> {
    let patient_id = parse_patient_id(&patient_id)?;
    let link = stillpoint_app::invitations::invite_patient(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        patient_id,
        &form.email,
    )
    .await?;
    let layout = Layout::new(
        &state,
        &signed_in.viewer,
        &format!("/patients/{patient_id}"),
    );
    let message = layout
        .tr
        .t_with("patient-invited", "email", link.email.as_str());
    super::staff::done(
        &state,
        layout,
        "patient-invited-title",
        message,
        Some(&link),
    )
}

/// The pathway steps offered on a patient's record.
#[derive(Debug, Default)]
pub struct PathwayActions {
    /// Whether to link the screening form: the patient is referred or being screened.
    pub offer_screening: bool,
    /// Whether the next step waits for the patient's consent.
    pub waiting_for_consent: bool,
    /// Steps that need no input, as (action code, button label).
    pub steps: Vec<(String, String)>,
    /// The site's cohorts to enrol in, once the technology check is done.
    pub cohorts: Vec<super::cohorts::Choice>,
    pub can_withdraw: bool,
}

async fn pathway_actions(
    state: &AppState,
    tr: &crate::i18n::Translator,
    pathway: &stillpoint_domain::enrolment::EnrolmentState,
    site: stillpoint_domain::SiteId,
    consent_missing: bool,
) -> Result<PathwayActions, WebError> {
    let code = pathway.code();
    let step = |action: &str| {
        (
            action.to_owned(),
            tr.t(&format!("pathway-action-{}", action.replace('_', "-"))),
        )
    };
    // Steps that need current consent are offered only once the patient has agreed. The
    // record's consent line lists what is missing.
    let needs_consent = matches!(
        code,
        "eligible" | "consented" | "waitlisted" | "enrolled" | "lapsed"
    );
    let steps = match code {
        _ if needs_consent && consent_missing => Vec::new(),
        "eligible" => vec![step("record_consent")],
        "consented" => vec![step("complete_orientation")],
        "waitlisted" => vec![step("offer_place")],
        "enrolled" => vec![step("start")],
        "active" | "returned" => vec![step("complete")],
        "lapsed" => vec![step("return")],
        _ => Vec::new(),
    };
    let mut cohorts = Vec::new();
    if code == "oriented" && !consent_missing {
        for details in state
            .store
            .list_cohort_details()
            .await
            .map_err(AppError::from)?
        {
            if details.cohort.site_id == site {
                cohorts.push(super::cohorts::Choice {
                    value: details.cohort.id.to_string(),
                    label: cohort_choice_label(state, tr, &details).await?,
                    selected: false,
                });
            }
        }
    }
    Ok(PathwayActions {
        waiting_for_consent: consent_missing && (needs_consent || code == "oriented"),
        offer_screening: matches!(code, "referred" | "screening"),
        steps,
        cohorts,
        can_withdraw: !matches!(
            code,
            "not_eligible" | "higher_level_of_care" | "completed" | "withdrawn"
        ),
    })
}

/// Describes a cohort for the enrol list: its name, first class, class language and free
/// places, so the care team can choose one that suits the patient.
async fn cohort_choice_label(
    state: &AppState,
    tr: &crate::i18n::Translator,
    details: &stillpoint_app::ports::CohortDetails,
) -> Result<String, WebError> {
    let store = state.store.as_ref();
    let taken = store
        .count_places_taken(details.cohort.id)
        .await
        .map_err(AppError::from)?;
    let first_class = store
        .list_cohort_sessions(details.cohort.id)
        .await
        .map_err(AppError::from)?
        .into_iter()
        .find(|session| {
            matches!(
                session.planned.kind,
                stillpoint_domain::schedule::SessionKind::Class { week: 1 }
            )
        })
        .map(|session| {
            super::dates::long_date(
                tr,
                session
                    .planned
                    .start
                    .to_zoned_datetime(details.time_zone.time_zone())
                    .date(),
            )
        })
        .unwrap_or_default();
    let mut args = fluent_bundle::FluentArgs::new();
    args.set("name", details.cohort.name.clone());
    args.set("start", first_class);
    args.set(
        "language",
        tr.t(&format!("language-name-{}", details.language.primary())),
    );
    args.set("free", details.capacity.saturating_sub(taken).to_string());
    Ok(tr.t_args("pathway-cohort-choice", &args))
}
