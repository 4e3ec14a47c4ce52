//! Scoring of standardised outcome measures, such as the PHQ-9, GAD-7 or PSS-10. Each
//! instrument's scoring definition gives its item values, reverse-keyed items, the total (a sum
//! or a mean), an optional raw-to-T-score table, an optional scale factor, the missing-item rule
//! and the bands.
//!
//! The definitions themselves are data, so the rules here are the instrument-independent ones.
//! An incomplete form is scored only where the instrument's rule allows it, is marked
//! incomplete, and items the rule names as never imputed (such as PHQ-9 item 9) stop scoring.

pub mod change;
pub mod instrument;
pub mod plan;
pub mod safety;

use serde::{Deserialize, Serialize};

use crate::InvalidValue;

/// The combination of item values into the raw score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Total {
    Sum,
    Mean,
}

/// The rule for unanswered items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum MissingRule {
    /// Every item must be answered; an incomplete form has no score.
    AllRequired,
    /// Up to `max_missing` items may be unanswered. For a sum, the answered items' sum is
    /// prorated to all items and rounded to the nearest whole number (halves up); items in
    /// `never_impute` must always be answered.
    Prorate {
        max_missing: usize,
        #[serde(default)]
        never_impute: Vec<usize>,
    },
}

/// One band of the score, inclusive at both ends, such as 10–14 "moderate".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Band {
    pub from: f64,
    pub to: f64,
    /// A stable code such as `moderate`; the interface translates it.
    pub code: String,
}

/// The scoring part of an instrument's definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoringRule {
    /// The number of scored items.
    pub items: usize,
    /// The lowest and highest value an item's answer can have.
    pub item_min: u8,
    pub item_max: u8,
    /// 1-based positions of the reverse-keyed items, scored as `item_min + item_max - value`.
    #[serde(default)]
    pub reverse_keyed: Vec<usize>,
    pub total: Total,
    pub missing: MissingRule,
    /// Multiplies the raw score, such as 4 for the WHO-5 percentage.
    #[serde(default)]
    pub scale: Option<f64>,
    /// T-scores for each raw sum from the lowest to the highest possible, when the instrument
    /// reports a T-score (PROMIS short forms).
    #[serde(default)]
    pub t_scores: Option<Vec<f64>>,
    /// Bands over the reported score (the T-score when there is one).
    #[serde(default)]
    pub bands: Vec<Band>,
}

/// A scored form.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// The raw total after reverse keying and any prorating.
    pub raw: f64,
    /// The score the instrument reports: the raw total scaled, or its T-score.
    pub reported: f64,
    /// The band of the reported score, when the instrument has bands.
    pub band: Option<String>,
    /// Whether unanswered items were prorated.
    pub incomplete: bool,
    pub answered: usize,
}

/// The reason a form cannot be scored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScoringError {
    #[error(transparent)]
    Invalid(#[from] InvalidValue),
    /// Too many items are unanswered, or one that is never imputed is.
    #[error("the form cannot be scored: {0}")]
    Incomplete(String),
}

impl ScoringRule {
    /// Checks the rule itself, so a broken definition is found when it is loaded.
    pub fn validate(&self) -> Result<(), InvalidValue> {
        if self.items == 0 || self.item_min > self.item_max {
            return Err(InvalidValue::new(
                "scoring",
                "an instrument needs at least one item and item_min no greater than item_max",
            ));
        }
        let out_of_range = |position: &usize| *position == 0 || *position > self.items;
        if self.reverse_keyed.iter().any(out_of_range) {
            return Err(InvalidValue::new(
                "reverse_keyed",
                format!("reverse-keyed items must be between 1 and {}", self.items),
            ));
        }
        if let MissingRule::Prorate { never_impute, .. } = &self.missing
            && never_impute.iter().any(out_of_range)
        {
            return Err(InvalidValue::new(
                "never_impute",
                format!("never-imputed items must be between 1 and {}", self.items),
            ));
        }
        if let Some(table) = &self.t_scores {
            let sums = self.items * usize::from(self.item_max - self.item_min) + 1;
            if self.total != Total::Sum || table.len() != sums {
                return Err(InvalidValue::new(
                    "t_scores",
                    format!("a T-score table needs one entry for each of the {sums} possible sums"),
                ));
            }
        }
        Ok(())
    }

    /// Scores `answers`, one per item in order, `None` for an unanswered item.
    pub fn score(&self, answers: &[Option<u8>]) -> Result<Score, ScoringError> {
        if answers.len() != self.items {
            return Err(InvalidValue::new(
                "answers",
                format!(
                    "{} answers were given for {} items",
                    answers.len(),
                    self.items
                ),
            )
            .into());
        }
        let mut values = Vec::with_capacity(self.items);
        for (index, answer) in answers.iter().enumerate() {
            let position = index + 1;
            let Some(value) = *answer else {
                continue;
            };
            if !(self.item_min..=self.item_max).contains(&value) {
                return Err(InvalidValue::new(
                    "answers",
                    format!(
                        "item {position} has the value {value}, outside {} to {}",
                        self.item_min, self.item_max
                    ),
                )
                .into());
            }
            let keyed = if self.reverse_keyed.contains(&position) {
                self.item_min + self.item_max - value
            } else {
                value
            };
            values.push(f64::from(keyed));
        }

        let answered = values.len();
        if answered == 0 {
            return Err(ScoringError::Incomplete("no item is answered".to_owned()));
        }
        let missing: Vec<usize> = answers
            .iter()
            .enumerate()
            .filter(|(_, answer)| answer.is_none())
            .map(|(index, _)| index + 1)
            .collect();
        self.check_missing(&missing)?;

        let sum: f64 = values.iter().sum();
        let raw = match self.total {
            Total::Mean => sum / count(answered),
            Total::Sum if missing.is_empty() => sum,
            // NOTE: published prorating rules differ (PROMIS rounds up); this rounds to nearest.
            // Prorated to every item, so it stays a possible sum.
            Total::Sum => (sum * count(self.items) / count(answered)).round(),
        };
        let reported = match (&self.t_scores, self.scale) {
            (Some(table), _) => {
                let index = raw - f64::from(self.item_min) * count(self.items);
                table
                    .get(float_index(index))
                    .copied()
                    .ok_or_else(|| ScoringError::Incomplete(format!("no T-score for raw {raw}")))?
            }
            (None, Some(factor)) => raw * factor,
            (None, None) => raw,
        };
        let band = self
            .bands
            .iter()
            .find(|band| reported >= band.from && reported <= band.to)
            .map(|band| band.code.clone());
        Ok(Score {
            raw,
            reported,
            band,
            incomplete: !missing.is_empty(),
            answered,
        })
    }

    fn check_missing(&self, missing: &[usize]) -> Result<(), ScoringError> {
        if missing.is_empty() {
            return Ok(());
        }
        match &self.missing {
            MissingRule::AllRequired => Err(ScoringError::Incomplete(format!(
                "every item must be answered (unanswered: {} of {})",
                missing.len(),
                self.items
            ))),
            MissingRule::Prorate {
                max_missing,
                never_impute,
            } => {
                if let Some(item) = missing.iter().find(|item| never_impute.contains(item)) {
                    return Err(ScoringError::Incomplete(format!(
                        "item {item} is never imputed and must be answered"
                    )));
                }
                if missing.len() > *max_missing {
                    return Err(ScoringError::Incomplete(format!(
                        "{} items are unanswered; at most {max_missing} may be",
                        missing.len()
                    )));
                }
                Ok(())
            }
        }
    }
}

/// Converts a small count to a float for score arithmetic; questionnaires have far fewer items
/// than `u32::MAX`.
fn count(items: usize) -> f64 {
    f64::from(u32::try_from(items).unwrap_or(u32::MAX))
}

/// Converts a whole, non-negative float to an index; anything else has no table entry.
fn float_index(value: f64) -> usize {
    if value < 0.0 || value.fract() != 0.0 {
        return usize::MAX;
    }
    format!("{value:.0}").parse().unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn band(from: f64, to: f64, code: &str) -> Band {
        Band {
            from,
            to,
            code: code.to_owned(),
        }
    }

    /// Builds the PHQ-9 as published: nine items 0–3 summed to 0–27, with the severity bands of
    /// Kroenke, Spitzer and Williams (2001). No official prorating rule exists; this fixture uses
    /// a research convention (up to 2 missing items) to exercise the rule, with item 9 never
    /// imputed.
    fn phq9() -> ScoringRule {
        ScoringRule {
            items: 9,
            item_min: 0,
            item_max: 3,
            reverse_keyed: Vec::new(),
            total: Total::Sum,
            missing: MissingRule::Prorate {
                max_missing: 2,
                never_impute: vec![9],
            },
            scale: None,
            t_scores: None,
            bands: vec![
                band(0.0, 4.0, "minimal"),
                band(5.0, 9.0, "mild"),
                band(10.0, 14.0, "moderate"),
                band(15.0, 19.0, "moderately_severe"),
                band(20.0, 27.0, "severe"),
            ],
        }
    }

    /// Answers whose values add up to `total`, filled from the first item.
    fn answers_summing_to(total: u8, items: usize, max: u8) -> Vec<Option<u8>> {
        let mut left = total;
        (0..items)
            .map(|_| {
                let value = left.min(max);
                left -= value;
                Some(value)
            })
            .collect()
    }

    #[test]
    fn phq9_band_boundaries() {
        let rule = phq9();
        rule.validate().expect("valid");
        for (total, expected) in [
            (0, "minimal"),
            (4, "minimal"),
            (5, "mild"),
            (9, "mild"),
            (10, "moderate"),
            (14, "moderate"),
            (15, "moderately_severe"),
            (19, "moderately_severe"),
            (20, "severe"),
            (27, "severe"),
        ] {
            let score = rule
                .score(&answers_summing_to(total, 9, 3))
                .expect("scored");
            assert!(
                (score.reported - f64::from(total)).abs() < f64::EPSILON,
                "{total}"
            );
            assert_eq!(score.band.as_deref(), Some(expected), "{total}");
            assert!(!score.incomplete);
        }
    }

    #[test]
    fn phq9_item_nine_is_never_imputed() {
        let rule = phq9();
        let mut answers = vec![Some(1); 9];
        answers[8] = None;
        let error = rule.score(&answers).expect_err("item 9 missing");
        assert!(
            error.to_string().contains("item 9 is never imputed"),
            "{error}"
        );

        // Two other items missing: the sum of seven answered items (7) is prorated to 9 items.
        let mut answers = vec![Some(1); 9];
        answers[0] = None;
        answers[1] = None;
        let score = rule.score(&answers).expect("prorated");
        assert!((score.raw - 9.0).abs() < f64::EPSILON, "{}", score.raw);
        assert!(score.incomplete);
        assert_eq!(score.answered, 7);

        let mut three_missing = vec![Some(1); 9];
        three_missing[0] = None;
        three_missing[1] = None;
        three_missing[2] = None;
        assert!(matches!(
            rule.score(&three_missing),
            Err(ScoringError::Incomplete(_))
        ));
    }

    #[test]
    fn out_of_range_answers_are_rejected() {
        let mut answers = vec![Some(0); 9];
        answers[3] = Some(4);
        let error = phq9().score(&answers).expect_err("4 is not a PHQ-9 value");
        assert!(
            error.to_string().contains("item 4 has the value 4"),
            "{error}"
        );
        assert!(
            phq9().score(&[Some(0); 8]).is_err(),
            "eight answers for nine items"
        );
    }

    /// Builds the PSS-10: items 0–4, items 4, 5, 7 and 8 reverse-keyed (4 − x), summed to 0–40.
    fn pss10() -> ScoringRule {
        ScoringRule {
            items: 10,
            item_min: 0,
            item_max: 4,
            reverse_keyed: vec![4, 5, 7, 8],
            total: Total::Sum,
            missing: MissingRule::AllRequired,
            scale: None,
            t_scores: None,
            bands: Vec::new(),
        }
    }

    #[test]
    fn pss10_reverse_keys_items_four_five_seven_eight() {
        // Answering 0 everywhere scores 4 on each of the four reversed items.
        let score = pss10().score(&[Some(0); 10]).expect("scored");
        assert!((score.raw - 16.0).abs() < f64::EPSILON);
        let score = pss10().score(&[Some(4); 10]).expect("scored");
        assert!((score.raw - 24.0).abs() < f64::EPSILON);
        assert!(matches!(
            pss10().score(&[None; 10]),
            Err(ScoringError::Incomplete(_))
        ));
    }

    /// Reverse keying is symmetric: answering `v` on a reversed item scores like answering
    /// `min + max - v` on a plain one, for every value and every reversed position.
    #[test]
    fn reverse_keying_is_symmetric() {
        let reversed = pss10();
        let plain = ScoringRule {
            reverse_keyed: Vec::new(),
            ..pss10()
        };
        for position in [4_usize, 5, 7, 8] {
            for value in 0..=4_u8 {
                let mut answers = vec![Some(2); 10];
                answers[position - 1] = Some(value);
                let mut mirrored = answers.clone();
                mirrored[position - 1] = Some(4 - value);
                for reversed_position in [4_usize, 5, 7, 8] {
                    if reversed_position != position {
                        mirrored[reversed_position - 1] = Some(2);
                    }
                }
                let a = reversed.score(&answers).expect("scored").raw;
                let b = plain.score(&mirrored).expect("scored").raw;
                assert!(
                    (a - b).abs() < f64::EPSILON,
                    "item {position} value {value}"
                );
            }
        }
    }

    /// PROMIS Depression 4a: items 1–5 summed to 4–20 and converted with the PROMIS-29 table.
    #[test]
    fn promis_t_score_lookup() {
        let table = vec![
            41.0, 49.0, 51.8, 53.9, 55.7, 57.3, 58.9, 60.5, 62.2, 63.9, 65.7, 67.5, 69.4, 71.2,
            73.3, 75.7, 79.4,
        ];
        let rule = ScoringRule {
            items: 4,
            item_min: 1,
            item_max: 5,
            reverse_keyed: Vec::new(),
            total: Total::Sum,
            missing: MissingRule::AllRequired,
            scale: None,
            t_scores: Some(table),
            bands: vec![
                band(0.0, 54.9, "within_normal_limits"),
                band(55.0, 59.9, "mild"),
                band(60.0, 69.9, "moderate"),
                band(70.0, 100.0, "severe"),
            ],
        };
        rule.validate().expect("valid");
        for (answers, t_score, expected) in [
            ([1, 1, 1, 1], 41.0, "within_normal_limits"),
            ([2, 2, 2, 2], 55.7, "mild"),
            ([3, 3, 3, 3], 62.2, "moderate"),
            ([5, 5, 5, 5], 79.4, "severe"),
        ] {
            let answers: Vec<Option<u8>> = answers.iter().copied().map(Some).collect();
            let score = rule.score(&answers).expect("scored");
            assert!((score.reported - t_score).abs() < 1e-9, "{answers:?}");
            assert_eq!(score.band.as_deref(), Some(expected));
        }
        let short = ScoringRule {
            t_scores: Some(vec![50.0; 3]),
            ..rule
        };
        assert!(short.validate().is_err(), "a table of the wrong length");
    }

    /// WHO-5: five items 0–5 summed to 0–25, reported as a percentage (× 4).
    #[test]
    fn who5_reports_a_percentage() {
        let rule = ScoringRule {
            items: 5,
            item_min: 0,
            item_max: 5,
            reverse_keyed: Vec::new(),
            total: Total::Sum,
            missing: MissingRule::AllRequired,
            scale: Some(4.0),
            t_scores: None,
            bands: Vec::new(),
        };
        let score = rule
            .score(&[Some(3), Some(2), Some(3), Some(2), Some(2)])
            .expect("scored");
        assert!((score.raw - 12.0).abs() < f64::EPSILON);
        assert!((score.reported - 48.0).abs() < f64::EPSILON);
    }

    /// Every possible complete PHQ-9 and GAD-7 form scores within its published range.
    #[test]
    fn scores_stay_in_range() {
        let gad7 = ScoringRule {
            items: 7,
            bands: Vec::new(),
            ..phq9()
        };
        let gad7 = ScoringRule {
            missing: MissingRule::AllRequired,
            ..gad7
        };
        for (rule, max) in [(phq9(), 27.0), (gad7, 21.0)] {
            let mut state: u64 = 0x5eed;
            for _ in 0..5_000 {
                let answers: Vec<Option<u8>> = (0..rule.items)
                    .map(|_| {
                        state = state
                            .wrapping_mul(6_364_136_223_846_793_005)
                            .wrapping_add(1_442_695_040_888_963_407);
                        Some(u8::try_from((state >> 33) % 4).expect("small"))
                    })
                    .collect();
                let score = rule.score(&answers).expect("scored");
                assert!((0.0..=max).contains(&score.reported), "{answers:?}");
            }
        }
    }
}
