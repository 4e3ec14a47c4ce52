//! The facilitator's view of a cohort's home practice: minutes and days per week against the
//! assignment, who may need a check-in, diary entries patients shared, and tailoring
//! suggestions to accept or dismiss.
//!
//! Diary notes and ratings are private to the patient unless shared, so the rules that read
//! ratings see only shared entries. Practice minutes are visible to the facilitator.

use std::collections::BTreeMap;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use stillpoint_domain::audit::{AuditAction, AuditOutcome};
use stillpoint_domain::curriculum::Curriculum;
use stillpoint_domain::practice::adherence::{self, CheckInReason, Trend, WeekAdherence};
use stillpoint_domain::practice::tailoring::{self, DiaryRatings, PatientData, TailoringRules};
use stillpoint_domain::practice::{Adjustment, Assignment};
use stillpoint_domain::{Account, CohortId, InvalidValue, PatientId, SuggestionId};

use crate::audit::{self, AuditContext, AuditEntry};
use crate::cohort_view::{self, CohortAccess};
use crate::ports::{
    CohortDetails, CohortSession, PracticeEntry, RosterEntry, Store, StoredSuggestion,
    SuggestionState,
};
use crate::practice::{DIARY_DAYS, adjustment_since, weeks_of};
use crate::{AppError, Clock, StorageError};

/// The instrument whose 0–10 score the pain rule reads, and its scale.
const PAIN_INSTRUMENT: (&str, &str) = ("pain-rating", "pain");

/// One patient's practice, as the facilitator's overview shows it.
#[derive(Debug, Clone)]
pub struct PatientPractice {
    pub entry: RosterEntry,
    pub assignment: Option<Assignment>,
    pub weeks: Vec<WeekAdherence>,
    pub trend: Trend,
    pub last_practice: Option<Date>,
    pub check_in: Vec<CheckInReason>,
}

impl PatientPractice {
    /// The week under way, or the last one.
    #[must_use]
    pub fn current_week(&self) -> Option<&WeekAdherence> {
        self.weeks.last()
    }
}

/// A cohort's practice overview.
#[derive(Debug, Clone)]
pub struct CohortPractice {
    pub details: CohortDetails,
    pub access: CohortAccess,
    pub today: Date,
    pub patients: Vec<PatientPractice>,
    /// Suggestions for the cohort's patients, newest first.
    pub suggestions: Vec<StoredSuggestion>,
    /// Entries shared with the facilitator in the last [`DIARY_DAYS`] days, newest first.
    pub shared: Vec<PracticeEntry>,
}

impl CohortPractice {
    /// The roster line of a patient in this overview.
    #[must_use]
    pub fn patient(&self, id: PatientId) -> Option<&PatientPractice> {
        self.patients
            .iter()
            .find(|patient| patient.entry.patient == id)
    }
}

/// Loads the practice overview of a cohort and makes any new tailoring suggestions; the read is
/// audited.
// NOTE: suggestions are made when a facilitator opens this overview, not by a scheduled job, so
// a rule that fires between visits waits for the next visit.
pub async fn cohort_practice(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    rules: &TailoringRules,
    account: &Account,
    cohort: CohortId,
) -> Result<CohortPractice, AppError> {
    let details = store.get_cohort_details(cohort).await?;
    let access = match cohort_view::access(account, &details) {
        Some(access) if access.roster => access,
        _ => {
            audit_cohort(
                store,
                clock,
                context,
                cohort,
                AuditAction::Read,
                AuditOutcome::Denied,
            )
            .await?;
            return Err(AppError::Forbidden);
        }
    };
    let now = clock.now();
    let zone = details.time_zone.time_zone();
    let today = now.to_zoned_datetime(zone.clone()).date();
    let curriculum = match &details.curriculum {
        Some((id, version)) => Some(store.get_curriculum_version(id, *version).await?.curriculum),
        None => None,
    };
    let sessions = store.list_cohort_sessions(cohort).await?;
    let roster: Vec<RosterEntry> = store
        .cohort_roster(cohort)
        .await?
        .into_iter()
        .filter(|entry| entry.state.takes_part())
        .collect();
    let ids: Vec<PatientId> = roster.iter().map(|entry| entry.patient).collect();

    let base_weeks = curriculum.as_ref().map_or_else(Vec::new, |curriculum| {
        weeks_of(curriculum, &sessions, &zone, (Adjustment::default(), None))
    });
    let first_day = base_weeks.first().map_or(today, |week| week.starts);
    let mut daily: BTreeMap<PatientId, Vec<(Date, u32)>> = BTreeMap::new();
    for (patient, day, seconds) in store.practice_days_of(&ids, first_day).await? {
        daily.entry(patient).or_default().push((day, seconds));
    }
    let shared_from = today.saturating_sub(jiff::Span::new().days(DIARY_DAYS));
    let shared = store.shared_entries_of(&ids, shared_from).await?;

    let facts = CohortFacts {
        curriculum: curriculum.as_ref(),
        sessions: &sessions,
        zone: &zone,
        today,
        shared: &shared,
    };
    let mut patients = Vec::with_capacity(roster.len());
    for entry in roster {
        let days = daily.remove(&entry.patient).unwrap_or_default();
        patients.push(patient_practice(store, clock, rules, &facts, entry, &days).await?);
    }

    audit_cohort(
        store,
        clock,
        context,
        cohort,
        AuditAction::Read,
        AuditOutcome::Success,
    )
    .await?;
    // The read appears in the access report of each patient whose shared entries the page shows.
    let mut readers: Vec<PatientId> = shared.iter().map(|entry| entry.patient).collect();
    readers.sort();
    readers.dedup();
    for patient in readers {
        crate::practice::audit_diary(store, clock, context, patient, None, AuditAction::Read)
            .await?;
    }
    Ok(CohortPractice {
        suggestions: store.suggestions_of(&ids).await?,
        details,
        access,
        today,
        patients,
        shared,
    })
}

/// The facts every patient of the cohort shares: the curriculum, the sessions, the cohort's zone and
/// day, and the entries shared with the facilitator.
struct CohortFacts<'a> {
    curriculum: Option<&'a Curriculum>,
    sessions: &'a [CohortSession],
    zone: &'a TimeZone,
    today: Date,
    shared: &'a [PracticeEntry],
}

/// Sums one patient's practice by week, lists why they may need a check-in, and makes any new
/// tailoring suggestions.
async fn patient_practice(
    store: &dyn Store,
    clock: &dyn Clock,
    rules: &TailoringRules,
    facts: &CohortFacts<'_>,
    entry: RosterEntry,
    days: &[(Date, u32)],
) -> Result<PatientPractice, AppError> {
    let today = facts.today;
    let adjustment = store.practice_adjustment(entry.patient).await?;
    let since = adjustment_since(store, entry.patient, facts.zone).await?;
    let weeks = facts.curriculum.map_or_else(Vec::new, |curriculum| {
        weeks_of(curriculum, facts.sessions, facts.zone, (adjustment, since))
    });
    let summary = adherence::weekly(&weeks, days, today);
    let last_practice = days
        .iter()
        .filter(|(_, seconds)| *seconds > 0)
        .map(|(day, _)| *day)
        .max();
    let assignment = weeks
        .iter()
        .rev()
        .find(|week| week.starts <= today)
        .map(|week| week.assignment.clone());

    if let Some(assignment) = &assignment {
        let shared: Vec<&PracticeEntry> = facts
            .shared
            .iter()
            .filter(|shared| shared.patient == entry.patient)
            .collect();
        suggest_for(
            store,
            clock,
            rules,
            &entry,
            assignment,
            adjustment,
            &summary,
            &shared,
            (today, facts.zone),
        )
        .await?;
    }
    Ok(PatientPractice {
        check_in: adherence::check_in_reasons(&rules.check_in, &summary, last_practice, today),
        trend: adherence::trend(&summary),
        weeks: summary,
        last_practice,
        assignment,
        entry,
    })
}

/// Runs the tailoring rules for one patient and stores the suggestions that fire. A rule that
/// fired this week already, accepted or dismissed, is not stored again.
#[allow(clippy::too_many_arguments)] // One patient's data, gathered by the caller once per cohort.
async fn suggest_for(
    store: &dyn Store,
    clock: &dyn Clock,
    rules: &TailoringRules,
    entry: &RosterEntry,
    assignment: &Assignment,
    adjustment: Adjustment,
    weeks: &[WeekAdherence],
    shared: &[&PracticeEntry],
    (today, zone): (Date, &TimeZone),
) -> Result<(), AppError> {
    let pain_ratings = pain_ratings_of(store, entry.patient, zone).await?;
    let distress: Vec<DiaryRatings> = shared
        .iter()
        .map(|shared| DiaryRatings {
            entry: shared.id,
            day: shared.practiced_on,
            before: shared.distress_before,
            after: shared.distress_after,
        })
        .collect();
    let data = PatientData {
        today,
        assignment,
        adjustment,
        weeks,
        pain_ratings: &pain_ratings,
        distress: &distress,
    };
    for suggestion in tailoring::suggest(rules, &data) {
        let stored = StoredSuggestion {
            id: SuggestionId::from_uuid(crate::random::new_uuid()),
            patient: entry.patient,
            rule: suggestion.rule,
            week: suggestion.week,
            evidence: suggestion.evidence,
            adjustment: suggestion.adjustment,
            state: SuggestionState::Open,
            created_at: clock.now(),
            decided_by: None,
            decided_at: None,
        };
        if store.add_suggestion(&stored).await? {
            tracing::info!(suggestion_id = %stored.id, rule = stored.rule.code(), "tailoring suggestion made");
        }
    }
    Ok(())
}

/// The patient's 0–10 pain ratings from questionnaires, dated in `zone`.
async fn pain_ratings_of(
    store: &dyn Store,
    patient: PatientId,
    zone: &TimeZone,
) -> Result<Vec<(Date, u8)>, AppError> {
    let (pain_instrument, pain_scale) = PAIN_INSTRUMENT;
    Ok(store
        .responses_of_patient(patient)
        .await?
        .iter()
        .filter(|response| response.instrument == pain_instrument)
        .filter_map(|response| {
            let reported = response
                .scores
                .iter()
                .find(|score| score.scale == pain_scale)?
                .reported?;
            // Pain ratings are whole numbers from 0 to 10; anything else is not a rating.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let rating = (0.0..=10.0)
                .contains(&reported)
                .then(|| reported.round() as u8)?;
            Some((
                response.submitted_at.to_zoned_datetime(zone.clone()).date(),
                rating,
            ))
        })
        .collect())
}

/// A facilitator's decision on a suggestion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Accept,
    Dismiss,
}

/// Accepts or dismisses a suggestion for a patient of `cohort`. Accepting a suggestion with a
/// change applies it on top of the patient's adjustment, so the assignment changes at once.
pub async fn decide(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
    cohort: CohortId,
    id: SuggestionId,
    decision: Decision,
) -> Result<StoredSuggestion, AppError> {
    let details = store.get_cohort_details(cohort).await?;
    if !cohort_view::access(account, &details).is_some_and(|access| access.take_roll) {
        audit_cohort(
            store,
            clock,
            context,
            cohort,
            AuditAction::Update,
            AuditOutcome::Denied,
        )
        .await?;
        return Err(AppError::Forbidden);
    }
    let suggestion = store.get_suggestion(id).await?;
    let on_roster = store
        .cohort_roster(cohort)
        .await?
        .iter()
        .any(|entry| entry.patient == suggestion.patient && entry.state.takes_part());
    if !on_roster {
        return Err(StorageError::NotFound {
            entity: "tailoring suggestion",
            id: id.to_string(),
        }
        .into());
    }

    let (state, change) = match decision {
        Decision::Accept => (SuggestionState::Accepted, suggestion.adjustment),
        Decision::Dismiss => (SuggestionState::Dismissed, None),
    };

    match store
        .decide_suggestion(id, state, change, account.id, clock.now())
        .await
    {
        Ok(()) => {}
        Err(StorageError::Conflict { .. }) => {
            return Err(InvalidValue::new(
                "suggestion",
                "this suggestion was accepted or dismissed already; reload the page to see the decision",
            )
            .into());
        }
        Err(other) => return Err(other.into()),
    }
    audit::record(
        store,
        clock,
        context,
        AuditEntry {
            patient: Some(suggestion.patient),
            resource_type: "PracticeAssignment",
            resource_id: Some(id.to_string()),
            action: AuditAction::Update,
            outcome: AuditOutcome::Success,
            break_glass: false,
        },
    )
    .await?;
    tracing::info!(suggestion_id = %id, state = state.code(), "tailoring suggestion decided");
    Ok(store.get_suggestion(id).await?)
}

async fn audit_cohort(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    cohort: CohortId,
    action: AuditAction,
    outcome: AuditOutcome,
) -> Result<(), AppError> {
    audit::record(
        store,
        clock,
        context,
        AuditEntry {
            patient: None,
            resource_type: "PracticeOverview",
            resource_id: Some(cohort.to_string()),
            action,
            outcome,
            break_glass: false,
        },
    )
    .await?;
    Ok(())
}
