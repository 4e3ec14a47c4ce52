//! Forms for clinicians: referring a new patient, recording the screening, and moving a patient
//! along the enrolment pathway from their record.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use jiff::civil::Date;
use stillpoint_app::AppError;
use stillpoint_app::referrals::{self, Referral};
use stillpoint_app::{care, enrolment};
use stillpoint_domain::condition::COMMON_CHRONIC_CONDITIONS;
use stillpoint_domain::enrolment::{EnrolmentState, ExclusionFlag, Screening, Transition};
use stillpoint_domain::{ChronicCondition, Icd10Code, InvalidValue, Language, PatientId};

use super::cohorts::Choice;
use super::fields::Fields;
use super::{Layout, render};
use crate::AppState;
use crate::csrf::CheckedForm;
use crate::error::WebError;
use crate::viewer::SignedIn;

#[derive(Template)]
#[template(path = "referral.html")]
struct ReferralTemplate {
    layout: Layout,
    sites: Vec<Choice>,
    languages: Vec<Choice>,
    conditions: Vec<Choice>,
    fields: Fields,
    error: Option<String>,
    /// The form field the error concerns, marked invalid.
    error_field: String,
}

pub async fn show_referral(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, WebError> {
    render_referral(&state, &signed_in, Fields::default(), None).await
}

pub async fn refer(
    State(state): State<AppState>,
    signed_in: SignedIn,
    CheckedForm(fields): CheckedForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let fields = Fields(fields);
    let outcome = match referral(&fields) {
        Ok(referral) => {
            referrals::refer(
                state.store.as_ref(),
                state.clock.as_ref(),
                &signed_in.viewer.audit_context(),
                &signed_in.account,
                referral,
            )
            .await
        }
        Err(invalid) => Err(invalid.into()),
    };
    match outcome {
        Ok(patient) => Ok(Redirect::to(&format!("/patients/{patient}/screening")).into_response()),
        Err(AppError::Invalid(invalid)) => {
            let mut response = render_referral(&state, &signed_in, fields, Some(invalid)).await?;
            *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(response)
        }
        Err(other) => Err(other.into()),
    }
}

fn referral(fields: &Fields) -> Result<Referral, InvalidValue> {
    let mut conditions: Vec<ChronicCondition> = fields
        .all("condition")
        .filter_map(|code| {
            COMMON_CHRONIC_CONDITIONS
                .iter()
                .find(|(known, _)| *known == code)
        })
        .map(|(code, display)| {
            Ok(ChronicCondition {
                code: Icd10Code::parse(code)?,
                display: (*display).to_owned(),
            })
        })
        .collect::<Result<_, InvalidValue>>()?;
    let other_code = fields.text("other_code");
    if !other_code.is_empty() {
        let title = fields.text("other_title");
        if title.is_empty() {
            return Err(InvalidValue::new(
                "other_title",
                "write the condition's name next to its ICD-10-CM code",
            ));
        }
        conditions.push(ChronicCondition {
            code: Icd10Code::parse(other_code)?,
            display: title.to_owned(),
        });
    }
    Ok(Referral {
        site: fields.parse("site_id", "site_id", "one of the listed sites")?,
        given_name: fields.text("given_name").to_owned(),
        family_name: fields.text("family_name").to_owned(),
        birth_date: fields.parse::<Date>(
            "birth_date",
            "birth_date",
            "a date such as 1961-04-23",
        )?,
        language: Language::parse(fields.text("language"))?,
        time_zone: fields.text("time_zone").to_owned(),
        conditions,
    })
}

async fn render_referral(
    state: &AppState,
    signed_in: &SignedIn,
    fields: Fields,
    error: Option<InvalidValue>,
) -> Result<Response, WebError> {
    let site_ids = referrals::referring_sites(&signed_in.account);
    if site_ids.is_empty() {
        return Err(WebError::Forbidden);
    }
    let layout = Layout::new(state, &signed_in.viewer, "/patients/new");
    let mut sites = Vec::new();
    for id in site_ids {
        let site = state.store.get_site(id).await.map_err(AppError::from)?;
        sites.push(Choice {
            value: site.id.to_string(),
            label: format!("{} ({})", site.name, site.time_zone),
            selected: fields.text("site_id") == site.id.to_string(),
        });
    }
    let languages = ["en", "es"]
        .into_iter()
        .map(|tag| Choice {
            value: tag.to_owned(),
            label: layout.tr.t(&format!("language-name-{tag}")),
            selected: fields.text("language") == tag,
        })
        .collect();
    let chosen: Vec<&str> = fields.all("condition").collect();
    let conditions = COMMON_CHRONIC_CONDITIONS
        .iter()
        .map(|(code, display)| Choice {
            value: (*code).to_owned(),
            label: format!("{display} ({code})"),
            selected: chosen.contains(code),
        })
        .collect();
    let error_field = match error.as_ref().map(|invalid| invalid.field) {
        // A malformed code can only come from the field for another condition.
        Some("icd10_code") => "other_code".to_owned(),
        Some(field) => field.to_owned(),
        None => String::new(),
    };
    render(&ReferralTemplate {
        layout,
        sites,
        languages,
        conditions,
        fields,
        error: error.map(|invalid| invalid.problem),
        error_field,
    })
}

#[derive(Template)]
#[template(path = "screening.html")]
struct ScreeningTemplate {
    layout: Layout,
    patient_name: String,
    patient_id: String,
    conditions: Vec<Choice>,
    flags: Vec<Choice>,
    burden: String,
    interested: String,
    reason: String,
    error: Option<String>,
    /// The form field the error concerns, marked invalid.
    error_field: String,
}

pub async fn show_screening(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(patient_id): Path<String>,
) -> Result<Response, WebError> {
    let patient: PatientId = patient_id.parse().map_err(|_| WebError::NotFound)?;
    render_screening(&state, &signed_in, patient, None, None).await
}

pub async fn screen(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(patient_id): Path<String>,
    CheckedForm(fields): CheckedForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let patient: PatientId = patient_id.parse().map_err(|_| WebError::NotFound)?;
    let fields = Fields(fields);
    let outcome = record_screening(&state, &signed_in, patient, &fields).await;
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!("/patients/{patient}")).into_response()),
        Err(AppError::Invalid(invalid)) => {
            let mut response =
                render_screening(&state, &signed_in, patient, Some(&fields), Some(invalid)).await?;
            *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(response)
        }
        Err(other) => Err(other.into()),
    }
}

/// Starts the screening when the patient is still referred, then records its findings.
async fn record_screening(
    state: &AppState,
    signed_in: &SignedIn,
    patient: PatientId,
    fields: &Fields,
) -> Result<(), AppError> {
    let conditions = fields
        .all("condition")
        .map(Icd10Code::parse)
        .collect::<Result<Vec<_>, _>>()?;
    let flags = ExclusionFlag::parse_list(&fields.all("flag").collect::<Vec<_>>().join(","))?;
    let screening = Screening {
        conditions,
        symptom_burden: fields.parse(
            "symptom_burden",
            "symptom_burden",
            "a number from 0 to 10",
        )?,
        interested_in_non_drug_coping: match fields.text("interested") {
            "yes" => true,
            "no" => false,
            _ => {
                return Err(InvalidValue::new(
                    "interested_in_non_drug_coping",
                    "answer whether the patient wants to learn non-drug ways of coping",
                )
                .into());
            }
        },
        exclusion_flags: flags,
    };
    screening.validate()?;
    let reason =
        Some(fields.text("not_eligible_reason").to_owned()).filter(|text| !text.is_empty());

    let context = signed_in.viewer.audit_context();
    let current = enrolment::current_state(state.store.as_ref(), patient).await?;
    let mut steps = Vec::new();
    if current == EnrolmentState::Referred {
        steps.push(Transition::StartScreening);
    }
    steps.push(Transition::CompleteScreening {
        screening,
        not_eligible_reason: reason,
    });
    for step in steps {
        enrolment::advance(
            state.store.as_ref(),
            state.clock.as_ref(),
            &context,
            &state.consents,
            &signed_in.account,
            patient,
            step,
        )
        .await?;
    }
    Ok(())
}

async fn render_screening(
    state: &AppState,
    signed_in: &SignedIn,
    patient_id: PatientId,
    fields: Option<&Fields>,
    error: Option<InvalidValue>,
) -> Result<Response, WebError> {
    let view = enrolment::view(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        patient_id,
    )
    .await?;
    if !matches!(
        view.state,
        EnrolmentState::Referred | EnrolmentState::Screening
    ) {
        return Err(WebError::TransitionNotAllowed {
            message: format!(
                "a patient who is '{}' cannot be screened again",
                view.state.code()
            ),
        });
    }
    let patient = state
        .store
        .get_patient(patient_id)
        .await
        .map_err(AppError::from)?;
    let path = format!("/patients/{patient_id}/screening");
    let layout = Layout::new(state, &signed_in.viewer, &path);
    let tr = &layout.tr;
    let chosen: Vec<String> = match fields {
        Some(fields) => fields.all("condition").map(str::to_owned).collect(),
        None => patient
            .conditions
            .iter()
            .map(|condition| condition.code.to_string())
            .collect(),
    };
    let conditions = patient
        .conditions
        .iter()
        .map(|condition| (condition.code.to_string(), condition.display.clone()))
        .chain(
            COMMON_CHRONIC_CONDITIONS
                .iter()
                .map(|(code, display)| ((*code).to_owned(), (*display).to_owned())),
        )
        .fold(Vec::<Choice>::new(), |mut choices, (code, display)| {
            if !choices.iter().any(|choice| choice.value == code) {
                choices.push(Choice {
                    selected: chosen.contains(&code),
                    label: format!("{display} ({code})"),
                    value: code,
                });
            }
            choices
        });
    let chosen_flags: Vec<&str> = fields
        .map(|fields| fields.all("flag").collect())
        .unwrap_or_default();
    let flags = ExclusionFlag::ALL
        .iter()
        .map(|flag| Choice {
            value: flag.code().to_owned(),
            label: tr.t(&format!("exclusion-{}", flag.code().replace('_', "-"))),
            selected: chosen_flags.contains(&flag.code()),
        })
        .collect();
    let text = |name: &str| {
        fields
            .map(|fields| fields.text(name).to_owned())
            .unwrap_or_default()
    };
    render(&ScreeningTemplate {
        patient_name: format!("{} {}", patient.given_name, patient.family_name),
        patient_id: patient_id.to_string(),
        conditions,
        flags,
        burden: text("symptom_burden"),
        interested: text("interested"),
        reason: text("not_eligible_reason"),
        error_field: error
            .as_ref()
            .map(|invalid| invalid.field.to_owned())
            .unwrap_or_default(),
        error: error.map(|invalid| invalid.problem),
        layout,
    })
}

pub async fn move_pathway(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(patient_id): Path<String>,
    CheckedForm(fields): CheckedForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let patient: PatientId = patient_id.parse().map_err(|_| WebError::NotFound)?;
    let fields = Fields(fields);
    let transition = match fields.text("action") {
        "record_consent" => Transition::RecordConsent,
        "complete_orientation" => Transition::CompleteOrientation,
        "enrol" => Transition::Enrol {
            cohort: fields.parse("cohort_id", "cohort_id", "one of the listed cohorts")?,
            enrolled: 0,
            capacity: 0,
        },
        "offer_place" => Transition::OfferPlace,
        "start" => Transition::Start,
        "complete" => Transition::Complete,
        "return" => Transition::Return,
        "withdraw" => Transition::Withdraw {
            reason: fields.text("reason").to_owned(),
        },
        other => {
            return Err(WebError::Invalid {
                field: "action".to_owned(),
                message: format!("'{other}' is not a step of the pathway"),
            });
        }
    };
    let outcome = enrolment::advance(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &state.consents,
        &signed_in.account,
        patient,
        transition,
    )
    .await;
    let problem = match outcome {
        Ok(_) => return Ok(Redirect::to(&format!("/patients/{patient}#pathway")).into_response()),
        Err(AppError::Invalid(invalid)) => invalid.problem,
        Err(error @ AppError::TransitionNotAllowed { .. }) => error.to_string(),
        Err(other) => return Err(other.into()),
    };
    // The record shows the problem beside the pathway, so the care team stays on the patient.
    let record = care::open_record(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        patient,
    )
    .await?;
    super::patients::render_record(&state, &signed_in, record, Some(problem)).await
}
