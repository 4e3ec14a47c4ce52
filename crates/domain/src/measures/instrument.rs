//! An instrument's definition, read from one TOML document per instrument such as
//! `content/instruments/phq-9.toml`: its source and licence, items with their answer options and
//! LOINC codes, scales with their scoring rules, reliability and norms, and safety rules.
//!
//! Every fact carries its source, and a fact not confirmed in a primary source is marked
//! `verified = false` so the interface and the documentation can say so.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::safety::SafetyRule;
use super::{Band, MissingRule, Score, ScoringError, ScoringRule, Total};
use crate::curriculum::LocalizedText;
use crate::{InvalidValue, Language};

/// The maximum number of items of an instrument; the longest shipped one (FFMQ-15) has 15.
pub const MAX_ITEMS: usize = 60;

/// An instrument's identifier, such as `phq-9`: lower-case letters, digits and hyphens.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InstrumentId(String);

impl InstrumentId {
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        let value = value.trim();
        let shape_ok = (1..=40).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !value.starts_with('-');
        if !shape_ok {
            return Err(InvalidValue::new(
                "instrument",
                format!(
                    "'{value}' is not an instrument id; use lower-case letters, digits and hyphens, such as 'phq-9'"
                ),
            ));
        }
        Ok(Self(value.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for InstrumentId {
    type Error = InvalidValue;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<InstrumentId> for String {
    fn from(id: InstrumentId) -> Self {
        id.0
    }
}

impl std::fmt::Display for InstrumentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a clinic may use an instrument without recording a licence of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LicenceStatus {
    /// Free to reproduce and administer: ships enabled.
    Free,
    /// The owner's permission is needed: ships with its scoring but stays disabled until an
    /// administrator records the organisation's licence, and the clinic supplies the item text.
    PermissionRequired,
}

/// The direction in which a score improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    LowerIsBetter,
    HigherIsBetter,
}

/// The origin of a fact, and whether it was confirmed in a primary source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub citation: String,
    pub verified: bool,
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Licence {
    pub status: LicenceStatus,
    /// The owner, such as "Pfizer Inc.".
    pub holder: String,
    /// The copyright line or terms shown with the form.
    pub notice: String,
    pub source: Source,
}

/// One answer option: the stored value, its label per language and its LOINC answer code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerOption {
    pub value: u8,
    #[serde(default)]
    pub label: LocalizedText,
    #[serde(default)]
    pub loinc: Option<String>,
}

/// A named list of answer options shared by several items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionSet {
    pub id: String,
    pub options: Vec<AnswerOption>,
    /// Labels for the two ends of a numeric rating scale (0 "no pain", 10 "worst pain
    /// imaginable"), when the options have no labels of their own.
    #[serde(default)]
    pub anchors: Option<[LocalizedText; 2]>,
}

/// An item is asked only when an earlier item has one of these values, as in the C-SSRS
/// screener's skip rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AskedIf {
    pub item: String,
    pub values: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// The item's id within the instrument, such as `9`.
    pub id: String,
    #[serde(default)]
    pub loinc: Option<String>,
    pub options: String,
    /// The item text per language; empty for a licensed instrument whose text the clinic
    /// supplies.
    #[serde(default)]
    pub text: LocalizedText,
    /// Whether a submission must answer it (when it is asked at all).
    #[serde(default = "yes")]
    pub required: bool,
    #[serde(default)]
    pub asked_if: Option<AskedIf>,
}

fn yes() -> bool {
    true
}

/// The reliability used for the Reliable Change Index, with its type and source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reliability {
    pub value: f64,
    /// `cronbach_alpha` or `test_retest`.
    pub kind: String,
    pub source: Source,
}

/// The means and standard deviations of a clinical (dysfunctional) sample and, when known, a
/// functional one, as Jacobson and Truax (1991) use them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Norms {
    pub clinical_mean: f64,
    pub clinical_sd: f64,
    #[serde(default)]
    pub functional_mean: Option<f64>,
    #[serde(default)]
    pub functional_sd: Option<f64>,
    /// A published cut-off used as the clinical-significance boundary when no functional norms
    /// are given, such as 10 for the PHQ-9.
    #[serde(default)]
    pub cutoff: Option<f64>,
    pub source: Source,
}

/// A scored scale of an instrument: the total, or a subscale such as the PROMIS Global-10's
/// Global Physical Health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scale {
    /// A stable code, such as `total` or `global_physical_health`.
    pub code: String,
    pub label: LocalizedText,
    #[serde(default)]
    pub loinc: Option<String>,
    /// The item ids that make up the scale, in order.
    pub items: Vec<String>,
    /// Values that replace an item's answer before scoring, indexed by the answer's value,
    /// such as the Global-10 pain item's 0–10 rating recoded to 1–5.
    #[serde(default)]
    pub recode: BTreeMap<String, Vec<u8>>,
    #[serde(default)]
    pub reverse_keyed: Vec<String>,
    pub total: Total,
    pub missing: MissingRule,
    #[serde(default)]
    pub scale: Option<f64>,
    #[serde(default)]
    pub t_scores: Option<Vec<f64>>,
    #[serde(default)]
    pub bands: Vec<Band>,
    /// The origin of the bands, when they are not the instrument's own.
    #[serde(default)]
    pub bands_source: Option<Source>,
    pub direction: Direction,
    /// The lowest and highest reported score, for charts.
    pub range: [f64; 2],
    #[serde(default)]
    pub reliability: Option<Reliability>,
    #[serde(default)]
    pub norms: Option<Norms>,
    /// A published clinical cut-off, such as 10 for the PHQ-9, used for clinical significance
    /// when the norms give none.
    #[serde(default)]
    pub cutoff: Option<Cutoff>,
}

/// A published cut-off score with its source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cutoff {
    pub value: f64,
    pub source: Source,
}

/// A standardised measure, as read from its document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instrument {
    pub id: InstrumentId,
    /// The version of this definition; stored with every score.
    pub version: u32,
    pub short_name: String,
    pub title: LocalizedText,
    /// The instructions and recall period shown above the items, per language.
    #[serde(default)]
    pub instructions: LocalizedText,
    pub citation: Source,
    pub licence: Licence,
    #[serde(default)]
    pub loinc: Option<String>,
    pub option_sets: Vec<OptionSet>,
    pub items: Vec<Item>,
    #[serde(default)]
    pub scales: Vec<Scale>,
    #[serde(default)]
    pub safety: Vec<SafetyRule>,
}

/// A submission's answers: item id to the chosen option's value.
pub type Answers = BTreeMap<String, u8>;

/// A problem with a submission, naming the item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("item '{0}' is not part of this instrument")]
    UnknownItem(String),
    #[error("item '{item}' has the value {value}; choose one of {allowed}")]
    NotAnOption {
        item: String,
        value: u8,
        allowed: String,
    },
    #[error("item '{0}' is required; choose an answer")]
    Missing(String),
}

impl AnswerError {
    /// Returns the item the problem is about.
    #[must_use]
    pub fn item(&self) -> &str {
        match self {
            Self::UnknownItem(item) | Self::Missing(item) | Self::NotAnOption { item, .. } => item,
        }
    }
}

/// One scale's score, or why it has none.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleScore {
    pub scale: String,
    pub outcome: Result<Score, ScoringError>,
}

impl Instrument {
    /// Reads and checks a definition.
    pub fn from_toml(text: &str) -> Result<Self, InvalidValue> {
        let instrument: Self = toml::from_str(text)
            .map_err(|error| InvalidValue::new("instrument", error.to_string()))?;
        instrument.validate()?;
        Ok(instrument)
    }

    #[must_use]
    pub fn item(&self, id: &str) -> Option<&Item> {
        self.items.iter().find(|item| item.id == id)
    }

    #[must_use]
    pub fn scale(&self, code: &str) -> Option<&Scale> {
        self.scales.iter().find(|scale| scale.code == code)
    }

    #[must_use]
    pub fn option_set(&self, id: &str) -> Option<&OptionSet> {
        self.option_sets.iter().find(|set| set.id == id)
    }

    /// Returns the languages every item's text is written in, empty when the clinic supplies the
    /// text.
    #[must_use]
    pub fn item_languages(&self) -> BTreeSet<Language> {
        let mut languages: Option<BTreeSet<Language>> = None;
        for item in &self.items {
            let these: BTreeSet<Language> = item.text.keys().cloned().collect();
            languages = Some(match languages {
                None => these,
                Some(all) => all.intersection(&these).cloned().collect(),
            });
        }
        languages.unwrap_or_default()
    }

    /// Returns whether `item` is asked, given the answers so far.
    #[must_use]
    pub fn is_asked(&self, item: &Item, answers: &Answers) -> bool {
        item.asked_if.as_ref().is_none_or(|condition| {
            answers
                .get(&condition.item)
                .is_some_and(|value| condition.values.contains(value))
        })
    }

    /// Checks a submission: every answer names an item and one of its options, and every
    /// required item that is asked is answered. Answers to items that were skipped are kept and
    /// still count for the safety rules.
    pub fn check_answers(&self, answers: &Answers) -> Result<(), AnswerError> {
        self.check_values(answers)?;
        for item in &self.items {
            if item.required && self.is_asked(item, answers) && !answers.contains_key(&item.id) {
                return Err(AnswerError::Missing(item.id.clone()));
            }
        }
        Ok(())
    }

    /// Keeps the answers that name an item and one of its options, dropping the rest, so the
    /// safety rules can run on a form that failed its checks.
    #[must_use]
    pub fn valid_answers(&self, answers: &Answers) -> Answers {
        answers
            .iter()
            .filter(|(id, value)| {
                self.item(id).is_some_and(|item| {
                    self.options_of(item)
                        .iter()
                        .any(|option| option.value == **value)
                })
            })
            .map(|(id, value)| (id.clone(), *value))
            .collect()
    }

    /// Checks that every answer names an item and one of its options, allowing unanswered
    /// items (as in a spreadsheet of historical forms, scored under the missing-item rule).
    pub fn check_values(&self, answers: &Answers) -> Result<(), AnswerError> {
        for (id, value) in answers {
            let item = self
                .item(id)
                .ok_or_else(|| AnswerError::UnknownItem(id.clone()))?;
            let options = self.options_of(item);
            if !options.iter().any(|option| option.value == *value) {
                let allowed: Vec<String> = options
                    .iter()
                    .map(|option| option.value.to_string())
                    .collect();
                return Err(AnswerError::NotAnOption {
                    item: id.clone(),
                    value: *value,
                    allowed: allowed.join(", "),
                });
            }
        }
        Ok(())
    }

    /// Scores every scale from checked answers. A scale whose missing-item rule does not allow
    /// the gaps gets an error instead of a score.
    #[must_use]
    pub fn score(&self, answers: &Answers) -> Vec<ScaleScore> {
        self.scales
            .iter()
            .map(|scale| ScaleScore {
                scale: scale.code.clone(),
                outcome: self.score_scale(scale, answers),
            })
            .collect()
    }

    fn score_scale(&self, scale: &Scale, answers: &Answers) -> Result<Score, ScoringError> {
        let values: Vec<Option<u8>> = scale
            .items
            .iter()
            .map(|id| {
                let value = answers.get(id).copied()?;
                match scale.recode.get(id) {
                    Some(table) => table.get(usize::from(value)).copied(),
                    None => Some(value),
                }
            })
            .collect();
        self.scoring_rule(scale)?.score(&values)
    }

    /// Builds the instrument-independent scoring rule of a scale.
    pub fn scoring_rule(&self, scale: &Scale) -> Result<ScoringRule, InvalidValue> {
        let (item_min, item_max) = self.scale_item_range(scale)?;
        let position = |id: &String| scale.items.iter().position(|item| item == id);
        let reverse_keyed = scale
            .reverse_keyed
            .iter()
            .map(|id| position(id).map(|index| index + 1))
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| {
                InvalidValue::new(
                    "reverse_keyed",
                    format!(
                        "scale '{}' reverses an item it does not contain",
                        scale.code
                    ),
                )
            })?;
        let missing = match &scale.missing {
            MissingRule::AllRequired => MissingRule::AllRequired,
            MissingRule::Prorate {
                max_missing,
                never_impute,
            } => MissingRule::Prorate {
                max_missing: *max_missing,
                never_impute: never_impute.clone(),
            },
        };
        let rule = ScoringRule {
            items: scale.items.len(),
            item_min,
            item_max,
            reverse_keyed,
            total: scale.total,
            missing,
            scale: scale.scale,
            t_scores: scale.t_scores.clone(),
            bands: scale.bands.clone(),
        };
        rule.validate()?;
        Ok(rule)
    }

    /// The lowest and highest value a scale's items take after recoding; every item of a
    /// scale must share them.
    fn scale_item_range(&self, scale: &Scale) -> Result<(u8, u8), InvalidValue> {
        let mut range: Option<(u8, u8)> = None;
        for id in &scale.items {
            let item = self.item(id).ok_or_else(|| {
                InvalidValue::new(
                    "scales",
                    format!("scale '{}' names the unknown item '{id}'", scale.code),
                )
            })?;
            let values: Vec<u8> = match scale.recode.get(id) {
                Some(table) => {
                    // Every answer value indexes the table, so none can fall off its end and
                    // be scored as unanswered.
                    let covered = self
                        .options_of(item)
                        .iter()
                        .all(|option| usize::from(option.value) < table.len());
                    if !covered {
                        return Err(InvalidValue::new(
                            "recode",
                            format!(
                                "scale '{}' recodes item '{id}' with fewer entries than its answer values",
                                scale.code
                            ),
                        ));
                    }
                    table.clone()
                }
                None => self.options_of(item).iter().map(|o| o.value).collect(),
            };
            let (Some(low), Some(high)) = (values.iter().min(), values.iter().max()) else {
                return Err(InvalidValue::new(
                    "option_sets",
                    format!("item '{id}' has no answer options"),
                ));
            };
            match range {
                None => range = Some((*low, *high)),
                Some(existing) if existing == (*low, *high) => {}
                Some(_) => {
                    return Err(InvalidValue::new(
                        "scales",
                        format!(
                            "the items of scale '{}' must share one value range; recode item '{id}'",
                            scale.code
                        ),
                    ));
                }
            }
        }
        range.ok_or_else(|| {
            InvalidValue::new("scales", format!("scale '{}' has no items", scale.code))
        })
    }

    fn options_of(&self, item: &Item) -> &[AnswerOption] {
        self.option_set(&item.options)
            .map_or(&[], |set| set.options.as_slice())
    }

    /// Checks the definition as a whole, so a broken file is found when it is loaded.
    pub fn validate(&self) -> Result<(), InvalidValue> {
        if self.items.is_empty() || self.items.len() > MAX_ITEMS {
            return Err(InvalidValue::new(
                "items",
                format!("an instrument needs 1 to {MAX_ITEMS} items"),
            ));
        }
        let mut ids = BTreeSet::new();
        for item in &self.items {
            if !ids.insert(item.id.as_str()) {
                return Err(InvalidValue::new(
                    "items",
                    format!("the item id '{}' is used twice", item.id),
                ));
            }
            if self.option_set(&item.options).is_none() {
                return Err(InvalidValue::new(
                    "items",
                    format!(
                        "item '{}' uses the unknown option set '{}'",
                        item.id, item.options
                    ),
                ));
            }
            if let Some(condition) = &item.asked_if
                && self.item(&condition.item).is_none()
            {
                return Err(InvalidValue::new(
                    "asked_if",
                    format!(
                        "item '{}' depends on the unknown item '{}'",
                        item.id, condition.item
                    ),
                ));
            }
        }
        self.validate_text()?;
        for scale in &self.scales {
            self.scoring_rule(scale)?;
            if let Some(reliability) = &scale.reliability
                && !(reliability.value > 0.0 && reliability.value < 1.0)
            {
                return Err(InvalidValue::new(
                    "reliability",
                    format!("scale '{}' needs a reliability between 0 and 1", scale.code),
                ));
            }
        }
        for rule in &self.safety {
            rule.validate(self)?;
        }
        Ok(())
    }

    /// Checks the item text: a free instrument ships at least English, and every item has text
    /// in the same languages.
    fn validate_text(&self) -> Result<(), InvalidValue> {
        let english = Language::english();
        if self.licence.status == LicenceStatus::Free && !self.item_languages().contains(&english) {
            return Err(InvalidValue::new(
                "items",
                "a free instrument needs the English text of every item",
            ));
        }
        let first = self
            .items
            .first()
            .map(|item| item.text.keys().collect::<Vec<_>>());
        if let Some(first) = first
            && self
                .items
                .iter()
                .any(|item| item.text.keys().collect::<Vec<_>>() != first)
        {
            return Err(InvalidValue::new(
                "items",
                "every item needs text in the same languages",
            ));
        }
        if !self.title.contains_key(&english) {
            return Err(InvalidValue::new("title", "the English title is missing"));
        }
        Ok(())
    }
}
