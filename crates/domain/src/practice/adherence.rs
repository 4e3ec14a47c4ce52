//! Adherence: practice minutes and days in each program week against that week's assignment,
//! and which patients a facilitator may want to check in with.
//!
//! The figures are for understanding, never for judging. Nothing here counts consecutive days,
//! because a broken "streak" signals failure to a tired or ill patient.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::Assignment;

/// One program week: from a class to the next (or seven days after the last class).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PracticeWeek {
    pub assignment: Assignment,
    pub starts: Date,
    /// The first day after the week.
    pub ends: Date,
}

/// Practice in one week against its assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeekAdherence {
    pub week: u8,
    pub starts: Date,
    pub ends: Date,
    pub minutes: u32,
    pub days_practised: u32,
    pub assigned_minutes: u32,
    pub assigned_days: u32,
    /// Whether the week is over on the day the summary was made.
    pub complete: bool,
}

impl WeekAdherence {
    /// Practice minutes as a whole percentage of the assigned minutes, `None` when nothing was
    /// assigned.
    #[must_use]
    pub fn percent(&self) -> Option<u32> {
        (self.assigned_minutes > 0).then(|| {
            let percent = u64::from(self.minutes) * 100 / u64::from(self.assigned_minutes);
            u32::try_from(percent).unwrap_or(u32::MAX)
        })
    }
}

/// Sums `daily` (a day and the seconds practised on it, in any order, days may repeat) into
/// each of `weeks` as seen on `today`. Weeks that have not started are left out.
#[must_use]
pub fn weekly(weeks: &[PracticeWeek], daily: &[(Date, u32)], today: Date) -> Vec<WeekAdherence> {
    weeks
        .iter()
        .filter(|week| week.starts <= today)
        .map(|week| {
            let mut days = std::collections::BTreeMap::<Date, u32>::new();
            for (day, seconds) in daily {
                if *day >= week.starts && *day < week.ends && *day <= today {
                    *days.entry(*day).or_default() += seconds;
                }
            }
            let seconds: u32 = days.values().sum();
            WeekAdherence {
                week: week.assignment.week,
                starts: week.starts,
                ends: week.ends,
                minutes: seconds / 60,
                days_practised: u32::try_from(
                    days.values().filter(|seconds| **seconds >= 60).count(),
                )
                .unwrap_or(u32::MAX),
                assigned_minutes: week.assignment.weekly_minutes(),
                assigned_days: week.assignment.days_per_week,
                complete: week.ends <= today,
            }
        })
        .collect()
}

/// The direction of practice between the last two complete weeks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trend {
    Rising,
    Steady,
    Falling,
    /// Fewer than two complete weeks.
    TooEarly,
}

/// Compares the last two complete weeks; a change of less than a fifth, or of less than ten
/// minutes, counts as steady.
#[must_use]
pub fn trend(weeks: &[WeekAdherence]) -> Trend {
    let complete: Vec<&WeekAdherence> = weeks.iter().filter(|week| week.complete).collect();
    let [.., before, last] = complete.as_slice() else {
        return Trend::TooEarly;
    };
    let (before, last) = (i64::from(before.minutes), i64::from(last.minutes));
    let change = last - before;
    if change.abs() < 10 || change.abs() * 5 < before {
        Trend::Steady
    } else if change > 0 {
        Trend::Rising
    } else {
        Trend::Falling
    }
}

/// When a patient shows up on the facilitator's check-in list. These are local starting points
/// a clinic may change, not published thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckInRules {
    /// Days without any practice recorded.
    pub quiet_days: u16,
    /// Practice below this percentage of the assignment …
    pub low_percent: u32,
    /// … in each of this many complete weeks in a row.
    pub low_weeks: u16,
}

impl Default for CheckInRules {
    fn default() -> Self {
        Self {
            quiet_days: 7,
            low_percent: 25,
            low_weeks: 2,
        }
    }
}

/// A reason a patient may need a check-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckInReason {
    /// No practice recorded for `days` days.
    NoPracticeFor { days: u32 },
    /// Each of the last complete weeks below the rule's share.
    LowPractice { weeks: Vec<WeekAdherence> },
}

/// Lists the reasons a facilitator may want to contact a patient, given the weeks so far and
/// the patient's last day with practice.
#[must_use]
pub fn check_in_reasons(
    rules: &CheckInRules,
    weeks: &[WeekAdherence],
    last_practice: Option<Date>,
    today: Date,
) -> Vec<CheckInReason> {
    let mut reasons = Vec::new();
    let Some(first) = weeks.first() else {
        return reasons;
    };

    let quiet_since = last_practice.map_or(first.starts, |day| day.max(first.starts));
    let quiet_days = u32::try_from((today - quiet_since).get_days()).unwrap_or_default();
    if quiet_days >= u32::from(rules.quiet_days) {
        reasons.push(CheckInReason::NoPracticeFor { days: quiet_days });
    }

    let complete: Vec<&WeekAdherence> = weeks.iter().filter(|week| week.complete).collect();
    let wanted = usize::from(rules.low_weeks);
    if wanted > 0 && complete.len() >= wanted {
        let recent = &complete[complete.len() - wanted..];
        let low = recent.iter().all(|week| {
            week.percent()
                .is_some_and(|percent| percent < rules.low_percent)
        });
        if low {
            reasons.push(CheckInReason::LowPractice {
                weeks: recent.iter().map(|week| (*week).clone()).collect(),
            });
        }
    }
    reasons
}

#[cfg(test)]
mod tests {
    use jiff::civil::{Date, date};

    use super::*;
    use crate::curriculum::Practice;

    fn week(number: u8, starts: Date, daily_minutes: u32) -> PracticeWeek {
        PracticeWeek {
            assignment: Assignment {
                week: number,
                daily_minutes,
                days_per_week: 6,
                practices: vec![Practice::BodyScan],
                max_recording_minutes: None,
            },
            starts,
            ends: starts.checked_add(jiff::Span::new().days(7)).expect("date"),
        }
    }

    fn three_weeks() -> Vec<PracticeWeek> {
        vec![
            week(1, date(2027, 1, 5), 20),
            week(2, date(2027, 1, 12), 20),
            week(3, date(2027, 1, 19), 20),
        ]
    }

    #[test]
    fn minutes_and_days_per_week() {
        let daily = [
            (date(2027, 1, 5), 20 * 60),
            (date(2027, 1, 5), 10 * 60), // a second practice the same day
            (date(2027, 1, 7), 45),      // under a minute: time counts, the day does not
            (date(2027, 1, 12), 15 * 60),
            (date(2027, 1, 4), 30 * 60), // before the first class
            (date(2027, 1, 20), 600),    // after "today"
        ];
        let weeks = weekly(&three_weeks(), &daily, date(2027, 1, 13));
        assert_eq!(weeks.len(), 2, "week 3 has not started");
        assert_eq!((weeks[0].minutes, weeks[0].days_practised), (30, 1));
        assert_eq!(weeks[0].assigned_minutes, 120);
        assert_eq!(weeks[0].percent(), Some(25));
        assert!(weeks[0].complete);
        assert_eq!((weeks[1].minutes, weeks[1].days_practised), (15, 1));
        assert!(!weeks[1].complete);
    }

    #[test]
    fn trend_needs_two_complete_weeks() {
        let today = date(2027, 1, 26);
        let rising = weekly(
            &three_weeks(),
            &[(date(2027, 1, 6), 600), (date(2027, 1, 20), 3_000)],
            today,
        );
        assert_eq!(trend(&rising[..1]), Trend::TooEarly);
        assert_eq!(trend(&rising), Trend::Rising);
        let falling = weekly(
            &three_weeks(),
            &[(date(2027, 1, 13), 6_000), (date(2027, 1, 20), 600)],
            today,
        );
        assert_eq!(trend(&falling), Trend::Falling);
        let steady = weekly(
            &three_weeks(),
            &[(date(2027, 1, 13), 6_000), (date(2027, 1, 20), 5_400)],
            today,
        );
        assert_eq!(
            trend(&steady),
            Trend::Steady,
            "100 to 90 minutes is less than a fifth"
        );
    }

    #[test]
    fn check_in_after_quiet_days_or_low_weeks() {
        let rules = CheckInRules::default();
        let today = date(2027, 1, 26);
        let daily = [(date(2027, 1, 6), 600), (date(2027, 1, 14), 900)];
        let weeks = weekly(&three_weeks(), &daily, today);
        let reasons = check_in_reasons(&rules, &weeks, Some(date(2027, 1, 14)), today);
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert_eq!(reasons[0], CheckInReason::NoPracticeFor { days: 12 });
        let CheckInReason::LowPractice { weeks: low } = &reasons[1] else {
            panic!("expected low practice: {reasons:?}");
        };
        assert_eq!(
            low.iter().map(|week| week.week).collect::<Vec<_>>(),
            vec![2, 3]
        );

        let busy: Vec<(Date, u32)> = (5..26).map(|day| (date(2027, 1, day), 20 * 60)).collect();
        let weeks = weekly(&three_weeks(), &busy, today);
        assert!(check_in_reasons(&rules, &weeks, Some(date(2027, 1, 25)), today).is_empty());

        let never = weekly(&three_weeks(), &[], date(2027, 1, 10));
        assert_eq!(
            check_in_reasons(&rules, &never, None, date(2027, 1, 10)),
            vec![],
            "five days into the first week is too early"
        );
    }
}
