//! The demo clinic's programs: the first site's cohort is in week 5 with a realistic roll call
//! history (about 80% attendance and two lapsed patients), and the second site's cohort is about
//! to start.

use jiff::civil::{Date, Time, Weekday};
use jiff::{SignedDuration, Span, Timestamp};
use stillpoint_domain::attendance::{AttendanceMark, AttendanceRecord, Makeup};
use stillpoint_domain::curriculum::{Curriculum, CurriculumId};
use stillpoint_domain::enrolment::{EnrolmentState, Screening};
use stillpoint_domain::schedule::{self, PlannedSession, ScheduleRequest};
use stillpoint_domain::{AccountId, CohortId, Language, Patient, PatientId, Site};

use crate::AppError;
use crate::demo::{DemoClinic, DemoCohort};
use crate::ports::{AttendanceEntry, NewCohort, Store};

/// The share of held sessions an active demo patient attends, in percent.
const ATTENDANCE_PERCENT: u64 = 90;
/// How many patients of the cohort in week 5 stopped coming after week 2.
const LAPSED_PATIENTS: usize = 2;

/// The schedule and curriculum of one demo cohort.
struct CohortPlan<'a> {
    cohort: &'a DemoCohort,
    site: &'a Site,
    curriculum: &'a Curriculum,
    request: ScheduleRequest,
    /// Whether the cohort is running (week 5) rather than about to start.
    running: bool,
}

/// Stores the demo cohorts' schedules, the members' pathway and the running cohort's roll calls.
pub(crate) async fn seed(
    store: &dyn Store,
    clinic: &DemoClinic,
    curricula: &[Curriculum],
    now: Timestamp,
) -> Result<(), AppError> {
    for plan in plans(clinic, curricula, now) {
        let sessions = schedule::plan(&plan.request, plan.request.orientation_date)?;
        let (cohort, facilitators, members) = plan.cohort;
        store
            .create_cohort(
                &NewCohort {
                    cohort: cohort.clone(),
                    capacity: 15,
                    language: Language::english(),
                    time_zone: plan.request.time_zone.clone(),
                    video_provider: "embedded",
                    facilitators: facilitators.clone(),
                    sessions: sessions.clone(),
                    curriculum: (plan.curriculum.id.clone(), plan.curriculum.version),
                },
                now,
            )
            .await?;
        let staff = screening_staff(clinic, plan.site, facilitators);
        let lead = facilitators.first().map_or(staff, |(account, _)| *account);
        let stored_sessions = store.list_cohort_sessions(cohort.id).await?;

        for (index, patient_id) in members.iter().enumerate() {
            let Some(patient) = clinic
                .patients
                .iter()
                .find(|patient| patient.id == *patient_id)
            else {
                continue;
            };
            // The demo patient who signs in is never one of the lapsed ones.
            let lapsed = plan.running
                && patient.account_id.is_none()
                && index >= members.len().saturating_sub(LAPSED_PATIENTS);
            let joined = sessions[0].start - SignedDuration::from_hours(24 * 10);
            seed_pathway(
                store,
                patient,
                cohort.id,
                staff,
                joined,
                &sessions,
                plan.running,
                lapsed,
                now,
            )
            .await?;
            if plan.running {
                let marks = roll_calls(patient.id, &stored_sessions, lapsed, now);
                store.put_attendance(&marks, lead, now).await?;
            }
        }
    }
    Ok(())
}

fn plans<'a>(
    clinic: &'a DemoClinic,
    curricula: &'a [Curriculum],
    now: Timestamp,
) -> Vec<CohortPlan<'a>> {
    let curriculum = |id: &str| {
        let id = CurriculumId::parse(id).ok()?;
        curricula
            .iter()
            .filter(|curriculum| curriculum.id == id)
            .max_by_key(|curriculum| curriculum.version)
    };
    let mut plans = Vec::new();
    let choices = [("mbsr-online", true), ("mbsr-chronic-pain", false)];
    for (cohort, (curriculum_id, running)) in clinic.cohorts.iter().zip(choices) {
        let (Some(site), Some(curriculum)) = (
            clinic.sites.iter().find(|site| site.id == cohort.0.site_id),
            curriculum(curriculum_id),
        ) else {
            continue;
        };
        let today = now.to_zoned_datetime(site.time_zone.time_zone()).date();
        let request = if running {
            running_schedule(site, curriculum, today)
        } else {
            upcoming_schedule(site, curriculum, today)
        };
        plans.push(CohortPlan {
            cohort,
            site,
            curriculum,
            request,
            running,
        });
    }
    plans
}

/// Plans a Tuesday-evening cohort whose week-5 class was the most recent Tuesday before `today`.
fn running_schedule(site: &Site, curriculum: &Curriculum, today: Date) -> ScheduleRequest {
    let last_class = previous(today, Weekday::Tuesday);
    let first_class = last_class - Span::new().weeks(4);
    schedule_request(site, curriculum, first_class, Time::constant(18, 0, 0, 0))
}

/// Plans a Thursday-morning cohort whose orientation is on the next Thursday after `today`.
fn upcoming_schedule(site: &Site, curriculum: &Curriculum, today: Date) -> ScheduleRequest {
    let orientation = previous(today, Weekday::Thursday) + Span::new().weeks(1);
    schedule_request(
        site,
        curriculum,
        orientation + Span::new().weeks(1),
        Time::constant(10, 0, 0, 0),
    )
}

fn schedule_request(
    site: &Site,
    curriculum: &Curriculum,
    first_class: Date,
    class_time: Time,
) -> ScheduleRequest {
    // The retreat is on the Saturday after the week-6 class (five weeks after the first).
    let week_six = first_class + Span::new().weeks(5);
    let retreat = week_six
        .nth_weekday(1, Weekday::Saturday)
        .unwrap_or(week_six);
    ScheduleRequest {
        time_zone: site.time_zone.clone(),
        orientation_date: first_class - Span::new().weeks(1),
        first_class_date: first_class,
        class_time,
        class_length: SignedDuration::from_mins(i64::from(curriculum.class_minutes)),
        retreat_start: retreat.to_datetime(Time::constant(9, 30, 0, 0)),
        retreat_length: SignedDuration::from_mins(i64::from(curriculum.retreat_minutes)),
        skip_dates: Vec::new(),
    }
}

/// Returns the latest `weekday` strictly before `date`.
fn previous(date: Date, weekday: Weekday) -> Date {
    date.nth_weekday(-1, weekday).unwrap_or(date)
}

/// Returns a clinician of the site, who screened the demo patients, or else the lead
/// facilitator.
fn screening_staff(
    clinic: &DemoClinic,
    site: &Site,
    facilitators: &[(AccountId, bool)],
) -> AccountId {
    crate::demo::site_clinician(clinic, site.id)
        .or_else(|| facilitators.first().map(|(account, _)| *account))
        .unwrap_or(AccountId::from_uuid(uuid::Uuid::nil()))
}

/// Records the moves from referral to enrolled, then active (and lapsed) for a running cohort.
#[allow(clippy::too_many_arguments)] // One argument per fact of the demo patient's history.
async fn seed_pathway(
    store: &dyn Store,
    patient: &Patient,
    cohort: CohortId,
    staff: AccountId,
    joined: Timestamp,
    sessions: &[PlannedSession],
    running: bool,
    lapsed: bool,
    now: Timestamp,
) -> Result<(), AppError> {
    let screening = Screening {
        conditions: patient
            .conditions
            .iter()
            .map(|condition| condition.code.clone())
            .collect(),
        symptom_burden: 6,
        interested_in_non_drug_coping: true,
        exclusion_flags: Vec::new(),
    };
    let hour = SignedDuration::from_hours(1);
    let mut steps = vec![
        (EnrolmentState::Screening, None, joined),
        (EnrolmentState::Eligible, Some(&screening), joined + hour),
        (EnrolmentState::Consented, None, joined + hour * 48),
        (EnrolmentState::Oriented, None, joined + hour * 72),
        (
            EnrolmentState::Enrolled { cohort },
            None,
            joined + hour * 73,
        ),
    ];
    if running {
        let first_class = sessions.get(1).map_or(joined, |session| session.start);
        steps.push((EnrolmentState::Active { cohort }, None, first_class));
    }

    let mut current: Option<EnrolmentState> = None;
    for (next, screening, at) in steps {
        store
            .record_transition(
                patient.id,
                current.as_ref(),
                &next,
                Some(staff),
                None,
                screening,
                at,
            )
            .await?;
        current = Some(next);
    }
    if lapsed {
        // Quiet since the week-2 class: the lapse check found them 14 days later.
        let week_two = sessions.get(2).map_or(now, |session| session.start);
        let at = (week_two + SignedDuration::from_hours(24 * 14)).min(now);
        store
            .record_transition(
                patient.id,
                current.as_ref(),
                &EnrolmentState::Lapsed { cohort },
                None,
                Some("no attended session for 14 days"),
                None,
                at,
            )
            .await?;
    }
    Ok(())
}

/// Builds one patient's roll call marks for every session held before `now`. Lapsed patients came
/// to the orientation and weeks 1 and 2 only, and the others attend about nine sessions in ten.
fn roll_calls(
    patient: PatientId,
    sessions: &[crate::ports::CohortSession],
    lapsed: bool,
    now: Timestamp,
) -> Vec<AttendanceEntry> {
    let seed = u64::from_le_bytes(
        patient.as_uuid().as_bytes()[..8]
            .try_into()
            .unwrap_or([0; 8]),
    );
    sessions
        .iter()
        .enumerate()
        .filter(|(_, session)| session.planned.start <= now)
        .map(|(index, session)| {
            let minutes = u32::try_from(
                session
                    .planned
                    .end
                    .duration_since(session.planned.start)
                    .as_mins(),
            )
            .unwrap_or(0);
            let draw = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(index as u64 * 1_442_695_040_888_963_407)
                >> 33;
            let attended = if lapsed {
                index <= 2
            } else {
                draw % 100 < ATTENDANCE_PERCENT
            };
            let record = match (attended, draw % 7) {
                (true, 0) => AttendanceRecord {
                    mark: AttendanceMark::Late,
                    minutes_attended: minutes - 10,
                    makeup: None,
                },
                (true, 1) => AttendanceRecord {
                    mark: AttendanceMark::LeftEarly,
                    minutes_attended: minutes - 30,
                    makeup: None,
                },
                (true, _) => AttendanceRecord {
                    mark: AttendanceMark::Present,
                    minutes_attended: minutes,
                    makeup: None,
                },
                (false, 2 | 3) if !lapsed => AttendanceRecord {
                    mark: AttendanceMark::Excused,
                    minutes_attended: 0,
                    makeup: Some(Makeup::Recording),
                },
                (false, _) => AttendanceRecord {
                    mark: AttendanceMark::Absent,
                    minutes_attended: 0,
                    makeup: None,
                },
            };
            AttendanceEntry {
                session: session.id,
                patient,
                record,
            }
        })
        .collect()
}
