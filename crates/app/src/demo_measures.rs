//! Synthetic questionnaire responses for the demo clinic's running cohort: baseline measures
//! before week 1, weekly check-ins, and the mid-program measures once week 4 has passed. Most
//! patients improve slowly, one gets worse, and one mid-program PHQ-9 answers item 9 above 0,
//! which leaves an open safety alert for the care team's inbox.

use jiff::{SignedDuration, Timestamp};
use stillpoint_domain::measures::instrument::{Answers, Instrument};
use stillpoint_domain::measures::safety::{self, AlertLevel};
use stillpoint_domain::schedule::SessionKind;
use stillpoint_domain::{AccountId, AlertId, Patient, ResponseId, Role};

use crate::demo::DemoClinic;
use crate::measures::MeasureLibrary;
use crate::ports::{NewAlert, NewResponse, Store, StoredResponse, StoredScore};
use crate::{AppError, StorageError};

/// One planned demo response.
struct Planned<'a> {
    instrument: &'a Instrument,
    occasion: String,
    at: Timestamp,
    /// The total to spread over the scored items, or the rating for a single-item scale.
    total: u8,
    item9: u8,
}

pub(crate) async fn seed(
    store: &dyn Store,
    clinic: &DemoClinic,
    library: &MeasureLibrary,
    now: Timestamp,
) -> Result<(), AppError> {
    let Some((cohort, _, members)) = clinic.cohorts.first() else {
        return Ok(());
    };
    let sessions = store.list_cohort_sessions(cohort.id).await?;
    let class_start = |week: u8| {
        sessions
            .iter()
            .find_map(|session| match session.planned.kind {
                SessionKind::Class { week: class } if class == week => Some(session.planned.start),
                _ => None,
            })
    };
    // Patients without a sign-in answered on paper, entered by a clinician.
    let Some(clinician) = clinic
        .accounts
        .iter()
        .find(|account| account.has_role(Role::Clinician))
        .map(|account| account.id)
    else {
        return Ok(());
    };
    let (Some(week1), Some(week2), Some(week3), Some(week4)) = (
        class_start(1),
        class_start(2),
        class_start(3),
        class_start(4),
    ) else {
        return Ok(());
    };

    let class_starts = [week1, week2, week3, week4];
    for (index, patient_id) in members.iter().enumerate() {
        let Some(patient) = clinic.patients.iter().find(|p| p.id == *patient_id) else {
            continue;
        };
        let worsening = index + 1 == members.len();
        let planned = plan_patient(library, index, worsening, class_starts, now);
        for (number, response) in planned.iter().enumerate() {
            store_response(store, patient, clinician, response, number).await?;
        }
    }
    seed_upcoming_baselines(store, clinic, library, clinician, now).await
}

/// Baseline answers from most members of the cohort that starts soon: its baseline occasion
/// opened three weeks before the first class.
async fn seed_upcoming_baselines(
    store: &dyn Store,
    clinic: &DemoClinic,
    library: &MeasureLibrary,
    clinician: AccountId,
    now: Timestamp,
) -> Result<(), AppError> {
    let Some((_, _, members)) = clinic.cohorts.get(1) else {
        return Ok(());
    };
    for (index, patient_id) in members.iter().enumerate() {
        // The last member has not answered yet, so the plan shows a baseline still due.
        if index + 1 == members.len() {
            continue;
        }
        let Some(patient) = clinic.patients.iter().find(|p| p.id == *patient_id) else {
            continue;
        };
        let step = u8::try_from(index % 5).unwrap_or(0);
        let days = i64::from(2 + step);
        let at = now - SignedDuration::from_hours(24 * days);
        let spread = u8::try_from((index * 7) % 17).unwrap_or(0);
        let answered = [
            ("phq-9", 5 + spread),
            ("gad-7", 4 + spread * 3 / 4),
            ("semcd-6", 3 + step),
        ];
        for (number, (id, total)) in answered.into_iter().enumerate() {
            let Some(instrument) = library.instrument(id) else {
                continue;
            };
            let planned = Planned {
                instrument,
                occasion: "baseline".to_owned(),
                at,
                total,
                item9: 0,
            };
            store_response(store, patient, clinician, &planned, number).await?;
        }
    }
    Ok(())
}

/// Plans the responses one patient gave so far: baseline, check-ins in weeks 2 and 3, and the
/// mid-program measures. A worsening patient's scores rise; the others fall by one to three
/// points an occasion.
fn plan_patient(
    library: &MeasureLibrary,
    index: usize,
    worsening: bool,
    [week1, week2, week3, week4]: [Timestamp; 4],
    now: Timestamp,
) -> Vec<Planned<'_>> {
    let step = u8::try_from(index % 4).unwrap_or(0);
    // Baselines spread over 7 to 20, as in a clinical sample with mixed severity.
    let baseline = 7 + u8::try_from((index * 5) % 14).unwrap_or(0);
    let later = |occasions: u8| {
        if worsening {
            baseline + 2 * occasions
        } else {
            baseline.saturating_sub(occasions * (1 + step % 3))
        }
    };
    let mut planned = Vec::new();
    let mut add = |id: &str, occasion: &str, at: Timestamp, total: u8, item9: u8| {
        if let Some(instrument) = library.instrument(id)
            && at < now
        {
            planned.push(Planned {
                instrument,
                occasion: occasion.to_owned(),
                at,
                total,
                item9,
            });
        }
    };
    let before = |start: Timestamp, hours: i64| start - SignedDuration::from_hours(hours);
    add("phq-9", "baseline", before(week1, 72), baseline, 0);
    add(
        "gad-7",
        "baseline",
        before(week1, 72),
        baseline.saturating_sub(3),
        0,
    );
    add("semcd-6", "baseline", before(week1, 72), 4 + step, 0);
    for (week, start, occasions) in [(2, week2, 1), (3, week3, 2)] {
        let key = format!("check_in_week_{week}");
        add(
            "phq-2",
            &key,
            before(start, 24),
            later(occasions).min(18) / 3,
            0,
        );
        add(
            "gad-2",
            &key,
            before(start, 24),
            later(occasions).min(18) / 4,
            0,
        );
        add(
            "pain-rating",
            &key,
            before(start, 24),
            7_u8.saturating_sub(occasions),
            0,
        );
        add("fatigue-rating", &key, before(start, 24), 6, 0);
        add(
            "sleep-quality-rating",
            &key,
            before(start, 24),
            4 + occasions,
            0,
        );
    }
    let mid = week4 + SignedDuration::from_hours(26);
    let item9 = u8::from(index == 1);
    add("phq-9", "mid", mid, later(3), item9);
    add("gad-7", "mid", mid, later(3).saturating_sub(3), 0);
    planned
}

async fn store_response(
    store: &dyn Store,
    patient: &Patient,
    clinician: AccountId,
    planned: &Planned<'_>,
    number: usize,
) -> Result<(), AppError> {
    let entered_by = patient.account_id.unwrap_or(clinician);
    let instrument = planned.instrument;
    let answers = spread(instrument, planned.total, planned.item9);
    let scores = instrument.score(&answers);
    let trigger = safety::evaluate(instrument, &answers, &scores, &[]);
    let id = ResponseId::from_uuid(uuid::Uuid::now_v7());
    let alert = trigger.map(|trigger| NewAlert {
        id: AlertId::from_uuid(uuid::Uuid::now_v7()),
        patient: patient.id,
        site: patient.site_id,
        source: "response",
        level: trigger.level.max(AlertLevel::Low),
        rules: trigger.rules,
        raised_at: planned.at,
        deadline: planned.at + SignedDuration::from_mins(15),
    });
    let response = StoredResponse {
        id,
        client_id: format!("demo-{}-{number}", patient.id),
        patient: patient.id,
        instrument: instrument.id.to_string(),
        instrument_version: instrument.version,
        occasion: Some(planned.occasion.clone()),
        answers,
        language: patient.language.clone(),
        submitted_by: entered_by,
        submitted_at: planned.at,
        scores: scores
            .iter()
            .map(|score| StoredScore {
                scale: score.scale.clone(),
                raw: score.outcome.as_ref().ok().map(|s| s.raw),
                reported: score.outcome.as_ref().ok().map(|s| s.reported),
                band: score.outcome.as_ref().ok().and_then(|s| s.band.clone()),
                incomplete: score.outcome.as_ref().map_or(true, |s| s.incomplete),
                problem: score.outcome.as_ref().err().map(ToString::to_string),
            })
            .collect(),
        alert: alert.as_ref().map(|alert| alert.id),
    };
    match store
        // Like the rest of the demo seed, the synthetic history is data, not anyone's access,
        // so it is not audited.
        .submit_response(NewResponse {
            response,
            alert,
            audit: Vec::new(),
        })
        .await
    {
        Ok(_) => Ok(()),
        Err(StorageError::Conflict { constraint }) => Err(AppError::Internal(format!(
            "demo response conflicts with {constraint}"
        ))),
        Err(other) => Err(other.into()),
    }
}

/// Answers whose scored items add up to `total` (filled from the first item, each up to its
/// highest value), with PHQ-9 item 9 set to `item9`. A single-item scale gets `total` itself.
fn spread(instrument: &Instrument, total: u8, item9: u8) -> Answers {
    let mut left = total.saturating_sub(item9);
    let mut answers = Answers::new();
    for item in &instrument.items {
        let Some(set) = instrument.option_set(&item.options) else {
            continue;
        };
        let (Some(low), Some(high)) = (
            set.options.iter().map(|o| o.value).min(),
            set.options.iter().map(|o| o.value).max(),
        ) else {
            continue;
        };
        if !item.required || item.asked_if.is_some() {
            continue;
        }
        let value = if item.id == "9" && instrument.id.as_str() == "phq-9" {
            item9
        } else {
            let value = left.clamp(low, high);
            left = left.saturating_sub(value);
            value
        };
        answers.insert(item.id.clone(), value);
    }
    answers
}
