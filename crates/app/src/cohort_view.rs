//! Staff views and actions on a cohort: its sessions with their plans, roster, roll call,
//! attendance rates, and rescheduling or cancelling a session.

use jiff::civil::DateTime;
use stillpoint_domain::attendance::{AttendanceMark, AttendanceRecord, AttendanceSummary, Makeup};
use stillpoint_domain::audit::{AuditAction, AuditOutcome};
use stillpoint_domain::curriculum::Curriculum;
use stillpoint_domain::schedule;
use stillpoint_domain::{Account, CohortId, CohortSessionId, InvalidValue, PatientId, Role};

use crate::audit::{self, AuditContext, AuditEntry};
use crate::ports::{
    AttendanceEntry, CohortDetails, CohortSession, RosterEntry, SessionChange, SessionChangeRecord,
    SessionStatus, Store,
};
use crate::{AppError, Clock, StorageError};

/// The permissions an account has on a cohort.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)] // Independent permissions, each granted or not.
pub struct CohortAccess {
    /// Reads the roster and attendance (patients' names): the site's program administrators and
    /// clinicians and the cohort's facilitators. A system administrator gets the schedule only.
    pub roster: bool,
    /// Sees the waiting list on the roster: the site's program administrators and clinicians.
    /// Facilitators see the patients who hold a place, who are in their care team.
    pub waitlist: bool,
    /// Reschedules or cancels sessions: the site's program administrators, system
    /// administrators and the cohort's facilitators.
    pub change_sessions: bool,
    /// Takes roll: the cohort's facilitators and the site's program administrators.
    pub take_roll: bool,
}

/// Returns what `account` may do with the cohort, or `None` when it may not see it.
#[must_use]
pub fn access(account: &Account, details: &CohortDetails) -> Option<CohortAccess> {
    let site = details.cohort.site_id;
    let holds_at_site = |role: Role| {
        account
            .roles
            .iter()
            .any(|held| held.role == role && held.site_id == Some(site))
    };
    let program_admin = holds_at_site(Role::ProgramAdministrator);
    let clinician = holds_at_site(Role::Clinician);
    // Listed as a facilitator, and still holding the role at the site: removing the role ends
    // the access at once.
    let facilitator = holds_at_site(Role::Facilitator)
        && details
            .facilitators
            .iter()
            .any(|(facilitator, _)| *facilitator == account.id);
    let system_admin = account.has_role(Role::SystemAdministrator);
    if !(program_admin || clinician || facilitator || system_admin) {
        return None;
    }
    Some(CohortAccess {
        roster: program_admin || clinician || facilitator,
        waitlist: program_admin || clinician,
        change_sessions: program_admin || system_admin || facilitator,
        take_roll: program_admin || facilitator,
    })
}

/// Lists the cohorts `account` may see, by name.
pub async fn list_visible(
    store: &dyn Store,
    account: &Account,
) -> Result<Vec<CohortDetails>, AppError> {
    Ok(store
        .list_cohort_details()
        .await?
        .into_iter()
        .filter(|details| access(account, details).is_some())
        .collect())
}

/// One patient's line on the cohort page.
#[derive(Debug, Clone)]
pub struct RosterLine {
    pub entry: RosterEntry,
    pub attendance: AttendanceSummary,
}

/// A cohort as its page shows it.
#[derive(Debug, Clone)]
pub struct CohortView {
    pub details: CohortDetails,
    pub access: CohortAccess,
    pub curriculum: Option<Curriculum>,
    pub sessions: Vec<CohortSession>,
    /// Empty unless `access.roster`.
    pub roster: Vec<RosterLine>,
    /// Attendance over every patient holding a place and every held session.
    pub cohort_attendance: AttendanceSummary,
    pub changes: Vec<SessionChangeRecord>,
}

/// Loads the cohort for `account`, auditing the roster read.
pub async fn view(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
    cohort: CohortId,
) -> Result<CohortView, AppError> {
    let details = store.get_cohort_details(cohort).await?;
    let Some(access) = access(account, &details) else {
        audit_group(
            store,
            clock,
            context,
            cohort,
            AuditAction::Read,
            AuditOutcome::Denied,
        )
        .await?;
        return Err(AppError::Forbidden);
    };
    let curriculum = match &details.curriculum {
        Some((id, version)) => Some(store.get_curriculum_version(id, *version).await?.curriculum),
        None => None,
    };
    let sessions = store.list_cohort_sessions(cohort).await?;
    let now = clock.now();
    let held: Vec<&CohortSession> = sessions
        .iter()
        .filter(|session| {
            session.status == SessionStatus::Scheduled && session.planned.start <= now
        })
        .collect();
    let held_count = u32::try_from(held.len()).unwrap_or(u32::MAX);

    let mut roster = Vec::new();
    let mut all_records = Vec::new();
    let mut places = 0_u32;
    if access.roster {
        let attendance = store.cohort_attendance(cohort).await?;
        for entry in store.cohort_roster(cohort).await? {
            if entry.state.code() == "waitlisted" && !access.waitlist {
                continue;
            }
            let records: Vec<AttendanceRecord> = attendance
                .iter()
                .filter(|mark| {
                    mark.patient == entry.patient
                        && held.iter().any(|session| session.id == mark.session)
                })
                .map(|mark| mark.record.clone())
                .collect();
            if entry.state.takes_part() {
                places += 1;
                all_records.extend(records.iter().cloned());
            }
            roster.push(RosterLine {
                attendance: AttendanceSummary::of(held_count, &records),
                entry,
            });
        }
        audit_group(
            store,
            clock,
            context,
            cohort,
            AuditAction::Read,
            AuditOutcome::Success,
        )
        .await?;
    }
    Ok(CohortView {
        cohort_attendance: AttendanceSummary::of(held_count * places, &all_records),
        changes: store.list_session_changes(cohort).await?,
        details,
        access,
        curriculum,
        sessions,
        roster,
    })
}

/// One patient's roll call line as the facilitator entered it.
#[derive(Debug, Clone)]
pub struct RollCallInput {
    pub patient: PatientId,
    /// A mark code such as `present`; see [`AttendanceMark::parse`].
    pub mark: String,
    /// The minutes attended; empty means the whole session when present, 0 when absent.
    pub minutes: String,
    /// `recording`, `other_cohort`, or empty for no makeup.
    pub makeup: String,
}

/// Stores the roll call of one session for the cohort's facilitators or program administrators.
/// Every patient must take part in the cohort; a problem names the patient.
pub async fn take_roll(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
    session_id: CohortSessionId,
    lines: Vec<RollCallInput>,
) -> Result<(), AppError> {
    let session = store.get_cohort_session(session_id).await?;
    let details = store.get_cohort_details(session.cohort).await?;
    let access = access(account, &details).ok_or(AppError::Forbidden)?;
    if !access.take_roll {
        return Err(AppError::Forbidden);
    }
    if session.status == SessionStatus::Cancelled {
        return Err(InvalidValue::new(
            "session",
            "this session was cancelled, so it has no roll call",
        )
        .into());
    }
    if session.planned.start > clock.now() {
        return Err(InvalidValue::new(
            "session",
            "this session has not started yet; take roll once it has begun",
        )
        .into());
    }
    let session_minutes = u32::try_from(
        session
            .planned
            .end
            .duration_since(session.planned.start)
            .as_mins(),
    )
    .unwrap_or(0);
    let roster = store.cohort_roster(session.cohort).await?;

    let mut entries = Vec::with_capacity(lines.len());
    for line in &lines {
        let Some(entry) = roster
            .iter()
            .find(|entry| entry.patient == line.patient && entry.state.takes_part())
        else {
            return Err(InvalidValue::new(
                "patient_id",
                format!("patient {} does not take part in this cohort", line.patient),
            )
            .into());
        };
        let record = roll_call_record(line, session_minutes).map_err(|invalid| {
            InvalidValue::new(
                invalid.field,
                format!(
                    "{} {}: {}",
                    entry.given_name, entry.family_name, invalid.problem
                ),
            )
        })?;
        entries.push(AttendanceEntry {
            session: session_id,
            patient: line.patient,
            record,
        });
    }
    store
        .put_attendance(&entries, account.id, clock.now())
        .await?;
    for entry in &entries {
        let audit_entry = AuditEntry {
            patient: Some(entry.patient),
            resource_type: "Encounter",
            resource_id: Some(session_id.to_string()),
            action: AuditAction::Update,
            outcome: AuditOutcome::Success,
            break_glass: false,
        };
        audit::record(store, clock, context, audit_entry).await?;
    }
    tracing::info!(session_id = %session_id, marks = entries.len(), "roll call stored");
    Ok(())
}

/// Reads one roll call line. A late arrival or an early leave needs its minutes.
fn roll_call_record(
    line: &RollCallInput,
    session_minutes: u32,
) -> Result<AttendanceRecord, InvalidValue> {
    let mark = AttendanceMark::parse(line.mark.trim())?;
    let minutes = match (line.minutes.trim(), mark) {
        ("", AttendanceMark::Present) => session_minutes,
        ("", AttendanceMark::Absent | AttendanceMark::Excused) => 0,
        ("", _) => {
            return Err(InvalidValue::new(
                "minutes_attended",
                "enter the minutes attended for a late arrival or an early leave",
            ));
        }
        (text, _) => text.parse().map_err(|_| {
            InvalidValue::new(
                "minutes_attended",
                format!("'{text}' is not a number of minutes; enter a whole number"),
            )
        })?,
    };
    let makeup = match line.makeup.trim() {
        "" => None,
        code => Some(Makeup::parse(code)?),
    };
    AttendanceRecord::new(mark, minutes, session_minutes, makeup)
}

/// Changes the cohort's capacity for its site's program administrators (or a system
/// administrator). The capacity cannot go below the places already taken.
pub async fn change_capacity(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
    cohort: CohortId,
    capacity: u32,
) -> Result<(), AppError> {
    let details = store.get_cohort_details(cohort).await?;
    let manages = account.has_role(Role::SystemAdministrator)
        || account.roles.iter().any(|held| {
            held.role == Role::ProgramAdministrator && held.site_id == Some(details.cohort.site_id)
        });
    if !manages {
        return Err(AppError::Forbidden);
    }
    if capacity == 0 || capacity > crate::cohorts::MAX_CAPACITY {
        return Err(InvalidValue::new(
            "capacity",
            format!(
                "{capacity} is outside 1 to {}; choose a group size in that range",
                crate::cohorts::MAX_CAPACITY
            ),
        )
        .into());
    }
    if !store.set_cohort_capacity(cohort, capacity).await? {
        let taken = store.count_places_taken(cohort).await?;
        return Err(InvalidValue::new(
            "capacity",
            format!(
                "{taken} patients hold a place, more than {capacity}; choose at least {taken}, or withdraw patients first"
            ),
        )
        .into());
    }
    audit_group(
        store,
        clock,
        context,
        cohort,
        AuditAction::Update,
        AuditOutcome::Success,
    )
    .await
}

/// The smallest reason a reschedule or cancellation must give, in characters.
pub const MIN_REASON_CHARS: usize = 5;

/// Moves a session to a new local start in the cohort's time zone, recording who and why.
pub async fn reschedule(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
    session_id: CohortSessionId,
    new_local_start: DateTime,
    reason: &str,
) -> Result<CohortSession, AppError> {
    let (session, details) = changeable_session(store, account, session_id, clock.now()).await?;
    let reason = checked_reason(reason)?;
    let others: Vec<_> = store
        .list_cohort_sessions(session.cohort)
        .await?
        .into_iter()
        .filter(|other| other.id != session_id && other.status == SessionStatus::Scheduled)
        .map(|other| other.planned)
        .collect();
    let moved = schedule::reschedule(
        &session.planned,
        &details.time_zone,
        new_local_start,
        &others,
        clock.now(),
    )?;
    apply_change(
        store,
        clock,
        context,
        account,
        &session,
        Some(moved),
        reason,
    )
    .await?;
    tell_participants(store, clock, &session).await;
    Ok(store.get_cohort_session(session_id).await?)
}

/// Cancels a session, recording who and why. A cancelled session stays in the calendar feed as
/// cancelled.
pub async fn cancel(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
    session_id: CohortSessionId,
    reason: &str,
) -> Result<(), AppError> {
    let (session, _) = changeable_session(store, account, session_id, clock.now()).await?;
    let reason = checked_reason(reason)?;
    apply_change(store, clock, context, account, &session, None, reason).await?;
    tell_participants(store, clock, &session).await;
    Ok(())
}

/// Queues the change notices and replaces the pending reminders of a changed session. The
/// change is stored already, so a failure here is logged, not returned. Stale reminders are
/// skipped anyway, because each checks the session's start when it runs.
// NOTE: the notices are queued after the change commits, not in its transaction, so a
// database failure between the two loses them (the error is logged).
async fn tell_participants(store: &dyn Store, clock: &dyn Clock, before: &CohortSession) {
    if let Err(error) = crate::reminders::session_changed(store, clock, before).await {
        tracing::error!(session_id = %before.id, error = %error, "cannot queue the session change notices");
    }
}

async fn changeable_session(
    store: &dyn Store,
    account: &Account,
    session_id: CohortSessionId,
    now: jiff::Timestamp,
) -> Result<(CohortSession, CohortDetails), AppError> {
    let session = store.get_cohort_session(session_id).await?;
    let details = store.get_cohort_details(session.cohort).await?;
    let access = access(account, &details).ok_or(AppError::Forbidden)?;
    if !access.change_sessions {
        return Err(AppError::Forbidden);
    }
    if session.status == SessionStatus::Cancelled {
        return Err(InvalidValue::new(
            "session",
            "this session is cancelled already; reschedule another one",
        )
        .into());
    }
    if session.planned.start <= now {
        return Err(InvalidValue::new(
            "session",
            "this session has started or taken place, so its time and roll call stay as they are",
        )
        .into());
    }
    Ok((session, details))
}

fn checked_reason(reason: &str) -> Result<String, InvalidValue> {
    let reason = reason.trim();
    if reason.chars().count() < MIN_REASON_CHARS {
        return Err(InvalidValue::new(
            "reason",
            format!(
                "give the reason in at least {MIN_REASON_CHARS} characters, so participants and colleagues understand the change"
            ),
        ));
    }
    if reason.chars().count() > 500 {
        return Err(InvalidValue::new(
            "reason",
            "shorten the reason to 500 characters",
        ));
    }
    Ok(reason.to_owned())
}

async fn apply_change(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
    session: &CohortSession,
    new_plan: Option<schedule::PlannedSession>,
    reason: String,
) -> Result<(), AppError> {
    let cancelled = new_plan.is_none();
    store
        .change_cohort_session(&SessionChange {
            session: session.id,
            expected_sequence: session.sequence,
            new_plan,
            reason,
            actor: account.id,
            at: clock.now(),
        })
        .await
        .map_err(|error| match error {
            StorageError::Conflict { constraint } if constraint == "cohort_sessions_changed" => {
                AppError::from(InvalidValue::new(
                    "session",
                    "someone else changed this session a moment ago; reload the page and try again",
                ))
            }
            other => other.into(),
        })?;
    let entry = AuditEntry {
        patient: None,
        resource_type: "Appointment",
        resource_id: Some(session.id.to_string()),
        action: AuditAction::Update,
        outcome: AuditOutcome::Success,
        break_glass: false,
    };
    audit::record(store, clock, context, entry).await?;
    tracing::info!(session_id = %session.id, cancelled, "cohort session changed");
    Ok(())
}

async fn audit_group(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    cohort: CohortId,
    action: AuditAction,
    outcome: AuditOutcome,
) -> Result<(), AppError> {
    let entry = AuditEntry {
        patient: None,
        resource_type: "Group",
        resource_id: Some(cohort.to_string()),
        action,
        outcome,
        break_glass: false,
    };
    audit::record(store, clock, context, entry).await?;
    Ok(())
}
