//! Measurement plans: which instruments a patient answers at which point of their cohort's
//! program, and whether each occasion is upcoming, due, overdue, closed or completed.
//!
//! A plan is data (`content/measurement-plans/*.toml`, one per curriculum). Each wave is anchored
//! to the start of a class week, optionally offset by days (the 3-month follow-up is week 8 plus
//! 91 days), and repeats for each listed week (the weekly check-in).

use std::collections::BTreeSet;

use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

use super::instrument::InstrumentId;
use crate::InvalidValue;
use crate::schedule::SessionKind;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wave {
    /// A stable code such as `baseline`, `mid`, `end`, `follow_up` or `check_in`.
    pub code: String,
    pub instruments: Vec<InstrumentId>,
    /// The class weeks the wave is anchored to: one for most waves, several for a check-in.
    pub weeks: Vec<u8>,
    /// Days after the week's class start that the anchor lies.
    #[serde(default)]
    pub days_after_class: u32,
    /// Days before the anchor that the occasion opens.
    pub opens_days_before: u32,
    /// Days after the anchor that it is due; later it is overdue.
    pub due_days_after: u32,
    /// Days after the anchor that it closes; later an unanswered occasion is missed.
    pub closes_days_after: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasurementPlan {
    /// The curriculum the plan is for, such as `mbsr-online`.
    pub curriculum: String,
    pub version: u32,
    pub waves: Vec<Wave>,
}

/// One dated occasion of a plan for a cohort.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Occasion {
    /// A stable key, such as `baseline` or `check_in_week_3`, stored with each response.
    pub key: String,
    pub wave: String,
    pub week: u8,
    pub instruments: Vec<InstrumentId>,
    pub opens: Timestamp,
    pub due: Timestamp,
    pub closes: Timestamp,
}

/// The state of an occasion for one patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OccasionStatus {
    Upcoming,
    Due,
    Overdue,
    /// Closed with instruments unanswered.
    Missed,
    Completed,
}

impl OccasionStatus {
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Self::Upcoming => "upcoming",
            Self::Due => "due",
            Self::Overdue => "overdue",
            Self::Missed => "missed",
            Self::Completed => "completed",
        }
    }

    /// Whether the patient can answer it now.
    #[must_use]
    pub fn is_open(self) -> bool {
        matches!(self, Self::Due | Self::Overdue)
    }
}

/// The maximum number of waves in a plan, and of weeks a wave may repeat over.
pub const MAX_WAVES: usize = 20;
pub const MAX_WEEKS: usize = 8;

impl MeasurementPlan {
    pub fn from_toml(text: &str) -> Result<Self, InvalidValue> {
        let plan: Self =
            toml::from_str(text).map_err(|error| InvalidValue::new("plan", error.to_string()))?;
        plan.validate()?;
        Ok(plan)
    }

    pub fn validate(&self) -> Result<(), InvalidValue> {
        if self.waves.is_empty() || self.waves.len() > MAX_WAVES {
            return Err(InvalidValue::new(
                "waves",
                format!("a plan needs 1 to {MAX_WAVES} waves"),
            ));
        }
        let mut codes = BTreeSet::new();
        for wave in &self.waves {
            if !codes.insert(wave.code.as_str()) {
                return Err(InvalidValue::new(
                    "waves",
                    format!("the wave code '{}' is used twice", wave.code),
                ));
            }
            if wave.instruments.is_empty() {
                return Err(InvalidValue::new(
                    "instruments",
                    format!("wave '{}' needs at least one instrument", wave.code),
                ));
            }
            let weeks_ok = !wave.weeks.is_empty()
                && wave.weeks.len() <= MAX_WEEKS
                && wave.weeks.iter().all(|week| (1..=8).contains(week));
            if !weeks_ok {
                return Err(InvalidValue::new(
                    "weeks",
                    format!(
                        "wave '{}' needs 1 to {MAX_WEEKS} weeks between 1 and 8",
                        wave.code
                    ),
                ));
            }
            if wave.due_days_after > wave.closes_days_after {
                return Err(InvalidValue::new(
                    "closes_days_after",
                    format!("wave '{}' must close on or after its due day", wave.code),
                ));
            }
        }
        Ok(())
    }

    /// Dates the plan for a cohort from the starts of its classes. A week whose class is
    /// cancelled or missing has no occasion.
    #[must_use]
    pub fn occasions(&self, sessions: &[(SessionKind, Timestamp)]) -> Vec<Occasion> {
        let class_start = |week: u8| {
            sessions.iter().find_map(|(kind, start)| match kind {
                SessionKind::Class { week: class } if *class == week => Some(*start),
                _ => None,
            })
        };
        let mut occasions = Vec::new();
        for wave in &self.waves {
            for week in &wave.weeks {
                let Some(start) = class_start(*week) else {
                    continue;
                };
                let anchor = add_days(start, i64::from(wave.days_after_class));
                let key = if wave.weeks.len() == 1 {
                    wave.code.clone()
                } else {
                    format!("{}_week_{week}", wave.code)
                };
                occasions.push(Occasion {
                    key,
                    wave: wave.code.clone(),
                    week: *week,
                    instruments: wave.instruments.clone(),
                    opens: add_days(anchor, -i64::from(wave.opens_days_before)),
                    due: add_days(anchor, i64::from(wave.due_days_after)),
                    closes: add_days(anchor, i64::from(wave.closes_days_after)),
                });
            }
        }
        occasions.sort_by_key(|occasion| occasion.opens);
        occasions
    }
}

impl Occasion {
    /// Returns the occasion's status at `now`, given the instruments already answered for it.
    #[must_use]
    pub fn status(&self, now: Timestamp, answered: &BTreeSet<InstrumentId>) -> OccasionStatus {
        let complete = self
            .instruments
            .iter()
            .all(|instrument| answered.contains(instrument));
        if complete {
            OccasionStatus::Completed
        } else if now < self.opens {
            OccasionStatus::Upcoming
        } else if now < self.due {
            OccasionStatus::Due
        } else if now < self.closes {
            OccasionStatus::Overdue
        } else {
            OccasionStatus::Missed
        }
    }
}

/// Adds whole days as 24-hour spans. An occasion's window may shift by an hour across a
/// daylight-saving change, which does not matter for a window measured in days.
fn add_days(instant: Timestamp, days: i64) -> Timestamp {
    instant.checked_add((days * 24).hours()).unwrap_or(instant)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> MeasurementPlan {
        MeasurementPlan::from_toml(
            r#"
curriculum = "test"
version = 1
[[waves]]
code = "baseline"
instruments = ["phq-9"]
weeks = [1]
opens_days_before = 21
due_days_after = 0
closes_days_after = 7
[[waves]]
code = "check_in"
instruments = ["phq-2"]
weeks = [2, 3]
opens_days_before = 3
due_days_after = 0
closes_days_after = 4
"#,
        )
        .expect("valid plan")
    }

    fn at(text: &str) -> Timestamp {
        text.parse().expect("instant")
    }

    #[test]
    fn occasions_move_through_their_states() {
        let sessions = [
            (SessionKind::Class { week: 1 }, at("2026-12-10T00:00:00Z")),
            (SessionKind::Class { week: 2 }, at("2026-12-17T00:00:00Z")),
        ];
        let occasions = plan().occasions(&sessions);
        let keys: Vec<&str> = occasions.iter().map(|o| o.key.as_str()).collect();
        // Week 3 has no class, so it has no check-in.
        assert_eq!(keys, ["baseline", "check_in_week_2"]);

        let baseline = &occasions[0];
        let none = BTreeSet::new();
        assert_eq!(
            baseline.status(at("2026-11-18T00:00:00Z"), &none),
            OccasionStatus::Upcoming
        );
        assert_eq!(
            baseline.status(at("2026-11-20T00:00:00Z"), &none),
            OccasionStatus::Due
        );
        assert_eq!(
            baseline.status(at("2026-12-12T00:00:00Z"), &none),
            OccasionStatus::Overdue
        );
        assert_eq!(
            baseline.status(at("2026-12-17T00:00:00Z"), &none),
            OccasionStatus::Missed
        );
        let done: BTreeSet<InstrumentId> = [InstrumentId::parse("phq-9").expect("id")].into();
        assert_eq!(
            baseline.status(at("2026-12-17T00:00:00Z"), &done),
            OccasionStatus::Completed
        );
    }

    #[test]
    fn bad_plans_are_rejected() {
        let text = "curriculum = \"x\"\nversion = 1\n[[waves]]\ncode = \"a\"\ninstruments = [\"phq-9\"]\nweeks = [9]\nopens_days_before = 1\ndue_days_after = 0\ncloses_days_after = 1\n";
        assert!(MeasurementPlan::from_toml(text).is_err());
    }
}
