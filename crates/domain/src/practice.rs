//! Home practice between classes: diary entries, the week's assignment and how tailoring
//! changes it.
//!
//! A diary entry records one practice on one day, from the recording player, the meditation
//! timer or typed in by the patient. Entries are private to the patient unless the patient
//! shares one with the facilitator.

pub mod adherence;
pub mod audio;
pub mod listening;
pub mod tailoring;
pub mod webvtt;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::InvalidValue;
use crate::curriculum::{HomePractice, Practice};

/// The seconds one day has; no day's diary may hold more practice than this.
pub const SECONDS_PER_DAY: u32 = 86_400;

/// The longest "what I noticed" note, in characters.
pub const MAX_NOTE_CHARS: usize = 4_000;

/// How far back a patient may date an entry, in days: enough to fill in a diary after a
/// hospital stay, short enough to catch a mistyped year.
pub const MAX_DAYS_BACK: i32 = 366;

/// The kind of practice an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PracticeKind {
    /// A formal practice, guided by a recording or not.
    Formal(Practice),
    /// Sitting in silence with the meditation timer.
    Unguided,
    /// Informal practice in daily life, such as eating one meal mindfully.
    Informal,
}

impl PracticeKind {
    /// The stored code: a practice's code, `unguided` or `informal`.
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::Formal(practice) => practice.as_str(),
            Self::Unguided => "unguided",
            Self::Informal => "informal",
        }
    }

    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        match text {
            "unguided" => Ok(Self::Unguided),
            "informal" => Ok(Self::Informal),
            other => Practice::parse(other).map(Self::Formal).map_err(|_| {
                InvalidValue::new(
                    "practice",
                    format!("'{other}' is not a practice; choose one from the list"),
                )
            }),
        }
    }
}

/// The source of an entry's time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntrySource {
    /// Minutes actually played of a guided recording.
    Recording,
    /// The meditation timer.
    Timer,
    /// Typed in by the patient.
    Manual,
}

impl EntrySource {
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::Recording => "recording",
            Self::Timer => "timer",
            Self::Manual => "manual",
        }
    }

    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        match text {
            "recording" => Ok(Self::Recording),
            "timer" => Ok(Self::Timer),
            "manual" => Ok(Self::Manual),
            other => Err(InvalidValue::new(
                "source",
                format!("'{other}' is not an entry source; use recording, timer or manual"),
            )),
        }
    }
}

/// A patient's own 0–10 rating of how stressed or upset they felt, 0 meaning not at all. It is a
/// diary aid for noticing change, not a validated measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DistressRating(u8);

impl DistressRating {
    pub const MAX: u8 = 10;

    /// Parses a rating from a form field; an empty field is no rating.
    pub fn parse_optional(field: &'static str, text: &str) -> Result<Option<Self>, InvalidValue> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        text.parse::<u8>()
            .ok()
            .filter(|value| *value <= Self::MAX)
            .map(|value| Some(Self(value)))
            .ok_or_else(|| {
                InvalidValue::new(
                    field,
                    format!("'{text}' is not a rating; choose a whole number from 0 to 10"),
                )
            })
    }

    /// Wraps a stored value.
    pub fn new(value: u8) -> Result<Self, InvalidValue> {
        if value <= Self::MAX {
            Ok(Self(value))
        } else {
            Err(InvalidValue::new(
                "distress",
                format!("{value} is above 10; ratings run from 0 to 10"),
            ))
        }
    }

    #[must_use]
    pub const fn value(self) -> u8 {
        self.0
    }
}

/// The diary fields of an entry, as the patient gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryDraft {
    pub practiced_on: Date,
    pub kind: PracticeKind,
    pub seconds: u32,
    pub distress_before: Option<DistressRating>,
    pub distress_after: Option<DistressRating>,
    /// The patient's note on what they noticed: triggers, difficulties, small wins.
    pub noticed: String,
    /// Whether the facilitator may read this entry.
    pub shared: bool,
}

/// Checks a diary entry dated in the patient's own calendar, where `today` is the patient's
/// local date and `others_that_day` the seconds already in the diary for the same day.
///
/// # Errors
/// Returns the field and the fix for: no time or more time than the day has, a date in the
/// future or more than [`MAX_DAYS_BACK`] days ago, and a note that is too long.
pub fn check_entry(
    draft: &EntryDraft,
    today: Date,
    others_that_day: u32,
) -> Result<(), InvalidValue> {
    if draft.practiced_on > today {
        return Err(InvalidValue::new(
            "practiced_on",
            format!(
                "{} is in the future; enter today ({today}) or an earlier day",
                draft.practiced_on
            ),
        ));
    }
    let oldest = today.saturating_sub(jiff::Span::new().days(MAX_DAYS_BACK));
    if draft.practiced_on < oldest {
        return Err(InvalidValue::new(
            "practiced_on",
            format!(
                "{} is more than a year ago; enter a day from {oldest} on",
                draft.practiced_on
            ),
        ));
    }
    if draft.seconds == 0 || draft.seconds > SECONDS_PER_DAY {
        return Err(InvalidValue::new(
            "minutes",
            "enter the minutes you practised, a whole number from 1 to 1440 (the minutes in a day)",
        ));
    }
    if others_that_day.saturating_add(draft.seconds) > SECONDS_PER_DAY {
        return Err(InvalidValue::new(
            "minutes",
            format!(
                "your diary already has {} minutes on {}, and with these the day would have more than its 1440 minutes; check the minutes or the date",
                others_that_day / 60,
                draft.practiced_on
            ),
        ));
    }
    if draft.noticed.chars().count() > MAX_NOTE_CHARS {
        return Err(InvalidValue::new(
            "noticed",
            format!(
                "the note is longer than {MAX_NOTE_CHARS} characters; shorten it or split it over two entries"
            ),
        ));
    }
    Ok(())
}

/// Changes a facilitator accepted for one patient's home practice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Adjustment {
    /// The longest recording, and the most daily minutes, to assign; `None` keeps the
    /// curriculum's.
    pub max_minutes: Option<u32>,
    /// Offer movement seated or lying down in place of standing movement and walking.
    pub seated_or_lying_movement: bool,
}

impl Adjustment {
    /// This adjustment with `other` applied on top: the shorter limit and either movement
    /// choice.
    #[must_use]
    pub fn and(self, other: Self) -> Self {
        let max_minutes = match (self.max_minutes, other.max_minutes) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Self {
            max_minutes,
            seated_or_lying_movement: self.seated_or_lying_movement
                || other.seated_or_lying_movement,
        }
    }
}

/// The home practice a patient is asked to do in one week.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub week: u8,
    pub daily_minutes: u32,
    pub days_per_week: u32,
    pub practices: Vec<Practice>,
    /// The longest recording to offer first, from an accepted tailoring suggestion.
    pub max_recording_minutes: Option<u32>,
}

impl Assignment {
    /// The curriculum's assignment for `week` with the patient's adjustment applied.
    #[must_use]
    pub fn new(week: u8, home: &HomePractice, adjustment: Adjustment) -> Self {
        let mut practices: Vec<Practice> = home
            .practices
            .iter()
            .map(|practice| match practice {
                Practice::MindfulMovementStanding | Practice::WalkingMeditation
                    if adjustment.seated_or_lying_movement =>
                {
                    Practice::MindfulMovementSeated
                }
                other => *other,
            })
            .collect();
        let mut seen = std::collections::BTreeSet::new();
        practices.retain(|practice| seen.insert(*practice));

        let daily_minutes = adjustment
            .max_minutes
            .map_or(home.daily_minutes, |cap| home.daily_minutes.min(cap));
        Self {
            week,
            daily_minutes,
            days_per_week: home.days_per_week,
            practices,
            max_recording_minutes: adjustment.max_minutes,
        }
    }

    /// The minutes asked for over the whole week.
    #[must_use]
    pub const fn weekly_minutes(&self) -> u32 {
        self.daily_minutes * self.days_per_week
    }

    /// Whether a recording of `practice` lasting `minutes` fits this assignment.
    #[must_use]
    pub fn suits(&self, practice: Practice, minutes: u32) -> bool {
        self.practices.contains(&practice)
            && self.max_recording_minutes.is_none_or(|cap| minutes <= cap)
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;

    fn draft(practiced_on: Date, seconds: u32) -> EntryDraft {
        EntryDraft {
            practiced_on,
            kind: PracticeKind::Formal(Practice::BodyScan),
            seconds,
            distress_before: None,
            distress_after: None,
            noticed: String::new(),
            shared: false,
        }
    }

    #[test]
    fn entry_checks_name_the_field() {
        let today = date(2026, 12, 4);
        let cases = [
            (
                draft(date(2026, 12, 5), 600),
                0,
                "practiced_on",
                "in the future",
            ),
            (
                draft(date(2025, 12, 1), 600),
                0,
                "practiced_on",
                "more than a year ago",
            ),
            (draft(today, 0), 0, "minutes", "from 1 to 1440"),
            (
                draft(today, SECONDS_PER_DAY + 60),
                0,
                "minutes",
                "from 1 to 1440",
            ),
            (
                draft(today, 3_600),
                SECONDS_PER_DAY - 600,
                "minutes",
                "already has 1430 minutes",
            ),
        ];
        for (entry, others, field, expected) in cases {
            let error = check_entry(&entry, today, others).expect_err(expected);
            assert_eq!(error.field, field);
            assert!(error.problem.contains(expected), "{}", error.problem);
        }
        assert!(check_entry(&draft(today, 600), today, 0).is_ok());
        assert!(check_entry(&draft(today, SECONDS_PER_DAY), today, 0).is_ok());
        let mut long = draft(today, 60);
        long.noticed = "a".repeat(MAX_NOTE_CHARS + 1);
        assert_eq!(
            check_entry(&long, today, 0).expect_err("long").field,
            "noticed"
        );
    }

    #[test]
    fn ratings_run_from_zero_to_ten() {
        assert_eq!(
            DistressRating::parse_optional("distress_before", "").expect("empty"),
            None
        );
        assert_eq!(
            DistressRating::parse_optional("distress_before", " 7 ")
                .expect("seven")
                .map(DistressRating::value),
            Some(7)
        );
        for bad in ["11", "-1", "3.5", "calm"] {
            let error = DistressRating::parse_optional("distress_after", bad).expect_err(bad);
            assert_eq!(error.field, "distress_after");
        }
    }

    #[test]
    fn adjustment_shortens_and_seats_the_assignment() {
        let home = HomePractice {
            daily_minutes: 45,
            days_per_week: 6,
            practices: vec![
                Practice::BodyScan,
                Practice::MindfulMovementStanding,
                Practice::WalkingMeditation,
            ],
            informal: std::collections::BTreeMap::new(),
            prompts: Vec::new(),
        };
        let plain = Assignment::new(4, &home, Adjustment::default());
        assert_eq!(plain.weekly_minutes(), 270);
        assert!(plain.suits(Practice::BodyScan, 45));

        let adjusted = Assignment::new(
            4,
            &home,
            Adjustment {
                max_minutes: Some(30),
                seated_or_lying_movement: false,
            }
            .and(Adjustment {
                max_minutes: Some(20),
                seated_or_lying_movement: true,
            }),
        );
        assert_eq!(adjusted.daily_minutes, 20);
        assert_eq!(
            adjusted.practices,
            vec![Practice::BodyScan, Practice::MindfulMovementSeated]
        );
        assert!(adjusted.suits(Practice::BodyScan, 20));
        assert!(!adjusted.suits(Practice::BodyScan, 30));
        assert!(!adjusted.suits(Practice::MindfulMovementStanding, 10));
    }
}
