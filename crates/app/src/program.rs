//! The patient's own program: this week's theme and practice, the next session, attendance, and
//! the way back after a lapse. Also the check that marks quiet patients as lapsed.
//!
//! A lapse is never a penalty. The patient keeps their place, nobody is removed, and the program
//! page offers to rejoin at the current week with a short catch-up.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use jiff::Timestamp;
use stillpoint_domain::attendance::{self, AttendanceRecord, AttendanceSummary};
use stillpoint_domain::audit::{AuditAction, AuditOutcome};
use stillpoint_domain::curriculum::Curriculum;
use stillpoint_domain::enrolment::{self, EnrolmentState, Transition, TransitionError};
use stillpoint_domain::schedule::SessionKind;
use stillpoint_domain::{Account, CohortId, CohortSessionId, InvalidValue, PatientId};

use crate::audit::{self, AuditContext, AuditEntry};
use crate::consent::{ConsentLibrary, missing_consents};
use crate::ports::{CohortDetails, CohortSession, SessionStatus, Store};
use crate::{AppError, Clock, StorageError, patients};

/// The default number of quiet days after which a patient counts as lapsed.
pub const DEFAULT_LAPSE_DAYS: u16 = 14;

/// The patient's program as their page shows it.
#[derive(Debug, Clone)]
pub struct ProgramView {
    pub patient: PatientId,
    pub state: EnrolmentState,
    pub cohort: Option<CohortDetails>,
    pub curriculum: Option<Curriculum>,
    /// The cohort's sessions in time order, cancelled ones included.
    pub sessions: Vec<CohortSession>,
    /// The week whose home practice applies now: the latest class held, or `None` before the
    /// first class.
    pub current_week: Option<u8>,
    /// The next session that takes place and has not ended.
    pub next_session: Option<CohortSession>,
    pub attendance: AttendanceSummary,
}

/// Loads the signed-in patient's own program; the read is audited.
pub async fn own_program(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
) -> Result<ProgramView, AppError> {
    let patient = patients::own_record_id(store, account)
        .await?
        .ok_or(AppError::Forbidden)?;
    let view = program_of(store, clock.now(), patient).await?;
    record(store, clock, context, patient, AuditAction::Read).await?;
    Ok(view)
}

/// Builds the program view of `patient` at `now`, without access checks or audit.
pub async fn program_of(
    store: &dyn Store,
    now: Timestamp,
    patient: PatientId,
) -> Result<ProgramView, AppError> {
    let state = store
        .find_enrolment(patient)
        .await?
        .unwrap_or(EnrolmentState::Referred);
    let Some(cohort_id) = state.cohort() else {
        return Ok(ProgramView {
            patient,
            state,
            cohort: None,
            curriculum: None,
            sessions: Vec::new(),
            current_week: None,
            next_session: None,
            attendance: AttendanceSummary::of(0, &[]),
        });
    };

    let cohort = store.get_cohort_details(cohort_id).await?;
    let curriculum = match &cohort.curriculum {
        Some((id, version)) => Some(store.get_curriculum_version(id, *version).await?.curriculum),
        None => None,
    };
    let sessions = store.list_cohort_sessions(cohort_id).await?;
    let taking_place = |session: &&CohortSession| session.status == SessionStatus::Scheduled;
    let current_week = sessions
        .iter()
        .filter(taking_place)
        .filter(|session| session.planned.start <= now)
        .filter_map(|session| match session.planned.kind {
            SessionKind::Class { week } => Some(week),
            _ => None,
        })
        .max();
    let next_session = sessions
        .iter()
        .filter(taking_place)
        .find(|session| session.planned.end > now)
        .cloned();

    let held: Vec<&CohortSession> = sessions
        .iter()
        .filter(taking_place)
        .filter(|session| session.planned.start <= now)
        .collect();
    let records: Vec<AttendanceRecord> = store
        .patient_attendance(patient)
        .await?
        .into_iter()
        .filter(|entry| held.iter().any(|session| session.id == entry.session))
        .map(|entry| entry.record)
        .collect();
    let attendance = AttendanceSummary::of(u32::try_from(held.len()).unwrap_or(u32::MAX), &records);
    Ok(ProgramView {
        patient,
        state,
        cohort: Some(cohort),
        curriculum,
        sessions,
        current_week,
        next_session,
        attendance,
    })
}

/// Takes a lapsed patient back into their cohort at the current week, at their own request.
pub async fn rejoin(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    consents: &ConsentLibrary,
    account: &Account,
) -> Result<EnrolmentState, AppError> {
    let patient = patients::own_record_id(store, account)
        .await?
        .ok_or(AppError::Forbidden)?;
    let missing = missing_consents(store, consents, patient).await?;
    if !missing.is_empty() {
        return Err(InvalidValue::new(
            "consent",
            "please review and agree to the updated consent documents first, on your Consent page",
        )
        .into());
    }
    let current = store.find_enrolment(patient).await?;
    let state = current.clone().unwrap_or(EnrolmentState::Referred);
    let next = enrolment::apply(&state, Transition::Return).map_err(|error| match error {
        TransitionError::NotAllowed { current, requested } => {
            AppError::TransitionNotAllowed { current, requested }
        }
        TransitionError::Invalid(invalid) => invalid.into(),
    })?;
    store
        .record_transition(
            patient,
            current.as_ref(),
            &next,
            Some(account.id),
            Some("rejoined from the program page"),
            None,
            clock.now(),
        )
        .await?;
    record(store, clock, context, patient, AuditAction::Update).await?;
    tracing::info!(patient_id = %patient, "patient rejoined after a lapse");
    Ok(next)
}

/// Marks as lapsed each active or returned patient who has been quiet for `lapse_days` days and
/// missed at least one session since: a session that took place and had its roll call taken
/// without them. Quiet time starts at their last attended (or made-up) session or their last
/// move on the pathway, whichever is later. Weeks without a class, a roll call not taken yet, or
/// a finished program never mark anyone. Returns the patients marked; nobody is removed.
pub async fn mark_lapses(
    store: &dyn Store,
    clock: &dyn Clock,
    lapse_days: u16,
) -> Result<Vec<PatientId>, AppError> {
    let now = clock.now();
    let mut cohorts: HashMap<CohortId, CohortFacts> = HashMap::new();
    let mut marked = Vec::new();
    for (patient, state, since) in store.enrolments_in_states(&["active", "returned"]).await? {
        let Some(cohort) = state.cohort() else {
            continue;
        };
        if let Entry::Vacant(vacant) = cohorts.entry(cohort) {
            match CohortFacts::load(store, cohort).await {
                Ok(facts) => {
                    vacant.insert(facts);
                }
                Err(error) => {
                    tracing::warn!(cohort_id = %cohort, error = %error, "lapse check skipped a cohort");
                    continue;
                }
            }
        }
        let Some(facts) = cohorts.get(&cohort) else {
            continue;
        };
        match check_patient(
            store,
            clock,
            facts,
            (patient, &state, since),
            lapse_days,
            now,
        )
        .await
        {
            Ok(true) => marked.push(patient),
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(patient_id = %patient, error = %error, "lapse check skipped a patient");
            }
        }
    }
    if !marked.is_empty() {
        tracing::info!(marked = marked.len(), lapse_days, "patients marked lapsed");
    }
    Ok(marked)
}

/// The facts of one cohort that the lapse check reads.
struct CohortFacts {
    zone: jiff::tz::TimeZone,
    sessions: Vec<crate::ports::CohortSession>,
    attendance: Vec<crate::ports::AttendanceEntry>,
}

impl CohortFacts {
    async fn load(store: &dyn Store, cohort: CohortId) -> Result<Self, AppError> {
        Ok(Self {
            zone: store
                .get_cohort_details(cohort)
                .await?
                .time_zone
                .time_zone(),
            sessions: store.list_cohort_sessions(cohort).await?,
            attendance: store.cohort_attendance(cohort).await?,
        })
    }
}

/// Marks one patient lapsed when the rules of [`mark_lapses`] apply; returns whether it did.
async fn check_patient(
    store: &dyn Store,
    clock: &dyn Clock,
    facts: &CohortFacts,
    (patient, state, since): (PatientId, &EnrolmentState, Timestamp),
    lapse_days: u16,
    now: Timestamp,
) -> Result<bool, AppError> {
    let start_of = |session: CohortSessionId| {
        facts
            .sessions
            .iter()
            .find(|held| held.id == session)
            .map(|held| held.planned.start)
    };
    let last_attended = facts
        .attendance
        .iter()
        .filter(|mark| {
            mark.patient == patient && (mark.record.mark.attended() || mark.record.makeup.is_some())
        })
        .filter_map(|mark| start_of(mark.session))
        .max();
    let last_activity = last_attended.map_or(since, |attended| attended.max(since));
    let missed = facts.sessions.iter().any(|session| {
        session.status == SessionStatus::Scheduled
            && session.planned.start > last_activity
            && session.planned.start <= now
            && facts
                .attendance
                .iter()
                .any(|mark| mark.session == session.id)
    });
    let date = |instant: Timestamp| instant.to_zoned_datetime(facts.zone.clone()).date();
    if !missed || !attendance::is_lapsed(date(last_activity), date(now), lapse_days) {
        return Ok(false);
    }

    let next = enrolment::apply(state, Transition::MarkLapsed)
        .map_err(|error| AppError::Internal(format!("the pathway rejected a lapse: {error}")))?;
    let reason = format!("no attended session for {lapse_days} days");
    match store
        .record_transition(patient, Some(state), &next, None, Some(&reason), None, now)
        .await
    {
        Ok(()) => {}
        Err(StorageError::Conflict { .. }) => {
            tracing::info!(patient_id = %patient, "lapse check skipped a patient another request moved first");
            return Ok(false);
        }
        Err(other) => return Err(other.into()),
    }
    record(
        store,
        clock,
        &AuditContext::default(),
        patient,
        AuditAction::Update,
    )
    .await?;
    if let Err(error) = crate::reminders::patient_lapsed(store, now, patient, now).await {
        tracing::error!(patient_id = %patient, error = %error, "cannot queue the re-engagement message");
    }
    Ok(true)
}

async fn record(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    patient: PatientId,
    action: AuditAction,
) -> Result<(), AppError> {
    let entry = AuditEntry {
        patient: Some(patient),
        resource_type: "CarePlan",
        resource_id: Some(patient.to_string()),
        action,
        outcome: AuditOutcome::Success,
        break_glass: false,
    };
    audit::record(store, clock, context, entry).await?;
    Ok(())
}
