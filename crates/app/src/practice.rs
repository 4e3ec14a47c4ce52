//! A patient's home practice: the week's assignment with its recordings and prompts, the
//! practice diary, listening reports from the player, and adherence by program week.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use stillpoint_domain::audit::{AuditAction, AuditOutcome};
use stillpoint_domain::curriculum::{Curriculum, HomePractice};
use stillpoint_domain::practice::adherence::{self, PracticeWeek, Trend, WeekAdherence};
use stillpoint_domain::practice::listening::PlayedSpans;
use stillpoint_domain::practice::{
    self as rules, Adjustment, Assignment, DistressRating, EntryDraft, EntrySource, PracticeKind,
};
use stillpoint_domain::schedule::SessionKind;
use stillpoint_domain::{Account, InvalidValue, PatientId, PracticeEntryId, RecordingId};

use crate::audit::{self, AuditContext, AuditEntry};
use crate::ports::{CohortSession, EntryAdded, PracticeEntry, Recording, SessionStatus, Store};
use crate::program::{self, ProgramView};
use crate::{AppError, Clock, StorageError, patients};

/// How many days of diary the practice page lists.
pub const DIARY_DAYS: i64 = 28;

/// A patient's program weeks with the assignment of each, and the time zone their days are in.
#[derive(Debug, Clone)]
pub struct PracticePlan {
    pub weeks: Vec<PracticeWeek>,
    pub zone: TimeZone,
    pub adjustment: Adjustment,
}

impl PracticePlan {
    /// The week that contains `day`.
    #[must_use]
    pub fn week_on(&self, day: Date) -> Option<&PracticeWeek> {
        self.weeks
            .iter()
            .find(|week| week.starts <= day && day < week.ends)
    }

    /// The first day of the first week, from which diaries are read.
    #[must_use]
    pub fn first_day(&self) -> Option<Date> {
        self.weeks.first().map(|week| week.starts)
    }
}

/// Builds the program weeks of a patient's cohort with the patient's adjustment applied.
pub async fn plan_of(store: &dyn Store, view: &ProgramView) -> Result<PracticePlan, AppError> {
    let adjustment = store.practice_adjustment(view.patient).await?;
    let zone = view
        .cohort
        .as_ref()
        .map_or(TimeZone::UTC, |cohort| cohort.time_zone.time_zone());
    let since = adjustment_since(store, view.patient, &zone).await?;
    let weeks = view
        .curriculum
        .as_ref()
        .map_or_else(Vec::new, |curriculum| {
            weeks_of(curriculum, &view.sessions, &zone, (adjustment, since))
        });
    Ok(PracticePlan {
        weeks,
        zone,
        adjustment,
    })
}

/// Returns the day, in `zone`, from which the patient's adjustment applies.
pub async fn adjustment_since(
    store: &dyn Store,
    patient: PatientId,
    zone: &TimeZone,
) -> Result<Option<Date>, AppError> {
    Ok(store
        .practice_adjustment_since(patient)
        .await?
        .map(|since| since.to_zoned_datetime(zone.clone()).date()))
}

/// Builds the program weeks: each class that takes place starts a week lasting until the next
/// class, and the last one lasts seven days. The days are in `zone`, the cohort's. The adjustment applies from the week that
/// contains its day on, so weeks already over keep the assignment they had.
#[must_use]
pub fn weeks_of(
    curriculum: &Curriculum,
    sessions: &[CohortSession],
    zone: &TimeZone,
    (adjustment, since): (Adjustment, Option<Date>),
) -> Vec<PracticeWeek> {
    let classes: Vec<(u8, Date)> = sessions
        .iter()
        .filter(|session| session.status == SessionStatus::Scheduled)
        .filter_map(|session| match session.planned.kind {
            SessionKind::Class { week } => Some((
                week,
                session.planned.start.to_zoned_datetime(zone.clone()).date(),
            )),
            _ => None,
        })
        .collect();

    let mut weeks = Vec::new();
    for (index, (week, starts)) in classes.iter().enumerate() {
        let Some(home) = curriculum.home_practice(*week) else {
            continue;
        };
        let ends = classes
            .get(index + 1)
            .map(|(_, next)| *next)
            .filter(|next| next > starts)
            .unwrap_or_else(|| starts.saturating_add(jiff::Span::new().days(7)));
        // NOTE: only the latest acceptance's day is kept, so with two acceptances the weeks
        // between them show the curriculum's assignment rather than the first change.
        let applies = since.is_none_or(|since| ends > since);
        let in_force = if applies {
            adjustment
        } else {
            Adjustment::default()
        };
        weeks.push(PracticeWeek {
            assignment: Assignment::new(*week, home, in_force),
            starts: *starts,
            ends,
        });
    }
    weeks
}

/// The patient's practice page.
#[derive(Debug, Clone)]
pub struct PracticeHome {
    pub patient: PatientId,
    /// The patient's own date today.
    pub today: Date,
    pub assignment: Option<Assignment>,
    /// The curriculum's home practice for the week, for its prompts and informal practice.
    pub home: Option<HomePractice>,
    /// The cohort's curriculum, whose text the prompts are in.
    pub curriculum: Option<Curriculum>,
    /// Recordings that fit the assignment, in the patient's language where there are some.
    pub recordings: Vec<Recording>,
    /// The rest of the library, for practice beyond the assignment.
    pub other_recordings: Vec<Recording>,
    /// The last [`DIARY_DAYS`] days of diary, newest first.
    pub entries: Vec<PracticeEntry>,
    pub weeks: Vec<WeekAdherence>,
    pub trend: Trend,
}

/// Loads the signed-in patient's practice page; the read is audited.
pub async fn own_practice(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
) -> Result<PracticeHome, AppError> {
    let patient = own_patient(store, account).await?;
    let now = clock.now();
    let view = program::program_of(store, now, patient).await?;
    let plan = plan_of(store, &view).await?;
    let today = now.to_zoned_datetime(account.time_zone.time_zone()).date();

    let current = plan
        .week_on(today)
        .or_else(|| plan.weeks.iter().rev().find(|week| week.starts <= today));
    let assignment = current.map(|week| week.assignment.clone());
    let home = match (&view.curriculum, &assignment) {
        (Some(curriculum), Some(assignment)) => curriculum.home_practice(assignment.week).cloned(),
        _ => None,
    };
    let (recordings, other_recordings) = library_for(store, account, assignment.as_ref()).await?;

    let from = plan
        .first_day()
        .unwrap_or(today)
        .min(today.saturating_sub(jiff::Span::new().days(DIARY_DAYS)));
    let all_entries = store.practice_entries_of(patient, from).await?;
    let daily: Vec<(Date, u32)> = all_entries
        .iter()
        .map(|entry| (entry.practiced_on, entry.seconds))
        .collect();
    let weeks = adherence::weekly(&plan.weeks, &daily, today);
    let diary_from = today.saturating_sub(jiff::Span::new().days(DIARY_DAYS));
    let entries = all_entries
        .into_iter()
        .filter(|entry| entry.practiced_on > diary_from)
        .collect();

    audit_diary(store, clock, context, patient, None, AuditAction::Read).await?;
    Ok(PracticeHome {
        curriculum: view.curriculum,
        patient,
        today,
        trend: adherence::trend(&weeks),
        assignment,
        home,
        recordings,
        other_recordings,
        entries,
        weeks,
    })
}

/// Splits the active library into recordings that fit `assignment` and the rest. Recordings in
/// the account's language come first; other languages are offered only for practices that
/// have none in it.
async fn library_for(
    store: &dyn Store,
    account: &Account,
    assignment: Option<&Assignment>,
) -> Result<(Vec<Recording>, Vec<Recording>), AppError> {
    let active: Vec<Recording> = store
        .list_recordings()
        .await?
        .into_iter()
        .filter(|recording| recording.retired_at.is_none())
        .collect();
    let language = account.language.primary().to_owned();
    let in_language = |recording: &Recording| recording.language.primary() == language;
    let has_own_language = |recording: &Recording| {
        active
            .iter()
            .any(|other| other.practice == recording.practice && in_language(other))
    };
    let offered: Vec<Recording> = active
        .iter()
        .filter(|recording| in_language(recording) || !has_own_language(recording))
        .cloned()
        .collect();
    Ok(offered.into_iter().partition(|recording| {
        assignment
            .is_some_and(|assignment| assignment.suits(recording.practice, recording.minutes()))
    }))
}

async fn own_patient(store: &dyn Store, account: &Account) -> Result<PatientId, AppError> {
    patients::own_record_id(store, account)
        .await?
        .ok_or(AppError::Forbidden)
}

pub(crate) async fn audit_diary(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    patient: PatientId,
    entry: Option<PracticeEntryId>,
    action: AuditAction,
) -> Result<(), AppError> {
    audit::record(
        store,
        clock,
        context,
        AuditEntry {
            patient: Some(patient),
            resource_type: "PracticeDiary",
            resource_id: entry.map(|id| id.to_string()),
            action,
            outcome: AuditOutcome::Success,
            break_glass: false,
        },
    )
    .await?;
    Ok(())
}

/// A diary entry as typed into the form or sent by the timer; every field is text as
/// submitted, so the checks can name the field.
#[derive(Debug, Clone, Default)]
pub struct EntryInput {
    /// The browser's id for the entry; the server makes one when it is missing.
    pub id: Option<String>,
    pub practiced_on: String,
    pub practice: String,
    /// Minutes for an entry typed in.
    pub minutes: String,
    /// Seconds measured by the timer.
    pub seconds: String,
    /// When the timer started, in milliseconds since the Unix epoch; the entry is dated from it
    /// in the patient's own zone rather than by the device's calendar.
    pub started_at: String,
    pub timer: bool,
    pub distress_before: String,
    pub distress_after: String,
    pub noticed: String,
    pub shared: bool,
}

/// The outcome of adding an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryRecorded {
    Added(PracticeEntryId),
    /// The entry was stored before (an offline entry sent twice); nothing changed.
    AlreadyThere(PracticeEntryId),
}

fn parse_date(text: &str) -> Result<Date, InvalidValue> {
    text.trim().parse::<Date>().map_err(|_| {
        InvalidValue::new(
            "practiced_on",
            format!(
                "'{}' is not a date; choose the day you practised",
                text.trim()
            ),
        )
    })
}

fn parse_seconds(input: &EntryInput) -> Result<u32, InvalidValue> {
    if input.timer {
        let text = input.seconds.trim();
        return text.parse::<u32>().map_err(|_| {
            InvalidValue::new(
                "seconds",
                format!("'{text}' is not a number of seconds; the timer sends whole seconds"),
            )
        });
    }
    let text = input.minutes.trim();
    let minutes: u32 = text.parse().map_err(|_| {
        InvalidValue::new(
            "minutes",
            format!("'{text}' is not a number of minutes; enter a whole number from 1 to 1440"),
        )
    })?;
    Ok(minutes.saturating_mul(60))
}

fn parse_id(text: Option<&str>) -> Result<PracticeEntryId, InvalidValue> {
    match text.map(str::trim).filter(|text| !text.is_empty()) {
        None => Ok(PracticeEntryId::from_uuid(crate::random::new_uuid())),
        Some(text) => text.parse().map_err(|_| {
            InvalidValue::new(
                "entry_id",
                format!("'{text}' is not an entry id; send a UUID"),
            )
        }),
    }
}

fn draft_of(input: &EntryInput) -> Result<EntryDraft, InvalidValue> {
    Ok(EntryDraft {
        practiced_on: parse_date(&input.practiced_on)?,
        kind: PracticeKind::parse(input.practice.trim())?,
        seconds: parse_seconds(input)?,
        distress_before: DistressRating::parse_optional("distress_before", &input.distress_before)?,
        distress_after: DistressRating::parse_optional("distress_after", &input.distress_after)?,
        noticed: input.noticed.trim().to_owned(),
        shared: input.shared,
    })
}

/// Sums the seconds already in the patient's diary on `day`, leaving out `except`.
async fn seconds_on(
    store: &dyn Store,
    patient: PatientId,
    day: Date,
    except: Option<PracticeEntryId>,
) -> Result<u32, AppError> {
    let entries = store.practice_entries_of(patient, day).await?;
    Ok(entries
        .iter()
        .filter(|entry| entry.practiced_on == day && Some(entry.id) != except)
        .map(|entry| entry.seconds)
        .sum())
}

/// Adds an entry to the signed-in patient's diary. An entry whose id is stored already is not
/// added again, so the timer's offline queue can resend safely.
pub async fn record_entry(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
    input: &EntryInput,
) -> Result<EntryRecorded, AppError> {
    let patient = own_patient(store, account).await?;
    let id = parse_id(input.id.as_deref())?;
    if let Some(existing) = find_entry(store, id).await? {
        return if existing.patient == patient {
            Ok(EntryRecorded::AlreadyThere(id))
        } else {
            Err(InvalidValue::new(
                "entry_id",
                "this entry id is taken; send the entry with a new id",
            )
            .into())
        };
    }

    let now = clock.now();
    let zone = account.time_zone.time_zone();
    let mut draft = draft_of(input)?;
    if let Some(started) = started_at(&input.started_at, now)? {
        draft.practiced_on = started.to_zoned_datetime(zone.clone()).date();
    }
    let today = now.to_zoned_datetime(zone).date();
    let others = seconds_on(store, patient, draft.practiced_on, None).await?;
    rules::check_entry(&draft, today, others)?;

    let entry = PracticeEntry {
        id,
        patient,
        practiced_on: draft.practiced_on,
        kind: draft.kind,
        source: if input.timer {
            EntrySource::Timer
        } else {
            EntrySource::Manual
        },
        recording: None,
        seconds: draft.seconds,
        segments: None,
        distress_before: draft.distress_before,
        distress_after: draft.distress_after,
        noticed: draft.noticed,
        shared: draft.shared,
        created_at: now,
        updated_at: now,
    };
    match store.add_practice_entry(&entry).await? {
        EntryAdded::Added => {
            audit_diary(
                store,
                clock,
                context,
                patient,
                Some(id),
                AuditAction::Create,
            )
            .await?;
            tracing::info!(entry_id = %id, source = entry.source.code(), "practice entry recorded");
            Ok(EntryRecorded::Added(id))
        }
        EntryAdded::AlreadyThere(existing) if existing.patient == patient => {
            Ok(EntryRecorded::AlreadyThere(id))
        }
        EntryAdded::AlreadyThere(_) => Err(InvalidValue::new(
            "entry_id",
            "this entry id is taken; send the entry with a new id",
        )
        .into()),
    }
}

/// How far ahead of the server a device's clock may run before its times count as invalid.
const CLOCK_SKEW: jiff::SignedDuration = jiff::SignedDuration::from_mins(5);

/// Reads a device's start time in milliseconds since the Unix epoch; empty means none.
fn started_at(text: &str, now: Timestamp) -> Result<Option<Timestamp>, InvalidValue> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let invalid = |problem: &str| InvalidValue::new("started_at", format!("'{text}' {problem}"));
    let millis: i64 = text
        .parse()
        .map_err(|_| invalid("is not a time; send milliseconds since 1970-01-01 UTC"))?;
    let started =
        Timestamp::from_millisecond(millis).map_err(|_| invalid("is not a time in range"))?;
    if started > now + CLOCK_SKEW {
        return Err(invalid(
            "is in the future; check the clock of the device the practice was timed on",
        ));
    }
    Ok(Some(started))
}

async fn find_entry(
    store: &dyn Store,
    id: PracticeEntryId,
) -> Result<Option<PracticeEntry>, AppError> {
    match store.get_practice_entry(id).await {
        Ok(entry) => Ok(Some(entry)),
        Err(StorageError::NotFound { .. }) => Ok(None),
        Err(other) => Err(other.into()),
    }
}

/// Records what the player reports for one visit to a recording (`listen_id`): the played
/// intervals are merged with those stored for the visit, and the entry's time is their union.
/// Returns the seconds credited so far.
pub async fn record_listening(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
    listen_id: &str,
    recording: RecordingId,
    (segments, started): (&str, &str),
) -> Result<u32, AppError> {
    let patient = own_patient(store, account).await?;
    let id: PracticeEntryId = listen_id.trim().parse().map_err(|_| {
        InvalidValue::new(
            "listen_id",
            format!("'{listen_id}' is not a listening id; send a UUID"),
        )
    })?;
    let recording = match store.get_recording(recording).await {
        Ok(recording) => recording,
        Err(StorageError::NotFound { .. }) => {
            return Err(
                InvalidValue::new("recording_id", "the recording is not in the library").into(),
            );
        }
        Err(other) => return Err(other.into()),
    };
    let duration = recording.duration_seconds();
    // NOTE: listening time is capped by the recording's length but not checked against the
    // day's 1440 minutes, as typed and timer entries are.
    let reported = PlayedSpans::parse(segments, duration)?;

    // Two reports of one visit may race (a beacon and a regular report); the update is
    // guarded by the row's last change, so the loser merges again.
    for _ in 0..3 {
        let now = clock.now();
        let Some(mut entry) = find_entry(store, id).await? else {
            // A report sent late, after the device was offline, is dated from when the visit
            // began, but never more than two days back.
            let began = started_at(started, now)?
                .unwrap_or(now)
                .max(now - jiff::SignedDuration::from_hours(48));
            let entry = listening_entry(id, patient, &recording, &reported, account, (began, now));
            if store.add_practice_entry(&entry).await? == EntryAdded::Added {
                audit_diary(
                    store,
                    clock,
                    context,
                    patient,
                    Some(id),
                    AuditAction::Create,
                )
                .await?;
                return Ok(entry.seconds);
            }
            continue;
        };
        if entry.patient != patient || entry.recording != Some(recording.id) {
            return Err(InvalidValue::new(
                "listen_id",
                "this listening id belongs to another recording; reload the page",
            )
            .into());
        }
        let stored = PlayedSpans::parse(entry.segments.as_deref().unwrap_or_default(), duration)
            .map_err(|error| {
                AppError::Internal(format!("stored segments of {id} are invalid: {error}"))
            })?;
        let merged = stored.union(&reported);
        let seconds = merged.credited_seconds(duration);
        if seconds == entry.seconds {
            return Ok(seconds);
        }
        let expected = entry.updated_at;
        entry.seconds = seconds;
        entry.segments = Some(merged.to_text());
        entry.updated_at = now.max(expected + jiff::SignedDuration::from_millis(1));
        match store.update_practice_entry(&entry, expected).await {
            Ok(()) => return Ok(seconds),
            Err(StorageError::Conflict { .. }) => {}
            Err(other) => return Err(other.into()),
        }
    }
    Err(AppError::Internal(format!(
        "listening report for {id} kept conflicting with another report"
    )))
}

fn listening_entry(
    id: PracticeEntryId,
    patient: PatientId,
    recording: &Recording,
    spans: &PlayedSpans,
    account: &Account,
    (began, now): (Timestamp, Timestamp),
) -> PracticeEntry {
    PracticeEntry {
        id,
        patient,
        practiced_on: began
            .to_zoned_datetime(account.time_zone.time_zone())
            .date(),
        kind: PracticeKind::Formal(recording.practice),
        source: EntrySource::Recording,
        recording: Some(recording.id),
        seconds: spans.credited_seconds(recording.duration_seconds()),
        segments: Some(spans.to_text()),
        distress_before: None,
        distress_after: None,
        noticed: String::new(),
        shared: false,
        created_at: now,
        updated_at: now,
    }
}

/// Loads one of the signed-in patient's own entries.
pub async fn own_entry(
    store: &dyn Store,
    account: &Account,
    id: PracticeEntryId,
) -> Result<PracticeEntry, AppError> {
    let patient = own_patient(store, account).await?;
    match find_entry(store, id).await? {
        Some(entry) if entry.patient == patient => Ok(entry),
        // Another patient's entry is reported as missing, so ids reveal nothing.
        _ => Err(StorageError::NotFound {
            entity: "practice entry",
            id: id.to_string(),
        }
        .into()),
    }
}

/// Opens one of the signed-in patient's own entries for reading; the read is audited.
pub async fn open_own_entry(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
    id: PracticeEntryId,
) -> Result<PracticeEntry, AppError> {
    let entry = own_entry(store, account, id).await?;
    audit_diary(
        store,
        clock,
        context,
        entry.patient,
        Some(id),
        AuditAction::Read,
    )
    .await?;
    Ok(entry)
}

/// Changes one of the patient's own entries. The time of an entry measured by the player or the
/// timer stays as measured; its date, ratings, note and sharing can change.
pub async fn update_entry(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
    id: PracticeEntryId,
    input: &EntryInput,
) -> Result<(), AppError> {
    let mut entry = own_entry(store, account, id).await?;
    let mut input = input.clone();
    if entry.source != EntrySource::Manual {
        input.timer = true;
        input.seconds = entry.seconds.to_string();
        entry.kind.code().clone_into(&mut input.practice);
    }
    let draft = draft_of(&input)?;
    let now = clock.now();
    let today = now.to_zoned_datetime(account.time_zone.time_zone()).date();
    let others = seconds_on(store, entry.patient, draft.practiced_on, Some(id)).await?;
    rules::check_entry(&draft, today, others)?;

    let expected = entry.updated_at;
    entry.practiced_on = draft.practiced_on;
    entry.kind = draft.kind;
    entry.seconds = draft.seconds;
    entry.distress_before = draft.distress_before;
    entry.distress_after = draft.distress_after;
    entry.noticed = draft.noticed;
    entry.shared = draft.shared;
    entry.updated_at = now.max(expected + jiff::SignedDuration::from_millis(1));
    store.update_practice_entry(&entry, expected).await?;
    audit_diary(
        store,
        clock,
        context,
        entry.patient,
        Some(id),
        AuditAction::Update,
    )
    .await
}

/// Deletes one of the patient's own entries.
pub async fn delete_entry(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
    id: PracticeEntryId,
) -> Result<(), AppError> {
    let entry = own_entry(store, account, id).await?;
    store.delete_practice_entry(entry.patient, id).await?;
    audit_diary(
        store,
        clock,
        context,
        entry.patient,
        Some(id),
        AuditAction::Delete,
    )
    .await
}

/// A patient's practice per program week, with the zone the weeks' days are in.
#[derive(Debug, Clone)]
pub struct PracticeDose {
    pub weeks: Vec<WeekAdherence>,
    pub zone: TimeZone,
}

/// Practice minutes per program week of `patient`, for the care team's timeline.
pub async fn dose_of(
    store: &dyn Store,
    now: Timestamp,
    view: &ProgramView,
) -> Result<PracticeDose, AppError> {
    let plan = plan_of(store, view).await?;
    let Some(first) = plan.first_day() else {
        return Ok(PracticeDose {
            weeks: Vec::new(),
            zone: plan.zone,
        });
    };
    let daily: Vec<(Date, u32)> = store
        .practice_days_of(&[view.patient], first)
        .await?
        .into_iter()
        .map(|(_, day, seconds)| (day, seconds))
        .collect();
    let today = now.to_zoned_datetime(plan.zone.clone()).date();
    Ok(PracticeDose {
        weeks: adherence::weekly(&plan.weeks, &daily, today),
        zone: plan.zone,
    })
}
