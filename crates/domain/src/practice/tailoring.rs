//! Tailoring suggestions for the facilitator: rules over a patient's recent data that propose a
//! change to their home practice or a check-in, each with the data that fired it.
//!
//! The rules and their thresholds are data (`content/practice/tailoring.toml`), so a clinic can
//! change them without code. The shipped values are local starting points, not published
//! cut-offs, and a suggestion never changes anything until a facilitator accepts it.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::adherence::{CheckInRules, WeekAdherence};
use super::{Adjustment, Assignment, DistressRating};
use crate::PracticeEntryId;

/// Every rule's thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TailoringRules {
    /// When a patient appears on the facilitator's check-in list.
    pub check_in: CheckInRules,
    pub high_pain: HighPainRule,
    pub low_adherence: LowAdherenceRule,
    pub distress_after_practice: DistressAfterPracticeRule,
}

/// Persistent high pain ratings: suggest seated or lying movement and shorter recordings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HighPainRule {
    /// The 0–10 pain rating counted as high.
    pub min_rating: u8,
    /// The days of ratings looked at.
    pub window_days: u16,
    /// The minimum number of ratings in the window before the rule can fire.
    pub min_ratings: u16,
    /// The percentage of ratings in the window that must be high.
    pub min_percent: u32,
    /// The longest recording, in minutes, to suggest instead.
    pub suggest_max_minutes: u32,
}

impl Default for HighPainRule {
    fn default() -> Self {
        Self {
            min_rating: 7,
            window_days: 14,
            min_ratings: 3,
            min_percent: 75,
            suggest_max_minutes: 20,
        }
    }
}

/// Low adherence with a long assignment: suggest shorter recordings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LowAdherenceRule {
    /// Only assignments of at least this many minutes a day count as long.
    pub min_daily_minutes: u32,
    /// The complete weeks looked at, the most recent ones.
    pub weeks: u16,
    /// Practice below this percentage of the assignment in each of those weeks fires the rule.
    pub below_percent: u32,
    /// The minutes suggested …
    pub suggest_max_minutes: u32,
    /// … or these when practice was below `very_low_percent` of the assignment.
    pub very_low_suggest_max_minutes: u32,
    pub very_low_percent: u32,
}

impl Default for LowAdherenceRule {
    fn default() -> Self {
        Self {
            min_daily_minutes: 30,
            weeks: 2,
            below_percent: 50,
            suggest_max_minutes: 20,
            very_low_suggest_max_minutes: 10,
            very_low_percent: 20,
        }
    }
}

/// Distress that rises after practice: suggest a check-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistressAfterPracticeRule {
    pub window_days: u16,
    /// The minimum number of entries rated both before and after.
    pub min_entries: u16,
    /// The percentage of those entries whose rating after is higher than before.
    pub min_percent: u32,
}

impl Default for DistressAfterPracticeRule {
    fn default() -> Self {
        Self {
            window_days: 14,
            min_entries: 3,
            min_percent: 60,
        }
    }
}

/// The rule behind a suggestion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    HighPain,
    LowAdherence,
    DistressAfterPractice,
}

impl Rule {
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::HighPain => "high_pain",
            Self::LowAdherence => "low_adherence",
            Self::DistressAfterPractice => "distress_after_practice",
        }
    }

    pub fn parse(text: &str) -> Result<Self, crate::InvalidValue> {
        [
            Self::HighPain,
            Self::LowAdherence,
            Self::DistressAfterPractice,
        ]
        .into_iter()
        .find(|rule| rule.code() == text)
        .ok_or_else(|| {
            crate::InvalidValue::new("rule", format!("'{text}' is not a tailoring rule"))
        })
    }
}

/// The data that fired a rule, shown to the facilitator beside the suggestion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Evidence {
    /// Pain ratings in the window, oldest first, and the rating counted as high.
    PainRatings {
        ratings: Vec<(Date, u8)>,
        high_from: u8,
    },
    /// Minutes practised against minutes assigned in the weeks looked at.
    WeeklyMinutes {
        weeks: Vec<WeekMinutes>,
        daily_minutes: u32,
    },
    /// Shared entries rated before and after practice, oldest first. Each names its entry, so
    /// the page shows only ratings the patient still shares.
    DistressRatings { entries: Vec<RatedEntry> },
}

/// A diary entry's stress ratings before and after practice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RatedEntry {
    pub day: Date,
    pub entry: PracticeEntryId,
    pub before: u8,
    pub after: u8,
}

/// A shared diary entry as the distress rule reads it; unrated entries are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiaryRatings {
    pub entry: PracticeEntryId,
    pub day: Date,
    pub before: Option<DistressRating>,
    pub after: Option<DistressRating>,
}

/// One week's practised and assigned minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeekMinutes {
    pub week: u8,
    pub minutes: u32,
    pub assigned: u32,
}

/// A proposed change for the facilitator to accept or dismiss.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    pub rule: Rule,
    pub evidence: Evidence,
    /// The change to the assignment on acceptance; `None` when the suggestion is a check-in.
    pub adjustment: Option<Adjustment>,
    /// The program week the suggestion was made in; a dismissed suggestion is not made again
    /// in the same week.
    pub week: u8,
}

/// One patient's data, as the rules read it.
#[derive(Debug, Clone)]
pub struct PatientData<'a> {
    pub today: Date,
    /// The assignment now, with any earlier accepted adjustment applied.
    pub assignment: &'a Assignment,
    /// The adjustment in force.
    pub adjustment: Adjustment,
    pub weeks: &'a [WeekAdherence],
    /// 0–10 pain ratings from questionnaires, any order.
    pub pain_ratings: &'a [(Date, u8)],
    /// Shared diary entries with their ratings before and after, any order. Private entries
    /// never reach the rules.
    pub distress: &'a [DiaryRatings],
}

/// Runs every rule and returns the suggestions that fire and would change something.
#[must_use]
pub fn suggest(rules: &TailoringRules, data: &PatientData<'_>) -> Vec<Suggestion> {
    [
        high_pain(&rules.high_pain, data),
        low_adherence(&rules.low_adherence, data),
        distress_after_practice(rules.distress_after_practice, data),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn window_start(today: Date, days: u16) -> Date {
    today.saturating_sub(jiff::Span::new().days(i64::from(days)))
}

fn percent(part: usize, whole: usize) -> u32 {
    u32::try_from(part * 100 / whole.max(1)).unwrap_or(u32::MAX)
}

fn high_pain(rule: &HighPainRule, data: &PatientData<'_>) -> Option<Suggestion> {
    let from = window_start(data.today, rule.window_days);
    let mut ratings: Vec<(Date, u8)> = data
        .pain_ratings
        .iter()
        .filter(|(day, _)| *day > from && *day <= data.today)
        .copied()
        .collect();
    ratings.sort();
    let high = ratings
        .iter()
        .filter(|(_, rating)| *rating >= rule.min_rating)
        .count();
    if ratings.len() < usize::from(rule.min_ratings)
        || percent(high, ratings.len()) < rule.min_percent
    {
        return None;
    }

    let adjustment = Adjustment {
        max_minutes: Some(rule.suggest_max_minutes),
        seated_or_lying_movement: true,
    };
    changes(data.adjustment, adjustment).then_some(Suggestion {
        rule: Rule::HighPain,
        evidence: Evidence::PainRatings {
            ratings,
            high_from: rule.min_rating,
        },
        adjustment: Some(adjustment),
        week: data.assignment.week,
    })
}

fn low_adherence(rule: &LowAdherenceRule, data: &PatientData<'_>) -> Option<Suggestion> {
    if data.assignment.daily_minutes < rule.min_daily_minutes || rule.weeks == 0 {
        return None;
    }
    let complete: Vec<&WeekAdherence> = data.weeks.iter().filter(|week| week.complete).collect();
    let wanted = usize::from(rule.weeks);
    if complete.len() < wanted {
        return None;
    }
    let recent = &complete[complete.len() - wanted..];
    let percents: Vec<u32> = recent.iter().filter_map(|week| week.percent()).collect();
    if percents.len() < wanted
        || percents
            .iter()
            .any(|percent| *percent >= rule.below_percent)
    {
        return None;
    }

    let very_low = percents
        .iter()
        .all(|percent| *percent < rule.very_low_percent);
    let minutes = if very_low {
        rule.very_low_suggest_max_minutes
    } else {
        rule.suggest_max_minutes
    };
    let adjustment = Adjustment {
        max_minutes: Some(minutes),
        seated_or_lying_movement: false,
    };
    let weeks = recent
        .iter()
        .map(|week| WeekMinutes {
            week: week.week,
            minutes: week.minutes,
            assigned: week.assigned_minutes,
        })
        .collect();
    changes(data.adjustment, adjustment).then_some(Suggestion {
        rule: Rule::LowAdherence,
        evidence: Evidence::WeeklyMinutes {
            weeks,
            daily_minutes: data.assignment.daily_minutes,
        },
        adjustment: Some(adjustment),
        week: data.assignment.week,
    })
}

fn distress_after_practice(
    rule: DistressAfterPracticeRule,
    data: &PatientData<'_>,
) -> Option<Suggestion> {
    let from = window_start(data.today, rule.window_days);
    let mut entries: Vec<RatedEntry> = data
        .distress
        .iter()
        .filter(|rated| rated.day > from && rated.day <= data.today)
        .filter_map(|rated| {
            Some(RatedEntry {
                day: rated.day,
                entry: rated.entry,
                before: rated.before?.value(),
                after: rated.after?.value(),
            })
        })
        .collect();
    entries.sort();
    let rising = entries
        .iter()
        .filter(|rated| rated.after > rated.before)
        .count();
    if entries.len() < usize::from(rule.min_entries)
        || percent(rising, entries.len()) < rule.min_percent
    {
        return None;
    }
    Some(Suggestion {
        rule: Rule::DistressAfterPractice,
        evidence: Evidence::DistressRatings { entries },
        adjustment: None,
        week: data.assignment.week,
    })
}

/// Returns whether applying `proposed` on top of `current` changes anything.
fn changes(current: Adjustment, proposed: Adjustment) -> bool {
    current.and(proposed) != current
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;
    use crate::curriculum::Practice;
    use crate::practice::adherence::{PracticeWeek, weekly};

    fn assignment(daily_minutes: u32) -> Assignment {
        Assignment {
            week: 3,
            daily_minutes,
            days_per_week: 6,
            practices: vec![Practice::BodyScan],
            max_recording_minutes: None,
        }
    }

    fn data<'a>(
        assignment: &'a Assignment,
        weeks: &'a [WeekAdherence],
        pain: &'a [(Date, u8)],
        distress: &'a [DiaryRatings],
    ) -> PatientData<'a> {
        PatientData {
            today: date(2027, 1, 26),
            assignment,
            adjustment: Adjustment::default(),
            weeks,
            pain_ratings: pain,
            distress,
        }
    }

    #[allow(clippy::unnecessary_wraps)] // Entries hold optional ratings.
    fn rating(value: u8) -> Option<DistressRating> {
        Some(DistressRating::new(value).expect("0 to 10"))
    }

    #[test]
    fn persistent_high_pain_suggests_seated_and_shorter() {
        let rules = TailoringRules::default();
        let plan = assignment(30);
        let pain = [
            (date(2027, 1, 14), 8),
            (date(2027, 1, 19), 7),
            (date(2027, 1, 24), 9),
            (date(2027, 1, 2), 3),
        ];
        let suggestions = suggest(&rules, &data(&plan, &[], &pain, &[]));
        assert_eq!(suggestions.len(), 1, "{suggestions:?}");
        let suggestion = &suggestions[0];
        assert_eq!(suggestion.rule, Rule::HighPain);
        assert_eq!(
            suggestion.adjustment,
            Some(Adjustment {
                max_minutes: Some(20),
                seated_or_lying_movement: true
            })
        );
        assert_eq!(
            suggestion.evidence,
            Evidence::PainRatings {
                ratings: vec![
                    (date(2027, 1, 14), 8),
                    (date(2027, 1, 19), 7),
                    (date(2027, 1, 24), 9)
                ],
                high_from: 7,
            },
            "the rating from 2 January is outside the 14-day window"
        );

        let mixed = [
            (date(2027, 1, 14), 8),
            (date(2027, 1, 19), 4),
            (date(2027, 1, 24), 9),
        ];
        assert!(
            suggest(&rules, &data(&plan, &[], &mixed, &[])).is_empty(),
            "two of three is below 75%"
        );
        let two = [(date(2027, 1, 19), 8), (date(2027, 1, 24), 9)];
        assert!(
            suggest(&rules, &data(&plan, &[], &two, &[])).is_empty(),
            "two ratings are too few"
        );

        let mut already = data(&plan, &[], &pain, &[]);
        already.adjustment = Adjustment {
            max_minutes: Some(20),
            seated_or_lying_movement: true,
        };
        assert!(
            suggest(&rules, &already).is_empty(),
            "nothing left to change"
        );
    }

    fn weeks_with(minutes: [u32; 3], daily_minutes: u32) -> Vec<WeekAdherence> {
        let starts = [date(2027, 1, 5), date(2027, 1, 12), date(2027, 1, 19)];
        let plan: Vec<PracticeWeek> = starts
            .iter()
            .enumerate()
            .map(|(index, start)| PracticeWeek {
                assignment: Assignment {
                    week: u8::try_from(index + 1).expect("week"),
                    ..assignment(daily_minutes)
                },
                starts: *start,
                ends: start.checked_add(jiff::Span::new().days(7)).expect("date"),
            })
            .collect();
        let daily: Vec<(Date, u32)> = starts
            .iter()
            .zip(minutes)
            .map(|(day, minutes)| (*day, minutes * 60))
            .collect();
        weekly(&plan, &daily, date(2027, 1, 26))
    }

    #[test]
    fn low_adherence_with_long_assignment_suggests_shorter() {
        let rules = TailoringRules::default();
        let plan = assignment(45); // 270 minutes a week
        let low = weeks_with([200, 100, 90], 45); // 37% and 33%
        let suggestions = suggest(&rules, &data(&plan, &low, &[], &[]));
        assert_eq!(suggestions.len(), 1);
        assert_eq!(suggestions[0].rule, Rule::LowAdherence);
        assert_eq!(
            suggestions[0]
                .adjustment
                .and_then(|change| change.max_minutes),
            Some(20)
        );
        let Evidence::WeeklyMinutes {
            weeks,
            daily_minutes,
        } = &suggestions[0].evidence
        else {
            panic!("weekly minutes expected");
        };
        assert_eq!(*daily_minutes, 45);
        assert_eq!(
            weeks
                .iter()
                .map(|week| (week.week, week.minutes))
                .collect::<Vec<_>>(),
            vec![(2, 100), (3, 90)]
        );

        let very_low = weeks_with([50, 30, 20], 45); // 11% and 7%
        let suggestions = suggest(&rules, &data(&plan, &very_low, &[], &[]));
        assert_eq!(
            suggestions[0]
                .adjustment
                .and_then(|change| change.max_minutes),
            Some(10)
        );

        let short = assignment(20);
        let low_short = weeks_with([50, 30, 20], 20);
        assert!(
            suggest(&rules, &data(&short, &low_short, &[], &[])).is_empty(),
            "20 minutes is not long"
        );
        let one_good = weeks_with([0, 200, 90], 45);
        assert!(
            suggest(&rules, &data(&plan, &one_good, &[], &[])).is_empty(),
            "week 2 was at 74%"
        );
    }

    #[test]
    fn rising_distress_suggests_check_in() {
        let rules = TailoringRules::default();
        let plan = assignment(20);
        let rated =
            |day: u8, before: Option<DistressRating>, after: Option<DistressRating>| DiaryRatings {
                entry: PracticeEntryId::from_uuid(uuid::Uuid::from_u128(u128::from(day))),
                day: date(2027, 1, i8::try_from(day).expect("day")),
                before,
                after,
            };
        let entries = [
            rated(20, rating(3), rating(6)),
            rated(22, rating(4), rating(4)),
            rated(24, rating(2), rating(5)),
            rated(25, None, rating(9)),
        ];
        let suggestions = suggest(&rules, &data(&plan, &[], &[], &entries));
        assert_eq!(suggestions.len(), 1);
        assert_eq!(suggestions[0].rule, Rule::DistressAfterPractice);
        assert_eq!(suggestions[0].adjustment, None);
        let Evidence::DistressRatings { entries: evidence } = &suggestions[0].evidence else {
            panic!("distress ratings expected");
        };
        let figures: Vec<(Date, u8, u8)> = evidence
            .iter()
            .map(|rated| (rated.day, rated.before, rated.after))
            .collect();
        assert_eq!(
            figures,
            vec![
                (date(2027, 1, 20), 3, 6),
                (date(2027, 1, 22), 4, 4),
                (date(2027, 1, 24), 2, 5)
            ]
        );
        assert_eq!(
            evidence[0].entry, entries[0].entry,
            "each rating names its entry"
        );

        let calmer = [
            rated(20, rating(6), rating(3)),
            rated(22, rating(4), rating(5)),
            rated(24, rating(5), rating(2)),
        ];
        assert!(suggest(&rules, &data(&plan, &[], &[], &calmer)).is_empty());
    }

    #[test]
    fn shipped_rules_file_matches_the_defaults() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../content/practice/tailoring.toml"
        );
        let text = std::fs::read_to_string(path).expect("rules file");
        let rules: TailoringRules = toml::from_str(&text).expect("valid rules");
        assert_eq!(rules, TailoringRules::default());
    }
}
