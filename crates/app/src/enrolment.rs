//! Moving a patient along the enrolment pathway (see [`stillpoint_domain::enrolment`]), with the
//! checks that need storage: the care team's access, current consent before consent is recorded
//! and before each later program step, and the cohort's site and capacity.

use stillpoint_domain::audit::{AuditAction, AuditOutcome};
use stillpoint_domain::care_team::RecordAccess;
use stillpoint_domain::enrolment::{self, EnrolmentState, Transition, TransitionError};
use stillpoint_domain::{Account, InvalidValue, PatientId};

use crate::audit::{self, AuditContext, AuditEntry};
use crate::consent::{ConsentLibrary, missing_consents};
use crate::ports::{EnrolmentHistoryEntry, Store};
use crate::{AppError, Clock, StorageError, care};

/// A patient's state with the moves that led there.
#[derive(Debug, Clone)]
pub struct EnrolmentView {
    pub state: EnrolmentState,
    pub history: Vec<EnrolmentHistoryEntry>,
}

/// Returns the patient's state (referred when nothing was recorded yet) and history, for the
/// care team. The read is audited.
pub async fn view(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    staff: &Account,
    patient_id: PatientId,
) -> Result<EnrolmentView, AppError> {
    check_care_team(store, clock, context, staff, patient_id).await?;
    record(
        store,
        clock,
        context,
        patient_id,
        AuditAction::Read,
        AuditOutcome::Success,
    )
    .await?;
    Ok(EnrolmentView {
        state: store
            .find_enrolment(patient_id)
            .await?
            .unwrap_or(EnrolmentState::Referred),
        history: store.enrolment_history(patient_id).await?,
    })
}

/// Returns the patient's state (referred when nothing was recorded yet), for a page whose caller
/// has already checked the care team's access and audited the record read, so one view of a
/// record is one audit event.
pub async fn current_state(
    store: &dyn Store,
    patient_id: PatientId,
) -> Result<EnrolmentState, AppError> {
    Ok(store
        .find_enrolment(patient_id)
        .await?
        .unwrap_or(EnrolmentState::Referred))
}

/// Applies `transition` for a member of the patient's care team and returns the new state.
pub async fn advance(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    consents: &ConsentLibrary,
    staff: &Account,
    patient_id: PatientId,
    transition: Transition,
) -> Result<EnrolmentState, AppError> {
    let patient = check_care_team(store, clock, context, staff, patient_id).await?;
    let stored = store.find_enrolment(patient_id).await?;
    let current = stored.clone().unwrap_or(EnrolmentState::Referred);

    // Consent must be current when it is recorded and before each later step, because a patient
    // can withdraw it at any time.
    let needs_consent = matches!(
        transition,
        Transition::RecordConsent
            | Transition::CompleteOrientation
            | Transition::Enrol { .. }
            | Transition::OfferPlace
            | Transition::Start
            | Transition::Return
    );
    let transition = match transition {
        Transition::Enrol { cohort, .. } => {
            let (found, capacity) =
                store
                    .get_cohort(cohort)
                    .await
                    .map_err(|error| match error {
                        StorageError::NotFound { .. } => AppError::from(InvalidValue::new(
                            "cohort_id",
                            "no cohort has this id; choose one from the site's cohorts",
                        )),
                        other => other.into(),
                    })?;
            if found.site_id != patient.site_id {
                return Err(InvalidValue::new(
                    "cohort_id",
                    "the cohort is at another site than the patient's care; choose a cohort of the patient's site",
                )
                .into());
            }
            let enrolled = store.count_places_taken(cohort).await?;
            Transition::Enrol {
                cohort,
                enrolled,
                capacity,
            }
        }
        other => other,
    };

    if matches!(transition, Transition::Start)
        && let Some(cohort) = current.cohort()
    {
        check_cohort_started(store, clock, cohort).await?;
    }

    let screening = match &transition {
        Transition::CompleteScreening { screening, .. } => Some(screening.clone()),
        _ => None,
    };
    let next = enrolment::apply(&current, transition).map_err(|error| match error {
        TransitionError::NotAllowed { current, requested } => {
            AppError::TransitionNotAllowed { current, requested }
        }
        TransitionError::Invalid(invalid) => invalid.into(),
    })?;
    // Checked after the move itself, so an impossible move is reported as such first.
    if needs_consent {
        require_current_consent(store, consents, patient_id).await?;
    }
    store
        .record_transition(
            patient_id,
            stored.as_ref(),
            &next,
            Some(staff.id),
            next.reason(),
            screening.as_ref(),
            clock.now(),
        )
        .await
        .map_err(|error| match error {
            StorageError::Conflict { constraint } if constraint == "enrolments_changed" => {
                AppError::TransitionNotAllowed {
                    current: current.code(),
                    requested: next.code(),
                }
            }
            other => other.into(),
        })?;
    record(
        store,
        clock,
        context,
        patient_id,
        AuditAction::Update,
        AuditOutcome::Success,
    )
    .await?;
    tracing::info!(patient_id = %patient_id, from = current.code(), to = next.code(), "enrolment moved");
    Ok(next)
}

/// Rejects a step when the patient has not agreed to every required consent document.
async fn require_current_consent(
    store: &dyn Store,
    consents: &ConsentLibrary,
    patient_id: PatientId,
) -> Result<(), AppError> {
    let missing = missing_consents(store, consents, patient_id).await?;
    if missing.is_empty() {
        return Ok(());
    }
    Err(InvalidValue::new(
        "consent",
        format!(
            "the patient has not agreed to: {}; they agree on their Consent page",
            missing.join(", ")
        ),
    )
    .into())
}

/// Rejects starting the program before the day of the cohort's first session, in its time zone.
async fn check_cohort_started(
    store: &dyn Store,
    clock: &dyn Clock,
    cohort: stillpoint_domain::CohortId,
) -> Result<(), AppError> {
    let details = store.get_cohort_details(cohort).await?;
    let zone = details.time_zone.time_zone();
    let first = store
        .list_cohort_sessions(cohort)
        .await?
        .into_iter()
        .filter(|session| session.status == crate::ports::SessionStatus::Scheduled)
        .map(|session| session.planned.start)
        .min();
    let Some(first) = first else {
        return Ok(());
    };
    let first_day = first.to_zoned_datetime(zone.clone()).date();
    let today = clock.now().to_zoned_datetime(zone).date();
    if today < first_day {
        return Err(InvalidValue::new(
            "cohort_id",
            format!("the cohort's first session is on {first_day}; start the program on or after that day"),
        )
        .into());
    }
    Ok(())
}

/// Returns the patient when `staff` belongs to their care team; audits and refuses otherwise.
async fn check_care_team(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    staff: &Account,
    patient_id: PatientId,
) -> Result<stillpoint_domain::Patient, AppError> {
    let patient = store.get_patient(patient_id).await?;
    if care::access_to(store, clock, staff, &patient).await? != RecordAccess::CareTeam {
        record(
            store,
            clock,
            context,
            patient_id,
            AuditAction::Read,
            AuditOutcome::Denied,
        )
        .await?;
        return Err(AppError::Forbidden);
    }
    Ok(patient)
}

async fn record(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    patient: PatientId,
    action: AuditAction,
    outcome: AuditOutcome,
) -> Result<(), AppError> {
    let entry = AuditEntry {
        patient: Some(patient),
        resource_type: "Enrolment",
        resource_id: Some(patient.to_string()),
        action,
        outcome,
        break_glass: false,
    };
    audit::record(store, clock, context, entry).await?;
    Ok(())
}
