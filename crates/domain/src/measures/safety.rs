//! Safety rules over responses, the lifecycle of a safety alert, and its acknowledgement
//! deadline.
//!
//! A rule is data in the instrument's document (PHQ-9 item 9 above 0; the C-SSRS screener's
//! triage levels) or a site's setting (a very high total). A response that fires any rule
//! raises one alert at the highest level that fired. The storage layer writes the alert in the
//! same transaction as the response.

use jiff::civil::{Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

use super::instrument::{Answers, Instrument, ScaleScore, Source};
use crate::InvalidValue;

/// The urgency of an alert. Every level needs acknowledgement by the care team; the level
/// orders the inbox and is shown with the alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertLevel {
    Low,
    Moderate,
    High,
}

impl AlertLevel {
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Moderate => "moderate",
            Self::High => "high",
        }
    }

    pub fn parse(code: &str) -> Result<Self, InvalidValue> {
        match code {
            "low" => Ok(Self::Low),
            "moderate" => Ok(Self::Moderate),
            "high" => Ok(Self::High),
            other => Err(InvalidValue::new(
                "level",
                format!("'{other}' is not an alert level; use low, moderate or high"),
            )),
        }
    }
}

/// One condition of a rule: an item's answer at or above a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemAtLeast {
    pub item: String,
    pub at_least: u8,
}

/// A safety rule from an instrument's document. It fires when every condition in `all_of`
/// holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SafetyRule {
    /// A stable code, such as `phq9_item9`, shown to staff and translated for them.
    pub code: String,
    pub level: AlertLevel,
    pub all_of: Vec<ItemAtLeast>,
    pub source: Source,
}

impl SafetyRule {
    pub(crate) fn validate(&self, instrument: &Instrument) -> Result<(), InvalidValue> {
        if self.all_of.is_empty() {
            return Err(InvalidValue::new(
                "safety",
                format!("rule '{}' needs at least one condition", self.code),
            ));
        }
        if let Some(unknown) = self
            .all_of
            .iter()
            .find(|condition| instrument.item(&condition.item).is_none())
        {
            return Err(InvalidValue::new(
                "safety",
                format!(
                    "rule '{}' names the unknown item '{}'",
                    self.code, unknown.item
                ),
            ));
        }
        Ok(())
    }

    fn fires(&self, answers: &Answers) -> bool {
        self.all_of.iter().all(|condition| {
            answers
                .get(&condition.item)
                .is_some_and(|value| *value >= condition.at_least)
        })
    }
}

/// A site's threshold on a scale's reported score, such as a PHQ-9 total of 20 or more.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreThreshold {
    pub instrument: String,
    pub scale: String,
    pub at_least: f64,
    pub level: AlertLevel,
}

impl ScoreThreshold {
    /// Returns the rule code shown for a threshold that fired, such as `phq-9_total_at_least_20`.
    #[must_use]
    pub fn code(&self) -> String {
        format!(
            "{}_{}_at_least_{}",
            self.instrument, self.scale, self.at_least
        )
    }
}

/// The rules a response fired and the level of the alert they raise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub level: AlertLevel,
    pub rules: Vec<String>,
}

/// Evaluates an instrument's rules and the site's thresholds over a checked response.
/// Returns `None` when nothing fires.
#[must_use]
pub fn evaluate(
    instrument: &Instrument,
    answers: &Answers,
    scores: &[ScaleScore],
    thresholds: &[ScoreThreshold],
) -> Option<Trigger> {
    let mut fired: Vec<(AlertLevel, String)> = instrument
        .safety
        .iter()
        .filter(|rule| rule.fires(answers))
        .map(|rule| (rule.level, rule.code.clone()))
        .collect();

    for threshold in thresholds
        .iter()
        .filter(|threshold| threshold.instrument == instrument.id.as_str())
    {
        let reached = scores.iter().any(|score| {
            score.scale == threshold.scale
                && score
                    .outcome
                    .as_ref()
                    .is_ok_and(|score| score.reported >= threshold.at_least)
        });
        if reached {
            fired.push((threshold.level, threshold.code()));
        }
    }

    let level = fired.iter().map(|(level, _)| *level).max()?;
    Some(Trigger {
        level,
        rules: fired.into_iter().map(|(_, code)| code).collect(),
    })
}

/// The stage of an alert in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Raised,
    Acknowledged,
    Actioned,
    Resolved,
}

impl AlertState {
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Self::Raised => "raised",
            Self::Acknowledged => "acknowledged",
            Self::Actioned => "actioned",
            Self::Resolved => "resolved",
        }
    }

    pub fn parse(code: &str) -> Result<Self, InvalidValue> {
        match code {
            "raised" => Ok(Self::Raised),
            "acknowledged" => Ok(Self::Acknowledged),
            "actioned" => Ok(Self::Actioned),
            "resolved" => Ok(Self::Resolved),
            other => Err(InvalidValue::new(
                "state",
                format!("'{other}' is not an alert state"),
            )),
        }
    }

    /// Returns whether the alert still needs someone's attention.
    #[must_use]
    pub fn is_open(self) -> bool {
        self != Self::Resolved
    }
}

/// The care team's action on an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertOutcome {
    PatientContacted,
    SafetyPlan,
    UrgentCare,
    Other,
}

impl AlertOutcome {
    pub const ALL: [Self; 4] = [
        Self::PatientContacted,
        Self::SafetyPlan,
        Self::UrgentCare,
        Self::Other,
    ];

    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Self::PatientContacted => "patient_contacted",
            Self::SafetyPlan => "safety_plan",
            Self::UrgentCare => "urgent_care",
            Self::Other => "other",
        }
    }

    pub fn parse(code: &str) -> Result<Self, InvalidValue> {
        Self::ALL
            .into_iter()
            .find(|outcome| outcome.code() == code)
            .ok_or_else(|| {
                InvalidValue::new(
                    "outcome",
                    format!(
                        "'{code}' is not an outcome; use patient_contacted, safety_plan, urgent_care or other"
                    ),
                )
            })
    }
}

/// A step of the lifecycle, taken by a member of the care team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertStep {
    Acknowledge,
    Action { outcome: AlertOutcome, note: String },
    Resolve { note: String },
}

impl AlertStep {
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Acknowledge => "acknowledge",
            Self::Action { .. } => "action",
            Self::Resolve { .. } => "resolve",
        }
    }
}

/// The maximum number of characters of a note on an alert.
pub const MAX_NOTE_CHARS: usize = 4_000;

/// A step that does not fit the alert's state or is missing what it needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error(
        "an alert that is {from} cannot be {step}; the steps go raised, acknowledged, actioned, resolved"
    )]
    OutOfOrder {
        from: &'static str,
        step: &'static str,
    },
    #[error(transparent)]
    Invalid(#[from] InvalidValue),
}

/// Applies a step: raised → acknowledged → actioned (with an outcome) → resolved. An outcome
/// of "other" needs a note saying what was done.
pub fn advance(state: AlertState, step: &AlertStep) -> Result<AlertState, LifecycleError> {
    let next = match (state, step) {
        (AlertState::Raised, AlertStep::Acknowledge) => AlertState::Acknowledged,
        (AlertState::Acknowledged, AlertStep::Action { outcome, note }) => {
            check_note(note, *outcome == AlertOutcome::Other)?;
            AlertState::Actioned
        }
        (AlertState::Actioned, AlertStep::Resolve { note }) => {
            check_note(note, false)?;
            AlertState::Resolved
        }
        (from, step) => {
            return Err(LifecycleError::OutOfOrder {
                from: from.code(),
                step: match step {
                    AlertStep::Acknowledge => "acknowledged",
                    AlertStep::Action { .. } => "actioned",
                    AlertStep::Resolve { .. } => "resolved",
                },
            });
        }
    };
    Ok(next)
}

fn check_note(note: &str, required: bool) -> Result<(), InvalidValue> {
    if required && note.trim().is_empty() {
        return Err(InvalidValue::new(
            "note",
            "say what was done when the outcome is 'other'",
        ));
    }
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err(InvalidValue::new(
            "note",
            format!("a note may have at most {MAX_NOTE_CHARS} characters"),
        ));
    }
    Ok(())
}

/// The group of people an unacknowledged alert has reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationLevel {
    /// The patient's care team.
    CareTeam,
    /// The site's backup clinician.
    BackupClinician,
    /// The site's program administrators.
    ProgramAdministrators,
}

impl EscalationLevel {
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Self::CareTeam => "care_team",
            Self::BackupClinician => "backup_clinician",
            Self::ProgramAdministrators => "program_administrators",
        }
    }

    pub fn parse(code: &str) -> Result<Self, InvalidValue> {
        match code {
            "care_team" => Ok(Self::CareTeam),
            "backup_clinician" => Ok(Self::BackupClinician),
            "program_administrators" => Ok(Self::ProgramAdministrators),
            other => Err(InvalidValue::new(
                "escalation",
                format!("'{other}' is not an escalation level"),
            )),
        }
    }

    /// Returns the next level, or `None` at the last one.
    #[must_use]
    pub fn next(self) -> Option<Self> {
        match self {
            Self::CareTeam => Some(Self::BackupClinician),
            Self::BackupClinician => Some(Self::ProgramAdministrators),
            Self::ProgramAdministrators => None,
        }
    }
}

/// The hours a site's care team watches its alerts, in the site's time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffedHours {
    pub days: Vec<Weekday>,
    pub opens: Time,
    pub closes: Time,
}

impl StaffedHours {
    /// Parses days such as `mon,tue,wed,thu,fri` and times such as `08:00` and `18:00`.
    pub fn parse(days: &str, opens: &str, closes: &str) -> Result<Self, InvalidValue> {
        let days = days
            .split(',')
            .map(str::trim)
            .filter(|day| !day.is_empty())
            .map(parse_weekday)
            .collect::<Result<Vec<_>, _>>()?;
        if days.is_empty() {
            return Err(InvalidValue::new(
                "staffed_days",
                "choose at least one staffed day",
            ));
        }
        let time = |field: &'static str, value: &str| {
            value.trim().parse::<Time>().map_err(|_| {
                InvalidValue::new(
                    field,
                    format!("'{value}' is not a time; use HH:MM, such as 08:00"),
                )
            })
        };
        let opens = time("staffed_opens", opens)?;
        let closes = time("staffed_closes", closes)?;
        if opens >= closes {
            return Err(InvalidValue::new(
                "staffed_closes",
                "staffed hours must close after they open on the same day",
            ));
        }
        Ok(Self {
            days,
            opens,
            closes,
        })
    }

    /// Returns the days as stored, such as `mon,tue,wed,thu,fri`.
    #[must_use]
    pub fn days_code(&self) -> String {
        let codes: Vec<&str> = self.days.iter().map(|day| weekday_code(*day)).collect();
        codes.join(",")
    }
}

const WEEKDAYS: [(Weekday, &str); 7] = [
    (Weekday::Monday, "mon"),
    (Weekday::Tuesday, "tue"),
    (Weekday::Wednesday, "wed"),
    (Weekday::Thursday, "thu"),
    (Weekday::Friday, "fri"),
    (Weekday::Saturday, "sat"),
    (Weekday::Sunday, "sun"),
];

fn parse_weekday(code: &str) -> Result<Weekday, InvalidValue> {
    WEEKDAYS
        .iter()
        .find(|(_, name)| *name == code)
        .map(|(day, _)| *day)
        .ok_or_else(|| {
            InvalidValue::new(
                "staffed_days",
                format!("'{code}' is not a day; use mon, tue, wed, thu, fri, sat or sun"),
            )
        })
}

fn weekday_code(day: Weekday) -> &'static str {
    WEEKDAYS
        .iter()
        .find(|(candidate, _)| *candidate == day)
        .map_or("mon", |(_, name)| name)
}

/// Days ahead the deadline search looks. A staffed day comes at least once a week, and the
/// longest allowed grace (1,440 minutes) fits within a year of even the shortest staffed hours.
const DEADLINE_SEARCH_DAYS: i64 = 400;

/// The instant by which an alert raised at `raised` must be acknowledged: after `minutes` of
/// staffed time. For an alert raised in staffed hours the clock runs at once. Outside them it
/// starts when the next staffed period opens, and minutes left at closing time carry over to the
/// next opening. Times are the site's local wall-clock times; a DST gap moves an opening or closing
/// later, as RFC 5545 resolves a local time that does not exist.
#[must_use]
pub fn acknowledgement_deadline(
    raised: Timestamp,
    hours: &StaffedHours,
    zone: &TimeZone,
    minutes: u32,
) -> Timestamp {
    let grace = jiff::SignedDuration::from_mins(i64::from(minutes));
    let fallback = raised.checked_add(grace).unwrap_or(raised);
    let today = raised.to_zoned_datetime(zone.clone()).date();
    let mut remaining = grace;

    for offset in 0..DEADLINE_SEARCH_DAYS {
        let Ok(day) = today.checked_add(offset.days()) else {
            break;
        };
        if !hours.days.contains(&day.weekday()) {
            continue;
        }
        let opens = instant(day.to_datetime(hours.opens), zone);
        let closes = instant(day.to_datetime(hours.closes), zone);
        let start = opens.max(raised);
        if start >= closes {
            continue;
        }
        let available = closes.duration_since(start);
        if remaining <= available {
            return start.checked_add(remaining).unwrap_or(fallback);
        }
        remaining -= available;
    }
    fallback
}

fn instant(local: jiff::civil::DateTime, zone: &TimeZone) -> Timestamp {
    zone.to_ambiguous_timestamp(local)
        .compatible()
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chicago() -> TimeZone {
        TimeZone::get("America/Chicago").expect("zone")
    }

    fn at(text: &str) -> Timestamp {
        text.parse().expect("instant")
    }

    #[test]
    fn deadline_in_and_out_of_staffed_hours() {
        let hours = StaffedHours::parse("mon,tue,wed,thu,fri", "08:00", "18:00").expect("hours");
        // Friday 09:00 Chicago: 15 minutes later.
        assert_eq!(
            acknowledgement_deadline(at("2026-12-04T15:00:00Z"), &hours, &chicago(), 15),
            at("2026-12-04T15:15:00Z")
        );
        // Friday 20:00 Chicago: 15 minutes after Monday opens at 08:00 (14:00Z).
        assert_eq!(
            acknowledgement_deadline(at("2026-12-05T02:00:00Z"), &hours, &chicago(), 15),
            at("2026-12-07T14:15:00Z")
        );
        // Monday 07:00 Chicago: 08:15 the same day.
        assert_eq!(
            acknowledgement_deadline(at("2026-12-07T13:00:00Z"), &hours, &chicago(), 15),
            at("2026-12-07T14:15:00Z")
        );
        // Friday 17:55 Chicago: 5 minutes before closing, 10 more after Monday's opening.
        assert_eq!(
            acknowledgement_deadline(at("2026-12-04T23:55:00Z"), &hours, &chicago(), 15),
            at("2026-12-07T14:10:00Z")
        );
    }

    #[test]
    fn deadline_across_daylight_saving_changes() {
        let every_day =
            StaffedHours::parse("mon,tue,wed,thu,fri,sat,sun", "02:00", "04:00").expect("hours");
        // On 2027-03-14 Chicago skips 02:00-03:00, so the staffed period opens at 03:00 CDT
        // (08:00Z) and an alert raised at 01:30 CST (07:30Z) is due 15 minutes after that.
        assert_eq!(
            acknowledgement_deadline(at("2027-03-14T07:30:00Z"), &every_day, &chicago(), 15),
            at("2027-03-14T08:15:00Z")
        );
        // On 2027-11-07 01:00-02:00 happens twice; 02:00 CST is 08:00Z.
        assert_eq!(
            acknowledgement_deadline(at("2027-11-07T07:30:00Z"), &every_day, &chicago(), 15),
            at("2027-11-07T08:15:00Z")
        );
        // Tokyo has no daylight saving time: 09:00 staffed hours are 00:00Z.
        let tokyo = TimeZone::get("Asia/Tokyo").expect("zone");
        let weekdays = StaffedHours::parse("mon,tue,wed,thu,fri", "09:00", "17:00").expect("hours");
        assert_eq!(
            acknowledgement_deadline(at("2026-12-06T12:00:00Z"), &weekdays, &tokyo, 30),
            at("2026-12-07T00:30:00Z")
        );
    }

    #[test]
    fn lifecycle_runs_in_order() {
        assert_eq!(
            advance(AlertState::Raised, &AlertStep::Acknowledge),
            Ok(AlertState::Acknowledged)
        );
        assert!(
            advance(
                AlertState::Raised,
                &AlertStep::Resolve {
                    note: String::new()
                }
            )
            .is_err()
        );
        let other = AlertStep::Action {
            outcome: AlertOutcome::Other,
            note: " ".into(),
        };
        assert!(advance(AlertState::Acknowledged, &other).is_err());
        let contacted = AlertStep::Action {
            outcome: AlertOutcome::PatientContacted,
            note: String::new(),
        };
        assert_eq!(
            advance(AlertState::Acknowledged, &contacted),
            Ok(AlertState::Actioned)
        );
        assert_eq!(
            advance(
                AlertState::Actioned,
                &AlertStep::Resolve {
                    note: String::new()
                }
            ),
            Ok(AlertState::Resolved)
        );
        assert!(advance(AlertState::Resolved, &AlertStep::Acknowledge).is_err());
        assert!(StaffedHours::parse("mon", "18:00", "08:00").is_err());
        assert!(StaffedHours::parse("monday", "08:00", "18:00").is_err());
    }
}
