//! Planning reminders: a periodic pass, run by every server, queues the `notify` jobs of the
//! reminders due within the next hours. Each job's idempotency key names the reminder and the
//! person, so servers planning at once, or a pass run twice, queue each reminder once.
//!
//! Keys:
//! - `session_reminder:{session}:{start}:{lead minutes}:{account}`: a session moved to a new
//!   start gets new keys, and the old ones are cancelled.
//! - `practice_reminder:{account}:{local date}:{HHMM}`: a new practice time gets new keys, and
//!   the pending reminders of the old time are cancelled.
//! - `measure_due:{patient}:{occasion}` and `measure_overdue:{patient}:{occasion}`
//! - `session_changed:{session}:{sequence}:{account}` and `re_engagement:{patient}:{since}`

use jiff::{SignedDuration, Timestamp};
use stillpoint_domain::enrolment::EnrolmentState;
use stillpoint_domain::notify::MessageKind;
use stillpoint_domain::reminders::{
    self, LATE_GRACE, SESSION_REMINDER_MARGIN, SESSION_REMINDER_OFFSETS,
};
use stillpoint_domain::{Account, AccountId, CohortId, PatientId};

use crate::measures::MeasureLibrary;
use crate::notify::{self, Subject, notify_job, settings_of};
use crate::ports::{CohortSession, NewJob, SessionStatus, Store};
use crate::{AppError, Clock, StorageError};

/// How far ahead a planning pass looks. A pass runs every minute, so any horizon longer than
/// that works; a longer one lets reminders survive a planner that stops for a while.
pub const PLANNING_HORIZON: SignedDuration = SignedDuration::from_hours(2);

/// The counts of reminders one planning pass queued.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanReport {
    pub session_reminders: u64,
    pub practice_reminders: u64,
    pub measure_reminders: u64,
}

/// Queues the reminders due before `now + horizon` that are not queued yet.
pub async fn plan(
    store: &dyn Store,
    clock: &dyn Clock,
    library: &MeasureLibrary,
    horizon: SignedDuration,
) -> Result<PlanReport, AppError> {
    let now = clock.now();
    let until = now.checked_add(horizon).unwrap_or(now);
    let accounts = Accounts::load(store).await?;

    let mut jobs = Vec::new();
    for details in store.list_cohort_details().await? {
        for session in store.list_cohort_sessions(details.cohort.id).await? {
            jobs.extend(session_jobs(store, &accounts, &session, now, until).await?);
        }
    }
    let session_reminders = store.enqueue_many(&jobs, now).await?;

    let jobs = practice_jobs(store, &accounts, now, until).await?;
    let practice_reminders = store.enqueue_many(&jobs, now).await?;

    let jobs = measure_jobs(store, &accounts, library, now, until).await?;
    let measure_reminders = store.enqueue_many(&jobs, now).await?;

    let report = PlanReport {
        session_reminders,
        practice_reminders,
        measure_reminders,
    };
    if report != PlanReport::default() {
        tracing::info!(?report, "reminders planned");
    }
    Ok(report)
}

/// Every account and the deactivated ones, looked up once per pass.
struct Accounts {
    accounts: Vec<Account>,
    deactivated: Vec<AccountId>,
}

impl Accounts {
    async fn load(store: &dyn Store) -> Result<Self, StorageError> {
        Ok(Self {
            accounts: store.list_accounts().await?,
            deactivated: store.deactivated_accounts().await?,
        })
    }

    fn active(&self, id: AccountId) -> Option<&Account> {
        if self.deactivated.contains(&id) {
            return None;
        }
        self.accounts.iter().find(|account| account.id == id)
    }
}

/// Lists the accounts a session's messages go to: its facilitators, and the patients holding a
/// place in its cohort who have an account.
async fn session_recipients(
    store: &dyn Store,
    cohort: CohortId,
) -> Result<Vec<AccountId>, AppError> {
    let mut recipients: Vec<AccountId> = store
        .get_cohort_details(cohort)
        .await?
        .facilitators
        .into_iter()
        .map(|(account, _)| account)
        .collect();
    for entry in store.cohort_roster(cohort).await? {
        if !entry.state.holds_place() {
            continue;
        }
        if let Some(account) = store.get_patient(entry.patient).await?.account_id {
            recipients.push(account);
        }
    }
    recipients.sort_unstable();
    recipients.dedup();
    Ok(recipients)
}

async fn session_jobs(
    store: &dyn Store,
    accounts: &Accounts,
    session: &CohortSession,
    now: Timestamp,
    until: Timestamp,
) -> Result<Vec<NewJob>, AppError> {
    let start = session.planned.start;
    let earliest_lead = SESSION_REMINDER_OFFSETS
        .iter()
        .max()
        .copied()
        .unwrap_or_default();
    let first_due = start.checked_sub(earliest_lead).unwrap_or(start);
    if session.status != SessionStatus::Scheduled || start <= now || first_due > until {
        return Ok(Vec::new());
    }
    let mut jobs = Vec::new();
    for id in session_recipients(store, session.cohort).await? {
        let Some(account) = accounts.active(id) else {
            continue;
        };
        let settings = settings_of(store, id).await?;
        let zone = account.time_zone.time_zone();
        let planned = reminders::session_reminders(
            start,
            &SESSION_REMINDER_OFFSETS,
            now,
            &zone,
            settings.quiet_hours.as_ref(),
        );
        for reminder in planned.into_iter().filter(|reminder| reminder.due <= until) {
            let lead_minutes = reminder.lead.as_mins();
            let key = format!(
                "session_reminder:{}:{}:{lead_minutes}:{id}",
                session.id,
                start.as_millisecond()
            );
            let subject = Subject::Session {
                session: session.id,
                start,
                lead_minutes,
            };
            jobs.push(notify_job(
                MessageKind::SessionReminder,
                id,
                subject,
                key,
                reminder.due,
            )?);
        }
    }
    Ok(jobs)
}

/// Patients whose pathway puts them in a cohort's weeks of practice now.
fn practising(state: &EnrolmentState) -> bool {
    matches!(
        state,
        EnrolmentState::Enrolled { .. }
            | EnrolmentState::Active { .. }
            | EnrolmentState::Returned { .. }
    )
}

async fn practice_jobs(
    store: &dyn Store,
    accounts: &Accounts,
    now: Timestamp,
    until: Timestamp,
) -> Result<Vec<NewJob>, AppError> {
    let from = now.checked_sub(LATE_GRACE).unwrap_or(now);
    let mut jobs = Vec::new();
    for (id, settings) in store.practice_reminder_settings().await? {
        let (Some(account), Some(time)) = (accounts.active(id), settings.practice_time) else {
            continue;
        };
        let patient = match store.find_patient_for_account(id).await {
            Ok(patient) => patient,
            Err(StorageError::NotFound { .. }) => continue,
            Err(other) => return Err(other.into()),
        };
        if !practising(&crate::enrolment::current_state(store, patient.id).await?) {
            continue;
        }
        jobs.extend(practice_jobs_of(account, patient.id, time, from, until)?);
    }
    Ok(jobs)
}

/// Builds the daily practice reminders of one patient at local `time`, between `from` and
/// `until`.
pub fn practice_jobs_of(
    account: &Account,
    patient: PatientId,
    time: jiff::civil::Time,
    from: Timestamp,
    until: Timestamp,
) -> Result<Vec<NewJob>, AppError> {
    let zone = account.time_zone.time_zone();
    let mut jobs = Vec::new();
    // The patient chose the time, so quiet hours do not move it.
    for at in reminders::daily_times(time, &zone, from, until) {
        let date = at.to_zoned_datetime(zone.clone()).date();
        jobs.push(notify_job(
            MessageKind::PracticeReminder,
            account.id,
            Subject::Practice {
                patient,
                date,
                time,
            },
            format!(
                "practice_reminder:{}:{date}:{}",
                account.id,
                time.strftime("%H%M")
            ),
            at,
        )?);
    }
    Ok(jobs)
}

// NOTE: this works out every active patient's occasions on each pass, every minute; its cost
// with thousands of active patients has not been measured.
async fn measure_jobs(
    store: &dyn Store,
    accounts: &Accounts,
    library: &MeasureLibrary,
    now: Timestamp,
    until: Timestamp,
) -> Result<Vec<NewJob>, AppError> {
    let from = now.checked_sub(LATE_GRACE).unwrap_or(now);
    let mut jobs = Vec::new();
    for (patient_id, _, _) in store
        .enrolments_in_states(&["enrolled", "active", "returned"])
        .await?
    {
        let patient = store.get_patient(patient_id).await?;
        let Some(account) = patient.account_id.and_then(|id| accounts.active(id)) else {
            continue;
        };
        let settings = settings_of(store, account.id).await?;
        let zone = account.time_zone.time_zone();
        for due in crate::measures::occasions_of(store, library, now, patient_id).await? {
            for (overdue, at) in [(false, due.occasion.opens), (true, due.occasion.due)] {
                if at < from || at > until {
                    continue;
                }
                let kind = if overdue {
                    MessageKind::MeasureOverdue
                } else {
                    MessageKind::MeasureDue
                };
                let send_at =
                    reminders::occasion_reminder(at, &zone, settings.quiet_hours.as_ref());
                jobs.push(notify_job(
                    kind,
                    account.id,
                    Subject::Occasion {
                        patient: patient_id,
                        occasion: due.occasion.key.clone(),
                        overdue,
                    },
                    format!("{}:{patient_id}:{}", kind.code(), due.occasion.key),
                    send_at,
                )?);
            }
        }
    }
    Ok(jobs)
}

/// Handles a session that moved or was cancelled: cancels its pending reminders, queues a
/// notice to everyone in the cohort, and plans the reminders of its new start.
pub async fn session_changed(
    store: &dyn Store,
    clock: &dyn Clock,
    before: &CohortSession,
) -> Result<(), AppError> {
    let now = clock.now();
    let cancelled = store
        .cancel_queued_jobs_with_prefix(&format!("session_reminder:{}:", before.id), now)
        .await?;
    let after = store.get_cohort_session(before.id).await?;
    let (kind, subject) = change_notice(before, &after);
    // A notice about a moved session must arrive before the session, quiet hours or not.
    let latest = after
        .planned
        .start
        .checked_sub(SESSION_REMINDER_MARGIN)
        .ok()
        .filter(|_| after.status == SessionStatus::Scheduled);

    let accounts = Accounts::load(store).await?;
    let mut jobs = Vec::new();
    for id in session_recipients(store, after.cohort).await? {
        let Some(account) = accounts.active(id) else {
            continue;
        };
        let settings = settings_of(store, id).await?;
        let zone = account.time_zone.time_zone();
        let due = notify::send_time(&settings, kind, &zone, now, latest);
        jobs.push(notify_job(
            kind,
            id,
            subject.clone(),
            format!("session_changed:{}:{}:{id}", after.id, after.sequence),
            due,
        )?);
    }

    let until = now.checked_add(PLANNING_HORIZON).unwrap_or(now);
    jobs.extend(session_jobs(store, &accounts, &after, now, until).await?);
    let queued = store.enqueue_many(&jobs, now).await?;
    tracing::info!(session_id = %after.id, cancelled, queued, "session change notices queued");
    Ok(())
}

/// Builds the kind and subject of the notice about a session that was cancelled or moved.
fn change_notice(before: &CohortSession, after: &CohortSession) -> (MessageKind, Subject) {
    if after.status == SessionStatus::Cancelled {
        let subject = Subject::SessionCancelled {
            session: after.id,
            start: before.planned.start,
            sequence: after.sequence,
        };
        return (MessageKind::SessionCancelled, subject);
    }
    let subject = Subject::SessionRescheduled {
        session: after.id,
        previous_start: before.planned.start,
        start: after.planned.start,
        sequence: after.sequence,
    };
    (MessageKind::SessionRescheduled, subject)
}

/// Queues one gentle message inviting a patient back after they were marked lapsed.
pub async fn patient_lapsed(
    store: &dyn Store,
    now: Timestamp,
    patient: PatientId,
    since: Timestamp,
) -> Result<(), AppError> {
    let record = store.get_patient(patient).await?;
    let Some(account_id) = record.account_id else {
        return Ok(());
    };
    let account = store.get_account(account_id).await?;
    let settings = settings_of(store, account_id).await?;
    let zone = account.time_zone.time_zone();
    let due = notify::send_time(&settings, MessageKind::ReEngagement, &zone, now, None);
    let job = notify_job(
        MessageKind::ReEngagement,
        account_id,
        Subject::Lapse { patient, since },
        format!("re_engagement:{patient}:{}", since.as_millisecond()),
        due,
    )?;
    store.enqueue(&job, now).await?;
    Ok(())
}
